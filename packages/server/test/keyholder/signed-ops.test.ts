/**
 * keyholder/signed-ops.ts: the signed request must name the op the
 * keyholder runs (URL, plaintext, message, MAC, rewrap item, release nonce,
 * context); a verified rewrap request is remembered for its window only.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VerifiedRequests, bindEncrypt, bindMessage, bindRelease, bindRewrapItem, checkTarget, requestDigest, signedBody } from '../../src/keyholder/signed-ops.js';

const utf8 = (s: string) => new TextEncoder().encode(s);
const b64u = (b: Uint8Array) => Buffer.from(b).toString('base64url');
const mismatch = (field: string) => ({ code: 'KW_REQUEST_MISMATCH', details: { field } });
const ref = { ns: 'app', key: 'k' };

void test('checkTarget: the signed URL names this key and op', () => {
  checkTarget('https://kms.test/v1/data/app/k/encrypt', ref, 'encrypt');
  checkTarget('https://kms.test/v1/attest/app/k/release?x=1', ref, 'release');
  assert.throws(() => checkTarget('https://kms.test/v1/data/app/other/encrypt', ref, 'encrypt'), mismatch('url'));
  assert.throws(() => checkTarget('https://kms.test/v1/data/app/k/sign', ref, 'encrypt'), mismatch('url'));
  assert.throws(() => checkTarget('not a url', ref, 'mac'), mismatch('url'));
});

void test('signedBody: a JSON object only', () => {
  assert.deepEqual(signedBody({ body: utf8('{"a":1}') }), { a: 1 });
  assert.throws(() => signedBody({ body: utf8('[1]') }), mismatch('body'));
  assert.throws(() => signedBody({ body: utf8('nope') }), mismatch('body'));
});

void test('bind*: every field the op uses must be the signed one', () => {
  const pt = utf8('hello');
  bindEncrypt({ plaintext: b64u(pt), context: { a: '1' } }, { plaintext: pt, context: { a: '1' } });
  bindEncrypt({ plaintext: b64u(pt) }, { plaintext: pt, context: {} });
  assert.throws(() => bindEncrypt({ plaintext: b64u(utf8('other')) }, { plaintext: pt, context: undefined }), mismatch('plaintext'));
  assert.throws(() => bindEncrypt({ plaintext: b64u(pt), context: { a: '2' } }, { plaintext: pt, context: { a: '1' } }), mismatch('context'));
  bindMessage({ message: b64u(pt) }, { message: pt });
  assert.throws(() => bindMessage({ message: b64u(pt) }, { message: pt, mac: 'kw:v1:x' }), mismatch('mac'));
  assert.throws(() => bindMessage({}, { message: pt }), mismatch('message'));
  const w = utf8('wrapped');
  const items = [{ version: 1, wrapped: 'zz', context: {} }, { version: 2, wrapped: b64u(w), context: { t: 'x' } }];
  bindRewrapItem({ items }, { version: 2, wrapped: w, context: { t: 'x' } });
  assert.throws(() => bindRewrapItem({ items }, { version: 1, wrapped: w, context: { t: 'x' } }), mismatch('items'));
  assert.throws(() => bindRewrapItem({ items }, { version: 2, wrapped: w, context: {} }), mismatch('items'));
  assert.throws(() => bindRewrapItem({ items: 'no' }, { version: 2, wrapped: w, context: {} }), mismatch('items'));
  const nonce = new Uint8Array(32).fill(1);
  bindRelease({ nonce: b64u(nonce), recipient: 'kwx25519abc' }, { nonce, recipient: 'kwx25519abc', context: undefined });
  assert.throws(() => bindRelease({ nonce: b64u(nonce), recipient: 'kwx25519other' }, { nonce, recipient: 'kwx25519abc', context: undefined }), mismatch('recipient'));
  assert.throws(() => bindRelease({ nonce: b64u(new Uint8Array(32)), recipient: 'kwx25519abc' }, { nonce, recipient: 'kwx25519abc', context: undefined }), mismatch('nonce'));
});

void test('VerifiedRequests: the same request (body included) within the window only', () => {
  let now = 1_000;
  const seen = new VerifiedRequests({ ttlMs: 100, max: 2, now: () => now });
  const req = { method: 'POST', url: 'https://kms.test/v1/data/app/k/rewrap', headers: { signature: 'x' }, body: utf8('{"items":[]}'), device: { keyId: 'd', principal: 'p', publicKey: new Uint8Array(32) } };
  const d = requestDigest(req);
  assert.notEqual(requestDigest({ ...req, body: utf8('{"items":[1]}') }), d, 'another body is another request');
  assert.notEqual(requestDigest({ ...req, device: { ...req.device, principal: 'q' } }), d, 'another device record is another request');
  assert.equal(seen.has(d), false);
  seen.add(d);
  assert.equal(seen.has(d), true);
  now += 101;
  assert.equal(seen.has(d), false, 'expired');
  seen.add('a');
  seen.add('b');
  seen.add('c');
  assert.equal(seen.has('a'), false, 'oldest dropped at the bound');
  assert.equal(seen.has('c'), true);
});
