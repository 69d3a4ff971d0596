/**
 * The KEYTRANS log tree (draft §3.2, §11.8, §12.1).
 *
 * Its *shape* is RFC 9162's: a left-balanced binary tree whose left subtree
 * holds the largest power of two of leaves strictly below the size. Its
 * *hashing* is not: a leaf's value is `SHA-256(LogEntry)` with no prefix, and a
 * parent's value is `SHA-256(hc(left) ‖ hc(right))` where `hc(n)` is `0x00 ‖ v`
 * for a leaf child and `0x01 ‖ v` for a parent child. So `@keyward/tlog`'s
 * RFC 9162 hashes and proofs cannot be reused as they are; only the shape rule
 * and the full-subtree decomposition coincide.
 *
 * Proofs are §12.1 *batch* proofs: one list of balanced-subtree head values,
 * left to right, that covers inclusion of any set of leaves and consistency
 * with any earlier tree size whose full-subtree heads the verifier retained.
 * A retained head is used only where nothing inside it is proven; otherwise it
 * is recomputed and must match (the §12.1 MUST).
 */
import { abytes, auint, equalBytes } from './bytes.js';
import { DirectoryError, check } from './errors.js';
import { encodeLogEntry, type LogEntry } from './structs.js';
import { NH, hash } from './suite.js';

/** A balanced subtree of the log: leaves `[start, start + len)`. */
export interface LogRange {
  readonly start: number;
  readonly len: number;
}

/** The largest power of two strictly below `n` (n ≥ 2). */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function isPowerOfTwo(n: number): boolean {
  return n >= 1 && Number.isInteger(Math.log2(n)) && 2 ** Math.log2(n) === n;
}

/**
 * The value of a log leaf: SHA-256 of the encoded LogEntry.
 *
 * @example
 * const v = logLeafValue({ timestamp: 1700000000000, prefixTree: root });
 */
export function logLeafValue(entry: LogEntry): Uint8Array {
  return hash(encodeLogEntry(entry));
}

/**
 * The value of a log parent from its children's values and whether each is a leaf.
 *
 * @example
 * logParentValue(a, true, b, true)
 */
export function logParentValue(left: Uint8Array, leftIsLeaf: boolean, right: Uint8Array, rightIsLeaf: boolean): Uint8Array {
  return hash(new Uint8Array([leftIsLeaf ? 0 : 1]), left, new Uint8Array([rightIsLeaf ? 0 : 1]), right);
}

/** A source of subtree values for the prover: the value of the balanced or unbalanced range. */
export type SubtreeSource = (start: number, len: number) => Uint8Array;

/**
 * Recursive subtree value over an in-memory list of leaf values.
 *
 * @example
 * const root = logSubtreeValue(leaves, 0, leaves.length);
 */
export function logSubtreeValue(leaves: readonly Uint8Array[], start: number, len: number): Uint8Array {
  if (len === 1) {
    const v = leaves[start];
    check(v !== undefined, `no leaf ${start}`);
    return v;
  }
  const k = splitPoint(len);
  return logParentValue(logSubtreeValue(leaves, start, k), k === 1, logSubtreeValue(leaves, start + k, len - k), len - k === 1);
}

/**
 * The root of a log with the given leaf values (size ≥ 1).
 *
 * @example
 * const root = logRoot(leafValues);
 */
export function logRoot(leaves: readonly Uint8Array[]): Uint8Array {
  check(leaves.length >= 1, 'a log root needs at least one leaf');
  return logSubtreeValue(leaves, 0, leaves.length);
}

/**
 * The full subtrees of a log of `size` entries, left to right (§4.2): one per set bit of `size`.
 *
 * @example
 * fullSubtrees(7) // [{start:0,len:4},{start:4,len:2},{start:6,len:1}]
 */
export function fullSubtrees(size: number): LogRange[] {
  auint(size, 'size');
  check(size >= 1, 'size must be at least 1');
  const out: LogRange[] = [];
  let start = 0;
  let rest = size;
  while (rest > 0) {
    let len = 1;
    while (len * 2 <= rest) len *= 2;
    out.push({ start, len });
    start += len;
    rest -= len;
  }
  return out;
}

/**
 * The flat node index of a balanced subtree (leaf i is node 2i).
 *
 * @example
 * nodeIndex({ start: 0, len: 4 }) // 3
 */
export function nodeIndex(r: LogRange): number {
  return 2 * r.start + r.len - 1;
}

/** A verifier's retained view of an earlier tree size: its full-subtree heads, left to right. */
export interface RetainedView {
  readonly size: number;
  readonly heads: readonly Uint8Array[];
}

type Step = { kind: 'retained'; value: Uint8Array } | { kind: 'supplied' } | { kind: 'leaf'; check?: Uint8Array } | { kind: 'descend'; check?: Uint8Array };

