/**
 * Property tests (fast-check) of the envelope format v1:
 *  - round trips through the bytes API, the stream API (random split points on
 *    both sides) and random access, over sizes (0, 1, 65535, 65536, 65537 and
 *    random up to 300000), contexts, payload AEADs, recipient types, anonymity
 *    and signers;
 *  - every single-bit flip is rejected with a KeywardError (exhaustively for
 *    small envelopes, at random positions for a three-chunk one);
 *  - truncation at every chunk boundary is KW_TRUNCATED, anywhere else a KeywardError;
 *  - the header parser only ever throws KeywardError on random or mutated input;
 *  - any signature bit flip fails verification, a removed signature is KW_SIGNATURE_MISSING;
 *  - random access returns the k-th 64 KiB slice, typed 'unverified' when signed.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { concat, u32be } from '../../src/bytes.js';
import { CHUNK_SIZE, MAGIC, SIG_LENGTHS, type PayloadAead } from '../../src/format/constants.js';
import { parseHeader } from '../../src/format/header.js';
import { sealedPayloadLength } from '../../src/format/payload.js';
import type { OpenOptions, SealOptions } from '../../src/format/session.js';
import { inspect } from '../../src/inspect.js';
import type { SigningKey } from '../../src/keys/signing.js';
import { EnvelopeReader } from '../../src/random-access.js';
import type { Identity, Recipient } from '../../src/recipients/types.js';
import { open, seal } from '../../src/seal.js';
import { flipBit, randomBytes, splitEnvelope } from './craft.js';
import {
  cutAt, openStream, outcome, outcomeSync, plaintextOf, rejectsWith, rejectsWithKeywardError, RECIPIENT_KINDS, sealStream, testKeys,
  type RecipientKind,
} from './helpers.js';

const keys = await testKeys();
/**
 * Runs are reproducible (fixed seed) by default. KW_PROPERTY_SCALE=n multiplies
 * the number of runs and draws a fresh seed, for deeper local searches;
 * fast-check prints the seed and path of any counterexample.
 */
const SCALE = Number(process.env.KW_PROPERTY_SCALE ?? '1') || 1;
const opts = (numRuns: number) => (SCALE === 1 ? { numRuns, seed: 0x4b575244 } : { numRuns: Math.ceil(numRuns * SCALE) });

// ---------------------------------------------------------------------------
// Arbitraries

const sizeArb = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(0, 1, 65535, 65536, 65537) },
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 300_000 }) },
);
const contextArb = fc.uniqueArray(
  fc.tuple(fc.string({ unit: 'binary', minLength: 1, maxLength: 10 }), fc.string({ unit: 'binary', maxLength: 16 })),
  { selector: (p) => p[0], maxLength: 4 },
);
const aeadArb = fc.constantFrom<PayloadAead>('aes-256-gcm', 'chacha20-poly1305');
type SignerKind = 'ed25519' | 'hybrid' | null;
const signerArb = fc.constantFrom<SignerKind>(null, null, 'ed25519', 'hybrid');

interface Setup {
  readonly passphrase: boolean;
  readonly kinds: readonly RecipientKind[];
  readonly opener: number;
  readonly anonymous: boolean;
  readonly signer: SignerKind;
}
const setupArb: fc.Arbitrary<Setup> = fc.record({
  passphrase: fc.nat({ max: 5 }).map((n) => n === 0), // a passphrase-only envelope in ~1/6 of the cases
  kinds: fc.shuffledSubarray([...RECIPIENT_KINDS], { minLength: 1 }),
  opener: fc.nat(),
  anonymous: fc.boolean(),
  signer: signerArb,
});

function signerOf(kind: SignerKind): SigningKey | undefined {
  return kind === 'ed25519' ? keys.ed25519 : kind === 'hybrid' ? keys.hybrid : undefined;
}

/** Seal and open options for a setup; the opener also holds a non-matching identity, tried first. */
function build(s: Setup): { seal: SealOptions; open: OpenOptions; openedBy: string } {
  const signer = signerOf(s.signer);
  const verify = signer ? { verify: [keys.ed25519Other.verifyingKey, signer.verifyingKey] } : {};
  if (s.passphrase) {
    return {
      seal: { recipients: [keys.passphraseRecipient], ...(signer ? { signer } : {}) },
      open: { identities: [keys.stranger, keys.passphraseIdentity], ...verify },
      openedBy: 'scrypt',
    };
  }
  const recipients: Recipient[] = s.kinds.map((k) => keys.recipients[k]);
  const openerKind = s.kinds[s.opener % s.kinds.length]!;
  const identities: Identity[] = [keys.stranger, keys.identities[openerKind]];
  return {
    seal: { recipients, anonymous: s.anonymous, ...(signer ? { signer } : {}) },
    open: { identities, ...verify },
    openedBy: keys.identities[openerKind].type,
  };
}

