/**
 * Witnessing end to end, with real processes only: two `keyward witness`
 * processes, the key service (real keyholder process, SQLite) configured with
 * them (k = 2), a separate malicious-log process (malicious-log.ts), and the
 * real clients (`keyward audit export|verify`, `keyward doctor`, the
 * @keyward/tlog verifier).
 *
 * - The service publishes its audit checkpoints; the served checkpoint and the
 *   export carry 2 valid cosignatures; `audit verify --witness` accepts it.
 * - A head without enough cosignatures (stripped by a man in the middle) is
 *   refused: AUDIT_NOT_WITNESSED / TLOG_NOT_ENOUGH_COSIGNATURES.
 * - Rollback: an older witnessed head replayed by the man in the middle is
 *   refused by the client holding a newer checkpoint (AUDIT_TRUNCATED) and by
 *   the witnesses (409 with their newer size).
 * - Split view by a log that holds its key: the witnesses cosign view A and
 *   refuse view B (409 at the same size, 422 for a larger forked tree); the
 *   client shown view B refuses it (no cosignatures, or A's transplanted).
 * - Doctor: healthy → no witness finding; a witness down → witnesses-unreachable
 *   (critical); new checkpoints uncosigned → witness-cosignatures-stale; no
 *   witnesses in the config → witnesses-not-configured.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { addCheckpoint, generateSignerKey, newVerifier, openWitnessedCheckpoint, parseNote, witnessPolicy, type WitnessPolicy } from '@keyward/tlog';
import { initDataDir, type InitOutcome } from '../../src/init.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { armoredShare, call } from '../api/helpers.js';
import { MALICIOUS_LOG, keywardHere as keyward, startWitnessProcess, tempDir, type WitnessProcess } from './helpers.js';

const dir = tempDir('kw-witness-attacks-');
const data = join(dir, 'data');
const evil = generateSignerKey('malicious.example/log');
let init: InitOutcome;
let w1: WitnessProcess;
let w2: WitnessProcess;
let server: RunningServer;
let mal: ChildProcess;
let malUrl: string;
let closed = false;
let policy: WitnessPolicy;
const tokenFile = join(dir, 'admin.token');
const vkeyFile = join(dir, 'audit.vkey');

async function poll<T>(what: string, fn: () => Promise<T | null>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== null) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

const witnessStatus = async () => (await call(server, 'GET', '/v1/audit/witnesses', { token: init.token })).body as { k: number; n: number; latest_size: number | null; witnessed: { size: number; cosigned: string[] } | null; witnesses: { name: string; last_error: { code: string } | null }[] };

/** Adds audit events (token creations) and waits until a checkpoint covering them is witnessed. */
async function growAndWitness(): Promise<number> {
  for (let i = 0; i < 3; i++) await call(server, 'POST', '/v1/tokens', { token: init.token, body: { principal: `svc-${Date.now()}-${i}`, kind: 'service' } });
  const size = await server.store.auditSize();
  return poll('a witnessed checkpoint', async () => {
    const st = await witnessStatus();
    return st.witnessed !== null && st.witnessed.size >= size ? st.witnessed.size : null;
  });
}

before(async () => {
  init = await initDataDir(data, { shares: 3, threshold: 2, keepSharesInMemory: true, bootstrapOnly: false });
  writeFileSync(tokenFile, `${init.token}\n`, { mode: 0o600 });
  writeFileSync(vkeyFile, `${init.verifierKey}\n`);
  [w1, w2] = await Promise.all([
    startWitnessProcess({ name: 'w1.witness.test', logKeys: [init.verifierKey, evil.verifierKey] }),
    startWitnessProcess({ name: 'w2.witness.test', logKeys: [init.verifierKey, evil.verifierKey] }),
  ]);
  const witnesses = [w1, w2].map((w) => ({ name: w.name, url: w.url, key: w.vkey }));
  policy = witnessPolicy(witnesses, 2);
  server = await startServer({ data, listen: '127.0.0.1:0', logLevel: 'warn', logFile: join(dir, 'server.log'), checkpointMs: 200, witnessMs: 200, witnesses, witnessesK: 2 });
  for (const sh of init.shareRecords.slice(0, 2)) await call(server, 'POST', '/v1/sys/unseal', { body: { share: await armoredShare(server, sh) } });
  const keyFile = join(dir, 'evil.key');
  writeFileSync(keyFile, evil.signerKey, { mode: 0o600 });
  mal = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', MALICIOUS_LOG, '--log-key-file', keyFile, '--witnesses', JSON.stringify(witnesses), '--k', '2', '--upstream', server.url], { stdio: ['ignore', 'pipe', 'inherit'] });
  malUrl = await new Promise<string>((resolve, reject) => {
    let out = '';
    mal.stdout!.setEncoding('utf8').on('data', (c: string) => { out += c; if (out.includes('\n')) resolve((JSON.parse(out) as { url: string }).url); });
    mal.once('exit', (c) => reject(new Error(`malicious log exited ${c}`)));
  });
});

after(async () => {
  mal?.kill('SIGTERM');
  if (!closed) await server?.close();
  await Promise.all([w1?.stop(), w2?.stop()]);
});