class Plan {
  private readonly retained: { range: LogRange; value: Uint8Array }[];

  constructor(
    readonly size: number,
    private readonly leaves: readonly number[],
    retained: { size: number; heads?: readonly Uint8Array[] } | undefined,
  ) {
    auint(size, 'tree size');
    if (size < 1) throw new DirectoryError('KT_BAD_LOG_PROOF', 'tree size 0 has no proofs');
    for (let i = 0; i < leaves.length; i++) {
      auint(leaves[i], 'leaf index');
      if (leaves[i]! >= size) throw new DirectoryError('KT_BAD_LOG_PROOF', `leaf ${leaves[i]} is beyond a log of ${size}`);
      if (i > 0 && leaves[i - 1]! >= leaves[i]!) throw new DirectoryError('KT_BAD_LOG_PROOF', 'leaf indices must be sorted and distinct');
    }
    this.retained = [];
    if (retained !== undefined) {
      auint(retained.size, 'retained size');
      if (retained.size < 1 || retained.size > size) throw new DirectoryError('KT_BAD_LOG_PROOF', `retained size ${retained.size} is not in [1, ${size}]`);
      const ranges = fullSubtrees(retained.size);
      const heads = retained.heads ?? ranges.map(() => new Uint8Array(NH));
      if (heads.length !== ranges.length) throw new DirectoryError('KT_BAD_LOG_PROOF', `retained size ${retained.size} needs ${ranges.length} heads, got ${heads.length}`);
      ranges.forEach((range, i) => this.retained.push({ range, value: heads[i]! }));
    }
  }

  private provenInside(start: number, len: number): boolean {
    return this.leaves.some((i) => i >= start && i < start + len);
  }

  private retainedHead(start: number, len: number): Uint8Array | undefined {
    return this.retained.find((r) => r.range.start === start && r.range.len === len)?.value;
  }

  private knowsInterior(start: number, len: number): boolean {
    if (this.provenInside(start, len)) return true;
    return this.retained.some(
      (r) => r.range.start >= start && r.range.start + r.range.len <= start + len && !(r.range.start === start && r.range.len === len),
    );
  }

  step(start: number, len: number): Step {
    if (!this.knowsInterior(start, len)) {
      const value = this.retainedHead(start, len);
      if (value) return { kind: 'retained', value };
      if (isPowerOfTwo(len)) return { kind: 'supplied' };
      return { kind: 'descend' };
    }
    const c = this.retainedHead(start, len);
    if (len === 1) return c ? { kind: 'leaf', check: c } : { kind: 'leaf' };
    return c ? { kind: 'descend', check: c } : { kind: 'descend' };
  }

  walk(start: number, len: number, emit: (r: LogRange) => void): void {
    const s = this.step(start, len);
    if (s.kind === 'supplied') emit({ start, len });
    else if (s.kind === 'descend') {
      const k = splitPoint(len);
      this.walk(start, k, emit);
      this.walk(start + k, len - k, emit);
    }
  }
}

/**
 * The ordered balanced subtrees a §12.1 batch proof carries for proving `leaves`
 * in a log of `size`, optionally against a retained view of `retainedSize`.
 *
 * @example
 * batchCopath(7, [2]).map(nodeIndex)
 */
export function batchCopath(size: number, leaves: readonly number[], retainedSize?: number): LogRange[] {
  const plan = new Plan(size, leaves, retainedSize === undefined ? undefined : { size: retainedSize });
  const out: LogRange[] = [];
  plan.walk(0, size, (r) => out.push(r));
  return out;
}

/**
 * Builds a §12.1 batch proof: the head values of {@link batchCopath}, from a subtree source.
 *
 * @example
 * const elements = proveBatch((s, l) => logSubtreeValue(leaves, s, l), leaves.length, [2]);
 */
export function proveBatch(source: SubtreeSource, size: number, leaves: readonly number[], retainedSize?: number): Uint8Array[] {
  return batchCopath(size, leaves, retainedSize).map((r) => source(r.start, r.len));
}

/**
 * Recomputes the root a §12.1 batch proof implies for `leaves` (sorted `[index, value]` pairs),
 * checking retained heads where they become recomputable. Throws `KT_BAD_LOG_PROOF` on any
 * shape error or retained-head mismatch.
 *
 * @example
 * const root = evaluateBatch(7, [[2, v2]], elements);
 */
