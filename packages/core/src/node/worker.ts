/**
 * The payload AEAD of one batch of chunks, run on a worker thread.
 *
 * A batch is a run of consecutive 64 KiB chunks. The worker reads it from the
 * input file with a positional read into a buffer it reuses, seals or opens
 * every chunk (nonce = chunk index as 11-byte big-endian ‖ final flag, as
 * format/payload.ts `chunkNonce` builds it), and writes the result with a
 * positional write, so batches may finish in any order. The main thread keeps
 * everything else: the header, the order of results, the signature hash, the
 * final chunk of an open, and the rename that commits the output.
 *
 * `workerMain` runs from its source text (`new Worker(code, { eval: true })`),
 * so it must stay self-contained: it may use only its parameters and globals,
 * never a binding from this module. Types are fine; they are erased.
 */
import type * as NodeCrypto from 'node:crypto';
import type * as NodeFs from 'node:fs';
import type * as NodeV8 from 'node:v8';
import type { MessagePort } from 'node:worker_threads';
import type { sealX25519Stanzas, StanzaBatch, StanzaJob } from './fanout.js';

export interface BatchJob {
  readonly id: number;
  readonly op: 'seal' | 'open';
  readonly alg: 'aes-256-gcm' | 'chacha20-poly1305';
  /** The payload key; the worker wipes its copy when the batch is done. */
  readonly key: Uint8Array;
  /** Payload index of the batch's first chunk. */
  readonly firstChunk: number;
  readonly chunks: number;
  /** True when the batch's last chunk is the payload's final chunk (sealing only). */
  readonly endsPayload: boolean;
  readonly inFd: number;
  readonly inPos: number;
  /** Bytes to read: plaintext when sealing, whole ciphertext chunks when opening. */
  readonly inLength: number;
  readonly outFd: number;
  readonly outPos: number;
  /** Send the batch's ciphertext back (for the signature hash), transferring its buffer. */
  readonly returnCiphertext: boolean;
  /** Buffers the main thread hands back for reuse. */
  readonly spare: ArrayBuffer[];
}

export type BatchResult =
  | { readonly id: number; readonly ok: true; readonly ciphertext: Uint8Array | null }
  | { readonly id: number; readonly ok: false; readonly code: string; readonly message: string };

/** A batch of `x25519` stanzas for a fan-out (fanout.ts). */
export interface StanzaBatchJob extends StanzaJob {
  readonly id: number;
  readonly op: 'x25519-stanzas';
}

export type StanzaBatchResult =
  | ({ readonly id: number; readonly ok: true } & StanzaBatch)
  | { readonly id: number; readonly ok: false; readonly code: string; readonly message: string };

/** What the worker is given: its port, the Node modules it uses and the fan-out function (fanout.ts). */
export interface WorkerDeps {
  readonly port: MessagePort;
  readonly crypto: typeof NodeCrypto;
  readonly fs: typeof NodeFs;
  readonly v8: typeof NodeV8;
  readonly stanzas: typeof sealX25519Stanzas;
}

