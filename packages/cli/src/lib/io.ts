/**
 * Everything a command touches outside itself — standard streams, the
 * environment, the terminal — goes through `Io`, so the commands can run
 * in-process (tests, embedding) as well as from the `keyward` binary.
 * Also: reading inputs (with a peek at their first bytes), and writing
 * outputs aside then renaming, so a failure never leaves a partial file.
 */
import { randomBytes } from 'node:crypto';
import { close, constants as fsConstants, createReadStream, createWriteStream, fsync, open, promises as fsp, readdirSync, rmSync } from 'node:fs';
import { promisify } from 'node:util';
import path from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { KeywardError } from '@keyward/core';
import { describeSystemError, fail, usageError } from './errors.js';
import { promptHidden } from './prompt.js';

const fdOpen = promisify(open);
const fdSync = promisify(fsync);
const fdClose = promisify(close);

type MaybeTty = { readonly isTTY?: boolean };

export interface Io {
  readonly stdin: NodeJS.ReadableStream & MaybeTty;
  readonly stdout: NodeJS.WritableStream & MaybeTty;
  readonly stderr: NodeJS.WritableStream;
  readonly env: Readonly<Record<string, string | undefined>>;
  /**
   * Asks for a secret on the controlling terminal without echo. Resolves to
   * null when there is no terminal to ask on.
   */
  readonly prompt: (question: string) => Promise<string | null>;
}

/** The real process: standard streams, `process.env`, `/dev/tty`. */
export function processIo(): Io {
  // A closed pipe (e.g. `| head`) surfaces as a rejected write; keep it from also crashing the process.
  if (process.stdout.listenerCount('error') === 0) process.stdout.on('error', () => undefined);
  return { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env, prompt: promptHidden };
}

/** `-` or nothing means the standard stream. */
export const isStdStream = (p: string | undefined): p is undefined | '-' => p === undefined || p === '-';

/**
 * Standard input can feed only one thing per command (the data, or one key
 * file, or the passphrase file). Each use claims it.
 */
export class StdinClaim {
  private owner: string | null = null;
  claim(what: string): void {
    if (this.owner !== null && this.owner !== what) usageError(`standard input cannot be both ${this.owner} and ${what}`);
    this.owner = what;
  }
}

/** Writes bytes to a stream, honouring back-pressure; failures are KW_IO. */
export function writeAll(w: NodeJS.WritableStream, bytes: Uint8Array | string): Promise<void> {
  return new Promise((resolve, reject) => {
    const ok = w.write(bytes, (e?: Error | null) => {
      if (e) reject(new KeywardError('KW_IO', describeSystemError(e, 'the output', 'write'), { cause: e }));
    });
    if (ok) resolve();
    else w.once('drain', resolve);
  });
}

/** Reads a whole stream. */
export async function readStream(r: NodeJS.ReadableStream): Promise<Uint8Array> {
  const parts: Buffer[] = [];
  try {
    for await (const c of r) parts.push(typeof c === 'string' ? Buffer.from(c) : Buffer.from(c as Uint8Array));
  } catch (e) {
    throw ioFailure(e, 'read', 'standard input');
  }
  return Buffer.concat(parts);
}

/** Reads a whole file (or stdin for `-`). */
export async function readFileOrStdin(file: string, io: Io): Promise<Uint8Array> {
  if (file === '-') return readStream(io.stdin);
  try {
    return await fsp.readFile(file);
  } catch (e) {
    throw ioFailure(e, 'read', `'${file}'`);
  }
}

/** Reads a key file as text (stdin for `-`, after claiming it). */
export async function readTextFile(file: string, io: Io, stdin: StdinClaim, what: string): Promise<string> {
  if (file === '-') stdin.claim(what);
  return Buffer.from(await readFileOrStdin(file, io)).toString('utf8');
}

/**
 * The first line of a file, without its line ending (`/dev/fd/N` works, so a
 * passphrase can come from a file descriptor). Reads at most 64 KiB.
 */
