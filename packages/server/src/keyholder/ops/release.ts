/**
 * Attestation-gated key release (issue #8; docs/tee.md §Release flow).
 *
 * The keyholder's part of the flow:
 *
 * 1. `attest-nonce`: a fresh 32-byte nonce for one release from `ns/key`,
 *    held only in this keyholder's memory until it is spent or expires
 *    (default 60 s; a seal or restart drops every nonce).
 * 2. `attest-nonce-check`: the API asks whether a nonce is still good before
 *    it verifies evidence (so a replay is refused as such), and spends it when
 *    the evidence or the policy is refused.
 * 3. `attest-release`: spends the nonce (single use: the map entry changes in
 *    one synchronous step, so two concurrent releases cannot both pass), checks
 *    that the verified evidence carries the binding of *this* nonce and *this*
 *    recipient ({@link evidenceBinding}), then makes a data key, wraps it under
 *    the `aes256` version (as `datakey`) and seals it with HPKE to the
 *    recipient, with the release context ({@link releaseSealContext}) — nonce,
 *    key, version, platform, policy hash, measurements hash — bound into the
 *    HPKE `info` by core's seal.
 *
 * Binding of the workload's key into the evidence (one rule per evidence format):
 *
 *   b = "keyward/v1 attest-release\n" ‖ nonce (32 bytes) ‖ UTF-8(recipient string)
 *   aws-nitro:             document.nonce = nonce, document.public_key = UTF-8(recipient string)
 *   tpm2:                  quote extraData = SHA-256(b)
 *   amd-sev-snp/intel-*:   REPORT_DATA     = SHA-512(b)
 *
 * The keyholder verifies the evidence itself (`attest-verify`,
 * release-verify.ts: its own trust roots and clock; the TPM AK enrollment
 * it started with the nonce) and evaluates the release policy over the
 * claims it verified; the API process checks the same first, for early typed
 * refusals, but its word is not taken (docs/tee.md §Trust split).
 */
import { seal } from '@keyward/core';
import { createHash } from 'node:crypto';
import { canonicalJson } from '../canonical-json.js';
import { concat, toHex, utf8 } from '../bytes.js';
import type { KeyVersion } from '../keys.js';
import type { AttestationClaims, PendingAkEnrollment } from '@keyward/attest';
import { randomBytes, wipe } from '../primitives.js';
import { KeyholderProtocolError } from '../protocol.js';
import type { Context, VersionRef } from '../schemas.js';
import { wrap } from '../wrap.js';
import { checkContext, parseCallerRecipient } from './caller.js';
import { DATAKEY_PURPOSE, DATA_KEY_LENGTH, dataKeyAad } from './datakey.js';

/** Bytes of a release nonce. */
export const ATTEST_NONCE_LENGTH = 32;
/** Default and bounds of a nonce's lifetime. */
export const ATTEST_NONCE_TTL = { defaultSeconds: 60, minSeconds: 1, maxSeconds: 600 } as const;
/** Most nonces outstanding at once (each is 32 bytes and a few fields). */
export const MAX_OUTSTANDING_NONCES = 10_000;
/** The label of the binding value. */
export const BINDING_LABEL = 'keyward/v1 attest-release\n';

/** The evidence formats of the release flow, as the claims name them (@keyward/attest PLATFORMS). */
export const RELEASE_PLATFORMS = ['aws-nitro', 'tpm2', 'amd-sev-snp', 'intel-sgx', 'intel-tdx'] as const;
export type ReleasePlatform = (typeof RELEASE_PLATFORMS)[number];

/** `b` above. */
function bindingInput(nonce: Uint8Array, recipient: string): Uint8Array {
  return concat(utf8.encode(BINDING_LABEL), nonce, utf8.encode(recipient));
}

/**
 * What the evidence of `platform` must carry for `nonce` and `recipient`:
 * `nonce` is the value the evidence's nonce / extraData / report-data field
 * must equal; `publicKey` (Nitro only) the value of its `public_key` field.
 *
 * @example
 * const { nonce: extraData } = evidenceBinding('tpm2', serverNonce, 'kwx25519…'); // tpm2_quote -q hex(extraData)
 */
