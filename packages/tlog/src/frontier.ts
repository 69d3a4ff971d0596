/**
 * A compact Merkle frontier: the roots of the perfect subtrees that make up a
 * tree of `size` leaves (the "compact range" [0, size)), largest first. It is
 * all a log writer needs to append leaves and compute the tree head, and it is
 * what the keyholder keeps so that it extends the audit log itself and never
 * signs a fork.
 *
 * For size n = 2^a + 2^b + … (a > b > …) the frontier holds MTH of
 * [0, 2^a), [2^a, 2^a + 2^b), …; the tree head is
 * H(f0, H(f1, … H(f(k-2), f(k-1)))) with H = nodeHash, which is exactly
 * RFC 9162 MTH because MTH splits at the largest power of two below n.
 */
import { abytes, ahash, auint, equalBytes, HASH_LENGTH, isList, readU64, u64be } from './bytes.js';
import { TlogError, check, isTlogError } from './errors.js';
import { consistencyRanges, emptyRoot, nodeHash, verifyConsistency, type SubtreeRange } from './merkle.js';

/** Format byte of {@link Frontier.toBytes}. */
const FRONTIER_FORMAT = 0x01;

/**
 * What a frontier could do towards a consistency proof: either the proof, or
 * the subtrees (in proof order) whose hashes it does not have. Pass those
 * hashes, in that order, as `extra` to try again.
 */
export type FrontierConsistency =
  | { readonly ok: true; readonly proof: Uint8Array[] }
  | { readonly ok: false; readonly needed: SubtreeRange[] };

/** The ranges of the perfect subtrees of a tree of `size` leaves, largest first. */
function frontierRanges(size: number): SubtreeRange[] {
  const out: SubtreeRange[] = [];
  let p = 1;
  while (p * 2 <= size) p *= 2;
  let start = 0;
  let rest = size;
  for (; p >= 1 && rest > 0; p /= 2) {
    if (rest >= p) {
      out.push({ start, end: start + p });
      start += p;
      rest -= p;
    }
  }
  return out;
}

/** Fold of nodes[i..] from the right: the MTH of the range they cover together. */
function foldFrom(nodes: readonly Uint8Array[], i: number): Uint8Array {
  let r = nodes[nodes.length - 1]!;
  for (let j = nodes.length - 2; j >= i; j--) r = nodeHash(nodes[j]!, r);
  return r.slice();
}

/**
 * A compact Merkle frontier (see the module comment).
 *
 * @example
 * const f = Frontier.empty();
 * for (const e of events) f.append(leafHash(e));
 * f.root(); // equals rootFromLeaves(events.map(leafHash))
 */
export class Frontier {
  #size: number;
  #nodes: Uint8Array[];

  private constructor(size: number, nodes: Uint8Array[]) {
    this.#size = size;
    this.#nodes = nodes;
  }

  /**
   * The frontier of the empty tree.
   *
   * @example
   * const f = Frontier.empty(); // f.size === 0
   */
  static empty(): Frontier {
    return new Frontier(0, []);
  }

  /**
   * The frontier of the tree of the given leaf hashes.
   *
   * @example
   * const f = Frontier.fromLeaves(leaves);
   */
  static fromLeaves(leafHashes: readonly Uint8Array[]): Frontier {
    check(isList(leafHashes), 'leafHashes must be an array of 32-byte hashes');
    const f = Frontier.empty();
    for (const h of leafHashes) f.append(h);
    return f;
  }

  /**
   * Rebuilds a frontier from subtree hashes supplied by an untrusted party and
   * checks them against a tree head the caller trusts (for the keyholder: its
   * own last signed checkpoint). Throws `TLOG_BAD_PROOF` when the number of
   * hashes is wrong for `size` or they do not hash to `root`; forging a set
   * that does would need a SHA-256 collision.
   *
   * @example
   * const f = Frontier.fromProof({ size: cp.size, root: cp.root, hashes: await api.frontier(cp.size) });
   */
  static fromProof(input: { readonly size: number; readonly root: Uint8Array; readonly hashes: readonly Uint8Array[] }): Frontier {
    const { size, root, hashes } = input;
    auint(size, 'size');
    ahash(root, 'root');
    check(isList(hashes), 'hashes must be an array of 32-byte hashes');
    hashes.forEach((h, i) => ahash(h, `hashes[${i}]`));
    const want = frontierRanges(size).length;
    if (hashes.length !== want) {
      throw new TlogError('TLOG_BAD_PROOF', `a frontier of size ${size} has ${want} hashes, got ${hashes.length}`);
    }
    const f = new Frontier(size, hashes.map((h) => h.slice()));
    if (!equalBytes(f.root(), root)) {
      throw new TlogError('TLOG_BAD_PROOF', `the frontier hashes do not hash to the root of the tree of size ${size}`);
    }
    return f;
  }

