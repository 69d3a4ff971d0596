/**
 * `keyward server` trusted-execution settings (issue #8; docs/tee.md §Configuration):
 * "attest" roots and the remote keyholder from --config / flags / environment.
 * The roots read from the config file reach a real server: with the swtpm's
 * manufacturer root configured, a TPM nonce request gets its credential
 * challenge (without it, KW_ATTEST_NOT_CONFIGURED).
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isKeywardError } from '@keyward/core';
import { startServer, type RunningServer } from '@keyward/server';
import { teeSettings } from '../src/commands/server/server-tee.js';
import { SoftTpm } from '../../attest/test/swtpm.js';

const b64u = (b: Uint8Array): string => Buffer.from(b).toString('base64url');

function rejectsCode(f: () => unknown, code: string, re?: RegExp): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(isKeywardError(e), String(e));
    assert.equal(e.code, code, e.message);
    if (re) assert.match(e.message, re);
    return true;
  });
}

void describe('keyward server: attest roots and remote keyholder from --config', () => {
  let dir: string;
  let tpm: SoftTpm;
  let rootPem: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kw-tee-cli-'));
    tpm = await SoftTpm.start();
    rootPem = tpm.manufacturerCa().root;
    writeFileSync(join(dir, 'tpm-roots.pem'), `${rootPem}\n${tpm.manufacturerCa().issuer}`);
    writeFileSync(join(dir, 'empty.pem'), 'no certificate here\n');
    writeFileSync(join(dir, 'kh-policy.json'), JSON.stringify({ platforms: ['tpm2'], measurements: { 'sha256:PCR16': 'ab'.repeat(32) } }));
  });
  after(() => {
    tpm?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  void test('"attest" in the config file: root files (relative to the file, several PEMs each) and the nonce lifetime', () => {
    const cfg = join(dir, 'server.json');
    const s = teeSettings({}, {}, { attest: { tpm_roots: ['tpm-roots.pem'], nonce_ttl_seconds: 30 } }, cfg);
    assert.equal(s.attest?.tpmRoots?.length, 2);
    assert.equal(new X509Certificate(s.attest.tpmRoots[0]!).fingerprint256, new X509Certificate(rootPem).fingerprint256);
    assert.equal(s.attest?.nonceTtlSeconds, 30);
    assert.equal(s.attest?.nitroRoots, undefined, 'unset lists keep their defaults');
    assert.equal(s.keyholderConnect, undefined);
    rejectsCode(() => teeSettings({}, {}, { attest: { tmp_roots: ['x.pem'] } }, cfg), 'KW_INVALID_ARGUMENT', /attest\.tmp_roots/);
    rejectsCode(() => teeSettings({}, {}, { attest: { tpm_roots: 'tpm-roots.pem' } }, cfg), 'KW_INVALID_ARGUMENT');
    rejectsCode(() => teeSettings({}, {}, { attest: { tpm_roots: ['empty.pem'] } }, cfg), 'KW_INVALID_ARGUMENT', /no PEM certificate/);
    rejectsCode(() => teeSettings({}, {}, { attest: { tpm_roots: ['missing.pem'] } }, cfg), 'KW_IO');
    rejectsCode(() => teeSettings({}, {}, { attest: { nonce_ttl_seconds: 601 } }, cfg), 'KW_INVALID_ARGUMENT');
  });

  void test('the remote keyholder: flags > environment > config file, and each part required', () => {
    const cfg = join(dir, 'server.json');
    const file = { keyholder: 'tcp:10.0.0.5:7300', keyholder_client_key: 'api.key.pem', keyholder_policy: 'kh-policy.json' };
    const s = teeSettings({}, {}, file, cfg);
    assert.equal(s.keyholderConnect, 'tcp:10.0.0.5:7300');
    assert.equal(s.keyholderClientKey, join(dir, 'api.key.pem'));
    assert.deepEqual(s.keyholderPolicy, { platforms: ['tpm2'], measurements: { 'sha256:PCR16': 'ab'.repeat(32) } });
    assert.equal(teeSettings({}, { KEYWARD_KEYHOLDER: 'tcp:127.0.0.1:9' }, file, cfg).keyholderConnect, 'tcp:127.0.0.1:9');
    assert.equal(teeSettings({ keyholder: 'tcp:127.0.0.1:8' }, { KEYWARD_KEYHOLDER: 'tcp:127.0.0.1:9' }, file, cfg).keyholderConnect, 'tcp:127.0.0.1:8');
    assert.deepEqual(teeSettings({}, {}, { ...file, keyholder_policy: { platforms: ['tpm2'] } }, cfg).keyholderPolicy, { platforms: ['tpm2'] });
    rejectsCode(() => teeSettings({ keyholder: 'http://x' }, {}, {}, cfg), 'KW_INVALID_ARGUMENT', /tcp:HOST:PORT/);
    rejectsCode(() => teeSettings({ keyholder: 'tcp:127.0.0.1:8' }, {}, {}, cfg), 'KW_INVALID_ARGUMENT', /client-key/);
    rejectsCode(() => teeSettings({ keyholder: 'tcp:127.0.0.1:8', 'keyholder-client-key': 'k.pem' }, {}, {}, cfg), 'KW_INVALID_ARGUMENT', /keyholder-policy/);
    rejectsCode(() => teeSettings({ 'keyholder-client-key': 'k.pem' }, {}, {}, cfg), 'KW_INVALID_ARGUMENT', /only with --keyholder/);
  });

  void test('the configured TPM roots reach the server: a TPM nonce request gets its credential challenge', async () => {
    let s: RunningServer | null = null;
    try {
      const tee = teeSettings({}, {}, { attest: { tpm_roots: ['tpm-roots.pem'] } }, join(dir, 'server.json'));
      s = await startServer({ dev: true, listen: '127.0.0.1:0', logLevel: 'silent', schedulerMs: 0, ...tee });
      const root = s.rootToken!;
      const inject = async (method: 'POST' | 'PUT', url: string, body: unknown, token = root) => {
        const r = await s!.fastify.inject({ method, url, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, payload: JSON.stringify(body) });
        return { status: r.statusCode, body: JSON.parse(r.body) as { token?: string; tpm_challenge?: { tpm2_tools_file: string } } };
      };
      assert.equal((await inject('POST', '/v1/keys/app/k', { type: 'aes256' })).status, 201);
      assert.equal((await inject('PUT', '/v1/keys/app/k/release-policy', { policy: { platforms: ['tpm2'], measurements: { 'sha256:PCR16': '00'.repeat(32) } } })).status, 200);
      const t = await inject('POST', '/v1/tokens', { principal: 'enclave-svc', ns: 'app', roles: ['workload'] });
      assert.equal(t.status, 201, JSON.stringify(t.body));
      const p = await inject('PUT', '/v1/policies/app/workload', { grants: [{ roles: ['workload'], operations: ['release'], keys: ['app/*'] }] });
      assert.equal(p.status, 200, JSON.stringify(p.body));
      const ak = tpm.createAk('cli-ak', 'ecdsa');
      const issuer = new Uint8Array(new X509Certificate(tpm.manufacturerCa().issuer).raw);
      const n = await inject('POST', '/v1/attest/app/k/nonce', { tpm: { ek_certificate: b64u(tpm.ekCertificate()), ek_intermediates: [b64u(issuer)], ek_public: b64u(tpm.ekPublic()), ak_public: b64u(ak.public) } }, t.body.token);
      assert.equal(n.status, 200, JSON.stringify(n.body));
      assert.ok((n.body.tpm_challenge?.tpm2_tools_file.length ?? 0) > 100);
    } finally {
      await s?.close();
    }
  });
});
