/**
 * `npm run bench:integrations`: the cost of sealing on the hops of
 * packages/integrations, on this machine's real NATS JetStream and
 * PostgreSQL, with the key service started in this process (`startServer`,
 * dev mode: its keyholder a child process; rate limits raised so the limiter
 * is not what is measured).
 *
 * NATS: N messages of B bytes through a fresh JetStream stream (file
 * storage), publisher and one pull consumer in this process, the consumer
 * acking each message after its handler. Time from the first publish to the
 * last message handled; publishes run with up to 64 PubAcks outstanding.
 *   - plain: `js.publish` of the raw body, consume + ack.
 *   - sealed (x25519): NatsSealedPublisher to an HPKE recipient, NatsSealedConsumer
 *     (open, frame, replay check, ack).
 *   - sealed (kms + cache): through the key service; the DataKeyCache serves
 *     the data key (one datakey and one unwrap call for the whole run).
 * Columns: R rows of a table with two sealed columns (~100 bytes each),
 * sealed and inserted one row per INSERT (pool of 4 connections, 16 rows in
 * flight), then read back and opened.
 *   - x25519 recipient (no key service).
 *   - kms: one datakey per value (the context binds the row, so no cache hit) and one unwrap per value.
 *
 * Options: --messages=5000 --bytes=1024 --rows=2000 --kms-rows=300
 */
import { randomBytes } from 'node:crypto';
import { cpus, loadavg, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { HpkeIdentity } from '@keyward/core';
import { DataKeyCache, KeywardHttpClient, KmsKeyService } from '@keyward/client';
import { startServer } from '@keyward/server';
import { NatsSealedConsumer, NatsSealedPublisher, SealedColumns, SealedTable } from '@keyward/integrations';
import { connect, type NatsConnection } from 'nats';
import pg from 'pg';
import { generateKeyPairSync } from 'node:crypto';

const { values: args } = parseArgs({ options: {
  messages: { type: 'string', default: '5000' }, bytes: { type: 'string', default: '1024' },
  rows: { type: 'string', default: '2000' }, 'kms-rows': { type: 'string', default: '300' },
} });
const N = Number(args.messages);
const B = Number(args.bytes);
const R = Number(args.rows);
const RK = Number(args['kms-rows']);
const id = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;

async function pool<T>(items: readonly T[], width: number, fn: (x: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => { while (next < items.length) { const i = next++; await fn(items[i]!, i); } }));
}

