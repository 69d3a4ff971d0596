/** Web Streams API: sealing and opening of arbitrarily large data in bounded memory. */
import { EnvelopeDecoder, EnvelopeEncoder } from './format/codec.js';
import type { EnvelopeInfo, OpenOptions, SealOptions } from './format/session.js';

/**
 * A TransformStream from plaintext to envelope bytes.
 *
 * @example
 * await file.stream().pipeThrough(createSealStream({ recipients })).pipeTo(out);
 */
export function createSealStream(opts: SealOptions): TransformStream<Uint8Array, Uint8Array> {
  let enc: EnvelopeEncoder;
  return new TransformStream({
    async start() { enc = await EnvelopeEncoder.create(opts); },
    async transform(chunk, ctl) { for (const c of await enc.push(chunk)) ctl.enqueue(c); },
    async flush(ctl) { for (const c of await enc.finish()) ctl.enqueue(c); },
  });
}

export interface OpenStream {
  /** Plaintext comes out as chunks authenticate. For a signed envelope it is unverified until the stream ends without error. */
  readonly stream: TransformStream<Uint8Array, Uint8Array>;
  /** Resolves when the whole envelope (and signature, if asked) verified; rejects with the stream's error. */
  readonly done: Promise<EnvelopeInfo>;
}

/**
 * A TransformStream from envelope bytes to plaintext. It errors (fails
 * closed) on any tampering, truncation or, at the end, a bad signature;
 * consumers must treat data as provisional until `done` resolves.
 */
export function createOpenStream(opts: OpenOptions): OpenStream {
  const dec = new EnvelopeDecoder(opts);
  let resolve!: (i: EnvelopeInfo) => void, reject!: (e: unknown) => void;
  const done = new Promise<EnvelopeInfo>((res, rej) => { resolve = res; reject = rej; });
  done.catch(() => {}); // observed through the stream as well
  const stream = new TransformStream<Uint8Array, Uint8Array>({
    async transform(chunk, ctl) {
      try {
        for (const c of await dec.push(chunk)) ctl.enqueue(c);
      } catch (e) { reject(e); throw e; }
    },
    async flush(ctl) {
      try {
        const { chunks, info } = await dec.finish();
        for (const c of chunks) ctl.enqueue(c);
        resolve(info);
      } catch (e) { reject(e); throw e; }
    },
  });
  return { stream, done };
}
