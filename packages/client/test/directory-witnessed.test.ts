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
import {
  DEFAULT_MAX_COSIGNATURE_AGE_S, DirectoryWitnessCheck, checkPinnedWitnesses, headLogEntry, parseWitnessConfig, witnessConfigChanges,
  type DirectoryWitnessConfig, type WitnessedHeadAnswer,
} from '../src/index.js';

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

void test('verify says which witnesses cosigned, newest first, and how fresh the k-th is', () => {
  const now = 1_800_000_000;
  const c = new DirectoryWitnessCheck({ logKey: log.verifierKey, witnesses: wit.map((w) => ({ name: w.name, key: w.key })), k: 2 }, () => now * 1000);
  const r = c.verify({ treeSize: 5, root: roots[4]! }, answer(5, [0, 2], 5, [now - 30, now - 5]));
  assert.deepEqual(r, {
    treeSize: 5, k: 2, n: 3, ageSeconds: 30, maxAgeSeconds: DEFAULT_MAX_COSIGNATURE_AGE_S,
    cosignatures: [{ name: 'w3.test', timestamp: now - 5 }, { name: 'w1.test', timestamp: now - 30 }],
  });
});

void test('parseWitnessConfig reads the JSON form (CLI file, GET /v1/directory/config witnesses) and refuses a bad one', () => {
  const json = { log_key: log.verifierKey, k: 2, witnesses: wit.map((w) => ({ name: w.name, key: w.key, url: 'http://x' })), max_age_seconds: 600 };
  assert.deepEqual(parseWitnessConfig(json), { logKey: log.verifierKey, k: 2, witnesses: wit.map((w) => ({ name: w.name, key: w.key })), maxAgeSeconds: 600 });
  assert.deepEqual(parseWitnessConfig({ log_key: log.verifierKey, witnesses: [{ name: 'w1.test', key: wit[0]!.key }] }), { logKey: log.verifierKey, witnesses: [{ name: 'w1.test', key: wit[0]!.key }] });
  for (const bad of [null, 'x', {}, { log_key: log.verifierKey }, { ...json, k: '2' }, { ...json, witnesses: [{ name: 'w1.test' }] }, { ...json, k: 4 }, { ...json, witnesses: [{ name: 'w2.test', key: wit[0]!.key }] }]) {
    assert.equal(codeOf(() => parseWitnessConfig(bad)), 'TLOG_INVALID_ARGUMENT', JSON.stringify(bad));
  }
  assert.equal(codeOf(() => parseWitnessConfig({ ...json, log_key: 'not a key' })), 'TLOG_MALFORMED_KEY');
});

void test('a witness configuration other than the pinned one is refused: KW_CLIENT_WITNESSES_CHANGED, naming each change', () => {
  const pinned: DirectoryWitnessConfig = { logKey: log.verifierKey, witnesses: wit.slice(0, 2).map((w) => ({ name: w.name, key: w.key })), k: 2, maxAgeSeconds: 60 };
  // The same, in another order, without the client's own age bound, k given as the default: accepted.
  const same = { logKey: ` ${log.verifierKey}\n`, witnesses: [...pinned.witnesses].reverse() };
  assert.deepEqual(witnessConfigChanges(pinned, same), []);
  assert.equal(codeOf(() => checkPinnedWitnesses(pinned, same)), 'accepted');
  const other = generateSignerKey('example.test/directory-heads/0011223344556677').verifierKey;
  const w3 = { name: wit[2]!.name, key: wit[2]!.key };
  const rekeyed = cosignatureVerifierKey('w2.test', ed25519.getPublicKey(randomBytes(32)));
  const cases: [DirectoryWitnessConfig | null, string[]][] = [
    [null, ['the server presents no witnesses']],
    [{ ...pinned, k: 1 }, ['k: 2 → 1']],
    [{ ...pinned, witnesses: [pinned.witnesses[0]!], k: 1 }, ['k: 2 → 1', 'witness removed: w2.test']],
    [{ logKey: log.verifierKey, witnesses: [...pinned.witnesses, w3] }, ['k: 2 → 3', 'witness added: w3.test']], // k: all by default
    [{ ...pinned, witnesses: [...pinned.witnesses, w3], k: 2 }, ['witness added: w3.test']],
    [{ ...pinned, witnesses: [pinned.witnesses[0]!, { name: 'w2.test', key: rekeyed }] }, [`witness w2.test: key ${wit[1]!.key} → ${rekeyed}`]],
    [{ ...pinned, logKey: other }, [`head-log key: ${log.verifierKey} → ${other}`]],
  ];
  for (const [served, changes] of cases) {
    assert.deepEqual(witnessConfigChanges(pinned, served), changes);
    assert.equal(codeOf(() => checkPinnedWitnesses(pinned, served)), 'KW_CLIENT_WITNESSES_CHANGED');
  }
});