const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && Buffer.from(a).equals(b);

// ---------------------------------------------------------------------------

void describe('round trips', () => {
  void test('bytes API: open(seal(pt)) = pt for random sizes, contexts, AEADs, recipients and signers', async () => {
    await fc.assert(fc.asyncProperty(sizeArb, fc.integer(), contextArb, aeadArb, setupArb, async (size, seed, context, aead, s) => {
      const pt = plaintextOf(size, seed);
      const b = build(s);
      const env = await seal(pt, { ...b.seal, context, aead });
      const sigLen = s.signer ? SIG_LENGTHS[signerOf(s.signer)!.alg] : 0;
      assert.equal(env.length, parseHeader(env).length + sealedPayloadLength(size) + sigLen, 'envelope length');
      // The opener may list the context pairs in any order.
      const r = await open(env, { ...b.open, context: [...context].reverse() });
      assert.ok(same(r.plaintext, pt), 'plaintext');
      assert.equal(r.aead, aead);
      assert.equal(r.openedBy, b.openedBy);
      assert.deepEqual(r.context, context);
      assert.equal(r.signature?.verified ?? null, s.signer ? true : null);
    }), opts(60));
  });

  void test('stream API: random split points on both sides; interoperates with the bytes API', async () => {
    const splits = fc.array(fc.nat(), { maxLength: 8 });
    await fc.assert(fc.asyncProperty(sizeArb, fc.integer(), contextArb, aeadArb, setupArb, splits, splits,
      async (size, seed, context, aead, s, ptCuts, envCuts) => {
        const pt = plaintextOf(size, seed);
        const b = build(s);
        const env = await sealStream(cutAt(pt, ptCuts.map((c) => c % (size + 1))), { ...b.seal, context, aead });
        assert.ok(same((await open(env, { ...b.open, context })).plaintext, pt), 'bytes API opens a streamed envelope');
        const { plaintext, info } = await openStream(cutAt(env, envCuts.map((c) => c % (env.length + 1))), { ...b.open, context });
        assert.ok(same(plaintext, pt), 'stream plaintext');
        assert.equal(info.openedBy, b.openedBy);
        assert.equal(info.signature?.verified ?? null, s.signer ? true : null);
        const bytesSealed = await seal(pt, { ...b.seal, context, aead });
        assert.ok(same((await openStream([bytesSealed], { ...b.open, context })).plaintext, pt), 'stream API opens a bytes-API envelope');
      }), opts(40));
  });

  void test('random access: readChunk(k) is the k-th 64 KiB slice, read(pos, len) the byte range; signed data is typed unverified', async () => {
    const ranges = fc.array(fc.tuple(fc.nat(), fc.nat()), { minLength: 1, maxLength: 5 });
    await fc.assert(fc.asyncProperty(sizeArb, fc.integer(), aeadArb, setupArb, ranges, async (size, seed, aead, s, rs) => {
      const pt = plaintextOf(size, seed);
      const b = build(s);
      const env = await seal(pt, { ...b.seal, aead });
      const reader = await EnvelopeReader.open(env, b.open);
      const typed = s.signer ? 'unverified' : 'none';
      assert.equal(reader.chunkCount, Math.max(1, Math.ceil(size / CHUNK_SIZE)));
      assert.equal(reader.plaintextSize, size);
      for (let k = reader.chunkCount - 1; k >= 0; k--) { // backwards: no dependence on reading order
        const c = await reader.readChunk(k);
        assert.ok(same(c.data, pt.subarray(k * CHUNK_SIZE, (k + 1) * CHUNK_SIZE)), `chunk ${k}`);
        assert.equal(c.signature, typed);
      }
      for (const [a, l] of rs) {
        const pos = a % (size + 1), len = l % (size - pos + 1);
        const r = await reader.read(pos, len);
        assert.ok(same(r.data, pt.subarray(pos, pos + len)), `read(${pos}, ${len})`);
        assert.equal(r.signature, typed);
      }
      await rejectsWith(() => reader.readChunk(reader.chunkCount), 'KW_CHUNK_OUT_OF_RANGE');
    }), opts(40));
  });
});

