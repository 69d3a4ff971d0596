/**
 * Helpers of the format tests: error-code assertions, the stream APIs driven
 * with arbitrary piece sizes, reproducible plaintexts, and a cache of test
 * keys (X-Wing and ML-DSA key generation are the slow ones: made once per file).
 */
import assert from 'node:assert/strict';
import { concat } from '../../src/bytes.js';
import { isKeywardError, type KeywardErrorCode } from '../../src/errors.js';
import type { EnvelopeInfo, OpenOptions, SealOptions } from '../../src/format/session.js';
import { HpkeIdentity, type HpkeRecipient } from '../../src/recipients/hpke.js';
import { PassphraseIdentity, PassphraseRecipient } from '../../src/recipients/scrypt.js';
import { SigningKey } from '../../src/keys/signing.js';
import { createOpenStream, createSealStream } from '../../src/stream.js';
import { prng } from './craft.js';

/** Scrypt work factor of every test (the minimum the format allows). */
export const TEST_LOGN = 10;

/** What a call ended with: 'ok', a KeywardError code, or a description of any other throw. */
export async function outcome(f: () => Promise<unknown>): Promise<string> {
  try {
    await f();
    return 'ok';
  } catch (e) {
    return isKeywardError(e) ? e.code : `non-KeywardError: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`;
  }
}

/** Asserts that `f` throws a KeywardError with exactly `code`. */
export async function rejectsWith(f: () => Promise<unknown>, code: KeywardErrorCode, what = ''): Promise<void> {
  assert.equal(await outcome(f), code, what);
}

/** Synchronous variant of `outcome`. */
export function outcomeSync(f: () => unknown): string {
  try {
    f();
    return 'ok';
  } catch (e) {
    return isKeywardError(e) ? e.code : `non-KeywardError: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`;
  }
}

/** Asserts that `f` throws a KeywardError with exactly `code`. */
export function throwsWith(f: () => unknown, code: KeywardErrorCode, what = ''): void {
  assert.equal(outcomeSync(f), code, what);
}

/** Asserts that `f` throws, and only a KeywardError. */
export async function rejectsWithKeywardError(f: () => Promise<unknown>, what = ''): Promise<string> {
  const o = await outcome(f);
  assert.notEqual(o, 'ok', `${what}: expected a KeywardError, but it succeeded`);
  assert.ok(!o.startsWith('non-KeywardError'), `${what}: ${o}`);
  return o;
}

/** A readable stream that yields `pieces` one by one. */
function source(pieces: readonly Uint8Array[]): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      const next = pieces[i++];
      if (next) c.enqueue(next);
      else c.close();
    },
  });
}

async function drain(readable: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const reader = readable.getReader();
  const out: Uint8Array[] = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return concat(...out);
    out.push(value);
  }
}

/** Opens an envelope given as `pieces` through createOpenStream. */
export async function openStream(pieces: readonly Uint8Array[], opts: OpenOptions): Promise<{ plaintext: Uint8Array; info: EnvelopeInfo }> {
  const { stream, done } = createOpenStream(opts);
  const plaintext = await drain(source(pieces).pipeThrough(stream));
  return { plaintext, info: await done };
}

/** Seals a plaintext given as `pieces` through createSealStream. */
export async function sealStream(pieces: readonly Uint8Array[], opts: SealOptions): Promise<Uint8Array> {
  return drain(source(pieces).pipeThrough(createSealStream(opts)));
}

/** Cuts `bytes` at the given (unsorted, possibly repeated) offsets. */
export function cutAt(bytes: Uint8Array, offsets: readonly number[]): Uint8Array[] {
  const points = [...new Set(offsets.map((o) => Math.max(0, Math.min(bytes.length, o))))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of [...points, bytes.length]) {
    out.push(bytes.subarray(prev, p)); // empty pieces included on purpose: streams must accept them
    prev = p;
  }
  return out;
}

/** A reproducible pseudo-random plaintext. */
export function plaintextOf(size: number, seed: number): Uint8Array {
  const rand = prng(seed);
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i += 4) {
    const x = Math.floor(rand() * 2 ** 32);
    out[i] = x & 0xff;
    if (i + 1 < size) out[i + 1] = (x >>> 8) & 0xff;
    if (i + 2 < size) out[i + 2] = (x >>> 16) & 0xff;
    if (i + 3 < size) out[i + 3] = x >>> 24;
  }
  return out;
}

export type RecipientKind = 'x25519' | 'x25519-2' | 'p256' | 'xwing';
export const RECIPIENT_KINDS: readonly RecipientKind[] = ['x25519', 'x25519-2', 'p256', 'xwing'];

export interface TestKeys {
  readonly identities: Record<RecipientKind, HpkeIdentity>;
  readonly recipients: Record<RecipientKind, HpkeRecipient>;
  /** An x25519 identity no envelope is sealed to. */
  readonly stranger: HpkeIdentity;
  readonly ed25519: SigningKey;
  readonly ed25519Other: SigningKey;
  readonly hybrid: SigningKey;
  readonly passphrase: string;
  readonly passphraseRecipient: PassphraseRecipient;
  readonly passphraseIdentity: PassphraseIdentity;
}

let cached: Promise<TestKeys> | undefined;

/** Keys for the tests of one file, generated once. */
export function testKeys(): Promise<TestKeys> {
  cached ??= (async () => {
    const identities = {
      x25519: await HpkeIdentity.generate('x25519'),
      'x25519-2': await HpkeIdentity.generate('x25519'),
      p256: await HpkeIdentity.generate('p256'),
      xwing: await HpkeIdentity.generate('xwing'),
    };
    const recipients = {
      x25519: await identities.x25519.recipient(),
      'x25519-2': await identities['x25519-2'].recipient(),
      p256: await identities.p256.recipient(),
      xwing: await identities.xwing.recipient(),
    };
    const passphrase = 'test passphrase';
    return {
      identities, recipients,
      stranger: await HpkeIdentity.generate('x25519'),
      ed25519: await SigningKey.generate('ed25519'),
      ed25519Other: await SigningKey.generate('ed25519'),
      hybrid: await SigningKey.generate('ed25519-mldsa65'),
      passphrase,
      passphraseRecipient: new PassphraseRecipient(passphrase, TEST_LOGN),
      passphraseIdentity: new PassphraseIdentity(passphrase),
    };
  })();
  return cached;
}
