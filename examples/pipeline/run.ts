/**
 * The reference pipeline, run locally on this machine's real NATS JetStream
 * (127.0.0.1:4222) and PostgreSQL (127.0.0.1:5432): `npm run example:pipeline`.
 *
 *   client ──JSON──▶ ingest ──sealed (kms events key)──▶ NATS JetStream ──▶ processor ◀─unix socket─▶ decrypt worker (only holder of the processor's credentials)
 *                                                                            │
 *                                                 sealed columns (kms results key + user:analyst's devices) ▼
 *                                                                       PostgreSQL ──▶ analyst (a device of user:analyst: laptop or phone)
 *
 * Starts a key service in dev mode with the public-key directory enabled,
 * creates the keys and principals, enrolls `user:analyst` in the directory
 * with a one-time token from the laptop, and approves the phone from the
 * laptop (each device's private keys stay in its own file). The decrypt
 * worker seals each result to every current device of `user:analyst`,
 * resolved through the directory with proofs against the pinned directory
 * configuration. Half the records go through, then the laptop revokes the
 * phone, then the other half: the phone's key opens the records from before
 * the revocation (they were sealed to it, revocation does not reach back)
 * and no record processed after it (KW_INT_OPEN_FAILED); the laptop
 * opens all. Runs each service as its own process and prints what every
 * hop saw. With
 * PIPELINE_KEEP=1 the stream and database are left for inspection; the last
 * line is `PIPELINE_RESULT {json}`. PIPELINE_CANARY sets the marker put in
 * the records (tests search for it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { connect } from 'nats';
import pg from 'pg';
import { Directory, fetchTransport, generateDevice, type DeviceSecrets } from '@keyward/client';
import { HpkeIdentity } from '@keyward/core';
import { SealedColumns } from '@keyward/integrations';
import { enroll, HERE, NODE_ARGS, preview, REPO, startKeyService } from './lib.js';

const NATS_URL = process.env.KW_NATS ?? '127.0.0.1:4222';
const PG = { host: process.env.PGHOST ?? '127.0.0.1', port: Number(process.env.PGPORT ?? 5432), user: process.env.PGUSER ?? 'postgres' };
const run = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
const marker = process.env.PIPELINE_CANARY ?? `CANARY-${run}`;
const stream = `PIPELINE_${run}`.toUpperCase();
const subject = `pipeline.${run}.records`;
const database = `kw_pipeline_${run}`;
const ns = 'pipeline';
const [eventsKey, resultsKey] = [`${ns}/events`, `${ns}/results`];
const dir = mkdtempSync(join(tmpdir(), 'kw-pipeline-')); // 0700
const say = (s: string) => process.stdout.write(`${s}\n`);

function start(script: string, args: string[], onLine: (l: string) => void = (l) => say(l)): ChildProcess {
  const child = spawn(process.execPath, [...NODE_ARGS, join(HERE, script), ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
  createInterface({ input: child.stdout }).on('line', onLine);
  return child;
}
const firstLine = (script: string, args: string[]) => new Promise<{ child: ChildProcess; line: string }>((res, rej) => {
  let got = false;
  const child = start(script, args, (l) => { if (!got) { got = true; res({ child, line: l }); } else say(l); });
  child.once('exit', (c) => { if (!got) rej(new Error(`${script} exited (${c})`)); });
});

say('== keyward reference pipeline ==');
const ks = await startKeyService();
say(`[key service] dev mode at ${ks.url}`);
const children: ChildProcess[] = [];
const admin = new pg.Client({ ...PG, database: 'postgres' });
try {
  await ks.admin('POST', `/v1/keys/${eventsKey}`, { type: 'aes256' });
  await ks.admin('POST', `/v1/keys/${resultsKey}`, { type: 'aes256' });
  const ingestCreds = await enroll(ks, ns, 'ingest', [{ operations: ['datakey'], keys: [eventsKey] }]);
  const workerCreds = await enroll(ks, ns, 'processor', [{ operations: ['unwrap'], keys: [eventsKey] }, { operations: ['datakey'], keys: [resultsKey] }]);
  // The analyst: an identity of the directory with two devices, each one's private keys in its own file.
  const analyst = 'user:analyst';
  const pinned = await Directory.configuration(fetchTransport(ks.url));
  const directory = await Directory.connect(fetchTransport(ks.url), { pinned });
  const deviceFile = (name: string) => join(dir, `analyst-${name}.device.json`);
  const loadDevice = (name: string) => JSON.parse(readFileSync(deviceFile(name), 'utf8')) as DeviceSecrets;
  for (const name of ['laptop', 'phone']) writeFileSync(deviceFile(name), JSON.stringify(await generateDevice(name)), { mode: 0o600 });
  const { token: enrollToken } = await ks.admin('POST', '/v1/directory/enroll-tokens', { name: analyst }) as { token: string };
  await directory.enroll(analyst, enrollToken, loadDevice('laptop')); // on the laptop
  const half = await directory.approvalPop(analyst, loadDevice('phone')); // on the phone
  await directory.approve(analyst, loadDevice('laptop'), half.keys, half); // on the laptop
  say(`[directory] ${analyst} enrolled (laptop, one-time token), phone approved by the laptop; devices: ${(await directory.identity(analyst))!.devices.map((d) => d.id).join(', ')}`);
  const ingestFile = join(dir, 'ingest.creds.json');
  const workerFile = join(dir, 'worker.creds.json');
  writeFileSync(ingestFile, JSON.stringify(ingestCreds), { mode: 0o600 });
  writeFileSync(workerFile, JSON.stringify(workerCreds), { mode: 0o600 });
  say(`[setup] keys ${eventsKey}, ${resultsKey}; principals ingest (datakey events), processor (unwrap events, datakey results); results sealed to ${analyst}'s devices`);

  await admin.connect();
  await admin.query(`CREATE DATABASE "${database}"`);
  const db = new pg.Client({ ...PG, database });
  await db.connect();
  await db.query('CREATE TABLE results (id text PRIMARY KEY, kind text NOT NULL, record bytea, summary bytea)');
  const nc = await connect({ servers: NATS_URL });
  const jsm = await nc.jetstreamManager();
  await jsm.streams.add({ name: stream, subjects: [`pipeline.${run}.>`] });
  await jsm.consumers.add(stream, { durable_name: 'processor', ack_policy: 'explicit' as never });
  say(`[setup] NATS stream ${stream} (${subject}), PostgreSQL database ${database}`);

  const socket = join(dir, 'worker.sock');
  const worker = await firstLine('decrypt-worker.ts', [workerFile, socket, analyst, eventsKey, resultsKey, ks.url, pinned]);
  children.push(worker.child);
  say(`[decrypt worker] pid ${worker.child.pid}, socket ${socket} (the only process holding the processor's credentials)`);
  const ingest = await firstLine('ingest.ts', [ingestFile, NATS_URL, stream, subject, eventsKey]);
  children.push(ingest.child);
  const { port } = JSON.parse(ingest.line) as { port: number };
  say(`[ingest] pid ${ingest.child.pid}, http://127.0.0.1:${port}/records`);

  const records = Array.from({ length: 4 }, (_, i) => ({ id: `rec-${i}`, patient: `${marker}-patient-${i}`, diagnosis: `${marker}-dx-${i}` }));
  const processor = start('processor.ts', [socket, NATS_URL, stream, 'processor', database, String(records.length)]);
  children.push(processor);
  const before = records.slice(0, records.length / 2).map((r) => r.id);
  const stored = async () => Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM results')).rows[0]!.n);
  for (const r of records) {
    if (r.id === records[before.length]!.id) {
      while (await stored() < before.length) await new Promise((res) => setTimeout(res, 50));
      await directory.revoke(analyst, 'phone', loadDevice('laptop'));
      say(`[directory] the laptop revoked the phone; devices now: ${(await directory.identity(analyst))!.devices.map((d) => d.id).join(', ')}`);
    }
    const res = await fetch(`http://127.0.0.1:${port}/records`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(r) });
    const body = await res.json() as { accepted?: string; code?: string };
    if (res.status !== 202) throw new Error(`ingest refused ${r.id}: ${body.code}`);
    say(`[client → ingest] ${r.id} accepted as message ${body.accepted}`);
  }
  await once(processor, 'exit');

  say('-- what the middle saw --');
  const info = await jsm.streams.info(stream);
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq });
    say(`[NATS stream ${stream}] seq ${seq}: ${Buffer.from(m.data).toString('base64').slice(0, 72)}… (${m.data.length} bytes)`);
  }
  const { rows } = await db.query<{ id: string; record: Buffer; summary: Buffer }>('SELECT id, record, summary FROM results ORDER BY id');
  for (const r of rows) say(`[PostgreSQL results] ${r.id}: record=${preview(r.record)} summary=${preview(r.summary)}`);

  say('-- what the analyst opened (a device identity file only, no key service) --');
  const refused: Record<string, Record<string, string>> = { laptop: {}, phone: {} };
  for (const name of ['laptop', 'phone'] as const) {
    const d = loadDevice(name);
    const view = new SealedColumns({ table: 'results', columns: ['record', 'summary'], open: { identities: [await HpkeIdentity.parse(d.hpke.identity, d.hpke.alg)] } });
    for (const r of rows) {
      try {
        say(`[analyst ${name}] ${r.id}: ${String(await view.openValue('summary', r.id, r.summary))}`);
      } catch (e) {
        const code = (e as { code?: string }).code ?? 'ERROR';
        refused[name]![r.id] = code;
        say(`[${name} refused] ${r.id}: ${code}`);
      }
    }
  }

  const result = { stream, subject, database, rows: rows.length, sent: records.length, before, refused, kept: process.env.PIPELINE_KEEP === '1' };
  await db.end();
  if (process.env.PIPELINE_KEEP !== '1') {
    await jsm.streams.delete(stream);
    await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
  }
  await nc.drain();
  const logFile = join(tmpdir(), `kw-pipeline-${run}.keyservice.log`);
  writeFileSync(logFile, ks.logs());
  say(`[key service] logs in ${logFile}`);
  say(`PIPELINE_RESULT ${JSON.stringify({ ...result, keyServiceLog: logFile })}`);
} finally {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  await admin.end().catch(() => undefined);
  await ks.stop();
  rmSync(dir, { recursive: true, force: true });
}
