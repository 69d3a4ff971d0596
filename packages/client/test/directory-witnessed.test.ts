/**
 * DirectoryWitnessCheck (docs/witness.md §The directory): a KEYTRANS head is
 * accepted only as the latest entry of a head-log checkpoint signed by the
 * head log and cosigned by k of the client's witnesses.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { addSignatures, cosigner, cosignatureVerifierKey, generateSignerKey, inclusionProof, leafHash, newSigner, rootFromLeaves, signCheckpoint } from '@keyward/tlog';
import { base64urlnopad } from '@scure/base';
import { DEFAULT_MAX_COSIGNATURE_AGE_S, DirectoryWitnessCheck, headLogEntry, type WitnessedHeadAnswer } from '../src/index.js';

const log = generateSignerKey('example.test/directory-heads/0011223344556677');
const wit = ['w1.test', 'w2.test', 'w3.test'].map((name) => {
  const seed = randomBytes(32);
  return { name, seed, key: cosignatureVerifierKey(name, ed25519.getPublicKey(seed)) };
});
const roots = Array.from({ length: 5 }, () => new Uint8Array(randomBytes(32)));
const leaves = roots.map((r, i) => leafHash(headLogEntry(i + 1, r)));

/** `at`: each cosigner's clock, POSIX seconds (default now). */
function answer(size: number, cosigners: readonly number[], proofFor = size, at: readonly number[] = []): WitnessedHeadAnswer {
  const note = signCheckpoint(newSigner(log.signerKey), { origin: 'example.test/directory-heads/0011223344556677', size, root: rootFromLeaves(leaves.slice(0, size)) });
  const cosigned = addSignatures(note, cosigners.map((i, j) => cosigner(wit[i]!.name, wit[i]!.seed, at[j] !== undefined ? { now: () => at[j]! } : {})));
  return { tree_size: size, root: base64urlnopad.encode(roots[size - 1]!), checkpoint: cosigned, proof: inclusionProof(proofFor - 1, leaves.slice(0, size)).map((p) => base64urlnopad.encode(p)) };
}

const codeOf = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    return (e as { code: string }).code;
  }
  return 'accepted';
};

const check = new DirectoryWitnessCheck({ logKey: log.verifierKey, witnesses: wit.map((w) => ({ name: w.name, key: w.key })), k: 2 });

void test('headLogEntry is uint64(size) ‖ root', () => {
  const e = headLogEntry(258, new Uint8Array(32).fill(7));
  assert.deepEqual([...e.subarray(0, 8)], [0, 0, 0, 0, 0, 0, 1, 2]);
  assert.deepEqual([...e.subarray(8)], Array(32).fill(7));
  assert.equal(codeOf(() => headLogEntry(0, new Uint8Array(32))), 'TLOG_INVALID_ARGUMENT');
  assert.equal(codeOf(() => headLogEntry(1, new Uint8Array(31))), 'TLOG_INVALID_ARGUMENT');
});

void test('the latest head with k cosignatures is accepted', () => {
  assert.equal(check.origin, 'example.test/directory-heads/0011223344556677');
  assert.equal(codeOf(() => check.verify({ treeSize: 5, root: roots[4]! }, answer(5, [0, 2]))), 'accepted');
  assert.equal(codeOf(() => check.verify({ treeSize: 5, root: roots[4]! }, answer(5, [0, 1, 2]))), 'accepted');
});

void test('fewer than k cosignatures, no answer, or an older witnessed head: TLOG_NOT_ENOUGH_COSIGNATURES', () => {
  assert.equal(codeOf(() => check.verify({ treeSize: 5, root: roots[4]! }, answer(5, [1]))), 'TLOG_NOT_ENOUGH_COSIGNATURES');
  assert.equal(codeOf(() => check.verify({ treeSize: 5, root: roots[4]! }, null)), 'TLOG_NOT_ENOUGH_COSIGNATURES');
  assert.equal(codeOf(() => check.verify({ treeSize: 5, root: roots[4]! }, answer(4, [0, 1]))), 'TLOG_NOT_ENOUGH_COSIGNATURES');
});

