/**
 * Node adapter: files and Node streams. Output files are written aside and
 * renamed into place only after the whole envelope (and signature) verified,
 * so a failed open never leaves plaintext behind.
 */
import { createReadStream, createWriteStream, promises as fsp } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import type { ReadableStream as WebReadable } from 'node:stream/web';
import { EnvelopeDecoder, EnvelopeEncoder } from '../format/codec.js';
import type { EnvelopeInfo, OpenOptions, SealOptions } from '../format/session.js';
import type { RandomAccessSource } from '../random-access.js';
import { KeywardError } from '../errors.js';
import { armorBytes, isArmored, dearmor } from '../armor.js';

const READ_SIZE = 1 << 20;

/** Input: a path, or a Node readable (e.g. process.stdin). */
export type NodeInput = string | NodeJS.ReadableStream;
/** Output: a path (written atomically), or a Node writable (e.g. process.stdout). */
export type NodeOutput = string | NodeJS.WritableStream;

function readableOf(input: NodeInput): NodeJS.ReadableStream {
  return typeof input === 'string' ? createReadStream(input, { highWaterMark: READ_SIZE }) : input;
}

async function* chunksOf(input: NodeInput): AsyncGenerator<Uint8Array> {
  try {
    for await (const c of readableOf(input)) yield typeof c === 'string' ? Buffer.from(c) : (c as Uint8Array);
  } catch (e) {
    if (e instanceof KeywardError) throw e;
    throw new KeywardError('KW_IO', `reading input failed: ${(e as Error).message}`, { cause: e });
  }
}

/** Writes to a temp file beside `target`; `commit` renames it into place, `abort` removes it. */
class AtomicFile {
  readonly tmp: string;
  private readonly out: Writable;
  private constructor(readonly target: string) {
    this.tmp = path.join(path.dirname(target), `.${path.basename(target)}.${randomBytes(6).toString('hex')}.partial`);
    this.out = createWriteStream(this.tmp, { flags: 'wx', mode: 0o600 });
  }
  static create(target: string): AtomicFile { return new AtomicFile(target); }
  write(b: Uint8Array): Promise<void> { return writeTo(this.out, b); }
  async commit(): Promise<void> {
    await new Promise<void>((res, rej) => this.out.end((e?: Error | null) => (e ? rej(e) : res())));
    await fsp.rename(this.tmp, this.target);
  }
  async abort(): Promise<void> {
    this.out.destroy();
    await fsp.rm(this.tmp, { force: true });
  }
}

function writeTo(w: NodeJS.WritableStream, b: Uint8Array): Promise<void> {
  return new Promise((res, rej) => {
    const ok = w.write(b, (e?: Error | null) => { if (e) rej(new KeywardError('KW_IO', `writing output failed: ${e.message}`, { cause: e })); });
    if (ok) res(); else w.once('drain', res);
  });
}

interface Sink { write(b: Uint8Array): Promise<void>; commit(): Promise<void>; abort(): Promise<void> }

function sinkOf(output: NodeOutput): Sink {
  if (typeof output === 'string') return AtomicFile.create(output);
  return { write: (b) => writeTo(output, b), commit: () => Promise.resolve(), abort: () => Promise.resolve() };
}

/** Seals a file or stream into a file or stream. */
export async function sealFile(input: NodeInput, output: NodeOutput, opts: SealOptions & { armor?: boolean }): Promise<void> {
  const enc = await EnvelopeEncoder.create(opts);
  const sink = sinkOf(output);
  const armored: Uint8Array[] = [];
  const emit = async (parts: Uint8Array[]) => {
    for (const p of parts) if (opts.armor) armored.push(p); else await sink.write(p);
  };
  try {
    for await (const c of chunksOf(input)) await emit(await enc.push(c));
    await emit(await enc.finish());
    if (opts.armor) await sink.write(armorBytes(Buffer.concat(armored)));
    await sink.commit();
  } catch (e) {
    await sink.abort();
    throw e;
  }
}

/**
 * Opens a file or stream into a file or stream. With a path output, nothing
 * appears at that path unless everything verified. With a stream output,
 * plaintext is written as chunks authenticate; the promise rejects on any
 * later failure, and the caller must discard what it received.
 */
export async function openFile(input: NodeInput, output: NodeOutput, opts: OpenOptions): Promise<EnvelopeInfo> {
  const dec = new EnvelopeDecoder(opts);
  const sink = sinkOf(output);
  try {
    let first = true;
    let armoredText: Uint8Array[] | null = null;
    for await (const c of chunksOf(input)) {
      if (first) { first = false; if (isArmored(c)) armoredText = []; }
      if (armoredText) { armoredText.push(c); continue; }
      for (const p of await dec.push(c)) await sink.write(p);
    }
    if (armoredText) for (const p of await dec.push(dearmor(Buffer.concat(armoredText)))) await sink.write(p);
    const { chunks, info } = await dec.finish();
    for (const p of chunks) await sink.write(p);
    await sink.commit();
    return info;
  } catch (e) {
    await sink.abort();
    throw e;
  }
}

/** A random-access source over a file, for EnvelopeReader. Close it when done. */
export async function fileSource(file: string): Promise<RandomAccessSource & { close(): Promise<void> }> {
  const fh = await fsp.open(file, 'r');
  const { size } = await fh.stat();
  return {
    size,
    async read(offset, length) {
      const buf = Buffer.alloc(Math.max(0, Math.min(length, size - offset)));
      const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
      return buf.subarray(0, bytesRead);
    },
    close: () => fh.close(),
  };
}

/** Node readable → Web ReadableStream, for the Web Streams API. */
export const toWebStream = (r: NodeJS.ReadableStream): WebReadable<Uint8Array> => Readable.toWeb(Readable.from(r)) as WebReadable<Uint8Array>;
