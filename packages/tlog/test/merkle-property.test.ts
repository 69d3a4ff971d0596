/**
 * Property tests (fast-check) for proofs: for random trees of up to 300 leaves,
 * generated inclusion and consistency proofs verify, and any change to the
 * proof, a root, the leaf or the index makes verification fail with a TlogError.
 * Also: the proofs agree with a direct transcription of RFC 6962 PATH/PROOF.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  consistencyProof,
  inclusionProof,
  leafHash,
  nodeHash,
  rootFromLeaves,
  verifyConsistency,
  verifyInclusion,
} from '../src/index.js';
import { flipBit, makeLeafData, throwsTlog, toHex } from './helpers.js';

const RUNS = { numRuns: 200 };

const leavesOf = (n: number, seed: number): Uint8Array[] => makeLeafData(n, seed).map((d) => leafHash(d));

/** RFC 6962 §2.1 MTH, PATH and PROOF transcribed literally (independent of src/). */
function refMth(d: Uint8Array[]): Uint8Array {
  if (d.length === 1) return d[0]!;
  let k = 1;
  while (k * 2 < d.length) k *= 2;
  return nodeHash(refMth(d.slice(0, k)), refMth(d.slice(k)));
}
function refPath(m: number, d: Uint8Array[]): Uint8Array[] {
  if (d.length <= 1) return [];
  let k = 1;
  while (k * 2 < d.length) k *= 2;
  return m < k ? [...refPath(m, d.slice(0, k)), refMth(d.slice(k))] : [...refPath(m - k, d.slice(k)), refMth(d.slice(0, k))];
}
function refSubproof(m: number, d: Uint8Array[], b: boolean): Uint8Array[] {
  if (m === d.length) return b ? [] : [refMth(d)];
  let k = 1;
  while (k * 2 < d.length) k *= 2;
  return m <= k
    ? [...refSubproof(m, d.slice(0, k), b), refMth(d.slice(k))]
    : [...refSubproof(m - k, d.slice(k), false), refMth(d.slice(0, k))];
}

const treeAndIndex = fc
  .integer({ min: 1, max: 300 })
  .chain((n) => fc.record({ n: fc.constant(n), index: fc.integer({ min: 0, max: n - 1 }), seed: fc.nat(), bit: fc.nat() }));

const treeAndSizes = fc
  .integer({ min: 1, max: 300 })
  .chain((n) => fc.record({ n: fc.constant(n), m: fc.integer({ min: 1, max: n }), seed: fc.nat(), bit: fc.nat() }));

void test('property: inclusion proofs match RFC 6962 PATH and verify', () => {
  fc.assert(
    fc.property(treeAndIndex, ({ n, index, seed }) => {
      const leaves = leavesOf(n, seed);
      const proof = inclusionProof(index, leaves);
      assert.deepEqual(proof.map(toHex), refPath(index, leaves).map(toHex));
      verifyInclusion(leaves[index]!, index, n, proof, rootFromLeaves(leaves));
      assert.equal(toHex(rootFromLeaves(leaves)), toHex(refMth(leaves)));
    }),
    RUNS,
  );
});

void test('property: a modified inclusion proof, root, leaf or index fails', () => {
  fc.assert(
    fc.property(treeAndIndex, fc.integer({ min: 1, max: 300 }), ({ n, index, seed, bit }, other) => {
      const leaves = leavesOf(n, seed);
      const root = rootFromLeaves(leaves);
      const leaf = leaves[index]!;
      const proof = inclusionProof(index, leaves);
      if (proof.length > 0) {
        const i = bit % proof.length;
        const bad = proof.map((p, j) => (j === i ? flipBit(p, bit) : p));
        throwsTlog(() => verifyInclusion(leaf, index, n, bad, root), 'TLOG_BAD_PROOF');
        throwsTlog(() => verifyInclusion(leaf, index, n, proof.slice(1), root), 'TLOG_BAD_PROOF');
        if (proof.length > 1) throwsTlog(() => verifyInclusion(leaf, index, n, [...proof].reverse(), root), 'TLOG_BAD_PROOF');
      }
      throwsTlog(() => verifyInclusion(leaf, index, n, [...proof, root], root), 'TLOG_BAD_PROOF');
      throwsTlog(() => verifyInclusion(leaf, index, n, proof, flipBit(root, bit)), 'TLOG_BAD_PROOF');
      throwsTlog(() => verifyInclusion(flipBit(leaf, bit), index, n, proof, root), 'TLOG_BAD_PROOF');
      const otherIndex = (index + 1 + (other % n)) % n;
      if (otherIndex !== index) throwsTlog(() => verifyInclusion(leaf, otherIndex, n, proof, root), 'TLOG_BAD_PROOF');
      // (A different tree size is not a "modification" the proof must catch: the
      // verifier trusts the (size, root) pair, and for right-edge paths the RFC
      // algorithm computes the same root for several sizes. An index beyond the
      // size is refused outright.)
      throwsTlog(() => verifyInclusion(leaf, n + other, n, proof, root), 'TLOG_INVALID_ARGUMENT');
    }),
    RUNS,
  );
});

