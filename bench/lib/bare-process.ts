/**
 * The baseline of `npm run bench:server`: a bare fastify endpoint in its own
 * process, configured as the key service's application is (no logger, the
 * 64 KiB body limit, a JSON body parsed from a buffer), answering a small
 * JSON object. What the key service adds on top — authentication, the signed
 * request, policy, the keyholder, the audit transaction — is the difference.
 *
 *   node --conditions=source --import tsx bench/lib/bare-process.ts
 *
 * Prints `KW_BENCH_BARE {"url":…}` on stdout; SIGTERM closes it.
 */
import Fastify from 'fastify';

const app = Fastify({ logger: false, bodyLimit: 64 * 1024, trustProxy: false });
app.removeAllContentTypeParsers();
app.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: 64 * 1024 }, (_req, body: Buffer, done) => {
  try {
    done(null, body.length === 0 ? undefined : JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body)) as unknown);
  } catch (e) {
    done(e as Error, undefined);
  }
});
app.post('/v1/bare/:ns/:name', (req) => {
  const params = req.params as { ns: string; name: string };
  return Promise.resolve({ key: `${params.ns}/${params.name}`, version: 1, sealed: 'x'.repeat(300) });
});
const url = await app.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(`KW_BENCH_BARE ${JSON.stringify({ url, pid: process.pid })}\n`);
process.on('SIGTERM', () => { app.close().then(() => process.exit(0), () => process.exit(1)); });
