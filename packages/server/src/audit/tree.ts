/**
 * Merkle tree bookkeeping for the audit log, on top of `@keyward/tlog`'s
 * RFC 9162 hashes and proof shapes:
 *
 * - {@link MerkleCache} keeps every level of the tree (perfect aligned
 *   subtrees), so a root, an inclusion proof or a consistency proof costs
 *   O(log² n) hashes instead of rehashing all n leaves. Memory: about 2 × 32
 *   bytes per event (64 MB per million events).
 * - {@link CompactRange} folds a run of leaves and aligned subtrees into a
 *   root in O(log n) memory; the offline verifier uses it, also for exports
 *   that cover only part of the log.
 */
import { consistencyRanges, emptyRoot, inclusionRanges, nodeHash, type SubtreeRange } from '@keyward/tlog';
import { check } from './errors.js';

const isPow2 = (n: number): boolean => n >= 1 && Number.isInteger(Math.log2(n)) && 2 ** Math.log2(n) === n;

/** The largest power of two strictly below n (n ≥ 2). */
function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/**
 * [start, end) cut into aligned perfect subtrees, left to right, each as large
 * as alignment allows: the nodes a verifier is given for the part of a tree it
 * does not see. For start 0 these are the frontier of `end` (largest first).
 *
 * @example
 * alignedRanges(0, 7) // [{0,4}, {4,6}, {6,7}]
 * alignedRanges(5, 8) // [{5,6}, {6,8}]
 */
export function alignedRanges(start: number, end: number): SubtreeRange[] {
  check(Number.isSafeInteger(start) && Number.isSafeInteger(end) && 0 <= start && start <= end, 'need 0 ≤ start ≤ end');
  const out: SubtreeRange[] = [];
  let p = start;
  while (p < end) {
    let w = 1;
    while ((p === 0 || p % (w * 2) === 0) && p + w * 2 <= end) w *= 2;
    out.push({ start: p, end: p + w });
    p += w;
  }
  return out;
}

/**
 * Every level of the tree of the leaves appended so far.
 *
 * @example
 * const t = new MerkleCache();
 * t.append(leafHash(bytes));
 * t.root(t.size); t.inclusionProof(0, t.size);
 */
export class MerkleCache {
  /** levels[h][i] = MTH of leaves [i·2^h, (i+1)·2^h). */
  readonly #levels: Uint8Array[][] = [[]];

  /** Number of leaves. */
  get size(): number {
    return this.#levels[0]!.length;
  }

  /** Appends a 32-byte leaf hash. */
  append(leaf: Uint8Array): void {
    check(leaf instanceof Uint8Array && leaf.length === 32, 'a leaf hash is 32 bytes');
    let h = 0;
    this.#levels[0]!.push(leaf.slice());
    let i = this.#levels[0]!.length - 1;
    while (i % 2 === 1) {
      const level = this.#levels[h]!;
      const parent = nodeHash(level[i - 1]!, level[i]!);
      h += 1;
      (this.#levels[h] ??= []).push(parent);
      i = (i - 1) / 2;
    }
  }

  /** The leaf hash at `index`. */
  leaf(index: number): Uint8Array {
    check(Number.isSafeInteger(index) && index >= 0 && index < this.size, `no leaf ${index} in a tree of ${this.size}`);
    return this.#levels[0]![index]!.slice();
  }

  /** MTH of the leaves [start, end), end ≤ size. */
  rangeHash(start: number, end: number): Uint8Array {
    check(Number.isSafeInteger(start) && Number.isSafeInteger(end) && 0 <= start && start <= end && end <= this.size, `range [${start}, ${end}) is outside the ${this.size} leaves`);
    return this.#mth(start, end);
  }

  #mth(start: number, end: number): Uint8Array {
    const n = end - start;
    if (n === 0) return emptyRoot();
    if (isPow2(n) && start % n === 0) return this.#levels[Math.log2(n)]![start / n]!.slice();
    const k = split(n);
    return nodeHash(this.#mth(start, start + k), this.#mth(start + k, end));
  }

  /** The RFC 9162 root of the tree of the first `size` leaves. */
  root(size: number): Uint8Array {
    return this.rangeHash(0, size);
  }

  /** The RFC 9162 inclusion proof of leaf `index` in the tree of `size` leaves. */
  inclusionProof(index: number, size: number): Uint8Array[] {
    check(Number.isSafeInteger(size) && size <= this.size, `tree size ${size} exceeds the ${this.size} leaves`);
    return inclusionRanges(index, size).map((r) => this.#mth(r.start, r.end));
  }

  /** The RFC 9162 consistency proof from size m to size n (0 < m ≤ n ≤ size). */
  consistencyProof(m: number, n: number): Uint8Array[] {
    check(Number.isSafeInteger(n) && n <= this.size, `tree size ${n} exceeds the ${this.size} leaves`);
    return consistencyRanges(m, n).map((r) => this.#mth(r.start, r.end));
  }
}

/**
 * The compact range [0, size): a stack of perfect subtree hashes, largest
 * first, to which leaves or aligned subtrees are added on the right.
 *
 * @example
 * const c = new CompactRange();
 * for (const leaf of leaves) c.pushLeaf(leaf);
 * c.root(); // = rootFromLeaves(leaves)
 */
export class CompactRange {
  readonly #stack: { width: number; hash: Uint8Array }[] = [];
  #size = 0;

  get size(): number {
    return this.#size;
  }

  pushLeaf(leaf: Uint8Array): void {
    this.pushSubtree(1, leaf);
  }

  /** Adds the hash of the perfect subtree [size, size + width); it must be aligned (size a multiple of width). */
  pushSubtree(width: number, hash: Uint8Array): void {
    check(isPow2(width) && this.#size % width === 0, `a subtree of ${width} leaves cannot start at ${this.#size}`);
    check(hash instanceof Uint8Array && hash.length === 32, 'a subtree hash is 32 bytes');
    let w = width;
    let h: Uint8Array = hash.slice();
    this.#size += width;
    // Merge equal-width neighbours, like binary addition.
    while (this.#stack.length > 0 && this.#stack[this.#stack.length - 1]!.width === w) {
      h = nodeHash(this.#stack.pop()!.hash, h);
      w *= 2;
    }
    this.#stack.push({ width: w, hash: h });
  }

  /** MTH of [0, size): the stack folded from the right. */
  root(): Uint8Array {
    if (this.#stack.length === 0) return emptyRoot();
    let r: Uint8Array = this.#stack[this.#stack.length - 1]!.hash;
    for (let i = this.#stack.length - 2; i >= 0; i--) r = nodeHash(this.#stack[i]!.hash, r);
    return r.slice();
  }
}
