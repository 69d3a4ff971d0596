/**
 * C2SP tlog-cosignature (cosignature/v1, type 0x04):
 * shared/vectors/checkpoint/cosignature-v1-constructed.json (the valid one
 * verifies and is reproduced byte for byte; each must_fail fails), the spec's
 * example line, and the k-of-n policy helper.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ed25519 } from '@noble/curves/ed25519.js';
import {
  addSignatures,
  cosignatureMessage,
  cosignatureVerifier,
  cosignatureVerifierKey,
  cosigner,
  generateSignerKey,
  newCosignatureVerifier,
  newCosigner,
  newSigner,
  newVerifier,
  openCheckpoint,
  openNote,
  parseCosignature,
  parseNote,
  parseVerifierKey,
  requireCosignatures,
  signCheckpoint,
} from '../src/index.js';
import { hex, readVector, throwsTlog, toHex, utf8, type CosignatureVector, type UnkeyedCase } from './helpers.js';

const C = readVector<CosignatureVector>('checkpoint/cosignature-v1-constructed.json');
const UNKEYED = readVector<{ cases: UnkeyedCase[] }>('checkpoint/spec-examples-unkeyed.json').cases;
const hex8 = (n: number): string => n.toString(16).padStart(8, '0');
const fixedClock = { now: () => C.timestamp };

void test('cosignature vector: the type-0x04 key decodes and its ID recomputes', () => {
  const k = parseVerifierKey(C.vkey_type04_cosignature);
  assert.equal(k.type, 0x04);
  assert.equal(k.name, C.cosigner_name);
  assert.equal(hex8(k.keyId), C.key_id_type04);
  assert.equal(toHex(k.publicKey), C.public_key_hex);
  assert.equal(cosignatureVerifierKey(C.cosigner_name, hex(C.public_key_hex)), C.vkey_type04_cosignature);
  assert.equal(hex8(newCosigner(C.construction.cosigner_private_key).keyId), C.key_id_type04);
});

void test('cosignature vector: the signed message is cosignature/v1, time, then the body', () => {
  assert.equal(new TextDecoder().decode(cosignatureMessage(C.checkpoint_body, C.timestamp)), C.signed_message);
});

void test('cosignature vector: cosigning reproduces the line and the cosigned note byte for byte', () => {
  const logSigned = C.cosigned_note.split('\n').filter((l: string) => !l.startsWith(`\u2014 ${C.cosigner_name} `)).join('\n');
  const w = newCosigner(C.construction.cosigner_private_key, fixedClock);
  const cosigned = addSignatures(logSigned, [w]);
  assert.equal(cosigned, C.cosigned_note);
  assert.ok(cosigned.includes(C.cosignature_line + '\n'));
  assert.equal(toHex(parseCosignature(parseNote(cosigned).signatures[1]!.signature).signature), C.signature_hex);
});

void test('cosignature vector: the valid cosignature verifies', () => {
  const w = newCosignatureVerifier(C.vkey_type04_cosignature);
  const { cosignatures } = requireCosignatures(C.cosigned_note, [w], 1);
  assert.deepEqual(cosignatures.map((c) => [c.name, hex8(c.keyId), c.timestamp]), [[C.cosigner_name, C.key_id_type04, C.timestamp]]);
  assert.equal(openNote(C.cosigned_note, [w]).verified.length, 1);
  assert.ok(ed25519.verify(hex(C.signature_hex), utf8(C.signed_message), hex(C.public_key_hex)));
});

void test(`cosignature vector must_fail: ${C.must_fail[0]!.what}`, () => {
  const tampered = C.cosigned_note.replace(C.cosignature_line, C.must_fail[0]!.line!);
  assert.notEqual(tampered, C.cosigned_note);
  const w = newCosignatureVerifier(C.vkey_type04_cosignature);
  throwsTlog(() => requireCosignatures(tampered, [w], 1), 'TLOG_BAD_SIGNATURE');
  throwsTlog(() => openNote(tampered, [w]), 'TLOG_BAD_SIGNATURE');
});

void test(`cosignature vector must_fail: ${C.must_fail[1]!.what}`, () => {
  // The Ed25519 signature does not verify over the body alone …
  assert.equal(ed25519.verify(hex(C.signature_hex), utf8(C.checkpoint_body), hex(C.public_key_hex)), false);
  // … and with the type-0x01 key of the same seed the line is not even addressed to it (other key ID).
  throwsTlog(() => openNote(C.cosigned_note.slice(C.cosigned_note.indexOf('\u2014 Wit1')).replace(/^/, C.checkpoint_body + '\n'), [newVerifier(C.vkey_type01_upstream)]), 'TLOG_NO_VERIFIED_SIGNATURE');
  // A plain verifier forced onto the cosignature's name and key ID rejects it.
  const pk = hex(C.public_key_hex);
  const forced = {
    name: C.cosigner_name,
    keyId: parseInt(C.key_id_type04, 16),
    verify: (t: Uint8Array, s: Uint8Array) => s.length === 72 && ed25519.verify(s.subarray(8), t, pk),
  };
  throwsTlog(() => openNote(C.cosigned_note, [forced]), 'TLOG_BAD_SIGNATURE');
});

void test(`cosignature vector must_fail: ${C.must_fail[2]!.what}`, () => {
  const [origin, size] = C.checkpoint_body.split('\n');
  const otherRoot = Buffer.alloc(32, 7).toString('base64');
  const tampered = C.cosigned_note.replace(C.checkpoint_body, `${origin}\n${size}\n${otherRoot}\n`);
  assert.notEqual(tampered, C.cosigned_note);
  throwsTlog(() => requireCosignatures(tampered, [newCosignatureVerifier(C.vkey_type04_cosignature)], 1), 'TLOG_BAD_SIGNATURE');
});

void test('spec example (tlog-cosignature.md): the witness line carries key ID 8d66cf3f and time 1679315147', () => {
  const c = UNKEYED.find((x) => x.name === 'tlog-cosignature-example')!;
  const sigs = parseNote(c.note).signatures;
  const w = sigs[1]!;
  assert.equal(w.name, 'witness.example.com/w1');
  assert.equal(hex8(w.keyId), c.parsed.signatures[1]!.key_id);
  const p = parseCosignature(w.signature);
  assert.equal(p.timestamp, c.parsed.signatures[1]!.timestamp);
  assert.equal(p.signature.length, 64);
  assert.equal(new TextDecoder().decode(cosignatureMessage(parseNote(c.note).text, p.timestamp)), c.cosigned_message);
});

// --- policy ------------------------------------------------------------------

function setup(): { note: string; origin: string; logV: ReturnType<typeof newVerifier>; seeds: Uint8Array[] } {
  const origin = 'example.com/audit';
  const log = generateSignerKey(origin);
  const note = signCheckpoint(newSigner(log.signerKey), { origin, size: 3, root: new Uint8Array(32).fill(1) });
  const seeds = [1, 2, 3].map((i) => new Uint8Array(32).fill(i));
  return { note, origin, logV: newVerifier(log.verifierKey), seeds };
}

const witnessV = (name: string, seed: Uint8Array) => cosignatureVerifier(name, ed25519.getPublicKey(seed));

void test('requireCosignatures: k-of-n over distinct witnesses; the log signature is ignored', () => {
  const { note, origin, logV, seeds } = setup();
  const names = ['w1.example', 'w2.example', 'w3.example'];
  const ws = names.map((n, i) => witnessV(n, seeds[i]!));
  const two = addSignatures(note, [cosigner(names[0]!, seeds[0]!, { now: () => 100 }), cosigner(names[2]!, seeds[2]!, { now: () => 200 })]);
  assert.equal(openCheckpoint(two, [logV], { origin }).checkpoint.size, 3);
  const r = requireCosignatures(two, ws, 2);
  assert.deepEqual(r.cosignatures.map((c) => [c.name, c.timestamp]), [['w1.example', 100], ['w3.example', 200]]);
  throwsTlog(() => requireCosignatures(two, ws, 3), 'TLOG_NOT_ENOUGH_COSIGNATURES');
  throwsTlog(() => requireCosignatures(note, ws, 1), 'TLOG_NOT_ENOUGH_COSIGNATURES');
  // The same witness twice counts once.
  const dup = addSignatures(two, [cosigner(names[0]!, seeds[0]!, { now: () => 300 })]);
  assert.equal(requireCosignatures(dup, ws, 2).cosignatures.length, 2);
  // Cosignatures from the future do not count.
  assert.equal(requireCosignatures(two, ws, 1, { maxTimestamp: 150 }).cosignatures.length, 1);
  throwsTlog(() => requireCosignatures(two, ws, 2, { maxTimestamp: 150 }), 'TLOG_NOT_ENOUGH_COSIGNATURES');
});

void test('requireCosignatures refuses bad policies', () => {
  const { note, seeds } = setup();
  const w1 = witnessV('w1.example', seeds[0]!);
  throwsTlog(() => requireCosignatures(note, [w1], 0), 'TLOG_INVALID_ARGUMENT');
  throwsTlog(() => requireCosignatures(note, [w1], 2), 'TLOG_INVALID_ARGUMENT');
  throwsTlog(() => requireCosignatures(note, [], 1), 'TLOG_INVALID_ARGUMENT');
  // One key under two names would let one witness count twice.
  throwsTlog(() => requireCosignatures(note, [w1, witnessV('alias.example', seeds[0]!)], 2), 'TLOG_INVALID_ARGUMENT');
  // A plain note verifier is not a witness.
  throwsTlog(() => requireCosignatures(note, [newVerifier(generateSignerKey('x').verifierKey) as never], 1), 'TLOG_INVALID_ARGUMENT');
});

void test('cosignature parse and key errors', () => {
  throwsTlog(() => parseCosignature(new Uint8Array(64)), 'TLOG_MALFORMED_NOTE');
  const huge = new Uint8Array(72);
  huge[0] = 0x80;
  throwsTlog(() => parseCosignature(huge), 'TLOG_MALFORMED_NOTE');
  throwsTlog(() => newCosignatureVerifier(C.vkey_type01_upstream), 'TLOG_MALFORMED_KEY');
  throwsTlog(() => cosigner('w', new Uint8Array(32), { now: () => -1 }).sign(utf8('x\n')), 'TLOG_INVALID_ARGUMENT');
  // A type-0x04 private key string works too.
  const seed = hex(C.seed_hex);
  const skey04 = `PRIVATE+KEY+Wit1+${C.key_id_type04}+${Buffer.concat([Buffer.from([4]), seed]).toString('base64')}`;
  assert.equal(hex8(newCosigner(skey04).keyId), C.key_id_type04);
  throwsTlog(() => newSigner(skey04), 'TLOG_MALFORMED_KEY');
});