  /**
   * Decodes {@link Frontier.toBytes}. With `expectedRoot`, also checks the
   * frontier against it (`TLOG_BAD_PROOF` on mismatch).
   *
   * @example
   * const f = Frontier.fromBytes(stored, lastCheckpoint.root);
   */
  static fromBytes(bytes: Uint8Array, expectedRoot?: Uint8Array): Frontier {
    abytes(bytes, 'frontier bytes');
    check(bytes.length >= 9 && bytes[0] === FRONTIER_FORMAT, 'malformed frontier encoding (format byte or length)');
    const size64 = readU64(bytes, 1);
    check(size64 <= BigInt(Number.MAX_SAFE_INTEGER), 'malformed frontier encoding (size too large)');
    const size = Number(size64);
    const count = frontierRanges(size).length;
    check(bytes.length === 9 + count * HASH_LENGTH, `malformed frontier encoding (size ${size} needs ${count} hashes)`);
    const nodes: Uint8Array[] = [];
    for (let i = 0; i < count; i++) nodes.push(bytes.slice(9 + i * HASH_LENGTH, 9 + (i + 1) * HASH_LENGTH));
    const f = new Frontier(size, nodes);
    if (expectedRoot !== undefined) {
      ahash(expectedRoot, 'expectedRoot');
      if (!equalBytes(f.root(), expectedRoot)) throw new TlogError('TLOG_BAD_PROOF', 'the stored frontier does not match the expected root');
    }
    return f;
  }

  /** Number of leaves in the tree. */
  get size(): number {
    return this.#size;
  }

  /** Copies of the subtree hashes, largest subtree first. */
  get hashes(): Uint8Array[] {
    return this.#nodes.map((h) => h.slice());
  }

