/**
 * RFC 9162 §2.1 (= RFC 6962 §2.1) Merkle trees over SHA-256: leaf and node
 * hashes, the tree head MTH, inclusion and consistency proofs.
 *
 * Proof generation follows the recursive definitions (PATH, PROOF/SUBPROOF),
 * expressed once as a list of subtree ranges ("plans") so that the same shape
 * serves generation from leaves, generation from a frontier, and the exact
 * proof-length check of the verifiers. Verification follows the iterative
 * algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2 literally, plus the checks the
 * RFC leaves implicit: 32-byte hashes, no size-0 proofs, index < size, m ≤ n and
 * exact proof lengths.
 *
 * Sizes and indices are JavaScript numbers and must be safe integers (< 2^53).
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { abytes, ahash, ahashes, auint, equalBytes } from './bytes.js';
import { TlogError, check } from './errors.js';

const LEAF_PREFIX = new Uint8Array([0x00]);
const NODE_PREFIX = new Uint8Array([0x01]);

/**
 * A subtree of the tree: the leaves with indices in `[start, end)`. Its hash is
 * MTH(D[start:end]).
 */
export interface SubtreeRange {
  readonly start: number;
  readonly end: number;
}

/**
 * The root of the empty tree, SHA-256 of the empty string (RFC 9162 §2.1.1).
 *
 * @example
 * toHex(emptyRoot()) // 'e3b0c442…b855'
 */
export function emptyRoot(): Uint8Array {
  return sha256(new Uint8Array(0));
}

/**
 * The hash of a leaf: SHA-256(0x00 ‖ data).
 *
 * @example
 * const h = leafHash(new TextEncoder().encode('event 1'));
 */
export function leafHash(data: Uint8Array): Uint8Array {
  abytes(data, 'leaf data');
  return sha256.create().update(LEAF_PREFIX).update(data).digest();
}

/**
 * The hash of an interior node: SHA-256(0x01 ‖ left ‖ right). Both children
 * must be 32-byte hashes.
 *
 * @example
 * const parent = nodeHash(leafHash(a), leafHash(b));
 */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  ahash(left, 'left');
  ahash(right, 'right');
  return hashChildren(left, right);
}

function hashChildren(left: Uint8Array, right: Uint8Array): Uint8Array {
  return sha256.create().update(NODE_PREFIX).update(left).update(right).digest();
}

/** The largest power of two strictly less than n (n ≥ 2). */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** True when n is a power of two (n ≥ 1). */
function isPowerOfTwo(n: number): boolean {
  while (n > 1) {
    if (n % 2 === 1) return false;
    n = Math.floor(n / 2);
  }
  return n === 1;
}

/** MTH(D[start:end]) over already-checked leaf hashes. */
function mth(leaves: readonly Uint8Array[], start: number, end: number): Uint8Array {
  const n = end - start;
  if (n === 0) return emptyRoot();
  if (n === 1) return leaves[start]!.slice();
  const k = splitPoint(n);
  return hashChildren(mth(leaves, start, start + k), mth(leaves, start + k, end));
}

/**
 * The Merkle tree head MTH of a list of leaf hashes (RFC 9162 §2.1.1); the
 * empty list gives {@link emptyRoot}.
 *
 * @example
 * const root = rootFromLeaves(events.map((e) => leafHash(e)));
 */
export function rootFromLeaves(leafHashes: readonly Uint8Array[]): Uint8Array {
  ahashes(leafHashes, 'leafHashes');
  return mth(leafHashes, 0, leafHashes.length);
}

/**
 * The subtrees whose hashes form the inclusion proof of leaf `index` in the tree
 * of `size` leaves, in proof order (bottom-up, RFC 6962 PATH).
 *
 * @example
 * inclusionRanges(5, 8) // [{start:4,end:5}, {start:6,end:8}, {start:0,end:4}]
 */
