/**
 * The directory through witnesses, end to end with real processes: two
 * `keyward witness` processes, the key service (real keyholder process,
 * SQLite) with the directory enabled and the witnesses configured (k = 2), a
 * separate malicious directory process (malicious-directory.ts: a man in the
 * middle holding the directory's secret keys), and the real verifying client
 * (`Directory` of @keyward/client over HTTP) configured with the witnesses.
 *
 * - The server publishes each directory head into its head log and has it
 *   cosigned; the client accepts heads with k cosignatures.
 * - Cosignatures stripped → TLOG_NOT_ENOUGH_COSIGNATURES.
 * - Rollback to an older answer → KT_ROLLBACK (a client with a newer head) and
 *   TLOG_BAD_PROOF (a fresh client: not the latest witnessed head).
 * - Rollback with the old head's own witnessed checkpoint, to a fresh client →
 *   TLOG_STALE_COSIGNATURES (its cosignatures are older than the client's
 *   maximum age), while the honest, idle server keeps its head fresh by
 *   re-witnessing it (`directory.witnessRefreshMs`).
 * - A device key added to the answer but not in the log → a KEYTRANS proof error.
 * - A key signed by nobody, logged by a compromised server (and so witnessed) →
 *   KW_DIR_BAD_SIGNATURE.
 * - A revocation dropped → KT_BAD_RESPONSE for the revoking device, and
 *   self-monitoring reports the device still present.
 * - Split view (a second log built with the stolen keys, of the honest size) →
 *   the witnesses refuse to cosign it; the client refuses it
 *   (TLOG_NOT_ENOUGH_COSIGNATURES, or TLOG_BAD_PROOF with the honest checkpoint
 *   transplanted); a client without witnesses takes it, and gossip with an
 *   honest client exposes it (KT_FORK).
 * - A witness down with k = 2 → new heads are not witnessed and are refused.
 * - Operations: `keyward doctor` (online and offline) reports no directory
 *   finding while healthy; directory-keys-differ for a node heartbeat with
 *   other directory keys; directory-witnesses-failing and
 *   directory-head-not-cosigned with a witness down; not-configured and
 *   too-few from the config. /metrics counts cosignatures per witness and
 *   shortfalls and shows the cosigned head.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  Directory, devicePublicKeys, encodeEntityValue, entityLabel, fetchTransport, generateDevice, signChange,
  DirectoryWitnessCheck, checkPinnedWitnesses, type DeviceSecrets, type DirectoryWitnessConfig, type WitnessedHeadAnswer,
} from '@keyward/client';
import { newVerifier, openWitnessedCheckpoint, witnessPolicy } from '@keyward/tlog';
import { base64urlnopad } from '@scure/base';
import { startServer, type RunningServer } from '../../src/server.js';
import { loadDirectoryKeys } from '../../src/directory/keys.js';
import { DirectoryService } from '../../src/directory/service.js';
import { headLogKeyFromFile } from '../../src/directory/witness.js';
import { call, enrollAdmin, unsealAll } from '../api/helpers.js';
import { keywardHere as keyward, startWitnessProcess, tempDir, type WitnessProcess } from '../witness/helpers.js';

const MALICIOUS = fileURLToPath(new URL('./malicious-directory.ts', import.meta.url));
const dir = tempDir('kw-dir-witness-');
const keyFile = join(dir, 'directory.key');
/** The attacker's copy of the directory keys (stolen before the server imported them into its keyholder and deleted the file). */
const stolenKeyFile = join(dir, 'stolen.key');
let w1: WitnessProcess;
let w2: WitnessProcess;
let server: RunningServer;
let admin: string;
let mal: ChildProcess;
let malUrl: string;
let wcfg: DirectoryWitnessConfig;
let laptop: DeviceSecrets;
let honest: Directory;

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
  return 'resolved';
}

