/**
 * `keyward witness`: a C2SP tlog-witness (https://c2sp.org/tlog-witness) as
 * its own process. For every configured log (origin + the log's Ed25519 note
 * verifier key) it keeps the latest checkpoint it cosigned
 * ({@link WitnessStateFile}) and cosigns a new one only after
 *
 *  1. the log's signature verifies with a configured key (else 403; unknown origin 404),
 *  2. the request's old size is the size it last cosigned (else 409 with that size),
 *  3. the RFC 6962 consistency proof from that size verifies (else 422; same size, other root: 409),
 *
 * and after the new state is on disk. Requests are handled one at a time
 * (check and persist are atomic), so two requests can never roll it back.
 * Refused requests that carry a valid log signature are kept as evidence in
 * `evidence.jsonl` in the state directory (a split view or a fork, signed by
 * the log). Cosignatures are Ed25519 `cosignature/v1` (tlog-cosignature).
 *
 * Routes: `POST /add-checkpoint` (the protocol); `GET /` a JSON status
 * (`{ name, verifier_key, logs: [{ origin, size, updated }] }`) for operators
 * and `keyward doctor`.
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, readFileSync, statSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { join } from 'node:path';
import { KeywardError } from '@keyward/core';
import {
  SIZE_MEDIA_TYPE, cosignatureVerifierKey, formatNote, isTlogError, keyId, newCosigner, newVerifier, parseAddCheckpoint, parseSignerKey,
  SIGNATURE_TYPE_COSIGNATURE_V1, generateSignerKey, parseVerifierKey, witnessCheck, witnessHttpStatus, type NoteSigner, type NoteVerifier,
} from '@keyward/tlog';
import { base64 } from '@scure/base';
import { WitnessStateFile } from './state.js';

const MAX_BODY = 256 * 1024;
/** evidence.jsonl stops growing at this size (64 MiB). */
const MAX_EVIDENCE_BYTES = 64 * 1024 * 1024;

/** The Ed25519 public key of a 32-byte seed (through tlog's key formatting, which uses @noble/curves). */
function publicKeyOf(name: string, seed: Uint8Array): Uint8Array {
  return parseVerifierKey(generateSignerKey(name, seed).verifierKey).publicKey;
}

/** One log the witness witnesses. */
export interface WitnessedLog {
  /** The checkpoint origin (default: the key's name). */
  readonly origin?: string;
  /** The log's note verifier key (`name+id+base64(0x01 ‖ Ed25519 public key)`). */
  readonly key: string;
}

export interface WitnessOptions {
  /** host:port (port 0 = any free port). */
  readonly listen: string;
  /** The witness's signer key `PRIVATE+KEY+<name>+<id>+…` (type 0x04, or 0x01 with the same seed). */
  readonly signerKey: string;
  /** Where witness-state.json and evidence.jsonl live. */
  readonly stateDir: string;
  readonly logs: readonly WitnessedLog[];
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  /** Plain HTTP on a non-loopback address. */
  readonly insecure?: boolean;
  /** JSON log lines (default stderr). */
  readonly logStream?: NodeJS.WritableStream;
  /** POSIX seconds (tests). */
  readonly now?: () => number;
}

export interface RunningWitness {
  readonly url: string;
  readonly name: string;
  /** The verifier key to give logs and clients (type 0x04). */
  readonly verifierKey: string;
  close(): Promise<void>;
}

/** A fresh witness key: the signer key string (keep it secret, in a file) and its cosignature verifier key. */
export function generateWitnessKey(name: string): { signerKey: string; verifierKey: string } {
  const seed = randomBytes(32);
  try {
    const pub = publicKeyOf(name, seed);
    const id = keyId(name, SIGNATURE_TYPE_COSIGNATURE_V1, pub);
    const signerKey = `PRIVATE+KEY+${name}+${id.toString(16).padStart(8, '0')}+${base64.encode(Uint8Array.of(SIGNATURE_TYPE_COSIGNATURE_V1, ...seed))}`;
    newCosigner(signerKey); // round-trip check
    return { signerKey, verifierKey: cosignatureVerifierKey(name, pub) };
  } finally {
    seed.fill(0);
  }
}

function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127(?:\.\d{1,3}){3}$/.test(h);
}

function readBody(req: IncomingMessage): Promise<Uint8Array | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n > MAX_BODY) {
        resolve(null);
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(new Uint8Array(Buffer.concat(chunks))));
    req.on('error', reject);
  });
}

