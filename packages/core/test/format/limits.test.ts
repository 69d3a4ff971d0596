/**
 * Hard limits and misuse guards: scrypt must be alone (when sealing), the
 * chunk counter's 2^32 bound, stanza/field/header/context limits on both the
 * encoding and the parsing side, and argument checks.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { concat, toHex, u16be, u32be, utf8 } from '../../src/bytes.js';
import { EnvelopeDecoder, EnvelopeEncoder } from '../../src/format/codec.js';
import { LIMITS, MAC_LENGTH, SCRYPT } from '../../src/format/constants.js';
import { encodeHeader, headerLengthFromPreamble, parseHeader, type HeaderFields, type Stanza } from '../../src/format/header.js';
import { ChunkSealer, chunkNonce } from '../../src/format/payload.js';
import { EnvelopeReader } from '../../src/random-access.js';
import { PassphraseIdentity, PassphraseRecipient } from '../../src/recipients/scrypt.js';
import type { Recipient } from '../../src/recipients/types.js';
import { open, seal } from '../../src/seal.js';
import { createSealStream } from '../../src/stream.js';
import { headerOffsets, patch } from './craft.js';
import { rejectsWith, sealStream, TEST_LOGN, testKeys, throwsWith } from './helpers.js';

const keys = await testKeys();
const pt = utf8.encode('limits');

void describe('scrypt must be alone (sealing)', () => {
  const pass = () => new PassphraseRecipient('pw', TEST_LOGN);
  const cases: [string, () => Recipient[]][] = [
    ['passphrase then x25519', () => [pass(), keys.recipients.x25519]],
    ['x25519 then passphrase', () => [keys.recipients.x25519, pass()]],
    ['two passphrases', () => [pass(), pass()]],
    ['passphrase and xwing and p256', () => [keys.recipients.xwing, pass(), keys.recipients.p256]],
  ];
  for (const [what, recipients] of cases) {
    void test(`${what}: KW_SCRYPT_NOT_ALONE from seal, EnvelopeEncoder and createSealStream`, async () => {
      await rejectsWith(() => seal(pt, { recipients: recipients() }), 'KW_SCRYPT_NOT_ALONE', 'seal');
      await rejectsWith(() => EnvelopeEncoder.create({ recipients: recipients() }), 'KW_SCRYPT_NOT_ALONE', 'encoder');
      await rejectsWith(() => sealStream([pt], { recipients: recipients() }), 'KW_SCRYPT_NOT_ALONE', 'stream');
    });
  }

  void test('the check happens before any recipient wraps the data key', async () => {
    let wrapped = 0;
    const counting: Recipient = { type: 'x25519', wrap: (dk, ctx) => { wrapped++; return keys.recipients.x25519.wrap(dk, ctx); } };
    await rejectsWith(() => seal(pt, { recipients: [counting, pass()] }), 'KW_SCRYPT_NOT_ALONE');
    assert.equal(wrapped, 0);
  });

  void test('also when a recipient declares another type but writes an scrypt stanza (e.g. a wrapper)', async () => {
    const inner = pass();
    const wrapper: Recipient = { type: 'audited', wrap: (dk, ctx) => inner.wrap(dk, ctx) };
    await rejectsWith(() => seal(pt, { recipients: [wrapper, keys.recipients.x25519] }), 'KW_SCRYPT_NOT_ALONE');
    await rejectsWith(() => seal(pt, { recipients: [keys.recipients.x25519, wrapper] }), 'KW_SCRYPT_NOT_ALONE');
    const alone = await seal(pt, { recipients: [wrapper] });
    assert.deepEqual((await open(alone, { identities: [new PassphraseIdentity('pw')] })).plaintext, pt);
  });

  void test('a passphrase alone seals and opens', async () => {
    const env = await seal(pt, { recipients: [pass()] });
    assert.deepEqual((await open(env, { identities: [new PassphraseIdentity('pw')] })).plaintext, pt);
  });
});

void describe('chunk counter', () => {
  void test('nonce = 11-byte big-endian counter ‖ final flag', () => {
    assert.equal(toHex(chunkNonce(0, false)), '000000000000000000000000');
    assert.equal(toHex(chunkNonce(0, true)), '000000000000000000000001');
    assert.equal(toHex(chunkNonce(1, false)), '000000000000000000000100');
    assert.equal(toHex(chunkNonce(0x01020304, true)), '000000000000000102030401');
    assert.equal(toHex(chunkNonce(2 ** 32 - 1, true)), '00000000000000ffffffff01');
  });

  void test('counters outside [0, 2^32) are KW_COUNTER_OVERFLOW', () => {
    for (const i of [2 ** 32, 2 ** 32 + 1, 2 ** 40, Number.MAX_SAFE_INTEGER, -1, 0.5, Number.NaN, Infinity]) {
      throwsWith(() => chunkNonce(i, false), 'KW_COUNTER_OVERFLOW', String(i));
      throwsWith(() => chunkNonce(i, true), 'KW_COUNTER_OVERFLOW', String(i));
    }
    assert.equal(LIMITS.maxChunks, 2 ** 32);
  });

  void test('a chunk sealer refuses to continue after the final chunk, and refuses short non-final chunks', async () => {
    const sealer = await ChunkSealer.create('aes-256-gcm', new Uint8Array(32));
    await sealer.seal(new Uint8Array(3), true);
    await rejectsWith(() => sealer.seal(new Uint8Array(3), true), 'KW_INVALID_ARGUMENT');
    const s2 = await ChunkSealer.create('aes-256-gcm', new Uint8Array(32));
    await rejectsWith(() => s2.seal(new Uint8Array(3), false), 'KW_INTERNAL');
  });
});

/** A header for `stanzas`, with dummy salt and commitment (structure only). */
const fields = (stanzas: Stanza[], over: Partial<HeaderFields> = {}): HeaderFields => ({
  aead: 'aes-256-gcm', salt: new Uint8Array(32), context: [], signer: null, stanzas, commitment: new Uint8Array(32), ...over,
});
const withMac = (authenticated: Uint8Array) => concat(authenticated, new Uint8Array(MAC_LENGTH));
const tiny = (i: number): Stanza => ({ type: 'x', fields: [u16be(i)] });

