/**
 * The decryption worker of the processing service: an isolated process, the
 * only one holding the processor's credentials (token, device signing key,
 * HPKE identity) — keyholder-style. The processing service reaches it over a
 * local unix socket (mode 0600, in a 0700 directory) with two requests:
 *
 *   { op: "open", subject, stream, payload, headers } → { id, ts, body }   (a sealed NATS message, opened through the key service, replay-checked)
 *   { op: "seal", id, values: { column: text } }     → { values: { column: sealed bytes } }   (results sealed for PostgreSQL: kms key + every current device of the analyst)
 *
 * The analyst's devices are resolved for each record through the directory,
 * with proofs checked against the pinned directory configuration: a device
 * revoked there receives no stanza of the records sealed after it.
 * Errors answer only a code. argv: CREDENTIALS_FILE SOCKET ANALYST_NAME EVENTS_KEY RESULTS_KEY DIRECTORY_URL DIRECTORY_CONFIG
 */
import { chmodSync, rmSync } from 'node:fs';
import { Directory, fetchTransport } from '@keyward/client';
import { MessageOpener, natsRoute, SealedColumns } from '@keyward/integrations';
import { b64, kmsFrom, serveRpc, unb64 } from './lib.js';

const [credsFile, socket, analyst, , resultsKey, directoryUrl, pinned] = process.argv.slice(2) as [string, string, string, string, string, string, string];
const kms = await kmsFrom(credsFile);
rmSync(credsFile); // read once; nobody else needs it
const opener = new MessageOpener({ kms });
const directory = await Directory.connect(fetchTransport(directoryUrl), { pinned });
const columnsFor = async () => new SealedColumns({
  table: 'results', columns: ['record', 'summary'],
  seal: { kms: { service: kms, key: resultsKey }, recipients: await directory.recipients([analyst]) },
});

await serveRpc(socket, async (req) => {
  if (req.op === 'open') {
    const { message, reservation } = await opener.open(natsRoute(req.subject as string, req.stream as string), unb64(req.payload as string), req.headers as Record<string, string>);
    reservation.commit();
    return { id: message.id, ts: message.ts, body: b64(message.body) };
  }
  if (req.op === 'seal') {
    const columns = await columnsFor(); // resolved per record: revocations apply to the next record
    const out: Record<string, string> = {};
    for (const [col, v] of Object.entries(req.values as Record<string, string>)) out[col] = b64(await columns.sealValue(col, req.id as string, v));
    return { values: out };
  }
  throw Object.assign(new Error('unknown op'), { code: 'UNKNOWN_OP' });
});
chmodSync(socket, 0o600);
process.stdout.write('ready\n');
process.on('SIGTERM', () => process.exit(0));
