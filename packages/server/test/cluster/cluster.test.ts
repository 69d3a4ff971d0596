/**
 * Three nodes on one PostgreSQL database (issue #4), as real processes on
 * loopback: node A is initialised; nodes B and C each get a copy of A's
 * `keyholder.json` (the runbook docs/operations/adding-a-node.md) and their
 * own data directory; each runs its own keyholder and is unsealed
 * independently with the same shares (a different pair on each). Then:
 *
 * - a data key made on any node unwraps on every other node;
 * - a version disabled on A is refused on B and on C within one second;
 * - a signed request replayed to another node is refused (KW_REQUEST_REPLAYED),
 *   while a fresh one signed for the same authority is served there;
 * - concurrent rotations of one key from all three nodes: every acknowledged
 *   rotation got its own version, the versions are consecutive, the losers
 *   are refused with KW_STORE_CONFLICT (nothing half-done);
 * - concurrent datakey/unwrap/rotate load on all three nodes leaves a gapless
 *   audit log that `keyward audit verify` accepts, containing every
 *   acknowledged request of every node; the three keyholders, once idle, sign
 *   the same head (same size, same root), and every stored checkpoint is the
 *   Merkle root of the stored log at its size;
 * - SIGKILL of node C mid-load: no client sees a wrong answer, A and B carry
 *   the load, every acknowledged data key unwraps to the same key on both
 *   survivors, every acknowledged rotation's version exists, the log
 *   verifies; C restarted and unsealed catches up and serves.
 *
 * KW_TEST_PG_URL overrides the PostgreSQL server (default 127.0.0.1:5432, postgres, trust).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import pg from 'pg';
import { HpkeIdentity, open } from '@keyward/core';
import { signRequest } from '@keyward/client';
import { Frontier } from '@keyward/tlog';
import { releaseContext } from '../../src/keyholder/ops/caller.js';
import { requestHashOf } from '../../src/keyholder/service.js';
import { openConfiguredStore } from '../../src/store/open.js';
import { Api, REPO, b64u, isAlive, keyholderChild, killAndWait, readKeyholderState, sleep, unb64u, waitFor, type Device, type Res, type RunnerInfo } from '../crash/helpers.js';
import { CLI_ARGS, SERVER_RUNNER_ARGS } from '../built.js';

const ADMIN_URL = process.env.KW_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const DB = `kw_cluster_${randomBytes(6).toString('hex')}`;
const STORE = (() => { const u = new URL(ADMIN_URL); u.pathname = `/${DB}`; return u.toString(); })();
const NS = 'cl';

interface Node { name: string; dir: string; info: RunnerInfo; api: Api; exited: Promise<unknown>; err: () => string }
const dirs: string[] = [];
const pids = new Set<number>();

function spawnNode(name: string, dir: string, init: boolean): Promise<Node> {
  const child = spawn(process.execPath, [...SERVER_RUNNER_ARGS, dir, '--store', STORE, ...(init ? ['--init'] : [])], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (c: string) => { err = (err + c).slice(-8000); });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return new Promise<Node>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`node not ready; stderr: ${err}`)); }, 60_000);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (c: string) => {
      out += c;
      const m = /^KW_RUNNER_READY (.*)$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        const info = JSON.parse(m[1]!) as RunnerInfo;
        pids.add(info.pid);
        resolve({ name, dir, info, api: new Api(info.url), exited, err: () => err });
      }
    });
    void exited.then(() => { clearTimeout(timer); reject(new Error(`node exited before ready; stderr: ${err}`)); });
  });
}

/** Provisions a new node's data directory from an existing one: a copy of keyholder.json, nothing else (adding-a-node.md). */
function provision(fromDir: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'kw-node-'));
  dirs.push(dir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  copyFileSync(join(fromDir, 'keyholder.json'), join(dir, 'keyholder.json'));
  return dir;
}

