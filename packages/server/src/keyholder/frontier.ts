/**
 * The keyholder's own audit frontier (docs/key-service-design.md §Audit).
 *
 * Every operation's event is appended here, as the RFC 9162 leaf
 * `leafHash(canonical event bytes)`, before the keyholder answers; the leaf
 * stays *pending* until the API acknowledges that the store holds it durably
 * (`ack(size)`, in order). Checkpoints (C2SP tlog-checkpoint, Ed25519 signed
 * note) cover only the *durable* frontier, so a crash of the API never makes
 * the keyholder's signed history disagree with the store.
 *
 * The keyholder never signs a fork: a checkpoint is signed only when the
 * durable frontier provably extends the last signed one (it is rebuilt from
 * the last signed frontier and the leaves acknowledged since, and must meet
 * the current root), and the new head is persisted (state.ts) before the note
 * is returned. After a restart the frontier is unknown until the API hands
 * back the frontier hashes at the last signed checkpoint: they are accepted
 * only if they hash to its root (`Frontier.fromProof`), else KW_AUDIT_FORK —
 * so the API can neither roll the log back nor graft another history on it.
 *
 * Pending events are kept (bytes, not just leaves) so an API that restarted
 * before storing them can fetch them (`pendingEvents`).
 *
 * @example
 * const f = AuditFrontier.fresh();
 * const i = f.appendPending(eventBytes);     // answer the op with leaf i
 * f.ack(i + 1);                               // the store committed it
 * const cp = await f.checkpoint(signer, origin, (head) => state.persist(head));
 */
import { Frontier, emptyRoot, isTlogError, leafHash, signCheckpoint, type NoteSigner } from '@keyward/tlog';
import { equalCT } from './primitives.js';
import { KeyholderProtocolError } from './protocol.js';

/** A tree head: size and RFC 9162 root. */
export interface TreeHead {
  readonly size: number;
  readonly root: Uint8Array;
}

/** A signed checkpoint: the note and the head it signs. */
export interface SignedCheckpoint extends TreeHead {
  readonly note: string;
}

export interface FrontierLimits {
  /** Pending (unacknowledged) leaves at most; beyond, appends are KW_LIMIT_EXCEEDED until the API acks. */
  readonly maxPendingLeaves: number;
  /** Pending event bytes at most. */
  readonly maxPendingBytes: number;
}

export const DEFAULT_FRONTIER_LIMITS: FrontierLimits = Object.freeze({ maxPendingLeaves: 65_536, maxPendingBytes: 64 * 1024 * 1024 });

interface Pending {
  readonly leaf: Uint8Array;
  readonly event: Uint8Array;
}

const fork = (message: string, cause?: unknown) => new KeyholderProtocolError('KW_AUDIT_FORK', message, cause === undefined ? undefined : { cause });

export class AuditFrontier {
  /** The durable frontier; null until restored after a restart. */
  #durable: Frontier | null;
  /** The last signed head (null: nothing signed yet, i.e. the empty tree). */
  #signed: TreeHead | null;
  /** The frontier at #signed, and the leaves acknowledged since: together they re-derive #durable. */
  #signedFrontier: Frontier | null;
  #sinceSigned: Uint8Array[] = [];
  #pending: Pending[] = [];
  #pendingBytes = 0;
  #queue: Promise<unknown> = Promise.resolve();
  readonly limits: FrontierLimits;

  private constructor(durable: Frontier | null, signed: TreeHead | null, limits: FrontierLimits) {
    this.#durable = durable;
    this.#signed = signed ? { size: signed.size, root: signed.root.slice() } : null;
    this.#signedFrontier = durable?.clone() ?? null;
    this.limits = limits;
  }

  /** A new log (right after init): empty, nothing signed, ready to append. */
  static fresh(limits: FrontierLimits = DEFAULT_FRONTIER_LIMITS): AuditFrontier {
    return new AuditFrontier(Frontier.empty(), null, limits);
  }

  /** After a restart: knows only its last signed head; appends wait for {@link restore}. */
  static awaitingRestore(lastSigned: TreeHead | null, limits: FrontierLimits = DEFAULT_FRONTIER_LIMITS): AuditFrontier {
    return new AuditFrontier(null, lastSigned, limits);
  }

