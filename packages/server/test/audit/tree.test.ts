/**
 * The level cache and the compact range agree with `@keyward/tlog`'s RFC 9162
 * reference computations for every size up to 70 and random larger ones, and
 * their proofs verify with tlog's verifiers.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { consistencyProof, inclusionProof, leafHash, rootFromLeaves, verifyConsistency, verifyInclusion } from '@keyward/tlog';
import { alignedRanges, CompactRange, MerkleCache } from '../../src/audit/tree.js';

const leaves = (n: number): Uint8Array[] => Array.from({ length: n }, (_, i) => leafHash(new TextEncoder().encode(`leaf ${i}`)));

void describe('MerkleCache', () => {
  const all = leaves(70);
  const cache = new MerkleCache();
  void test('roots, inclusion and consistency proofs equal tlog for every size ≤ 70', () => {
    for (let n = 0; n <= 70; n++) {
      if (n > 0) cache.append(all[n - 1]!);
      const ls = all.slice(0, n);
      assert.deepEqual(cache.root(n), rootFromLeaves(ls));
      for (let m = 0; m <= n; m++) assert.deepEqual(cache.root(m), rootFromLeaves(all.slice(0, m)));
      for (let i = 0; i < n; i++) {
        const p = cache.inclusionProof(i, n);
        assert.deepEqual(p, inclusionProof(i, ls));
        verifyInclusion(all[i]!, i, n, p, cache.root(n));
      }
      for (let m = 1; m <= n; m++) {
        const p = cache.consistencyProof(m, n);
        assert.deepEqual(p, consistencyProof(m, n, ls));
        verifyConsistency(m, n, cache.root(m), cache.root(n), p);
      }
    }
  });

  void test('out-of-range requests are refused', () => {
    assert.throws(() => cache.root(71));
    assert.throws(() => cache.inclusionProof(0, 71));
    assert.throws(() => cache.leaf(70));
  });
});

void describe('CompactRange and alignedRanges', () => {
  void test('alignedRanges examples', () => {
    assert.deepEqual(alignedRanges(0, 7), [{ start: 0, end: 4 }, { start: 4, end: 6 }, { start: 6, end: 7 }]);
    assert.deepEqual(alignedRanges(5, 8), [{ start: 5, end: 6 }, { start: 6, end: 8 }]);
    assert.deepEqual(alignedRanges(3, 3), []);
  });

  void test('property: prefix subtrees + leaves + suffix subtrees give the root of the whole tree', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 300 }).chain((size) => fc.tuple(fc.constant(size), fc.integer({ min: 0, max: size }), fc.integer({ min: 0, max: size }))), ([size, a, b]) => {
        const [from, to] = a <= b ? [a, b] : [b, a];
        const ls = leaves(size);
        const cache = new MerkleCache();
        ls.forEach((l) => cache.append(l));
        const c = new CompactRange();
        for (const r of alignedRanges(0, from)) c.pushSubtree(r.end - r.start, cache.rangeHash(r.start, r.end));
        for (let i = from; i < to; i++) c.pushLeaf(ls[i]!);
        for (const r of alignedRanges(to, size)) c.pushSubtree(r.end - r.start, cache.rangeHash(r.start, r.end));
        assert.equal(c.size, size);
        assert.deepEqual(c.root(), rootFromLeaves(ls));
      }),
      { numRuns: 200 },
    );
  });

  void test('a misaligned subtree is refused', () => {
    const c = new CompactRange();
    c.pushLeaf(leaves(1)[0]!);
    assert.throws(() => c.pushSubtree(2, new Uint8Array(32)));
  });
});
