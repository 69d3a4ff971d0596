/**
 * Reading a §12.3 CombinedTreeProof, and the draft's search algorithms over it: the
 * greatest-version search (§6.3) and the fixed-version search (§7.2).
 *
 * A CombinedTreeProof's elements carry no position: they arrive in the order the algorithm the
 * user runs asks for them. {@link ProofReader} hands them out in that order and enforces §12.3:
 * a timestamp is sent once (retained ones not at all) and timestamps are monotonic in position
 * order; two proofs for one entry must agree; a proof for an entry whose timestamp was retained
 * must match the retained prefix root; and every array is consumed exactly ("no more and no
 * less"). Any violation is `KT_BAD_RESPONSE`.
 */
import { equalBytes } from './bytes.js';
import { DirectoryError } from './errors.js';
import { isDistinguished, rightmostDistinguished } from './distinguished.js';
import { ibst } from './ibst.js';
import { interpretSearchLadder, searchBinaryLadder } from './ladder.js';
import { evaluatePrefixProof, type PrefixLookup } from './prefix-tree.js';
import type { CombinedTreeProof, PrefixProof } from './structs.js';

function bad(message: string): never {
  throw new DirectoryError('KT_BAD_RESPONSE', message);
}

/** What a user retained from its previous view: timestamps and prefix roots by position. */
export interface RetainedEntries {
  readonly timestamps: ReadonlyMap<number, number>;
  readonly prefixRoots?: ReadonlyMap<number, Uint8Array>;
}

/**
 * How a ladder's lookups at one entry may be cut short. `search`: the entry answers the search
 * ladder for `target` (§6.2), so it may stop at the first rung that settles the entry's greatest
 * version against `target` (the versions `left`/`right` were omitted but still count);
 * `exact`: every version is looked up.
 */
export type LadderSpec =
  | {
      readonly kind: 'search';
      readonly target: number;
      readonly left: readonly number[];
      readonly right: readonly number[];
      /** Owner monitoring (§8.3): a version above `target` shown included is a version the owner did not add. */
      readonly owner?: boolean;
    }
  | { readonly kind: 'exact' };

/**
 * What the draft's algorithms read: the client reads it from a CombinedTreeProof
 * ({@link ProofReader}); the builder answers the same calls from its store and so produces the
 * proof (both run the very same algorithm code, so they agree on every element and its order).
 */
export interface ProofSource {
  /** The timestamp of `position` (retained, already read, or the next element). */
  timestamp(position: number): number;
  /**
   * The lookups of `versions` (a ladder, in ladder order) in the prefix tree of entry `position`:
   * one inclusion result per version looked up (a prefix of `versions` allowed by `spec`).
   */
  ladder(position: number, versions: readonly number[], keys: (v: number) => LadderKey, spec: LadderSpec): boolean[];
  /** Whether the answer has nothing more to give (§8.3: the log may truncate owner monitoring). */
  readonly exhausted: boolean;
}

/**
 * Hands out a CombinedTreeProof's elements in the order an algorithm asks for them (§12.3).
 *
 * @example
 * const r = new ProofReader(proof); r.timestamp(3); r.prefixProof(3); r.finish();
 */
export class ProofReader implements ProofSource {
  private ts = 0;
  private proofs = 0;
  private roots = 0;
  private readonly timestamps = new Map<number, number>();
  private readonly supplied = new Set<number>();
  private readonly established = new Map<number, Uint8Array>();
  private readonly committed = new Map<number, Uint8Array>();

  constructor(
    readonly proof: CombinedTreeProof,
    private readonly retained: RetainedEntries = { timestamps: new Map() },
  ) {
    for (const [p, t] of retained.timestamps) this.timestamps.set(p, t);
  }

  /** The timestamp of `position`: retained or already read, else the next element. */
  timestamp(position: number): number {
    const known = this.timestamps.get(position);
    if (known !== undefined) return known;
    const t = this.proof.timestamps[this.ts];
    if (t === undefined) bad(`the proof has no timestamp left for log entry ${position}`);
    this.ts++;
    for (const [p, other] of this.timestamps) {
      if (p < position ? other > t : other < t) bad(`timestamp of entry ${position} is not monotonic against entry ${p}`);
    }
    this.timestamps.set(position, t);
    this.supplied.add(position);
    return t;
  }

  /** The next prefix proof, which belongs to `position`. */
  prefixProof(position: number): PrefixProof {
    const p = this.proof.prefixProofs[this.proofs];
    if (p === undefined) bad(`the proof has no prefix proof left for log entry ${position}`);
    this.proofs++;
    return p;
  }