/** A signed data-plane POST to `node`, signed for `authority` (a load balancer's name in front of every node). */
function signedTo(node: Node, authority: string, token: string, device: Device, path: string, body: unknown, sig?: Record<string, string>): Promise<Res & { sig: Record<string, string> }> {
  const text = JSON.stringify(body);
  const headers = { 'content-type': 'application/json' };
  const s = sig ?? (signRequest({ method: 'POST', url: `http://${authority}${path}`, headers, body: new TextEncoder().encode(text) }, { keyId: device.keyId, privateKey: device.seed, label: 'kw' }));
  const target = new URL(node.info.url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: target.hostname, port: target.port, method: 'POST', path, headers: { ...headers, host: authority, authorization: `Bearer ${token}`, 'content-length': Buffer.byteLength(text), ...s } }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { data += c; });
      res.on('end', () => {
        let parsed: unknown = data;
        try { parsed = JSON.parse(data); } catch { /* text */ }
        resolve({ status: res.statusCode ?? 0, body: parsed, sig: s });
      });
    });
    req.on('error', reject);
    req.end(text);
  });
}

before(async () => {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try { await admin.query(`CREATE DATABASE ${DB}`); } finally { await admin.end(); }
});

after(async () => {
  for (const pid of pids) if (isAlive(pid)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  await sleep(300);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try { await admin.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`); } finally { await admin.end(); }
});

void describe('three nodes on one PostgreSQL database, one audit log', () => {
  let A: Node;
  let B: Node;
  let C: Node;
  const nodes = (): Node[] => [A, B, C];
  let shares: string[];
  let root: string;
  let svc: string;
  let device: Device;
  let alice: HpkeIdentity;
  let recipient: string;
  let verifierKey: string;
  let origin: string;
  /** Acknowledged data keys: made on which node, and their key. */
  const acked: { node: string; key: string; version: number; wrapped: string; context: Record<string, string>; dataKey: string; requestHash: string }[] = [];

  async function datakey(node: Node, key: string, context: Record<string, string>) {
    const r = await node.api.signed(svc, device, `/v1/data/${NS}/${key}/datakey`, { recipient, context });
    if (r.status !== 200) return r;
    const requestHash = requestHashOf(r.sig);
    const opened = await open(unb64u(r.body.sealed as string), { identities: [alice], context: releaseContext(requestHash, { ns: NS, key, version: r.body.version as number }, context) });
    acked.push({ node: node.name, key, version: r.body.version as number, wrapped: r.body.wrapped as string, context, dataKey: b64u(opened.plaintext), requestHash: Buffer.from(requestHash).toString('hex') });
    return r;
  }

  async function unwrapSame(node: Node, d: (typeof acked)[number]): Promise<{ status: number; same: boolean | null; body: unknown }> {
    const r = await node.api.signed(svc, device, `/v1/data/${NS}/${d.key}/unwrap`, { version: d.version, wrapped: d.wrapped, context: d.context, recipient });
    if (r.status !== 200) return { status: r.status, same: null, body: r.body };
    const opened = await open(unb64u(r.body.sealed as string), { identities: [alice], context: releaseContext(requestHashOf(r.sig), { ns: NS, key: d.key, version: d.version }, d.context) });
    return { status: 200, same: b64u(opened.plaintext) === d.dataKey, body: r.body };
  }

  before(async () => {
    const dirA = mkdtempSync(join(tmpdir(), 'kw-node-'));
    dirs.push(dirA);
    A = await spawnNode('A', dirA, true);
    assert.ok(A.info.init);
    shares = A.info.init.shares;
    [B, C] = await Promise.all([spawnNode('B', provision(dirA), false), spawnNode('C', provision(dirA), false)]);
    // Each node unsealed on its own, with the same shares (a different quorum on each).
    await A.api.unseal(shares.slice(0, 2));
    await B.api.unseal(shares.slice(1, 3));
    await C.api.unseal([shares[0]!, shares[2]!]);
    const enrolled = await A.api.call('POST', '/v1/tokens', { token: A.info.init.rootToken, body: { principal: 'cl-admin', kind: 'person', admin: true } });
    assert.equal(enrolled.status, 201, JSON.stringify(enrolled.body));
    root = enrolled.body.token as string;
    ({ verifierKey, origin } = readKeyholderState(dirA).audit);
    for (const k of ['k0', 'k1', 'kd', 'kr']) assert.equal((await A.api.call('POST', `/v1/keys/${NS}/${k}`, { token: root, body: { type: 'aes256' } })).status, 201);
    const tok = await C.api.call('POST', '/v1/tokens', { token: root, body: { principal: 'svc-cl', ns: NS, roles: ['cl-app'] } });
    assert.equal(tok.status, 201, JSON.stringify(tok.body));
    svc = tok.body.token as string;
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const sk = await A.api.call('POST', '/v1/auth/signing-keys', { token: svc, body: { alg: 'ed25519', public_key: publicKey.export({ format: 'jwk' }).x! } });
    assert.equal(sk.status, 201, JSON.stringify(sk.body));
    device = { keyId: sk.body.key_id as string, seed: unb64u(privateKey.export({ format: 'jwk' }).d!) };
    const pol = await B.api.call('PUT', `/v1/policies/${NS}/cl-app`, { token: root, body: { grants: [{ roles: ['cl-app'], operations: ['datakey', 'unwrap'], keys: [`${NS}/*`] }] } });
    assert.equal(pol.status, 200, JSON.stringify(pol.body));
    alice = await HpkeIdentity.generate('x25519');
    recipient = (await alice.recipient()).toString();
  });

  void it('a data key made on any node unwraps on every other node', async () => {
    for (const [i, maker] of nodes().entries()) {
      const r = await datakey(maker, ['k0', 'k1'][i % 2]!, { app: maker.name });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const d = acked.at(-1)!;
      for (const other of nodes().filter((n) => n !== maker)) {
        const u = await unwrapSame(other, d);
        assert.deepEqual([u.status, u.same], [200, true], `made on ${maker.name}, unwrapped on ${other.name}: ${JSON.stringify(u.body)}`);
      }
    }
  });

  void it('a version disabled on node A is refused on nodes B and C within one second', async () => {
    assert.equal((await datakey(B, 'kd', {})).status, 200);
    const d = acked.at(-1)!;
    assert.equal((await unwrapSame(B, d)).status, 200);
    assert.equal((await unwrapSame(C, d)).status, 200);
    const t0 = Date.now();
    const dis = await A.api.call('POST', `/v1/keys/${NS}/kd/versions/1/disable`, { token: root });
    assert.equal(dis.status, 200, JSON.stringify(dis.body));
    const refused = await Promise.all([B, C].map((n) => waitFor(`${n.name} to refuse the disabled version`, async () => {
      const r = await unwrapSame(n, d);
      return r.status !== 200 ? { ...r, ms: Date.now() - t0 } : null;
    }, 1000, 20)));
    for (const [i, r] of refused.entries()) {
      assert.ok(r.ms < 1000, `${['B', 'C'][i]} refused after ${r.ms} ms`);
      assert.equal((r.body as { error: { code: string } }).error.code, 'KW_KEY_VERSION_DISABLED');
    }
  });

  void it('a signed request replayed to the other node is refused (KW_REQUEST_REPLAYED); a fresh one for the same authority is served there', async () => {
    const lb = 'keyward.example:443';
    const path = `/v1/data/${NS}/k0/datakey`;
    const body = { recipient, context: { replay: 'test' } };
    const first = await signedTo(A, lb, svc, device, path, body);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const replayB = await signedTo(B, lb, svc, device, path, body, first.sig);
    assert.equal(replayB.status, 401, JSON.stringify(replayB.body));
    assert.equal(replayB.body.error.code, 'KW_REQUEST_REPLAYED');
    const replayC = await signedTo(C, lb, svc, device, path, body, first.sig);
    assert.equal(replayC.status, 401, JSON.stringify(replayC.body));
    assert.equal(replayC.body.error.code, 'KW_REQUEST_REPLAYED');
    const replayA = await signedTo(A, lb, svc, device, path, body, first.sig);
    assert.equal(replayA.body.error.code, 'KW_REQUEST_REPLAYED');
    const fresh = await signedTo(B, lb, svc, device, path, body);
    assert.equal(fresh.status, 200, JSON.stringify(fresh.body));
    // The same fresh request raced to two nodes at once: exactly one serves it.
    const raced = await signedTo(C, lb, svc, device, path, body);
    assert.equal(raced.status, 200, JSON.stringify(raced.body));
    const race2 = signRequest({ method: 'POST', url: `http://${lb}${path}`, headers: { 'content-type': 'application/json' }, body: new TextEncoder().encode(JSON.stringify(body)) }, { keyId: device.keyId, privateKey: device.seed, label: 'kw' });
    const both = await Promise.all([A, C].map((n) => signedTo(n, lb, svc, device, path, body, race2)));
    assert.deepEqual(both.map((r) => r.status).sort(), [200, 401], JSON.stringify(both.map((r): unknown => r.body)));
  });

  void it('concurrent rotations of one key from all three nodes: one version each acknowledged rotation, consecutive, losers refused cleanly', async () => {
    const rounds = 4;
    const results = (await Promise.all(Array.from({ length: rounds }, () => Promise.all(nodes().map((n) => n.api.call('POST', `/v1/keys/${NS}/kr/rotate`, { token: root })))))).flat();
    const won = results.filter((r) => r.status === 200).map((r) => r.body.latest_version as number);
    const lost = results.filter((r) => r.status !== 200);
    assert.deepEqual(lost.map((r) => `${r.status} ${r.body?.error?.code}`).filter((x) => x !== '409 KW_STORE_CONFLICT'), [], 'the only refusal is a conflict');
    assert.ok(won.length >= 1);
    assert.equal(new Set(won).size, won.length, `each acknowledged rotation got its own version: ${JSON.stringify(won)}`);
    for (const n of nodes()) {
      const k = await n.api.call('GET', `/v1/keys/${NS}/kr`, { token: root });
      const versions = (k.body.versions as { version: number }[]).map((v) => v.version);
      assert.deepEqual(versions, Array.from({ length: 1 + won.length }, (_, i) => i + 1), `${n.name}: consecutive versions`);
      assert.equal(k.body.latest_version, 1 + won.length);
    }
    assert.deepEqual([...won].sort((x, y) => x - y), Array.from({ length: won.length }, (_, i) => i + 2));
  });

  /** Acknowledged rotations: the version each one answered. */
  const rotated: { node: string; key: string; version: number }[] = [];

  /** Mixed load on the given nodes until `stop`; returns per-node counts and problems. */
  function load(on: Node[], workersPerNode: number, stop: { done: boolean }) {
    const stats = { ok: new Map<string, number>(), errors: new Map<string, number>(), wrong: [] as string[] };
    const count = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
    const workers = on.flatMap((node) => Array.from({ length: workersPerNode }, async (_, w) => {
      const name = node.name;
      let i = 0;
      while (!stop.done) {
        i += 1;
        const x = (i * 7 + w * 13) % 10;
        const key = ['k0', 'k1'][(i + w) % 2]!;
        try {
          if (x < 5) {
            const r = await datakey(node, key, { w: String(w), i: String(i) });
            count(r.status === 200 ? stats.ok : stats.errors, `${name} datakey ${r.status}`);
          } else if (x < 9 && acked.length > 0) {
            const d = acked[(i * 31 + w) % acked.length]!;
            if (d.key === 'kd') continue;
            const r = await unwrapSame(node, d);
            if (r.status === 200 && r.same === false) stats.wrong.push(`unwrap on ${name} of a key made on ${d.node} gave another key`);
            count(r.status === 200 ? stats.ok : stats.errors, `${name} unwrap ${r.status}`);
          } else {
            const r = await node.api.call('POST', `/v1/keys/${NS}/${key}/rotate`, { token: root });
            if (r.status === 200) rotated.push({ node: name, key, version: r.body.latest_version as number });
            count(r.status === 200 ? stats.ok : stats.errors, `${name} rotate ${r.status}${r.status === 200 ? '' : ` ${r.body?.error?.code}`}`);
          }
        } catch (e) {
          count(stats.errors, `${name} ${(e as Error).message.slice(0, 60)}`);
          await sleep(20);
        }
      }
    }));
    return { stats, all: Promise.all(workers) };
  }

  /** Every stored event, checkpoint and leaf, read from the database directly (not through a node: no audit.read events). */
  async function storedLog() {
    const s = await openConfiguredStore({ store: STORE });
    try {
      const size = await s.auditSize();
      const events = [];
      for (let i = 0; i < size; i += 1000) events.push(...(await s.readAuditEvents({ start: i, end: Math.min(size, i + 1000) })));
      const cps = [];
      for (let n = 1; n <= size; n++) { const c = await s.getAuditCheckpoint(n); if (c) cps.push(c); }
      return { size, events, cps };
    } finally {
      await s.close();
    }
  }

  async function checkLog(what: string): Promise<void> {
    const log = await storedLog();
    assert.deepEqual(log.events.map((e) => e.idx), Array.from({ length: log.size }, (_, i) => i), `${what}: gapless`);
    // Every stored checkpoint (whichever node's keyholder signed it) is the root of the stored log at its size.
    const f = Frontier.empty();
    let c = 0;
    for (const e of log.events) {
      f.append(e.leafHash);
      while (c < log.cps.length && log.cps[c]!.size === f.size) {
        assert.equal(b64u(f.root()), b64u(log.cps[c]!.root), `${what}: checkpoint ${log.cps[c]!.size}`);
        c++;
      }
    }
    assert.ok(log.cps.length > 0);
    // The export through a node, verified by the CLI.
    const exp = await A.api.exportAudit(root, origin);
    const file = join(A.dir, `export-${Date.now()}.jsonl`);
    writeFileSync(file, exp.text);
    const keyFile = join(A.dir, 'vkey.txt');
    writeFileSync(keyFile, `${verifierKey}\n`);
    const v = spawnSync(process.execPath, [...CLI_ARGS, 'audit', 'verify', '--export', file, '--key', keyFile], { cwd: REPO, encoding: 'utf8' });
    assert.equal(v.status, 0, `${what}: keyward audit verify: ${v.stdout} ${v.stderr}`);
    // Every acknowledged data key request of either node is in the exported, verified log.
    const requests = new Set(exp.text.split('\n').filter(Boolean).map((l) => { try { return (JSON.parse(l) as { event?: { request?: string }; request?: string }); } catch { return {}; } }).map((x) => x.request ?? x.event?.request).filter((r): r is string => typeof r === 'string'));
    const covered = log.events.slice(0, exp.size).map((e) => (JSON.parse(e.event) as { request?: string }).request).filter((r): r is string => typeof r === 'string');
    const inLog = new Set([...requests, ...covered]);
    for (const node of ['A', 'B', 'C']) {
      const mine = acked.filter((d) => d.node === node);
      assert.ok(mine.length > 0, `${what}: node ${node} acknowledged data keys`);
      const inExport = mine.filter((d) => inLog.has(d.requestHash)).length;
      assert.ok(inExport > 0, `${what}: node ${node}'s events are in the export`);
    }
    const all = new Set(log.events.map((e) => (JSON.parse(e.event) as { request?: string }).request));
    const missing = acked.filter((d) => !all.has(d.requestHash));
    assert.deepEqual(missing.map((d) => `${d.node} ${d.key}`), [], `${what}: every acknowledged datakey has its event`);
  }

  void it('concurrent datakey/unwrap/rotate on three nodes: one gapless log that keyward audit verify accepts; idle keyholders sign the same head', { timeout: 180_000 }, async () => {
    const stop = { done: false };
    const l = load(nodes(), 3, stop);
    await sleep(4000);
    stop.done = true;
    await l.all;
    assert.deepEqual(l.stats.wrong, []);
    console.log(`load on three nodes: ok ${JSON.stringify([...l.stats.ok])} errors ${JSON.stringify([...l.stats.errors])}`);
    for (const n of nodes()) assert.ok([...l.stats.ok.keys()].some((k) => k.startsWith(n.name)), `${n.name} served`);
    // No node was down: the only refusals are rotation conflicts.
    assert.deepEqual([...l.stats.errors.keys()].filter((k) => !/ rotate 409 KW_STORE_CONFLICT$/.test(k)), []);
    // Rotations on all nodes produced contiguous versions.
    for (const k of ['k0', 'k1']) {
      const r = await A.api.call('GET', `/v1/keys/${NS}/${k}`, { token: root });
      const versions = (r.body.versions as { version: number }[] | undefined)?.map((v) => v.version);
      if (versions) assert.deepEqual(versions, Array.from({ length: versions.length }, (_, i) => i + 1));
    }
    // Idle: both keyholders follow the log and sign the same head.
    const s = await openConfiguredStore({ store: STORE });
    try {
      const heads = await waitFor('the three keyholders to sign the same head', async () => {
        const size = await s.auditSize();
        const cps = nodes().map((n) => readKeyholderState(n.dir).lastCheckpoint);
        return cps.every((c) => c?.size === size) ? cps : null;
      }, 10_000, 100);
      assert.deepEqual(heads[1], heads[0]);
      assert.deepEqual(heads[2], heads[0]);
    } finally {
      await s.close();
    }
    await checkLog('three nodes');
  });

  void it('SIGKILL of node C mid-load: A and B carry the load, no wrong answer, every acknowledged operation durable, the log verifies; C restarted catches up', { timeout: 180_000 }, async () => {
    const stop = { done: false };
    const l = load(nodes(), 3, stop);
    await sleep(1500);
    const khC = keyholderChild(C.info.pid);
    const survivorsOk = () => [...l.stats.ok].filter(([k]) => k.startsWith('A') || k.startsWith('B')).reduce((n, [, v]) => n + v, 0);
    const perNode = (name: string) => [...l.stats.ok].filter(([k]) => k.startsWith(name)).reduce((n, [, v]) => n + v, 0);
    const ackedBefore = acked.length;
    await killAndWait(C.info.pid);
    if (khC !== null) await waitFor('C keyholder to exit', () => !isAlive(khC), 5000).catch(async () => killAndWait(khC));
    const before = { all: survivorsOk(), A: perNode('A'), B: perNode('B') };
    // The survivors carry the load: keep it running until each has served at least ten operations after the kill (at least 2.5 s).
    await sleep(2500);
    await waitFor('A and B to serve after the kill', () => perNode('A') - before.A > 10 && perNode('B') - before.B > 10, 20_000, 100).catch(() => null);
    stop.done = true;
    await l.all;
    const served = { all: survivorsOk() - before.all, A: perNode('A') - before.A, B: perNode('B') - before.B };
    console.log(`kill of C: survivors served ${JSON.stringify(served)} ops after the kill; ${acked.length - ackedBefore} data keys acknowledged during the phase; errors ${JSON.stringify([...l.stats.errors])}`);
    assert.ok(served.A > 10 && served.B > 10, 'A and B both serve after C is killed');
    assert.deepEqual(l.stats.wrong, []);
    // The survivors refused nothing but rotation conflicts; C's clients saw connection errors (not acknowledged, not wrong).
    assert.deepEqual([...l.stats.errors.keys()].filter((k) => /^[AB] /.test(k) && !/ rotate 409 KW_STORE_CONFLICT$/.test(k)), []);
    // Every acknowledged data key — made on any node, C included — unwraps to the same key on both survivors.
    const todo = acked.filter((x) => x.key !== 'kd');
    for (const survivor of [A, B]) {
      for (let i = 0; i < todo.length; i += 8) {
        await Promise.all(todo.slice(i, i + 8).map(async (d) => {
          const r = await unwrapSame(survivor, d);
          assert.deepEqual([r.status, r.same], [200, true], `acknowledged datakey made on ${d.node}, unwrapped on ${survivor.name}: ${JSON.stringify(r.body)}`);
        }));
      }
    }
    // Every acknowledged rotation's version exists (and the versions are consecutive).
    for (const k of ['k0', 'k1']) {
      const r = await B.api.call('GET', `/v1/keys/${NS}/${k}`, { token: root });
      const versions = (r.body.versions as { version: number }[]).map((v) => v.version);
      assert.deepEqual(versions, Array.from({ length: versions.length }, (_, i) => i + 1));
      for (const x of rotated.filter((y) => y.key === k)) assert.ok(versions.includes(x.version), `rotation acknowledged by ${x.node} to ${k} v${x.version} is stored`);
    }
    await checkLog('after SIGKILL');
    // C again: same data directory, unsealed, catches up with what A and B wrote meanwhile and serves.
    C = await spawnNode('C', C.dir, false);
    await C.api.unseal(shares.slice(0, 2));
    const d = acked.at(-1)!;
    const r = await unwrapSame(C, d);
    assert.deepEqual([r.status, r.same], [200, true], JSON.stringify(r.body));
    assert.equal((await datakey(C, 'k0', {})).status, 200);
    await checkLog('C back');
  });
});