void describe('hard limits', () => {
  void test(`at most ${LIMITS.maxStanzas} stanzas: encoding and parsing`, () => {
    const max = Array.from({ length: LIMITS.maxStanzas }, (_, i) => tiny(i));
    const h = withMac(encodeHeader(fields(max)));
    assert.equal(parseHeader(h).stanzas.length, LIMITS.maxStanzas);
    throwsWith(() => encodeHeader(fields([...max, tiny(0)])), 'KW_LIMIT_EXCEEDED', 'encode');
    // The same header claiming one more stanza: refused on the count, before reading stanzas.
    const o = headerOffsets(h);
    throwsWith(() => parseHeader(patch(h, o.stanzaCount, u16be(LIMITS.maxStanzas + 1))), 'KW_LIMIT_EXCEEDED', 'parse');
    throwsWith(() => parseHeader(patch(h, o.stanzaCount, u16be(0xffff))), 'KW_LIMIT_EXCEEDED', 'parse 65535');
  });

  void test('too many recipients is refused before any wrap', async () => {
    let wrapped = 0;
    const r: Recipient = { type: 'x', wrap: () => { wrapped++; return Promise.resolve(tiny(0)); } };
    await rejectsWith(() => seal(pt, { recipients: Array.from({ length: LIMITS.maxStanzas + 1 }, () => r) }), 'KW_LIMIT_EXCEEDED');
    assert.equal(wrapped, 0);
  });

  void test(`at most ${LIMITS.maxStanzaFields} fields per stanza, each at most 65535 bytes`, () => {
    const nine: Stanza = { type: 'x', fields: Array.from({ length: LIMITS.maxStanzaFields + 1 }, () => new Uint8Array(1)) };
    throwsWith(() => encodeHeader(fields([nine])), 'KW_LIMIT_EXCEEDED', 'encode 9 fields');
    const eight: Stanza = { type: 'x', fields: Array.from({ length: LIMITS.maxStanzaFields }, () => new Uint8Array(0)) };
    const h = withMac(encodeHeader(fields([eight])));
    assert.equal(parseHeader(h).stanzas[0]!.fields.length, 8);
    const fieldCount = headerOffsets(h).firstStanza + 2; // type_len, 'x', field_count
    throwsWith(() => parseHeader(patch(h, fieldCount, [9])), 'KW_LIMIT_EXCEEDED', 'parse 9 fields');
    throwsWith(() => encodeHeader(fields([{ type: 'x', fields: [new Uint8Array(65536)] }])), 'KW_LIMIT_EXCEEDED', 'field of 65536 bytes');
    encodeHeader(fields([{ type: 'x', fields: [new Uint8Array(65535)] }]));
  });

  void test(`header body at most ${LIMITS.maxHeaderLength} bytes: encoding, and parsing from the preamble alone`, async () => {
    const big = (n: number): Stanza => ({ type: 'x', fields: Array.from({ length: 8 }, () => new Uint8Array(n)) });
    throwsWith(() => encodeHeader(fields(Array.from({ length: 9 }, () => big(65535)))), 'KW_LIMIT_EXCEEDED', 'encode > 4 MiB');
    const pre = (n: number) => concat(utf8.encode('KWRD'), new Uint8Array([1]), u32be(n));
    throwsWith(() => headerLengthFromPreamble(pre(LIMITS.maxHeaderLength + 1)), 'KW_LIMIT_EXCEEDED');
    throwsWith(() => headerLengthFromPreamble(pre(0xffffffff)), 'KW_LIMIT_EXCEEDED');
    assert.equal(headerLengthFromPreamble(pre(LIMITS.maxHeaderLength)), 9 + LIMITS.maxHeaderLength + 32);
    // At the limit but cut short: malformed, not over the limit.
    throwsWith(() => parseHeader(pre(LIMITS.maxHeaderLength)), 'KW_MALFORMED_HEADER');
    // A streaming decoder refuses on the 9-byte preamble, without waiting for 4 MiB.
    await rejectsWith(() => new EnvelopeDecoder({ identities: [keys.identities.x25519] }).push(pre(LIMITS.maxHeaderLength + 1)), 'KW_LIMIT_EXCEEDED', 'decoder');
    await rejectsWith(() => EnvelopeReader.open(pre(LIMITS.maxHeaderLength + 1), { identities: [keys.identities.x25519] }), 'KW_LIMIT_EXCEEDED', 'reader');
  });

  void test('an envelope without stanzas, or a stanza type outside [a-z0-9._-], is KW_MALFORMED_HEADER', () => {
    const h = withMac(encodeHeader(fields([tiny(0)])));
    throwsWith(() => parseHeader(patch(h, headerOffsets(h).stanzaCount, [0, 0])), 'KW_MALFORMED_HEADER');
    for (const t of ['X', ' ', '\u00e9', '-']) {
      throwsWith(() => parseHeader(patch(h, headerOffsets(h).firstStanza + 1, [t.charCodeAt(0)])), 'KW_MALFORMED_HEADER', JSON.stringify(t));
    }
    throwsWith(() => encodeHeader(fields([{ type: 'Bad', fields: [] }])), 'KW_INVALID_ARGUMENT');
    throwsWith(() => encodeHeader(fields([{ type: 'x'.repeat(33), fields: [] }])), 'KW_INVALID_ARGUMENT');
  });

  void test('the decoder fails closed: after an error it refuses further input', async () => {
    const env = await seal(pt, { recipients: [keys.recipients.x25519] });
    const dec = new EnvelopeDecoder({ identities: [keys.stranger] });
    await rejectsWith(() => dec.push(env), 'KW_NO_IDENTITY_MATCHED');
    await rejectsWith(() => dec.push(new Uint8Array(1)), 'KW_INVALID_ARGUMENT');
    await rejectsWith(() => dec.finish(), 'KW_INVALID_ARGUMENT');
  });
});

