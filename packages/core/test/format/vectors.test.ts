/**
 * The published envelope vectors (test/vectors/envelope-v1-*.json, made by
 * scripts/gen-vectors.ts): one test per vector. Positive vectors must open to
 * their plaintext through every reading API — open(), createOpenStream fed in
 * random pieces, EnvelopeReader chunk by chunk — and inspect() must parse
 * them; negative vectors must fail with exactly their expected error code,
 * through open() and through the stream API.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { concat, toHex, utf8 } from '../../src/bytes.js';
import { CHUNK_SIZE } from '../../src/format/constants.js';
import { EnvelopeReader } from '../../src/random-access.js';
import { inspect } from '../../src/inspect.js';
import { open } from '../../src/seal.js';
import { patternBytes, prng, randomPieces, seedOf, sha256Hex } from './craft.js';
import { openStream, outcome } from './helpers.js';
import {
  VECTOR_FILES, vectorEnvelope, vectorOpenOptions,
  type NegativeVector, type PositiveVector, type VectorBase, type VectorFile,
} from './vector-schema.js';

const DIR = new URL('../vectors/', import.meta.url);
function load<V extends VectorBase>(kind: 'positive' | 'negative'): VectorFile<V> {
  const f = JSON.parse(readFileSync(new URL(VECTOR_FILES[kind], DIR), 'utf8')) as VectorFile<V>;
  assert.equal(f.format, 'keyward envelope');
  assert.equal(f.version, 1);
  assert.equal(f.kind, kind);
  return f;
}

const positives = load<PositiveVector>('positive').vectors;
const negatives = load<NegativeVector>('negative').vectors;

/** Coverage the vector files must keep (regenerating must not silently drop a case). */
const REQUIRED_POSITIVE = [
  'x25519', 'xwing', 'p256', 'multiple-recipients', 'anonymous', 'passphrase', 'context', 'chacha20-poly1305',
  'signed-ed25519', 'signed-hybrid', 'size-0', 'size-1', 'size-65535', 'size-65536', 'size-65537', 'size-131077',
  'armored', 'unknown-stanza-type-first', 'context-leading-bom', 'kms-stanza-skipped',
];
const REQUIRED_NEGATIVE = [
  'stanza-transplanted', 'signature-stripped', 'signature-replaced-other-key', 'signature-bit-flipped', 'signer-key-id-swapped',
  'scrypt-not-alone', 'invisible-salamander', 'chunks-reordered', 'chunk-duplicated', 'truncated-at-chunk-boundary',
  'trailing-whole-chunk', 'trailing-bytes', 'header-mac-bit-flipped', 'payload-bit-flipped', 'wrong-identity',
  'context-mismatch', 'bad-magic', 'unknown-version', 'header-len-over-limit', 'scrypt-work-factor-23', 'too-many-anonymous-trials',
  'signed-truncated-at-chunk-boundary', 'empty-final-chunk-after-full-chunk', 'context-rebound-remaced', 'kms-only-no-client',
];

void test('vector files: names are unique and the required cases are present', () => {
  const names = [...positives, ...negatives].map((v) => v.name);
  assert.equal(new Set(names).size, names.length, 'duplicate vector names');
  for (const n of REQUIRED_POSITIVE) assert.ok(positives.some((v) => v.name === n), `missing positive vector ${n}`);
  for (const n of REQUIRED_NEGATIVE) assert.ok(negatives.some((v) => v.name === n), `missing negative vector ${n}`);
});

/** The plaintext a positive vector promises (large ones are regenerated from the pattern and checked against the hash). */
function expectedPlaintext(v: PositiveVector): Uint8Array {
  if (v.plaintext_hex !== undefined) return Buffer.from(v.plaintext_hex, 'hex');
  assert.equal(v.plaintext_pattern, 'i % 251', `${v.name}: unknown plaintext pattern`);
  const p = patternBytes(v.plaintext_length!);
  assert.equal(sha256Hex(p), v.plaintext_sha256, `${v.name}: the pattern does not hash to plaintext_sha256`);
  return p;
}

const hex = (b: Uint8Array) => toHex(b);

