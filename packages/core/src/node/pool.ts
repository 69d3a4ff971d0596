/**
 * A small pool of worker threads for the payload AEAD of large files.
 *
 * One pool per process, started on first use and shared by concurrent calls.
 * Workers keep the process alive only while they have work; after a few idle
 * seconds they are stopped, so a short-lived program pays nothing for them
 * and a server does not keep idle threads.
 */
import { Worker } from 'node:worker_threads';
import { KeywardError } from '../errors.js';
import { sealX25519Stanzas, type StanzaJob } from './fanout.js';
import { workerMain, type BatchJob, type BatchResult, type StanzaBatchResult } from './worker.js';

/**
 * The worker runs from source text rather than a file: the same code then
 * runs from `dist/` and from TypeScript source (where Node 20 workers would
 * not inherit a TS loader). `__name` is the helper esbuild-based loaders
 * insert to keep function names; the built code does not use it. Modules come
 * by dynamic import, which works whether the text runs as a script or (under
 * --input-type=module) as a module.
 */
const WORKER_SOURCE = `'use strict';
var __name = (f) => f;
Promise.all([import('node:worker_threads'), import('node:crypto'), import('node:fs'), import('node:v8')]).then(([{ parentPort }, crypto, fs, v8]) => {
  (${workerMain.toString()})({ port: parentPort, crypto, fs, v8, stanzas: (${sealX25519Stanzas.toString()}) });
  parentPort.postMessage('ready');
});
`;

const IDLE_MS = 5000;
/** A small young generation keeps the scavenges that free chunk buffers cheap (see worker.ts collectGarbage). */
const RESOURCE_LIMITS = { maxYoungGenerationSizeMb: 2 };

type AnyResult = BatchResult | StanzaBatchResult;
interface Pending { resolve(r: AnyResult): void; reject(e: Error): void }

class Slot {
  readonly pending = new Map<number, Pending>();
  readonly ready: Promise<void>;
  /** True once the worker has started (answers without a start-up wait). */
  started = false;
  constructor(readonly worker: Worker, onGone: (slot: Slot, err: unknown) => void) {
    this.ready = new Promise((resolve, reject) => {
      worker.once('message', (m) => (m === 'ready' ? resolve() : reject(new Error('unexpected first message'))));
      worker.once('error', reject);
      worker.once('exit', () => reject(new Error('worker exited during startup')));
    });
    this.ready.then(() => { this.started = true; if (this.pending.size === 0) worker.unref(); }, () => {}); // failures: see WorkerPool.start
    worker.on('message', (r: AnyResult | 'ready') => {
      if (r === 'ready') return;
      const p = this.pending.get(r.id);
      this.pending.delete(r.id);
      if (this.pending.size === 0) worker.unref();
      p?.resolve(r);
    });
    worker.on('error', (e) => onGone(this, e));
    worker.on('exit', (code) => onGone(this, new Error(`worker exited with code ${code}`)));
  }

  failAll(err: unknown): void {
    for (const p of this.pending.values()) p.reject(new KeywardError('KW_INTERNAL', 'a worker thread failed', { cause: err }));
    this.pending.clear();
  }
}

export class WorkerPool {
  private slots: Slot[] = [];
  private nextId = 1;
  private idleTimer: NodeJS.Timeout | null = null;
  private starting: Promise<boolean> | null = null;

  /** Worker threads running now (0 until first use, and again after an idle period). */
  get running(): number { return this.slots.length; }

  /** Worker threads that have finished starting. */
  get started(): number { return this.slots.filter((s) => s.started).length; }

  /**
   * Starts workers until there are at least `size`; false when worker threads
   * are unavailable here. Workers left without work stop after IDLE_MS.
   */
  start(size: number): Promise<boolean> {
    if (!this.slots.some((s) => s.pending.size > 0)) this.stopWhenIdle();
    if (this.slots.length >= size && this.starting) return this.starting;
    const slots: Slot[] = [];
    for (let i = this.slots.length; i < size; i++) {
      try {
        slots.push(new Slot(new Worker(WORKER_SOURCE, { eval: true, execArgv: [], resourceLimits: RESOURCE_LIMITS }), (s, e) => this.gone(s, e)));
      } catch {
        break;
      }
    }
    this.slots.push(...slots);
    // On a failure, stop this generation only: a later stop() and start() may have made new workers meanwhile.
    const generation = [...this.slots];
    this.starting = Promise.all(generation.map((s) => s.ready)).then(() => generation.length > 0, () => {
      void this.stopSlots(generation);
      return false;
    });
    return this.starting;
  }

  private gone(slot: Slot, err: unknown): void {
    const i = this.slots.indexOf(slot);
    if (i >= 0) {
      this.slots.splice(i, 1);
      this.starting = null;
    }
    // Also for a worker stop() already took out of the pool: its unfinished batches fail, never wait forever.
    slot.failAll(err);
  }

  /** Runs one batch on the least busy worker. */
  run(job: Omit<BatchJob, 'id'>, transfer: ArrayBuffer[] = []): Promise<BatchResult> {
    return this.post({ ...job }, transfer) as Promise<BatchResult>;
  }

  /** Computes a batch of `x25519` stanzas (fanout.ts) on the least busy worker. */
  runStanzas(job: StanzaJob): Promise<StanzaBatchResult> {
    return this.post({ ...job, op: 'x25519-stanzas' }, []) as Promise<StanzaBatchResult>;
  }

  private post(job: Record<string, unknown>, transfer: ArrayBuffer[]): Promise<AnyResult> {
    let slot = this.slots[0];
    for (const s of this.slots) if (slot && s.pending.size < slot.pending.size) slot = s;
    if (!slot) return Promise.reject(new KeywardError('KW_INTERNAL', 'no worker thread is running'));
    if (this.idleTimer) { clearTimeout(this.idleTimer); this.idleTimer = null; }
    const id = this.nextId++;
    const chosen = slot;
    return new Promise<AnyResult>((resolve, reject) => {
      chosen.pending.set(id, {
        resolve: (r) => { this.afterJob(); resolve(r); },
        reject: (e) => { this.afterJob(); reject(e); },
      });
      chosen.worker.ref(); // an unfinished batch keeps the process alive
      chosen.worker.postMessage({ ...job, id }, transfer);
    });
  }

  private afterJob(): void {
    if (!this.slots.some((s) => s.pending.size > 0)) this.stopWhenIdle();
  }

  /** (Re)arms the timer that stops the workers IDLE_MS from now; `run` disarms it. */
  private stopWhenIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => { this.idleTimer = null; void this.stop(); }, IDLE_MS);
    this.idleTimer.unref();
  }

  /** Stops the workers; the next `start` makes new ones. Batches they had not finished fail (KW_INTERNAL). */
  async stop(): Promise<void> {
    await this.stopSlots(this.slots);
  }

  private async stopSlots(slots: readonly Slot[]): Promise<void> {
    const stopping = new Set(slots);
    if (stopping.size === 0) return;
    this.slots = this.slots.filter((s) => !stopping.has(s));
    this.starting = null;
    // ref(): an idle worker is unref'd, and terminate() resolves on its exit; without it a process with
    // nothing else to do can end while awaiting stop() (exit code 13, an unsettled top-level await).
    await Promise.all([...stopping].map((s) => { s.worker.ref(); return s.worker.terminate(); }));
  }
}

/** The process-wide pool. */
export const sharedPool = new WorkerPool();