  /** Reads the next prefix proof for `position` as the lookups of `versions` (see {@link ProofSource}). */
  ladder(position: number, versions: readonly number[], keys: (v: number) => LadderKey, spec: LadderSpec): boolean[] {
    const proof = this.prefixProof(position);
    const n = proof.results.length;
    if (spec.kind === 'exact' ? n !== versions.length : n > versions.length || n === 0) {
      bad(`entry ${position}: ${n} lookups for a ladder of ${versions.length}`);
    }
    const results = proof.results.map((r) => r.type === 'inclusion');
    const lookups: PrefixLookup[] = results.map((inc, i) => {
      const k = keys(versions[i]!);
      if (!inc) return { vrfOutput: k.vrfOutput };
      if (!k.commitment) {
        // The owner holds no commitment for a version it never added: the claim itself is the alarm.
        if (spec.kind === 'search' && spec.owner && versions[i]! > spec.target) {
          throw new DirectoryError('KT_UNEXPECTED_VERSION', `entry ${position} shows version ${versions[i]}, which the owner did not add`);
        }
        bad(`entry ${position}: version ${versions[i]} is included but no commitment was given`);
      }
      return { vrfOutput: k.vrfOutput, commitment: k.commitment };
    });
    this.establish(position, evaluatePrefixProof(lookups, proof));
    results.forEach((inc, i) => {
      if (inc) this.committed.set(versions[i]!, lookups[i]!.commitment!);
    });
    return results;
  }

  /**
   * The commitments a prefix proof of this answer showed included, by version: the only carried
   * commitments the answer authenticates (a carried commitment no lookup used proves nothing).
   */
  verifiedCommitments(): Map<number, Uint8Array> {
    return new Map(this.committed);
  }

  /** Records the prefix root a proof for `position` evaluated to (§12.3 agreement rules). */
  establish(position: number, root: Uint8Array): void {
    const kept = this.retained.prefixRoots?.get(position);
    if (kept && !equalBytes(kept, root)) bad(`the proof for entry ${position} contradicts the retained prefix root`);
    const first = this.established.get(position);
    if (first && !equalBytes(first, root)) bad(`two proofs for entry ${position} give different prefix roots`);
    this.established.set(position, root);
  }

  /** Whether every timestamp and prefix proof was read (§8.3's stop condition). */
  get exhausted(): boolean {
    return this.ts >= this.proof.timestamps.length && this.proofs >= this.proof.prefixProofs.length;
  }

  /** Reads `prefix_roots` for the entries with a supplied timestamp and no proof, left to right. */
  readOwedRoots(): void {
    for (const p of [...this.supplied].sort((a, b) => a - b)) {
      if (this.established.has(p)) continue;
      const r = this.proof.prefixRoots[this.roots];
      if (r === undefined) bad(`the proof has no prefix root left for log entry ${p}`);
      this.roots++;
      this.establish(p, r);
    }
  }

  /** Requires every array consumed exactly. */
  finish(): void {
    if (this.ts !== this.proof.timestamps.length) bad(`${this.proof.timestamps.length - this.ts} timestamps left unread`);
    if (this.proofs !== this.proof.prefixProofs.length) bad(`${this.proof.prefixProofs.length - this.proofs} prefix proofs left unread`);
    if (this.roots !== this.proof.prefixRoots.length) bad(`${this.proof.prefixRoots.length - this.roots} prefix roots left unread`);
  }

  /** The log leaves the inclusion proof covers: entries whose timestamp was supplied, ascending. */
  leaves(): { position: number; timestamp: number; prefixRoot: Uint8Array }[] {
    return [...this.supplied]
      .sort((a, b) => a - b)
      .map((p) => {
        const prefixRoot = this.established.get(p);
        if (!prefixRoot) bad(`no prefix root for log entry ${p}`);
        return { position: p, timestamp: this.timestamps.get(p)!, prefixRoot };
      });
  }

  /** Every timestamp known (retained or read), by position. */
  knownTimestamps(): Map<number, number> {
    return new Map(this.timestamps);
  }

  /** Every prefix root established so far, by position. */
  establishedRoots(): Map<number, Uint8Array> {
    return new Map(this.established);
  }

  /** Every prefix root established, by position. */
  rootOf(position: number): Uint8Array | undefined {
    return this.established.get(position);
  }
}

/** A version's search key, and its commitment when the response carried (or the user computed) one. */
export interface LadderKey {
  readonly vrfOutput: Uint8Array;
  readonly commitment?: Uint8Array;
}

/** What a ladder at one entry established. */
class Established {
  private readonly entries: { at: number; included: number[]; absent: number[] }[] = [];

  setsFor(position: number): { left: number[]; right: number[] } {
    const left = new Set<number>();
    const right = new Set<number>();
    for (const e of this.entries) {
      if (e.at < position) e.included.forEach((v) => left.add(v));
      if (e.at > position) e.absent.forEach((v) => right.add(v));
    }
    return { left: [...left], right: [...right] };
  }

  record(at: number, versions: readonly number[], results: readonly boolean[]): void {
    this.entries.push({ at, included: versions.filter((_, i) => results[i]), absent: versions.filter((_, i) => !results[i]) });
  }
}

