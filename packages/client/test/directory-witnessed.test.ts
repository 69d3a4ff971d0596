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
import { DirectoryWitnessCheck, headLogEntry, type WitnessedHeadAnswer } from '../src/index.js';

const log = generateSignerKey('example.test/directory-heads/0011223344556677');
const wit = ['w1.test', 'w2.test', 'w3.test'].map((name) => {
  const seed = randomBytes(32);
  return { name, seed, key: cosignatureVerifierKey(name, ed25519.getPublicKey(seed)) };
});
const roots = Array.from({ length: 5 }, () => new Uint8Array(randomBytes(32)));
const leaves = roots.map((r, i) => leafHash(headLogEntry(i + 1, r)));

function answer(size: number, cosigners: readonly number[], proofFor = size): WitnessedHeadAnswer {
  const note = signCheckpoint(newSigner(log.signerKey), { origin: 'example.test/directory-heads/0011223344556677', size, root: rootFromLeaves(leaves.slice(0, size)) });
  const cosigned = addSignatures(note, cosigners.map((i) => cosigner(wit[i]!.name, wit[i]!.seed)));
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
