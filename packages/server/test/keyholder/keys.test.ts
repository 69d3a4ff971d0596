/**
 * Key versions: generation per type, loading back, the binding of a wrapped
 * version to its namespace, key, version and type, stored-public-key checks,
 * type checks and disposal.
 */
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { describe, test } from 'node:test';
import { open, parseRecipient, seal } from '@keyward/core';
import { KEY_TYPES, type KeyType } from '../../src/keyholder/schemas.js';
import { generateVersion, importVersion, loadVersion } from '../../src/keyholder/keys.js';
import { encrypt } from '../../src/keyholder/ops/encrypt.js';
import { sign } from '../../src/keyholder/ops/sign.js';
import { mac } from '../../src/keyholder/ops/mac.js';
import { randomBytes, ref, rejectsKh, toHex, utf8 } from './helpers.js';

const mk = randomBytes(32);
const PUBLIC: Record<KeyType, [number, string] | null> = {
  aes256: null, 'hmac-sha256': null, ed25519: [32, 'kwed255191'], x25519: [32, 'kwx255191'], xwing: [1216, 'kwxwing1'],
};

void describe('generate and load each type', () => {
  for (const type of KEY_TYPES) {
    void test(type, async () => {
      const r = ref({ type, version: 7 });
      const g = await generateVersion(mk, r);
      assert.deepEqual(g.ref, r);
      assert.equal(g.wrapped.length, 32 + 49);
      const pub = PUBLIC[type];
      if (pub) {
        assert.equal(g.publicKey?.length, pub[0]);
        assert.ok(g.publicKeyText?.startsWith(pub[1]), g.publicKeyText);
      } else {
        assert.equal(g.publicKey, undefined);
      }
      const h = await loadVersion(mk, r, g.wrapped, g.publicKey ? { publicKey: g.publicKey } : {});
      assert.equal(h.type, type);
      assert.equal(h.keyId, 'billing/orders');
      assert.deepEqual(h.publicKey, g.publicKey);
      h.requireType(type);
      // Two generations never share material.
      const g2 = await generateVersion(mk, r);
      assert.notDeepEqual(g2.wrapped.subarray(33), g.wrapped.subarray(33));
      if (g.publicKey) assert.notDeepEqual(g2.publicKey, g.publicKey);
    });
  }

  void test('an x25519 / xwing version opens envelopes sealed to its public key', async () => {
    for (const type of ['x25519', 'xwing'] as const) {
      const g = await generateVersion(mk, ref({ type }));
      const h = await loadVersion(mk, ref({ type }), g.wrapped);
      const env = await seal(utf8('hi'), { recipients: [await parseRecipient(g.publicKeyText!)] });
      assert.deepEqual((await open(env, { identities: [h.hpkeIdentity()] })).plaintext, utf8('hi'));
    }
  });

  void test('a handle prints and serialises without its material', async () => {
    const g = await generateVersion(mk, ref({ type: 'hmac-sha256' }));
    const h = await loadVersion(mk, ref({ type: 'hmac-sha256' }), g.wrapped);
    assert.equal(inspect(h), 'KeyVersion(billing/orders v1 hmac-sha256)');
    assert.equal(JSON.stringify(h), '{"ref":{"ns":"billing","key":"orders","version":1,"type":"hmac-sha256"}}');
    assert.ok(!JSON.stringify(h).includes(toHex(g.wrapped.subarray(33, 40))));
  });
});

