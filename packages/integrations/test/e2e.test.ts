/**
 * End to end on the real middleware of this machine: a client sends records
 * through a recording HTTP proxy to an ingest service (sealed HTTP bodies),
 * which publishes them sealed through the key service to NATS JetStream; a
 * processing service consumes them (opening through the key service, with
 * the data-key cache), and stores the results in PostgreSQL sealed columns;
 * an analyst with their own HPKE identity opens the rows. Then every place
 * the middle could see is searched for the canary plaintexts: the stream's
 * stored messages (read back raw through the JetStream API, and the stream's
 * files on disk when readable), the PostgreSQL rows, heap file and WAL, the
 * proxy's capture, and the key service's logs. Only the intended parties open.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { HpkeIdentity } from '@keyward/core';
import { connect, type NatsConnection } from 'nats';
import {
  isIntegrationError, NatsSealedConsumer, NatsSealedPublisher, SealedColumns, SealedHttpClient, sealedHttpPlugin, SealedTable,
  type OpenedMessage, type SealedSubscription,
} from '../src/index.js';
import {
  canary, enrollPrincipal, findCanaries, freshDatabase, must, NATS_URL, runId, startKeyService, startRecordingProxy, utf8,
  type FreshDb, type KeyService, type RecordingProxy, type ServicePrincipal,
} from './helpers.js';

let ks: KeyService;
let db: FreshDb;
let nc: NatsConnection;
let ingestApp: FastifyInstance;
let proxy: RecordingProxy;
let ingest: ServicePrincipal;
let processor: ServicePrincipal;
let outsider: ServicePrincipal;
let ingestKey: HpkeIdentity;
let analyst: HpkeIdentity;
let sub: SealedSubscription | undefined;
const stream = `KWE2E_${runId()}`.toUpperCase();
const subject = `${stream.toLowerCase()}.records`;

before(async () => {
  ks = await startKeyService();
  await must(ks.admin('POST', '/v1/keys/pipe/events', { type: 'aes256' }));
  await must(ks.admin('POST', '/v1/keys/pipe/results', { type: 'aes256' }));
  ingest = await enrollPrincipal(ks, 'ingest', 'pipe', ['datakey'], ['pipe/events']);
  processor = await enrollPrincipal(ks, 'processor', 'pipe', ['unwrap', 'datakey'], ['pipe/events', 'pipe/results']);
  outsider = await enrollPrincipal(ks, 'outsider', 'pipe', ['unwrap'], ['pipe/results']);
  ingestKey = await HpkeIdentity.generate('x25519');
  analyst = await HpkeIdentity.generate('x25519');

  db = await freshDatabase('kw_e2e');
  await db.pool.query('CREATE TABLE results (id text PRIMARY KEY, kind text NOT NULL, record bytea, summary bytea)');

  nc = await connect({ servers: NATS_URL });
  await (await nc.jetstreamManager()).streams.add({ name: stream, subjects: [`${stream.toLowerCase()}.>`] });
  await (await nc.jetstreamManager()).consumers.add(stream, { durable_name: 'processor', ack_policy: 'explicit' as never });

  // The ingest service: sealed HTTP in, sealed messages out.
  const publisher = new NatsSealedPublisher(nc, { kms: { service: ingest.kms, key: 'pipe/events' }, bindStream: true });
  ingestApp = Fastify({ logger: false });
  await ingestApp.register(sealedHttpPlugin, { identities: [ingestKey], audience: 'ingest' });
  ingestApp.post('/v1/records', async (req) => {
    const { id } = await publisher.publish({ subject, stream }, utf8(JSON.stringify(req.body)), { contentType: 'application/json' });
    return { accepted: id };
  });
  await ingestApp.listen({ host: '127.0.0.1', port: 0 });
  proxy = await startRecordingProxy(`http://127.0.0.1:${(ingestApp.server.address() as { port: number }).port}`, join(mkdtempSync(join(tmpdir(), 'kw-e2e-')), 'proxy.bin'));
});
after(async () => {
  await sub?.stop().catch(() => undefined);
  await proxy?.stop();
  await ingestApp?.close();
  if (nc) {
    await (await nc.jetstreamManager()).streams.delete(stream).catch(() => undefined);
    await nc.drain();
  }
  await db?.drop();
  await ks?.stop();
});

/** Every file of this stream on the NATS server's disk, when this process may read them. */
function streamFiles(): Buffer[] {
  const root = '/var/lib/nats-server/jetstream';
  if (!existsSync(root)) return [];
  const out: Buffer[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(readFileSync(p));
    }
  };
  for (const account of readdirSync(root)) {
    const dir = join(root, account, 'streams', stream);
    if (existsSync(dir)) walk(dir);
  }
  return out;
}