  /**
   * The leaf ranges of the subtree hashes, largest first.
   *
   * @example
   * Frontier.fromLeaves(sixLeaves).ranges() // [{start:0,end:4}, {start:4,end:6}]
   */
  ranges(): SubtreeRange[] {
    return frontierRanges(this.#size);
  }

  /**
   * Appends one leaf hash (a 32-byte `leafHash(data)`) and returns this
   * frontier. Use {@link Frontier.clone} first to keep the old state.
   *
   * @example
   * f.append(leafHash(event));
   */
  append(leafHash: Uint8Array): this {
    ahash(leafHash, 'leafHash');
    check(this.#size < Number.MAX_SAFE_INTEGER, 'the tree is full (2^53 - 1 leaves)');
    let h: Uint8Array = leafHash.slice();
    let s = this.#size;
    // Each trailing 1 bit of the old size is a subtree of the same height as
    // the carry; merge them, like binary addition.
    while (s % 2 === 1) {
      h = nodeHash(this.#nodes.pop()!, h);
      s = Math.floor(s / 2);
    }
    this.#nodes.push(h);
    this.#size += 1;
    return this;
  }

  /**
   * The tree head MTH of the current tree (the empty-tree hash for size 0).
   *
   * @example
   * const cp = signCheckpoint(signer, { origin, size: f.size, root: f.root() });
   */
  root(): Uint8Array {
    return this.#nodes.length === 0 ? emptyRoot() : foldFrom(this.#nodes, 0);
  }

  /**
   * A self-contained copy.
   *
   * @example
   * const next = f.clone().append(h);
   */
  clone(): Frontier {
    return new Frontier(this.#size, this.hashes);
  }

  /**
   * Serializes as `0x01 ‖ u64be(size) ‖ hash0 ‖ hash1 ‖ …` (32 bytes per
   * subtree, largest first; popcount(size) hashes).
   *
   * @example
   * await store.put('frontier', f.toBytes());
   */
  toBytes(): Uint8Array {
    const out = new Uint8Array(9 + this.#nodes.length * HASH_LENGTH);
    out[0] = FRONTIER_FORMAT;
    out.set(u64be(this.#size), 1);
    this.#nodes.forEach((h, i) => out.set(h, 9 + i * HASH_LENGTH));
    return out;
  }

  /** The hash of `r` if this frontier alone determines it: one of its subtrees, or a run of them ending at `size`. */
  #rangeHash(r: SubtreeRange): Uint8Array | undefined {
    if (r.end !== this.#size) {
      const i = frontierRanges(this.#size).findIndex((x) => x.start === r.start && x.end === r.end);
      return i < 0 ? undefined : this.#nodes[i]!.slice();
    }
    const i = frontierRanges(this.#size).findIndex((x) => x.start === r.start);
    return i < 0 ? undefined : foldFrom(this.#nodes, i);
  }

  /**
   * The consistency proof from the tree of `oldSize` leaves to this one, built
   * from the frontier alone when it can be (always when `oldSize` is a subtree
   * boundary of the frontier, e.g. 4 or 6 for size 7), otherwise
   * `{ ok: false, needed }` listing the subtrees whose hashes are missing.
   * Calling again with those hashes as `extra` (same order) completes the
   * proof. Requires 0 < oldSize ≤ size. The result is not verified; see
   * {@link Frontier.checkExtends}.
   *
   * @example
   * const r = f.consistencyProof(witnessSize);
   * const proof = r.ok ? r.proof : f.consistencyProof(witnessSize, await api.hashes(r.needed)).proof;
   */
  consistencyProof(oldSize: number, extra?: readonly Uint8Array[]): FrontierConsistency {
    auint(oldSize, 'oldSize');
    check(oldSize <= this.#size, `old size ${oldSize} is larger than the frontier size ${this.#size}`);
    const ranges = consistencyRanges(oldSize, this.#size);
    const have = ranges.map((r) => this.#rangeHash(r));
    const needed = ranges.filter((_, i) => have[i] === undefined);
    if (needed.length === 0) return { ok: true, proof: have as Uint8Array[] };
    if (extra === undefined) return { ok: false, needed };
    check(isList(extra) && extra.length === needed.length, `extra must hold the ${needed.length} needed hashes, in order`);
    extra.forEach((h, i) => ahash(h, `extra[${i}]`));
    let j = 0;
    return { ok: true, proof: have.map((h) => h ?? extra[j++]!.slice()) };
  }

  /**
   * Checks that this frontier extends the tree head `old` (a checkpoint signed
   * earlier) and returns the consistency proof it checked, or the hashes it
   * still needs (as {@link Frontier.consistencyProof}). Throws
   * `TLOG_INCONSISTENT` when the frontier provably does not extend `old` (it is
   * smaller, the same size with another root, or its own hashes contradict
   * `old.root`: a fork), and `TLOG_BAD_PROOF` when a proof that used `extra`
   * hashes fails (the extra hashes, or `old`, are wrong).
   * `old.size` 0 is accepted when `old.root` is the empty-tree hash (proof []).
   *
   * @example
   * const r = frontier.checkExtends({ size: last.size, root: last.root });
   * if (!r.ok) … fetch r.needed and call again with them as extra
   */
  checkExtends(old: { readonly size: number; readonly root: Uint8Array }, extra?: readonly Uint8Array[]): FrontierConsistency {
    const { size: m, root: rootM } = old;
    auint(m, 'old.size');
    ahash(rootM, 'old.root');
    const n = this.#size;
    if (m > n) throw new TlogError('TLOG_INCONSISTENT', `the frontier (size ${n}) is older than the tree head (size ${m})`);
    if (m === 0 || m === n) {
      const want = m === 0 ? emptyRoot() : this.root();
      if (!equalBytes(rootM, want)) throw new TlogError('TLOG_INCONSISTENT', `two different roots for tree size ${m}`);
      return { ok: true, proof: [] };
    }
    const built = this.consistencyProof(m);
    const usedExtra = !built.ok;
    const r = built.ok ? built : this.consistencyProof(m, extra);
    if (!r.ok) return r;
    try {
      verifyConsistency(m, n, rootM, this.root(), r.proof);
    } catch (e) {
      if (usedExtra || !isTlogError(e, 'TLOG_BAD_PROOF')) throw e;
      throw new TlogError('TLOG_INCONSISTENT', `the frontier (size ${n}) does not extend the tree head of size ${m}: fork`, { cause: e });
    }
    return r;
  }
}