/** Starts a witness. Refusals before it listens are KeywardErrors (KW_INVALID_ARGUMENT, KW_IO). */
export async function startWitness(o: WitnessOptions): Promise<RunningWitness> {
  const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$/.exec(o.listen);
  if (!m || Number(m[2]) > 65535) throw new KeywardError('KW_INVALID_ARGUMENT', `listen ${JSON.stringify(o.listen)} is not host:port`);
  const host = m[1]!.replace(/^\[|\]$/g, '');
  const tls = o.tlsCert !== undefined && o.tlsKey !== undefined;
  if ((o.tlsCert === undefined) !== (o.tlsKey === undefined)) throw new KeywardError('KW_INVALID_ARGUMENT', 'give both a TLS certificate and key, or neither');
  if (!tls && !isLoopback(host) && o.insecure !== true) throw new KeywardError('KW_INVALID_ARGUMENT', `refusing to listen on ${host} without TLS: give a certificate and key, or insecure`);
  let cosigner: NoteSigner;
  try {
    cosigner = newCosigner(o.signerKey.trim(), o.now ? { now: o.now } : {});
  } catch (e) {
    throw new KeywardError('KW_INVALID_ARGUMENT', `the witness key is not a signer key (PRIVATE+KEY+…): ${(e as Error).message}`, { cause: e });
  }
  const seed = parseSignerKey(o.signerKey.trim()).seed;
  let verifierKey: string;
  try {
    verifierKey = cosignatureVerifierKey(cosigner.name, publicKeyOf(cosigner.name, seed));
  } finally {
    seed.fill(0);
  }
  if (o.logs.length === 0) throw new KeywardError('KW_INVALID_ARGUMENT', 'the witness needs at least one log (origin and verifier key)');
  const logs = new Map<string, NoteVerifier[]>();
  for (const l of o.logs) {
    let v: NoteVerifier;
    try {
      v = newVerifier(l.key.trim());
    } catch (e) {
      throw new KeywardError('KW_INVALID_ARGUMENT', `log key ${JSON.stringify(l.key)} is not an Ed25519 note verifier key: ${(e as Error).message}`, { cause: e });
    }
    const origin = l.origin ?? v.name;
    logs.set(origin, [...(logs.get(origin) ?? []), v]);
  }
  const state = WitnessStateFile.open(o.stateDir);
  const evidence = join(o.stateDir, 'evidence.jsonl');
  const out = o.logStream ?? process.stderr;
  const log = (msg: string, f: object = {}) => out.write(`${JSON.stringify({ time: new Date().toISOString(), component: 'witness', msg, ...f })}\n`);

  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn);
    queue = run.catch(() => undefined);
    return run;
  };

  const send = (res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8') => {
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
    res.end(body);
  };

  async function addCheckpoint(body: Uint8Array): Promise<{ status: number; body: string; type?: string }> {
    let req;
    try {
      req = parseAddCheckpoint(body);
    } catch (e) {
      return { status: 400, body: `${(e as Error).message}\n` };
    }
    return serial(async () => {
      try {
        const ok = witnessCheck(req, (origin) => logs.get(origin) ?? [], (origin) => {
          const r = state.get(origin);
          return r === null ? null : { size: r.size, root: base64.decode(r.root) };
        });
        const sig = { name: cosigner.name, keyId: cosigner.keyId, signature: cosigner.sign(new TextEncoder().encode(ok.text)) };
        const line = formatNote({ text: ok.text, signatures: [sig] }).slice(ok.text.length + 1);
        // Persist before answering (a crash after this point only loses the answer, never the state).
        await state.put(ok.checkpoint.origin, { size: ok.checkpoint.size, root: base64.encode(ok.checkpoint.root), note: req.checkpoint, updated: new Date().toISOString() });
        log('cosigned', { origin: ok.checkpoint.origin, size: ok.checkpoint.size, old: req.oldSize });
        return { status: 200, body: line };
      } catch (e) {
        if (!isTlogError(e)) throw e;
        const status = witnessHttpStatus(e.code);
        let origin: string | null = null;
        try { origin = req.checkpoint.split('\n', 1)[0] ?? null; } catch { /* unparsed */ }
        const latest = origin !== null ? state.get(origin) : null;
        log('refused', { status, code: e.code, origin, old: req.oldSize, latest: latest?.size ?? 0 });
        // Log-signed requests that fail consistency are evidence of a misbehaving log.
        if (e.code === 'TLOG_WITNESS_CONFLICT' || e.code === 'TLOG_INCONSISTENT' || e.code === 'TLOG_BAD_PROOF') {
          try {
            // Bounded: anyone can replay an old signed checkpoint, so a full evidence file stops growing.
            if (!existsSync(evidence) || statSync(evidence).size < MAX_EVIDENCE_BYTES) appendFileSync(evidence, `${JSON.stringify({ time: new Date().toISOString(), code: e.code, origin, latest: latest?.size ?? 0, request: new TextDecoder().decode(body) })}\n`, { mode: 0o600 });
          } catch (err) {
            log('cannot write evidence', { error: (err as Error).message });
          }
        }
        if (e.code === 'TLOG_WITNESS_CONFLICT') return { status: 409, body: `${latest?.size ?? 0}\n`, type: SIZE_MEDIA_TYPE };
        return { status, body: `${e.code}: ${e.message}\n` };
      }
    });
  }

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const url = (req.url ?? '/').split('?')[0];
    void (async () => {
      try {
        if (url === '/add-checkpoint') {
          if (req.method !== 'POST') return send(res, 405, 'add-checkpoint takes POST\n');
          const body = await readBody(req);
          if (body === null) return send(res, 413, 'request body too large\n');
          const r = await addCheckpoint(body);
          return send(res, r.status, r.body, r.type);
        }
        if (url === '/' && req.method === 'GET') {
          const status = { name: cosigner.name, verifier_key: verifierKey, logs: [...logs.keys()].map((origin) => ({ origin, size: state.get(origin)?.size ?? 0, updated: state.get(origin)?.updated ?? null })) };
          return send(res, 200, `${JSON.stringify(status)}\n`, 'application/json');
        }
        return send(res, 404, 'not found\n');
      } catch (e) {
        log('internal error', { error: (e as Error).message });
        if (!res.headersSent) send(res, 500, 'internal error\n');
      }
    })();
  };

  let server: Server;
  if (tls) {
    let cert: Buffer, key: Buffer;
    try {
      cert = readFileSync(o.tlsCert);
      key = readFileSync(o.tlsKey);
    } catch (e) {
      throw new KeywardError('KW_IO', 'cannot read the TLS certificate or key', { cause: e });
    }
    server = createHttpsServer({ cert, key }, handler);
  } else {
    server = createHttpServer(handler);
  }
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(m[2]), host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : Number(m[2]);
  const url = `${tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  log('listening', { url, name: cosigner.name, logs: [...logs.keys()] });
  return {
    url, name: cosigner.name, verifierKey,
    close: async () => {
      await new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); });
      await queue;
    },
  };
}
