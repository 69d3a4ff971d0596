import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { isMfaError } from '../../src/mfa/errors.js';
import { canonicalJson } from '../../src/audit/canonical-json.js';
import { canonicalRequest, requestHash, requestId, type SensitiveRequest } from '../../src/mfa/request-hash.js';

const base: SensitiveRequest = {
  method: 'post', path: '/v1/keys/billing/orders/versions/3/schedule-deletion', namespace: 'billing', key: 'orders', version: 3,
  body: { days: 7, reason: 'rotated out' }, expiresAt: 1_900_000_000,
};

void test('known answer: SHA-256 of the RFC 8785 form written out by hand', () => {
  const text = '{"body":{"days":7,"reason":"rotated out"},"expiresAt":1900000000,"key":"orders","method":"POST","namespace":"billing",'
    + '"path":"/v1/keys/billing/orders/versions/3/schedule-deletion","v":"keyward/v1 request","version":3}';
  const expected = createHash('sha256').update(text).digest();
  assert.deepEqual(Buffer.from(requestHash(base)), expected);
  assert.equal(requestId(base), expected.toString('base64url'));
});

void test('body key order does not matter; every field does', () => {
  assert.deepEqual(requestHash({ ...base, body: { reason: 'rotated out', days: 7 } }), requestHash(base));
  const h = Buffer.from(requestHash(base)).toString('hex');
  const variants: SensitiveRequest[] = [
    { ...base, method: 'PUT' }, { ...base, path: base.path + '/' }, { ...base, namespace: 'billing2' }, { ...base, key: null },
    { ...base, key: 'orders2' }, { ...base, version: 4 }, { ...base, version: null }, { ...base, body: null },
    { ...base, body: { days: 8, reason: 'rotated out' } }, { ...base, expiresAt: base.expiresAt + 1 },
  ];
  for (const v of variants) assert.notEqual(Buffer.from(requestHash(v)).toString('hex'), h, JSON.stringify(v));
});

void test('property: requests hash equal exactly when their canonical forms are equal', () => {
  const req = fc.record({
    method: fc.constantFrom('POST', 'PUT', 'DELETE'), path: fc.string().map((s) => '/' + s), namespace: fc.string(),
    key: fc.option(fc.string()), version: fc.option(fc.integer({ min: 1, max: 1000 })),
    body: fc.option(fc.dictionary(fc.string().filter((k) => k !== '__proto__'), fc.integer())), expiresAt: fc.integer({ min: 1, max: 2 ** 40 }),
  });
  // Equal hashes only for requests whose canonical forms are equal (the encoding is injective).
  fc.assert(fc.property(req, req, (a, b) => {
    const sameForm = canonicalJson(canonicalRequest(a)) === canonicalJson(canonicalRequest(b));
    return sameForm === (Buffer.compare(Buffer.from(requestHash(a)), Buffer.from(requestHash(b))) === 0);
  }));
});

void test('malformed requests are refused with a typed error', () => {
  for (const bad of [{ ...base, method: 'PO ST' }, { ...base, path: 'v1/keys' }, { ...base, expiresAt: 1.5 }, { ...base, expiresAt: 0 }, { ...base, version: 0 }]) {
    assert.throws(() => requestHash(bad), (e) => isMfaError(e, 'KW_MFA_INVALID'));
  }
});