// ---------------------------------------------------------------------------

void describe('single-bit flips', () => {
  void test('every bit of a small unsigned envelope (~340 bytes), exhaustively', async () => {
    const env = await seal(plaintextOf(60, 7), { recipients: [keys.recipients.x25519], context: [['k', 'v']] });
    assert.ok(env.length >= 250 && env.length <= 400, `envelope of ${env.length} bytes`);
    const o: OpenOptions = { identities: [keys.identities.x25519], context: [['k', 'v']] };
    assert.equal(await outcome(() => open(env, o)), 'ok');
    const bad: string[] = [];
    for (let bit = 0; bit < env.length * 8; bit++) {
      const r = await outcome(() => open(flipBit(env, bit), o));
      if (r === 'ok' || r.startsWith('non-KeywardError')) bad.push(`bit ${bit}: ${r}`);
    }
    assert.deepEqual(bad, []);
  });

  void test('every bit of a small signed envelope (Ed25519, verify required), exhaustively', async () => {
    const env = await seal(plaintextOf(20, 8), { recipients: [keys.recipients.x25519], signer: keys.ed25519 });
    const o: OpenOptions = { identities: [keys.identities.x25519], verify: [keys.ed25519.verifyingKey] };
    const bad: string[] = [];
    for (let bit = 0; bit < env.length * 8; bit++) {
      const r = await outcome(() => open(flipBit(env, bit), o));
      if (r === 'ok' || r.startsWith('non-KeywardError')) bad.push(`bit ${bit}: ${r}`);
    }
    assert.deepEqual(bad, []);
  });

  void test('random bits of a three-chunk envelope (header bits favoured), through open() and the stream API', async () => {
    const env = await seal(plaintextOf(2 * CHUNK_SIZE + 777, 9), {
      recipients: [keys.recipients.p256, keys.recipients.x25519], context: { app: 'props' }, aead: 'chacha20-poly1305',
    });
    const headerBits = parseHeader(env).length * 8;
    const o: OpenOptions = { identities: [keys.identities.x25519], context: { app: 'props' } };
    const bit = fc.oneof(fc.integer({ min: 0, max: headerBits - 1 }), fc.integer({ min: 0, max: env.length * 8 - 1 }), fc.constantFrom(env.length * 8 - 1));
    await fc.assert(fc.asyncProperty(bit, fc.array(fc.nat(), { maxLength: 4 }), async (b, cuts) => {
      const flipped = flipBit(env, b);
      const a = await rejectsWithKeywardError(() => open(flipped, o), `bit ${b}`);
      assert.equal(await outcome(() => openStream(cutAt(flipped, cuts.map((c) => c % flipped.length)), o)), a, 'the stream fails alike');
      if (b >= headerBits) assert.equal(a, 'KW_PAYLOAD_AUTH_FAILED');
    }), opts(250));
  });

  void test('random bits of a passphrase envelope', async () => {
    const env = await seal(plaintextOf(40, 10), { recipients: [keys.passphraseRecipient] });
    const o: OpenOptions = { identities: [keys.passphraseIdentity] };
    await fc.assert(fc.asyncProperty(fc.integer({ min: 0, max: env.length * 8 - 1 }), async (b) => {
      await rejectsWithKeywardError(() => open(flipBit(env, b), o), `bit ${b}`);
    }), opts(60));
  });
});

// ---------------------------------------------------------------------------