export async function readFirstLine(file: string, io: Io): Promise<string> {
  // /dev/fd/N is read from descriptor N itself: opening the path fails for sockets (ENXIO).
  const fd = /^\/dev\/fd\/(\d+)$/.exec(file)?.[1];
  const source = file === '-' ? io.stdin : fd !== undefined ? createReadStream('', { fd: Number(fd), autoClose: false, highWaterMark: 4096 }) : createReadStream(file, { highWaterMark: 4096 });
  const parts: Buffer[] = [];
  let size = 0;
  try {
    for await (const c of source) {
      const b = typeof c === 'string' ? Buffer.from(c) : Buffer.from(c as Uint8Array);
      parts.push(b);
      size += b.length;
      if (b.includes(0x0a) || size >= 65536) break;
    }
  } catch (e) {
    throw ioFailure(e, 'read', file === '-' ? 'standard input' : `'${file}'`);
  } finally {
    if (source !== io.stdin) (source as Readable).destroy();
  }
  const all = Buffer.concat(parts);
  const nl = all.indexOf(0x0a);
  let line = (nl < 0 ? all : all.subarray(0, nl)).toString('utf8');
  if (line.endsWith('\r')) line = line.slice(0, -1);
  return line;
}

/** An input to read, with its first bytes already available for format detection. */
export interface PeekedInput {
  /** The path, or null for stdin. */
  readonly path: string | null;
  /** Up to `peekSize` first bytes (fewer only at end of input). */
  readonly head: Uint8Array;
  /** The whole input from its first byte, as a Node stream (or the path, which core reads itself). */
  readonly source: string | NodeJS.ReadableStream;
  /** Reads the whole input into memory. */
  readAll(): Promise<Uint8Array>;
}

/** Opens `file` (or stdin) and peeks at its first `peekSize` bytes. */
export async function peekInput(file: string | undefined, io: Io, peekSize = 4096): Promise<PeekedInput> {
  if (!isStdStream(file)) {
    let head: Uint8Array;
    try {
      const fh = await fsp.open(file, 'r');
      try {
        const buf = Buffer.alloc(peekSize);
        const { bytesRead } = await fh.read(buf, 0, peekSize, 0);
        head = buf.subarray(0, bytesRead);
      } finally {
        await fh.close();
      }
    } catch (e) {
      throw ioFailure(e, 'read', `'${file}'`);
    }
    return { path: file, head, source: file, readAll: () => readFileOrStdin(file, io) };
  }
  const it = (io.stdin as AsyncIterable<Buffer | string>)[Symbol.asyncIterator]();
  const buffered: Buffer[] = [];
  let size = 0;
  let done = false;
  try {
    while (size < peekSize) {
      const r = await it.next();
      if (r.done) {
        done = true;
        break;
      }
      const b = typeof r.value === 'string' ? Buffer.from(r.value) : Buffer.from(r.value);
      buffered.push(b);
      size += b.length;
    }
  } catch (e) {
    throw ioFailure(e, 'read', 'standard input');
  }
  const head = Buffer.concat(buffered).subarray(0, peekSize);
  async function* replay(): AsyncGenerator<Buffer> {
    yield* buffered;
    if (done) return;
    for (let r = await it.next(); !r.done; r = await it.next()) yield typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
  }
  return {
    path: null,
    head,
    source: Readable.from(replay(), { objectMode: false }),
    readAll: () => readStream(Readable.from(replay(), { objectMode: false })),
  };
}

/**
 * Checks that a file can be created at `target` (its directory exists and is
 * writable, and it is not a directory) before any work starts.
 */
