/**
 * A malicious directory server, run as its own process by
 * witness-attacks.test.ts: a man in the middle in front of the real key
 * service (`--upstream`) that also holds the directory's secret keys
 * (`--directory-key-file`: a compromised server). Every `/v1/…` request is
 * forwarded unless the mode (`POST /__mode {mode}`) says otherwise:
 *
 * - `pass`: forward everything; remember the first search answer per name (for `replay`);
 * - `strip`: `GET /v1/directory/witnessed` with the witnesses' cosignatures removed;
 * - `replay`: the remembered (older) search answers, with the current witnessed one: a rollback;
 * - `replay-witnessed`: the remembered search answers *and* the witnessed answer remembered for
 *   their head (legitimately cosigned back then): a rollback a client without state can only
 *   refuse by the cosignatures' age (`GET /__remembered` says when they were remembered);
 * - `tamper`: search answers whose value gets a device key the log does not hold;
 * - `drop-revoke`: a device revocation is answered "done" and never reaches the log;
 * - `fork` / `fork-transplant`: a second view built with the stolen keys — a KEYTRANS
 *   log of its own where `user:alice` has the attacker's device, and a head log of its
 *   own submitted to the real witnesses (`--witnesses`); `fork` serves what the
 *   witnesses gave (their refusals are reported by `GET /__fork`), `fork-transplant`
 *   serves the honest witnessed checkpoint instead.
 *
 * It prints `{ url }` as one JSON line on stdout once listening.
 */
import { createServer, type IncomingMessage } from 'node:http';
import { DirectoryBuilder, MemoryDirectoryStore, decodeConfiguration, decodeSearchResponse, encodeSearchResponse, type Configuration } from '@keyward/directory';
import { decodeIdentityValue, devicePublicKeys, encodeEntityValue, entityLabel, generateDevice, headLogEntry, signChange } from '@keyward/client';
import { collectCosignatures, formatNote, leafHash, parseNote, signCheckpoint, witnessPolicy, type WitnessFailure } from '@keyward/tlog';
import { base64urlnopad } from '@scure/base';
import { MerkleCache } from '../../src/audit/tree.js';
import { loadDirectoryKeys } from '../../src/directory/keys.js';
import { headLogKey } from '../../src/directory/witness.js';

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const upstream = arg('upstream')!;
const keys = loadDirectoryKeys(arg('directory-key-file')!);
const policy = witnessPolicy(JSON.parse(arg('witnesses')!) as { name: string; url: string; key: string }[], Number(arg('k') ?? '1'));
const hk = headLogKey(keys);

type Mode = 'pass' | 'strip' | 'replay' | 'replay-witnessed' | 'tamper' | 'drop-revoke' | 'fork' | 'fork-transplant';
let mode: Mode = 'pass';
const firstSearch = new Map<string, string>();
/** The first witnessed answer seen per tree size, and when it was seen. */
const firstWitnessed = new Map<number, { text: string; at: number }>();
let fork: { builder: DirectoryBuilder; config: Configuration; witnessed: string; failures: readonly WitnessFailure[]; cosigned: readonly string[] } | null = null;

function body(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let s = '';
    req.setEncoding('utf8').on('data', (c: string) => { s += c; }).on('end', () => resolve(s)).on('error', reject);
  });
}

async function forward(method: string, path: string, text: string, headers: IncomingMessage['headers']): Promise<{ status: number; text: string }> {
  const h: Record<string, string> = {};
  for (const k of ['content-type', 'authorization', 'accept']) if (typeof headers[k] === 'string') h[k] = headers[k];
  const r = await fetch(new URL(path, upstream), { method, headers: h, ...(method !== 'GET' && method !== 'HEAD' && text !== '' ? { body: text } : {}) });
  return { status: r.status, text: await r.text() };
}

async function upstreamConfig(): Promise<Configuration> {
  const r = await forward('GET', '/v1/directory/config', '', {});
  return decodeConfiguration(base64urlnopad.decode((JSON.parse(r.text) as { configuration: string }).configuration));
}

/** The second view: the attacker's device as `user:alice`'s only key, logged and signed with the stolen keys. */
async function buildFork(): Promise<NonNullable<typeof fork>> {
  const config = await upstreamConfig();
  const builder = await DirectoryBuilder.create(new MemoryDirectoryStore(), keys, {
    maxAhead: config.maxAhead, maxBehind: config.maxBehind, reasonableMonitoringWindow: config.reasonableMonitoringWindow,
    ...(config.maximumLifetime !== undefined ? { maximumLifetime: config.maximumLifetime } : {}),
  });
  const evil = await generateDevice('laptop', 'x25519');
  const device = await devicePublicKeys(evil);
  const at = Date.now();
  const pop = signChange(base64urlnopad.decode(evil.signSeed), 'user:alice', 'enroll', 0, at, device);
  const value = encodeEntityValue({ v: 1, name: 'user:alice', devices: [{ ...device, added: at, addedBy: 'token:et_evil' }], change: { op: 'enroll', version: 0, at, device, by: { kind: 'token', id: 'et_evil' }, pop } });
  await builder.update([{ label: entityLabel('user:alice'), value }]);
  // Pad the fork to the honest log's size: two heads of one size with different roots (a split view).
  const honestSize = (JSON.parse((await forward('GET', '/v1/directory/head', '', {})).text) as { tree_size: number }).tree_size;
  for (let i = 0; (await builder.treeSize()) < Math.max(2, honestSize); i++) await builder.update([{ label: entityLabel(`service:filler${i}`), value: new Uint8Array([i]) }]);
  const size = await builder.treeSize();
  const cache = new MerkleCache();
  for (let s = 1; s <= size; s++) cache.append(leafHash(headLogEntry(s, await builder.root(s))));
  const note = signCheckpoint(hk.signer, { origin: hk.origin, size, root: cache.root(size) });
  const r = await collectCosignatures(note, policy, { proof: (m) => cache.consistencyProof(m, size) });
  const witnessed = JSON.stringify({
    tree_size: size, root: base64urlnopad.encode(await builder.root(size)), checkpoint: r.note,
    proof: cache.inclusionProof(size - 1, size).map((p) => base64urlnopad.encode(p)), cosigned: r.cosigned, time: new Date().toISOString(),
    log_key: hk.verifierKey, k: policy.k, witnesses: policy.witnesses.map((w) => w.name),
  });
  return { builder, config, witnessed, failures: r.failures, cosigned: r.cosigned };
}