void test('an older head (rollback) or another root (second view) is not the latest entry: TLOG_BAD_PROOF', () => {
  // The honest witnessed checkpoint of size 5, shown with the head of size 3 and a proof for leaf 2.
  assert.equal(codeOf(() => check.verify({ treeSize: 3, root: roots[2]! }, answer(5, [0, 1], 3))), 'TLOG_BAD_PROOF');
  assert.equal(codeOf(() => check.verify({ treeSize: 5, root: new Uint8Array(randomBytes(32)) }, answer(5, [0, 1]))), 'TLOG_BAD_PROOF');
});

void test('a checkpoint signed by another log key, or a malformed proof, is refused; a bad configuration is refused', () => {
  const other = new DirectoryWitnessCheck({ logKey: generateSignerKey('example.test/directory-heads/0011223344556677').verifierKey, witnesses: wit.map((w) => ({ name: w.name, key: w.key })), k: 2 });
  assert.equal(codeOf(() => other.verify({ treeSize: 5, root: roots[4]! }, answer(5, [0, 1]))), 'TLOG_NO_VERIFIED_SIGNATURE');
  assert.equal(codeOf(() => check.verify({ treeSize: 5, root: roots[4]! }, { ...answer(5, [0, 1]), proof: ['***'] })), 'TLOG_MALFORMED_WITNESS_MESSAGE');
  assert.equal(codeOf(() => new DirectoryWitnessCheck({ logKey: log.verifierKey, witnesses: [{ name: 'w1.test', key: wit[0]!.key }], k: 2 })), 'TLOG_INVALID_ARGUMENT');
  assert.equal(codeOf(() => new DirectoryWitnessCheck({ logKey: 'not a key', witnesses: [{ name: 'w1.test', key: wit[0]!.key }] })), 'TLOG_MALFORMED_KEY');
});

void test('freshness: the k-th freshest cosignature older than maxAgeSeconds is refused (TLOG_STALE_COSIGNATURES)', () => {
  const now = 1_800_000_000;
  const fresh = new DirectoryWitnessCheck({ logKey: log.verifierKey, witnesses: wit.map((w) => ({ name: w.name, key: w.key })), k: 2, maxAgeSeconds: 3600 }, () => now * 1000);
  const head = { treeSize: 5, root: roots[4]! };
  // Both within the hour: accepted. One fresh, one two hours old: the 2nd freshest is stale.
  assert.equal(codeOf(() => fresh.verify(head, answer(5, [0, 1], 5, [now - 10, now - 3500]))), 'accepted');
  assert.equal(codeOf(() => fresh.verify(head, answer(5, [0, 1], 5, [now - 10, now - 7200]))), 'TLOG_STALE_COSIGNATURES');
  // A third witness's fresh line makes two fresh ones: accepted again.
  assert.equal(codeOf(() => fresh.verify(head, answer(5, [0, 1, 2], 5, [now - 10, now - 7200, now - 60]))), 'accepted');
  // An old, once legitimately cosigned checkpoint replayed later (a rollback for a client without state).
  assert.equal(codeOf(() => fresh.verify(head, answer(5, [0, 1, 2], 5, [now - 90_000, now - 90_000, now - 90_000]))), 'TLOG_STALE_COSIGNATURES');
  // The default maximum age is one day.
  const byDefault = new DirectoryWitnessCheck({ logKey: log.verifierKey, witnesses: wit.map((w) => ({ name: w.name, key: w.key })), k: 2 }, () => now * 1000);
  assert.equal(byDefault.maxAgeSeconds, DEFAULT_MAX_COSIGNATURE_AGE_S);
  assert.equal(codeOf(() => byDefault.verify(head, answer(5, [0, 1], 5, [now - 80_000, now - 80_000]))), 'accepted');
  assert.equal(codeOf(() => byDefault.verify(head, answer(5, [0, 1], 5, [now - 90_000, now - 90_000]))), 'TLOG_STALE_COSIGNATURES');
  assert.equal(codeOf(() => new DirectoryWitnessCheck({ logKey: log.verifierKey, witnesses: wit.map((w) => ({ name: w.name, key: w.key })), maxAgeSeconds: 0 })), 'TLOG_INVALID_ARGUMENT');
});