  get restored(): boolean { return this.#durable !== null; }
  /** Leaves acknowledged as durable (0 until restored). */
  get size(): number { return this.#durable?.size ?? 0; }
  /** Leaves appended: durable plus pending. */
  get appended(): number { return this.size + this.#pending.length; }
  /** The last signed head, or null if none was signed yet. */
  get lastSigned(): TreeHead | null { return this.#signed ? { size: this.#signed.size, root: this.#signed.root.slice() } : null; }
  /** The durable frontier's hashes (what the API must hand back after a restart, at a checkpoint size). */
  get hashes(): Uint8Array[] { return this.#requireDurable().hashes; }
  /** The durable root. */
  root(): Uint8Array { return this.#requireDurable().root(); }

  #requireDurable(): Frontier {
    if (!this.#durable) throw new KeyholderProtocolError('KW_AUDIT_NOT_RESTORED');
    return this.#durable;
  }

  /**
   * Restores the frontier after a restart from hashes supplied by the API:
   * they must be the frontier at exactly the last signed size and hash to its
   * root, otherwise KW_AUDIT_FORK and nothing changes. `events` (the store's
   * events after that checkpoint, in order) are then appended as durable.
   */
  restore(input: { size: number; hashes: readonly Uint8Array[]; events?: readonly Uint8Array[] }): void {
    if (this.#durable) throw new KeyholderProtocolError('KW_INVALID_ARGUMENT', 'the audit frontier is already restored; it is restored once per start');
    const head = this.#signed ?? { size: 0, root: emptyRoot() };
    if (input.size !== head.size) {
      throw fork(`the frontier offered is at size ${input.size}, but the last signed checkpoint is at size ${head.size}${input.size < head.size ? ' (a rollback)' : ''}`);
    }
    let f: Frontier;
    try {
      f = Frontier.fromProof({ size: head.size, root: head.root, hashes: input.hashes });
    } catch (e) {
      if (isTlogError(e)) throw fork(`the frontier hashes offered do not hash to the last signed checkpoint's root (size ${head.size})`, e);
      throw e;
    }
    const signedFrontier = f.clone();
    const since: Uint8Array[] = [];
    for (const ev of input.events ?? []) {
      const h = leafHash(ev);
      f.append(h);
      since.push(h);
    }
    this.#signedFrontier = signedFrontier;
    this.#sinceSigned = since;
    this.#durable = f;
  }

  /** Throws KW_LIMIT_EXCEEDED if an event of `bytes` could not be appended now (checked before an op runs). */
  requireCapacity(bytes: number): void {
    this.#requireDurable();
    if (this.#pending.length >= this.limits.maxPendingLeaves || this.#pendingBytes + bytes > this.limits.maxPendingBytes) {
      throw new KeyholderProtocolError('KW_LIMIT_EXCEEDED', `${this.#pending.length} audit events await acknowledgement: the API must store and ack them before more operations run`);
    }
  }

  /** Appends an event (its canonical bytes) as a pending leaf; returns its index. */
  appendPending(event: Uint8Array): number {
    this.requireCapacity(event.length);
    const index = this.appended;
    this.#pending.push({ leaf: leafHash(event), event: event.slice() });
    this.#pendingBytes += event.length;
    return index;
  }

  /**
   * The store durably holds leaves [0, size): pending leaves up to `size`
   * become durable, in order. A size already durable is a no-op (a retried
   * ack); a size beyond what was appended is KW_INVALID_ARGUMENT.
   */
  ack(size: number): number {
    const durable = this.#requireDurable();
    if (!Number.isSafeInteger(size) || size < 0) throw new KeyholderProtocolError('KW_INVALID_ARGUMENT', 'ack size must be a non-negative integer');
    if (size > this.appended) {
      throw new KeyholderProtocolError('KW_INVALID_ARGUMENT', `cannot acknowledge ${size} leaves: only ${this.appended} were appended`);
    }
    const n = size - durable.size;
    if (n <= 0) return durable.size;
    const moved = this.#pending.splice(0, n);
    for (const p of moved) {
      durable.append(p.leaf);
      this.#sinceSigned.push(p.leaf);
      this.#pendingBytes -= p.event.length;
    }
    return durable.size;
  }

  /**
   * Drops the pending leaves from index `from` on (several nodes: another
   * node's event took that index in the shared log, so this one can never be
   * stored). Safe: pending leaves are never signed. `from` below the durable
   * size is KW_AUDIT_FORK (a durable leaf is never taken back); beyond what
   * was appended, KW_INVALID_ARGUMENT. Returns how many were dropped.
   */
  discardPending(from: number): number {
    const durable = this.#requireDurable();
    if (!Number.isSafeInteger(from) || from < 0) throw new KeyholderProtocolError('KW_INVALID_ARGUMENT', 'discard-pending from must be a non-negative integer');
    if (from < durable.size) throw fork(`leaves below ${durable.size} are durable: they are never discarded (asked from ${from})`);
    if (from > this.appended) throw new KeyholderProtocolError('KW_INVALID_ARGUMENT', `only ${this.appended} leaves were appended; cannot discard from ${from}`);
    const dropped = this.#pending.splice(from - durable.size);
    for (const p of dropped) this.#pendingBytes -= p.event.length;
    return dropped.length;
  }

  /** Events appended but not yet acknowledged, from index `from` (default the durable size), up to `maxBytes` (at least one). */
  pendingEvents(from?: number, maxBytes = Number.POSITIVE_INFINITY): { from: number; events: Uint8Array[] } {
    const durable = this.#requireDurable();
    const start = from ?? durable.size;
    if (!Number.isSafeInteger(start) || start < durable.size || start > this.appended) {
      throw new KeyholderProtocolError('KW_INVALID_ARGUMENT', `pending events are ${durable.size}..${this.appended - 1}; ${start} is outside`);
    }
    const events: Uint8Array[] = [];
    let total = 0;
    for (const p of this.#pending.slice(start - durable.size)) {
      if (events.length > 0 && total + p.event.length > maxBytes) break;
      events.push(p.event.slice());
      total += p.event.length;
    }
    return { from: start, events };
  }

  /**
   * Signs a checkpoint over the durable frontier for `origin`, after checking
   * it extends the last signed head (KW_AUDIT_FORK otherwise), and calls
   * `persist` with the new head before returning the note. Serialised: two
   * checkpoints never interleave. A checkpoint at the same size re-signs the
   * same head without persisting.
   */
  checkpoint(signer: NoteSigner, origin: string, persist: (head: TreeHead) => Promise<void>): Promise<SignedCheckpoint> {
    const run = this.#queue.then(() => this.#checkpointNow(signer, origin, persist));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #checkpointNow(signer: NoteSigner, origin: string, persist: (head: TreeHead) => Promise<void>): Promise<SignedCheckpoint> {
    const durable = this.#requireDurable();
    const last = this.#signed ?? { size: 0, root: emptyRoot() };
    const snapshot = durable.clone();
    const size = snapshot.size;
    const root = snapshot.root();
    if (size < last.size) throw fork(`the durable frontier (size ${size}) is smaller than the last signed checkpoint (size ${last.size})`);
    // Re-derive the current root from the last signed frontier and the leaves since: the proof that we extend it.
    const rebuilt = this.#signedFrontier!.clone();
    if (!equalCT(rebuilt.root(), last.root)) throw fork('the signed frontier does not match the last signed root');
    for (const h of this.#sinceSigned.slice(0, size - last.size)) rebuilt.append(h);
    if (rebuilt.size !== size || !equalCT(rebuilt.root(), root)) throw fork(`the durable frontier (size ${size}) does not extend the last signed checkpoint (size ${last.size})`);

    const note = signCheckpoint(signer, { origin, size, root });
    if (size !== last.size || this.#signed === null) {
      await persist({ size, root });
      this.#signed = { size, root };
      this.#signedFrontier = snapshot;
      this.#sinceSigned = this.#sinceSigned.slice(size - last.size);
    }
    return { note, size, root: root.slice() };
  }
}
