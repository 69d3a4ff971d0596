/**
 * Clients pinning the keyholder (issue #8; docs/tee.md §Pinning the keyholder
 * from a client). The keyholder runs apart, started by the CLI command itself
 * (`keyward keyholder serve`), on TCP behind the attested channel, with its
 * evidence from a real software TPM (swtpm); a real server relays.
 *
 * Proven: a client pinned to the keyholder's PCR 16 verifies the evidence
 * itself (its own MakeCredential challenge, a quote binding its nonce and the
 * keyholder's response key) and accepts datakey/unwrap results signed by that
 * keyholder (and they open); a client pinned to another value refuses with
 * KW_CLIENT_KEYHOLDER_MEASUREMENT_MISMATCH before any data-plane request;
 * an API that lies about the response key is KW_CLIENT_KEYHOLDER_ATTESTATION_FAILED;
 * a response whose signature header is stripped (…_SIGNATURE_MISSING), altered,
 * replayed from another request, or whose sealed result was swapped
 * (…_SIGNATURE_INVALID) is refused; unpinned requests get no signature.
 * Every other data-plane result (encrypt, decrypt, sign, verify, mac, rewrap
 * — one signature per item) and an attested release (a real TPM quote from
 * the workload, bound to the release nonce) are signed too, and a result
 * altered on the way (a flipped `valid`, a swapped ciphertext or MAC, a
 * dropped or reordered rewrap item, an altered release context) is refused.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate, createHash, generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { KeywardHttpClient, isKeywardClientError, type JsonResponse } from '@keyward/client';
import { tpmKeyholderPin } from '@keyward/client/keyholder-tpm';
import { HpkeIdentity, open } from '@keyward/core';
import { releaseContext } from '../../src/keyholder/ops/caller.js';
import { evidenceBinding } from '../../src/keyholder/ops/release.js';
import { verifyKeyholderResult } from '../../../client/src/http/keyholder-pin.js';
import { sealShareForBoot } from '../../src/keyholder/unseal-key.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { SoftTpm } from '../../../attest/test/swtpm.js';
import { b64u, call, enrollAdmin, newDeviceKeys, newServer, unsealAll } from '../api/helpers.js';
import { CLI_ARGS } from '../built.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

type Tamper = (url: string, res: Response) => Promise<Response> | Response;

void describe('clients pin the keyholder: attested response key, keyholder-signed results', () => {
  let tpm: SoftTpm;
  let dir: string;
  let cli: ChildProcess;
  let server: RunningServer;
  let pcr16: string;
  let token: string;
  let device: { keyId: string; seed: Uint8Array };
  let alice: HpkeIdentity;
  let recipient: string;
  let workloadAk: { ctx: string; public: Uint8Array };
  const apiKey = generateKeyPairSync('ed25519');
  const roots = (): string[] => [tpm.manufacturerCa().root];

  /** A client of the API; `tamper` plays a proxy (or a lying API) on the way back; `seen` logs every path requested. */
  const clientOf = (o: { pcr16?: string | null; tamper?: Tamper; seen?: string[] } = {}) => new KeywardHttpClient({
    addresses: [server.url], token, device: { keyId: device.keyId, signingSeed: device.seed },
    ...(o.pcr16 === null ? {} : { keyholderPin: tpmKeyholderPin({ roots: roots(), measurements: { 'sha256:PCR16': o.pcr16 ?? pcr16 } }) }),
    fetch: async (input, init) => {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
      o.seen?.push(`${init?.method ?? 'GET'} ${new URL(url).pathname}`);
      const res = await fetch(input, init);
      return o.tamper ? o.tamper(url, res) : res;
    },
  });
  const rebuilt = async (res: Response, f: (body: Record<string, unknown>, headers: Headers) => void): Promise<Response> => {
    const body = await res.json() as Record<string, unknown>;
    const headers = new Headers(res.headers);
    headers.delete('content-length');
    f(body, headers);
    return new Response(JSON.stringify(body), { status: res.status, headers });
  };
  const expectCode = async (p: Promise<unknown>, code: string, message?: RegExp) => {
    await assert.rejects(p, (e: unknown) => {
      assert.ok(isKeywardClientError(e), String(e));
      assert.equal(e.code, code, e.message);
      if (message) assert.match(e.message, message);
      return true;
    });
  };
  const openSealed = async (r: JsonResponse<{ sealed: string; version: number }>, context: Record<string, string>) =>
    (await open(Uint8Array.from(Buffer.from(r.body.sealed, 'base64url')), { identities: [alice], context: releaseContext(r.requestHash!, { ns: 'app', key: 'files', version: r.body.version }, context) })).plaintext;

  before(async () => {
    tpm = await SoftTpm.start();
    const akCtx = tpm.path(tpm.createAk('pinak', 'ecdsa').ctx);
    // Under the checkout (the bundle resolves its dependencies from there); a fresh clone has no .cache yet.
    const cache = join(ROOT, 'node_modules', '.cache');
    mkdirSync(cache, { recursive: true });
    dir = mkdtempSync(join(cache, 'kw-khpin-'));
    // The test plays the loader: it measures "the keyholder" into PCR 16.
    tpm.extend(16, createHash('sha256').update('keyholder build under test').digest('hex'));
    pcr16 = Buffer.from(tpm.pcrRead('sha256', [16])[16]!).toString('hex');
    writeFileSync(join(dir, 'api.pub.pem'), apiKey.publicKey.export({ type: 'spki', format: 'pem' }));
    writeFileSync(join(dir, 'api.key.pem'), apiKey.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    writeFileSync(join(dir, 'ek-chain.pem'), tpm.manufacturerCa().issuer);
    // The keyholder's own roots for workloads' release evidence (it verifies a release's TPM quote itself).
    writeFileSync(join(dir, 'attest.json'), JSON.stringify({ tpmRoots: roots() }));
    workloadAk = tpm.createAk('wlak', 'ecdsa');

    // `keyward keyholder serve`, the CLI command itself (from source).
    cli = spawn(process.execPath, [...CLI_ARGS,
      'keyholder', 'serve', '--listen', 'tcp:127.0.0.1:0', '--state', join(dir, 'kh', 'keyholder.json'), '--authorized-client', join(dir, 'api.pub.pem'),
      '--evidence', 'tpm2', '--tpm-ak-ctx', akCtx, '--tpm-pcrs', 'sha256:16', '--tpm-ek-chain', join(dir, 'ek-chain.pem'), '--attest-config', join(dir, 'attest.json')], {
      cwd: ROOT, env: { ...process.env, TPM2TOOLS_TCTI: `swtpm:host=127.0.0.1,port=${tpm.port}` }, stdio: ['ignore', 'ignore', 'pipe'],
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
      keyholderPolicy: { platforms: ['tpm2'], measurements: { 'sha256:PCR16': pcr16 } }, attest: { tpmRoots: roots() },
    });
    const init = await server.initialize({ shares: 3, threshold: 2 });
    for (const sh of init.shares.slice(0, 2)) {
      const k = await server.keyholder.call('unseal-key', {});
      await server.keyholder.call('unseal', { share: Buffer.from(await sealShareForBoot(sh.text, k.recipient, k.bootId)).toString('base64url') });
    }
    const root = await enrollAdmin(server, init.rootToken);
    assert.equal((await call(server, 'POST', '/v1/keys/app/files', { token: root, body: { type: 'aes256' } })).status, 201);
    assert.equal((await call(server, 'POST', '/v1/keys/app/signer', { token: root, body: { type: 'ed25519' } })).status, 201);
    assert.equal((await call(server, 'POST', '/v1/keys/app/macs', { token: root, body: { type: 'hmac-sha256' } })).status, 201);
    const rp = await call(server, 'PUT', '/v1/keys/app/files/release-policy', { token: root, body: { policy: { platforms: ['tpm2'], measurements: { 'sha256:PCR16': pcr16 } } } });
    assert.equal(rp.status, 200, JSON.stringify(rp.body));
    token = (await call(server, 'POST', '/v1/tokens', { token: root, body: { principal: 'svc', ns: 'app', roles: ['worker'] } })).body.token as string;
    const keys = newDeviceKeys();
    const sk = await call(server, 'POST', '/v1/auth/signing-keys', { token, body: { alg: 'ed25519', public_key: b64u(keys.publicKey) } });
    device = { keyId: sk.body.key_id as string, seed: keys.seed };
    const p = await call(server, 'PUT', '/v1/policies/app/worker', { token: root, body: { grants: [{ roles: ['worker'], operations: ['datakey', 'unwrap', 'encrypt', 'decrypt', 'sign', 'verify', 'mac', 'rewrap', 'release'], keys: ['app/*'] }] } });
    assert.equal(p.status, 200, JSON.stringify(p.body));
    alice = await HpkeIdentity.generate('x25519');
    recipient = (await alice.recipient()).toString();
  });

  after(async () => {
    await server?.close();
    cli?.kill('SIGTERM');
    if (cli && cli.exitCode === null) await new Promise((r) => { cli.once('exit', r); setTimeout(r, 3000).unref(); });
    tpm?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  void test('a pinned client verifies the keyholder itself and accepts its signed datakey / unwrap results, which open', async () => {
    const c = clientOf();
    const att = await c.keyholderAttestation();
    assert.equal(att.platform, 'tpm2');
    assert.equal(att.measurements['sha256:PCR16'], pcr16);
    const dk = await c.data<{ sealed: string; wrapped: string; version: number }>('app', 'files', 'datakey', { recipient, context: { t: 'a' } });
    assert.match(dk.keyholderSignature ?? '', /^[A-Za-z0-9_-]{86}$/);
    const uw = await c.data<{ sealed: string; version: number }>('app', 'files', 'unwrap', { version: dk.body.version, wrapped: dk.body.wrapped, context: { t: 'a' }, recipient });
    assert.ok(uw.keyholderSignature);
    assert.deepEqual(await openSealed(uw, { t: 'a' }), await openSealed(dk, { t: 'a' }));
    // Unpinned requests do not ask, and get no signature (the keyholder signs only on request).
    const plain = await clientOf({ pcr16: null }).data('app', 'files', 'datakey', { recipient, context: {} });
    assert.equal(plain.keyholderSignature, undefined);
  });

  void test('a client pinned to another measurement refuses (KW_CLIENT_KEYHOLDER_MEASUREMENT_MISMATCH) and sends nothing to the data plane', async () => {
    const seen: string[] = [];
    const c = clientOf({ pcr16: 'ab'.repeat(32), seen });
    await expectCode(c.data('app', 'files', 'datakey', { recipient, context: {} }), 'KW_CLIENT_KEYHOLDER_MEASUREMENT_MISMATCH', /ATTEST_POLICY_MEASUREMENT_MISMATCH/);
    assert.deepEqual(seen, ['GET /v1/sys/keyholder/attestation', 'POST /v1/sys/keyholder/attestation']);
  });

  void test('an API that names another response key is refused (KW_CLIENT_KEYHOLDER_ATTESTATION_FAILED): the quote binds the real one', async () => {
    const fake = Buffer.from(generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }).x!, 'base64url').toString('base64url');
    const c = clientOf({ tamper: (url, res) => (url.endsWith('/v1/sys/keyholder/attestation') ? rebuilt(res, (b) => { b.responseKey = fake; }) : res) });
    await expectCode(c.keyholderAttestation(), 'KW_CLIENT_KEYHOLDER_ATTESTATION_FAILED', /ATTEST_NONCE_MISMATCH/);
  });

  void test('a response whose keyholder signature is stripped, altered, replayed from another request, or whose result was swapped is refused', async () => {
    const honest = clientOf();
    const earlier = await honest.data<{ sealed: string; wrapped: string; version: number }>('app', 'files', 'datakey', { recipient, context: {} });
    const onData = (f: (b: Record<string, unknown>, h: Headers) => void): Tamper => (url, res) => (url.includes('/v1/data/') ? rebuilt(res, f) : res);

    await expectCode(clientOf({ tamper: onData((_b, h) => { h.delete('keyward-keyholder-signature'); }) }).data('app', 'files', 'datakey', { recipient, context: {} }), 'KW_CLIENT_KEYHOLDER_SIGNATURE_MISSING');
    await expectCode(clientOf({
      tamper: onData((_b, h) => { const s = h.get('keyward-keyholder-signature')!; h.set('keyward-keyholder-signature', `${s.slice(0, 20)}${s[20] === 'A' ? 'B' : 'A'}${s.slice(21)}`); }),
    }).data('app', 'files', 'datakey', { recipient, context: {} }), 'KW_CLIENT_KEYHOLDER_SIGNATURE_INVALID');
    // An API answering without the keyholder: an earlier, genuinely signed answer replayed for a new request.
    await expectCode(clientOf({
      tamper: onData((b, h) => { b.sealed = earlier.body.sealed; b.wrapped = earlier.body.wrapped; h.set('keyward-keyholder-signature', earlier.keyholderSignature!); }),
    }).data('app', 'files', 'datakey', { recipient, context: {} }), 'KW_CLIENT_KEYHOLDER_SIGNATURE_INVALID');
    // The keyholder's signature kept, the sealed result swapped.
    await expectCode(clientOf({ tamper: onData((b) => { b.sealed = earlier.body.sealed; }) }).data('app', 'files', 'unwrap', { version: earlier.body.version, wrapped: earlier.body.wrapped, context: {}, recipient }), 'KW_CLIENT_KEYHOLDER_SIGNATURE_INVALID');
  });

  const SIG = /^[A-Za-z0-9_-]{86}$/;
  const onData = (f: (b: Record<string, unknown>, h: Headers) => void): Tamper => (url, res) => (url.includes('/v1/data/') || url.endsWith('/release') ? rebuilt(res, f) : res);

  void test('every data-plane result is keyholder-signed: encrypt, decrypt, sign, verify, mac, rewrap (one signature per item)', async () => {
    const c = clientOf();
    const plaintext = b64u(new TextEncoder().encode('pinned secret'));
    const enc = await c.data<{ ciphertext: string }>('app', 'files', 'encrypt', { plaintext, context: { t: 'e' } });
    assert.match(enc.keyholderSignature ?? '', SIG);
    const dec = await c.data<{ sealed: string; version: number }>('app', 'files', 'decrypt', { ciphertext: enc.body.ciphertext, context: { t: 'e' }, recipient });
    assert.equal(Buffer.from(await openSealed(dec, { t: 'e' })).toString('utf8'), 'pinned secret');
    const message = b64u(new TextEncoder().encode('a message'));
    const sig = await c.data<{ signature: string }>('app', 'signer', 'sign', { message });
    assert.match(sig.keyholderSignature ?? '', SIG);
    const ver = await c.data<{ valid: boolean }>('app', 'signer', 'verify', { message, signature: sig.body.signature });
    assert.equal(ver.body.valid, true);
    assert.match(ver.keyholderSignature ?? '', SIG);
    const mac = await c.data<{ mac: string }>('app', 'macs', 'mac', { message });
    assert.match(mac.keyholderSignature ?? '', SIG);
    const a = await c.data<{ wrapped: string; version: number }>('app', 'files', 'datakey', { recipient, context: { i: '0' } });
    const b = await c.data<{ wrapped: string; version: number }>('app', 'files', 'datakey', { recipient, context: { i: '1' } });
    const items = [{ version: a.body.version, wrapped: a.body.wrapped, context: { i: '0' } }, { version: b.body.version, wrapped: b.body.wrapped, context: { i: '1' } }];
    const rw = await c.data<{ items: { version: number; wrapped: string }[] }>('app', 'files', 'rewrap', { items });
    const list = (rw.keyholderSignature ?? '').split(', ');
    assert.equal(list.length, 2);
    for (const x of list) assert.match(x, SIG);

    // The input is bound too: the keyholder's signature over this encrypt does not hold for another plaintext.
    const responseKey = Uint8Array.from(Buffer.from((await call(server, 'GET', '/v1/sys/keyholder/attestation', { token })).body.responseKey as string, 'base64url'));
    const check = (request: unknown) => verifyKeyholderResult(responseKey, enc.keyholderSignature!, { op: 'encrypt', binding: enc.requestHash!, key: 'app/files', request, response: enc.body });
    assert.equal(check({ plaintext, context: { t: 'e' } }), true);
    assert.equal(check({ plaintext: b64u(new TextEncoder().encode('another secret')), context: { t: 'e' } }), false);
    assert.equal(check({ plaintext, context: { t: 'other' } }), false);

    // Unpinned: not asked, not signed.
    const plain = await clientOf({ pcr16: null }).data('app', 'signer', 'sign', { message });
    assert.equal(plain.keyholderSignature, undefined);
  });

  void test('results altered on the way are refused: a flipped valid, a swapped ciphertext or MAC, a dropped or reordered rewrap item', async () => {
    const honest = clientOf();
    const message = b64u(new TextEncoder().encode('tamper me'));
    const earlierEnc = await honest.data<{ ciphertext: string }>('app', 'files', 'encrypt', { plaintext: message, context: {} });
    const earlierMac = await honest.data<{ mac: string }>('app', 'macs', 'mac', { message: b64u(new TextEncoder().encode('other')) });
    const sig = await honest.data<{ signature: string }>('app', 'signer', 'sign', { message });
    // One pinned client (attested once) behind a proxy whose tampering each case sets.
    let t: Tamper = (_u, res) => res;
    const c = clientOf({ tamper: (u, res) => t(u, res) });
    const tampered = (f: Tamper) => { t = f; return c; };
    await expectCode(tampered(onData((b) => { b.valid = false; })).data('app', 'signer', 'verify', { message, signature: sig.body.signature }), 'KW_CLIENT_KEYHOLDER_SIGNATURE_INVALID');
    await expectCode(tampered(onData((b) => { b.ciphertext = earlierEnc.body.ciphertext; })).data('app', 'files', 'encrypt', { plaintext: message, context: {} }), 'KW_CLIENT_KEYHOLDER_SIGNATURE_INVALID');
    await expectCode(tampered(onData((b) => { b.mac = earlierMac.body.mac; })).data('app', 'macs', 'mac', { message }), 'KW_CLIENT_KEYHOLDER_SIGNATURE_INVALID');
    await expectCode(tampered(onData((_b, h) => { h.delete('keyward-keyholder-signature'); })).data('app', 'macs', 'mac', { message }), 'KW_CLIENT_KEYHOLDER_SIGNATURE_MISSING');

    const a = await honest.data<{ wrapped: string; version: number }>('app', 'files', 'datakey', { recipient, context: {} });
    const items = [{ version: a.body.version, wrapped: a.body.wrapped, context: {} }, { version: a.body.version, wrapped: a.body.wrapped, context: {} }];
    await expectCode(tampered(onData((_b, h) => { h.set('keyward-keyholder-signature', h.get('keyward-keyholder-signature')!.split(', ')[0]!); })).data('app', 'files', 'rewrap', { items }), 'KW_CLIENT_KEYHOLDER_SIGNATURE_INVALID');
    await expectCode(tampered(onData((b) => { (b.items as unknown[]).reverse(); })).data('app', 'files', 'rewrap', { items }), 'KW_CLIENT_KEYHOLDER_SIGNATURE_INVALID');
  });

  void test('an attested release (real TPM quote of the workload) is keyholder-signed, bound to its nonce; an altered release is refused', async () => {
    const material = {
      ek_certificate: b64u(tpm.ekCertificate()), ek_intermediates: [b64u(new Uint8Array(new X509Certificate(tpm.manufacturerCa().issuer).raw))],
      ek_public: b64u(tpm.ekPublic()), ak_public: b64u(workloadAk.public),
    };
    const evidenceFor = async (tag: string) => {
      const n = await call(server, 'POST', '/v1/attest/app/files/nonce', { token, body: { tpm: material } });
      assert.equal(n.status, 200, JSON.stringify(n.body));
      const nonce = Uint8Array.from(Buffer.from(n.body.nonce as string, 'base64url'));
      const secret = tpm.activate(workloadAk.ctx, Uint8Array.from(Buffer.from(n.body.tpm_challenge.tpm2_tools_file as string, 'base64url')));
      const q = tpm.quote(workloadAk.ctx, 'sha256:16', evidenceBinding('tpm2', nonce, recipient).nonce, tag);
      return {
        nonce: n.body.nonce as string, recipient,
        evidence: { type: 'tpm', attest: b64u(q.attest), signature: b64u(q.signature), activated_credential: b64u(secret), pcrs: { sha256: { 16: pcr16 } } },
      };
    };
    const r = await clientOf().release<{ sealed: string; context: Record<string, string>; wrapped: string; version: number }>('app', 'files', await evidenceFor('rel1'));
    assert.match(r.keyholderSignature ?? '', SIG);
    const dataKey = (await open(Uint8Array.from(Buffer.from(r.body.sealed, 'base64url')), { identities: [alice], context: r.body.context })).plaintext;
    assert.equal(dataKey.length, 32);
    await expectCode(clientOf({ tamper: onData((b) => { (b.context as Record<string, string>).kw_measurements = '00'.repeat(32); }) }).release('app', 'files', await evidenceFor('rel2')), 'KW_CLIENT_KEYHOLDER_SIGNATURE_INVALID');
  });

  void test('the evidence routes are in the OpenAPI document; a local keyholder (no attested channel) answers KW_KEYHOLDER_NOT_ATTESTED (404)', async () => {
    const doc = (await call(server, 'GET', '/v1/openapi.json')).body as { paths: Record<string, Record<string, { parameters?: { name: string }[]; responses: Record<string, { headers?: Record<string, unknown> }> }>> };
    assert.ok(doc.paths['/v1/sys/keyholder/attestation']?.get && doc.paths['/v1/sys/keyholder/attestation'].post);
    const dk = doc.paths['/v1/data/{ns}/{name}/datakey']!.post!;
    assert.ok(dk.parameters?.some((p) => p.name === 'Keyward-Keyholder-Proof'));
    assert.ok(dk.responses['200']!.headers?.['Keyward-Keyholder-Signature']);

    const local = await newServer();
    try {
      const init = await local.initialize({ shares: 2, threshold: 2 });
      assert.equal((await unsealAll(local, init.shares)).body.sealed, false);
      const admin = await enrollAdmin(local, init.rootToken);
      const r = await call(local, 'GET', '/v1/sys/keyholder/attestation', { token: admin });
      assert.equal(r.status, 404, JSON.stringify(r.body));
      assert.equal(r.body.error.code, 'KW_KEYHOLDER_NOT_ATTESTED');
      assert.equal((await call(local, 'GET', '/v1/sys/keyholder/attestation')).status, 401);
    } finally {
      await local.close();
    }
  });
});
