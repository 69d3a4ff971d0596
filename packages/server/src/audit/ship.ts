/**
 * Audit shipping: the log leaves the service as it grows, to a sink the
 * service cannot rewrite — a size-rotated file, syslog (RFC 5424 over TCP,
 * octet-counted per RFC 6587), or an HTTP endpoint — without losing
 * verifiability.
 *
 * What is shipped is a sequence of *segments*, each an ordinary partial
 * export (export.ts): a header line carrying a signed checkpoint and the
 * hashes of the subtrees outside the segment, then the segment's events,
 * verbatim. A segment verifies on its own with the log's public key
 * (`keyward audit verify`); consecutive segments are chained because each
 * starts where the previous one ended and, when its checkpoint is newer,
 * the previous checkpoint's root must equal the root of the events before
 * it (`verifySegments` below). So a sink that loses, reorders, edits or
 * truncates anything is caught by an auditor holding only the public key.
 *
 * Delivery is at least once: the position shipped so far is stored (store
 * meta `audit.shipped.<sink>`) only after the sink accepted a segment, so a
 * crash in between ships that segment again — a repeated segment verifies
 * like any other and `verifySegments` accepts the overlap.
 *
 * @example
 * const shipper = new AuditShipper({ storage: auditStorageOf(store), sink: fileSink('/var/log/keyward/audit.jsonl', { maxBytes: 64 << 20, keep: 10 }), position: metaPosition(store, 'file') });
 * shipper.start(1000);
 */
import { appendFile, rename, rm, stat } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { hostname } from 'node:os';
import { parseCheckpoint, parseNote } from '@keyward/tlog';
import { AuditError } from './errors.js';
import { exportLogLines } from './export.js';
import { AuditLog, type AuditStorage } from './log.js';
import { verifyExport, type VerifyOptions, type VerifyResult } from './verify.js';

/** Where segments go. `write` resolves only once the sink has accepted the whole segment. */
export interface AuditSink {
  readonly name: string;
  write(segment: string): Promise<void>;
  close(): Promise<void>;
}

/** Where the shipped position is kept. */
export interface ShipPosition {
  get(): Promise<number>;
  set(next: number): Promise<void>;
}

/**
 * The position kept in the store's meta table under `audit.shipped.<name>`.
 *
 * @example
 * const position = metaPosition(store, 'file');
 */
export function metaPosition(store: { getMeta(key: string): Promise<string | null>; setMeta(key: string, value: string): Promise<void> }, name: string): ShipPosition {
  const key = `audit.shipped.${name}`;
  return {
    async get() {
      const v = await store.getMeta(key);
      const n = v === null ? 0 : Number(v);
      if (!Number.isSafeInteger(n) || n < 0) throw new AuditError('KW_AUDIT_MALFORMED', `the stored ${key} is not an event index`);
      return n;
    },
    set: (next) => store.setMeta(key, String(next)),
  };
}

/** At most this many events per segment (a segment is held in memory while shipped). */
export const MAX_SEGMENT_EVENTS = 1000;

/**
 * Appends segments to `path` (each append flushed to disk before it resolves);
 * before a segment would start in a file already `maxBytes` long, the file
 * is rotated: path → path.1 → … → path.keep (the oldest is dropped).
 *
 * @example
 * const sink = fileSink('/var/log/keyward/audit.jsonl', { maxBytes: 64 << 20, keep: 10 });
 */
export function fileSink(path: string, opts: { maxBytes?: number; keep?: number } = {}): AuditSink {
  const maxBytes = opts.maxBytes ?? 64 * 1024 * 1024;
  const keep = opts.keep ?? 10;
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) throw new AuditError('KW_INVALID_ARGUMENT', 'maxBytes must be a positive integer');
  if (!Number.isSafeInteger(keep) || keep < 1 || keep > 1000) throw new AuditError('KW_INVALID_ARGUMENT', 'keep must be an integer from 1 to 1000');
  const size = async (p: string) => (await stat(p).catch(() => null))?.size ?? 0;
  return {
    name: 'file',
    async write(segment) {
      if ((await size(path)) >= maxBytes) {
        await rm(`${path}.${keep}`, { force: true });
        for (let i = keep - 1; i >= 1; i--) await rename(`${path}.${i}`, `${path}.${i + 1}`).catch(() => undefined);
        await rename(path, `${path}.1`);
      }
      await appendFile(path, segment, { mode: 0o600, flush: true });
    },
    close: () => Promise.resolve(),
  };
}

/**
 * POSTs each segment as `application/x-ndjson`; any status but 2xx is a failure (the segment is retried later).
 *
 * @example
 * const sink = httpSink('https://siem.example/ingest/keyward', { headers: { authorization: `Bearer ${ingestToken}` } });
 */
