/**
 * What the header binds, and in which order it is checked:
 *  - the key commitment (and the header MAC) are checked before any payload
 *    chunk is decrypted — observed with a spy on the platform AEAD;
 *  - HPKE `info` binds the encryption context (and `aad` the salt): a stanza
 *    moved under another context does not unwrap, even with a correct MAC;
 *  - every stanza has its own encapsulation (distinct `enc`);
 *  - the payload key is bound to the exact authenticated header.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { platform } from '#platform';
import { concat, toHex, utf8 } from '../../src/bytes.js';
import { LABELS } from '../../src/format/constants.js';
import { encodeContext, type ContextPairs } from '../../src/format/context.js';
import { parseHeader } from '../../src/format/header.js';
import type { AeadSync } from '../../src/platform/types.js';
import { EnvelopeReader } from '../../src/random-access.js';
import type { HpkeRecipient } from '../../src/recipients/hpke.js';
import { StanzaContext, type Identity } from '../../src/recipients/types.js';
import { open, seal } from '../../src/seal.js';
import { craftEnvelope, flipBit, headerOffsets, newDataKey, patch, randomBytes, splitEnvelope } from './craft.js';
import { openStream, outcome, rejectsWith, testKeys } from './helpers.js';

const keys = await testKeys();
const pt = utf8.encode('binding tests: a few bytes of payload');

// ---------------------------------------------------------------------------
// A spy on platform.aead and platform.aeadSync (the synchronous one-chunk path
// of Node): payload chunks are the only AEAD opens without AAD (HPKE stanzas use
// the salt as AAD, scrypt stanzas info ‖ salt).

let payloadOpens = 0;
let aeadOpens = 0;
const realAead = platform.aead.bind(platform);
const mutable = platform as { aeadSync?: AeadSync };
const realSync = platform.aeadSync;

function installSpy(): void {
  payloadOpens = 0;
  aeadOpens = 0;
  if (realSync) {
    mutable.aeadSync = {
      seal: (...a) => realSync.seal(...a),
      sealInto: (...a) => realSync.sealInto(...a),
      open: (alg, key, nonce, ciphertext, aad) => {
        aeadOpens++;
        if (!aad || aad.length === 0) payloadOpens++;
        return realSync.open(alg, key, nonce, ciphertext, aad);
      },
    };
  }
  platform.aead = async (alg, key) => {
    const inner = await realAead(alg, key);
    return {
      seal: (nonce, plaintext, aad) => inner.seal(nonce, plaintext, aad),
      open: (nonce, ciphertext, aad) => {
        aeadOpens++;
        if (!aad || aad.length === 0) payloadOpens++;
        return inner.open(nonce, ciphertext, aad);
      },
    };
  };
}

function removeSpy(): void {
  platform.aead = realAead;
  mutable.aeadSync = realSync;
}

/** An envelope whose stanza for bob wraps another data key than the one committed to (invisible salamanders). */
async function salamander(): Promise<Uint8Array> {
  const a = newDataKey(), b = newDataKey();
  return craftEnvelope({
    dataKey: a, plaintext: pt,
    stanzas: async (sctx) => [await keys.recipients.x25519.wrap(a, sctx), await keys.recipients['x25519-2'].wrap(b, sctx)],
  });
}