void test('property: consistency proofs match RFC 6962 PROOF and verify', () => {
  fc.assert(
    fc.property(treeAndSizes, ({ n, m, seed }) => {
      const leaves = leavesOf(n, seed);
      const proof = consistencyProof(m, n, leaves);
      assert.deepEqual(proof.map(toHex), refSubproof(m, leaves, true).map(toHex));
      verifyConsistency(m, n, rootFromLeaves(leaves.slice(0, m)), rootFromLeaves(leaves), proof);
    }),
    RUNS,
  );
});

void test('property: a modified consistency proof or root fails', () => {
  fc.assert(
    fc.property(treeAndSizes, fc.integer({ min: 1, max: 300 }), ({ n, m, seed, bit }, other) => {
      const leaves = leavesOf(n, seed);
      const rootM = rootFromLeaves(leaves.slice(0, m));
      const rootN = rootFromLeaves(leaves);
      const proof = consistencyProof(m, n, leaves);
      if (proof.length > 0) {
        const i = bit % proof.length;
        const bad = proof.map((p, j) => (j === i ? flipBit(p, bit) : p));
        throwsTlog(() => verifyConsistency(m, n, rootM, rootN, bad), 'TLOG_BAD_PROOF');
        throwsTlog(() => verifyConsistency(m, n, rootM, rootN, proof.slice(0, -1)), 'TLOG_BAD_PROOF');
        if (proof.length > 1 && toHex(proof[0]!) !== toHex(proof[proof.length - 1]!)) {
          throwsTlog(() => verifyConsistency(m, n, rootM, rootN, [...proof].reverse()), 'TLOG_BAD_PROOF');
        }
      }
      throwsTlog(() => verifyConsistency(m, n, rootM, rootN, [...proof, rootN]), 'TLOG_BAD_PROOF');
      const equal = m === n;
      throwsTlog(() => verifyConsistency(m, n, flipBit(rootM, bit), rootN, proof), equal ? 'TLOG_INCONSISTENT' : 'TLOG_BAD_PROOF');
      throwsTlog(() => verifyConsistency(m, n, rootM, flipBit(rootN, bit), proof), equal ? 'TLOG_INCONSISTENT' : 'TLOG_BAD_PROOF');
      // The roots of other sizes of the same tree do not pass for these sizes.
      const k = 1 + (other % n);
      if (k !== m) throwsTlog(() => verifyConsistency(m, n, rootFromLeaves(leaves.slice(0, k)), rootN, proof), ['TLOG_BAD_PROOF', 'TLOG_INCONSISTENT']);
      if (k !== n) throwsTlog(() => verifyConsistency(m, n, rootM, rootFromLeaves(leaves.slice(0, k)), proof), ['TLOG_BAD_PROOF', 'TLOG_INCONSISTENT']);
      // (As for inclusion, sizes are trusted inputs bound to their roots by the
      // signed checkpoints; m > n is refused outright.)
      if (m < n) throwsTlog(() => verifyConsistency(n, m, rootN, rootM, proof), 'TLOG_INVALID_ARGUMENT');
    }),
    RUNS,
  );
});

void test('property: verifiers refuse non-32-byte hashes and empty trees', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 64 }).filter((b) => b.length !== 32), (h) => {
      const good = leafHash(new Uint8Array(0));
      throwsTlog(() => verifyInclusion(h, 0, 1, [], good), 'TLOG_INVALID_ARGUMENT');
      throwsTlog(() => verifyInclusion(good, 0, 1, [], h), 'TLOG_INVALID_ARGUMENT');
      throwsTlog(() => verifyInclusion(good, 0, 2, [h], good), 'TLOG_INVALID_ARGUMENT');
      throwsTlog(() => verifyConsistency(1, 1, h, h, []), 'TLOG_INVALID_ARGUMENT');
      throwsTlog(() => verifyConsistency(1, 2, good, good, [h]), 'TLOG_INVALID_ARGUMENT');
    }),
    { numRuns: 50 },
  );
  const e = rootFromLeaves([]);
  throwsTlog(() => verifyInclusion(e, 0, 0, [], e), 'TLOG_INVALID_ARGUMENT');
  throwsTlog(() => verifyConsistency(0, 0, e, e, []), 'TLOG_INVALID_ARGUMENT');
  throwsTlog(() => verifyConsistency(0, 3, e, e, []), 'TLOG_INVALID_ARGUMENT');
  throwsTlog(() => verifyConsistency(2, 1, e, e, []), 'TLOG_INVALID_ARGUMENT');
  throwsTlog(() => verifyInclusion(e, 1.5, 3, [], e), 'TLOG_INVALID_ARGUMENT');
  throwsTlog(() => verifyInclusion(e, -1, 3, [], e), 'TLOG_INVALID_ARGUMENT');
  throwsTlog(() => consistencyProof(0, 1, [e]), 'TLOG_INVALID_ARGUMENT');
  throwsTlog(() => consistencyProof(1, 2, [e]), 'TLOG_INVALID_ARGUMENT');
  throwsTlog(() => inclusionProof(1, [e]), 'TLOG_INVALID_ARGUMENT');
});
