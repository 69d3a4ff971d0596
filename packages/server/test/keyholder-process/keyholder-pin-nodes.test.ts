/**
 * Pinning the keyholders of several nodes (issue #8; docs/tee.md §Pinning the
 * keyholder from a client, "Several nodes"). Two API nodes on one PostgreSQL
 * database, each with its own keyholder process run apart on TCP (the second
 * provisioned from a copy of the first's keyholder.json, as
 * docs/operations/adding-a-node.md says), each attested by its own software
 * TPM (swtpm) measuring the same build into PCR 16.
 *
 * Proven: one client over both addresses attests the keyholder behind each
 * address before it sends anything there and accepts either keyholder's
 * signed results (a data key made through one node unwraps through the
 * other); once node B's keyholder measures another build, a client pinning
 * only the first build refuses B (KW_CLIENT_KEYHOLDER_MEASUREMENT_MISMATCH,
 * only the two attestation requests reach B) and is served by A instead,
 * while a client pinning both builds accepts B.
 *
 * KW_TEST_PG_URL overrides the PostgreSQL server (default 127.0.0.1:5432, postgres, trust).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { KeywardHttpClient, isKeywardClientError, type JsonResponse } from '@keyward/client';
import { tpmKeyholderPin } from '@keyward/client/keyholder-tpm';
import { HpkeIdentity, open } from '@keyward/core';
import { releaseContext } from '../../src/keyholder/ops/caller.js';
import { sealShareForBoot } from '../../src/keyholder/unseal-key.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { SoftTpm } from '../../../attest/test/swtpm.js';
import { b64u, call, enrollAdmin, newDeviceKeys } from '../api/helpers.js';
import { KEYHOLDER_ARGS } from '../built.js';
import { REPO } from './helpers.js';

const ADMIN_URL = process.env.KW_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const DB = `kw_khpin_${randomBytes(6).toString('hex')}`;
const STORE = (() => { const u = new URL(ADMIN_URL); u.pathname = `/${DB}`; return u.toString(); })();

/** PCR value after extending `digestHex` into `pcrHex`. */
const extended = (pcrHex: string, digestHex: string) => createHash('sha256').update(Buffer.from(pcrHex, 'hex')).update(Buffer.from(digestHex, 'hex')).digest('hex');