const exportVia = async (addr: string, out: string) => {
  const r = await keyward(['audit', 'export', '--addr', addr, '--token-file', tokenFile, '-o', out]);
  assert.equal(r.code, 0, r.stderr);
  return readFileSync(out, 'utf8');
};
const verify = (file: string, extra: string[] = []) => keyward(['audit', 'verify', '--export', file, '--key', vkeyFile, '--witness', w1.vkey, '--witness', w2.vkey, '--json', ...extra]);

void test('the key service publishes its checkpoints; the served head and the export carry k cosignatures; audit verify --witness accepts them', async () => {
  const size = await growAndWitness();
  const st = await witnessStatus();
  assert.equal(st.k, 2);
  assert.deepEqual(st.witnessed!.cosigned, [w1.name, w2.name]);
  const cp = (await call(server, 'GET', '/v1/audit/checkpoint', { token: init.token })).body as { note: string; size: number; witnesses: { cosigned: string[] } };
  const opened = openWitnessedCheckpoint(cp.note, [newVerifier(init.verifierKey)], policy, { origin: init.origin });
  assert.ok(opened.checkpoint.size >= size);
  const file = join(dir, 'direct.jsonl');
  await exportVia(server.url, file);
  const r = await verify(file);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal((JSON.parse(r.stdout) as { ok: boolean }).ok, true);
  // Each witness holds the key service's size (GET / of the witness process).
  const held = await (await fetch(`${w1.url}/`)).json() as { logs: { origin: string; size: number }[] };
  assert.ok(held.logs.find((l) => l.origin === init.origin)!.size >= size);
});

void test('attack: a head without enough witness cosignatures is refused (AUDIT_NOT_WITNESSED, TLOG_NOT_ENOUGH_COSIGNATURES)', async () => {
  await fetch(`${malUrl}/__mode`, { method: 'POST', body: JSON.stringify({ mode: 'strip' }) });
  const file = join(dir, 'stripped.jsonl');
  const text = await exportVia(malUrl, file);
  const r = await verify(file);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /error\[AUDIT_NOT_WITNESSED\]/);
  assert.equal((JSON.parse(r.stdout) as { problems: { code: string }[] }).problems[0]!.code, 'AUDIT_NOT_WITNESSED');
  // One cosignature of two is not enough either.
  const note = (JSON.parse(text.split('\n', 1)[0]!) as { checkpoint: string }).checkpoint;
  assert.throws(() => openWitnessedCheckpoint(note, [newVerifier(init.verifierKey)], policy, { origin: init.origin }), { code: 'TLOG_NOT_ENOUGH_COSIGNATURES' });
  // The same export passes a verifier that does not require witnesses: the check is what catches it.
  assert.equal((await keyward(['audit', 'verify', '--export', file, '--key', vkeyFile])).code, 0);
  await fetch(`${malUrl}/__mode`, { method: 'POST', body: JSON.stringify({ mode: 'pass' }) });
});

void test('attack: rollback to an older witnessed head is refused by the client and by the witnesses', async () => {
  // The man in the middle records the current witnessed head, the log grows, then it replays the old one.
  await exportVia(malUrl, join(dir, 'seen.jsonl'));
  await growAndWitness();
  const newer = join(dir, 'newer.jsonl');
  const newerText = await exportVia(server.url, newer);
  const saved = join(dir, 'saved-checkpoint.txt');
  writeFileSync(saved, (JSON.parse(newerText.split('\n', 1)[0]!) as { checkpoint: string }).checkpoint);
  await fetch(`${malUrl}/__mode`, { method: 'POST', body: JSON.stringify({ mode: 'replay' }) });
  const old = join(dir, 'rolled-back.jsonl');
  const oldText = await exportVia(malUrl, old);
  await fetch(`${malUrl}/__mode`, { method: 'POST', body: JSON.stringify({ mode: 'pass' }) });
  const oldHeader = JSON.parse(oldText.split('\n', 1)[0]!) as { size: number; checkpoint: string };
  const newHeader = JSON.parse(newerText.split('\n', 1)[0]!) as { size: number };
  assert.ok(oldHeader.size < newHeader.size);
  // Well signed and witnessed, but older than what the client saved: refused.
  const r = await verify(old, ['--checkpoint', saved]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /error\[AUDIT_TRUNCATED\]/);
  // The witnesses refuse to cosign the older head again: 409 with the size they hold.
  for (const w of policy.witnesses) {
    const res = await addCheckpoint(w, { oldSize: 0, proof: [], checkpoint: oldHeader.checkpoint });
    assert.equal(res.status, 'conflict');
    assert.ok((res as { size: number }).size >= newHeader.size);
  }
});