void test('records stay sealed across HTTP proxy, NATS JetStream, the key service and PostgreSQL; only the intended parties open them', async (t) => {
  const records = Array.from({ length: 8 }, (_, i) => ({ id: `r${i}`, patient: canary(`patient${i}`), diagnosis: canary(`dx${i}`) }));
  const all = records.flatMap((r) => [r.patient, r.diagnosis]);
  const summaryOf = (r: { patient: string; diagnosis: string }) => `${r.patient} has ${r.diagnosis}`;
  const summaries = records.map(summaryOf);

  // The processor: opens through the key service, writes sealed columns (to the analyst, via the key service too).
  const columns = new SealedColumns({
    table: 'results', columns: ['record', 'summary'],
    seal: { kms: { service: processor.kms, key: 'pipe/results' }, recipients: [await analyst.recipient()] },
  });
  const results = new SealedTable(db.pool, columns, { keyColumn: 'id' });
  const handled: OpenedMessage[] = [];
  sub = await new NatsSealedConsumer(nc, { kms: processor.kms, bindStream: true }).consume(stream, 'processor', async (m) => {
    const r = JSON.parse(Buffer.from(m.body).toString()) as (typeof records)[number];
    await results.insert({ id: r.id, kind: 'triage', record: JSON.stringify(r), summary: summaryOf(r) });
    handled.push(m);
  });

  // The client: sealed HTTP through the proxy.
  const client = new SealedHttpClient({ recipient: await ingestKey.recipient(), audience: 'ingest' });
  for (const r of records) {
    const res = await client.fetch(`${proxy.url}/v1/records`, { method: 'POST', json: r });
    assert.equal(res.status, 200);
    assert.match((res.json() as { accepted: string }).accepted, /^[0-9a-f]{32}$/);
  }
  for (let i = 0; i < 200 && handled.length < records.length; i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(handled.length, records.length);
  await sub.stop();
  sub = undefined;

  // The analyst opens the results with their own identity (no key service).
  const analystView = new SealedColumns({ table: 'results', columns: ['record', 'summary'], open: { identities: [analyst] } });
  const { rows } = await db.pool.query<{ id: string; record: Buffer; summary: Buffer }>('SELECT * FROM results ORDER BY id');
  assert.equal(rows.length, records.length);
  for (const row of rows) {
    const r = records.find((x) => x.id === row.id)!;
    assert.equal(await analystView.openValue('summary', row.id, row.summary), summaryOf(r));
    assert.deepEqual(JSON.parse(await analystView.openValue('record', row.id, row.record) as string), r);
  }

  // Nobody else: another HPKE identity, a principal without a grant on the key, the ingest service itself.
  const stranger = new SealedColumns({ table: 'results', columns: ['summary'], open: { identities: [await HpkeIdentity.generate('x25519')] } });
  const noGrant = new SealedColumns({ table: 'results', columns: ['summary'], open: { kms: ingest.kms } });
  for (const who of [stranger, noGrant]) {
    await assert.rejects(who.openValue('summary', rows[0]!.id, rows[0]!.summary), (e) => isIntegrationError(e, 'KW_INT_OPEN_FAILED'));
  }
  const outsiderMsgs = new NatsSealedConsumer(nc, { kms: outsider.kms, identities: [analyst], bindStream: true }).opener;
  const jsm = await nc.jetstreamManager();
  const first = await jsm.streams.getMessage(stream, { seq: 1 });
  await assert.rejects(outsiderMsgs.open({ transport: 'nats', pairs: [['stream', stream], ['subject', subject]] }, first.data, { 'content-type': first.header.get('content-type') }),
    (e) => isIntegrationError(e, 'KW_INT_OPEN_FAILED'));

  // What the middle saw.
  const info = await jsm.streams.info(stream);
  assert.equal(info.state.messages, records.length);
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq });
    assert.deepEqual(findCanaries(m.data, all), [], `stream message ${seq}`);
    // Only routing: the envelope's content type, the key hint, and JetStream's own expected-stream check.
    assert.deepEqual(m.header.keys().sort(), ['Nats-Expected-Stream', 'content-type', 'keyward-key']);
    assert.equal(m.header.get('Nats-Expected-Stream'), stream);
  }
  const files = streamFiles();
  if (files.length > 0) {
    assert.ok(files.some((f) => f.includes(Buffer.from(subject))), 'the stream files found are this stream\'s');
    for (const f of files) assert.deepEqual(findCanaries(f, all), []);
    t.diagnostic(`searched ${files.length} stream files on disk`);
  } else {
    t.diagnostic('stream files not readable here; checked through the JetStream API only');
  }

  const cap = proxy.capture();
  assert.ok(cap.length > 0 && cap.includes(Buffer.from('/v1/records')));
  assert.deepEqual(findCanaries(cap, all), [], 'proxy capture');

  const { rows: raw } = await db.pool.query<{ t: string }>('SELECT results::text AS t FROM results');
  assert.deepEqual(findCanaries(raw.map((r) => r.t).join('\n'), [...all, ...summaries]), [], 'rows');
  await db.pool.query('CHECKPOINT');
  const heap = await db.pool.query<{ b: Buffer }>(`SELECT pg_read_binary_file(pg_relation_filepath('results')) AS b`);
  assert.deepEqual(findCanaries(heap.rows[0]!.b, all), [], 'heap file');
  const wal = await db.pool.query<{ b: Buffer }>(`SELECT pg_read_binary_file('pg_wal/' || pg_walfile_name(pg_current_wal_lsn())) AS b`);
  assert.ok(wal.rows[0]!.b.includes(Buffer.from('triage')), 'the WAL segment holds this run\'s writes');
  assert.deepEqual(findCanaries(wal.rows[0]!.b, all), [], 'WAL');

  const logs = ks.logs();
  assert.ok(logs.includes('/v1/data/pipe/events/datakey'), 'the key service logged the data-plane requests');
  assert.deepEqual(findCanaries(logs, all), [], 'key service logs');

  // The key service stayed off the hot path: one datakey for all the events, one unwrap for them too.
  assert.equal(ingest.cache.stats().sealing.misses, 1);
  assert.equal(processor.cache.stats().unwrap.misses, 1);
});
