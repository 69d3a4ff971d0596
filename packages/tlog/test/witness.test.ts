/**
 * C2SP tlog-witness: the add-checkpoint request format (the spec's example
 * body parses), the witness's checks in the spec's order with their HTTP
 * statuses, the witness policy, and the k-of-n acceptance of a witnessed
 * checkpoint. The HTTP client and the witness process are tested against the
 * real `keyward witness` process in packages/server/test/witness/.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  addSignatures, consistencyProof, cosignatureVerifierKey, cosigner, formatAddCheckpoint, generateSignerKey, leafHash, newSigner, newVerifier,
  inclusionProof, openWitnessedCheckpoint, parseAddCheckpoint, verifyWitnessedLatestEntry, parseVerifierKey, rootFromLeaves, signCheckpoint, witnessCheck, witnessHttpStatus, witnessPolicy,
  type WitnessLogState,
} from '../src/index.js';
import { throwsTlog, utf8 } from './helpers.js';

const ORIGIN = 'example.com/log';
const log = generateSignerKey(ORIGIN, new Uint8Array(32).fill(1));
const other = generateSignerKey(ORIGIN, new Uint8Array(32).fill(2));
const leaves = Array.from({ length: 20 }, (_, i) => leafHash(utf8(`event ${i}`)));
const forked = leaves.map((l, i) => (i === 3 ? leafHash(utf8('forged')) : l));
const cpOf = (n: number, ls = leaves, key = log.signerKey) => signCheckpoint(newSigner(key), { origin: ORIGIN, size: n, root: rootFromLeaves(ls.slice(0, n)) });
const logs = (o: string) => (o === ORIGIN ? [newVerifier(log.verifierKey)] : []);
const stateOf = (n: number, ls = leaves): WitnessLogState => ({ size: n, root: rootFromLeaves(ls.slice(0, n)) });

function witnessKey(name: string, fill: number) {
  const seed = new Uint8Array(32).fill(fill);
  const pub = parseVerifierKey(generateSignerKey(name, seed).verifierKey).publicKey;
  return { name, seed, vkey: cosignatureVerifierKey(name, pub) };
}
const W = [witnessKey('w1.example', 11), witnessKey('w2.example', 12), witnessKey('w3.example', 13)];

void test('the spec example request body parses, and format/parse round-trip', () => {
  const note = cpOf(7);
  const proof = consistencyProof(4, 7, leaves);
  const body = formatAddCheckpoint({ oldSize: 4, proof, checkpoint: note });
  assert.ok(body.startsWith('old 4\n'));
  const back = parseAddCheckpoint(body);
  assert.equal(back.oldSize, 4);
  assert.deepEqual(back.proof, proof);
  assert.equal(back.checkpoint, note);
  assert.deepEqual(parseAddCheckpoint(utf8(body)).proof, proof);
  const spec = 'old 20852014\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\njrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n';
  const r = parseAddCheckpoint(spec);
  assert.equal(r.oldSize, 20852014);
  assert.equal(r.proof.length, 2);
});

void test('malformed requests are TLOG_MALFORMED_WITNESS_MESSAGE (HTTP 400)', () => {
  const note = cpOf(2);
  const h = 'PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n';
  for (const body of [
    `\n${note}`, `old\n\n${note}`, `old 01\n\n${note}`, `old -1\n\n${note}`, `old 1 \n\n${note}`, `OLD 1\n\n${note}`,
    `old 1\n${h}${note}`, // no empty line: the note's first line is read as a hash
    `old 1\nAAAA\n\n${note}`, // not 32 bytes
    `old 1\n${h.repeat(64)}\n${note}`, // 64 proof lines
    'old 1\n\nnot a note\n', `old 1\n${h}`,
  ]) {
    const e = throwsTlog(() => parseAddCheckpoint(body), 'TLOG_MALFORMED_WITNESS_MESSAGE');
    assert.equal(witnessHttpStatus(e.code), 400);
  }
  parseAddCheckpoint(`old 1\n${h.repeat(63)}\n${note}`); // 63 is the limit
});

void test('witnessCheck: a first checkpoint, then consistent growth, are accepted', () => {
  const first = witnessCheck(parseAddCheckpoint(formatAddCheckpoint({ oldSize: 0, proof: [], checkpoint: cpOf(5) })), logs, null);
  assert.equal(first.state.size, 5);
  const next = witnessCheck({ oldSize: 5, proof: consistencyProof(5, 12, leaves), checkpoint: cpOf(12) }, logs, first.state);
  assert.deepEqual(next.state, stateOf(12));
  assert.equal(next.checkpoint.origin, ORIGIN);
  // The same checkpoint again (another node of the log) is accepted.
  witnessCheck({ oldSize: 12, proof: [], checkpoint: cpOf(12) }, logs, next.state);
});

void test('witnessCheck refuses in the spec order, each with its status', () => {
  const st = stateOf(8);
  const refuse = (code: Parameters<typeof throwsTlog>[1], status: number, fn: () => unknown) => {
    const e = throwsTlog(fn, code);
    assert.equal(witnessHttpStatus(e.code), status, `${e.code}`);
  };
  const foreign = signCheckpoint(newSigner(generateSignerKey('other.example/log').signerKey), { origin: 'other.example/log', size: 9, root: rootFromLeaves(leaves.slice(0, 9)) });
  refuse('TLOG_WITNESS_UNKNOWN_LOG', 404, () => witnessCheck({ oldSize: 8, proof: [], checkpoint: foreign }, logs, st));
  refuse('TLOG_NO_VERIFIED_SIGNATURE', 403, () => witnessCheck({ oldSize: 8, proof: consistencyProof(8, 9, leaves), checkpoint: cpOf(9, leaves, other.signerKey) }, logs, st));
  refuse('TLOG_MALFORMED_WITNESS_MESSAGE', 400, () => witnessCheck({ oldSize: 10, proof: [], checkpoint: cpOf(9) }, logs, st));
  // A stale client or a rollback: old size is not what the witness holds.
  refuse('TLOG_WITNESS_CONFLICT', 409, () => witnessCheck({ oldSize: 4, proof: consistencyProof(4, 9, leaves), checkpoint: cpOf(9) }, logs, st));
  refuse('TLOG_WITNESS_CONFLICT', 409, () => witnessCheck({ oldSize: 4, proof: [], checkpoint: cpOf(4) }, logs, st));
  refuse('TLOG_WITNESS_CONFLICT', 409, () => witnessCheck({ oldSize: 0, proof: [], checkpoint: cpOf(9) }, logs, st));
  // A fork at the same size.
  refuse('TLOG_INCONSISTENT', 409, () => witnessCheck({ oldSize: 8, proof: [], checkpoint: cpOf(8, forked) }, logs, st));
  // An inconsistent log: the new tree does not extend the cosigned one.
  refuse('TLOG_BAD_PROOF', 422, () => witnessCheck({ oldSize: 8, proof: consistencyProof(8, 12, forked), checkpoint: cpOf(12, forked) }, logs, st));
  refuse('TLOG_BAD_PROOF', 422, () => witnessCheck({ oldSize: 8, proof: consistencyProof(8, 12, leaves).slice(1), checkpoint: cpOf(12) }, logs, st));
  refuse('TLOG_MALFORMED_WITNESS_MESSAGE', 400, () => witnessCheck({ oldSize: 0, proof: [leaves[0]!], checkpoint: cpOf(3) }, logs, null));
});

void test('witnessPolicy checks names, keys, urls and k', () => {
  const p = witnessPolicy(W.map((w) => ({ name: w.name, url: `http://127.0.0.1:1/${w.name}/`, key: w.vkey })), 2);
  assert.equal(p.k, 2);
  assert.equal(p.witnesses[0]!.url, 'http://127.0.0.1:1/w1.example');
  assert.equal(witnessPolicy([{ name: W[0]!.name, key: W[0]!.vkey }]).k, 1);
  throwsTlog(() => witnessPolicy([{ name: 'other', key: W[0]!.vkey }]), 'TLOG_INVALID_ARGUMENT');
  throwsTlog(() => witnessPolicy([{ name: W[0]!.name, key: W[0]!.vkey }], 2), 'TLOG_INVALID_ARGUMENT');
  throwsTlog(() => witnessPolicy([{ name: W[0]!.name, key: W[0]!.vkey }, { name: W[0]!.name, key: W[0]!.vkey }]), 'TLOG_INVALID_ARGUMENT');
  throwsTlog(() => witnessPolicy([{ name: W[0]!.name, key: W[0]!.vkey, url: 'ftp://x' }]), 'TLOG_INVALID_ARGUMENT');
  throwsTlog(() => witnessPolicy([{ name: ORIGIN, key: log.verifierKey }]), 'TLOG_MALFORMED_KEY'); // a log key is not a witness key
  throwsTlog(() => witnessPolicy([]), 'TLOG_INVALID_ARGUMENT');
});

void test('openWitnessedCheckpoint accepts a head only with k of n cosignatures', () => {
  const policy = witnessPolicy(W.map((w) => ({ name: w.name, key: w.vkey })), 2);
  const note = cpOf(9);
  const at = (t: number) => W.map((w) => cosigner(w.name, w.seed, { now: () => t }));
  const [c1, c2, c3] = at(1_700_000_000);
  const lv = [newVerifier(log.verifierKey)];
  throwsTlog(() => openWitnessedCheckpoint(note, lv, policy, { origin: ORIGIN }), 'TLOG_NOT_ENOUGH_COSIGNATURES');
  throwsTlog(() => openWitnessedCheckpoint(addSignatures(note, [c1!]), lv, policy, { origin: ORIGIN }), 'TLOG_NOT_ENOUGH_COSIGNATURES');
  // Two cosignatures from one witness count once.
  const again = addSignatures(addSignatures(note, [c1!]), [cosigner(W[0]!.name, W[0]!.seed, { now: () => 1_700_000_001 })]);
  throwsTlog(() => openWitnessedCheckpoint(again, lv, policy, { origin: ORIGIN }), 'TLOG_NOT_ENOUGH_COSIGNATURES');
  const ok = openWitnessedCheckpoint(addSignatures(note, [c1!, c3!]), lv, policy, { origin: ORIGIN });
  assert.deepEqual(ok.cosignatures.map((c) => c.name), [W[0]!.name, W[2]!.name]);
  assert.equal(ok.checkpoint.size, 9);
  // Cosignatures of a witness on ANOTHER log's head (a stranger's key) do not count.
  const stranger = witnessKey('w1.example', 99);
  throwsTlog(() => openWitnessedCheckpoint(addSignatures(note, [c1!, cosigner(stranger.name, stranger.seed)]), lv, policy, { origin: ORIGIN }), 'TLOG_NOT_ENOUGH_COSIGNATURES');
  // Stale cosignatures do not count with minTimestamp.
  throwsTlog(() => openWitnessedCheckpoint(addSignatures(note, [c1!, c2!]), lv, policy, { origin: ORIGIN, minTimestamp: 1_700_000_100 }), 'TLOG_NOT_ENOUGH_COSIGNATURES');
  openWitnessedCheckpoint(addSignatures(note, [c1!, c2!]), lv, policy, { origin: ORIGIN, minTimestamp: 1_700_000_000 });
  // Cosigned, but not signed by the log: refused.
  throwsTlog(() => openWitnessedCheckpoint(addSignatures(cpOf(9, leaves, other.signerKey), [c1!, c2!]), lv, policy, { origin: ORIGIN }), 'TLOG_NO_VERIFIED_SIGNATURE');
  // A forged line from a listed witness rejects the note.
  const good = addSignatures(note, [c1!, c2!]);
  const forged = good.replace(/(— w2\.example [A-Za-z0-9+/]{20})([A-Za-z0-9+/])/, (_, a: string, b: string) => a + (b === 'A' ? 'B' : 'A'));
  assert.notEqual(forged, good);
  throwsTlog(() => openWitnessedCheckpoint(forged, lv, policy, { origin: ORIGIN }), ['TLOG_BAD_SIGNATURE', 'TLOG_MALFORMED_NOTE']);
});

void test('verifyWitnessedLatestEntry: a head is accepted only as the last entry of a witnessed head log', () => {
  const policy = witnessPolicy(W.map((w) => ({ name: w.name, key: w.vkey })), 2);
  const heads = Array.from({ length: 6 }, (_, i) => utf8(`keytrans head ${i + 1}`));
  const hl = heads.map((h) => leafHash(h));
  const lv = [newVerifier(log.verifierKey)];
  const cs = W.slice(0, 2).map((w) => cosigner(w.name, w.seed));
  const note = addSignatures(signCheckpoint(newSigner(log.signerKey), { origin: ORIGIN, size: 6, root: rootFromLeaves(hl) }), cs);
  const r = verifyWitnessedLatestEntry(note, heads[5]!, inclusionProof(5, hl), lv, policy, { origin: ORIGIN });
  assert.equal(r.checkpoint.size, 6);
  assert.equal(r.cosignatures.length, 2);
  // An older head (rollback) is in the log but not the latest: refused.
  throwsTlog(() => verifyWitnessedLatestEntry(note, heads[4]!, inclusionProof(4, hl), lv, policy, { origin: ORIGIN }), 'TLOG_BAD_PROOF');
  // A head the witnesses never saw (a second view): refused.
  throwsTlog(() => verifyWitnessedLatestEntry(note, utf8('other head'), inclusionProof(5, hl), lv, policy, { origin: ORIGIN }), 'TLOG_BAD_PROOF');
  // Not enough cosignatures: refused before the proof is looked at.
  const one = addSignatures(signCheckpoint(newSigner(log.signerKey), { origin: ORIGIN, size: 6, root: rootFromLeaves(hl) }), cs.slice(0, 1));
  throwsTlog(() => verifyWitnessedLatestEntry(one, heads[5]!, inclusionProof(5, hl), lv, policy, { origin: ORIGIN }), 'TLOG_NOT_ENOUGH_COSIGNATURES');
});