/** Runs one search ladder at `position` through the source; returns the versions looked up and their results. */
function ladderAt(
  source: ProofSource,
  position: number,
  ladder: readonly number[],
  keys: (v: number) => LadderKey,
  target: number,
  known: { left: number[]; right: number[] },
): { used: number[]; results: boolean[] } {
  const results = source.ladder(position, ladder, keys, { kind: 'search', target, left: known.left, right: known.right });
  return { used: ladder.slice(0, results.length), results };
}

/** The outcome of a greatest-version search (§6.3). */
export type GreatestOutcome =
  | { readonly kind: 'found'; readonly start: number; readonly terminal: number }
  | { readonly kind: 'absent'; readonly start: number };

/**
 * §6.3: from the rightmost distinguished entry (or the root) along the frontier to the rightmost
 * entry, a search ladder for `claimed` at each; no entry may show a version above it, and the
 * rightmost must show it as the greatest. A claim of 0 that the rightmost entry proves absent is
 * a label with no versions (`absent`).
 */
export function greatestVersionSearch(size: number, window: number, claimed: number, keys: (v: number) => LadderKey, reader: ProofSource): GreatestOutcome {
  const start = rightmostDistinguished(size, window, (p) => reader.timestamp(p)) ?? ibst.root(size);
  const last = size - 1;
  const est = new Established();
  let terminal: number | undefined;
  for (let cur = start; ; cur = ibst.right(cur, size)) {
    reader.timestamp(cur);
    const { left, right } = est.setsFor(cur);
    const { used, results } = ladderAt(reader, cur, searchBinaryLadder(claimed, claimed, left, right), keys, claimed, { left, right });
    const verdict = interpretSearchLadder(used, results, claimed, { included: left, absent: right });
    est.record(cur, used, results);
    if (verdict === 1) bad(`entry ${cur} holds a version above the claimed greatest ${claimed}`);
    if (cur === last) {
      if (verdict === 0) {
        terminal ??= cur;
        return { kind: 'found', start, terminal };
      }
      if (claimed === 0) return { kind: 'absent', start };
      return bad(`the rightmost entry does not show ${claimed} as the greatest version`);
    }
    if (verdict === 0) terminal ??= cur;
  }
}

/** The outcome of a fixed-version search (§7.2). */
export type FixedOutcome = { readonly kind: 'found'; readonly terminal: number } | { readonly kind: 'absent' } | { readonly kind: 'expired' };

/** Whether an entry with `timestamp` has expired against the rightmost entry (§7.1); 0 = no lifetime. */
export function isExpired(lifetime: number | undefined, timestamp: number, rightmost: number): boolean {
  return lifetime !== undefined && lifetime > 0 && rightmost >= timestamp && rightmost - timestamp >= lifetime;
}

/**
 * §7.2: a binary search over the implicit tree for the entry where `target` became the greatest
 * version, skipping expired entries; with a final single lookup at the identified entry (step 6.3).
 */
export function fixedVersionSearch(size: number, lifetime: number | undefined, window: number, target: number, keys: (v: number) => LadderKey, reader: ProofSource): FixedOutcome {
  const rightmost = reader.timestamp(size - 1);
  const est = new Established();
  let metExpired = false;
  let terminal: number | undefined;
  const vouchers: number[] = [];
  let leftTs = 0;
  let rightTs = rightmost;
  let cur = ibst.root(size);
  for (;;) {
    const t = reader.timestamp(cur);
    if (isExpired(lifetime, t, rightmost)) {
      metExpired = true;
      if (!ibst.hasRight(cur, size)) break;
      leftTs = t;
      cur = ibst.right(cur, size);
      continue;
    }
    if (isDistinguished(window, leftTs, rightTs)) vouchers.push(cur);
    const { left, right } = est.setsFor(cur);
    const { used, results } = ladderAt(reader, cur, searchBinaryLadder(target, target, left, right), keys, target, { left, right });
    const verdict = interpretSearchLadder(used, results, target, { included: left, absent: right });
    est.record(cur, used, results);
    if (verdict !== -1 && (terminal === undefined || cur < terminal)) terminal = cur;
    if (verdict === 0) {
      if (!metExpired || vouchers.some((v) => v <= cur)) return { kind: 'found', terminal: cur };
      return { kind: 'expired' };
    }
    if (verdict === -1) {
      if (!ibst.hasRight(cur, size)) break;
      leftTs = t;
      cur = ibst.right(cur, size);
    } else {
      if (ibst.isLeaf(cur)) break;
      rightTs = t;
      cur = ibst.left(cur);
    }
  }
  if (terminal === undefined) return { kind: 'absent' };
  const id = terminal;
  if (metExpired && !vouchers.some((v) => v < id)) return { kind: 'expired' };
  const [included] = reader.ladder(id, [target], keys, { kind: 'exact' });
  return included ? { kind: 'found', terminal: id } : { kind: 'absent' };
}
