/**
 * `sys/seal` (then every key op is 503 KW_SEALED), dev mode, configuration
 * precedence, and log hygiene (no tokens, signature headers or bodies).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, test } from 'node:test';
import { HpkeIdentity } from '@keyward/core';
import { ServerStartError, loadConfig } from '../../src/config.js';
import { startServer } from '../../src/server.js';
import { b64u, call, enrollAdmin, newDeviceKeys, newServer, signedCall, unsealAll, type Device } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'kw-sys-'));
process.once('exit', () => rmSync(tmp, { recursive: true, force: true }));

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (c: Buffer) => { text += c.toString(); });
  return { stream, text: () => text };
}

void describe('sys/seal', () => {
  void test('admin seals: health says sealed, every key op is 503 KW_SEALED; a non-admin cannot seal', async () => {
    const s = await newServer();
    try {
      const init = await s.initialize({ shares: 3, threshold: 2 });
      await unsealAll(s, init.shares.slice(0, 2));
      const root = await enrollAdmin(s, init.rootToken);
      for (const [name, type] of [['k', 'aes256'], ['sig', 'ed25519'], ['m', 'hmac-sha256']] as const) {
        assert.equal((await call(s, 'POST', `/v1/keys/app/${name}`, { token: root, body: { type } })).status, 201);
      }
      const t = await call(s, 'POST', '/v1/tokens', { token: root, body: { principal: 'svc', ns: 'app', roles: ['w'] } });
      const keys = newDeviceKeys();
      const sk = await call(s, 'POST', '/v1/auth/signing-keys', { token: t.body.token, body: { alg: 'ed25519', public_key: b64u(keys.publicKey) } });
      const device: Device = { keyId: sk.body.key_id, ...keys };
      await call(s, 'PUT', '/v1/policies/app/w', { token: root, body: { grants: [{ roles: ['w'], operations: ['datakey', 'unwrap', 'rewrap', 'encrypt', 'decrypt', 'sign', 'verify', 'mac'], keys: ['app/*'] }] } });
      const recipient = (await (await HpkeIdentity.generate('x25519')).recipient()).toString();
      const dk = await signedCall(s, t.body.token, device, '/v1/data/app/k/datakey', { recipient, context: {} });
      assert.equal(dk.status, 200, JSON.stringify(dk.body));

      const no = await call(s, 'POST', '/v1/sys/seal', { token: t.body.token });
      assert.equal(no.status, 403);
      assert.equal((await call(s, 'POST', '/v1/sys/seal')).status, 401);
      const sealed = await call(s, 'POST', '/v1/sys/seal', { token: root });
      assert.deepEqual([sealed.status, sealed.body], [200, { sealed: true }]);
      const h = await call(s, 'GET', '/v1/sys/health');
      assert.deepEqual([h.body.initialized, h.body.sealed, h.body.keyholder], [true, true, 'up']);

      const msg = b64u(new TextEncoder().encode('m'));
      const ops: [string, () => Promise<{ status: number; body: { error?: { code: string } } }>][] = [
        ['keys create', () => call(s, 'POST', '/v1/keys/app/new', { token: root, body: { type: 'aes256' } })],
        ['keys rotate', () => call(s, 'POST', '/v1/keys/app/k/rotate', { token: root })],
        ['datakey', () => signedCall(s, t.body.token, device, '/v1/data/app/k/datakey', { recipient, context: {} })],
        ['unwrap', () => signedCall(s, t.body.token, device, '/v1/data/app/k/unwrap', { version: 1, wrapped: dk.body.wrapped, context: {}, recipient })],
        ['rewrap', () => signedCall(s, t.body.token, device, '/v1/data/app/k/rewrap', { items: [{ version: 1, wrapped: dk.body.wrapped }] })],
        ['encrypt', () => signedCall(s, t.body.token, device, '/v1/data/app/k/encrypt', { plaintext: msg, context: {} })],
        ['decrypt', () => signedCall(s, t.body.token, device, '/v1/data/app/k/decrypt', { ciphertext: 'kw:v1:AAAA', context: {}, recipient })],
        ['sign', () => signedCall(s, t.body.token, device, '/v1/data/app/sig/sign', { message: msg })],
        ['verify', () => signedCall(s, t.body.token, device, '/v1/data/app/sig/verify', { message: msg, signature: 'kw:v1:AAAA' })],
        ['mac', () => signedCall(s, t.body.token, device, '/v1/data/app/m/mac', { message: msg })],
      ];
      for (const [name, op] of ops) {
        const r = await op();
        assert.equal(r.status, 503, `${name}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.error?.code, 'KW_SEALED', name);
      }
      assert.equal(await s.store.getKey('app', 'new'), null);
      // Unsealing again (the boot key changed at seal) brings it back.
      await unsealAll(s, init.shares.slice(1, 3));
      assert.equal((await call(s, 'POST', '/v1/keys/app/k/rotate', { token: root })).status, 200);
    } finally {
      await s.close();
    }
  });
});

void describe('dev mode', () => {
  void test('KEYWARD_DEV + KEYWARD_DEV_ROOT_TOKEN: auto-unsealed, loopback only, the token works, data removed at close', async () => {
    const token = `kw_${'d'.repeat(43)}`;
    const cfg = loadConfig({ env: { KEYWARD_DEV: '1', KEYWARD_DEV_ROOT_TOKEN: token, KEYWARD_LISTEN: '127.0.0.1:0', KEYWARD_LOG_LEVEL: 'silent' } });
    const log = capture();
    const s = await startServer({ ...cfg, logStream: log.stream });
    let dataDir = '';
    try {
      dataDir = s.dataDir;
      assert.equal(s.rootToken, token);
      assert.equal(s.shares?.length, 3);
      const h = await (await fetch(`${s.url}/v1/sys/health`)).json() as { initialized: boolean; sealed: boolean };
      assert.deepEqual([h.initialized, h.sealed], [true, false]);
      const c = await fetch(`${s.url}/v1/keys/dev/k`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ type: 'aes256' }) });
      assert.equal(c.status, 201);
      assert.match(log.text(), /KEYWARD DEV MODE/);
      assert.ok(!log.text().includes(token), 'the root token is not logged');
      // The init is the log's first event, adopted by the keyholder at its start.
      const first = JSON.parse((await s.store.getAuditEvent(0))!.event) as { op: string; details: { token_id: string } };
      assert.equal(first.op, 'sys.init');
      const st = await s.keyholder.call('status', {});
      assert.equal(st.audit.size, await s.store.auditSize());
    } finally {
      await s.close();
    }
    assert.ok(!existsSync(dataDir), 'the temporary data directory is removed');
    await assert.rejects(startServer({ dev: true, listen: '0.0.0.0:0', logLevel: 'silent' }), (e: unknown) => e instanceof ServerStartError && e.reason === 'DEV_LOOPBACK_ONLY');
  });
});

void describe('loadConfig', () => {
  void test('precedence: flags > env > file > defaults', () => {
    const file = join(tmp, 'config.json');
    writeFileSync(file, JSON.stringify({ listen: '10.0.0.1:1', data: '/from/file', logLevel: 'warn', origin: 'file.example/audit', insecure: true }));
    const env = { KEYWARD_LISTEN: '10.0.0.2:2', KEYWARD_DATA: '/from/env', KEYWARD_LOG_LEVEL: 'error' };
    const c = loadConfig({ file, env, flags: { listen: '10.0.0.3:3' } });
    assert.equal(c.listen, '10.0.0.3:3', 'flag wins');
    assert.equal(c.data, '/from/env', 'env beats file');
    assert.equal(c.logLevel, 'error');
    assert.equal(c.origin, 'file.example/audit', 'file beats defaults');
    assert.equal(c.insecure, true);
    const d = loadConfig({ env: {} });
    assert.deepEqual([d.listen, d.logLevel, d.insecure, d.dev], ['127.0.0.1:8200', 'info', false, false]);
    // A flag left undefined does not hide the env value.
    assert.equal(loadConfig({ env, flags: { data: undefined } }).data, '/from/env');
  });

  void test('refusals are typed: unreadable file (KW_IO), not JSON, invalid values', () => {
    const bad = (f: () => unknown, code: string) => assert.throws(f, (e: unknown) => e instanceof ServerStartError && e.code === code && e.reason === 'CONFIG_INVALID');
    bad(() => loadConfig({ file: join(tmp, 'missing.json'), env: {} }), 'KW_IO');
    writeFileSync(join(tmp, 'junk.json'), '{ listen');
    bad(() => loadConfig({ file: join(tmp, 'junk.json'), env: {} }), 'KW_INVALID_ARGUMENT');
    bad(() => loadConfig({ env: { KEYWARD_LISTEN: 'no-port' } }), 'KW_INVALID_ARGUMENT');
    bad(() => loadConfig({ env: {}, flags: { logLevel: 'loud' as 'info' } }), 'KW_INVALID_ARGUMENT');
  });
});

void describe('logs', () => {
  void test('the log stream never holds the bearer token, signature headers or request bodies', async () => {
    const log = capture();
    const s = await newServer({ logLevel: 'trace', logStream: log.stream });
    const canary = 'CANARY-7d1f0c2e-body-value';
    let secrets: string[] = [];
    try {
      const init = await s.initialize({ shares: 2, threshold: 2 });
      await unsealAll(s, init.shares);
      const root = await enrollAdmin(s, init.rootToken);
      await call(s, 'POST', '/v1/keys/app/k', { token: root, body: { type: 'aes256' } });
      const t = await call(s, 'POST', '/v1/tokens', { token: root, body: { principal: 'svc', ns: 'app', roles: ['w'] } });
      const keys = newDeviceKeys();
      const sk = await call(s, 'POST', '/v1/auth/signing-keys', { token: t.body.token, body: { alg: 'ed25519', public_key: b64u(keys.publicKey) } });
      await call(s, 'PUT', '/v1/policies/app/w', { token: root, body: { grants: [{ roles: ['w'], operations: ['encrypt'], keys: ['app/*'] }] } });
      const device = { keyId: sk.body.key_id, ...keys };
      const plaintext = b64u(new TextEncoder().encode(canary));
      const enc = await signedCall(s, t.body.token, device, '/v1/data/app/k/encrypt', { plaintext, context: { note: canary } });
      assert.equal(enc.status, 200, JSON.stringify(enc.body));
      // Refused and malformed requests log too.
      const denied = await signedCall(s, t.body.token, device, '/v1/data/app/k/mac', { message: plaintext });
      assert.equal(denied.status, 403);
      await call(s, 'POST', '/v1/keys/app/x', { token: root, raw: `{"type":"${canary}"` });
      await call(s, 'GET', '/v1/keys/app', { token: `kw_${'Z'.repeat(43)}` });
      // Through a real socket as well (fastify logs requests it serves on the socket).
      await fetch(`${s.url}/v1/keys/app`, { headers: { authorization: `Bearer ${root}` } });
      await fetch(`${s.url}/v1/keys/app/y`, { method: 'POST', headers: { authorization: `Bearer ${root}`, 'content-type': 'application/json' }, body: JSON.stringify({ type: 'aes256', canary }) });
      secrets = [root, t.body.token, enc.sig.Signature!, enc.sig['Signature-Input']!, canary, plaintext, enc.body.ciphertext];
    } finally {
      await s.close();
    }
    const text = log.text();
    assert.match(text, /"msg":"request completed"/, 'requests are logged');
    for (const secret of secrets) assert.ok(!text.includes(secret), `the log holds ${secret.slice(0, 24)}…`);
    assert.ok(!/authorization/i.test(text.replace(/"authorization":"\[redacted\]"/gi, '')), 'no authorization header');
  });
});