// --- key service ------------------------------------------------------------
const big = { ratePerSecond: 1e9, burst: 1e9 };
const ks = await startServer({ dev: true, listen: '127.0.0.1:0', logLevel: 'warn', logStream: process.stderr, rateLimit: { perToken: big, perAddress: big } });
const root = ks.rootToken!;
const admin = async (method: string, path: string, body?: unknown) => {
  const r = await fetch(`${ks.url}${path}`, { method, headers: { authorization: `Bearer ${root}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
  if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  return r.json() as Promise<Record<string, unknown>>;
};
await admin('POST', '/v1/keys/bench/msgs', { type: 'aes256' });
await admin('POST', '/v1/keys/bench/rows', { type: 'aes256' });
const tok = await admin('POST', '/v1/tokens', { principal: 'bench', ns: 'bench', roles: ['b'] });
await admin('PUT', '/v1/policies/bench/b', { grants: [{ roles: ['b'], operations: ['datakey', 'unwrap'], keys: ['bench/*'] }] });
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const seed = Uint8Array.from(Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url'));
const reg = await fetch(`${ks.url}/v1/auth/signing-keys`, { method: 'POST', headers: { authorization: `Bearer ${tok.token as string}`, 'content-type': 'application/json' }, body: JSON.stringify({ alg: 'ed25519', public_key: publicKey.export({ format: 'jwk' }).x }) });
const keyId = ((await reg.json()) as { key_id: string }).key_id;
const kmsOf = async (cache?: DataKeyCache) => KmsKeyService.create({
  http: new KeywardHttpClient({ addresses: [ks.url], token: tok.token as string, device: { keyId, signingSeed: seed } }),
  identity: await HpkeIdentity.generate('x25519'), ...(cache ? { cache } : {}),
});

// --- NATS ---------------------------------------------------------------------
const nc: NatsConnection = await connect({ servers: '127.0.0.1:4222' });
const jsm = await nc.jetstreamManager();
const js = nc.jetstream();
const identity = await HpkeIdentity.generate('x25519');
const bodies = Array.from({ length: N }, () => randomBytes(B));

interface Row { name: string; perSec: number; ms: number; note?: string }
const natsRows: Row[] = [];

async function natsRun(name: string, publish: (subject: string, body: Uint8Array) => Promise<unknown>, consume: (stream: string, onDone: () => void, count: () => number) => Promise<{ stop(): Promise<void> }>, note?: string) {
  const stream = `KWB_${id}_${natsRows.length}`.toUpperCase();
  const subject = `${stream.toLowerCase()}.m`;
  await jsm.streams.add({ name: stream, subjects: [subject] });
  await jsm.consumers.add(stream, { durable_name: 'c', ack_policy: 'explicit' as never, max_ack_pending: 10_000 });
  let handled = 0;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => { resolveDone = r; });
  const t0 = performance.now();
  const sub = await consume(stream, () => { if (++handled === N) resolveDone(); }, () => handled);
  await pool(bodies, 64, async (b) => { await publish(subject, b); });
  await done;
  const ms = performance.now() - t0;
  await sub.stop();
  await jsm.streams.delete(stream);
  natsRows.push({ name, perSec: N / (ms / 1000), ms, ...(note ? { note } : {}) });
  process.stderr.write(`nats ${name}: ${(N / (ms / 1000)).toFixed(0)} msg/s\n`);
}

// plain
await natsRun('plain (no sealing)', (s, b) => js.publish(s, b), async (stream, tick) => {
  const c = await js.consumers.get(stream, 'c');
  const msgs = await c.consume({ max_messages: 100 });
  const loop = (async () => { for await (const m of msgs) { m.ack(); tick(); } })();
  return { stop: async () => { msgs.stop(); await loop; } };
});
// sealed to an HPKE recipient
const hpkePub = new NatsSealedPublisher(nc, { recipients: [await identity.recipient()] });
await natsRun('sealed, x25519 recipient', (s, b) => hpkePub.publish(s, b), async (stream, tick) =>
  new NatsSealedConsumer(nc, { identities: [identity], replay: { maxEntries: 10 * N } }).consume(stream, 'c', () => { tick(); }));
// sealed through the key service, cached
const kmsPubSvc = await kmsOf(new DataKeyCache({ maxMessages: 2 ** 32 }));
const kmsSubSvc = await kmsOf(new DataKeyCache({ maxMessages: 2 ** 32 }));
const kmsPub = new NatsSealedPublisher(nc, { kms: { service: kmsPubSvc, key: 'bench/msgs' } });
await natsRun('sealed, kms + data-key cache', (s, b) => kmsPub.publish(s, b), async (stream, tick) =>
  new NatsSealedConsumer(nc, { kms: kmsSubSvc, replay: { maxEntries: 10 * N } }).consume(stream, 'c', () => { tick(); }),
  `key service calls: ${kmsPubSvc.cache!.stats().sealing.misses} datakey (before the run), unwrap counted after`);
natsRows[2]!.note = `datakey calls ${kmsPubSvc.cache!.stats().sealing.misses}, unwrap calls ${kmsSubSvc.cache!.stats().unwrap.misses}`;
await nc.drain();

// --- PostgreSQL columns ---------------------------------------------------------
const dbName = `kw_bench_${id}`;
const adminDb = new pg.Client({ host: '127.0.0.1', user: 'postgres', database: 'postgres' });
await adminDb.connect();
await adminDb.query(`CREATE DATABASE "${dbName}"`);
const pgPool = new pg.Pool({ host: '127.0.0.1', user: 'postgres', database: dbName, max: 4 });
pgPool.on('error', () => undefined); // idle clients terminated by the DROP at the end
const colRows: { name: string; write: number; read: number; n: number }[] = [];
async function columnsRun(name: string, n: number, cols: SealedColumns, tableName: string, plain = false) {
  await pgPool.query(`CREATE TABLE ${tableName} (id text PRIMARY KEY, a ${plain ? 'text' : 'bytea'}, b ${plain ? 'text' : 'bytea'})`);
  const t = new SealedTable(pgPool, cols, { keyColumn: 'id', sqlTable: tableName });
  const rows = Array.from({ length: n }, (_, i) => ({ id: `r${i}`, a: randomBytes(50).toString('hex'), b: randomBytes(50).toString('hex') }));
  let t0 = performance.now();
  if (plain) await pool(rows, 16, async (r) => { await pgPool.query(`INSERT INTO ${tableName} (id, a, b) VALUES ($1, $2, $3)`, [r.id, r.a, r.b]); });
  else await pool(rows, 16, async (r) => { await t.insert(r); });
  const write = n / ((performance.now() - t0) / 1000);
  t0 = performance.now();
  if (plain) await pool(rows, 16, async (r) => { await pgPool.query(`SELECT * FROM ${tableName} WHERE id = $1`, [r.id]); });
  else await pool(rows, 16, async (r) => { const got = await t.get(r.id); if (got?.a !== r.a) throw new Error('mismatch'); });
  const read = n / ((performance.now() - t0) / 1000);
  colRows.push({ name, write, read, n });
  process.stderr.write(`columns ${name}: ${write.toFixed(0)} rows/s write, ${read.toFixed(0)} rows/s read\n`);
}
const hpkeCols = new SealedColumns({ table: 'h', columns: ['a', 'b'], seal: { recipients: [await identity.recipient()] }, open: { identities: [identity] } });
await columnsRun('plain (no sealing)', R, hpkeCols, 'p', true);
await columnsRun('sealed, x25519 recipient', R, hpkeCols, 'h');
const colKms = await kmsOf(new DataKeyCache());
await columnsRun('sealed, kms (per-row context: one datakey + one unwrap per value)', RK, new SealedColumns({ table: 'k', columns: ['a', 'b'], seal: { kms: { service: colKms, key: 'bench/rows' } }, open: { kms: colKms } }), 'k');
await pgPool.end();
await adminDb.query(`DROP DATABASE "${dbName}" WITH (FORCE)`);
await adminDb.end();
await ks.close();

// --- report -----------------------------------------------------------------------
const f0 = (x: number) => x.toFixed(0);
const plainNats = natsRows[0]!.perSec;
console.log(`\n## Integrations — ${new Date().toISOString().slice(0, 10)}, ${cpus()[0]?.model ?? 'cpu'} × ${cpus().length}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);
console.log(`NATS JetStream, ${N} messages of ${B} bytes:\n`);
console.log('| path | messages/s | ratio to plain | notes |\n|---|---:|---:|---|');
for (const r of natsRows) console.log(`| ${r.name} | ${f0(r.perSec)} | ${(r.perSec / plainNats).toFixed(2)} | ${r.note ?? ''} |`);
console.log(`\nPostgreSQL, two sealed columns per row:\n`);
console.log('| path | rows | rows/s sealed + inserted | rows/s read + opened |\n|---|---:|---:|---:|');
for (const r of colRows) console.log(`| ${r.name} | ${r.n} | ${f0(r.write)} | ${f0(r.read)} |`);