export function workerMain({ port, crypto, fs, v8, stanzas }: WorkerDeps): void {
  const CHUNK = 65536;
  const TAG = 16;
  const CIPHER = CHUNK + TAG;
  /** Bytes of node:crypto output after which the worker has V8 collect it (see collectGarbage). */
  const COLLECT_EVERY = 4 * 1024 * 1024;
  let uncollected = 0;
  let _filler: unknown = null; // written, never read: each write makes the previous filler garbage
  const nonce = new Uint8Array(12);
  const free: ArrayBuffer[] = [];
  let inBuf: Uint8Array = new Uint8Array(0);
  let outBuf: Uint8Array = new Uint8Array(0);

  /** An error that carries a Keyward error code across the thread boundary. */
  const failure = (code: string, message: string) => Object.assign(new Error(message), { kwCode: code });

  /** A buffer of at least `n` bytes: `current` if it is large enough, else a spare, else a new one. */
  function sized(current: Uint8Array, n: number): Uint8Array {
    if (current.length >= n) return current;
    while (free.length) {
      const b = free.pop()!;
      if (b.byteLength >= n) return new Uint8Array(b);
    }
    return new Uint8Array(n);
  }

  // Both AEADs take the same options; the cast picks one of node:crypto's overloads.
  const aeadName = (job: BatchJob) => job.alg as NodeCrypto.CipherGCMTypes;

  function setNonce(index: number, last: boolean): Uint8Array {
    nonce[7] = (index >>> 24) & 0xff;
    nonce[8] = (index >>> 16) & 0xff;
    nonce[9] = (index >>> 8) & 0xff;
    nonce[10] = index & 0xff;
    nonce[11] = last ? 1 : 0;
    return nonce;
  }

  /**
   * node:crypto returns every chunk's output in a new 64 KiB Buffer, which V8
   * frees only at a garbage collection, and it starts one for them only once
   * about 32 MB are pending per thread: with a worker per core that alone
   * would be more memory than the rest of a file operation. Filling the
   * (small) young generation with short-lived objects makes V8 run a
   * scavenge now, which frees them: a fraction of a millisecond per 4 MiB.
   */
  function collectGarbage(bytes: number): void {
    uncollected += bytes;
    if (uncollected < COLLECT_EVERY) return;
    uncollected = 0;
    const young = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
    for (let n = 0; n <= (young?.space_available_size ?? 0); n += 4096) _filler = new Array(500);
    _filler = null;
  }

  function readFully(fd: number, buf: Uint8Array, length: number, position: number): void {
    for (let o = 0; o < length;) {
      const n = fs.readSync(fd, buf, o, length - o, position + o);
      if (n === 0) throw failure('KW_IO', 'the input file shrank while it was being read');
      o += n;
    }
  }

  function writeFully(fd: number, buf: Uint8Array, length: number, position: number): void {
    for (let o = 0; o < length;) o += fs.writeSync(fd, buf, o, length - o, position + o);
  }

  /** Writes `parts` (`length` bytes in all) at `position`, in one system call unless it comes up short. */
  function writevFully(fd: number, parts: Uint8Array[], length: number, position: number): void {
    let skip = fs.writevSync(fd, parts, position);
    if (skip === length) return;
    // A short write (a full disk, a signal): finish part by part.
    let at = position + skip;
    for (const p of parts) {
      if (skip >= p.length) { skip -= p.length; continue; }
      writeFully(fd, p.subarray(skip), p.length - skip, at);
      at += p.length - skip;
      skip = 0;
    }
  }

  /** The parts as one buffer the main thread can take (for the signature hash). */
  function joined(parts: Uint8Array[], length: number): Uint8Array {
    const out = (outBuf = sized(outBuf, length));
    let o = 0;
    for (const p of parts) { out.set(p, o); o += p.length; }
    return out.subarray(0, length);
  }

  /**
   * Seals the batch's chunks. node:crypto returns each chunk's ciphertext in
   * a new buffer; they go to the file as they are (one writev), copied only
   * when the main thread needs them for the signature hash.
   */
  function seal(job: BatchJob, key: NodeCrypto.KeyObject): Uint8Array | null {
    inBuf = sized(inBuf, job.inLength);
    readFully(job.inFd, inBuf, job.inLength, job.inPos);
    const parts: Uint8Array[] = [];
    for (let k = 0, i = 0; k < job.chunks; k++, i += CHUNK) {
      const last = job.endsPayload && k === job.chunks - 1;
      const c = crypto.createCipheriv(aeadName(job), key, setNonce(job.firstChunk + k, last), { authTagLength: TAG });
      parts.push(c.update(inBuf.subarray(i, Math.min(job.inLength, i + CHUNK))));
      c.final(); // the empty tail of a stream cipher mode; it computes the tag
      parts.push(c.getAuthTag());
    }
    const length = job.inLength + job.chunks * TAG;
    writevFully(job.outFd, parts, length, job.outPos);
    collectGarbage(length);
    return job.returnCiphertext ? joined(parts, length) : null;
  }

  function openChunk(job: BatchJob, key: NodeCrypto.KeyObject, index: number, ct: Uint8Array, last: boolean): Uint8Array | null {
    const d = crypto.createDecipheriv(aeadName(job), key, setNonce(index, last), { authTagLength: TAG });
    d.setAuthTag(ct.subarray(ct.length - TAG));
    const body = d.update(ct.subarray(0, ct.length - TAG));
    try {
      d.final();
      return body;
    } catch {
      body.fill(0);
      return null;
    }
  }

  /** Opens whole non-final chunks (the main thread opens the final one); returns the ciphertext when asked. */
  function open(job: BatchJob, key: NodeCrypto.KeyObject): Uint8Array | null {
    if (job.inLength !== job.chunks * CIPHER) throw failure('KW_INTERNAL', 'an open batch holds whole chunks only');
    const ct = (inBuf = sized(inBuf, job.inLength));
    readFully(job.inFd, ct, job.inLength, job.inPos);
    const parts: Uint8Array[] = [];
    for (let k = 0; k < job.chunks; k++) {
      const index = job.firstChunk + k;
      const chunk = ct.subarray(k * CIPHER, (k + 1) * CIPHER);
      const pt = openChunk(job, key, index, chunk, false);
      if (!pt) {
        for (const p of parts) p.fill(0);
        // As ChunkOpener.open: a non-final chunk that opens as final means data follows the end.
        const asFinal = openChunk(job, key, index, chunk, true);
        if (asFinal) {
          asFinal.fill(0);
          throw failure('KW_TRAILING_DATA', `data follows the final chunk ${index}`);
        }
        throw failure('KW_PAYLOAD_AUTH_FAILED', `chunk ${index} failed authentication`);
      }
      parts.push(pt);
    }
    writevFully(job.outFd, parts, job.chunks * CHUNK, job.outPos);
    collectGarbage(job.chunks * CHUNK);
    return job.returnCiphertext ? ct.subarray(0, job.inLength) : null;
  }

  /** Recipient public keys imported by earlier fan-outs (public values; bounded in fanout.ts). */
  const recipientKeys = new Map<string, NodeCrypto.KeyObject>();

  function stanzaBatch(job: StanzaBatchJob): void {
    let result: StanzaBatchResult;
    try {
      result = { id: job.id, ok: true, ...stanzas(crypto, job, recipientKeys) };
    } catch (e) {
      result = { id: job.id, ok: false, code: 'KW_INTERNAL', message: `x25519 stanzas failed: ${String((e as Error).message)}` };
    } finally {
      job.plaintext.fill(0);
    }
    port.postMessage(result, result.ok ? [result.encs.buffer as ArrayBuffer, result.cts.buffer as ArrayBuffer] : []);
  }

  port.on('message', (job: BatchJob | StanzaBatchJob) => {
    if (job.op === 'x25519-stanzas') {
      stanzaBatch(job);
      return;
    }
    for (const b of job.spare) free.push(b);
    const key = crypto.createSecretKey(job.key);
    job.key.fill(0);
    let result: BatchResult;
    const transfer: ArrayBuffer[] = [];
    try {
      const ciphertext = job.op === 'seal' ? seal(job, key) : open(job, key);
      if (ciphertext) {
        // Hand the buffer over; the next batch takes a spare or a new one.
        transfer.push(ciphertext.buffer as ArrayBuffer);
        if (job.op === 'seal') outBuf = new Uint8Array(0); else inBuf = new Uint8Array(0);
      }
      result = { id: job.id, ok: true, ciphertext };
    } catch (e) {
      const err = e as Error & { kwCode?: string; syscall?: string };
      // fs errors carry the failed syscall; anything else unexpected is a bug.
      const code = err.kwCode ?? (err.syscall ? 'KW_IO' : 'KW_INTERNAL');
      const message = err.syscall ? `${err.syscall} failed: ${err.message}` : String(err.message);
      result = { id: job.id, ok: false, code, message };
    }
    port.postMessage(result, transfer);
  });
}