void describe('truncation', () => {
  const size = 2 * CHUNK_SIZE + 1000; // three chunks
  for (const signer of [null, 'ed25519', 'hybrid'] as const) {
    void test(`at every chunk boundary is KW_TRUNCATED (${signer ?? 'unsigned'}), through open(), the stream API and random access`, async () => {
      const sk = signerOf(signer);
      const env = await seal(plaintextOf(size, 11), { recipients: [keys.recipients.x25519], ...(sk ? { signer: sk } : {}) });
      const { header, chunks } = splitEnvelope(env);
      assert.equal(chunks.length, 3);
      for (const o of [{ identities: [keys.identities.x25519] }, ...(sk ? [{ identities: [keys.identities.x25519], verify: [sk.verifyingKey] }] : [])]) {
        for (let k = 0; k < chunks.length; k++) {
          const cut = concat(header, ...chunks.slice(0, k));
          await rejectsWith(() => open(cut, o), 'KW_TRUNCATED', `after ${k} chunks`);
          await rejectsWith(() => openStream(cutAt(cut, [header.length + 5, 1000]), o), 'KW_TRUNCATED', `stream, after ${k} chunks`);
          if (k > 0) {
            const reader = await EnvelopeReader.open(cut, o);
            await rejectsWithKeywardError(() => reader.readChunk(reader.chunkCount - 1), 'random access: the last chunk of a cut envelope');
          }
        }
      }
    });
  }

  void test('at random points: a KeywardError (KW_MALFORMED_HEADER inside the header); random access never reads a final chunk', async () => {
    const unsigned = await seal(plaintextOf(size, 12), { recipients: [keys.recipients.x25519] });
    const signed = await seal(plaintextOf(size, 13), { recipients: [keys.recipients.x25519], signer: keys.ed25519 });
    const o: OpenOptions = { identities: [keys.identities.x25519] };
    await fc.assert(fc.asyncProperty(fc.boolean(), fc.double({ min: 0, max: 1, noNaN: true }), fc.boolean(), async (isSigned, frac, inHeader) => {
      const env = isSigned ? signed : unsigned;
      const hl = parseHeader(env).length;
      const cut = inHeader ? Math.floor(frac * hl) : hl + Math.floor(frac * (env.length - hl - 1)) + 1;
      const t = env.subarray(0, Math.min(cut, env.length - 1));
      const withVerify = isSigned ? { ...o, verify: [keys.ed25519.verifyingKey] } : o;
      const code = await rejectsWithKeywardError(() => open(t, withVerify), `cut at ${t.length}`);
      if (t.length < hl) assert.equal(code, 'KW_MALFORMED_HEADER');
      const r = await outcome(async () => {
        const reader = await EnvelopeReader.open(t, o);
        await reader.readChunk(reader.chunkCount - 1);
      });
      assert.ok(r !== 'ok' && !r.startsWith('non-'), `random access of a cut envelope: ${r}`);
    }), opts(250));
  });
});

// ---------------------------------------------------------------------------

void describe('header parser fuzz', () => {
  void test('random byte strings (bare, and behind a valid preamble) only ever raise KeywardError', async () => {
    const o: OpenOptions = { identities: [keys.identities.x25519, keys.identities.p256, keys.passphraseIdentity] };
    const body = fc.uint8Array({ maxLength: 400 });
    const input = fc.oneof(
      body,
      body.map((b) => concat(MAGIC, new Uint8Array([1]), u32be(Math.max(0, b.length - 32)), b)),
      fc.tuple(body, fc.nat({ max: 2 ** 32 - 1 })).map(([b, n]) => concat(MAGIC, new Uint8Array([1]), u32be(n), b)),
    );
    await fc.assert(fc.asyncProperty(input, async (bytes) => {
      for (const r of [outcomeSync(() => parseHeader(bytes)), outcomeSync(() => inspect(bytes)), await outcome(() => open(bytes, o))]) {
        assert.ok(!r.startsWith('non-KeywardError'), r);
      }
      assert.notEqual(await outcome(() => open(bytes, o)), 'ok');
    }), opts(1500));
  });

  void test('random mutations of a valid header only ever raise KeywardError (and never open unless nothing changed)', async () => {
    const future: Recipient = {
      type: 'future-kem',
      wrap: () => Promise.resolve({ type: 'future-kem', fields: [randomBytes(5), new Uint8Array(0), randomBytes(40)] }),
    };
    const env = await seal(plaintextOf(100, 14), {
      recipients: [future, keys.recipients.p256, keys.recipients.x25519],
      context: [['tenant', 'acme'], ['région', 'Île-de-France']],
      signer: keys.ed25519,
    });
    const hl = parseHeader(env).length;
    const o: OpenOptions = {
      identities: [keys.identities.p256, keys.identities.x25519, keys.passphraseIdentity],
      context: [['tenant', 'acme'], ['région', 'Île-de-France']],
      verify: [keys.ed25519.verifyingKey],
    };
    const mutation = fc.oneof(
      fc.record({ op: fc.constant('xor' as const), pos: fc.nat(), v: fc.integer({ min: 1, max: 255 }) }),
      fc.record({ op: fc.constant('set' as const), pos: fc.nat(), v: fc.constantFrom(0, 1, 2, 0x7f, 0x80, 0xff) }),
      fc.record({ op: fc.constant('insert' as const), pos: fc.nat(), v: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ op: fc.constant('delete' as const), pos: fc.nat(), v: fc.constant(0) }),
    );
    await fc.assert(fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 4 }), async (ms) => {
      let header = Array.from(env.subarray(0, hl));
      for (const m of ms) {
        const p = m.pos % (header.length + (m.op === 'insert' ? 1 : 0));
        if (m.op === 'xor') header[p]! ^= m.v;
        else if (m.op === 'set') header[p] = m.v;
        else if (m.op === 'insert') header.splice(p, 0, m.v);
        else header = header.filter((_, i) => i !== p);
      }
      const mutated = concat(new Uint8Array(header), env.subarray(hl));
      assert.ok(!(outcomeSync(() => parseHeader(mutated))).startsWith('non-'));
      assert.ok(!(outcomeSync(() => inspect(mutated))).startsWith('non-'));
      const r = await outcome(() => open(mutated, o));
      assert.ok(!r.startsWith('non-'), r);
      if (r === 'ok') assert.ok(same(mutated, env), 'a changed header opened');
    }), opts(1500));
  });
});