void describe('a client pins the keyholders of two nodes (PostgreSQL, two attested keyholders)', () => {
  let dir: string;
  const tpms: SoftTpm[] = [];
  const keyholders: ChildProcess[] = [];
  const servers: RunningServer[] = [];
  let A: RunningServer;
  let B: RunningServer;
  let build1: string;
  let build2: string;
  let token: string;
  let device: { keyId: string; seed: Uint8Array };
  let alice: HpkeIdentity;
  let recipient: string;
  const apiKey = generateKeyPairSync('ed25519');
  const roots = (): string[] => tpms.map((t) => t.manufacturerCa().root);
  const buildDigest = createHash('sha256').update('keyholder build 1').digest('hex');
  const build2Digest = createHash('sha256').update('keyholder build 2').digest('hex');

  /** A keyholder process on TCP, attested by `tpm`; resolves with its port. */
  async function keyholderOn(tpm: SoftTpm, state: string): Promise<number> {
    const ak = tpm.path(tpm.createAk('khak', 'ecdsa').ctx);
    const chain = join(dir, `ek-chain-${tpm.port}.pem`);
    writeFileSync(chain, tpm.manufacturerCa().issuer);
    const child = spawn(process.execPath, [...KEYHOLDER_ARGS, '--listen', 'tcp:127.0.0.1:0',
      '--state', state, '--authorized-client', join(dir, 'api.pub.pem'), '--evidence', 'tpm2', '--tpm-ak-ctx', ak, '--tpm-pcrs', 'sha256:16', '--tpm-ek-chain', chain], {
      cwd: REPO, env: { ...process.env, TPM2TOOLS_TCTI: `swtpm:host=127.0.0.1,port=${tpm.port}` }, stdio: ['ignore', 'ignore', 'pipe'],
    });
    keyholders.push(child);
    return new Promise<number>((resolve, reject) => {
      let buf = '';
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (c: string) => {
        buf += c;
        const m = /"msg":"ready","listen":"tcp:127\.0\.0\.1:(\d+)"/.exec(buf);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (code) => reject(new Error(`the keyholder exited ${code}: ${buf}`)));
    });
  }

  async function nodeOn(port: number): Promise<RunningServer> {
    const s = await startServer({
      data: mkdtempSync(join(dir, 'api-')), store: STORE, listen: '127.0.0.1:0', logLevel: 'silent', schedulerMs: 0,
      keyholderConnect: `tcp:127.0.0.1:${port}`, keyholderClientKey: join(dir, 'api.key.pem'),
      // The operators roll from build 1 to build 2: the API nodes accept both.
      keyholderPolicy: { platforms: ['tpm2'], measurements: { 'sha256:PCR16': [build1, build2] } }, attest: { tpmRoots: roots() },
    });
    servers.push(s);
    return s;
  }

  async function unseal(s: RunningServer, shares: readonly { text: string }[]): Promise<void> {
    for (const sh of shares) {
      const k = await s.keyholder.call('unseal-key', {});
      await s.keyholder.call('unseal', { share: Buffer.from(await sealShareForBoot(sh.text, k.recipient, k.bootId)).toString('base64url') });
    }
  }

  let down: string | null = null;
  /** One client over both nodes; `down` makes a node refuse connections; `seen` logs "address METHOD path". */
  const clientOf = (pins: string[], o: { addresses?: string[]; seen?: string[] } = {}) => new KeywardHttpClient({
    addresses: o.addresses ?? [A.url, B.url], token, device: { keyId: device.keyId, signingSeed: device.seed }, allowInsecureHttp: true,
    keyholderPin: tpmKeyholderPin({ roots: roots(), policy: { platforms: ['tpm2'], measurements: { 'sha256:PCR16': pins } } }),
    fetch: async (input, init) => {
      const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
      if (down !== null && url.origin === new URL(down).origin) throw new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } });
      o.seen?.push(`${url.origin} ${init?.method ?? 'GET'} ${url.pathname}`);
      return fetch(input, init);
    },
  });
  const expectCode = async (p: Promise<unknown>, code: string) => {
    await assert.rejects(p, (e: unknown) => {
      assert.ok(isKeywardClientError(e), String(e));
      assert.equal(e.code, code, e.message);
      return true;
    });
  };
  const opened = async (r: JsonResponse<{ sealed: string; version: number }>, context: Record<string, string>) =>
    Buffer.from((await open(Uint8Array.from(Buffer.from(r.body.sealed, 'base64url')), { identities: [alice], context: releaseContext(r.requestHash!, { ns: 'app', key: 'files', version: r.body.version }, context) })).plaintext).toString('hex');

  before(async () => {
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    try { await admin.query(`CREATE DATABASE ${DB}`); } finally { await admin.end(); }
    dir = mkdtempSync(join(tmpdir(), 'kw-khnodes-'));
    writeFileSync(join(dir, 'api.pub.pem'), apiKey.publicKey.export({ type: 'spki', format: 'pem' }));
    writeFileSync(join(dir, 'api.key.pem'), apiKey.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    tpms.push(...await Promise.all([SoftTpm.start(), SoftTpm.start()]));
    // Each host's loader measures the same build into PCR 16.
    for (const t of tpms) t.extend(16, buildDigest);
    build1 = Buffer.from(tpms[0]!.pcrRead('sha256', [16])[16]!).toString('hex');
    assert.equal(Buffer.from(tpms[1]!.pcrRead('sha256', [16])[16]!).toString('hex'), build1);
    build2 = extended(build1, build2Digest);

    mkdirSync(join(dir, 'khA'));
    A = await nodeOn(await keyholderOn(tpms[0]!, join(dir, 'khA', 'keyholder.json')));
    const init = await A.initialize({ shares: 3, threshold: 2 });
    await unseal(A, init.shares.slice(0, 2));
    // Node B: its keyholder starts from a copy of A's keyholder.json (adding-a-node.md), on its own host and TPM.
    mkdirSync(join(dir, 'khB'));
    copyFileSync(join(dir, 'khA', 'keyholder.json'), join(dir, 'khB', 'keyholder.json'));
    B = await nodeOn(await keyholderOn(tpms[1]!, join(dir, 'khB', 'keyholder.json')));
    await unseal(B, init.shares.slice(1, 3));

    const root = await enrollAdmin(A, init.rootToken);
    assert.equal((await call(A, 'POST', '/v1/keys/app/files', { token: root, body: { type: 'aes256' } })).status, 201);
    token = (await call(B, 'POST', '/v1/tokens', { token: root, body: { principal: 'svc', ns: 'app', roles: ['worker'] } })).body.token as string;
    const keys = newDeviceKeys();
    const sk = await call(A, 'POST', '/v1/auth/signing-keys', { token, body: { alg: 'ed25519', public_key: b64u(keys.publicKey) } });
    device = { keyId: sk.body.key_id as string, seed: keys.seed };
    const p = await call(A, 'PUT', '/v1/policies/app/worker', { token: root, body: { grants: [{ roles: ['worker'], operations: ['datakey', 'unwrap'], keys: ['app/*'] }] } });
    assert.equal(p.status, 200, JSON.stringify(p.body));
    alice = await HpkeIdentity.generate('x25519');
    recipient = (await alice.recipient()).toString();
  });

  after(async () => {
    for (const s of servers) await s.close().catch(() => undefined);
    for (const k of keyholders) {
      k.kill('SIGTERM');
      if (k.exitCode === null) await new Promise((r) => { k.once('exit', r); setTimeout(r, 3000).unref(); });
    }
    for (const t of tpms) t.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    try { await admin.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`); } finally { await admin.end(); }
  });

  void test('one client accepts the signed results of either node\'s keyholder (same pinned build); a data key made on A unwraps on B', async () => {
    const seen: string[] = [];
    const c = clientOf([build1], { seen });
    const dk = await c.data<{ sealed: string; wrapped: string; version: number }>('app', 'files', 'datakey', { recipient, context: { n: '1' } });
    assert.equal(dk.address, A.url);
    // A is down: the client attests B's keyholder (its own evidence, its own response key) before sending B anything.
    down = A.url;
    try {
      const uw = await c.data<{ sealed: string; version: number }>('app', 'files', 'unwrap', { version: dk.body.version, wrapped: dk.body.wrapped, context: { n: '1' }, recipient });
      assert.equal(uw.address, B.url);
      assert.equal(await opened(uw, { n: '1' }), await opened(dk, { n: '1' }));
      const onB = seen.filter((x) => x.startsWith(new URL(B.url).origin)).map((x) => x.split(' ').slice(1).join(' '));
      assert.deepEqual(onB, ['GET /v1/sys/keyholder/attestation', 'POST /v1/sys/keyholder/attestation', 'POST /v1/data/app/files/unwrap']);
    } finally {
      down = null;
    }
    // Two keyholders, two response keys; both attested to the same build.
    const keyA = (await call(A, 'GET', '/v1/sys/keyholder/attestation', { token })).body.responseKey;
    const keyB = (await call(B, 'GET', '/v1/sys/keyholder/attestation', { token })).body.responseKey;
    assert.notEqual(keyA, keyB);
    assert.equal((await c.keyholderAttestation({ address: B.url })).measurements['sha256:PCR16'], build1);
  });

  void test('a node whose keyholder measures a build the client does not pin is refused; the client is served by the other node', async () => {
    // Node B's host now runs build 2 (the API nodes accept it; this client pins build 1 only).
    tpms[1]!.extend(16, build2Digest);
    const seen: string[] = [];
    const c = clientOf([build1], { addresses: [B.url, A.url], seen });
    const dk = await c.data<{ sealed: string; version: number }>('app', 'files', 'datakey', { recipient, context: {} });
    assert.equal(dk.address, A.url, 'B was refused, A answered');
    assert.deepEqual(seen.filter((x) => x.startsWith(new URL(B.url).origin)).map((x) => x.split(' ').slice(1).join(' ')), ['GET /v1/sys/keyholder/attestation', 'POST /v1/sys/keyholder/attestation']);
    // With A down there is no node this client trusts.
    down = A.url;
    try {
      await expectCode(clientOf([build1]).data('app', 'files', 'datakey', { recipient, context: {} }), 'KW_CLIENT_KEYHOLDER_MEASUREMENT_MISMATCH');
      // A client that pins both builds accepts B.
      const both = await clientOf([build1, build2]).data<{ sealed: string; version: number }>('app', 'files', 'datakey', { recipient, context: {} });
      assert.equal(both.address, B.url);
      assert.match(both.keyholderSignature ?? '', /^[A-Za-z0-9_-]{86}$/);
    } finally {
      down = null;
    }
  });
});
