/**
 * shared/vectors/merkle/rfc6962-8-leaves.json: the 8-leaf RFC 6962 tree used by
 * transparency-dev/merkle and certificate-transparency. Every leaf hash, node
 * hash, prefix root, and every inclusion and consistency proof is generated
 * here and compared, then verified. One test case per vector.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Frontier,
  consistencyProof,
  emptyRoot,
  inclusionProof,
  leafHash,
  rootFromInclusionProof,
  rootFromLeaves,
  verifyConsistency,
  verifyInclusion,
} from '../src/index.js';
import { hex, readVector, throwsTlog, toHex } from './helpers.js';

interface InclusionCase { leaf_index: number; tree_size: number; leaf_hash: string; root: string; proof: string[] }
interface ConsistencyCase { size1: number; size2: number; root1: string; root2: string; proof: string[] }
interface Tree {
  leaf_inputs: string[];
  leaf_hashes: string[];
  node_hashes: Record<string, string[] | string>;
  roots: Record<string, string>;
  upstream_inclusion_table: { leaf_index: number; tree_size: number; proof: string[] }[];
  upstream_consistency_table: { size1: number; size2: number; proof: string[] }[];
  inclusion: InclusionCase[];
  consistency: ConsistencyCase[];
}

const V = readVector<Tree>('merkle/rfc6962-8-leaves.json');
const leaves = V.leaf_hashes.map(hex);

V.leaf_inputs.forEach((input, i) => {
  void test(`rfc6962 leaf hash ${i} (input "${input}")`, () => {
    assert.equal(toHex(leafHash(hex(input))), V.leaf_hashes[i]);
  });
});

for (const [level, hashes] of Object.entries(V.node_hashes)) {
  if (!Array.isArray(hashes)) continue;
  const height = Number(level.replace('level', ''));
  hashes.forEach((h, j) => {
    void test(`rfc6962 node hash ${level}[${j}] = MTH(leaves ${j << height}..${((j + 1) << height) - 1})`, () => {
      assert.equal(toHex(rootFromLeaves(leaves.slice(j << height, (j + 1) << height))), h);
    });
  });
}

for (const [size, root] of Object.entries(V.roots)) {
  void test(`rfc6962 root of the first ${size} leaves (MTH and frontier)`, () => {
    const n = Number(size);
    assert.equal(toHex(rootFromLeaves(leaves.slice(0, n))), root);
    assert.equal(toHex(Frontier.fromLeaves(leaves.slice(0, n)).root()), root);
    if (n === 0) assert.equal(toHex(emptyRoot()), root);
  });
}

for (const c of V.inclusion) {
  void test(`rfc6962 inclusion: leaf ${c.leaf_index} in size ${c.tree_size}`, () => {
    const proof = inclusionProof(c.leaf_index, leaves, c.tree_size);
    assert.deepEqual(proof.map(toHex), c.proof, 'generated proof');
    assert.equal(c.root, V.roots[String(c.tree_size)]);
    verifyInclusion(hex(c.leaf_hash), c.leaf_index, c.tree_size, c.proof.map(hex), hex(c.root));
    assert.equal(toHex(rootFromInclusionProof(hex(c.leaf_hash), c.leaf_index, c.tree_size, proof)), c.root);
    // A different leaf at the same place does not verify.
    const other = leaves[(c.leaf_index + 1) % 8]!;
    throwsTlog(() => verifyInclusion(other, c.leaf_index, c.tree_size, proof, hex(c.root)), 'TLOG_BAD_PROOF');
  });
}

for (const c of V.consistency) {
  void test(`rfc6962 consistency: ${c.size1} → ${c.size2}`, () => {
    const proof = consistencyProof(c.size1, c.size2, leaves);
    assert.deepEqual(proof.map(toHex), c.proof, 'generated proof');
    verifyConsistency(c.size1, c.size2, hex(c.root1), hex(c.root2), c.proof.map(hex));
    // A wrong old root does not verify (equal sizes: it is a fork).
    throwsTlog(
      () => verifyConsistency(c.size1, c.size2, hex(V.roots[String(c.size1 - 1)]!), hex(c.root2), proof),
      c.size1 === c.size2 ? 'TLOG_INCONSISTENT' : 'TLOG_BAD_PROOF',
    );
  });
}

for (const c of V.upstream_inclusion_table) {
  void test(`rfc6962 upstream inclusion table: leaf ${c.leaf_index} in size ${c.tree_size}`, () => {
    assert.deepEqual(inclusionProof(c.leaf_index, leaves, c.tree_size).map(toHex), c.proof);
    verifyInclusion(leaves[c.leaf_index]!, c.leaf_index, c.tree_size, c.proof.map(hex), hex(V.roots[String(c.tree_size)]!));
  });
}

for (const c of V.upstream_consistency_table) {
  void test(`rfc6962 upstream consistency table: ${c.size1} → ${c.size2}`, () => {
    assert.deepEqual(consistencyProof(c.size1, c.size2, leaves).map(toHex), c.proof);
    verifyConsistency(c.size1, c.size2, hex(V.roots[String(c.size1)]!), hex(V.roots[String(c.size2)]!), c.proof.map(hex));
  });
}