export function inclusionRanges(index: number, size: number): SubtreeRange[] {
  auint(index, 'index');
  auint(size, 'size');
  check(index < size, `leaf index ${index} is not below tree size ${size}`);
  const out: SubtreeRange[] = [];
  const path = (start: number, end: number): void => {
    if (end - start <= 1) return;
    const k = splitPoint(end - start);
    if (index < start + k) {
      path(start, start + k);
      out.push({ start: start + k, end });
    } else {
      path(start + k, end);
      out.push({ start, end: start + k });
    }
  };
  path(0, size);
  return out;
}

/**
 * The subtrees whose hashes form the consistency proof from size `m` to size
 * `n`, in proof order (RFC 6962 PROOF/SUBPROOF). Requires 0 < m ≤ n; m = n
 * gives the empty list.
 *
 * @example
 * consistencyRanges(6, 8) // [{start:4,end:6}, {start:6,end:8}, {start:0,end:4}]
 */
export function consistencyRanges(m: number, n: number): SubtreeRange[] {
  auint(m, 'm');
  auint(n, 'n');
  check(m > 0, 'no consistency proof exists from the empty tree (m = 0)');
  check(m <= n, `old size ${m} is larger than new size ${n}`);
  const out: SubtreeRange[] = [];
  const subproof = (mm: number, start: number, end: number, complete: boolean): void => {
    const size = end - start;
    if (mm === size) {
      if (!complete) out.push({ start, end });
      return;
    }
    const k = splitPoint(size);
    if (mm <= k) {
      subproof(mm, start, start + k, complete);
      out.push({ start: start + k, end });
    } else {
      subproof(mm - k, start + k, end, false);
      out.push({ start, end: start + k });
    }
  };
  subproof(m, 0, n, true);
  return out;
}

function checkLeaves(leaves: readonly Uint8Array[], size: number, label: string): void {
  ahashes(leaves, 'leaves');
  check(size <= leaves.length, `${label} ${size} exceeds the ${leaves.length} leaves given`);
}

/**
 * The inclusion proof of leaf `index` in the tree formed by the first `size`
 * leaf hashes (default: all of them).
 *
 * @example
 * const proof = inclusionProof(3, leaves);
 * verifyInclusion(leaves[3], 3, leaves.length, proof, rootFromLeaves(leaves));
 */
export function inclusionProof(index: number, leaves: readonly Uint8Array[], size: number = leaves.length): Uint8Array[] {
  auint(size, 'size');
  checkLeaves(leaves, size, 'tree size');
  return inclusionRanges(index, size).map((r) => mth(leaves, r.start, r.end));
}

/**
 * The consistency proof from the tree of the first `m` leaf hashes to the tree
 * of the first `n`. Requires 0 < m ≤ n ≤ leaves.length.
 *
 * @example
 * const proof = consistencyProof(4, 7, leaves);
 * verifyConsistency(4, 7, rootFromLeaves(leaves.slice(0, 4)), rootFromLeaves(leaves.slice(0, 7)), proof);
 */
export function consistencyProof(m: number, n: number, leaves: readonly Uint8Array[]): Uint8Array[] {
  auint(n, 'n');
  checkLeaves(leaves, n, 'new size');
  return consistencyRanges(m, n).map((r) => mth(leaves, r.start, r.end));
}

const half = (x: number): number => Math.floor(x / 2);
const odd = (x: number): boolean => x % 2 === 1;

/**
 * The root that an inclusion proof leads to (RFC 9162 §2.1.3.2 steps 1-5,
 * without the final comparison). Throws `TLOG_BAD_PROOF` when the proof has the
 * wrong length for (index, size).
 *
 * @example
 * const root = rootFromInclusionProof(leaf, 5, 8, proof);
 */
