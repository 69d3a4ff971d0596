/**
 * `keyward witness` as a real, separate process, driven over HTTP by the real
 * tlog-witness client of @keyward/tlog: it cosigns a first checkpoint and
 * consistent growth; answers 409 with its latest size (text/x.tlog.size) to a
 * wrong old size; refuses a second root for one size (a split view), a tree
 * that does not extend the one it cosigned (an inconsistent log, 422) and an
 * older checkpoint (a rollback); keeps refusing after a restart (durable
 * state); keeps the refused, log-signed requests as evidence; and refuses to
 * start on a damaged state file.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  addCheckpoint, collectCosignatures, consistencyProof, formatAddCheckpoint, generateSignerKey, leafHash, newSigner, openWitnessedCheckpoint,
  newVerifier, rootFromLeaves, signCheckpoint, witnessPolicy, type WitnessPolicy,
} from '@keyward/tlog';
import { keywardHere as keyward, startWitnessProcess, type WitnessProcess } from './helpers.js';

const ORIGIN = 'log.example/witness-test';
const logKey = generateSignerKey(ORIGIN);
const leaves = Array.from({ length: 40 }, (_, i) => leafHash(new TextEncoder().encode(`leaf ${i}`)));
const forked = leaves.map((l, i) => (i === 2 ? leafHash(new TextEncoder().encode('forged')) : l));
const cp = (n: number, ls = leaves) => signCheckpoint(newSigner(logKey.signerKey), { origin: ORIGIN, size: n, root: rootFromLeaves(ls.slice(0, n)) });

let w: WitnessProcess;
let policy: WitnessPolicy;

before(async () => {
  w = await startWitnessProcess({ name: 'w1.witness.test', logKeys: [logKey.verifierKey] });
  policy = witnessPolicy([{ name: w.name, url: w.url, key: w.vkey }], 1);
});
after(async () => { await w.stop(); });

const post = (body: string) => fetch(`${w.url}/add-checkpoint`, { method: 'POST', body });

void test('keyward witness --help documents the protocol and the flags', async () => {
  const r = await keyward(['witness', '--help']);
  assert.equal(r.code, 0);
  for (const s of ['--key-file', '--state', '--log', '--new-key', '409', '422', 'evidence.jsonl']) assert.ok(r.stdout.includes(s), `help mentions ${s}`);
  const bad = await keyward(['witness', '--state', '/tmp/x']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--key-file/);
});

void test('cosigns a first checkpoint and consistent growth; the cosignature verifies with the printed key', async () => {
  const r1 = await collectCosignatures(cp(5), policy, { proof: (m) => consistencyProof(m, 5, leaves) });
  assert.deepEqual(r1.failures, []);
  assert.equal(r1.ok, true);
  const opened = openWitnessedCheckpoint(r1.note, [newVerifier(logKey.verifierKey)], policy, { origin: ORIGIN });
  assert.equal(opened.checkpoint.size, 5);
  assert.ok(Math.abs(opened.cosignatures[0]!.timestamp - Date.now() / 1000) < 60);
  // Growth from what the witness holds, with a proof.
  const r2 = await collectCosignatures(cp(12), policy, { sizes: r1.sizes, proof: (m) => consistencyProof(m, 12, leaves) });
  assert.equal(r2.ok, true, JSON.stringify(r2.failures));
  assert.equal(r2.sizes.get(w.name), 12);
  // A client that does not know the witness's size learns it from the 409 and retries.
  const r3 = await collectCosignatures(cp(20), policy, { proof: (m) => consistencyProof(m, 20, leaves) });
  assert.equal(r3.ok, true, JSON.stringify(r3.failures));
  const status = await (await fetch(`${w.url}/`)).json() as { logs: { origin: string; size: number; updated: string }[]; verifier_key: string };
  assert.deepEqual(status.logs, [{ origin: ORIGIN, size: 20, updated: status.logs[0]!.updated }]);
  assert.ok(Date.now() - Date.parse(status.logs[0]!.updated) < 120_000);
  assert.equal(status.verifier_key, w.vkey);
});

void test('a wrong old size gets 409 with the latest size as text/x.tlog.size; the spec statuses for the rest', async () => {
  const res = await post(formatAddCheckpoint({ oldSize: 3, proof: consistencyProof(3, 25, leaves), checkpoint: cp(25) }));
  assert.equal(res.status, 409);
  assert.equal(res.headers.get('content-type'), 'text/x.tlog.size');
  assert.equal(await res.text(), '20\n');
  const r = await addCheckpoint(policy.witnesses[0]!, { oldSize: 0, proof: [], checkpoint: cp(25) });
  assert.deepEqual(r, { status: 'conflict', size: 20 });
  // Unknown origin: 404. Signed by another key: 403. Malformed: 400. old > size: 400.
  const other = signCheckpoint(newSigner(generateSignerKey('other.example/log').signerKey), { origin: 'other.example/log', size: 1, root: rootFromLeaves(leaves.slice(0, 1)) });
  assert.equal((await post(formatAddCheckpoint({ oldSize: 0, proof: [], checkpoint: other }))).status, 404);
  const impostor = signCheckpoint(newSigner(generateSignerKey(ORIGIN).signerKey), { origin: ORIGIN, size: 25, root: rootFromLeaves(leaves.slice(0, 25)) });
  assert.equal((await post(formatAddCheckpoint({ oldSize: 20, proof: consistencyProof(20, 25, leaves), checkpoint: impostor }))).status, 403);
  assert.equal((await post('old 01\n\nnot a note\n')).status, 400);
  assert.equal((await post(formatAddCheckpoint({ oldSize: 30, proof: [], checkpoint: cp(25) }))).status, 400);
  assert.equal((await fetch(`${w.url}/add-checkpoint`)).status, 405);
  // Nothing of that changed the witness's state.
  const st = await (await fetch(`${w.url}/`)).json() as { logs: { size: number }[] };
  assert.equal(st.logs[0]!.size, 20);
});

void test('split view: a second root for the size it cosigned is refused (409), a forked larger tree too (422)', async () => {
  const sameSize = await post(formatAddCheckpoint({ oldSize: 20, proof: [], checkpoint: cp(20, forked) }));
  assert.equal(sameSize.status, 409);
  assert.match(await sameSize.text(), /TLOG_INCONSISTENT/);
  const larger = await post(formatAddCheckpoint({ oldSize: 20, proof: consistencyProof(20, 30, forked), checkpoint: cp(30, forked) }));
  assert.equal(larger.status, 422);
  // Through the client: a refusal, never a cosignature.
  const r = await collectCosignatures(cp(30, forked), policy, { sizes: new Map([[w.name, 20]]), proof: (m) => consistencyProof(m, 30, forked) });
  assert.equal(r.ok, false);
  assert.equal(r.failures[0]!.code, 'TLOG_WITNESS_REFUSED');
  assert.match(r.failures[0]!.message, /422/);
  // The honest log still gets cosignatures.
  assert.equal((await collectCosignatures(cp(30), policy, { sizes: new Map([[w.name, 20]]), proof: (m) => consistencyProof(m, 30, leaves) })).ok, true);
  // The refused requests carry the log's signature: kept as evidence.
  const evidence = readFileSync(join(w.stateDir, 'evidence.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { code: string; request: string });
  assert.ok(evidence.some((e) => e.code === 'TLOG_INCONSISTENT' && e.request.includes(ORIGIN)));
  assert.ok(evidence.some((e) => e.code === 'TLOG_BAD_PROOF'));
});

void test('rollback: an older checkpoint is refused (409 with the newer size) and the client reports TLOG_WITNESS_CONFLICT', async () => {
  const res = await post(formatAddCheckpoint({ oldSize: 0, proof: [], checkpoint: cp(10) }));
  assert.equal(res.status, 409);
  assert.equal(await res.text(), '30\n');
  const r = await collectCosignatures(cp(10), policy, { proof: (m) => consistencyProof(m, 10, leaves) });
  assert.equal(r.ok, false);
  assert.equal(r.failures[0]!.code, 'TLOG_WITNESS_CONFLICT');
  assert.match(r.failures[0]!.message, /rollback/);
});

void test('the state is durable: after a restart the witness still refuses a rollback and a fork', async () => {
  await w.stop();
  const state = JSON.parse(readFileSync(join(w.stateDir, 'witness-state.json'), 'utf8')) as { logs: Record<string, { size: number }> };
  assert.equal(state.logs[ORIGIN]!.size, 30);
  w = await startWitnessProcess({ name: w.name, logKeys: [logKey.verifierKey], keyFile: w.keyFile, vkey: w.vkey, stateDir: w.stateDir });
  policy = witnessPolicy([{ name: w.name, url: w.url, key: w.vkey }], 1);
  const rollback = await post(formatAddCheckpoint({ oldSize: 0, proof: [], checkpoint: cp(10) }));
  assert.equal(rollback.status, 409);
  assert.equal(await rollback.text(), '30\n');
  assert.equal((await post(formatAddCheckpoint({ oldSize: 30, proof: [], checkpoint: cp(30, forked) }))).status, 409);
  assert.equal((await collectCosignatures(cp(33), policy, { proof: (m) => consistencyProof(m, 33, leaves) })).ok, true);
});

void test('a damaged state file stops the witness at start (it never starts over from zero)', async () => {
  await w.stop();
  const file = join(w.stateDir, 'witness-state.json');
  assert.ok(existsSync(file));
  const good = readFileSync(file, 'utf8');
  writeFileSync(file, good.slice(0, good.length / 2));
  await assert.rejects(startWitnessProcess({ name: w.name, logKeys: [logKey.verifierKey], keyFile: w.keyFile, vkey: w.vkey, stateDir: w.stateDir }), /witness state .* is not JSON/);
  writeFileSync(file, good);
  w = await startWitnessProcess({ name: w.name, logKeys: [logKey.verifierKey], keyFile: w.keyFile, vkey: w.vkey, stateDir: w.stateDir });
});

void test('bad witness configuration is refused before anything starts (server, audit verify)', async () => {
  const { startServer } = await import('../../src/server.js');
  const entry = { name: w.name, url: w.url, key: w.vkey };
  await assert.rejects(startServer({ data: '/nonexistent', listen: '127.0.0.1:0', logLevel: 'silent', witnesses: [{ ...entry, name: 'other.name' }] }), { code: 'KW_INVALID_ARGUMENT', reason: 'CONFIG_INVALID' });
  await assert.rejects(startServer({ data: '/nonexistent', listen: '127.0.0.1:0', logLevel: 'silent', witnesses: [entry], witnessesK: 2 }), { code: 'KW_INVALID_ARGUMENT', reason: 'CONFIG_INVALID' });
  await assert.rejects(startServer({ data: '/nonexistent', listen: '127.0.0.1:0', logLevel: 'silent', witnesses: [{ ...entry, key: logKey.verifierKey, name: ORIGIN }] }), { code: 'KW_INVALID_ARGUMENT', reason: 'CONFIG_INVALID' });
  const k = await keyward(['audit', 'verify', '--export', '/nonexistent', '--key', logKey.verifierKey, '--witnesses-k', '1']);
  assert.equal(k.code, 2);
  assert.match(k.stderr, /--witnesses-k goes with --witness/);
  const big = await keyward(['audit', 'verify', '--export', '/nonexistent', '--key', logKey.verifierKey, '--witness', w.vkey, '--witnesses-k', '2']);
  assert.equal(big.code, 2);
});