// ---------------------------------------------------------------------------

void describe('signatures', () => {
  void test('flipping any bit of an Ed25519 signature fails verification (exhaustive); without verify keys it is reported unverified', async () => {
    const env = await seal(plaintextOf(33, 15), { recipients: [keys.recipients.x25519], signer: keys.ed25519 });
    const sigStart = env.length - 64;
    const o: OpenOptions = { identities: [keys.identities.x25519], verify: [keys.ed25519.verifyingKey] };
    for (let bit = sigStart * 8; bit < env.length * 8; bit++) {
      const flipped = flipBit(env, bit);
      await rejectsWith(() => open(flipped, o), 'KW_SIGNATURE_INVALID', `bit ${bit - sigStart * 8}`);
      if (bit % 61 === 0) {
        const r = await open(flipped, { identities: [keys.identities.x25519] });
        assert.equal(r.signature?.verified, false);
      }
    }
  });

  void test('flipping any bit of a hybrid Ed25519 + ML-DSA-65 signature fails verification', async () => {
    const env = await seal(plaintextOf(33, 16), { recipients: [keys.recipients.x25519], signer: keys.hybrid });
    const sigBits = SIG_LENGTHS['ed25519-mldsa65'] * 8;
    const sigStart = (env.length - SIG_LENGTHS['ed25519-mldsa65']) * 8;
    const o: OpenOptions = { identities: [keys.identities.x25519], verify: [keys.hybrid.verifyingKey] };
    const bit = fc.oneof(fc.integer({ min: 0, max: 511 }), fc.integer({ min: 512, max: sigBits - 1 }), fc.constantFrom(0, 511, 512, sigBits - 1));
    await fc.assert(fc.asyncProperty(bit, async (b) => {
      await rejectsWith(() => open(flipBit(env, sigStart + b), o), 'KW_SIGNATURE_INVALID', `bit ${b}`);
    }), opts(80));
  });

  void test('removing the signature gives KW_SIGNATURE_MISSING, for any size and algorithm, through open() and the stream API', async () => {
    await fc.assert(fc.asyncProperty(sizeArb, fc.constantFrom<SignerKind>('ed25519', 'hybrid'), fc.array(fc.nat(), { maxLength: 4 }), async (size, kind, cuts) => {
      const sk = signerOf(kind)!;
      const env = await seal(plaintextOf(size, size), { recipients: [keys.recipients.x25519], signer: sk });
      const stripped = env.subarray(0, env.length - SIG_LENGTHS[sk.alg]);
      const o: OpenOptions = { identities: [keys.identities.x25519], verify: [sk.verifyingKey] };
      await rejectsWith(() => open(stripped, o), 'KW_SIGNATURE_MISSING', `size ${size}`);
      await rejectsWith(() => openStream(cutAt(stripped, cuts.map((c) => c % (stripped.length + 1))), o), 'KW_SIGNATURE_MISSING', `stream, size ${size}`);
    }), opts(20));
  });
});
