/* eslint-disable @typescript-eslint/no-explicit-any -- vector files are untyped JSON data, checked field by field by the assertions */
/**
 * The log tree (log-tree.json, log-append.json, log-math.json) and the prefix tree
 * (prefix-tree.json), one test case per vector; tampered.json (all 22 must-reject) and
 * from-kt.json (the log-tree and prefix-tree kinds, accept and reject).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  LogFrontier,
  batchCopath,
  commit,
  decodeConfiguration,
  decodeInclusionProof,
  decodePrefixProof,
  encodeConfiguration,
  encodeInclusionProof,
  encodePrefixProof,
  evaluateBatch,
  evaluatePrefixProof,
  fullSubtrees,
  isDirectoryError,
  logLeafValue,
  logRoot,
  logSubtreeValue,
  nodeIndex,
  prefixInsert,
  prefixProve,
  proveBatch,
  verifyBatch,
  verifyCommitment,
  verifyPrefixProof,
  verifyTreeHead,
  vrfVerify,
  ZERO_HASH,
} from '../src/index.js';
import { configOf, hex, kt, memoryTree, throwsCode, toHex } from './helpers.js';

void describe('keytrans/log-tree.json (§3.2, §11.8, §12.1)', () => {
  for (const c of kt('log-tree.json').cases) {
    void test(c.name, () => {
      const leaves = (c.input.entries as any[]).map((e) => logLeafValue({ timestamp: e.timestamp, prefixTree: hex(e.prefix_tree) }));
      assert.deepEqual(leaves.map(toHex), c.expect.leaf_values);
      const root = logRoot(leaves);
      assert.equal(toHex(root), c.expect.root);
      assert.deepEqual(
        fullSubtrees(leaves.length).map((r) => toHex(logSubtreeValue(leaves, r.start, r.len))),
        c.expect.full_subtrees,
      );
      const source = (s: number, l: number): Uint8Array => logSubtreeValue(leaves, s, l);
      (c.input.requests as any[]).forEach((req, i) => {
        const want = c.expect.proofs[i];
        const retainedSize: number | undefined = req.retained_size;
        const elements = proveBatch(source, leaves.length, req.proven_leaves, retainedSize);
        assert.deepEqual(elements.map(toHex), want.elements, `request ${i} elements`);
        assert.equal(toHex(encodeInclusionProof(elements)), want.proof, `request ${i} encoding`);
        const decoded = decodeInclusionProof(hex(want.proof));
        const retained =
          retainedSize === undefined ? undefined : { size: retainedSize, heads: fullSubtrees(retainedSize).map((r) => source(r.start, r.len)) };
        verifyBatch(leaves.length, (req.proven_leaves as number[]).map((j) => [j, leaves[j]!] as const), decoded, root, retained);
      });
    });
  }
});

void describe('keytrans/log-append.json (§3.2, §11.8): a frontier grown one leaf at a time', () => {
  const frontier = new LogFrontier();
  for (const c of kt('log-append.json').cases) {
    void test(c.name, () => {
      const e = c.input.entries[c.input.entries.length - 1];
      const leaf = logLeafValue({ timestamp: e.timestamp, prefixTree: hex(e.prefix_tree) });
      assert.equal(toHex(leaf), c.input.leaves[c.input.size - 1]);
      frontier.append(leaf);
      assert.equal(frontier.size, c.input.size);
      assert.deepEqual(frontier.fullSubtreeHeads.map(toHex), c.expect.full_subtrees);
      assert.equal(toHex(frontier.root()), c.expect.root);
      assert.equal(toHex(logRoot((c.input.leaves as string[]).map(hex))), c.expect.root);
    });
  }
});

void describe('keytrans/log-math.json (§3.2, §4.2, §12.1): tree decomposition in node indices', () => {
  for (const c of kt('log-math.json').cases) {
    void test(c.name, () => {
      const i = c.input;
      const got =
        i.kind === 'full-subtrees' ? fullSubtrees(i.size).map(nodeIndex) : batchCopath(i.size, i.leaves, i.retained_size ?? undefined).map(nodeIndex);
      assert.deepEqual(got, c.expect.indices);
    });
  }
});

void describe('keytrans/prefix-tree.json (§3.3, §11.9, §12.2)', () => {
  for (const c of kt('prefix-tree.json').cases) {
    void test(c.name, async () => {
      const { read, nodes } = memoryTree();
      let root: Uint8Array = ZERO_HASH;
      for (const e of c.input.entries) {
        const r = await prefixInsert(read, root, { vrfOutput: hex(e.vrf_output), commitment: hex(e.commitment) });
        for (const [k, n] of r.nodes) nodes.set(k, n);
        root = r.root;
      }
      assert.equal(toHex(root), c.expect.root);
      const keys = (c.input.searches as string[]).map(hex);
      const proof = await prefixProve(read, root, keys);
      assert.equal(toHex(encodePrefixProof(proof)), c.expect.proof);
      assert.deepEqual(proof.elements.map(toHex), c.expect.elements);
      const decoded = decodePrefixProof(hex(c.expect.proof));
      const lookups = keys.map((k, j) => ({ vrfOutput: k, ...(c.expect.commitments?.[j] ? { commitment: hex(c.expect.commitments[j]) } : {}) }));
      verifyPrefixProof(lookups, decoded, root);
    });
  }
});

/** Runs one log-tree or prefix-tree must-reject/accept case shared by tampered.json and from-kt.json. */
function treeCase(i: any): void {
  if (i.kind === 'log-tree') {
    const retained = i.retained_size ? { size: i.retained_size, heads: (i.retained as string[]).map(hex) } : undefined;
    const leaves = (i.entries as number[]).map((j, k) => [j, hex(i.values[k])] as const);
    verifyBatch(i.size, leaves, (i.elements as string[]).map(hex), hex(i.root), retained);
    return;
  }
  if (i.kind === 'prefix-tree') {
    const lookups = (i.searches as any[]).map((s) => ({ vrfOutput: hex(s.vrf_output), ...(s.commitment ? { commitment: hex(s.commitment) } : {}) }));
    verifyPrefixProof(lookups, decodePrefixProof(hex(i.proof)), hex(i.root));
    return;
  }
  throw new Error(`not a tree case: ${i.kind}`);
}

