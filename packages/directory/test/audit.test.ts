/* eslint-disable @typescript-eslint/no-explicit-any -- vector files are untyped JSON data, checked field by field by the assertions */
/**
 * §15.2 third-party auditing: prefix-mutation.json (the prefix tree before/after an audited
 * update, replayed from its proof) and auditor-update.json (AuditorUpdate bytes and the stateful
 * auditor's verdict), plus the prefix-mutation and auditor-update kinds of from-kt.json. One test
 * case per vector.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Auditor,
  ZERO_HASH,
  decodeAuditorUpdate,
  decodePrefixProof,
  encodeAuditorUpdate,
  encodePrefixProof,
  isDirectoryError,
  prefixBeforeAfter,
  prefixInsert,
  prefixProve,
  toHex,
  type PrefixLeaf,
} from '../src/index.js';
import { hex, kt, memoryTree } from './helpers.js';

const leaf = (e: any): PrefixLeaf => ({ vrfOutput: hex(e.vrf_output), commitment: hex(e.commitment) });

/** Builds the prefix tree of `entries`; returns its root and a node reader. */
async function tree(entries: any[]) {
  const { read, nodes } = memoryTree();
  let root: Uint8Array = ZERO_HASH;
  for (const e of entries) root = (await prefixInsert(read, root, leaf(e), nodes)).root;
  return { root, read };
}

void describe('keytrans/prefix-mutation.json (§15.2, §3.3)', () => {
  for (const c of kt('prefix-mutation.json').cases) {
    void test(c.name, async () => {
      const i = c.input;
      const e = c.expect;
      const { root, read } = await tree(i.entries);
      assert.equal(toHex(root), e.before);
      const added = (i.add as any[]).map(leaf);
      const removed = (i.remove as any[]).map(leaf);
      // Our builder's batch proof for the keys, added first, is the vector's byte for byte.
      const proof = await prefixProve(read, root, [...added, ...removed].map((l) => l.vrfOutput));
      assert.equal(toHex(encodePrefixProof(proof)), e.proof);
      const m = prefixBeforeAfter(added, removed, decodePrefixProof(hex(e.proof)));
      assert.equal(toHex(m.before), e.before);
      // The builder (katie's Tree.Mutate) is the oracle; where a removal's sibling is a bare hash
      // the root is not a function of the proof and both implementations assume no collapse.
      // A removal whose sibling is a bare copath hash (remove-beside-a-leaf): the root is not a
      // function of the proof; like katie's verifier we assume no collapse (`peer_after`), and the
      // vector's `after` shows the assumption did not hold there.
      if (e.sibling_uncovered) assert.ok(m.siblingUncovered);
      assert.equal(toHex(m.after), m.siblingUncovered ? e.peer_after : e.after);
    });
  }
});

function stateOf(i: any) {
  if (i.first_entry || i.log_size === 0) return undefined;
  return {
    treeSize: i.log_size,
    fullSubtrees: (i.log_full_subtrees as string[]).map(hex),
    frontierTimestamps: i.frontier_timestamps,
    timestamp: i.previous_timestamp,
    prefixRoot: hex(i.prefix_root),
    inserted: (i.inserted as any[]).map((x) => ({ position: x.position, vrfOutput: hex(x.vrf_output) })),
  };
}

void describe('keytrans/auditor-update.json (§15.2)', () => {
  for (const c of kt('auditor-update.json').cases) {
    void test(`${c.name} (${c.expect.verdict})`, async () => {
      const i = c.input;
      const e = c.expect;
      const { root, read } = await tree(i.entries);
      assert.equal(toHex(root), i.prefix_root);
      const bytes = hex(e.encoding);
      if (e.verdict === 'accepted') {
        // The log side: the update our builder writes for this change is the vector's byte for byte.
        const added = (i.added as any[]).map(leaf);
        const removed = (i.removed as any[]).map(leaf);
        const proof = await prefixProve(read, root, [...added, ...removed].map((l) => l.vrfOutput));
        assert.equal(toHex(encodeAuditorUpdate({ timestamp: i.timestamp, added, removed, proof })), e.encoding);
      }
      const auditor = new Auditor(i.window, stateOf(i));
      const before = auditor.state;
      let update;
      try {
        update = decodeAuditorUpdate(bytes);
      } catch (err) {
        assert.equal(e.verdict, 'rejected', String(err));
        assert.ok(isDirectoryError(err, 'KT_MALFORMED'));
        return;
      }
      assert.equal(toHex(encodeAuditorUpdate(update)), e.encoding, 'decoding round-trips');
      if (e.verdict === 'accepted') {
        auditor.process(update);
        assert.equal(auditor.state!.treeSize, e.tree_size);
        assert.equal(toHex(auditor.root()), e.log_root);
      } else {
        assert.throws(() => auditor.process(update), (err: unknown) => isDirectoryError(err), e.peer_detail);
        assert.equal(auditor.state, before, 'a refused update changes nothing');
      }
    });
  }
});

void describe('keytrans/from-kt.json: prefix-mutation and auditor-update', () => {
  const cases = kt('from-kt.json').cases as any[];
  for (const c of cases.filter((x) => x.kind === 'prefix-mutation')) {
    void test(`${c.name} (${c.expect})`, () => {
      const m = prefixBeforeAfter((c.added as any[]).map(leaf), (c.removed as any[]).map(leaf), decodePrefixProof(hex(c.proof)));
      assert.equal(c.expect, 'accept');
      assert.equal(toHex(m.before), c.before);
      assert.equal(toHex(m.after), c.after);
    });
  }
  for (const c of cases.filter((x) => x.kind === 'auditor-update')) {
    void test(`${c.name} (${c.expect})`, () => {
      // Structure only: the case carries the bytes; its content is the matching mutation case's.
      const u = decodeAuditorUpdate(hex(c.encoding));
      assert.equal(toHex(encodeAuditorUpdate(u)), c.encoding);
      const m = cases.find((x) => x.kind === 'prefix-mutation' && x.name === c.name.replace('auditor-update-', 'mutation-'));
      assert.ok(m, 'a matching prefix-mutation case');
      const r = prefixBeforeAfter(u.added, u.removed, u.proof);
      assert.equal(toHex(r.before), m.before);
      assert.equal(toHex(r.after), m.after);
      assert.equal(c.expect, 'accept');
    });
  }
});
