/**
 * The Node platform's `stanzaOffload` (platform/types.ts): when an envelope
 * has many `x25519` recipients and the worker pool (pool.ts) is running, the
 * pool's workers compute stanzas (fanout.ts) in small batches taken from the
 * front of the list while the calling thread computes them from the back.
 * Neither side waits for work the other could do: when the workers are slow
 * (other processes on the CPUs), the calling thread simply does more, and at
 * the end waits only for the batches in flight.
 */
import { availableParallelism } from 'node:os';
import { KeywardError } from '../errors.js';
import type { StanzaOffload } from '../platform/types.js';
import { sharedPool } from './pool.js';

/** Below this many stanzas, posting batches to a worker costs about what it saves. */
export const OFFLOAD_MIN_STANZAS = 8;
/**
 * From this many stanzas a seal starts the pool when it is not running (for the
 * calls that follow: this one does not wait ~40 ms for it).
 */
export const OFFLOAD_START_STANZAS = 64;
/** Stanzas per worker batch (a message each way per batch): an eighth of them, 4 to 32. */
export const batchSize = (n: number): number => Math.min(32, Math.max(4, n >> 3));
/** Stanzas the calling thread computes between two looks at the workers' answers. */
const LOCAL_STEP = 4;

/** Workers used for stanzas: one per other CPU, and only those already started (no start-up wait). */
function helpers(): number {
  return Math.min(sharedPool.started, Math.max(1, availableParallelism() - 1));
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

export const stanzaOffload: StanzaOffload = {
  wants(n) {
    if (n < OFFLOAD_MIN_STANZAS) return false;
    if (helpers() > 0) return true;
    if (n >= OFFLOAD_START_STANZAS && sharedPool.running === 0) void sharedPool.start(Math.max(1, availableParallelism() - 1));
    return false;
  },

  async seal(job, local) {
    const n = job.publicKeys.length / 32;
    const ctLength = job.plaintext.length + 16;
    const encs = new Uint8Array(n * 32);
    const cts = new Uint8Array(n * ctLength);
    const maxInFlight = 2 * Math.max(1, helpers());
    const batch = batchSize(n);
    let front = 0; // workers take [front, front + batch)
    let back = n; // this thread takes back - 1
    let failure: unknown = null;
    const inFlight = new Set<Promise<void>>();
    const dispatch = () => {
      // A batch goes out only while as many stanzas would be left for this thread.
      while (failure === null && inFlight.size < maxInFlight && back - front >= 2 * batch) {
        const at = front;
        front += batch;
        // slice, not subarray: posting a view would clone its whole buffer
        const p: Promise<void> = sharedPool.runStanzas({ ...job, publicKeys: job.publicKeys.slice(32 * at, 32 * front) }).then((r) => {
          if (!r.ok) throw new KeywardError('KW_INTERNAL', r.message);
          encs.set(r.encs, 32 * at);
          cts.set(r.cts, ctLength * at);
        }).catch((e: unknown) => { failure ??= e; }).finally(() => {
          inFlight.delete(p);
          dispatch();
        });
        inFlight.add(p);
      }
    };
    dispatch();
    try {
      for (let step = 0; back > front && failure === null; step++) {
        const i = --back;
        const { enc, ct } = await local(i);
        encs.set(enc, 32 * i);
        cts.set(ct, ctLength * i);
        if (step % LOCAL_STEP === LOCAL_STEP - 1) await nextTurn(); // lets the workers' answers in
      }
    } catch (e) {
      failure ??= e; // no new batches; the job's bytes stay untouched until those in flight are back
    }
    while (inFlight.size > 0) await Promise.race(inFlight);
    if (failure !== null) throw failure instanceof KeywardError ? failure : new KeywardError('KW_INTERNAL', 'a worker thread failed', { cause: failure });
    return { encs, cts };
  },
};