export function evidenceBinding(platform: ReleasePlatform, nonce: Uint8Array, recipient: string): { nonce: Uint8Array; publicKey?: Uint8Array } {
  if (nonce.length !== ATTEST_NONCE_LENGTH) throw new KeyholderProtocolError('KW_INVALID_ARGUMENT', `a release nonce is ${ATTEST_NONCE_LENGTH} bytes`);
  switch (platform) {
    case 'aws-nitro':
      return { nonce: Uint8Array.from(nonce), publicKey: utf8.encode(recipient) };
    case 'tpm2':
      return { nonce: new Uint8Array(createHash('sha256').update(bindingInput(nonce, recipient)).digest()) };
    default:
      return { nonce: new Uint8Array(createHash('sha512').update(bindingInput(nonce, recipient)).digest()) };
  }
}

/** SHA-256 (hex) of the canonical JSON of the measurements (name → lower-case hex). */
export function measurementsHash(measurements: Readonly<Record<string, string>>): string {
  return toHex(new Uint8Array(createHash('sha256').update(canonicalJson(measurements)).digest()));
}

/** The context the released data key is sealed with (core binds it into HPKE info and the header MAC). */
export function releaseSealContext(f: { nonce: Uint8Array; ref: Pick<VersionRef, 'ns' | 'key' | 'version'>; platform: ReleasePlatform; policyHash: string; measurementsHash: string }, context: Context): Record<string, string> {
  return {
    kw_attest_nonce: toHex(f.nonce),
    kw_key: `${f.ref.ns}/${f.ref.key}`,
    kw_version: String(f.ref.version),
    kw_platform: f.platform,
    kw_policy: f.policyHash,
    kw_measurements: f.measurementsHash,
    ...context,
  };
}

/** What the keyholder keeps with an outstanding nonce (release-verify.ts): the TPM AK enrollment it started, then the claims it verified. */
export interface NonceSlot {
  tpm?: PendingAkEnrollment | undefined;
  verified?: { readonly recipient: string; readonly platform: ReleasePlatform; readonly claims: AttestationClaims } | undefined;
}

interface Outstanding {
  readonly ns: string;
  readonly key: string;
  readonly expiresAt: number;
  readonly slot: NonceSlot;
}

/**
 * The keyholder's outstanding release nonces. Memory only; single use.
 *
 * @example
 * const n = nonces.issue('billing', 'orders', 60);
 * nonces.spend(n.nonce, 'billing', 'orders'); // throws KW_ATTEST_NONCE_USED the second time
 */
export class AttestNonces {
  readonly #live = new Map<string, Outstanding>();
  /** nonce hex → why it no longer works (kept until its expiry passes, so a replay is named as one). */
  readonly #gone = new Map<string, { why: 'used' | 'expired'; until: number }>();
  readonly #now: () => number;

  constructor(opts: { now?: () => number } = {}) {
    this.#now = opts.now ?? Date.now;
  }

  issue(ns: string, key: string, ttlSeconds: number = ATTEST_NONCE_TTL.defaultSeconds, slot: NonceSlot = {}): { nonce: Uint8Array; expiresAt: string } {
    if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < ATTEST_NONCE_TTL.minSeconds || ttlSeconds > ATTEST_NONCE_TTL.maxSeconds) {
      throw new KeyholderProtocolError('KW_INVALID_ARGUMENT', `a release nonce lives ${ATTEST_NONCE_TTL.minSeconds} to ${ATTEST_NONCE_TTL.maxSeconds} s`);
    }
    this.#expire();
    if (this.#live.size >= MAX_OUTSTANDING_NONCES) throw new KeyholderProtocolError('KW_LIMIT_EXCEEDED', `${MAX_OUTSTANDING_NONCES} release nonces are outstanding`);
    const nonce = randomBytes(ATTEST_NONCE_LENGTH);
    const expiresAt = this.#now() + ttlSeconds * 1000;
    this.#live.set(toHex(nonce), { ns, key, expiresAt, slot });
    return { nonce, expiresAt: new Date(expiresAt).toISOString() };
  }