export function rootFromInclusionProof(leaf: Uint8Array, index: number, size: number, proof: readonly Uint8Array[]): Uint8Array {
  ahash(leaf, 'leafHash');
  auint(index, 'index');
  auint(size, 'size');
  ahashes(proof, 'proof');
  check(size > 0, 'an inclusion proof needs a non-empty tree (size > 0)');
  check(index < size, `leaf index ${index} is not below tree size ${size}`);
  const expected = inclusionRanges(index, size).length;
  if (proof.length !== expected) {
    throw new TlogError('TLOG_BAD_PROOF', `inclusion proof has ${proof.length} hashes; (index ${index}, size ${size}) needs ${expected}`);
  }
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) throw new TlogError('TLOG_BAD_PROOF', 'inclusion proof is too long');
    if (odd(fn) || fn === sn) {
      r = hashChildren(p, r);
      if (!odd(fn)) {
        while (!odd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      r = hashChildren(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) throw new TlogError('TLOG_BAD_PROOF', 'inclusion proof is too short');
  return r;
}

/**
 * Verifies that `leaf` is the leaf hash at `index` in the tree of `size` leaves
 * whose root is `root` (RFC 9162 §2.1.3.2). Returns nothing; throws
 * `TLOG_INVALID_ARGUMENT` (non-32-byte hash, size 0, index ≥ size) or
 * `TLOG_BAD_PROOF` (wrong length, or the proof leads to another root).
 *
 * @example
 * verifyInclusion(leafHash(entry), 41, checkpoint.size, proof, checkpoint.root);
 */
export function verifyInclusion(leaf: Uint8Array, index: number, size: number, proof: readonly Uint8Array[], root: Uint8Array): void {
  ahash(root, 'root');
  const computed = rootFromInclusionProof(leaf, index, size, proof);
  if (!equalBytes(computed, root)) throw new TlogError('TLOG_BAD_PROOF', 'inclusion proof does not lead to the expected root');
}

/**
 * Verifies that the tree of size `m` with root `rootM` is a prefix of the tree
 * of size `n` with root `rootN` (RFC 9162 §2.1.4.2). Requires 0 < m ≤ n; for
 * m = n the proof must be empty and the roots equal. Throws
 * `TLOG_INVALID_ARGUMENT`, `TLOG_BAD_PROOF`, or `TLOG_INCONSISTENT` (equal sizes,
 * different roots: a fork).
 *
 * @example
 * verifyConsistency(old.size, cur.size, old.root, cur.root, proof);
 */
export function verifyConsistency(m: number, n: number, rootM: Uint8Array, rootN: Uint8Array, proof: readonly Uint8Array[]): void {
  auint(m, 'm');
  auint(n, 'n');
  ahash(rootM, 'rootM');
  ahash(rootN, 'rootN');
  ahashes(proof, 'proof');
  check(m > 0, 'a consistency proof from the empty tree (m = 0) is not defined');
  check(m <= n, `old size ${m} is larger than new size ${n}`);
  if (m === n) {
    if (proof.length !== 0) throw new TlogError('TLOG_BAD_PROOF', 'equal sizes need an empty consistency proof');
    if (!equalBytes(rootM, rootN)) throw new TlogError('TLOG_INCONSISTENT', `two different roots for tree size ${m}`);
    return;
  }
  const expected = consistencyRanges(m, n).length;
  if (proof.length !== expected) {
    throw new TlogError('TLOG_BAD_PROOF', `consistency proof has ${proof.length} hashes; (${m} → ${n}) needs ${expected}`);
  }
  // Step 2: a power-of-two old tree is itself a node of the new tree.
  const path = isPowerOfTwo(m) ? [rootM, ...proof] : proof;
  let fn = m - 1;
  let sn = n - 1;
  while (odd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (let i = 1; i < path.length; i++) {
    const c = path[i]!;
    if (sn === 0) throw new TlogError('TLOG_BAD_PROOF', 'consistency proof is too long');
    if (odd(fn) || fn === sn) {
      fr = hashChildren(c, fr);
      sr = hashChildren(c, sr);
      if (!odd(fn)) {
        while (!odd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      sr = hashChildren(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) throw new TlogError('TLOG_BAD_PROOF', 'consistency proof is too short');
  if (!equalBytes(fr, rootM)) throw new TlogError('TLOG_BAD_PROOF', 'consistency proof does not lead to the old root');
  if (!equalBytes(sr, rootN)) throw new TlogError('TLOG_BAD_PROOF', 'consistency proof does not lead to the new root');
}