void describe('positive envelope vectors', () => {
  for (const v of positives) {
    void test(v.name, async () => {
      const opts = await vectorOpenOptions(v);
      const envelope = vectorEnvelope(v);
      const plaintext = expectedPlaintext(v);
      const expectedSig = v.expected.signature;

      // open(): bytes (and, for the armored vector, the text and its UTF-8 bytes too).
      const inputs: (Uint8Array | string)[] = v.armored !== undefined ? [v.armored, utf8.encode(v.armored), envelope] : [envelope];
      for (const input of inputs) {
        const r = await open(input, opts);
        assert.equal(r.plaintext.length, plaintext.length, 'plaintext length');
        assert.equal(v.plaintext_hex !== undefined ? hex(r.plaintext) : sha256Hex(r.plaintext), v.plaintext_hex ?? v.plaintext_sha256, 'plaintext');
        assert.equal(r.aead, v.expected.aead);
        assert.equal(r.openedBy, v.expected.opened_by);
        assert.deepEqual(r.signature && { alg: r.signature.alg, key_id: r.signature.keyId, verified: r.signature.verified }, expectedSig);
        if (v.context && !v.any_context) assert.deepEqual(new Map(r.context), new Map(v.context), 'context');
      }

      // createOpenStream, fed in pseudo-random pieces (reproducible per vector).
      const rand = prng(seedOf(v.name));
      for (let round = 0; round < 2; round++) {
        const { plaintext: streamed, info } = await openStream(randomPieces(envelope, rand), opts);
        assert.ok(Buffer.from(streamed).equals(plaintext), 'stream plaintext');
        assert.equal(info.openedBy, v.expected.opened_by);
        assert.equal(info.signature?.verified ?? null, expectedSig?.verified ?? null, 'stream signature');
      }

      // EnvelopeReader: every chunk by random access.
      const reader = await EnvelopeReader.open(envelope, opts);
      assert.equal(reader.chunkCount, v.expected.chunk_count, 'chunk count');
      assert.equal(reader.plaintextSize, plaintext.length, 'plaintext size');
      const chunks: Uint8Array[] = [];
      for (let k = 0; k < reader.chunkCount; k++) {
        const c = await reader.readChunk(k);
        assert.equal(c.signature, expectedSig ? 'unverified' : 'none', 'random access never claims a verified signature');
        assert.ok(Buffer.from(c.data).equals(plaintext.subarray(k * CHUNK_SIZE, (k + 1) * CHUNK_SIZE)), `chunk ${k}`);
        chunks.push(c.data);
      }
      assert.ok(Buffer.from(concat(...chunks)).equals(plaintext), 'all chunks');

      // inspect(): parses without keys and describes the envelope.
      const d = inspect(v.armored ?? envelope);
      assert.equal(d.format, 'keyward');
      assert.equal(d.version, 1);
      assert.equal(d.aead, v.expected.aead);
      assert.equal(d.chunkCount, v.expected.chunk_count);
      assert.equal(d.plaintextLength, plaintext.length);
      assert.deepEqual(d.signature, expectedSig && { alg: expectedSig.alg, keyId: expectedSig.key_id });
      assert.ok(d.stanzas.some((s) => s.type === v.expected.opened_by), 'the stanza type that opened is listed');
      assert.equal(d.headerLength + d.payloadLength + (expectedSig ? (expectedSig.alg === 'ed25519' ? 64 : 3373) : 0), envelope.length);
    });
  }
});

void describe('negative envelope vectors', () => {
  for (const v of negatives) {
    void test(v.name, async () => {
      const opts = await vectorOpenOptions(v);
      assert.equal(await outcome(() => open(v.armored ?? Buffer.from(v.envelope_hex!, 'hex'), opts)), v.expected_error, 'open()');
      if (v.armored !== undefined) return; // the stream API reads binary envelopes
      const envelope = vectorEnvelope(v);
      const rand = prng(seedOf(v.name));
      for (let round = 0; round < 2; round++) {
        const pieces = randomPieces(envelope, rand);
        assert.equal(await outcome(() => openStream(pieces, opts)), v.expected_error, `stream in ${pieces.length} pieces`);
      }
    });
  }
});
