/**
 * Shares sealed to their custodians (as Vault seals shares to PGP keys): at
 * `keyward init`, each share file is sealed with `@keyward/core` to one
 * custodian's Keyward recipient and armored, so the shares can be handed out
 * over any channel and only each custodian's identity opens theirs. The
 * context { purpose: "custody", init, index } is authenticated in the
 * envelope and checked against the share inside when opened.
 *
 * @example
 * const sealed = await splitToRecipients(init.shares, ['kwx25519…alice', 'kwxwing…bob', …]);
 * const shareText = await openCustodianShare(sealed[0].armored, aliceIdentity);
 */
import { armor, open, parseRecipient, seal, type Identity } from '@keyward/core';
import { decodeUtf8, utf8 } from './bytes.js';
import { KeyholderError, check } from './errors.js';
import { decodeShareFile } from './share-file.js';
import type { ShareFile } from './custody.js';

export const CUSTODY_PURPOSE = 'custody';
const MAX_SEALED = 256 * 1024;

export interface CustodianShare {
  readonly index: number;
  readonly recipient: string;
  /** The armored envelope (`-----BEGIN KEYWARD ENVELOPE-----`) holding the share file. */
  readonly armored: string;
}

const custodyContext = (initId: string, index: number): Record<string, string> => ({ purpose: CUSTODY_PURPOSE, init: initId, index: String(index) });

/** Seals share i to recipient i (same order, same count). Recipients are parsed before anything is sealed. */
export async function splitToRecipients(shares: readonly ShareFile[], recipients: readonly string[]): Promise<CustodianShare[]> {
  check(shares.length === recipients.length, `${shares.length} shares but ${recipients.length} recipients: give one recipient per share`);
  const parsed = await Promise.all(recipients.map(async (text, i) => {
    try {
      return await parseRecipient(text);
    } catch (e) {
      throw new KeyholderError('KW_INVALID_ARGUMENT', `recipient ${i + 1} is not a Keyward recipient string`, { cause: e });
    }
  }));
  const out: CustodianShare[] = [];
  for (const [i, s] of shares.entries()) {
    const env = await seal(utf8.encode(s.text), { recipients: [parsed[i]!], context: custodyContext(s.initId, s.index) });
    out.push({ index: s.index, recipient: recipients[i]!, armored: armor(env) });
  }
  return out;
}

/**
 * Opens a custodian's sealed share with their identity and returns the share
 * file text, after checking that the envelope's context names the same init
 * and index as the share inside. Core's errors (KW_NO_IDENTITY_MATCHED, …)
 * pass through unchanged: this runs on the custodian's machine.
 */
export async function openCustodianShare(envelope: string | Uint8Array, identity: Identity): Promise<string> {
  check(envelope.length <= MAX_SEALED, 'a sealed share is at most 256 KiB', 'KW_LIMIT_EXCEEDED');
  const { plaintext, context } = await open(envelope, { identities: [identity], anyContext: true });
  const text = decodeUtf8(plaintext, 'the share file');
  const share = decodeShareFile(text);
  const ctx = new Map(context);
  if (context.length !== 3 || ctx.get('purpose') !== CUSTODY_PURPOSE || ctx.get('init') !== share.initId || ctx.get('index') !== String(share.index)) {
    throw new KeyholderError('KW_SHARE_CORRUPTED', `the sealed share's context does not match share ${share.index} of init ${share.initId}`, { details: { index: share.index } });
  }
  return text;
}
