/**
 * The ingest service: accepts records from clients (POST /records, JSON) and
 * publishes each sealed — through the key service (`datakey` on the events
 * key, with the data-key cache) — to NATS JetStream. It can seal, not open.
 * argv: CREDENTIALS_FILE NATS_URL STREAM SUBJECT EVENTS_KEY
 */
import { createServer } from 'node:http';
import { rmSync } from 'node:fs';
import { connect } from 'nats';
import { NatsSealedPublisher } from '@keyward/integrations';
import { kmsFrom } from './lib.js';

const [credsFile, natsUrl, stream, subject, eventsKey] = process.argv.slice(2) as [string, string, string, string, string];
const kms = await kmsFrom(credsFile);
rmSync(credsFile);
const nc = await connect({ servers: natsUrl });
const publisher = new NatsSealedPublisher(nc, { kms: { service: kms, key: eventsKey }, bindStream: true });

const server = createServer((req, res) => {
  const parts: Buffer[] = [];
  req.on('data', (c: Buffer) => parts.push(c));
  req.on('end', () => {
    void (async () => {
      try {
        if (req.method !== 'POST' || req.url !== '/records') { res.writeHead(404).end(); return; }
        const { id } = await publisher.publish({ subject, stream }, new Uint8Array(Buffer.concat(parts)), { contentType: 'application/json' });
        res.writeHead(202, { 'content-type': 'application/json' }).end(JSON.stringify({ accepted: id }));
      } catch (e) {
        res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ code: (e as { code?: string }).code ?? 'ERROR' }));
      }
    })();
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`));
process.on('SIGTERM', () => { server.close(); void nc.drain().then(() => process.exit(0)); });