void describe('argument checks', () => {
  void test('no recipients: KW_NO_RECIPIENTS; an unknown AEAD: KW_UNSUPPORTED', async () => {
    await rejectsWith(() => seal(pt, { recipients: [] }), 'KW_NO_RECIPIENTS');
    await rejectsWith(() => seal(pt, {}), 'KW_NO_RECIPIENTS');
    await rejectsWith(() => seal(pt, { recipients: [keys.recipients.x25519], aead: 'aes-128-gcm' as 'aes-256-gcm' }), 'KW_UNSUPPORTED');
    const s = createSealStream({ recipients: [] });
    await rejectsWith(async () => { const w = s.writable.getWriter(); await w.write(pt); await w.close(); }, 'KW_NO_RECIPIENTS');
  });

  void test(`scrypt work factors: sealing needs [${SCRYPT.minLogN}, ${SCRYPT.hardMaxLogN}]; an opener's maximum must be in that range`, () => {
    throwsWith(() => new PassphraseRecipient('pw', SCRYPT.minLogN - 1), 'KW_SCRYPT_WORK_FACTOR');
    throwsWith(() => new PassphraseRecipient('pw', SCRYPT.hardMaxLogN + 1), 'KW_SCRYPT_WORK_FACTOR');
    throwsWith(() => new PassphraseRecipient('pw', 12.5), 'KW_SCRYPT_WORK_FACTOR');
    throwsWith(() => new PassphraseRecipient(''), 'KW_INVALID_ARGUMENT');
    throwsWith(() => new PassphraseIdentity('pw', SCRYPT.hardMaxLogN + 1), 'KW_INVALID_ARGUMENT');
    throwsWith(() => new PassphraseIdentity('pw', SCRYPT.minLogN - 1), 'KW_INVALID_ARGUMENT');
  });

  void test('an opener may lower the work-factor bound: a stanza above it is KW_SCRYPT_WORK_FACTOR', async () => {
    const env = await seal(pt, { recipients: [new PassphraseRecipient('pw', TEST_LOGN + 1)] });
    await rejectsWith(() => open(env, { identities: [new PassphraseIdentity('pw', TEST_LOGN)] }), 'KW_SCRYPT_WORK_FACTOR');
    assert.deepEqual((await open(env, { identities: [new PassphraseIdentity('pw', TEST_LOGN + 1)] })).plaintext, pt);
  });

  void test('random access out of range: KW_CHUNK_OUT_OF_RANGE', async () => {
    const env = await seal(new Uint8Array(70000), { recipients: [keys.recipients.x25519] });
    const r = await EnvelopeReader.open(env, { identities: [keys.identities.x25519] });
    for (const k of [-1, 2, 1.5, Number.NaN]) await rejectsWith(() => r.readChunk(k), 'KW_CHUNK_OUT_OF_RANGE', String(k));
    await rejectsWith(() => r.read(69999, 2), 'KW_CHUNK_OUT_OF_RANGE');
    await rejectsWith(() => r.read(-1, 1), 'KW_CHUNK_OUT_OF_RANGE');
    assert.equal((await r.read(70000, 0)).data.length, 0);
  });
});