export function evaluateBatch(
  size: number,
  leaves: readonly (readonly [number, Uint8Array])[],
  elements: readonly Uint8Array[],
  retained?: RetainedView,
  observe?: (start: number, len: number, value: Uint8Array) => void,
): Uint8Array {
  const plan = new Plan(
    size,
    leaves.map(([i]) => i),
    retained,
  );
  for (const [, v] of leaves) abytes(v, 'leaf value', NH);
  for (const e of elements) if (!(e instanceof Uint8Array) || e.length !== NH) throw new DirectoryError('KT_BAD_LOG_PROOF', 'proof element is not 32 bytes');
  let needed = 0;
  plan.walk(0, size, () => needed++);
  if (needed !== elements.length) throw new DirectoryError('KT_BAD_LOG_PROOF', `proof needs ${needed} elements, got ${elements.length}`);
  let next = 0;
  const value = (start: number, len: number): Uint8Array => {
    const v = nodeValue(start, len);
    observe?.(start, len, v);
    return v;
  };
  const nodeValue = (start: number, len: number): Uint8Array => {
    const s = plan.step(start, len);
    switch (s.kind) {
      case 'retained':
        return s.value;
      case 'supplied':
        return elements[next++]!;
      case 'leaf': {
        const v = leaves.find(([i]) => i === start)![1];
        // A proven leaf that is also a retained head must be the retained value (§12.1).
        if (s.check && !equalBytes(s.check, v)) throw new DirectoryError('KT_BAD_LOG_PROOF', `retained head of [${start}, ${start + 1}) does not match the proof`);
        return v;
      }
      case 'descend': {
        const k = splitPoint(len);
        const v = logParentValue(value(start, k), k === 1, value(start + k, len - k), len - k === 1);
        if (s.check && !equalBytes(s.check, v)) {
          throw new DirectoryError('KT_BAD_LOG_PROOF', `retained head of [${start}, ${start + len}) does not match the proof`);
        }
        return v;
      }
    }
  };
  return value(0, size);
}

/**
 * Verifies a §12.1 batch proof against `root`; throws `KT_BAD_LOG_PROOF` otherwise.
 *
 * @example
 * verifyBatch(7, [[2, v2]], elements, root);
 */
export function verifyBatch(
  size: number,
  leaves: readonly (readonly [number, Uint8Array])[],
  elements: readonly Uint8Array[],
  root: Uint8Array,
  retained?: RetainedView,
): void {
  abytes(root, 'root', NH);
  if (!equalBytes(evaluateBatch(size, leaves, elements, retained), root)) {
    throw new DirectoryError('KT_BAD_LOG_PROOF', 'the proof does not lead to the expected root');
  }
}

/**
 * The heads of a log's full subtrees, grown one leaf at a time (what a §15.2 auditor or a
 * monitoring client keeps instead of the leaves).
 *
 * @example
 * const f = new LogFrontier(); f.append(leafValue); f.root();
 */
export class LogFrontier {
  private readonly heads: { len: number; value: Uint8Array }[] = [];
  private count = 0;

  /**
   * A frontier for a log of `size` leaves from its full-subtree heads (left to right).
   *
   * @example
   * const f = LogFrontier.fromHeads(7, heads);
   */
  static fromHeads(size: number, heads: readonly Uint8Array[]): LogFrontier {
    const ranges = size === 0 ? [] : fullSubtrees(size);
    check(ranges.length === heads.length, `a log of ${size} has ${ranges.length} full subtrees, got ${heads.length}`);
    const f = new LogFrontier();
    ranges.forEach((r, i) => {
      abytes(heads[i], 'subtree head', NH);
      f.heads.push({ len: r.len, value: heads[i] });
    });
    f.count = size;
    return f;
  }

  /** Number of leaves appended. */
  get size(): number {
    return this.count;
  }

  /** The full-subtree heads, left to right. */
  get fullSubtreeHeads(): Uint8Array[] {
    return this.heads.map((h) => h.value);
  }

  /** Appends one leaf value, merging equal-sized heads (each merge is a binary carry). */
  append(leaf: Uint8Array): void {
    abytes(leaf, 'leaf value', NH);
    let cur = { len: 1, value: leaf };
    while (this.heads.length > 0 && this.heads[this.heads.length - 1]!.len === cur.len) {
      const left = this.heads.pop()!;
      cur = { len: cur.len * 2, value: logParentValue(left.value, left.len === 1, cur.value, cur.len === 1) };
    }
    this.heads.push(cur);
    this.count++;
  }

  /** The root: the heads folded from the right. */
  root(): Uint8Array {
    check(this.heads.length > 0, 'an empty log has no root');
    let acc = this.heads[this.heads.length - 1]!;
    let accIsLeaf = acc.len === 1;
    let value = acc.value;
    for (let i = this.heads.length - 2; i >= 0; i--) {
      acc = this.heads[i]!;
      value = logParentValue(acc.value, acc.len === 1, value, accIsLeaf);
      accIsLeaf = false;
    }
    return value;
  }
}