void describe('the key commitment is checked before any payload chunk is decrypted', () => {
  beforeEach(installSpy);
  afterEach(removeSpy);

  void test('control: a normal open decrypts the payload through the spied AEAD', async () => {
    const env = await seal(pt, { recipients: [keys.recipients.x25519] });
    payloadOpens = 0;
    assert.deepEqual((await open(env, { identities: [keys.identities.x25519] })).plaintext, pt);
    assert.equal(payloadOpens, 1);
    assert.ok(aeadOpens >= 2, 'the stanza was unwrapped through the spied AEAD too');
  });

  void test('invisible salamanders: the committed recipient opens; the other gets KW_COMMITMENT_MISMATCH with no payload decryption', async () => {
    const env = await salamander();
    payloadOpens = 0;
    assert.deepEqual((await open(env, { identities: [keys.identities.x25519] })).plaintext, pt);
    for (const read of [
      () => open(env, { identities: [keys.identities['x25519-2']] }),
      () => openStream([env], { identities: [keys.identities['x25519-2']] }),
      () => EnvelopeReader.open(env, { identities: [keys.identities['x25519-2']] }),
    ]) {
      payloadOpens = 0;
      aeadOpens = 0;
      await rejectsWith(read, 'KW_COMMITMENT_MISMATCH');
      assert.equal(payloadOpens, 0, 'no payload chunk was decrypted');
      assert.equal(aeadOpens, 1, 'exactly one AEAD open: the stanza');
    }
  });

  void test('a flipped commitment or header MAC fails before the payload, too', async () => {
    const env = await seal(pt, { recipients: [keys.recipients.x25519] });
    const o = headerOffsets(env);
    const cases: [string, Uint8Array, string][] = [
      ['commitment bit', flipBit(env, o.commitment * 8), 'KW_COMMITMENT_MISMATCH'],
      ['MAC bit', flipBit(env, o.mac * 8 + 7), 'KW_HEADER_MAC_MISMATCH'],
      ['AEAD id 1 → 2', patch(env, o.aead, [2]), 'KW_HEADER_MAC_MISMATCH'],
    ];
    for (const [what, tampered, code] of cases) {
      payloadOpens = 0;
      assert.equal(await outcome(() => open(tampered, { identities: [keys.identities.x25519] })), code, what);
      assert.equal(payloadOpens, 0, what);
    }
  });

  void test('a context mismatch is refused before the payload is decrypted', async () => {
    const env = await seal(pt, { recipients: [keys.recipients.x25519], context: { a: '1' } });
    payloadOpens = 0;
    await rejectsWith(() => open(env, { identities: [keys.identities.x25519], context: { a: '2' } }), 'KW_CONTEXT_MISMATCH');
    assert.equal(payloadOpens, 0);
  });
});

// ---------------------------------------------------------------------------

const ctxOf = (salt: Uint8Array, context: ContextPairs) => new StanzaContext(salt, context, encodeContext(context), false);

void describe('HPKE info binds the encryption context', () => {
  void test('info = "keyward/v1 stanza" ‖ 0x00 ‖ type ‖ 0x00 ‖ encoded context', () => {
    const context: ContextPairs = [['tenant', 'acme']];
    const info = ctxOf(new Uint8Array(32), context).info('x25519');
    assert.equal(toHex(info), toHex(concat(LABELS.stanza, new Uint8Array([0]), utf8.encode('x25519'), new Uint8Array([0]), encodeContext(context))));
  });

  const kinds = ['x25519', 'p256', 'xwing'] as const;
  for (const kind of kinds) {
    void test(`${kind}: a stanza unwraps only under the context and salt it was wrapped with`, async () => {
      const r: HpkeRecipient = keys.recipients[kind];
      const id: Identity = keys.identities[kind];
      const salt = randomBytes(32), dk = newDataKey();
      const stanza = await r.wrap(dk, ctxOf(salt, [['tenant', 'acme']]));
      assert.deepEqual(await id.unwrap(stanza, ctxOf(salt, [['tenant', 'acme']])), dk);
      assert.equal(await id.unwrap(stanza, ctxOf(salt, [['tenant', 'evil']])), null, 'other value');
      assert.equal(await id.unwrap(stanza, ctxOf(salt, [])), null, 'no context');
      assert.equal(await id.unwrap(stanza, ctxOf(salt, [['tenant', 'acme'], ['x', '']])), null, 'extra pair');
      assert.equal(await id.unwrap(stanza, ctxOf(randomBytes(32), [['tenant', 'acme']])), null, 'other salt');
    });
  }

  void test('scrypt: the stanza unwraps only under its context', async () => {
    const salt = randomBytes(32), dk = newDataKey();
    const stanza = await keys.passphraseRecipient.wrap(dk, ctxOf(salt, [['k', 'v']]));
    assert.deepEqual(await keys.passphraseIdentity.unwrap(stanza, ctxOf(salt, [['k', 'v']])), dk);
    assert.equal(await keys.passphraseIdentity.unwrap(stanza, ctxOf(salt, [['k', 'w']])), null);
  });

  void test('a stanza moved under a different context fails to unwrap even when the commitment and header MAC are correct', async () => {
    const dk = newDataKey();
    const build = (headerContext: ContextPairs) => craftEnvelope({
      dataKey: dk, plaintext: pt, context: headerContext,
      stanzas: async (sctx) => [await keys.recipients.x25519.wrap(dk, ctxOf(sctx.salt, [['tenant', 'acme']]))],
    });
    // Control: the crafting itself is sound when the contexts agree.
    assert.deepEqual((await open(await build([['tenant', 'acme']]), { identities: [keys.identities.x25519], context: [['tenant', 'acme']] })).plaintext, pt);
    await rejectsWith(() => build([['tenant', 'evil']]).then((e) => open(e, { identities: [keys.identities.x25519], context: [['tenant', 'evil']] })), 'KW_STANZA_UNWRAP_FAILED');
    await rejectsWith(() => build([['tenant', 'evil']]).then((e) => open(e, { identities: [keys.identities.x25519], anyContext: true })), 'KW_STANZA_UNWRAP_FAILED');
  });
});

