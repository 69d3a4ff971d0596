/**
 * A malicious log server, run as its own process by attacks.test.ts. It plays
 * two roles:
 *
 * 1. A compromised log that holds its signing key (`--log-key-file`): it
 *    grows two views of one log (A, and B that differs from A at leaf
 *    `FORK_AT`), asks the real witnesses to cosign each (`POST /grow`), and
 *    serves clients whatever view it likes (`GET /checkpoint?view=…`), with
 *    its cosignatures stripped, transplanted from the other view, or an older
 *    head (rollback).
 * 2. A man in the middle in front of the real key service (`--upstream`):
 *    every `/v1/…` request is forwarded, and `GET /v1/audit/checkpoint` is
 *    answered per `POST /__mode`: `pass`, `strip` (cosignatures removed) or
 *    `replay` (the first witnessed checkpoint it saw: a rollback).
 *
 * It prints `{ url }` as one JSON line on stdout once listening.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import {
  addCheckpoint, collectCosignatures, consistencyProof, formatNote, leafHash, newSigner, parseNote, rootFromLeaves, signCheckpoint, witnessPolicy,
} from '@keyward/tlog';

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const FORK_AT = 3;
const signer = arg('log-key-file') ? newSigner(readFileSync(arg('log-key-file')!, 'utf8').trim()) : null;
const policy = arg('witnesses') ? witnessPolicy(JSON.parse(arg('witnesses')!) as { name: string; url: string; key: string }[], Number(arg('k') ?? '1')) : null;
const upstream = arg('upstream');

type View = 'A' | 'B';
const leavesOf = (view: View, n: number) => Array.from({ length: n }, (_, i) => leafHash(new TextEncoder().encode(view === 'B' && i === FORK_AT ? 'B: a key nobody logged' : `entry ${i}`)));
/** Per view: every note it signed, by size, with the cosignatures it got. */
const notes: Record<View, Map<number, string>> = { A: new Map(), B: new Map() };
const sizes: Record<View, Map<string, number>> = { A: new Map(), B: new Map() };
let mode: 'pass' | 'strip' | 'replay' = 'pass';
let firstWitnessed: string | null = null;

const stripCosignatures = (note: string, keep: (name: string) => boolean): string => {
  const n = parseNote(note);
  return formatNote({ text: n.text, signatures: n.signatures.filter((s) => keep(s.name)) });
};

function body(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let s = '';
    req.setEncoding('utf8').on('data', (c: string) => { s += c; }).on('end', () => resolve(s)).on('error', reject);
  });
}

const server = createServer((req, res) => {
  void (async () => {
    const url = new URL(req.url ?? '/', 'http://x');
    const json = (status: number, v: unknown) => { res.writeHead(status, { 'content-type': 'application/json' }); res.end(JSON.stringify(v)); };
    try {
      if (url.pathname === '/grow' && req.method === 'POST') {
        // { view, size, oldSize? }: sign the view's checkpoint and ask every witness; oldSize forces the "old" line.
        const { view, size, oldSize } = JSON.parse(await body(req)) as { view: View; size: number; oldSize?: number };
        const leaves = leavesOf(view, size);
        const note = signCheckpoint(signer!, { origin: signer!.name, size, root: rootFromLeaves(leaves) });
        if (oldSize !== undefined) {
          const out = [];
          for (const w of policy!.witnesses) {
            try {
              out.push({ name: w.name, ...(await addCheckpoint(w, { oldSize, proof: oldSize === 0 || oldSize === size ? [] : consistencyProof(oldSize, size, leaves), checkpoint: note })) });
            } catch (e) {
              out.push({ name: w.name, status: 'refused', code: (e as { code?: string }).code, message: (e as Error).message });
            }
          }
          notes[view].set(size, note);
          return json(200, { results: out });
        }
        const r = await collectCosignatures(note, policy!, { sizes: sizes[view], proof: (m) => consistencyProof(m, size, leaves) });
        sizes[view] = new Map(r.sizes);
        notes[view].set(size, r.note);
        return json(200, { ok: r.ok, cosigned: r.cosigned, failures: r.failures });
      }
      if (url.pathname === '/checkpoint' && req.method === 'GET') {
        const view = (url.searchParams.get('view') ?? 'A') as View;
        const at = url.searchParams.get('at');
        const size = at !== null ? Number(at) : Math.max(...notes[view].keys());
        let note = notes[view].get(size);
        if (note === undefined) return json(404, { error: 'no such head' });
        if (url.searchParams.get('strip') === '1') note = stripCosignatures(note, (n) => n === signer!.name);
        const from = url.searchParams.get('transplant') as View | null;
        if (from !== null) {
          // View B's log signature with view A's cosignatures of the same size.
          const donor = parseNote(notes[from].get(size)!).signatures.filter((s) => s.name !== signer!.name);
          const own = parseNote(note);
          note = formatNote({ text: own.text, signatures: [...own.signatures.filter((s) => s.name === signer!.name), ...donor] });
        }
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
        return res.end(note);
      }
      if (url.pathname === '/__mode' && req.method === 'POST') {
        mode = (JSON.parse(await body(req)) as { mode: typeof mode }).mode;
        return json(200, { mode });
      }
      if (upstream !== undefined && url.pathname.startsWith('/v1/')) {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && k !== 'host' && k !== 'content-length') headers[k] = v;
        const payload = req.method === 'GET' || req.method === 'HEAD' ? undefined : await body(req);
        const up = await fetch(`${upstream}${url.pathname}${url.search}`, { method: req.method ?? 'GET', headers, ...(payload !== undefined ? { body: payload } : {}) });
        let text = await up.text();
        if (url.pathname === '/v1/audit/checkpoint' && up.status === 200) {
          const cp = JSON.parse(text) as { note: string; size: number; witnesses?: { cosigned: string[] } };
          if (cp.witnesses && cp.witnesses.cosigned.length > 0) firstWitnessed ??= text;
          if (mode === 'strip') {
            const logName = parseNote(cp.note).signatures[0]!.name;
            text = JSON.stringify({ ...cp, note: stripCosignatures(cp.note, (n) => n === logName) });
          } else if (mode === 'replay' && firstWitnessed !== null) {
            text = firstWitnessed;
          }
        }
        res.writeHead(up.status, { 'content-type': up.headers.get('content-type') ?? 'application/json' });
        return res.end(text);
      }
      json(404, { error: 'not found' });
    } catch (e) {
      json(500, { error: (e as Error).message });
    }
  })();
});

server.listen(0, '127.0.0.1', () => {
  const a = server.address();
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}` })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