const server = createServer((req, res) => {
  void (async () => {
    const url = new URL(req.url ?? '/', 'http://x');
    const send = (status: number, text: string) => { res.writeHead(status, { 'content-type': 'application/json' }); res.end(text); };
    try {
      const text = await body(req);
      if (url.pathname === '/__mode' && req.method === 'POST') {
        mode = (JSON.parse(text) as { mode: Mode }).mode;
        if ((mode === 'fork' || mode === 'fork-transplant') && fork === null) fork = await buildFork();
        return send(200, JSON.stringify({ mode }));
      }
      if (url.pathname === '/__fork') return send(200, JSON.stringify({ failures: fork?.failures ?? [], cosigned: fork?.cosigned ?? [] }));
      if (url.pathname === '/__remembered') return send(200, JSON.stringify({ witnessed: [...firstWitnessed].map(([size, w]) => ({ size, at: w.at })) }));
      const path = `${url.pathname}${url.search}`;
      if (url.pathname === '/v1/directory/witnessed' && req.method === 'GET') {
        if (mode === 'fork' && fork) return send(200, fork.witnessed);
        const asked = Number(url.searchParams.get('size'));
        if (mode === 'replay-witnessed' && firstWitnessed.has(asked)) return send(200, firstWitnessed.get(asked)!.text);
        const r = await forward('GET', path, text, req.headers);
        if (mode === 'pass' && r.status === 200) {
          const size = (JSON.parse(r.text) as { tree_size: number }).tree_size;
          if (!firstWitnessed.has(size)) firstWitnessed.set(size, { text: r.text, at: Date.now() });
        }
        if (mode === 'strip' && r.status === 200) {
          const w = JSON.parse(r.text) as { checkpoint: string };
          const n = parseNote(w.checkpoint);
          // Keep only the head log's own signature: no witness cosigned what the client gets.
          w.checkpoint = formatNote({ text: n.text, signatures: n.signatures.filter((s) => s.name === hk.origin) });
          return send(200, JSON.stringify(w));
        }
        return send(r.status, r.text);
      }
      if (url.pathname === '/v1/directory/search' && req.method === 'POST') {
        const q = JSON.parse(text) as { name: string; version?: number };
        if ((mode === 'replay' || mode === 'replay-witnessed') && firstSearch.has(q.name) && q.version === undefined) return send(200, firstSearch.get(q.name)!);
        if ((mode === 'fork' || mode === 'fork-transplant') && fork) {
          const res = await fork.builder.search({ label: entityLabel(q.name), ...(q.version !== undefined ? { version: q.version } : {}) });
          return send(200, JSON.stringify({ name: q.name, response: base64urlnopad.encode(encodeSearchResponse(res, fork.config.mode)) }));
        }
        const r = await forward('POST', path, text, req.headers);
        if (r.status !== 200) return send(r.status, r.text);
        if (mode === 'pass' && q.version === undefined && !firstSearch.has(q.name)) firstSearch.set(q.name, r.text);
        if (mode === 'tamper') {
          // The log's answer, with one more device in the value: a key the log does not hold.
          const config = await upstreamConfig();
          const a = JSON.parse(r.text) as { name: string; response: string };
          const sr = decodeSearchResponse(base64urlnopad.decode(a.response), config.mode, q.version !== undefined);
          const v = decodeIdentityValue(sr.value.value, q.name, sr.version ?? 0);
          const extra = await devicePublicKeys(await generateDevice('evil', 'x25519'));
          const value = encodeEntityValue({ ...v, devices: [...v.devices, { ...extra, added: Date.now(), addedBy: 'device:laptop' }] });
          const forged = encodeSearchResponse({ ...sr, value: { ...sr.value, value } }, config.mode);
          return send(200, JSON.stringify({ ...a, response: base64urlnopad.encode(forged) }));
        }
        return send(200, r.text);
      }
      if (mode === 'drop-revoke' && req.method === 'POST' && /^\/v1\/directory\/identities\/[^/]+\/devices\/[^/]+\/revoke$/.test(url.pathname)) {
        // "Revoked": the answer names the version the device signed for; the log never sees it.
        const q = JSON.parse(text) as { version: number };
        return send(200, JSON.stringify({ name: decodeURIComponent(url.pathname.split('/')[4]!), version: q.version, tree_size: 0 }));
      }
      const r = await forward(req.method ?? 'GET', path, text, req.headers);
      return send(r.status, r.text);
    } catch (e) {
      send(500, JSON.stringify({ error: { code: 'KW_INTERNAL', message: (e as Error).message } }));
    }
  })();
});

server.listen(0, '127.0.0.1', () => {
  const a = server.address();
  if (a && typeof a === 'object') process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${a.port}` })}\n`);
});
process.once('SIGTERM', () => server.close(() => process.exit(0)));