// ---------------------------------------------------------------------------

void describe('stanzas', () => {
  const encs = (env: Uint8Array) => parseHeader(env).stanzas.map((s) => toHex(s.fields[1]!));

  void test('every stanza has a distinct enc: the same recipient several times, several recipients, several envelopes', async () => {
    const r = keys.recipients;
    const all: string[] = [];
    for (const anonymous of [false, true]) {
      const env = await seal(pt, { recipients: [r.x25519, r.x25519, r.x25519, r['x25519-2'], r.p256, r.p256, r.xwing, r.xwing], anonymous });
      const e = encs(env);
      assert.equal(e.length, 8);
      assert.equal(new Set(e).size, 8, 'within one envelope');
      all.push(...e);
      // And every copy opens.
      for (const id of [keys.identities.x25519, keys.identities.p256, keys.identities.xwing]) {
        assert.deepEqual((await open(env, { identities: [id] })).plaintext, pt);
      }
    }
    for (let i = 0; i < 10; i++) all.push(...encs(await seal(pt, { recipients: [r.x25519] })));
    assert.equal(new Set(all).size, all.length, 'across envelopes');
  });

  void test('key ids: the recipient\'s key id, or empty in anonymous mode; salts and commitments are fresh per envelope', async () => {
    const r = keys.recipients;
    const named = parseHeader(await seal(pt, { recipients: [r.x25519, r.p256] }));
    assert.deepEqual(named.stanzas.map((s) => toHex(s.fields[0]!)), [toHex(r.x25519.keyId), toHex(r.p256.keyId)]);
    const anon = parseHeader(await seal(pt, { recipients: [r.x25519, r.p256], anonymous: true }));
    assert.deepEqual(anon.stanzas.map((s) => s.fields[0]!.length), [0, 0]);
    assert.notEqual(toHex(named.salt), toHex(anon.salt));
    assert.notEqual(toHex(named.commitment), toHex(anon.commitment));
  });

  void test('a malformed stanza of a type the opener holds is KW_MALFORMED_HEADER (not skipped)', async () => {
    const dk = newDataKey();
    const env = await craftEnvelope({
      dataKey: dk, plaintext: pt,
      stanzas: async (sctx) => {
        const s = await keys.recipients.x25519.wrap(dk, sctx);
        return [{ type: s.type, fields: [...s.fields, new Uint8Array(1)] }];
      },
    });
    await rejectsWith(() => open(env, { identities: [keys.identities.x25519] }), 'KW_MALFORMED_HEADER');
  });
});

void describe('the payload key is bound to the exact header', () => {
  void test('the payload of one envelope under the header of another with the same data key and salt fails', async () => {
    const dk = newDataKey(), salt = randomBytes(32);
    const make = (context: ContextPairs) => craftEnvelope({
      dataKey: dk, salt, plaintext: pt, context, stanzas: async (sctx) => [await keys.recipients.x25519.wrap(dk, sctx)],
    });
    const a = splitEnvelope(await make([['v', 'a']])), b = splitEnvelope(await make([['v', 'b']]));
    assert.deepEqual((await open(concat(a.header, ...a.chunks), { identities: [keys.identities.x25519], context: [['v', 'a']] })).plaintext, pt);
    await rejectsWith(() => open(concat(a.header, ...b.chunks), { identities: [keys.identities.x25519], context: [['v', 'a']] }), 'KW_PAYLOAD_AUTH_FAILED');
  });
});