void describe('keytrans/tampered.json: all 22 must be rejected with a typed error', () => {
  const file = kt('tampered.json');
  assert.equal(file.cases.length, 22);
  for (const c of file.cases) {
    void test(`${c.name} (${c.expect.tamper})`, () => {
      assert.equal(c.expect.error, true);
      const i = c.input;
      const expected = {
        'log-tree': 'KT_BAD_LOG_PROOF',
        'prefix-tree': 'KT_BAD_PREFIX_PROOF',
        vrf: 'KT_BAD_VRF_PROOF',
        commitment: 'KT_BAD_COMMITMENT',
        'tree-head': 'KT_BAD_SIGNATURE',
      }[i.kind as string] as any;
      assert.ok(expected, `unknown kind ${i.kind}`);
      throwsCode(() => {
        switch (i.kind) {
          case 'vrf':
            return vrfVerify(hex(i.public_key), hex(i.label), i.version, hex(i.proof));
          case 'commitment':
            return verifyCommitment(hex(i.commitment), hex(i.opening), hex(i.label), i.version, { value: hex(i.update.value) });
          case 'tree-head': {
            const config = decodeConfiguration(encodeConfiguration(configOf(i)));
            return verifyTreeHead(config, { treeSize: i.tree_size, signature: hex(i.signature) }, hex(i.root));
          }
          default:
            return treeCase(i);
        }
      }, expected);
    });
  }
  void test('control: the untampered commitment of the tampered set verifies', () => {
    const c = file.cases.find((x) => x.name === 'commitment-wrong-value')!.input;
    const value = hex('6b65792d6d6174657269616c2d31');
    assert.equal(toHex(commit(hex(c.opening), hex(c.label), 0, { value })), c.commitment);
  });
});

void describe('keytrans/from-kt.json: proofs built by another implementation', () => {
  const file = kt('from-kt.json');
  for (const c of file.cases as any[]) {
    if (c.kind !== 'log-tree' && c.kind !== 'prefix-tree') continue;
    void test(`${c.kind} ${c.name} → ${c.expect}`, () => {
      if (c.expect === 'accept') {
        treeCase(c);
        if (c.kind === 'log-tree') {
          const retained = c.retained_size ? { size: c.retained_size, heads: (c.retained as string[]).map(hex) } : undefined;
          const leaves = (c.entries as number[]).map((j, k) => [j, hex(c.values[k])] as const);
          assert.equal(toHex(evaluateBatch(c.size, leaves, (c.elements as string[]).map(hex), retained)), c.root);
        } else {
          const lookups = (c.searches as any[]).map((s) => ({ vrfOutput: hex(s.vrf_output), ...(s.commitment ? { commitment: hex(s.commitment) } : {}) }));
          assert.equal(toHex(evaluatePrefixProof(lookups, decodePrefixProof(hex(c.proof)))), c.root);
        }
        return;
      }
      assert.throws(
        () => treeCase(c),
        (e: unknown) => isDirectoryError(e) && ['KT_BAD_LOG_PROOF', 'KT_BAD_PREFIX_PROOF', 'KT_MALFORMED'].includes(e.code),
      );
    });
  }
});
