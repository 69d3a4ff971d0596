/**
 * Output files written aside and renamed into place only on success, and the
 * common sink interface the file and stream paths write through.
 */
import { promises as fsp } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { KeywardError } from '../errors.js';

const ioError = (what: string, e: unknown) =>
  e instanceof KeywardError ? e : new KeywardError('KW_IO', `${what} failed: ${(e as Error).message}`, { cause: e });

/** Where output goes: appended in order, then committed or aborted. */
export interface Sink {
  write(parts: readonly Uint8Array[]): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

/** Bytes of appended output that may be in flight before `write` waits: writing overlaps producing the next bytes. */
const IN_FLIGHT = 4 * 1024 * 1024;

/**
 * A temp file beside `target` (mode 0600, created exclusively) that `commit`
 * renames into place and `abort` removes. Writes are positional: `write`
 * appends (returning before the bytes are on disk, up to IN_FLIGHT bytes;
 * the buffers must not change afterwards), `writeAt` places bytes anywhere,
 * and `fd` lets worker threads write their batches directly.
 */
export class AtomicFile implements Sink {
  private position = 0;
  private closed = false;
  private readonly pending: { done: Promise<void>; bytes: number }[] = [];
  private pendingBytes = 0;
  private failure: KeywardError | null = null;
  private constructor(readonly target: string, readonly tmp: string, private readonly fh: fsp.FileHandle) {}

  static async create(target: string): Promise<AtomicFile> {
    const tmp = path.join(path.dirname(target), `.${path.basename(target)}.${randomBytes(6).toString('hex')}.partial`);
    try {
      return new AtomicFile(target, tmp, await fsp.open(tmp, 'wx', 0o600));
    } catch (e) {
      throw ioError('creating the output file', e);
    }
  }

  /** The descriptor of the temp file; valid until commit or abort. */
  get fd(): number { return this.fh.fd; }

  /** Throws the first failure of an appended write, if any. */
  private rethrow(): void {
    if (this.failure) throw this.failure;
  }

  async write(parts: readonly Uint8Array[]): Promise<void> {
    this.rethrow();
    let n = 0;
    for (const p of parts) n += p.length;
    if (n === 0) return;
    const done = this.writevAt(parts, this.position).catch((e: unknown) => { this.failure ??= ioError('writing output', e); });
    this.position += n;
    this.pending.push({ done, bytes: n });
    this.pendingBytes += n;
    while (this.pendingBytes > IN_FLIGHT) {
      const first = this.pending.shift()!;
      await first.done;
      this.pendingBytes -= first.bytes;
    }
    this.rethrow();
  }

  private async writevAt(parts: readonly Uint8Array[], position: number): Promise<void> {
    const { bytesWritten } = await this.fh.writev(parts as Uint8Array[], position);
    let n = 0;
    for (const p of parts) n += p.length;
    // A short write is rare (a full disk, a signal); finish it byte-exactly.
    if (bytesWritten < n) await this.writeAt(Buffer.concat(parts).subarray(bytesWritten), position + bytesWritten);
  }

  /** Waits for every appended write; throws the first failure. */
  private async settle(): Promise<void> {
    await Promise.all(this.pending.map((p) => p.done));
    this.pending.length = 0;
    this.pendingBytes = 0;
    this.rethrow();
  }

  async writeAt(b: Uint8Array, position: number): Promise<void> {
    try {
      for (let o = 0; o < b.length;) o += (await this.fh.write(b, o, b.length - o, position + o)).bytesWritten;
    } catch (e) {
      throw ioError('writing output', e);
    }
  }

  async commit(): Promise<void> {
    try {
      await this.settle();
      this.closed = true;
      await this.fh.close();
      await fsp.rename(this.tmp, this.target);
    } catch (e) {
      await this.abort();
      throw ioError('committing the output file', e);
    }
  }

  async abort(): Promise<void> {
    await this.settle().catch(() => {});
    if (!this.closed) {
      this.closed = true;
      await this.fh.close().catch(() => {});
    }
    await fsp.rm(this.tmp, { force: true });
  }
}

/** Bytes a stream sink lets the stream buffer before it waits for 'drain'. */
const STREAM_BUFFER = 4 * 1024 * 1024;

/**
 * A Node writable (e.g. process.stdout) as a sink; commit and abort do nothing.
 * It keeps writing while the stream buffers less than STREAM_BUFFER bytes
 * (streams signal backpressure at 16 KiB, a quarter of one chunk), so
 * producing the next chunks overlaps the stream's writes.
 */
export function streamSink(w: NodeJS.WritableStream): Sink {
  let failure: KeywardError | null = null;
  const buffered = () => (w as Partial<Writable>).writableLength ?? Infinity;
  return {
    async write(parts) {
      for (const p of parts) {
        if (failure) throw failure;
        const ok = w.write(p, (e?: Error | null) => { if (e) failure ??= ioError('writing output', e); });
        if (!ok && buffered() >= STREAM_BUFFER) await new Promise((res) => w.once('drain', res));
      }
      if (failure) throw failure;
    },
    commit: () => (failure ? Promise.reject(failure) : Promise.resolve()),
    abort: () => Promise.resolve(),
  };
}