/** A verifying client of `url`, with the witness configuration unless `witnesses` is null. */
const connect = (url: string, witnesses: DirectoryWitnessConfig | null = wcfg) => Directory.connect(fetchTransport(`${url}/`), witnesses ? { witnesses } : {});
const setMode = async (mode: string) => {
  const r = await fetch(`${malUrl}/__mode`, { method: 'POST', body: JSON.stringify({ mode }) });
  assert.equal(r.status, 200, await r.text());
};
const enrollToken = async (name: string): Promise<string> => {
  const r = await call(server, 'POST', '/v1/directory/enroll-tokens', { token: admin, body: { name } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.token as string;
};

before(async () => {
  const data = join(dir, 'data');
  mkdirSync(data, { mode: 0o700 });
  const keyBytes = randomBytes(64);
  writeFileSync(keyFile, keyBytes, { mode: 0o600 });
  writeFileSync(stolenKeyFile, keyBytes, { mode: 0o600 });
  const hk = headLogKeyFromFile(keyFile);
  [w1, w2] = await Promise.all([
    startWitnessProcess({ name: 'w1.dir.test', logKeys: [hk.verifierKey] }),
    startWitnessProcess({ name: 'w2.dir.test', logKeys: [hk.verifierKey] }),
  ]);
  const witnesses = [w1, w2].map((w) => ({ name: w.name, url: w.url, key: w.vkey }));
  wcfg = { logKey: hk.verifierKey, witnesses: witnesses.map((w) => ({ name: w.name, key: w.key })), k: 2 };
  server = await startServer({ data, listen: '127.0.0.1:0', logLevel: 'silent', checkpointMs: 200, witnessMs: 200, witnesses, witnessesK: 2, schedulerMs: 0, directory: { enabled: true, keyFile, witnessRefreshMs: 1000 } });
  const init = await server.initialize({ shares: 2, threshold: 2 });
  await unsealAll(server, init.shares);
  admin = await enrollAdmin(server, init.rootToken);
  mal = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', MALICIOUS, '--upstream', server.url, '--directory-key-file', stolenKeyFile, '--witnesses', JSON.stringify(witnesses), '--k', '2'], { stdio: ['ignore', 'pipe', 'inherit'] });
  malUrl = await new Promise<string>((resolve, reject) => {
    let out = '';
    mal.stdout!.setEncoding('utf8').on('data', (c: string) => { out += c; if (out.includes('\n')) resolve((JSON.parse(out) as { url: string }).url); });
    mal.once('exit', (c) => reject(new Error(`malicious directory exited ${c}`)));
  });
  honest = await connect(server.url);
  laptop = await generateDevice('laptop', 'x25519');
  await honest.enroll('user:alice', await enrollToken('user:alice'), laptop);
});

after(async () => {
  mal?.kill('SIGTERM');
  await server?.close();
  await Promise.all([w1?.stop(), w2?.stop()]);
});

void test('each directory head is published into the head log and cosigned by k witnesses; the client accepts it', async () => {
  const devices = await (await connect(server.url)).devices(['user:alice']);
  assert.deepEqual(devices.map((d) => d.device.id), ['laptop']);
  const w = (await fetch(`${server.url}/v1/directory/witnessed`)).json() as Promise<{ tree_size: number; checkpoint: string; cosigned: string[]; log_key: string; k: number }>;
  const got = await w;
  assert.deepEqual(got.cosigned, [w1.name, w2.name]);
  assert.equal(got.log_key, wcfg.logKey);
  const opened = openWitnessedCheckpoint(got.checkpoint, [newVerifier(wcfg.logKey)], witnessPolicy(wcfg.witnesses, 2), { origin: newVerifier(wcfg.logKey).name });
  assert.equal(opened.checkpoint.size, got.tree_size);
  assert.equal(opened.checkpoint.size, await server.store.ktTreeSize());
  // The witness process holds the head log at that size.
  const held = await (await fetch(`${w1.url}/`)).json() as { logs: { origin: string; size: number }[] };
  assert.equal(held.logs.find((l) => l.origin === newVerifier(wcfg.logKey).name)?.size, got.tree_size);
});

void test('GET /v1/directory/config publishes the witness configuration to pin; verifyHead accepts the current head with k cosignatures and refuses it stripped', async () => {
  const published = await Directory.published(fetchTransport(`${server.url}/`));
  assert.deepEqual(published.witnesses, { logKey: wcfg.logKey, k: 2, witnesses: wcfg.witnesses });
  checkPinnedWitnesses(wcfg, published.witnesses);
  const head = await (await connect(server.url)).verifyHead();
  assert.equal(head?.treeSize, await server.store.ktTreeSize());
  assert.deepEqual(head?.witnessed?.cosignatures.map((c) => c.name).sort(), [w1.name, w2.name]);
  // A client holding an older verified head checks the new one's consistency with it (and its cosignatures).
  const before = honest.kt.treeSize!;
  assert.equal((await call(server, 'PUT', '/v1/directory/groups/group:heads', { token: admin, body: { members: [] } })).status, 200);
  const grown = await honest.verifyHead();
  assert.ok(grown !== null && grown.treeSize > before && grown.witnessed?.treeSize === grown.treeSize);
  await setMode('strip');
  try {
    assert.equal(await code((await connect(malUrl)).verifyHead()), 'TLOG_NOT_ENOUGH_COSIGNATURES');
    assert.equal((await (await connect(malUrl, null)).verifyHead())?.witnessed, null);
  } finally {
    await setMode('pass');
  }
});

void test('a head without the witnesses\' cosignatures (stripped) is refused: TLOG_NOT_ENOUGH_COSIGNATURES', async () => {
  await setMode('strip');
  try {
    assert.equal(await code((await connect(malUrl)).devices(['user:alice'])), 'TLOG_NOT_ENOUGH_COSIGNATURES');
    // The same answers without a witness configuration pass: the refusal is the witness check's.
    assert.equal((await (await connect(malUrl, null)).devices(['user:alice'])).length, 1);
  } finally {
    await setMode('pass');
  }
});

void test('rollback to an older head is refused: KT_ROLLBACK by a client holding a newer head, TLOG_BAD_PROOF by a fresh one', async () => {
  await setMode('pass');
  const viaMal = await connect(malUrl);
  await viaMal.search('user:alice'); // remembered by the malicious server
  // The log grows: a second device, approved by the laptop.
  const phone = await generateDevice('phone', 'xwing');
  const pop = await honest.approvalPop('user:alice', phone);
  await honest.approve('user:alice', laptop, pop.keys, pop);
  await viaMal.search('user:alice');
  assert.equal(viaMal.kt.treeSize, await server.store.ktTreeSize());
  await setMode('replay');
  try {
    assert.equal(await code(viaMal.search('user:alice')), 'KT_ROLLBACK');
    // A fresh client is refused too: by the KEYTRANS checks of the replayed answer, or, where those
    // pass, by the witness check (an older head is not the latest witnessed entry: TLOG_BAD_PROOF).
    assert.match(await code((await connect(malUrl)).search('user:alice')), /^(KT_BAD_RESPONSE|TLOG_BAD_PROOF)$/);
  } finally {
    await setMode('pass');
  }
  const w = (await (await fetch(`${server.url}/v1/directory/witnessed`)).json()) as WitnessedHeadAnswer;
  const svc = await DirectoryService.open({ store: server.store, keys: loadDirectoryKeys(stolenKeyFile) });
  const older = { treeSize: 1, root: await (await svc.builder()).root(1) };
  const check = new DirectoryWitnessCheck(wcfg);
  assert.equal(await code(Promise.resolve().then(() => check.verify(older, w))), 'TLOG_BAD_PROOF');
  check.verify({ treeSize: w.tree_size, root: await (await svc.builder()).root(w.tree_size) }, w);
});

void test('a fresh client shown an old head with its own old witnessed checkpoint refuses it: TLOG_STALE_COSIGNATURES', async () => {
  const maxAgeSeconds = 3;
  const fresh: DirectoryWitnessConfig = { ...wcfg, maxAgeSeconds };
  // The malicious server remembered alice's first answer and the checkpoint witnessed for its head
  // (the rollback test above); let its cosignatures age past the client's bound.
  const remembered = (await (await fetch(`${malUrl}/__remembered`)).json()) as { witnessed: { size: number; at: number }[] };
  assert.ok(remembered.witnessed.length > 0, 'the malicious server remembered a witnessed head');
  const oldest = Math.min(...remembered.witnessed.map((w) => w.at));
  const wait = oldest + (maxAgeSeconds + 2) * 1000 - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  await setMode('replay-witnessed');
  try {
    const viaMal = await connect(malUrl, fresh);
    assert.equal(await code(viaMal.search('user:alice')), 'TLOG_STALE_COSIGNATURES');
    assert.ok((viaMal.kt.treeSize ?? 0) < await server.store.ktTreeSize(), 'what was shown is an old head');
    // Without a freshness bound that short (the default is one day) the same replay passes every
    // other check: the old head is the latest entry of a checkpoint k witnesses really cosigned.
    assert.equal(await code((await connect(malUrl)).search('user:alice')), 'resolved');
  } finally {
    await setMode('pass');
  }
  // The honest server is idle too, but re-witnesses its current head every second: accepted.
  const ok = await connect(server.url, fresh);
  assert.equal((await ok.devices(['user:alice'])).length > 0, true);
  assert.equal(ok.kt.treeSize, await server.store.ktTreeSize());
});

void test('a device key added to an answer but not in the log is refused by the proof check', async () => {
  await setMode('tamper');
  try {
    // Which check trips first depends on where the changed value shifts the proof (commitment, prefix proof, head signature).
    const c = await code((await connect(malUrl)).devices(['user:alice']));
    assert.match(c, /^KT_BAD_/);
  } finally {
    await setMode('pass');
  }
});

void test('a key signed by nobody, logged by a compromised server (so witnessed), is refused: KW_DIR_BAD_SIGNATURE', async () => {
  const bobLaptop = await generateDevice('laptop', 'x25519');
  await honest.enroll('user:bob', await enrollToken('user:bob'), bobLaptop);
  // The compromised server writes version 1 of user:bob straight into its log: a device "approved by
  // the laptop", signed by a key that is no device of bob's.
  const cfg = (await call(server, 'GET', '/v1/directory/config')).body as { max_ahead_ms: number; max_behind_ms: number };
  const svc = await DirectoryService.open({ store: server.store, keys: loadDirectoryKeys(stolenKeyFile), params: { maxAhead: cfg.max_ahead_ms, maxBehind: cfg.max_behind_ms } });
  const evil = await generateDevice('evil', 'x25519');
  const keys = await devicePublicKeys(evil);
  const at = Date.now();
  const prev = (await honest.identity('user:bob'))!;
  const forger = await generateDevice('nobody', 'x25519');
  const value = encodeEntityValue({
    v: 1, name: 'user:bob', devices: [...prev.devices, { ...keys, added: at, addedBy: 'device:laptop' }],
    change: {
      op: 'approve', version: 1, at, device: keys, by: { kind: 'device', id: 'laptop' },
      pop: signChange(base64urlnopad.decode(evil.signSeed), 'user:bob', 'approve', 1, at, keys),
      sig: signChange(base64urlnopad.decode(forger.signSeed), 'user:bob', 'approve', 1, at, keys),
    },
  });
  await server.store.transaction(async (tx) => {
    await tx.ktLock();
    await (await svc.builder(tx)).update([{ label: entityLabel('user:bob'), value }]);
  });
  const c = await connect(server.url);
  assert.equal(await code(c.devices(['user:bob'])), 'KW_DIR_BAD_SIGNATURE');
  // It is logged and witnessed: the head that carries it has k cosignatures (the refusal is the signature check's).
  assert.equal(c.kt.treeSize, await server.store.ktTreeSize());
});

void test('a dropped revocation is detected: the revoking device gets KT_BAD_RESPONSE, self-monitoring still sees the device', async () => {
  await setMode('drop-revoke');
  try {
    const viaMal = await connect(malUrl);
    assert.equal(await code(viaMal.revoke('user:alice', 'phone', laptop)), 'KT_BAD_RESPONSE');
  } finally {
    await setMode('pass');
  }
  // The laptop monitors its identity: only itself was meant to remain; the phone is still there.
  const report = await (await connect(server.url)).monitorSelf('user:alice', ['laptop']);
  assert.deepEqual(report.unexpected.map((d) => d.id), ['phone']);
});

void test('split view: a second log built with the stolen keys is refused by the witnesses and by the client', async () => {
  await setMode('fork');
  try {
    const fork = await (await fetch(`${malUrl}/__fork`)).json() as { cosigned: string[]; failures: { name: string; code: string }[] };
    assert.deepEqual(fork.cosigned, []);
    assert.deepEqual(fork.failures.map((f) => f.name).sort(), [w1.name, w2.name]);
    for (const f of fork.failures) assert.match(f.code, /^TLOG_WITNESS_(REFUSED|CONFLICT)$/);
    // Without witnesses, a client would take the attacker's key for alice's …
    const blindClient = await connect(malUrl, null);
    const blind = await blindClient.devices(['user:alice']);
    assert.notEqual(blind[0]!.device.sign, (await honest.identity('user:alice'))!.devices[0]!.sign);
    // … which gossip between the two clients exposes: one size, two roots.
    assert.equal(blindClient.kt.treeSize, honest.kt.treeSize);
    assert.throws(() => honest.kt.checkHead(blindClient.kt.head!), { code: 'KT_FORK' });
    // … with them, it refuses the second view.
    assert.equal(await code((await connect(malUrl)).devices(['user:alice'])), 'TLOG_NOT_ENOUGH_COSIGNATURES');
    await setMode('fork-transplant');
    const c = await code((await connect(malUrl)).devices(['user:alice']));
    assert.match(c, /^TLOG_(BAD_PROOF|NOT_ENOUGH_COSIGNATURES)$/);
  } finally {
    await setMode('pass');
  }
});

void test('the CLI (directory show, seal -r user:…) with KEYWARD_DIRECTORY_WITNESSES accepts witnessed heads and refuses stripped ones', async () => {
  const wfile = join(dir, 'directory-witnesses.json');
  writeFileSync(wfile, JSON.stringify({ log_key: wcfg.logKey, k: 2, witnesses: wcfg.witnesses }));
  const plain = join(dir, 'plain.txt');
  writeFileSync(plain, 'to alice');
  process.env.KEYWARD_DIRECTORY_WITNESSES = wfile;
  try {
    const ok = await keyward(['directory', 'show', 'user:alice', '--addr', server.url, '--json']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok((JSON.parse(ok.stdout) as { devices: { id: string }[] }).devices.some((d) => d.id === 'laptop'));
    const sealed = await keyward(['seal', '-r', 'user:alice', '--directory', server.url, '-o', join(dir, 'a.kw'), plain]);
    assert.equal(sealed.code, 0, sealed.stderr);
    await setMode('strip');
    const show = await keyward(['directory', 'show', 'user:alice', '--addr', malUrl, '--json']);
    assert.notEqual(show.code, 0);
    assert.match(show.stderr + show.stdout, /TLOG_NOT_ENOUGH_COSIGNATURES/);
    const refused = await keyward(['seal', '-r', 'user:alice', '--directory', malUrl, '-o', join(dir, 'b.kw'), plain]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /TLOG_NOT_ENOUGH_COSIGNATURES/);
    // A malformed witness file is a usage error, not a silent downgrade.
    writeFileSync(wfile, '{"witnesses": []}');
    const bad = await keyward(['directory', 'show', 'user:alice', '--addr', server.url]);
    assert.match(bad.stderr, /KW_INVALID_ARGUMENT/);
  } finally {
    delete process.env.KEYWARD_DIRECTORY_WITNESSES;
    await setMode('pass');
  }
});

/** `keyward doctor ARGS --json` in this process: exit code and the directory findings. */
async function doctorDirectory(args: string[]): Promise<{ code: number; findings: { id: string; severity: string; title: string; fix: string; details?: Record<string, unknown> }[] }> {
  const r = await keyward(['doctor', ...args, '--json']);
  const out = JSON.parse(r.stdout) as { findings: { id: string; severity: string; title: string; fix: string }[] };
  return { code: r.code, findings: out.findings.filter((f) => f.id.startsWith('directory-')) };
}
const adminTokenFile = join(dir, 'admin.token');
/** A sample of /metrics (0 when absent). */
const sample = (text: string, re: RegExp): number => Number(text.match(re)?.[1] ?? 0);

void test('doctor and metrics, healthy: no directory finding, cosignatures counted per witness; a node with other directory keys is directory-keys-differ', async () => {
  writeFileSync(adminTokenFile, `${admin}\n`, { mode: 0o600 });
  const healthy = await doctorDirectory(['--addr', server.url, '--token-file', adminTokenFile]);
  assert.deepEqual(healthy.findings, []);
  const m = await (await fetch(`${server.url}/metrics`)).text();
  for (const w of [w1, w2]) assert.ok(sample(m, new RegExp(`^keyward_directory_witness_cosign_total\\{witness="${w.name}",outcome="cosigned"\\} (\\d+)$`, 'm')) >= 1, `${w.name} cosigned`);
  assert.equal(sample(m, /^keyward_directory_witness_quorum (\d+)$/m), 2);
  // The log may grow meanwhile (heartbeat entries): the cosigned head is at most the log, at least the one witnessed above.
  const headSize = sample(m, /^keyward_directory_head_size (\d+)$/m);
  assert.ok(headSize >= 1 && headSize <= await server.store.ktTreeSize());
  const cosigned = sample(m, /^keyward_directory_head_cosigned_size (\d+)$/m);
  assert.ok(cosigned >= 1 && cosigned <= headSize, `cosigned ${cosigned} of ${headSize}`);
  assert.ok(Math.abs(sample(m, /^keyward_directory_head_cosigned_timestamp_seconds (\S+)$/m) - Date.now() / 1000) < 600);

  // This node's heartbeat carries the directory keys it opened (the ones GET /v1/directory/config serves).
  const cfg = await (await fetch(`${server.url}/v1/directory/config`)).json() as { signature_public_key: string; vrf_public_key: string };
  type Nodes = { nodes: { id: string; directory?: { signature_key: string; vrf_key: string } | null }[] };
  const me = await (async () => {
    for (const end = Date.now() + 15_000; ; await new Promise((r) => setTimeout(r, 200))) {
      const n = ((await call(server, 'GET', '/v1/sys/nodes', { token: admin })).body as Nodes).nodes.find((x) => x.directory);
      if (n || Date.now() > end) return n;
    }
  })();
  assert.deepEqual(me?.directory, { signature_key: cfg.signature_public_key, vrf_key: cfg.vrf_public_key });
  // A second node (its heartbeat written as a node would) whose keyholder derived other keys.
  const index = await server.store.getMeta('nodes');
  const now = new Date().toISOString();
  const odd = { id: 'node-b-odd', version: '0.0.0', started_at: now, last_seen: now, sealed: false, keyholder: 'up', hsm: null, directory: { signature_key: base64urlnopad.encode(randomBytes(32)), vrf_key: base64urlnopad.encode(randomBytes(32)) } };
  await server.store.setMeta('node.node-b-odd', JSON.stringify(odd));
  await server.store.setMeta('nodes', JSON.stringify([...(JSON.parse(index ?? '[]') as string[]), odd.id]));
  try {
    const differ = await doctorDirectory(['--addr', server.url, '--token-file', adminTokenFile]);
    assert.equal(differ.code, 1, 'critical: exit 1');
    const f = differ.findings.find((x) => x.id === 'directory-keys-differ');
    assert.equal(f?.severity, 'critical');
    assert.match(f.title, /2 different sets of directory keys/);
    assert.match(f.fix, /on each odd node \(node-b-odd\): stop keyward server, install -m 0600 keyholder\.json/);
  } finally {
    await server.store.setMeta('nodes', index ?? '[]');
  }
  assert.deepEqual((await doctorDirectory(['--addr', server.url, '--token-file', adminTokenFile])).findings, []);
});

void test('with a witness down (k = 2) new heads are not witnessed and the client refuses them', async () => {
  await w2.stop();
  const carol = await generateDevice('laptop', 'x25519');
  // Enrolling succeeds at the server, but the client cannot accept the new head.
  assert.equal(await code(honest.enroll('user:carol', await enrollToken('user:carol'), carol)), 'TLOG_NOT_ENOUGH_COSIGNATURES');
  const st = await (await fetch(`${server.url}/v1/directory/witnessed`)).json() as { tree_size: number };
  assert.ok(st.tree_size < await server.store.ktTreeSize());
});

void test('doctor and metrics with a witness down: directory-witnesses-failing (critical), directory-head-not-cosigned, shortfalls counted; offline findings from the config and the store', async () => {
  type Ws = { witnesses: { name: string; last_error: { code: string } | null }[] };
  for (const end = Date.now() + 15_000; ; await new Promise((r) => setTimeout(r, 150))) {
    const ws = (await call(server, 'GET', '/v1/directory/witnesses', { token: admin })).body as Ws;
    if (ws.witnesses.find((w) => w.name === w2.name)?.last_error) break;
    assert.ok(Date.now() < end, 'the publisher recorded the witness failure');
  }
  await new Promise((r) => setTimeout(r, 1100));
  const down = await doctorDirectory(['--addr', server.url, '--token-file', adminTokenFile, '--witness-max-age', '1']);
  assert.equal(down.code, 1);
  const failing = down.findings.find((f) => f.id === 'directory-witnesses-failing');
  assert.equal(failing?.severity, 'critical');
  assert.match(failing.title, new RegExp(`only 1 of 2 witnesses cosign directory heads, 2 must: ${w2.name.replace(/\./g, '\\.')} \\(TLOG_WITNESS_`));
  assert.match(failing.fix, new RegExp(`curl ${w2.url}/`));
  const stale = down.findings.find((f) => f.id === 'directory-head-not-cosigned');
  assert.equal(stale?.severity, 'critical');
  assert.match(stale.title, /the log has \d+ \(limit 1 s\)/);
  const m = await (await fetch(`${server.url}/metrics`)).text();
  assert.ok(sample(m, new RegExp(`^keyward_directory_witness_cosign_total\\{witness="${w2.name}",outcome="failed"\\} (\\d+)$`, 'm')) >= 1);
  assert.ok(sample(m, /^keyward_directory_witness_shortfall_total (\d+)$/m) >= 1);
  assert.ok(sample(m, /^keyward_directory_head_size (\d+)$/m) > sample(m, /^keyward_directory_head_cosigned_size (\d+)$/m));

  // Offline (--data, the store read-only): the same from the config file and the meta rows.
  const data = join(dir, 'data');
  const cfg = join(dir, 'server.json');
  const witnesses = [w1, w2].map((w) => ({ name: w.name, url: w.url, key: w.vkey }));
  const offline = async (c: object) => {
    writeFileSync(cfg, JSON.stringify({ listen: '127.0.0.1:8200', ...c }));
    return (await doctorDirectory(['--data', data, '--config', cfg, '--witness-max-age', '1'])).findings;
  };
  assert.deepEqual((await offline({ directory: { enabled: true }, witnesses, witnesses_k: 2 })).map((f) => [f.id, f.severity]).sort(),
    [['directory-head-not-cosigned', 'critical'], ['directory-witnesses-failing', 'critical']]);
  const none = await offline({ directory: { enabled: true } });
  assert.deepEqual(none.map((f) => [f.id, f.severity]), [['directory-witnesses-not-configured', 'warning']]);
  assert.match(none[0]!.fix, /head_log_key.*keyward witness --key-file KEY --state DIR --log head-log-key\.txt/);
  assert.ok((await offline({ directory: { enabled: true }, witnesses: witnesses.slice(0, 1), witnesses_k: 1 })).some((f) => f.id === 'directory-witnesses-too-few' && f.severity === 'warning'));
  assert.deepEqual(await offline({ witnesses, witnesses_k: 2 }), [], 'no directory: nothing to report');
});