export function httpSink(url: string, opts: { headers?: Record<string, string>; timeoutMs?: number } = {}): AuditSink {
  const u = new URL(url);
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new AuditError('KW_INVALID_ARGUMENT', 'the audit HTTP sink must be an http(s) URL');
  return {
    name: 'http',
    async write(segment) {
      const res = await fetch(u, {
        method: 'POST', body: segment, signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
        headers: { 'content-type': 'application/x-ndjson', ...opts.headers },
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.status < 200 || res.status > 299) throw new AuditError('KW_INVALID_ARGUMENT', `the audit HTTP sink answered ${res.status}`);
    },
    close: () => Promise.resolve(),
  };
}

/**
 * Syslog over TCP: one RFC 5424 message per line (facility log audit (13),
 * severity info: PRI 110; APP-NAME keyward, MSGID audit), framed by octet
 * counting (RFC 6587 §3.4.1), so lines of any length arrive whole.
 *
 * @example
 * const sink = syslogSink('logs.example', 6514);
 */
export function syslogSink(host: string, port: number, opts: { timeoutMs?: number } = {}): AuditSink {
  let socket: Socket | null = null;
  const host5424 = hostname().replace(/[^\x21-\x7e]/g, '').slice(0, 255) || '-';
  const open = () => new Promise<Socket>((resolve, reject) => {
    const s = connect({ host, port });
    s.setTimeout(opts.timeoutMs ?? 10_000, () => s.destroy(new Error('syslog sink timed out')));
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
  return {
    name: 'syslog',
    async write(segment) {
      socket ??= await open();
      const s = socket;
      const frames = segment.split('\n').filter((l) => l !== '').map((line) => {
        const msg = Buffer.from(`<110>1 ${new Date().toISOString()} ${host5424} keyward - audit - ${line}`);
        return Buffer.concat([Buffer.from(`${msg.length} `), msg]);
      });
      try {
        await new Promise<void>((resolve, reject) => {
          s.once('error', reject);
          s.write(Buffer.concat(frames), (e) => (e ? reject(e) : resolve()));
        });
      } catch (e) {
        s.destroy();
        socket = null;
        throw e;
      }
    },
    close() {
      socket?.end();
      socket = null;
      return Promise.resolve();
    },
  };
}

/**
 * Builds a sink from its configuration string: `file:PATH[?max_bytes=N&keep=K]`, `http(s)://…`, `syslog://HOST:PORT`.
 *
 * @example
 * const sink = sinkFromUrl('file:/var/log/keyward/audit.jsonl?max_bytes=67108864&keep=10');
 */
export function sinkFromUrl(spec: string): AuditSink {
  if (spec.startsWith('file:')) {
    const q = spec.indexOf('?');
    const path = spec.slice(5, q < 0 ? undefined : q);
    const params = new URLSearchParams(q < 0 ? '' : spec.slice(q + 1));
    const num = (k: string) => (params.has(k) ? Number(params.get(k)) : undefined);
    if (path === '') throw new AuditError('KW_INVALID_ARGUMENT', 'file: audit sink needs a path');
    const maxBytes = num('max_bytes');
    const keep = num('keep');
    return fileSink(path, { ...(maxBytes !== undefined ? { maxBytes } : {}), ...(keep !== undefined ? { keep } : {}) });
  }
  if (spec.startsWith('http://') || spec.startsWith('https://')) return httpSink(spec);
  if (spec.startsWith('syslog://')) {
    const u = new URL(spec.replace(/^syslog:/, 'tcp:'));
    const port = Number(u.port || '514');
    return syslogSink(u.hostname, port);
  }
  throw new AuditError('KW_INVALID_ARGUMENT', `unknown audit sink '${spec.slice(0, 40)}' (file:PATH, http(s)://URL or syslog://HOST:PORT)`);
}

/**
 * Ships new events as segments. One tick: take the latest stored checkpoint;
 * ship [shipped, checkpoint size) in segments of at most MAX_SEGMENT_EVENTS,
 * each against that checkpoint; advance the position after each accepted
 * segment. A failing sink is retried on the next tick from where it stopped.
 *
 * @example
 * const shipper = new AuditShipper({ storage: auditStorageOf(store), sink, position: metaPosition(store, sink.name) });
 * shipper.start(1000);
 */
export class AuditShipper {
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;

  constructor(private readonly opts: {
    /** The log's storage (audit/store-adapter.ts over the server's store). */
    storage: AuditStorage;
    sink: AuditSink;
    position: ShipPosition;
    onError?: (e: unknown) => void;
    segmentEvents?: number;
  }) {}

  /** Ships what is there now; resolves with the position reached. Concurrent calls share one run. */
  async tick(): Promise<number> {
    this.#running ??= this.#ship().finally(() => { this.#running = null; });
    await this.#running;
    return this.opts.position.get();
  }

  async #ship(): Promise<void> {
    const { storage, sink, position } = this.opts;
    const note = await storage.latestCheckpoint();
    if (note === null) return;
    const { size, origin } = parseCheckpoint(parseNote(note).text);
    const log = new AuditLog(storage, { origin });
    const step = this.opts.segmentEvents ?? MAX_SEGMENT_EVENTS;
    for (let from = await position.get(); from < size; from = await position.get()) {
      const to = Math.min(size, from + step);
      let segment = '';
      for await (const line of exportLogLines(log, { checkpoint: note, from, to })) segment += line;
      await sink.write(segment);
      await position.set(to);
    }
  }

  /** Ticks every `intervalMs` until stop(). */
  start(intervalMs: number): void {
    if (this.#timer || intervalMs <= 0) return;
    this.#timer = setInterval(() => {
      this.tick().catch((e: unknown) => this.opts.onError?.(e));
    }, intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#running?.catch(() => undefined);
    await this.opts.sink.close();
  }
}

/** The result of verifying shipped segments. */
export interface SegmentsResult {
  readonly ok: boolean;
  /** One result per segment, in order. */
  readonly segments: readonly VerifyResult[];
  /** Problems between segments: a gap (AUDIT_DELETED) or a checkpoint the next segment does not extend (AUDIT_REWRITTEN…). */
  readonly problems: readonly { readonly code: string; readonly segment: number; readonly message: string }[];
  /** [first from, last to) covered without gaps when ok. */
  readonly from: number;
  readonly to: number;
}

/**
 * Splits shipped text (one file, or rotated files concatenated oldest first) into its segments.
 *
 * @example
 * const n = splitSegments(readFileSync('audit.jsonl', 'utf8')).length;
 */
export function splitSegments(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (const line of text.split(/(?<=\n)/)) {
    if (line.startsWith('{"checkpoint":') && cur !== '') { out.push(cur); cur = ''; }
    cur += line;
  }
  if (cur !== '') out.push(cur);
  return out;
}

/**
 * Verifies a sequence of shipped segments: each on its own (verifyExport),
 * then their chaining — each starts at or before where the previous ended
 * (an overlap is a re-shipped segment), and a segment whose checkpoint is
 * newer than the previous one's must extend it (the previous checkpoint's
 * root is recomputed from this segment's prefix).
 *
 * @example
 * const r = verifySegments(oldFile + newFile, { verifierKey });
 * if (!r.ok) console.error(r.problems, r.segments.flatMap((s) => s.problems));
 */
export function verifySegments(text: string, options: VerifyOptions): SegmentsResult {
  const parts = splitSegments(text);
  const segments: VerifyResult[] = [];
  const problems: { code: string; segment: number; message: string }[] = [];
  let prev: { result: VerifyResult; note: string | null } | null = null;
  for (const [i, part] of parts.entries()) {
    const note = headerCheckpoint(part);
    // A newer checkpoint must extend the previous one: checkable when the previous segment reached its checkpoint's size.
    const chain = prev !== null && prev.note !== null && note !== prev.note && prev.result.size !== null && prev.result.to === prev.result.size;
    const r = verifyExport(part, { ...options, ...(chain ? { savedCheckpoint: prev!.note! } : {}) });
    segments.push(r);
    if (prev !== null) {
      const p = prev.result;
      if (r.from > p.to) problems.push({ code: 'AUDIT_DELETED', segment: i, message: `segment ${i} starts at event ${r.from}, the previous one ended at ${p.to}: events [${p.to}, ${r.from}) are missing` });
      if (r.size !== null && p.size !== null && r.size < p.size) problems.push({ code: 'AUDIT_TRUNCATED', segment: i, message: `segment ${i}'s checkpoint (size ${r.size}) is older than the previous segment's (${p.size})` });
    }
    prev = { result: r, note };
  }
  const ok = parts.length > 0 && problems.length === 0 && segments.every((s) => s.ok);
  return { ok, segments, problems, from: segments[0]?.from ?? 0, to: segments.reduce((m, s) => Math.max(m, s.to), 0) };
}

/** The signed checkpoint note in a segment's header line, or null when the header is not readable. */
function headerCheckpoint(segment: string): string | null {
  try {
    const h = JSON.parse(segment.slice(0, segment.indexOf('\n'))) as { checkpoint?: unknown };
    return typeof h.checkpoint === 'string' ? h.checkpoint : null;
  } catch {
    return null;
  }
}