export async function checkOutputPath(target: string): Promise<void> {
  const dir = path.dirname(path.resolve(target));
  try {
    const st = await fsp.stat(dir);
    if (!st.isDirectory()) fail('KW_IO', `cannot write '${target}': '${dir}' is not a directory`);
    await fsp.access(dir, fsConstants.W_OK);
  } catch (e) {
    throw ioFailure(e, 'write', `'${target}'`);
  }
  try {
    if ((await fsp.stat(target)).isDirectory()) fail('KW_IO', `cannot write '${target}': is a directory`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw ioFailure(e, 'write', `'${target}'`);
  }
}

/**
 * An output file written aside and moved into place only on `commit`: the
 * data goes to a new mode-0600 file beside `target`; `commit` syncs it and
 * renames it over `target` (or, with `exclusive`, hard-links it, which fails
 * if `target` exists); `abort` removes it. Until `commit`, `target` is
 * untouched, so a failed open never leaves plaintext or a partial file.
 *
 * Keyward envelopes are written by core's `sealFile`/`openFile`, which do
 * the same for a path output (see `withCoreOutput`); this class serves what
 * core returns in memory: age files and key files.
 */
export class AtomicOutput {
  private failure: Error | null = null;
  private constructor(
    readonly target: string,
    private readonly tmp: string,
    private readonly fd: number,
    readonly stream: Writable,
    private readonly exclusive: boolean,
    private readonly unregister: () => void,
  ) {
    stream.on('error', (e: Error) => {
      this.failure ??= e;
    });
  }

  static async create(target: string, opts: { exclusive?: boolean } = {}): Promise<AtomicOutput> {
    const tmp = path.join(path.dirname(target), `.${path.basename(target)}.${randomBytes(6).toString('hex')}.partial`);
    let fd: number;
    try {
      fd = await fdOpen(tmp, 'wx', 0o600);
    } catch (e) {
      throw ioFailure(e, 'write', `'${target}'`);
    }
    const unregister = removeOnSignal(() => rmSync(tmp, { force: true }));
    // A FileHandle-based stream would make fh.sync() wait forever; a plain fd does not.
    return new AtomicOutput(target, tmp, fd, createWriteStream('', { fd, autoClose: false }), opts.exclusive ?? false, unregister);
  }

  async commit(): Promise<void> {
    try {
      await new Promise<void>((resolve, reject) => this.stream.end((e?: Error | null) => (e ? reject(e) : resolve())));
      if (this.failure) throw this.failure;
      await fdSync(this.fd);
      await this.close();
      if (this.exclusive) {
        await fsp.link(this.tmp, this.target);
        await fsp.rm(this.tmp, { force: true });
      } else {
        await fsp.rename(this.tmp, this.target);
      }
      this.unregister();
    } catch (e) {
      await this.abort();
      if ((e as NodeJS.ErrnoException).code === 'EEXIST' && this.exclusive) fail('KW_IO', `'${this.target}' already exists; refusing to overwrite it`);
      throw ioFailure(e, 'write', `'${this.target}'`);
    }
  }

  async abort(): Promise<void> {
    this.stream.destroy();
    await this.close().catch(() => undefined);
    await fsp.rm(this.tmp, { force: true });
    this.unregister();
  }

  private closed = false;
  private async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await fdClose(this.fd);
  }

  /** Runs `f` with the sink; commits when it succeeds, aborts (and rethrows) when it fails. */
  static async write<T>(target: string, f: (out: Writable) => Promise<T>, opts: { exclusive?: boolean } = {}): Promise<T> {
    const out = await AtomicOutput.create(target, opts);
    let result: T;
    try {
      result = await f(out.stream);
    } catch (e) {
      await out.abort();
      throw e;
    }
    await out.commit();
    return result;
  }
}

/** Cleanups of temp files not yet committed or aborted; run if the process is interrupted. */
const onSignal = new Set<() => void>();
let signalsHooked = false;

/**
 * On SIGINT/SIGTERM/SIGHUP (Ctrl-C while a large file is being opened),
 * removes the temp files — they may hold unverified plaintext — then dies of
 * the same signal.
 */
function removeOnSignal(cleanup: () => void): () => void {
  if (!signalsHooked) {
    signalsHooked = true;
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.once(signal, () => {
        for (const f of onSignal) {
          try {
            f();
          } catch {
            // best effort: the process is going down
          }
        }
        process.kill(process.pid, signal);
      });
    }
  }
  onSignal.add(cleanup);
  return () => onSignal.delete(cleanup);
}

/**
 * Runs core's `sealFile`/`openFile` writing to `target`, removing core's temp
 * file if the process is interrupted meanwhile. Core writes it beside the
 * target as `.<name>.<12 hex>.partial` and removes it on any failure, but not
 * on a signal; so on a signal, the matching files that appeared since the
 * start are removed. (Stop-gap until core can clean up on its own; see the
 * CLI report.)
 */
export async function withCoreOutput<T>(target: string, f: () => Promise<T>): Promise<T> {
  const dir = path.dirname(path.resolve(target));
  const re = new RegExp(`^\\.${path.basename(target).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.[0-9a-f]{12}\\.partial$`);
  const temps = () => readdirSync(dir).filter((n) => re.test(n));
  const before = new Set(temps());
  const unregister = removeOnSignal(() => {
    for (const n of temps()) if (!before.has(n)) rmSync(path.join(dir, n), { force: true });
  });
  try {
    return await f();
  } finally {
    unregister();
  }
}

/** Writes `data` to `target` through an AtomicOutput. */
export function writeFileAtomic(target: string, data: Uint8Array | string, opts: { exclusive?: boolean } = {}): Promise<void> {
  return AtomicOutput.write(target, (w) => writeAll(w, data), opts);
}

/** Wraps a Node I/O error as KW_IO naming the path (KeywardErrors pass through). */
export function ioFailure(e: unknown, verb: string, what: string): KeywardError {
  if (e instanceof KeywardError) return e;
  return new KeywardError('KW_IO', describeSystemError(e as NodeJS.ErrnoException, what, verb));
}
