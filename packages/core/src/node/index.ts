/**
 * Node adapter: files and Node streams. Output files are written aside and
 * renamed into place only after the whole envelope (and signature) verified,
 * so a failed open never leaves plaintext behind.
 *
 * Regular files of PARALLEL_MIN_BYTES or more (COLD_PARALLEL_MIN_BYTES until
 * the workers have started), path to path, run the payload AEAD on worker
 * threads with large positional reads and writes (parallel.ts); everything
 * else (streams, stdin/stdout, armor, small files) goes through the streaming
 * encoder and decoder on this thread. Both paths write the same bytes and
 * fail with the same errors.
 */
import { availableParallelism } from 'node:os';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadable } from 'node:stream/web';
import { promises as fsp } from 'node:fs';
import { EnvelopeDecoder, EnvelopeEncoder } from '../format/codec.js';
import type { EnvelopeInfo, OpenOptions, SealOptions } from '../format/session.js';
import type { RandomAccessSource } from '../random-access.js';
import { armorBytes, isArmored, dearmor, ARMOR_BEGIN } from '../armor.js';
import { AtomicFile, streamSink, type Sink } from './atomic.js';
import { chunksOf, FileInput, type NodeInput } from './input.js';
import { openParallel, sealParallel } from './parallel.js';
import { sharedPool } from './pool.js';

export type { NodeInput };
/** Output: a path (written atomically), or a Node writable (e.g. process.stdout). */
export type NodeOutput = string | NodeJS.WritableStream;

/** Options of the file functions besides those of `seal` / `open`. */
export interface FileOptions {
  /**
   * Worker threads for regular files of PARALLEL_MIN_BYTES or more, path to
   * path. Default: one per CPU (at most 8). 0 keeps all work on the calling thread.
   */
  workers?: number;
}

/**
 * Below this size a file is sealed and opened on the calling thread: handing
 * work to other threads costs more than it saves (docs/benchmarks.md, (d)).
 */
export const PARALLEL_MIN_BYTES = 8 * 1024 * 1024;
/**
 * The same while no worker is running yet: starting them takes ~40 ms, which
 * the worker path wins back only on files of a few tens of MiB.
 */
export const COLD_PARALLEL_MIN_BYTES = 32 * 1024 * 1024;

const defaultWorkers = () => Math.min(availableParallelism(), 8);

async function sinkOf(output: NodeOutput): Promise<Sink> {
  return typeof output === 'string' ? AtomicFile.create(output) : streamSink(output);
}

/** Runs `f` on the sink, then commits it; aborts it (removing a temp file) on any failure. */
async function into<T>(sink: Sink, f: (sink: Sink) => Promise<T>): Promise<T> {
  try {
    const result = await f(sink);
    await sink.commit();
    return result;
  } catch (e) {
    await sink.abort();
    throw e;
  }
}

/**
 * The input file, open, when the parallel path applies: path to path, a
 * regular file of PARALLEL_MIN_BYTES or more (COLD_PARALLEL_MIN_BYTES while
 * no worker runs), and worker threads available.
 */
async function parallelInput(input: NodeInput, output: NodeOutput, workers: number): Promise<FileInput | null> {
  if (typeof input !== 'string' || typeof output !== 'string' || workers < 1) return null;
  const file = await FileInput.openIfLarge(input, sharedPool.running > 0 ? PARALLEL_MIN_BYTES : COLD_PARALLEL_MIN_BYTES);
  if (file && !(await sharedPool.start(workers))) {
    await file.close();
    return null;
  }
  return file;
}

/**
 * Seals a file or stream into a file or stream.
 *
 * @example
 * await sealFile('backup.tar', 'backup.tar.kw', { recipients: [await parseRecipient(pub)] });
 */
export async function sealFile(input: NodeInput, output: NodeOutput, opts: SealOptions & FileOptions & { armor?: boolean }): Promise<void> {
  const workers = opts.workers ?? defaultWorkers();
  const file = opts.armor ? null : await parallelInput(input, output, workers);
  if (file) {
    try {
      const out = await AtomicFile.create(output as string);
      await into(out, () => sealParallel(file, out, opts, workers));
    } finally {
      await file.close();
    }
    return;
  }
  const enc = await EnvelopeEncoder.create(opts);
  await into(await sinkOf(output), async (sink) => {
    if (!opts.armor) {
      for await (const c of chunksOf(input)) await sink.write(await enc.push(c));
      await sink.write(await enc.finish());
      return;
    }
    const parts: Uint8Array[] = [];
    for await (const c of chunksOf(input)) parts.push(...(await enc.push(c)));
    parts.push(...(await enc.finish()));
    await sink.write([armorBytes(Buffer.concat(parts))]);
  });
}

/**
 * Opens a file or stream into a file or stream. With a path output, nothing
 * appears at that path unless everything verified. With a stream output,
 * plaintext is written as chunks authenticate; the promise rejects on any
 * later failure, and the caller must discard what it received.
 *
 * @example
 * const info = await openFile('backup.tar.kw', 'backup.tar', { identities: [id] });
 */
export async function openFile(input: NodeInput, output: NodeOutput, opts: OpenOptions & FileOptions): Promise<EnvelopeInfo> {
  const workers = opts.workers ?? defaultWorkers();
  const file = await parallelInput(input, output, workers);
  if (file) {
    try {
      if (!isArmored(await file.read(0, ARMOR_BEGIN.length))) {
        const out = await AtomicFile.create(output as string);
        return await into(out, () => openParallel(file, out, opts, workers));
      }
    } finally {
      await file.close();
    }
  }
  const dec = new EnvelopeDecoder(opts);
  return into(await sinkOf(output), async (sink) => {
    let first = true;
    let armoredText: Uint8Array[] | null = null;
    for await (const c of chunksOf(input)) {
      if (first) { first = false; if (isArmored(c)) armoredText = []; }
      if (armoredText) { armoredText.push(c); continue; }
      await sink.write(await dec.push(c));
    }
    if (armoredText) await sink.write(await dec.push(dearmor(Buffer.concat(armoredText))));
    const { chunks, info } = await dec.finish();
    await sink.write(chunks);
    return info;
  });
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
