/**
 * The synchronous one-chunk path (src/format/small.ts) that `seal` and `open`
 * take for small messages to HPKE keys on node:crypto: when it applies, its
 * envelopes are the general path's (each opens the other's), and every damaged
 * envelope fails with the same error code through both; it steps aside for
 * everything else (signatures, passphrases, larger payloads, keys held
 * outside the library); it wipes the data key it made.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { platform } from '#platform';
import { concat } from '../../src/bytes.js';
import { CHUNK_SIZE } from '../../src/format/constants.js';
import { EnvelopeDecoder } from '../../src/format/codec.js';
import type { OpenOptions, SealOptions } from '../../src/format/session.js';
import { openSmall, sealSmall } from '../../src/format/small.js';
import { HpkeIdentity } from '../../src/recipients/hpke.js';
import type { Recipient } from '../../src/recipients/types.js';
import { open, seal } from '../../src/seal.js';
import { flipBit } from './craft.js';
import { outcome, plaintextOf, sealStream, testKeys, TEST_LOGN } from './helpers.js';
import { PassphraseRecipient } from '../../src/recipients/scrypt.js';

const keys = await testKeys();
const x = { recipients: [keys.recipients.x25519] };
const xid = { identities: [keys.identities.x25519] };

/** The general path of `open` for an envelope of at most 16 chunks (what `open` did before the small path). */
async function openGeneral(bytes: Uint8Array, opts: OpenOptions): Promise<Uint8Array> {
  const dec = new EnvelopeDecoder(opts);
  const parts = await dec.push(bytes);
  const { chunks } = await dec.finish();
  return concat(...parts, ...chunks);
}

/** The general path of `seal`: the encoder the stream API drives. */
const sealGeneral = (plaintext: Uint8Array, opts: SealOptions) => sealStream([plaintext], opts);

void describe('small path: when it applies', () => {
  void test('node:crypto has the synchronous primitives the small path needs', () => {
    assert.equal(platform.name, 'node');
    assert.ok(platform.aeadSync && platform.x25519.sync && platform.p256.sync);
  });

  void test('taken for one chunk to HPKE keys (x25519, p256, xwing), sizes 0 to 65536', () => {
    for (const kind of ['x25519', 'p256', 'xwing'] as const) {
      for (const size of [0, 1, 1024, CHUNK_SIZE - 1, CHUNK_SIZE]) {
        const env = sealSmall(plaintextOf(size, size), { recipients: [keys.recipients[kind]] });
        assert.ok(env, `${kind} ${size}`);
        assert.deepEqual(openSmall(env, { identities: [keys.identities[kind]] })?.plaintext, plaintextOf(size, size), `${kind} ${size}`);
      }
    }
  });

  void test('steps aside for more than one chunk, signatures, passphrases and keys held outside the library', async () => {
    assert.equal(sealSmall(new Uint8Array(CHUNK_SIZE + 1), x), null, 'two chunks');
    assert.equal(sealSmall(new Uint8Array(10), { ...x, signer: keys.ed25519 }), null, 'signed');
    assert.equal(sealSmall(new Uint8Array(10), { recipients: [new PassphraseRecipient(keys.passphrase, TEST_LOGN)] }), null, 'passphrase');
    assert.equal(sealSmall(new Uint8Array(10), { recipients: [] }), null, 'no recipients: the general path reports it');

    const big = await seal(new Uint8Array(CHUNK_SIZE + 1), x);
    assert.equal(openSmall(big, xid), null, 'two chunks');
    const signed = await seal(new Uint8Array(10), { ...x, signer: keys.ed25519 });
    assert.equal(openSmall(signed, xid), null, 'signed');
    assert.equal((await open(signed, xid)).signature?.alg, 'ed25519');
    const pass = await seal(new Uint8Array(10), { recipients: [keys.passphraseRecipient] });
    assert.equal(openSmall(pass, { identities: [keys.passphraseIdentity] }), null, 'passphrase identity');

    // An identity whose private key stays outside (WebCrypto-style DH callback) has no synchronous unwrap.
    const env = await seal(new Uint8Array(10), x);
    const external = await HpkeIdentity.fromDh('x25519', keys.identities.x25519.publicKey, () => Promise.resolve(null));
    assert.equal(external.unwrapSync, undefined);
    assert.equal(openSmall(env, { identities: [external, keys.identities.x25519] }), null);
    assert.equal((await open(env, { identities: [external, keys.identities.x25519] })).plaintext.length, 10);
  });
});