void test('attack: split view by a log holding its key — witnesses refuse view B, and the client shown view B refuses it', async () => {
  const grow = async (b: object) => (await (await fetch(`${malUrl}/grow`, { method: 'POST', body: JSON.stringify(b) })).json()) as { ok?: boolean; failures?: { code: string; message: string }[]; results?: { status: string; code?: string; message?: string }[] };
  assert.equal((await grow({ view: 'A', size: 8 })).ok, true);
  // View B at the same size: 409 (a second root).
  const same = await grow({ view: 'B', size: 8, oldSize: 8 });
  for (const x of same.results!) {
    assert.equal(x.status, 'refused');
    assert.equal(x.code, 'TLOG_WITNESS_REFUSED');
    assert.match(x.message!, /409/);
  }
  // View B grown further: the witnesses learn their size (8) and refuse the inconsistent proof (422).
  const larger = await grow({ view: 'B', size: 12 });
  assert.equal(larger.ok, false);
  for (const f of larger.failures!) {
    assert.equal(f.code, 'TLOG_WITNESS_REFUSED');
    assert.match(f.message, /422/);
  }
  // A witness refusing to cosign an inconsistent log is also what its evidence file records.
  assert.match(readFileSync(join(w1.stateDir, 'evidence.jsonl'), 'utf8'), /TLOG_BAD_PROOF[^\n]*malicious\.example\/log/);
  // Client 1 is shown view A and accepts it; client 2 is shown view B and refuses it.
  const lv = [newVerifier(evil.verifierKey)];
  const get = async (q: string) => (await fetch(`${malUrl}/checkpoint?${q}`)).text();
  assert.equal(openWitnessedCheckpoint(await get('view=A'), lv, policy, { origin: 'malicious.example/log' }).checkpoint.size, 8);
  const viewB = await get('view=B');
  assert.throws(() => openWitnessedCheckpoint(viewB, lv, policy, { origin: 'malicious.example/log' }), { code: 'TLOG_NOT_ENOUGH_COSIGNATURES' });
  // View B at size 8 carrying view A's cosignatures: the cosignatures do not verify over B's text.
  const transplanted = await get('view=B&at=8&transplant=A');
  assert.equal(parseNote(transplanted).signatures.length, 3);
  assert.throws(() => openWitnessedCheckpoint(transplanted, lv, policy, { origin: 'malicious.example/log' }), { code: 'TLOG_BAD_SIGNATURE' });
  // Rollback of the malicious log at the witnesses: an older head of view A is refused with their size.
  const back = await grow({ view: 'A', size: 5, oldSize: 0 });
  for (const x of back.results!) assert.deepEqual({ status: x.status, size: (x as { size?: number }).size }, { status: 'conflict', size: 8 });
});

void test('doctor: healthy witnesses give no finding; a witness down is witnesses-unreachable, uncosigned checkpoints are stale; none configured is reported', async () => {
  const ids = async (args: string[]) => {
    const r = await keyward(['doctor', ...args, '--json']);
    const out = JSON.parse(r.stdout) as { findings: { id: string; severity: string; fix: string }[] };
    return { code: r.code, findings: out.findings.filter((f) => f.id.startsWith('witness')) };
  };
  const healthy = await ids(['--addr', server.url, '--token-file', tokenFile]);
  assert.deepEqual(healthy.findings, []);

  await w2.stop();
  for (let i = 0; i < 2; i++) await call(server, 'POST', '/v1/tokens', { token: init.token, body: { principal: `svc-down-${i}`, kind: 'service' } });
  const size = await server.store.auditSize();
  await poll('a checkpoint the witnesses could not cosign', async () => ((await witnessStatus()).latest_size ?? 0) >= size && (await witnessStatus()).witnesses.some((w) => w.last_error !== null) ? true : null);
  await new Promise((r) => setTimeout(r, 1100));
  const down = await ids(['--addr', server.url, '--token-file', tokenFile, '--witness-max-age', '1']);
  assert.equal(down.code, 1);
  const unreachable = down.findings.find((f) => f.id === 'witnesses-unreachable');
  assert.equal(unreachable?.severity, 'critical');
  assert.ok(down.findings.some((f) => f.id === 'witness-cosignatures-stale'));

  // Offline (--data): the store is read after the service stopped (doctor reads it read-only).
  await server.close();
  closed = true;
  const cfg = join(dir, 'server.json');
  writeFileSync(cfg, JSON.stringify({ listen: '127.0.0.1:8200', witnesses: [w1, w2].map((w) => ({ name: w.name, url: w.url, key: w.vkey })), witnesses_k: 2 }));
  const offline = await ids(['--data', data, '--config', cfg, '--witness-max-age', '1']);
  assert.deepEqual(offline.findings.map((f) => [f.id, f.severity]).sort(), [['witness-cosignatures-stale', 'warning'], ['witnesses-unreachable', 'critical']]);
  writeFileSync(cfg, JSON.stringify({ listen: '127.0.0.1:8200', witnesses: [{ name: w1.name, url: w1.url, key: w1.vkey }], witnesses_k: 1 }));
  assert.deepEqual((await ids(['--data', data, '--config', cfg, '--witness-max-age', '100000'])).findings, []);

  writeFileSync(cfg, JSON.stringify({ listen: '127.0.0.1:8200' }));
  const none = await ids(['--data', data, '--config', cfg]);
  assert.deepEqual(none.findings.map((f) => [f.id, f.severity]), [['witnesses-not-configured', 'warning']]);
  assert.match(none.findings[0]!.fix, /keyward witness --new-key/);
});
