/**
 * The wrapping construction: round trips, an independent recomputation with
 * node:crypto (pins the documented construction byte for byte), every AAD
 * field and the purpose binding, every bit flip, and argument checks.
 */
import assert from 'node:assert/strict';
import { createDecipheriv, createSecretKey, hkdfSync } from 'node:crypto';
import { describe, test } from 'node:test';
import type { JsonObject } from '../../src/keyholder/canonical-json.js';
import { WRAP_OVERHEAD, unwrap, wrap, wrapAad } from '../../src/keyholder/wrap.js';
import { flipped, randomBytes, rejectsKh, utf8 } from './helpers.js';

const kek = randomBytes(32);
const aad: JsonObject = { ns: 'billing', key: 'orders', version: 3, type: 'aes256' };
const dkAad: JsonObject = { ns: 'billing', key: 'orders', version: 3, context: { table: 'orders', tenant: '42' } };

void describe('wrap / unwrap', () => {
  void test('round trip; blob = 0x01 ‖ salt(32) ‖ ct ‖ tag(16); fresh salt each time', () => {
    for (const n of [0, 1, 32, 1000]) {
      const pt = randomBytes(n);
      const a = wrap(kek, 'key-version', aad, pt);
      const b = wrap(kek, 'key-version', aad, pt);
      assert.equal(a.length, n + WRAP_OVERHEAD);
      assert.equal(a[0], 0x01);
      assert.notDeepEqual(a.subarray(1, 33), b.subarray(1, 33));
      assert.deepEqual(unwrap(kek, 'key-version', aad, a), pt);
      assert.deepEqual(unwrap(kek, 'key-version', aad, b), pt);
    }
  });

  void test('independent recomputation with node:crypto matches the documented construction', () => {
    const pt = utf8('thirty-two bytes of key material');
    const blob = wrap(kek, 'datakey', dkAad, pt);
    const salt = blob.subarray(1, 33);
    const k = Buffer.from(hkdfSync('sha256', kek, salt, utf8('keyward/v1 wrap datakey'), 32));
    const expectedAad = '{"context":{"table":"orders","tenant":"42"},"key":"orders","ns":"billing","purpose":"datakey","version":3}';
    assert.equal(Buffer.from(wrapAad('datakey', dkAad)).toString(), expectedAad);
    const d = createDecipheriv('aes-256-gcm', k, Buffer.alloc(12), { authTagLength: 16 });
    d.setAAD(Buffer.from(expectedAad));
    d.setAuthTag(blob.subarray(blob.length - 16));
    const out = Buffer.concat([d.update(blob.subarray(33, blob.length - 16)), d.final()]);
    assert.deepEqual(Uint8Array.from(out), pt);
  });

  void test('a KeyObject KEK is the same KEK', () => {
    const blob = wrap(createSecretKey(kek), 'encrypt', aad, utf8('x'));
    assert.deepEqual(unwrap(kek, 'encrypt', aad, blob), utf8('x'));
  });

  void test('AAD key order does not matter (canonical JSON)', () => {
    const blob = wrap(kek, 'datakey', dkAad, utf8('k'));
    const reordered = { context: { tenant: '42', table: 'orders' }, version: 3, key: 'orders', ns: 'billing' };
    assert.deepEqual(unwrap(kek, 'datakey', reordered, blob), utf8('k'));
  });
});

void describe('a blob moved anywhere else fails with KW_WRAPPED_KEY_MISMATCH', () => {
  const blob = wrap(kek, 'key-version', aad, randomBytes(32));
  const dkBlob = wrap(kek, 'datakey', dkAad, randomBytes(32));
  const moves: [string, string, JsonObject, Uint8Array, Uint8Array?][] = [
    ['another namespace', 'key-version', { ...aad, ns: 'hr' }, blob],
    ['another key', 'key-version', { ...aad, key: 'invoices' }, blob],
    ['another version', 'key-version', { ...aad, version: 4 }, blob],
    ['another type', 'key-version', { ...aad, type: 'hmac-sha256' }, blob],
    ['the version as a string', 'key-version', { ...aad, version: '3' }, blob],
    ['an extra field', 'key-version', { ...aad, extra: true }, blob],
    ['a missing field', 'key-version', { ns: 'billing', key: 'orders', version: 3 }, blob],
    ['another purpose', 'datakey', aad, blob],
    ['another purpose (datakey → encrypt)', 'encrypt', dkAad, dkBlob],
    ['another context value', 'datakey', { ...dkAad, context: { table: 'orders', tenant: '43' } }, dkBlob],
    ['a context pair removed', 'datakey', { ...dkAad, context: { table: 'orders' } }, dkBlob],
    ['a context pair added', 'datakey', { ...dkAad, context: { table: 'orders', tenant: '42', x: '' } }, dkBlob],
    ['no context', 'datakey', { ns: 'billing', key: 'orders', version: 3 }, dkBlob],
    ['another KEK', 'key-version', aad, blob, randomBytes(32)],
  ];
  for (const [name, purpose, a, b, otherKek] of moves) {
    void test(name, async () => { await rejectsKh(() => unwrap(otherKek ?? kek, purpose, a, b), 'KW_WRAPPED_KEY_MISMATCH'); });
  }

  void test('every single-bit flip of a blob', async () => {
    for (let i = 0; i < blob.length; i++) {
      for (let bit = 0; bit < 8; bit++) await rejectsKh(() => unwrap(kek, 'key-version', aad, flipped(blob, i, 1 << bit)), 'KW_WRAPPED_KEY_MISMATCH');
    }
  });

  void test('truncated, extended, empty', async () => {
    for (const b of [blob.subarray(0, blob.length - 1), blob.subarray(0, WRAP_OVERHEAD - 1), new Uint8Array(0), Uint8Array.from([...blob, 0])]) {
      await rejectsKh(() => unwrap(kek, 'key-version', aad, b), 'KW_WRAPPED_KEY_MISMATCH');
    }
  });
});

void describe('argument checks (KW_INVALID_ARGUMENT)', () => {
  const cases: [string, () => unknown][] = [
    ['a 16-byte KEK', () => wrap(randomBytes(16), 'encrypt', aad, utf8('x'))],
    ['a 16-byte KeyObject KEK', () => wrap(createSecretKey(randomBytes(16)), 'encrypt', aad, utf8('x'))],
    ['an empty purpose', () => wrap(kek, '', aad, utf8('x'))],
    ['a purpose with spaces', () => wrap(kek, 'data key', aad, utf8('x'))],
    ['an AAD with its own purpose', () => wrap(kek, 'encrypt', { ...aad, purpose: 'encrypt' }, utf8('x'))],
    ['an AAD with a float', () => wrap(kek, 'encrypt', { ...aad, version: 1.5 }, utf8('x'))],
    ['an array as AAD', () => wrap(kek, 'encrypt', [] as unknown as JsonObject, utf8('x'))],
    ['a string plaintext', () => wrap(kek, 'encrypt', aad, 'x' as unknown as Uint8Array)],
    ['unwrap with a short KEK', () => unwrap(randomBytes(31), 'encrypt', aad, new Uint8Array(60))],
  ];
  for (const [name, fn] of cases) void test(name, async () => { await rejectsKh(fn, 'KW_INVALID_ARGUMENT'); });
});
