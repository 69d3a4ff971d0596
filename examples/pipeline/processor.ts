/**
 * The processing service: consumes the sealed records from NATS JetStream,
 * has its decryption worker open them (it holds no key itself), computes a
 * result, has the worker seal it, and writes the sealed columns to
 * PostgreSQL. It logs only what it carries: ciphertext sizes and ids.
 * argv: SOCKET NATS_URL STREAM CONSUMER DATABASE COUNT
 */
import { connect } from 'nats';
import pg from 'pg';
import { connectRpc, preview, unb64 } from './lib.js';

const [socket, natsUrl, stream, consumerName, database, count] = process.argv.slice(2) as [string, string, string, string, string, string];
const worker = await connectRpc(socket);
const db = new pg.Client({ host: process.env.PGHOST ?? '127.0.0.1', port: Number(process.env.PGPORT ?? 5432), user: process.env.PGUSER ?? 'postgres', database });
await db.connect();
const nc = await connect({ servers: natsUrl });
const consumer = await (nc.jetstream()).consumers.get(stream, consumerName);
const messages = await consumer.consume();
let handled = 0;
for await (const m of messages) {
  const headers: Record<string, string> = {};
  for (const k of m.headers?.keys() ?? []) headers[k] = m.headers!.get(k);
  process.stdout.write(`[nats → processor] seq=${m.seq} subject=${m.subject} headers=${JSON.stringify(headers)} payload=${preview(m.data)}\n`);
  const opened = await worker.call({ op: 'open', subject: m.subject, stream, payload: Buffer.from(m.data).toString('base64'), headers });
  if (!opened.ok) { process.stdout.write(`[processor] refused seq=${m.seq}: ${opened.code}\n`); m.term(); continue; }
  const record = JSON.parse(Buffer.from(unb64(opened.body!)).toString()) as { id: string; patient: string; diagnosis: string };
  const summary = `${record.patient}: ${record.diagnosis} (triaged)`;
  const sealed = await worker.call({ op: 'seal', id: record.id, values: { record: JSON.stringify(record), summary } });
  if (!sealed.ok) { process.stdout.write(`[processor] sealing failed: ${sealed.code}\n`); m.nak(); continue; }
  await db.query('INSERT INTO results (id, kind, record, summary) VALUES ($1, $2, $3, $4)', [record.id, 'triage', Buffer.from(sealed.values!.record!, 'base64'), Buffer.from(sealed.values!.summary!, 'base64')]);
  m.ack();
  process.stdout.write(`[processor → postgres] row ${record.id}: record=${preview(unb64(sealed.values!.record!))}\n`);
  if (++handled >= Number(count)) break;
}
worker.close();
await db.end();
await nc.close();
process.exit(0); // the JetStream consume iterator holds the loop open
