/* eslint-disable @typescript-eslint/no-explicit-any -- vector files are untyped JSON data, checked field by field by the assertions */
/**
 * update.json (§9.1, §13.5): katie's §9.1 update proofs, read by the owner's verifier, one test
 * case per vector — every element consumed in order, the same contact pair, prefix roots and
 * inclusion proof, and the proof's bytes round-tripping.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  DirectoryError,
  ProofReader,
  decodeUpdateResponse,
  encodeUpdateResponse,
  evaluateBatch,
  ibstFrontier,
  isDirectoryError,
  logLeafValue,
  readCombinedTreeProofBytes,
  encodeCombinedTreeProof,
  toHex,
  updateProof,
  updateView,
  type LadderKey,
} from '../src/index.js';
import { hex, kt, logConfig, throwsCode } from './helpers.js';

/** The owner holds no search key for a version the proof asks about: the proof is wrong. */
function noKey(v: number): never {
  throw new DirectoryError('KT_BAD_RESPONSE', `no search key for version ${v}`);
}

function run(c: any, mutate?: (bytes: Uint8Array) => Uint8Array) {
  const i = c.input;
  const config = logConfig(i);
  let bytes = hex(c.expect.proof);
  if (mutate) bytes = mutate(bytes);
  const proof = readCombinedTreeProofBytes(bytes);
  const keys = new Map<number, LadderKey>((i.ladder as any[]).map((k) => [k.version, { vrfOutput: hex(k.vrf_output), ...(k.commitment ? { commitment: hex(k.commitment) } : {}) }]));
  const last: number | undefined = i.last;
  const retained = last === undefined ? undefined : { timestamps: new Map(ibstFrontier(BigInt(last)).map((p) => [Number(p), i.entry_timestamps[Number(p)]] as const)) };
  const reader = new ProofReader(proof, retained);
  const size: number = i.tree_size;
  for (const p of updateView(BigInt(size), last === undefined ? undefined : BigInt(last))) reader.timestamp(Number(p));
  const owner = { starting: i.owner.starting, versionAtStarting: i.owner.version_at_starting ?? -1, upcoming: i.owner.upcoming };
  const out = updateProof(config, size, i.position, i.versions, owner, (v) => keys.get(v) ?? noKey(v), reader);
  reader.readOwedRoots();
  reader.finish();
  return { out, proof, reader, bytes, size, last };
}

void describe('keytrans/update.json (§9.1)', () => {
  for (const c of kt('update.json').cases) {
    void test(c.name, () => {
      const { out, proof, reader, bytes, size, last } = run(c);
      assert.equal(toHex(encodeCombinedTreeProof(proof)), toHex(bytes), 'the proof round-trips byte for byte');
      assert.deepEqual(proof.timestamps, c.expect.timestamps);
      assert.deepEqual(proof.prefixRoots.map(toHex), c.expect.prefix_roots);
      assert.deepEqual(proof.inclusion.map(toHex), c.expect.inclusion);
      const pp = typeof c.expect.prefix_proofs === 'string' ? JSON.parse(c.expect.prefix_proofs) : c.expect.prefix_proofs;
      assert.equal(proof.prefixProofs.length, pp.length);
      proof.prefixProofs.forEach((p, k) => assert.deepEqual(p.elements.map(toHex), pp[k].elements));
      assert.equal(out.distinguished, c.expect.distinguished);
      assert.deepEqual(out.contact, c.expect.contact);
      // Every supplied entry is covered by the inclusion proof: it evaluates to one root.
      const leaves = reader.leaves().map((l) => [l.position, logLeafValue({ timestamp: l.timestamp, prefixTree: l.prefixRoot })] as const);
      if (last === undefined) assert.equal(evaluateBatch(size, leaves, proof.inclusion).length, 32);
      // Inside an UpdateResponse envelope the proof round-trips too.
      const env = { fullTreeHead: { type: 'same' as const }, position: c.input.position, values: [], info: [], binaryLadder: [], update: proof };
      assert.deepEqual(decodeUpdateResponse(encodeUpdateResponse(env, 1), 1), env);
    });
  }

  // The vectors carry no signed head, so a wrong reading shows as a refusal or as a different root.
  const rootOf = (c: any, mutate?: (b: Uint8Array) => Uint8Array): string => {
    const { proof, reader, size } = run(c, mutate);
    const leaves = reader.leaves().map((l) => [l.position, logLeafValue({ timestamp: l.timestamp, prefixTree: l.prefixRoot })] as const);
    return toHex(evaluateBatch(size, leaves, proof.inclusion));
  };
  const refusedOrOther = (honest: string, f: () => string): void => {
    let got: string;
    try {
      got = f();
    } catch (e) {
      assert.ok(isDirectoryError(e), String(e));
      return;
    }
    assert.notEqual(got, honest);
  };

  void test('an owner whose state does not match the log, and any flipped bit, are refused', () => {
    const c = kt('update.json').cases.find((x) => x.name === 'single-version-previous-frontier-inspected')!;
    const honest = rootOf(c);
    // The owner believes its label had version 1 at the start; the log shows 0 as the greatest.
    refusedOrOther(honest, () => rootOf({ ...c, input: { ...c.input, owner: { ...c.input.owner, version_at_starting: 1 } } }));
    // Two versions instead of one.
    refusedOrOther(honest, () => rootOf({ ...c, input: { ...c.input, versions: 2 } }));
    throwsCode(() => run(c, (b) => b.slice(0, b.length - 1)), 'KT_MALFORMED');
    const bytes = hex(c.expect.proof);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: bytes.length * 8 - 1 }), (bit) => {
        refusedOrOther(honest, () =>
          rootOf(c, (b) => {
            const x = b.slice();
            x[bit >> 3]! ^= 1 << (bit & 7);
            return x;
          }),
        );
      }),
      { numRuns: 200 },
    );
  });
});
