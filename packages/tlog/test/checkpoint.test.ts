/**
 * C2SP tlog-checkpoint: the real sum.golang.org checkpoint, the spec example,
 * signing round trips and strict parsing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  Frontier,
  formatCheckpoint,
  generateSignerKey,
  leafHash,
  newSigner,
  newVerifier,
  openCheckpoint,
  parseCheckpoint,
  parseNote,
  signCheckpoint,
  signNote,
  verifyInclusion,
  inclusionProof,
} from '../src/index.js';
import { b64, hasControl, hex, readVector, throwsTlog, toHex, utf8, type SignedNoteCase, type UnkeyedCase } from './helpers.js';

const SIGNED = readVector<{ cases: SignedNoteCase[] }>('checkpoint/signed-notes.json').cases;
const UNKEYED = readVector<{ cases: UnkeyedCase[] }>('checkpoint/spec-examples-unkeyed.json').cases;

for (const name of ['sum-golang-org-checkpoint-6476701', 'sum-golang-org-checkpoint-multisig']) {
  void test(`checkpoint ${name}: opens with the sum.golang.org key and parses`, () => {
    const c = SIGNED.find((x) => x.name === name)!;
    const vkeys = c.verifier_keys ?? [c.verifier_key!];
    const { checkpoint, verified, unverified } = openCheckpoint(c.note, vkeys.map(newVerifier), { origin: 'go.sum database tree' });
    assert.equal(checkpoint.size, 6476701);
    assert.equal(Buffer.from(checkpoint.root).toString('base64'), 'mb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=');
    assert.deepEqual(checkpoint.extensions, []);
    assert.equal(verified.length, vkeys.length);
    assert.equal(unverified.length, c.signatures.filter((s) => s.ed25519_verifies === null).length);
    throwsTlog(() => openCheckpoint(c.note, vkeys.map(newVerifier), { origin: 'go.sum database tree ' }), 'TLOG_ORIGIN_MISMATCH');
    throwsTlog(() => openCheckpoint(c.note.replace('6476701', '6476702'), vkeys.map(newVerifier), { origin: 'go.sum database tree' }), 'TLOG_BAD_SIGNATURE');
  });
}

void test('checkpoint spec example (tlog-checkpoint.md): parses', () => {
  const c = UNKEYED.find((x) => x.name === 'tlog-checkpoint-example')!;
  const cp = parseCheckpoint(parseNote(c.note).text);
  assert.equal(cp.origin, c.parsed.origin);
  assert.equal(cp.size, c.parsed.tree_size);
  assert.equal(toHex(cp.root), c.parsed.root_hash_hex);
  assert.deepEqual(cp.extensions, c.parsed.extension_lines!);
  assert.equal(formatCheckpoint(cp), parseNote(c.note).text);
});

void test('signCheckpoint / openCheckpoint round trip over a frontier, with an inclusion proof', () => {
  const { signerKey, verifierKey } = generateSignerKey('example.com/audit');
  const leaves = ['a', 'b', 'c', 'd', 'e'].map((s) => leafHash(utf8(s)));
  const f = Frontier.fromLeaves(leaves);
  const note = signCheckpoint(newSigner(signerKey), { origin: 'example.com/audit', size: f.size, root: f.root() });
  const { checkpoint } = openCheckpoint(note, [newVerifier(verifierKey)], { origin: 'example.com/audit' });
  verifyInclusion(leaves[3]!, 3, checkpoint.size, inclusionProof(3, leaves), checkpoint.root);
  // An unrelated key does not open it.
  throwsTlog(() => openCheckpoint(note, [newVerifier(generateSignerKey('example.com/audit').verifierKey)], { origin: 'example.com/audit' }), 'TLOG_NO_VERIFIED_SIGNATURE');
});

void test('checkpoint with extension lines round-trips; size 0 is allowed', () => {
  const root = hex('00'.repeat(32));
  const text = formatCheckpoint({ origin: 'o', size: 0, root, extensions: ['ext one', 'ext+two'] });
  assert.equal(text, `o\n0\n${'A'.repeat(43)}=\next one\next+two\n`);
  assert.deepEqual(parseCheckpoint(text), { origin: 'o', size: 0, root, extensions: ['ext one', 'ext+two'] });
});

const ROOT = 'CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=';
const MALFORMED: [string, string][] = [
  ['two lines', `o\n1\n`],
  ['no final newline', `o\n1\n${ROOT}`],
  ['empty origin', `\n1\n${ROOT}\n`],
  ['empty extension line', `o\n1\n${ROOT}\n\n`],
  ['leading zero', `o\n01\n${ROOT}\n`],
  ['plus sign', `o\n+1\n${ROOT}\n`],
  ['minus sign', `o\n-1\n${ROOT}\n`],
  ['space before size', `o\n 1\n${ROOT}\n`],
  ['hex size', `o\n0x10\n${ROOT}\n`],
  ['exponent size', `o\n1e3\n${ROOT}\n`],
  ['size above 2^53 - 1', `o\n9007199254740992\n${ROOT}\n`],
  ['root not base64', `o\n1\n${ROOT.replace('C', '*')}\n`],
  ['root without padding', `o\n1\n${ROOT.slice(0, -1)}\n`],
  ['root with non-zero padding bits', `o\n1\n${ROOT.replace('2I=', '2J=')}\n`],
  ['root 31 bytes', `o\n1\n${Buffer.alloc(31).toString('base64')}\n`],
  ['root 33 bytes', `o\n1\n${Buffer.alloc(33).toString('base64')}\n`],
  ['CRLF', `o\r\n1\r\n${ROOT}\r\n`],
];

for (const [what, text] of MALFORMED) {
  void test(`parseCheckpoint rejects: ${what}`, () => {
    throwsTlog(() => parseCheckpoint(text), 'TLOG_MALFORMED_CHECKPOINT');
  });
}

void test('openCheckpoint rejects a signed note whose text is not a checkpoint', () => {
  const { signerKey, verifierKey } = generateSignerKey('k');
  const note = signNote('o\n01\nAAAA\n', [newSigner(signerKey)]);
  throwsTlog(() => openCheckpoint(note, [newVerifier(verifierKey)], { origin: 'o' }), 'TLOG_MALFORMED_CHECKPOINT');
});

void test('formatCheckpoint refuses bad fields', () => {
  const root = new Uint8Array(32);
  throwsTlog(() => formatCheckpoint({ origin: '', size: 1, root }), 'TLOG_INVALID_ARGUMENT');
  throwsTlog(() => formatCheckpoint({ origin: 'a\nb', size: 1, root }), 'TLOG_INVALID_ARGUMENT');
  throwsTlog(() => formatCheckpoint({ origin: 'o', size: -1, root }), 'TLOG_INVALID_ARGUMENT');
  throwsTlog(() => formatCheckpoint({ origin: 'o', size: 1.5, root }), 'TLOG_INVALID_ARGUMENT');
  throwsTlog(() => formatCheckpoint({ origin: 'o', size: 1, root: root.subarray(1) }), 'TLOG_INVALID_ARGUMENT');
  throwsTlog(() => formatCheckpoint({ origin: 'o', size: 1, root, extensions: [''] }), 'TLOG_INVALID_ARGUMENT');
});

void test('property: formatCheckpoint / parseCheckpoint round trip; parseCheckpoint throws only TlogError', () => {
  const line = fc.string({ minLength: 1, maxLength: 20 }).filter((s) => !hasControl(s));
  fc.assert(
    fc.property(line, fc.maxSafeNat(), fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.array(line, { maxLength: 3 }), (origin, size, root, extensions) => {
      const cp = { origin, size, root, extensions };
      assert.deepEqual(parseCheckpoint(formatCheckpoint(cp)), cp);
    }),
    { numRuns: 200 },
  );
  fc.assert(
    fc.property(fc.string(), (s) => {
      try {
        parseCheckpoint(s);
      } catch (e) {
        assert.equal((e as Error).name, 'TlogError');
      }
    }),
    { numRuns: 300 },
  );
  // The base64 helper agrees with the decoder used in the tests.
  assert.equal(toHex(b64(ROOT)), toHex(parseCheckpoint(`o\n1\n${ROOT}\n`).root));
});