void describe('small path: same envelopes as the general path', () => {
  void test('each path opens what the other sealed, with the same info', async () => {
    const opts: SealOptions = { recipients: [keys.recipients.xwing, keys.recipients.x25519, keys.recipients.p256], context: { table: 'orders', row: '7' }, aead: 'chacha20-poly1305' };
    const oopts: OpenOptions = { identities: [keys.identities.p256], context: { row: '7', table: 'orders' } };
    for (const size of [0, 1, 1024, CHUNK_SIZE]) {
      const pt = plaintextOf(size, 100 + size);
      const fast = sealSmall(pt, opts)!;
      const general = await sealGeneral(pt, opts);
      assert.equal(fast.length, general.length, `${size}: same length`);
      assert.deepEqual(await openGeneral(fast, oopts), pt, `${size}: general opens small`);
      const r = openSmall(general, oopts)!;
      assert.deepEqual(r.plaintext, pt, `${size}: small opens general`);
      assert.deepEqual({ ...r, plaintext: null }, { aead: 'chacha20-poly1305', context: [['table', 'orders'], ['row', '7']], signature: null, openedBy: 'p256', plaintext: null });
    }
  });
});

void describe('small path: same errors as the general path', () => {
  const pt = plaintextOf(100, 1);

  async function sameOutcome(bytes: Uint8Array, opts: OpenOptions, what: string): Promise<string> {
    const general = await outcome(() => openGeneral(bytes, opts));
    const viaOpen = await outcome(() => open(bytes, opts));
    assert.equal(viaOpen, general, what);
    return general;
  }

  void test('every single-bit flip (one per byte) is refused with the general path\'s code', async () => {
    const env = await seal(pt, { ...x, context: { a: 'b' } });
    const seen = new Set<string>();
    for (let i = 0; i < env.length; i++) {
      const code = await sameOutcome(flipBit(env, i * 8 + (i % 8)), { ...xid, context: { a: 'b' } }, `byte ${i}`);
      assert.notEqual(code, 'ok', `byte ${i}`);
      seen.add(code);
    }
    // The flips reach the parser, the stanza, the commitment, the MAC and the payload.
    for (const c of ['KW_NOT_AN_ENVELOPE', 'KW_MALFORMED_HEADER', 'KW_NO_IDENTITY_MATCHED', 'KW_STANZA_UNWRAP_FAILED', 'KW_HEADER_MAC_MISMATCH', 'KW_PAYLOAD_AUTH_FAILED']) {
      assert.ok(seen.has(c), `${c} among ${[...seen].join(', ')}`);
    }
  });

  void test('every truncation, trailing data, a wrong identity, a context mismatch, too many anonymous trials', async () => {
    const env = await seal(pt, x);
    for (let n = 0; n < env.length; n++) assert.notEqual(await sameOutcome(env.subarray(0, n), xid, `cut at ${n}`), 'ok');
    assert.equal(await sameOutcome(concat(env, new Uint8Array(1)), xid, 'one trailing byte'), 'KW_PAYLOAD_AUTH_FAILED');
    assert.equal(await sameOutcome(env, { identities: [keys.stranger] }, 'stranger'), 'KW_NO_IDENTITY_MATCHED');
    assert.equal(await sameOutcome(env, { identities: [keys.stranger, keys.identities.x25519] }, 'stranger first'), 'ok');
    assert.equal(await sameOutcome(env, { ...xid, context: { a: 'b' } }, 'context'), 'KW_CONTEXT_MISMATCH');
    assert.equal(await sameOutcome(env, { ...xid, verify: [keys.ed25519.verifyingKey] }, 'verify unsigned'), 'KW_SIGNATURE_MISSING');
    const anon = await seal(pt, { ...x, anonymous: true });
    assert.equal(await sameOutcome(anon, { ...xid, maxAnonymousTrials: 0 }, 'trials'), 'KW_TOO_MANY_TRIALS');
    assert.equal(await sameOutcome(anon, xid, 'anonymous'), 'ok');
    // A header that parses, followed by nothing: no payload.
    const headerOnly = env.subarray(0, env.length - pt.length - 16);
    assert.equal(await sameOutcome(headerOnly, xid, 'header only'), 'KW_TRUNCATED');
  });
});

void describe('small path: secrets', () => {
  void test('the data key a seal made is wiped once the stanzas hold it', () => {
    const inner = keys.recipients.x25519;
    const seen: Uint8Array[] = [];
    const spy: Recipient = {
      type: inner.type,
      wrap: (dk, ctx) => inner.wrap(dk, ctx),
      wrapSync: (dk, ctx) => { seen.push(dk); return inner.wrapSync!(dk, ctx); },
    };
    const env = sealSmall(plaintextOf(64, 3), { recipients: [spy] });
    assert.ok(env);
    assert.equal(seen.length, 1);
    assert.ok(seen[0]!.every((b) => b === 0), 'data key zeroed');
    assert.deepEqual(openSmall(env, xid)?.plaintext, plaintextOf(64, 3));
  });
});
