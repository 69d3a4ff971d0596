/**
 * Shape of the published envelope vectors in test/vectors/ (written by
 * scripts/gen-vectors.ts, read by vectors.test.ts). Byte strings are
 * lowercase hex; key strings are the library's Bech32 key strings.
 */
import { dearmor } from '../../src/armor.js';
import { fromHex } from '../../src/bytes.js';
import type { KeywardErrorCode } from '../../src/errors.js';
import type { OpenOptions } from '../../src/format/session.js';
import { parseIdentity, parseVerifyingKey } from '../../src/identities.js';
import type { Identity } from '../../src/recipients/types.js';
import { PassphraseIdentity } from '../../src/recipients/scrypt.js';

export interface VectorBase {
  readonly name: string;
  readonly description: string;
  /** Secret identity strings (KWSECRET…) the opener holds, tried in order. */
  readonly identities?: readonly string[];
  /** Instead of identities: the passphrase (readers NFC-normalize it before use). */
  readonly passphrase?: string;
  /** Verifying key strings (kwed25519…): when present, a valid signature by one of them is required. */
  readonly verify?: readonly string[];
  /** The encryption context the opener requires (absent = the empty context). */
  readonly context?: readonly (readonly [string, string])[];
  /** The opener explicitly skips the context check. */
  readonly any_context?: boolean;
  /** The opener's bound on anonymous trial decryptions (absent = the default, 64). */
  readonly max_anonymous_trials?: number;
  /** The binary envelope … */
  readonly envelope_hex?: string;
  /** … or its armored text form. */
  readonly armored?: string;
}

export interface PositiveVector extends VectorBase {
  /** The plaintext, for small vectors … */
  readonly plaintext_hex?: string;
  /** … or, for large ones, its length, the pattern that generates it and its SHA-256. */
  readonly plaintext_length?: number;
  readonly plaintext_pattern?: string;
  readonly plaintext_sha256?: string;
  /** What the open reports besides the plaintext. */
  readonly expected: {
    readonly aead: string;
    readonly opened_by: string;
    readonly chunk_count: number;
    readonly signature: { readonly alg: string; readonly key_id: string; readonly verified: boolean } | null;
  };
}

export interface NegativeVector extends VectorBase {
  /** The exact KeywardError code opening must fail with. */
  readonly expected_error: KeywardErrorCode;
}

export interface VectorFile<V extends VectorBase> {
  readonly format: 'keyward envelope';
  readonly version: 1;
  readonly kind: 'positive' | 'negative';
  readonly generator: string;
  readonly notes: readonly string[];
  readonly vectors: readonly V[];
}

export const VECTOR_FILES = {
  positive: 'envelope-v1-positive.json',
  negative: 'envelope-v1-negative.json',
} as const;

// ---------------------------------------------------------------------------
// Reading a vector (shared by the generator's self-check and vectors.test.ts)

/** The open options a vector prescribes. */
export async function vectorOpenOptions(v: VectorBase): Promise<OpenOptions> {
  const identities: Identity[] = await Promise.all((v.identities ?? []).map((s) => parseIdentity(s)));
  if (v.passphrase !== undefined) identities.push(new PassphraseIdentity(v.passphrase));
  return {
    identities,
    ...(v.verify ? { verify: v.verify.map((s) => parseVerifyingKey(s)) } : {}),
    ...(v.context ? { context: v.context } : {}),
    ...(v.any_context ? { anyContext: true } : {}),
    ...(v.max_anonymous_trials !== undefined ? { maxAnonymousTrials: v.max_anonymous_trials } : {}),
  };
}

/** The binary envelope of a vector (armored vectors are de-armored). */
export function vectorEnvelope(v: VectorBase): Uint8Array {
  if (v.armored !== undefined) return dearmor(v.armored);
  if (v.envelope_hex === undefined) throw new Error(`vector ${v.name} has no envelope`);
  return fromHex(v.envelope_hex);
}