  /** Throws the nonce's refusal unless it is outstanding for `ns/key`; with `spend`, spends it (in the same synchronous step). */
  check(nonce: Uint8Array, ns: string, key: string, spend: boolean): { expiresAt: string; slot: NonceSlot } {
    const id = toHex(nonce);
    const now = this.#now();
    const live = this.#live.get(id);
    if (live === undefined) {
      const gone = this.#gone.get(id);
      if (gone?.why === 'used') throw new KeyholderProtocolError('KW_ATTEST_NONCE_USED');
      if (gone?.why === 'expired') throw new KeyholderProtocolError('KW_ATTEST_NONCE_EXPIRED');
      throw new KeyholderProtocolError('KW_ATTEST_NONCE_UNKNOWN');
    }
    // A nonce issued for another key is not this key's: refused, and left as it was.
    if (live.ns !== ns || live.key !== key) throw new KeyholderProtocolError('KW_ATTEST_NONCE_UNKNOWN', 'the nonce was issued for another key');
    if (now >= live.expiresAt) {
      this.#live.delete(id);
      this.#gone.set(id, { why: 'expired', until: now + ATTEST_NONCE_TTL.maxSeconds * 1000 });
      throw new KeyholderProtocolError('KW_ATTEST_NONCE_EXPIRED');
    }
    if (spend) {
      this.#live.delete(id);
      this.#gone.set(id, { why: 'used', until: live.expiresAt + ATTEST_NONCE_TTL.maxSeconds * 1000 });
    }
    return { expiresAt: new Date(live.expiresAt).toISOString(), slot: live.slot };
  }

  clear(): void {
    this.#live.clear();
    this.#gone.clear();
  }

  #expire(): void {
    const now = this.#now();
    for (const [id, n] of this.#live) {
      if (now >= n.expiresAt) {
        this.#live.delete(id);
        this.#gone.set(id, { why: 'expired', until: now + ATTEST_NONCE_TTL.maxSeconds * 1000 });
      }
    }
    for (const [id, g] of this.#gone) if (now >= g.until) this.#gone.delete(id);
    // Bound the memory of spent nonces too.
    while (this.#gone.size > MAX_OUTSTANDING_NONCES * 4) this.#gone.delete(this.#gone.keys().next().value!);
  }
}

export interface ReleaseParams {
  /** An `aes256` version. */
  readonly version: KeyVersion;
  readonly nonce: Uint8Array;
  readonly recipient: string;
  readonly platform: ReleasePlatform;
  /** SHA-256 (hex) of the release policy the keyholder evaluated. */
  readonly policyHash: string;
  /** The measurements the keyholder verified (name → lower-case hex). */
  readonly measurements: Readonly<Record<string, string>>;
  /** The caller's encryption context of the wrapped data key. */
  readonly context?: Context | undefined;
}

/**
 * Makes, wraps and seals a data key. The nonce must already be spent, and the
 * evidence verified by the keyholder for this nonce and recipient
 * (release-verify.ts checks the binding).
 */
export async function releaseDataKey(p: ReleaseParams): Promise<{ ref: VersionRef; wrapped: Uint8Array; sealed: Uint8Array; measurementsHash: string }> {
  const kek = p.version.secretKey('aes256');
  const context = checkContext(p.context);
  const recipient = await parseCallerRecipient(p.recipient);
  if (!/^[0-9a-f]{64}$/.test(p.policyHash)) throw new KeyholderProtocolError('KW_INVALID_ARGUMENT', 'the policy hash is 64 lower-case hex digits');
  const mHash = measurementsHash(p.measurements);
  const ref = p.version.ref;
  const dataKey = randomBytes(DATA_KEY_LENGTH);
  try {
    const wrapped = wrap(kek, DATAKEY_PURPOSE, dataKeyAad(ref, context), dataKey);
    const sealed = await seal(dataKey, { recipients: [recipient], context: releaseSealContext({ nonce: p.nonce, ref, platform: p.platform, policyHash: p.policyHash, measurementsHash: mHash }, context) });
    return { ref, wrapped, sealed, measurementsHash: mHash };
  } finally {
    wipe(dataKey);
  }
}
