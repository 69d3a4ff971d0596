/**
 * Clients pinning a keyholder that attests with helper-program evidence
 * (issue #8; docs/tee.md §Pinning the keyholder from a client,
 * `@keyward/client/keyholder-evidence`). The keyholder runs apart, started by
 * the CLI command itself (`keyward keyholder serve --evidence command
 * --evidence-platform aws-nitro`), with a real helper program
 * (fixtures/nitro-evidence.mjs, as command-evidence.test.ts: a Nitro-format
 * document whose `nonce` is the binding it is given, signed by a TEST P-384
 * chain); a real server (startServer, HTTP on a port) relays, itself pinned
 * to the keyholder's PCR0 on its channel.
 *
 * Proven: a client pinned to PCR0–2 verifies the helper's evidence itself
 * (its test root, its nonce and the keyholder's response key in the
 * document's nonce) and accepts keyholder-signed datakey / unwrap / encrypt /
 * decrypt / sign results (they open; a swapped result is refused); another
 * PCR0, or a required PCR the evidence lacks, is
 * KW_CLIENT_KEYHOLDER_MEASUREMENT_MISMATCH with only the two attestation
 * requests sent; a chain to a root the client does not pin (another test
 * root, or the default AWS root) or a pin for another platform is
 * KW_CLIENT_KEYHOLDER_ATTESTATION_FAILED; an API naming another response
 * key, an earlier document replayed for a new nonce, and a helper that does
 * not embed the binding are refused (ATTEST_NONCE_MISMATCH); debug-mode
 * evidence (PCR0–2 zero) is refused unless `allowDebug`.
 *
 * Not proven: that a real NSM / SNP / TDX helper works (no such hardware
 * here; real documents cannot carry a fresh binding of ours). SNP and TDX
 * evidence through this verifier: packages/client/test/keyholder-evidence.test.ts.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { KeywardHttpClient, isKeywardClientError, type JsonResponse } from '@keyward/client';
import { evidenceKeyholderPin, type KeyholderPlatformPin } from '@keyward/client/keyholder-evidence';
import { HpkeIdentity, open } from '@keyward/core';
import { releaseContext } from '../../src/keyholder/ops/caller.js';
import { sealShareForBoot } from '../../src/keyholder/unseal-key.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { makeCert, type TestCert } from '../../../attest/test/helpers.js';
import { b64u, call, enrollAdmin, newDeviceKeys } from '../api/helpers.js';
import { CLI_ARGS } from '../built.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const FIXTURE = fileURLToPath(new URL('./fixtures/nitro-evidence.mjs', import.meta.url));

type Tamper = (url: string, res: Response) => Promise<Response> | Response;

void describe('clients pin a keyholder attested by helper-program evidence (Nitro format)', () => {
  let dir: string;
  let cli: ChildProcess;
  let server: RunningServer;
  let root: TestCert;
  let fixture: { keyPem: string; leaf: string; chain: string[]; pcrs: Record<number, string> };
  let token: string;
  let device: { keyId: string; seed: Uint8Array };
  let alice: HpkeIdentity;
  let recipient: string;
  const pcr = (i: number) => createHash('sha384').update(`pcr ${i} of the keyholder image`).digest('hex');
  const apiKey = generateKeyPairSync('ed25519');
  const pinned = (): KeyholderPlatformPin => ({ measurements: { PCR0: pcr(0), PCR1: pcr(1), PCR2: pcr(2) } });

  /** A client of the API; `pin` overrides the Nitro pin, `roots` the client's Nitro roots; `tamper` plays a proxy (or a lying API); `seen` logs every request. */
  const clientOf = (o: { pin?: Parameters<typeof evidenceKeyholderPin>[0]; nitro?: Partial<KeyholderPlatformPin>; tamper?: Tamper; seen?: string[] } = {}) => new KeywardHttpClient({
    addresses: [server.url], token, device: { keyId: device.keyId, signingSeed: device.seed },
    keyholderPin: evidenceKeyholderPin(o.pin ?? { platforms: { 'aws-nitro': { ...pinned(), ...o.nitro } }, roots: { nitroRoots: [root.certPem] } }),
    fetch: async (input, init) => {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
      o.seen?.push(`${init?.method ?? 'GET'} ${new URL(url).pathname}`);
      const res = await fetch(input, init);
      return o.tamper ? o.tamper(url, res) : res;
    },
  });
  const rebuilt = async (res: Response, f: (body: Record<string, unknown>) => void): Promise<Response> => {
    const body = await res.json() as Record<string, unknown>;
    const headers = new Headers(res.headers);
    headers.delete('content-length');
    f(body);
    return new Response(JSON.stringify(body), { status: res.status, headers });
  };
  const onAttestation = (f: (body: Record<string, unknown>) => void): Tamper => (url, res) => (url.endsWith('/v1/sys/keyholder/attestation') ? rebuilt(res, f) : res);
  const expectCode = async (p: Promise<unknown>, code: string, message?: RegExp) => {
    await assert.rejects(p, (e: unknown) => {
      assert.ok(isKeywardClientError(e), String(e));
      assert.equal(e.code, code, e.message);
      if (message) assert.match(e.message, message);
      return true;
    });
  };
  const ATTESTATION_ONLY = ['GET /v1/sys/keyholder/attestation', 'POST /v1/sys/keyholder/attestation'];
  /** The helper's behaviour for the next proofs (fixtures/nitro-evidence.mjs modes: '' honest, 'fixed' ignores the binding). */
  const helperMode = (mode: string) => writeFileSync(join(dir, 'mode'), mode);
  const writeFixture = (pcrs: Record<number, string>) => writeFileSync(join(dir, 'fixture.json'), JSON.stringify({ ...fixture, pcrs }));
  const openSealed = async (r: JsonResponse<{ sealed: string; version: number }>, context: Record<string, string>) =>
    (await open(Uint8Array.from(Buffer.from(r.body.sealed, 'base64url')), { identities: [alice], context: releaseContext(r.requestHash!, { ns: 'app', key: 'files', version: r.body.version }, context) })).plaintext;

  before(async () => {
    // Under the checkout, as keyholder-pin.test.ts; a fresh clone has no .cache yet.
    const cache = join(ROOT, 'node_modules', '.cache');
    mkdirSync(cache, { recursive: true });
    dir = mkdtempSync(join(cache, 'kw-khpin-ev-'));
    root = makeCert({ subject: '/CN=test nitro root', alg: 'p384', ca: true });
    const inter = makeCert({ subject: '/CN=test nitro intermediate', alg: 'p384', ca: true, issuer: root });
    const leaf = makeCert({ subject: '/CN=test enclave', alg: 'p384', ca: false, issuer: inter });
    const b64 = (c: TestCert) => Buffer.from(c.der).toString('base64');
    fixture = { keyPem: leaf.keyPem, leaf: b64(leaf), chain: [b64(root), b64(inter)], pcrs: { 0: pcr(0), 1: pcr(1), 2: pcr(2) } };
    writeFixture(fixture.pcrs);
    helperMode('');
    // The helper as a deployment installs it: an executable at an absolute path. A wrapper picks the
    // stand-in's mode from a file, so one keyholder process can be made to misbehave mid-test.
    const stand = join(dir, 'nitro-evidence.mjs');
    copyFileSync(FIXTURE, stand);
    const program = join(dir, 'nsm-evidence');
    writeFileSync(program, `#!/bin/sh\nKW_TEST_NITRO_MODE="$(cat '${join(dir, 'mode')}')" exec '${process.execPath}' '${stand}'\n`);
    chmodSync(program, 0o755);
    writeFileSync(join(dir, 'api.pub.pem'), apiKey.publicKey.export({ type: 'spki', format: 'pem' }));
    writeFileSync(join(dir, 'api.key.pem'), apiKey.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });

    // `keyward keyholder serve --evidence command`, the CLI command itself (from source).
    cli = spawn(process.execPath, [...CLI_ARGS,
      'keyholder', 'serve', '--listen', 'tcp:127.0.0.1:0', '--state', join(dir, 'kh', 'keyholder.json'), '--authorized-client', join(dir, 'api.pub.pem'),
      '--evidence', 'command', '--evidence-command', program, '--evidence-platform', 'aws-nitro', '--evidence-timeout-ms', '5000'], {
      cwd: ROOT, env: { ...process.env, KW_TEST_NITRO_FIXTURE: join(dir, 'fixture.json') }, stdio: ['ignore', 'ignore', 'pipe'],
    });
    const port = await new Promise<number>((resolve, reject) => {
      let buf = '';
      cli.stderr!.setEncoding('utf8');
      cli.stderr!.on('data', (c: string) => {
        buf += c;
        const m = /"msg":"ready","listen":"tcp:127\.0\.0\.1:(\d+)"/.exec(buf);
        if (m) resolve(Number(m[1]));
      });
      cli.once('exit', (code) => reject(new Error(`keyward keyholder serve exited ${code}: ${buf}`)));
    });

    server = await startServer({
      data: mkdtempSync(join(dir, 'api-')), listen: '127.0.0.1:0', logLevel: 'silent', schedulerMs: 0,
      keyholderConnect: `tcp:127.0.0.1:${port}`, keyholderClientKey: join(dir, 'api.key.pem'),
      keyholderPolicy: { platforms: ['aws-nitro'], measurements: { PCR0: pcr(0) } }, attest: { nitroRoots: [root.certPem] },
      // Every client attestation is one POST from 127.0.0.1; this file makes more than the default burst.
      rateLimit: { perAddress: { ratePerSecond: 50, burst: 100 } },
    });
    const init = await server.initialize({ shares: 2, threshold: 2 });
    for (const sh of init.shares) {
      const k = await server.keyholder.call('unseal-key', {});
      await server.keyholder.call('unseal', { share: Buffer.from(await sealShareForBoot(sh.text, k.recipient, k.bootId)).toString('base64url') });
    }
    const admin = await enrollAdmin(server, init.rootToken);
    assert.equal((await call(server, 'POST', '/v1/keys/app/files', { token: admin, body: { type: 'aes256' } })).status, 201);
    assert.equal((await call(server, 'POST', '/v1/keys/app/signer', { token: admin, body: { type: 'ed25519' } })).status, 201);
    token = (await call(server, 'POST', '/v1/tokens', { token: admin, body: { principal: 'svc', ns: 'app', roles: ['worker'] } })).body.token as string;
    const keys = newDeviceKeys();
    const sk = await call(server, 'POST', '/v1/auth/signing-keys', { token, body: { alg: 'ed25519', public_key: b64u(keys.publicKey) } });
    device = { keyId: sk.body.key_id as string, seed: keys.seed };
    const p = await call(server, 'PUT', '/v1/policies/app/worker', { token: admin, body: { grants: [{ roles: ['worker'], operations: ['datakey', 'unwrap', 'encrypt', 'decrypt', 'sign'], keys: ['app/*'] }] } });
    assert.equal(p.status, 200, JSON.stringify(p.body));
    alice = await HpkeIdentity.generate('x25519');
    recipient = (await alice.recipient()).toString();
  });

  after(async () => {
    await server?.close();
    cli?.kill('SIGTERM');
    if (cli && cli.exitCode === null) await new Promise((r) => { cli.once('exit', r); setTimeout(r, 3000).unref(); });
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  void test('a client pinned to PCR0–2 verifies the helper\'s evidence itself and accepts keyholder-signed results, which open', async () => {
    const seen: string[] = [];
    const c = clientOf({ seen });
    const att = await c.keyholderAttestation();
    assert.equal(att.platform, 'aws-nitro');
    assert.deepEqual([att.measurements.PCR0, att.measurements.PCR1, att.measurements.PCR2], [pcr(0), pcr(1), pcr(2)]);
    const dk = await c.data<{ sealed: string; wrapped: string; version: number }>('app', 'files', 'datakey', { recipient, context: { t: 'n' } });
    assert.match(dk.keyholderSignature ?? '', /^[A-Za-z0-9_-]{86}$/);
    const uw = await c.data<{ sealed: string; version: number }>('app', 'files', 'unwrap', { version: dk.body.version, wrapped: dk.body.wrapped, context: { t: 'n' }, recipient });
    assert.ok(uw.keyholderSignature);
    const dataKey = await openSealed(dk, { t: 'n' });
    assert.equal(dataKey.length, 32);
    assert.deepEqual(await openSealed(uw, { t: 'n' }), dataKey);
    const enc = await c.data<{ ciphertext: string }>('app', 'files', 'encrypt', { plaintext: b64u(new TextEncoder().encode('pinned to an enclave')), context: {} });
    const dec = await c.data<{ sealed: string; version: number }>('app', 'files', 'decrypt', { ciphertext: enc.body.ciphertext, context: {}, recipient });
    assert.equal(Buffer.from(await openSealed(dec, {})).toString('utf8'), 'pinned to an enclave');
    const sig = await c.data<{ signature: string }>('app', 'signer', 'sign', { message: b64u(new TextEncoder().encode('m')) });
    assert.ok(enc.keyholderSignature && dec.keyholderSignature && sig.keyholderSignature);
    // Attested once, before anything else was sent.
    assert.deepEqual(seen.slice(0, 2), ATTESTATION_ONLY);
    assert.equal(seen.filter((s) => s.includes('/keyholder/attestation')).length, 2);

    // The keyholder's signature, checked under the response key the evidence bound: a swapped result is refused.
    const swapped = clientOf({ tamper: (url, res) => (url.includes('/v1/data/') ? rebuilt(res, (b) => { b.sealed = dk.body.sealed; }) : res) });
    await expectCode(swapped.data('app', 'files', 'unwrap', { version: dk.body.version, wrapped: dk.body.wrapped, context: { t: 'n' }, recipient }), 'KW_CLIENT_KEYHOLDER_SIGNATURE_INVALID');
  });

  void test('another PCR0, or a required PCR the evidence lacks, is KW_CLIENT_KEYHOLDER_MEASUREMENT_MISMATCH; nothing reaches the data plane', async () => {
    const seen: string[] = [];
    await expectCode(clientOf({ seen, nitro: { measurements: { PCR0: 'ab'.repeat(48), PCR1: pcr(1) } } }).data('app', 'files', 'datakey', { recipient, context: {} }), 'KW_CLIENT_KEYHOLDER_MEASUREMENT_MISMATCH', /ATTEST_POLICY_MEASUREMENT_MISMATCH/);
    assert.deepEqual(seen, ATTESTATION_ONLY);
    seen.length = 0;
    // PCR8 (the image signing certificate) is pinned but this image is unsigned: the document has no PCR8.
    await expectCode(clientOf({ seen, nitro: { measurements: { PCR0: pcr(0), PCR8: 'cd'.repeat(48) } } }).data('app', 'signer', 'sign', { message: 'bQ' }), 'KW_CLIENT_KEYHOLDER_MEASUREMENT_MISMATCH', /ATTEST_POLICY_MEASUREMENT_MISSING/);
    assert.deepEqual(seen, ATTESTATION_ONLY);
    // A list admits several builds (rolling upgrade).
    assert.equal((await clientOf({ nitro: { measurements: { PCR0: ['ab'.repeat(48), pcr(0)] } } }).keyholderAttestation()).platform, 'aws-nitro');
  });

  void test('evidence chaining to a root the client does not pin, or from a platform it does not pin, is KW_CLIENT_KEYHOLDER_ATTESTATION_FAILED', async () => {
    const rogue = makeCert({ subject: '/CN=test nitro root', alg: 'p384', ca: true });
    const seen: string[] = [];
    await expectCode(clientOf({ seen, pin: { platforms: { 'aws-nitro': pinned() }, roots: { nitroRoots: [rogue.certPem] } } }).data('app', 'files', 'datakey', { recipient, context: {} }), 'KW_CLIENT_KEYHOLDER_ATTESTATION_FAILED', /ATTEST_UNTRUSTED_ROOT/);
    assert.deepEqual(seen, ATTESTATION_ONLY);
    // No roots given: the AWS Nitro root pinned in @keyward/attest, which did not issue this test chain.
    await expectCode(clientOf({ pin: { platforms: { 'aws-nitro': pinned() } } }).keyholderAttestation(), 'KW_CLIENT_KEYHOLDER_ATTESTATION_FAILED', /ATTEST_UNTRUSTED_ROOT/);
    // A client that pins an SNP keyholder refuses this Nitro one before asking for evidence.
    const snpOnly: string[] = [];
    await expectCode(clientOf({ seen: snpOnly, pin: { platforms: { 'amd-sev-snp': { measurements: { MEASUREMENT: 'ab'.repeat(48) } } } } }).keyholderAttestation(), 'KW_CLIENT_KEYHOLDER_ATTESTATION_FAILED', /offers aws-nitro evidence; this pin accepts amd-sev-snp/);
    assert.deepEqual(snpOnly, ['GET /v1/sys/keyholder/attestation']);
  });

  void test('evidence that does not bind this nonce and this response key is refused: a lying API, a replayed document, a helper ignoring the binding', async () => {
    // The API names another response key than the one the keyholder's document binds.
    const fake = Buffer.from(generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }).x!, 'base64url').toString('base64url');
    await expectCode(clientOf({ tamper: onAttestation((b) => { b.responseKey = fake; }) }).keyholderAttestation(), 'KW_CLIENT_KEYHOLDER_ATTESTATION_FAILED', /ATTEST_NONCE_MISMATCH/);
    // A genuine document of this keyholder, made for an earlier nonce, replayed for the client's fresh one.
    const earlier = await call(server, 'POST', '/v1/sys/keyholder/attestation', { token, body: { nonce: b64u(new Uint8Array(32).fill(1)), challenge: {} } });
    assert.equal(earlier.status, 200, JSON.stringify(earlier.body));
    assert.equal(typeof earlier.body.evidence.evidence, 'string');
    await expectCode(clientOf({ tamper: (url, res) => (url.endsWith('/v1/sys/keyholder/attestation') && res.status === 200 ? rebuilt(res, (b) => { if (b.evidence) b.evidence = earlier.body.evidence; }) : res) }).keyholderAttestation(),
      'KW_CLIENT_KEYHOLDER_ATTESTATION_FAILED', /ATTEST_NONCE_MISMATCH/);
    // The keyholder's helper prints a document that does not carry the binding it was given.
    helperMode('fixed');
    try {
      await expectCode(clientOf().keyholderAttestation(), 'KW_CLIENT_KEYHOLDER_ATTESTATION_FAILED', /ATTEST_NONCE_MISMATCH/);
    } finally {
      helperMode('');
    }
    assert.equal((await clientOf().keyholderAttestation()).platform, 'aws-nitro');
  });

  void test('debug-mode evidence (PCR0–2 zero) is refused unless the pin allows debug', async () => {
    const zero = '00'.repeat(48);
    writeFixture({ 0: zero, 1: zero, 2: zero });
    try {
      const debugPin = { measurements: { PCR0: zero, PCR1: zero, PCR2: zero } };
      await expectCode(clientOf({ nitro: debugPin }).keyholderAttestation(), 'KW_CLIENT_KEYHOLDER_MEASUREMENT_MISMATCH', /ATTEST_POLICY_DEBUG/);
      assert.equal((await clientOf({ nitro: { ...debugPin, allowDebug: true } }).keyholderAttestation()).measurements.PCR0, zero);
    } finally {
      writeFixture(fixture.pcrs);
    }
  });
});
