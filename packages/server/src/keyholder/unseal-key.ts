/**
 * The per-boot unseal key. At boot the keyholder makes a fresh X25519 HPKE
 * identity and publishes its recipient string and boot id (through `status`).
 * `keyward unseal` seals each share file to it with `@keyward/core` `seal()`
 * and the context { purpose: "unseal", boot: <boot id> }; the keyholder opens
 * only envelopes with exactly that context, so a share sealed for an earlier
 * boot (or for anything else) is refused, and neither the API nor a TLS
 * terminator ever sees a share.
 *
 * @example
 * const key = await UnsealKey.generate();               // keyholder, at boot
 * const env = await sealShareForBoot(shareText, key.recipient, key.bootId); // custodian's CLI
 * await unsealer.submit(await key.openSealedShare(env)); // keyholder
 */
import { HpkeIdentity, open, parseRecipient, seal } from '@keyward/core';
import { toHex, utf8 } from './bytes.js';
import { KeyholderError, check } from './errors.js';
import { randomBytes } from './primitives.js';

export const UNSEAL_PURPOSE = 'unseal';
/** The purpose of a current share submitted to a rekey attempt (rekey.ts): sealed to that attempt's own key. */
export const REKEY_PURPOSE = 'rekey';
export type SealedSharePurpose = typeof UNSEAL_PURPOSE | typeof REKEY_PURPOSE;
/** A sealed share file is small; anything much larger is not one. */
const MAX_SEALED_SHARE = 64 * 1024;

/** The exact encryption context a share sealed for boot `bootId` carries. */
export const unsealContext = (bootId: string, purpose: SealedSharePurpose = UNSEAL_PURPOSE): Record<string, string> => ({ purpose, boot: bootId });

export class UnsealKey {
  private identity: HpkeIdentity | null;

  private constructor(identity: HpkeIdentity, readonly bootId: string, readonly recipient: string, readonly purpose: SealedSharePurpose) {
    this.identity = identity;
  }

  /**
   * A fresh key and boot id; the secret half never leaves this object.
   * `purpose` "rekey" makes a rekey attempt's key (its id is the boot id).
   */
  static async generate(purpose: SealedSharePurpose = UNSEAL_PURPOSE): Promise<UnsealKey> {
    const identity = await HpkeIdentity.generate('x25519');
    const recipient = (await identity.recipient()).toString();
    return new UnsealKey(identity, toHex(randomBytes(16)), recipient, purpose);
  }

  /**
   * Opens a share sealed to this boot's key (binary or armored envelope) and
   * returns the share file's bytes, for `Unsealer.submit`. Any failure —
   * another key, another boot, another purpose, tampering — is
   * KW_SEALED_SHARE_REJECTED, with the core error as `cause`.
   */
  async openSealedShare(envelope: Uint8Array | string): Promise<Uint8Array> {
    if (!this.identity) throw new KeyholderError('KW_SEALED_SHARE_REJECTED', 'this unseal key was disposed');
    check(envelope.length <= MAX_SEALED_SHARE, 'a sealed share is at most 64 KiB', 'KW_LIMIT_EXCEEDED');
    try {
      const { plaintext } = await open(envelope, { identities: [this.identity], context: unsealContext(this.bootId, this.purpose) });
      return plaintext;
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      throw new KeyholderError('KW_SEALED_SHARE_REJECTED', `the sealed share was refused (${typeof code === 'string' ? code : 'error'}): it must be sealed to ${this.purpose === UNSEAL_PURPOSE ? 'boot' : 'rekey attempt'} ${this.bootId}'s key with context purpose=${this.purpose}, boot=${this.bootId}`, { cause: e });
    }
  }

  /** Drops the secret half (at seal or shutdown); later opens fail. */
  dispose(): void { this.identity = null; }
}

/**
 * What `keyward unseal` does on the custodian's machine: seals a share file to
 * the keyholder's published unseal recipient for boot `bootId` (and what
 * `keyward rekey submit` does, with purpose "rekey" and the attempt's id and recipient).
 */
export async function sealShareForBoot(shareFile: string | Uint8Array, recipient: string, bootId: string, purpose: SealedSharePurpose = UNSEAL_PURPOSE): Promise<Uint8Array> {
  check(/^[0-9a-f]{32}$/.test(bootId), 'boot id must be 32 lowercase hex digits');
  let r;
  try {
    r = await parseRecipient(recipient);
  } catch (e) {
    throw new KeyholderError('KW_INVALID_ARGUMENT', 'the unseal recipient is not a Keyward recipient string', { cause: e });
  }
  check(r.type === 'x25519', 'the unseal recipient must be an X25519 recipient');
  const bytes = typeof shareFile === 'string' ? utf8.encode(shareFile) : shareFile;
  return seal(bytes, { recipients: [r], context: unsealContext(bootId, purpose) });
}
