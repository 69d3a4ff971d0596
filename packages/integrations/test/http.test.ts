/**
 * Sealed HTTP bodies between services, through a real forwarding proxy
 * process that records everything it forwards (the TLS terminator in the
 * middle): canaries in requests and responses never appear in its capture;
 * replays, re-targeted requests and unsealed requests are refused with
 * stable codes; an unsealed response is refused by the client.
 */
/* eslint-disable @typescript-eslint/require-await -- fastify route handlers are async by convention */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { HpkeIdentity, SigningKey } from '@keyward/core';
import { isIntegrationError, SealedHttpClient, sealedHttpPlugin, type IntegrationErrorCode } from '../src/index.js';
import { canary, findCanaries, startRecordingProxy, type RecordingProxy } from './helpers.js';

const rejects = (c: IntegrationErrorCode) => (e: unknown) => {
  assert.ok(isIntegrationError(e), `expected IntegrationError ${c}, got ${String(e)}`);
  assert.equal(e.code, c, e.message);
  return true;
};

let app: FastifyInstance;
let proxy: RecordingProxy;
let service: HpkeIdentity;
const canaries: string[] = [];
const seen: { body: unknown; sealed: boolean }[] = [];

before(async () => {
  service = await HpkeIdentity.generate('x25519');
  app = Fastify({ logger: false });
  await app.register(async (scope) => {
    await scope.register(sealedHttpPlugin, { identities: [service], audience: 'billing' });
    scope.post('/v1/charges', async (req) => {
      seen.push({ body: req.body, sealed: req.keyward !== null });
      const b = req.body as { card: string; amount: number };
      return { receipt: `receipt for ${b.card}`, amount: b.amount };
    });
    scope.get('/v1/charges/:id', async (req) => ({ id: (req.params as { id: string }).id, secret: canaries[0] }));
    scope.post('/v1/fail', async () => { throw Object.assign(new Error('declined'), { statusCode: 402 }); });
    scope.post('/v1/echo-bytes', async (req, reply) => reply.header('content-type', 'application/octet-stream').send(req.body as Buffer));
  });
  app.get('/plain', async () => ({ plain: true }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address() as { port: number };
  proxy = await startRecordingProxy(`http://127.0.0.1:${addr.port}`, join(mkdtempSync(join(tmpdir(), 'kw-proxy-')), 'capture.bin'));
});
after(async () => {
  await proxy?.stop();
  await app?.close();
});

void describe('sealed HTTP through a recording proxy', () => {
  void test('POST JSON: the service sees the plaintext body, the client the plaintext reply, the proxy only ciphertext', async () => {
    const card = canary('card');
    canaries.push(card);
    const client = new SealedHttpClient({ recipient: await service.recipient(), audience: 'billing' });
    const res = await client.fetch(`${proxy.url}/v1/charges`, { method: 'POST', json: { card, amount: 42 } });
    assert.equal(res.status, 200);
    assert.deepEqual(res.json(), { receipt: `receipt for ${card}`, amount: 42 });
    assert.match(res.contentType ?? '', /^application\/json/);
    assert.deepEqual(seen.at(-1), { body: { card, amount: 42 }, sealed: true });
    const cap = proxy.capture();
    assert.ok(cap.includes(Buffer.from('POST /v1/charges')), 'the proxy did forward it');
    assert.deepEqual(findCanaries(cap, canaries), []);
  });

  void test('GET: the sealed frame rides in a header; the reply is sealed', async () => {
    const secret = canaries[0]!;
    const client = new SealedHttpClient({ recipient: await service.recipient(), audience: 'billing' });
    const res = await client.fetch(`${proxy.url}/v1/charges/c-7?expand=1`);
    assert.deepEqual(res.json(), { id: 'c-7', secret });
    assert.deepEqual(findCanaries(proxy.capture(), canaries), []);
  });

  void test('binary bodies and handler errors are sealed too', async () => {
    const client = new SealedHttpClient({ recipient: await service.recipient(), audience: 'billing' });
    const bytes = Buffer.from(canary('bytes'));
    canaries.push(bytes.toString());
    const r = await client.fetch(`${proxy.url}/v1/echo-bytes`, { method: 'POST', body: bytes, contentType: 'application/octet-stream' });
    assert.ok(Buffer.from(r.body).equals(bytes));
    const f = await client.fetch(`${proxy.url}/v1/fail`, { method: 'POST', json: {} });
    assert.equal(f.status, 402);
    assert.equal((f.json() as { message: string }).message, 'declined');
    assert.deepEqual(findCanaries(proxy.capture(), canaries), []);
  });

  void test('a captured request replayed: 409 KW_INT_REPLAY; sent to another path: 400 KW_INT_CONTEXT_MISMATCH', async () => {
    let captured: { body: Uint8Array; headers: Headers } | null = null;
    const spy: typeof fetch = async (input, init) => {
      captured = { body: init!.body as Uint8Array, headers: new Headers(init!.headers) };
      return fetch(input, init);
    };
    const client = new SealedHttpClient({ recipient: await service.recipient(), audience: 'billing', fetch: spy });
    await client.fetch(`${proxy.url}/v1/charges`, { method: 'POST', json: { card: 'x', amount: 1 } });
    const n = seen.length;
    const again = await fetch(`${proxy.url}/v1/charges`, { method: 'POST', headers: captured!.headers, body: captured!.body as Uint8Array<ArrayBuffer> });
    assert.equal(again.status, 409);
    assert.equal(((await again.json()) as { error: { code: string } }).error.code, 'KW_INT_REPLAY');
    const moved = await fetch(`${proxy.url}/v1/echo-bytes`, { method: 'POST', headers: captured!.headers, body: captured!.body as Uint8Array<ArrayBuffer> });
    assert.equal(moved.status, 400);
    assert.equal(((await moved.json()) as { error: { code: string } }).error.code, 'KW_INT_CONTEXT_MISMATCH');
    assert.equal(seen.length, n, 'no handler ran');
  });

  void test('unsealed requests are refused (415); the wrong audience or key cannot open; an unsealed response is refused by the client', async () => {
    const plain = await fetch(`${proxy.url}/v1/charges`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"card":"x","amount":1}' });
    assert.equal(plain.status, 415);
    assert.equal(((await plain.json()) as { error: { code: string } }).error.code, 'KW_INT_NOT_SEALED');
    const wrongAudience = new SealedHttpClient({ recipient: await service.recipient(), audience: 'payroll' });
    await assert.rejects(wrongAudience.fetch(`${proxy.url}/v1/charges`, { method: 'POST', json: {} }), rejects('KW_INT_CONTEXT_MISMATCH'));
    const impostor = await HpkeIdentity.generate('x25519');
    const wrongKey = new SealedHttpClient({ recipient: await impostor.recipient(), audience: 'billing' });
    await assert.rejects(wrongKey.fetch(`${proxy.url}/v1/charges`, { method: 'POST', json: {} }), rejects('KW_INT_OPEN_FAILED'));
    const client = new SealedHttpClient({ recipient: await service.recipient(), audience: 'billing' });
    await assert.rejects(client.fetch(`${proxy.url}/plain`), rejects('KW_INT_RESPONSE_NOT_SEALED'));
  });

  void test('a response from another exchange (or forged by the middle) does not open', async () => {
    // A proxy that swaps in the response of an earlier request: sealed to another one-time key.
    const client = new SealedHttpClient({ recipient: await service.recipient(), audience: 'billing' });
    let first: { body: ArrayBuffer; headers: Headers; status: number } | null = null;
    const replaying: typeof fetch = async (input, init) => {
      const r = await fetch(input, init);
      if (!first) { first = { body: await r.arrayBuffer(), headers: r.headers, status: r.status }; return new Response(first.body, { status: first.status, headers: first.headers }); }
      await r.arrayBuffer();
      return new Response(first.body, { status: first.status, headers: first.headers });
    };
    const c2 = new SealedHttpClient({ recipient: await service.recipient(), audience: 'billing', fetch: replaying });
    await c2.fetch(`${proxy.url}/v1/charges`, { method: 'POST', json: { card: 'a', amount: 1 } });
    await assert.rejects(c2.fetch(`${proxy.url}/v1/charges`, { method: 'POST', json: { card: 'b', amount: 2 } }), rejects('KW_INT_CONTEXT_MISMATCH'));
    assert.ok(client);
  });

  void test('signed requests: a service that requires a signer refuses unsigned ones', async () => {
    const signer = await SigningKey.generate('ed25519');
    const strict = Fastify({ logger: false });
    await strict.register(sealedHttpPlugin, { identities: [service], audience: 'strict', verify: [signer.verifyingKey] });
    strict.post('/x', async (req) => ({ by: req.keyward?.signer ?? null }));
    await strict.listen({ host: '127.0.0.1', port: 0 });
    try {
      const url = `http://127.0.0.1:${(strict.server.address() as { port: number }).port}/x`;
      const ok = await new SealedHttpClient({ recipient: await service.recipient(), audience: 'strict', signer }).fetch(url, { method: 'POST', json: {} });
      assert.equal(typeof (ok.json() as { by: string }).by, 'string');
      await assert.rejects(new SealedHttpClient({ recipient: await service.recipient(), audience: 'strict' }).fetch(url, { method: 'POST', json: {} }), rejects('KW_INT_OPEN_FAILED'));
    } finally {
      await strict.close();
    }
  });
});