void describe('a wrapped version is bound to its place', () => {
  const r = ref({ type: 'aes256', version: 2 });
  const moves: [string, Partial<ReturnType<typeof ref>>][] = [
    ['another namespace', { ns: 'hr' }], ['another key', { key: 'invoices' }], ['another version', { version: 3 }], ['another type', { type: 'hmac-sha256' }],
  ];
  for (const [name, over] of moves) {
    void test(name, async () => {
      const g = await generateVersion(mk, r);
      await rejectsKh(() => loadVersion(mk, { ...r, ...over }, g.wrapped), 'KW_WRAPPED_KEY_MISMATCH');
    });
  }

  void test('swapping blobs between v1 and v2 of one key', async () => {
    const v1 = await generateVersion(mk, ref({ version: 1 }));
    const v2 = await generateVersion(mk, ref({ version: 2 }));
    await rejectsKh(() => loadVersion(mk, ref({ version: 1 }), v2.wrapped), 'KW_WRAPPED_KEY_MISMATCH');
    await rejectsKh(() => loadVersion(mk, ref({ version: 2 }), v1.wrapped), 'KW_WRAPPED_KEY_MISMATCH');
  });

  void test('another master key', async () => {
    const g = await generateVersion(mk, r);
    await rejectsKh(() => loadVersion(randomBytes(32), r, g.wrapped), 'KW_WRAPPED_KEY_MISMATCH');
  });

  void test('a stored public key that is not the material\'s', async () => {
    const a = await generateVersion(mk, ref({ type: 'ed25519' }));
    const b = await generateVersion(mk, ref({ type: 'ed25519' }));
    await rejectsKh(() => loadVersion(mk, ref({ type: 'ed25519' }), a.wrapped, { publicKey: b.publicKey! }), 'KW_WRAPPED_KEY_MISMATCH');
    const s = await generateVersion(mk, ref({ type: 'aes256' }));
    await rejectsKh(() => loadVersion(mk, ref({ type: 'aes256' }), s.wrapped, { publicKey: b.publicKey! }), 'KW_WRAPPED_KEY_MISMATCH');
  });
});

void describe('type checks and disposal', () => {
  void test('an operation on the wrong type is KW_KEY_TYPE_MISMATCH', async () => {
    const aes = await loadVersion(mk, ref(), (await generateVersion(mk, ref())).wrapped);
    const ed = await loadVersion(mk, ref({ type: 'ed25519' }), (await generateVersion(mk, ref({ type: 'ed25519' }))).wrapped);
    await rejectsKh(() => sign({ version: aes, message: utf8('m') }), 'KW_KEY_TYPE_MISMATCH');
    await rejectsKh(() => encrypt({ version: ed, plaintext: utf8('m') }), 'KW_KEY_TYPE_MISMATCH');
    await rejectsKh(() => mac({ version: aes, message: utf8('m') }), 'KW_KEY_TYPE_MISMATCH');
    await rejectsKh(() => aes.hpkeIdentity(), 'KW_KEY_TYPE_MISMATCH');
  });

  void test('a disposed version is KW_SEALED', async () => {
    const h = await loadVersion(mk, ref(), (await generateVersion(mk, ref())).wrapped);
    h.dispose();
    await rejectsKh(() => encrypt({ version: h, plaintext: utf8('m') }), 'KW_SEALED');
  });
});

void describe('argument checks (KW_INVALID_ARGUMENT)', () => {
  const refs: [string, unknown][] = [
    ['a slash in the namespace', ref({ ns: 'a/b' })],
    ['an empty key name', ref({ key: '' })],
    ['a 65-character name', ref({ key: 'k'.repeat(65) })],
    ['version 0', ref({ version: 0 })],
    ['a fractional version', ref({ version: 1.5 })],
    ['an unknown type', { ...ref(), type: 'rsa' }],
    ['an extra field', { ...ref(), extra: 1 }],
  ];
  for (const [name, r] of refs) {
    void test(name, async () => { await rejectsKh(() => generateVersion(mk, r as never), 'KW_INVALID_ARGUMENT'); });
  }

  void test('import lengths per type', async () => {
    await rejectsKh(() => importVersion(mk, ref(), randomBytes(16)), 'KW_INVALID_ARGUMENT');
    await rejectsKh(() => importVersion(mk, ref({ type: 'ed25519' }), randomBytes(64)), 'KW_INVALID_ARGUMENT');
    await rejectsKh(() => importVersion(mk, ref({ type: 'hmac-sha256' }), randomBytes(15)), 'KW_INVALID_ARGUMENT');
    await rejectsKh(() => importVersion(mk, ref({ type: 'hmac-sha256' }), randomBytes(257)), 'KW_INVALID_ARGUMENT');
    await importVersion(mk, ref({ type: 'hmac-sha256' }), randomBytes(131));
  });

  void test('a master key of the wrong length', async () => {
    await rejectsKh(() => generateVersion(randomBytes(31), ref()), 'KW_INVALID_ARGUMENT');
  });
});
