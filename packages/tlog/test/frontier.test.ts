/**
 * The compact frontier: roots agree with MTH, serialization round-trips, a
 * frontier rebuilt from untrusted hashes is checked against a trusted root, and
 * consistency proofs come from the frontier when they can.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  Frontier,
  consistencyProof,
  emptyRoot,
  leafHash,
  rootFromLeaves,
  verifyConsistency,
} from '../src/index.js';
import { flipBit, hex, makeLeafData, readVector, throwsTlog, toHex } from './helpers.js';

const RUNS = { numRuns: 200 };
const leavesOf = (n: number, seed: number): Uint8Array[] => makeLeafData(n, seed).map((d) => leafHash(d));

void test('property: frontier root equals rootFromLeaves at every size', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 300 }), fc.nat(), (n, seed) => {
      const leaves = leavesOf(n, seed);
      const f = Frontier.empty();
      assert.equal(toHex(f.root()), toHex(emptyRoot()));
      leaves.forEach((h, i) => {
        f.append(h);
        assert.equal(f.size, i + 1);
        // Every prefix of small trees, then a sample (MTH per prefix is quadratic).
        if (i < 64 || i % 13 === 0 || i === n - 1) assert.equal(toHex(f.root()), toHex(rootFromLeaves(leaves.slice(0, i + 1))));
      });
      // One subtree per set bit of the size, covering [0, size) left to right.
      const ranges = f.ranges();
      assert.equal(ranges.length, f.hashes.length);
      let at = 0;
      for (const r of ranges) {
        assert.equal(r.start, at);
        assert.equal(toHex(f.hashes[ranges.indexOf(r)]!), toHex(rootFromLeaves(leaves.slice(r.start, r.end))));
        at = r.end;
      }
      assert.equal(at, n);
    }),
    { numRuns: 60 },
  );
});

void test('property: frontier serialization round-trips', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 300 }), fc.nat(), (n, seed) => {
      const f = Frontier.fromLeaves(leavesOf(n, seed));
      const bytes = f.toBytes();
      assert.equal(bytes.length, 9 + 32 * f.hashes.length);
      const g = Frontier.fromBytes(bytes, f.root());
      assert.equal(g.size, f.size);
      assert.deepEqual(g.hashes, f.hashes);
      assert.deepEqual(g.toBytes(), bytes);
      // Truncated, extended or re-versioned encodings are refused.
      throwsTlog(() => Frontier.fromBytes(bytes.subarray(0, bytes.length - 1)), 'TLOG_INVALID_ARGUMENT');
      throwsTlog(() => Frontier.fromBytes(new Uint8Array([...bytes, 0])), 'TLOG_INVALID_ARGUMENT');
      throwsTlog(() => Frontier.fromBytes(new Uint8Array([2, ...bytes.subarray(1)])), 'TLOG_INVALID_ARGUMENT');
      // A stored frontier that does not match the expected root is refused.
      throwsTlog(() => Frontier.fromBytes(bytes, flipBit(f.root(), seed)), 'TLOG_BAD_PROOF');
    }),
    RUNS,
  );
});

void test('property: a frontier rebuilt from the right hashes is accepted and keeps working', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 1, max: 20 }), fc.nat(), (n, more, seed) => {
      const leaves = leavesOf(n + more, seed);
      const f = Frontier.fromLeaves(leaves.slice(0, n));
      const g = Frontier.fromProof({ size: n, root: rootFromLeaves(leaves.slice(0, n)), hashes: f.hashes });
      for (const h of leaves.slice(n)) g.append(h);
      assert.equal(toHex(g.root()), toHex(rootFromLeaves(leaves)));
    }),
    RUNS,
  );
});

void test('property: a frontier rebuilt from a forged set of hashes is rejected', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 300 }), fc.nat(), fc.nat(), (n, seed, bit) => {
      const leaves = leavesOf(n, seed);
      const root = rootFromLeaves(leaves);
      const honest = Frontier.fromLeaves(leaves).hashes;
      // One flipped bit in one hash.
      const i = bit % honest.length;
      const forged = honest.map((h, j) => (j === i ? flipBit(h, bit) : h));
      throwsTlog(() => Frontier.fromProof({ size: n, root, hashes: forged }), 'TLOG_BAD_PROOF');
      // The frontier of another tree of the same size.
      const other = Frontier.fromLeaves(leavesOf(n, seed + 1)).hashes;
      throwsTlog(() => Frontier.fromProof({ size: n, root, hashes: other }), 'TLOG_BAD_PROOF');
      // A hash dropped, added, or the order changed.
      throwsTlog(() => Frontier.fromProof({ size: n, root, hashes: honest.slice(1) }), 'TLOG_BAD_PROOF');
      throwsTlog(() => Frontier.fromProof({ size: n, root, hashes: [...honest, root] }), 'TLOG_BAD_PROOF');
      if (honest.length > 1) throwsTlog(() => Frontier.fromProof({ size: n, root, hashes: [...honest].reverse() }), 'TLOG_BAD_PROOF');
      // The honest hashes of an older tree, claimed for this size.
      if (n > 1) {
        const older = Frontier.fromLeaves(leaves.slice(0, n - 1)).hashes;
        throwsTlog(() => Frontier.fromProof({ size: n, root, hashes: older }), 'TLOG_BAD_PROOF');
      }
      // Non-32-byte input is a caller error.
      throwsTlog(() => Frontier.fromProof({ size: n, root, hashes: honest.map((h, j) => (j === i ? h.subarray(1) : h)) }), 'TLOG_INVALID_ARGUMENT');
    }),
    RUNS,
  );
});

void test('frontier of size 0 rebuilds only against the empty root', () => {
  assert.equal(Frontier.fromProof({ size: 0, root: emptyRoot(), hashes: [] }).size, 0);
  throwsTlog(() => Frontier.fromProof({ size: 0, root: leafHash(new Uint8Array(0)), hashes: [] }), 'TLOG_BAD_PROOF');
});

void test('frontier ranges of the 8-leaf vector tree (size 7 = 4 + 2 + 1) are the RFC node hashes', () => {
  const V = readVector<{ leaf_hashes: string[]; node_hashes: { level1: string[]; level2: string[] } }>('merkle/rfc6962-8-leaves.json');
  const f = Frontier.fromLeaves(V.leaf_hashes.slice(0, 7).map(hex));
  assert.deepEqual(f.ranges(), [{ start: 0, end: 4 }, { start: 4, end: 6 }, { start: 6, end: 7 }]);
  assert.deepEqual(f.hashes.map(toHex), [V.node_hashes.level2[0], V.node_hashes.level1[2], V.leaf_hashes[6]]);
});

void test('property: consistency proofs from a frontier equal the generated ones, with or without extra hashes', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 300 }).chain((n) => fc.tuple(fc.constant(n), fc.integer({ min: 1, max: n }))),
      fc.nat(),
      ([n, m], seed) => {
        const leaves = leavesOf(n, seed);
        const f = Frontier.fromLeaves(leaves);
        const want = consistencyProof(m, n, leaves).map(toHex);
        const first = f.consistencyProof(m);
        // The frontier alone suffices exactly when m is one of its subtree boundaries (or m = n).
        const boundary = m === n || f.ranges().some((r) => r.end === m);
        assert.equal(first.ok, boundary, `m=${m} n=${n}`);
        const extra = first.ok ? undefined : first.needed.map((r) => rootFromLeaves(leaves.slice(r.start, r.end)));
        const r = f.consistencyProof(m, extra);
        assert.ok(r.ok);
        assert.deepEqual(r.proof.map(toHex), want);
        // checkExtends verifies the same proof against the old root.
        const rootM = rootFromLeaves(leaves.slice(0, m));
        const c = f.checkExtends({ size: m, root: rootM }, extra);
        assert.ok(c.ok);
        assert.deepEqual(c.proof.map(toHex), want);
        if (m < n) verifyConsistency(m, n, rootM, f.root(), c.proof);
      },
    ),
    RUNS,
  );
});

void test('property: checkExtends detects a fork, and refuses forged extra hashes', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 300 }).chain((n) => fc.tuple(fc.constant(n), fc.integer({ min: 1, max: n }))),
      fc.nat(),
      ([n, m], seed) => {
        const leaves = leavesOf(n, seed);
        const f = Frontier.fromLeaves(leaves);
        const rootM = rootFromLeaves(leaves.slice(0, m));
        const forkRoot = rootFromLeaves(leavesOf(m, seed + 1));
        const boundary = m === n || f.ranges().some((r) => r.end === m);
        if (boundary) {
          // The frontier's own hashes prove the fork.
          throwsTlog(() => f.checkExtends({ size: m, root: forkRoot }), 'TLOG_INCONSISTENT');
          return;
        }
        const first = f.checkExtends({ size: m, root: forkRoot });
        assert.ok(!first.ok);
        const extra = first.needed.map((r) => rootFromLeaves(leaves.slice(r.start, r.end)));
        // Honest extra hashes still expose the fork; forged ones cannot fake consistency.
        throwsTlog(() => f.checkExtends({ size: m, root: forkRoot }, extra), 'TLOG_BAD_PROOF');
        const forged = extra.map((h, i) => (i === seed % extra.length ? flipBit(h, seed) : h));
        throwsTlog(() => f.checkExtends({ size: m, root: rootM }, forged), 'TLOG_BAD_PROOF');
        throwsTlog(() => f.checkExtends({ size: m, root: rootM }, extra.slice(1)), 'TLOG_INVALID_ARGUMENT');
      },
    ),
    RUNS,
  );
});

void test('checkExtends: older frontier, size 0 and equal sizes', () => {
  const leaves = leavesOf(5, 7);
  const f = Frontier.fromLeaves(leaves);
  throwsTlog(() => f.checkExtends({ size: 6, root: f.root() }), 'TLOG_INCONSISTENT');
  assert.deepEqual(f.checkExtends({ size: 0, root: emptyRoot() }), { ok: true, proof: [] });
  throwsTlog(() => f.checkExtends({ size: 0, root: f.root() }), 'TLOG_INCONSISTENT');
  assert.deepEqual(f.checkExtends({ size: 5, root: f.root() }), { ok: true, proof: [] });
  throwsTlog(() => f.checkExtends({ size: 5, root: rootFromLeaves(leaves.slice(0, 4)) }), 'TLOG_INCONSISTENT');
  throwsTlog(() => f.consistencyProof(0), 'TLOG_INVALID_ARGUMENT');
  throwsTlog(() => f.consistencyProof(6), 'TLOG_INVALID_ARGUMENT');
  // m = 5 → 6 needs leaves 4 and 5, which a frontier of size 6 ([0,4), [4,6)) does not hold.
  const g = Frontier.fromLeaves(leavesOf(6, 7));
  assert.deepEqual(g.consistencyProof(5), { ok: false, needed: [{ start: 4, end: 5 }, { start: 5, end: 6 }] });
});

void test('append refuses non-32-byte leaf hashes; clone is independent', () => {
  const f = Frontier.fromLeaves(leavesOf(3, 1));
  throwsTlog(() => f.append(new Uint8Array(31)), 'TLOG_INVALID_ARGUMENT');
  const g = f.clone().append(leafHash(new Uint8Array([1])));
  assert.equal(f.size, 3);
  assert.equal(g.size, 4);
});
