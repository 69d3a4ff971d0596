/**
 * C2SP signed notes: shared/vectors/checkpoint/signed-notes.json (every
 * signature verifies, unknown ones are ignored, a one-character change fails),
 * spec-examples-unkeyed.json (parse only), strict parsing, key strings, and a
 * cross-test of Ed25519 against node:crypto.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import fc from 'fast-check';
import {
  DEFAULT_NOTE_LIMITS,
  addSignatures,
  ed25519Signer,
  ed25519Verifier,
  formatVerifierKey,
  generateSignerKey,
  keyId,
  newSigner,
  newVerifier,
  openNote,
  parseNote,
  parseSignerKey,
  parseVerifierKey,
  signNote,
  type NoteVerifier,
} from '../src/index.js';
import { hex, readVector, stripControls, throwsTlog, toHex, utf8, type SignedNoteCase, type UnkeyedCase } from './helpers.js';

const SIGNED = readVector<{ cases: SignedNoteCase[] }>('checkpoint/signed-notes.json').cases;
const UNKEYED = readVector<{ cases: UnkeyedCase[] }>('checkpoint/spec-examples-unkeyed.json').cases;

const hex8 = (n: number): string => n.toString(16).padStart(8, '0');

/** Replaces one character of the note text (the first letter) with another. */
function oneCharChange(note: string): string {
  const i = note.search(/[A-Za-z]/);
  const c = note[i]!;
  return note.slice(0, i) + (c === 'x' ? 'y' : 'x') + note.slice(i + 1);
}

for (const c of SIGNED) {
  const vkeys = c.verifier_keys ?? [c.verifier_key!];
  const verifiers = vkeys.map(newVerifier);

  void test(`signed-note ${c.name}: verifier keys decode and their key IDs recompute`, () => {
    for (const vk of vkeys) {
      const k = parseVerifierKey(vk);
      assert.equal(k.type, 0x01);
      assert.equal(keyId(k.name, 0x01, k.publicKey), k.keyId);
      assert.equal(formatVerifierKey(k.name, 0x01, k.publicKey), vk);
    }
    if (c.public_key_hex !== undefined) {
      const k = parseVerifierKey(c.verifier_key!);
      assert.equal(k.name, c.key_name);
      assert.equal(hex8(k.keyId), c.key_id);
      assert.equal(hex8(keyId(k.name, 0x01, k.publicKey)), c.key_id_recomputed);
      assert.equal(toHex(k.publicKey), c.public_key_hex);
    }
  });

  void test(`signed-note ${c.name}: every known signature verifies, unknown ones are ignored`, () => {
    const opened = openNote(c.note, verifiers);
    assert.equal(opened.text, c.signed_message);
    const expectVerified = c.signatures.filter((s) => s.ed25519_verifies === true);
    const expectIgnored = c.signatures.filter((s) => s.ed25519_verifies === null);
    assert.deepEqual(opened.verified.map((s) => `${s.name}+${hex8(s.keyId)}`), expectVerified.map((s) => `${s.key_name}+${s.key_id}`));
    assert.deepEqual(opened.unverified.map((s) => `${s.name}+${hex8(s.keyId)}`), expectIgnored.map((s) => `${s.key_name}+${s.key_id}`));
    for (const s of c.signatures) {
      if (s.signature_hex === undefined) continue;
      const got = opened.verified.find((v) => v.name === s.key_name);
      assert.equal(toHex(got!.signature), s.signature_hex);
    }
    // Each verifier alone also opens it (the other signatures become unknown).
    for (const v of verifiers) assert.equal(openNote(c.note, [v]).verified.length, 1);
    // As bytes too.
    assert.equal(openNote(utf8(c.note), verifiers).text, c.signed_message);
  });

  void test(`signed-note ${c.name}: a one-character change of the text fails`, () => {
    throwsTlog(() => openNote(oneCharChange(c.note), verifiers), 'TLOG_BAD_SIGNATURE');
  });

  void test(`signed-note ${c.name}: a one-character change of a signature fails`, () => {
    const lines = c.note.split('\n');
    const i = lines.findIndex((l) => l.startsWith('\u2014 '));
    const line = lines[i]!;
    const j = line.lastIndexOf(' ') + 10; // inside the signature bytes, past the key ID
    lines[i] = line.slice(0, j) + (line[j] === 'A' ? 'B' : 'A') + line.slice(j + 1);
    throwsTlog(() => openNote(lines.join('\n'), verifiers), ['TLOG_BAD_SIGNATURE', 'TLOG_MALFORMED_NOTE']);
  });

  void test(`signed-note ${c.name}: keys that share only the name or only the key ID are ignored`, () => {
    const k = parseVerifierKey(vkeys[0]!);
    const sameNameOtherKey: NoteVerifier = ed25519Verifier(k.name, hex('11'.repeat(32)));
    const sameIdOtherName: NoteVerifier = { name: `${k.name}.other`, keyId: k.keyId, verify: () => true };
    throwsTlog(() => openNote(c.note, [sameNameOtherKey, sameIdOtherName]), 'TLOG_NO_VERIFIED_SIGNATURE');
  });
}

void test('signed-note go-sumdb-note-peterneumann: the signer key re-signs the note byte for byte', () => {
  const c = SIGNED.find((x) => x.name === 'go-sumdb-note-peterneumann')!;
  const sk = parseSignerKey(c.signer_key!);
  assert.equal(toHex(sk.seed), c.signer_seed_hex);
  assert.equal(toHex(sk.publicKey), c.public_key_hex);
  assert.equal(signNote(c.signed_message, [newSigner(c.signer_key!)]), c.note);
});

void test('signed-note: Go two-signer note (PeterNeumann then EnochRoot) opens with both keys', () => {
  const a = SIGNED.find((x) => x.name === 'go-sumdb-note-peterneumann')!;
  const b = SIGNED.find((x) => x.name === 'go-sumdb-note-enochroot')!;
  const both = a.note + b.note.slice(b.note.indexOf('\u2014'));
  const opened = openNote(both, [newVerifier(a.verifier_key!), newVerifier(b.verifier_key!)]);
  assert.deepEqual(opened.verified.map((s) => s.name), ['PeterNeumann', 'EnochRoot']);
});

void test('signed-note: a failing signature from a known key rejects the note even when another verifies', () => {
  const c = SIGNED.find((x) => x.name === 'sum-golang-org-checkpoint-multisig')!;
  const lines = c.note.split('\n');
  const i = lines.findIndex((l) => l.startsWith('\u2014 bananas '));
  // Give bananas the witness signature bytes (wrong signature, bananas's key ID kept).
  const bananas = Buffer.from(lines[i]!.split(' ')[2]!, 'base64');
  const witness = Buffer.from(lines.find((l) => l.startsWith('\u2014 witness '))!.split(' ')[2]!, 'base64');
  lines[i] = `\u2014 bananas ${Buffer.concat([bananas.subarray(0, 4), witness.subarray(4)]).toString('base64')}`;
  throwsTlog(() => openNote(lines.join('\n'), c.verifier_keys!.map(newVerifier)), 'TLOG_BAD_SIGNATURE');
});

for (const c of UNKEYED) {
  void test(`spec example ${c.name}: parses`, () => {
    const n = parseNote(c.note);
    if (c.parsed.text !== undefined) assert.equal(n.text, c.parsed.text);
    assert.equal(n.signatures.length, c.parsed.signatures.length);
    c.parsed.signatures.forEach((want, i) => {
      const got = n.signatures[i]!;
      assert.equal(got.name, want.key_name);
      assert.equal(hex8(got.keyId), want.key_id);
      if (want.timestamp === undefined && want.signature_length !== undefined) assert.equal(got.signature.length, want.signature_length);
    });
    // Nothing verifies without keys.
    throwsTlog(() => openNote(c.note, []), 'TLOG_NO_VERIFIED_SIGNATURE');
  });
}

// --- strict parsing -----------------------------------------------------------

const GOOD = SIGNED[0]!.note;
const SIGLINE = GOOD.slice(GOOD.indexOf('\u2014'));

const MALFORMED: [string, string | Uint8Array][] = [
  ['no blank line', 'text\n' + SIGLINE],
  ['no signature lines', 'text\n\n'],
  ['no final newline', GOOD.slice(0, -1)],
  ['hyphen instead of em dash', GOOD.replace('\u2014 ', '- ')],
  ['en dash instead of em dash', GOOD.replace('\u2014 ', '\u2013 ')],
  ['no space after the dash', GOOD.replace('\u2014 ', '\u2014')],
  ['no space between name and signature', GOOD.replace('example.com/foo ', 'example.com/foo')],
  ['two spaces between name and signature', GOOD.replace('example.com/foo ', 'example.com/foo  ')],
  ['empty key name', GOOD.replace('\u2014 example.com/foo ', '\u2014  ')],
  ['plus in the key name', GOOD.replace('example.com/foo ', 'example.com+foo ')],
  ['no-break space in the key name', GOOD.replace('example.com/foo ', 'example.com/\u00a0foo ')],
  ['unpadded base64', GOOD.replace('aQM=\n', 'aQM\n')],
  ['non-canonical base64 padding bits', GOOD.replace('aQM=\n', 'aQN=\n')],
  ['base64 shorter than a key ID and a byte', 'text\n\n\u2014 k AAAAAA==\n'],
  ['carriage return', GOOD.replace('message.\n', 'message.\r\n')],
  ['tab in the text', GOOD.replace('This is', 'This\tis')],
  ['NUL in the text', GOOD.replace('This is', 'This\u0000is')],
  ['trailing garbage line', GOOD + 'garbage\n'],
  ['lone surrogate', GOOD.replace('This', '\ud800This')],
  ['invalid UTF-8 bytes', new Uint8Array([...utf8('text'), 0xff, ...utf8('\n\n' + SIGLINE)])],
  ['overlong UTF-8', new Uint8Array([...utf8('text'), 0xc0, 0xaf, ...utf8('\n\n' + SIGLINE)])],
];

for (const [what, input] of MALFORMED) {
  void test(`parseNote rejects: ${what}`, () => {
    throwsTlog(() => parseNote(input), 'TLOG_MALFORMED_NOTE');
  });
}

void test('parseNote keeps a leading BOM as part of the text (bytes and string alike)', () => {
  const withBom = '\ufeff' + GOOD;
  assert.equal(parseNote(utf8(withBom)).text, parseNote(withBom).text);
  assert.ok(parseNote(utf8(withBom)).text.startsWith('\ufeff'));
  throwsTlog(() => openNote(withBom, [newVerifier(SIGNED[0]!.verifier_key!)]), 'TLOG_BAD_SIGNATURE');
});

void test('parseNote splits at the last blank line (text may contain blank lines)', () => {
  const n = parseNote('a\n\nb\n\n\n' + SIGLINE);
  assert.equal(n.text, 'a\n\nb\n\n');
});

void test('parseNote limits: signatures, lines and bytes', () => {
  const many = (k: number): string => 'text\n\n' + SIGLINE.repeat(k);
  assert.equal(parseNote(many(DEFAULT_NOTE_LIMITS.maxSignatures)).signatures.length, 100);
  throwsTlog(() => parseNote(many(101)), 'TLOG_LIMIT_EXCEEDED');
  assert.equal(parseNote(many(16), { maxSignatures: 16 }).signatures.length, 16);
  throwsTlog(() => parseNote(many(17), { maxSignatures: 16 }), 'TLOG_LIMIT_EXCEEDED');
  throwsTlog(() => parseNote(many(1), { maxSignatures: 15 }), 'TLOG_INVALID_ARGUMENT');
  throwsTlog(() => parseNote('x\n'.repeat(20) + '\n' + SIGLINE, { maxLines: 20 }), 'TLOG_LIMIT_EXCEEDED');
  assert.ok(parseNote('x\n'.repeat(19) + '\n' + SIGLINE, { maxLines: 21 }));
  const big = 'é'.repeat(600_000) + '\n\n' + SIGLINE; // 1.2 MB in UTF-8, 600 k UTF-16 units
  throwsTlog(() => parseNote(big), 'TLOG_LIMIT_EXCEEDED');
  throwsTlog(() => parseNote(utf8(big)), 'TLOG_LIMIT_EXCEEDED');
  assert.ok(parseNote(big, { maxBytes: 2 << 20 }));
});

// --- key strings ---------------------------------------------------------------

const VK = SIGNED[0]!.verifier_key!;
const SK = SIGNED[1]!.signer_key!;

const BAD_VKEYS: [string, string][] = [
  ['wrong key ID', VK.replace('+530d903a+', '+530d903b+')],
  ['key ID not 8 hex digits', VK.replace('+530d903a+', '+530d903+')],
  ['key ID not hex', VK.replace('+530d903a+', '+530d903g+')],
  ['missing key', 'example.com/foo+530d903a'],
  ['empty name', VK.replace('example.com/foo', '')],
  ['name with a space', VK.replace('example.com/foo', 'example.com foo')],
  ['unsupported type 0x02', formatTyped(0x02)],
  ['public key 31 bytes', 'x+00000000+' + Buffer.concat([Buffer.from([1]), Buffer.alloc(31)]).toString('base64')],
  ['non-canonical base64', VK.slice(0, -1) + 'l'],
];

function formatTyped(type: number): string {
  const k = parseVerifierKey(VK);
  const raw = new Uint8Array([type, ...k.publicKey]);
  return `${k.name}+${hex8(keyId(k.name, type, k.publicKey))}+${Buffer.from(raw).toString('base64')}`;
}

for (const [what, vk] of BAD_VKEYS) {
  void test(`parseVerifierKey rejects: ${what}`, () => {
    throwsTlog(() => parseVerifierKey(vk), 'TLOG_MALFORMED_KEY');
  });
}

void test('newVerifier refuses a type-0x04 (cosignature) key; newSigner refuses a wrong key ID or prefix', () => {
  throwsTlog(() => newVerifier(formatTyped(0x04)), 'TLOG_MALFORMED_KEY');
  throwsTlog(() => newSigner(SK.replace('+c74f20a3+', '+c74f20a4+')), 'TLOG_MALFORMED_KEY');
  throwsTlog(() => newSigner(SK.replace('PRIVATE+KEY+', 'PRIVATE+KEYS+')), 'TLOG_MALFORMED_KEY');
  throwsTlog(() => newSigner(SK.replace('PRIVATE+KEY+', '')), 'TLOG_MALFORMED_KEY');
});

void test('generateSignerKey: the pair signs and verifies; a given seed is deterministic', () => {
  const { signerKey, verifierKey } = generateSignerKey('example.com/log');
  const note = signNote('hello\n', [newSigner(signerKey)]);
  assert.equal(openNote(note, [newVerifier(verifierKey)]).text, 'hello\n');
  const c = SIGNED[1]!;
  assert.deepEqual(generateSignerKey('PeterNeumann', hex(c.signer_seed_hex!)), { signerKey: c.signer_key, verifierKey: c.verifier_key });
  throwsTlog(() => generateSignerKey('bad name'), 'TLOG_INVALID_ARGUMENT');
});

void test('signNote refuses text that is empty, lacks the final newline or has control characters', () => {
  const s = newSigner(SK);
  for (const text of ['', 'no newline', 'tab\there\n', 'cr\r\n']) throwsTlog(() => signNote(text, [s]), 'TLOG_MALFORMED_NOTE');
  throwsTlog(() => signNote('ok\n', []), 'TLOG_INVALID_ARGUMENT');
});

void test('addSignatures appends a signature and replaces one by the same key', () => {
  const a = SIGNED[1]!;
  const once = addSignatures(a.note, [newSigner(generateSignerKey('other', new Uint8Array(32).fill(9)).signerKey)]);
  assert.equal(parseNote(once).signatures.length, 2);
  const again = addSignatures(once, [newSigner(a.signer_key!)]);
  assert.deepEqual(parseNote(again).signatures.map((s) => s.name), ['other', 'PeterNeumann']);
  assert.equal(openNote(again, [newVerifier(a.verifier_key!)]).verified.length, 1);
});

void test('openNote refuses two verifiers with the same name and key ID', () => {
  const v = newVerifier(VK);
  throwsTlog(() => openNote(GOOD, [v, v]), 'TLOG_INVALID_ARGUMENT');
});

// --- properties and cross-tests -----------------------------------------------

void test('property: any valid text signs and opens to itself; parseNote never throws anything but TlogError', () => {
  const signer = ed25519Signer('prop.example/k', new Uint8Array(32).fill(3));
  const verifier = newVerifier(generateSignerKey('prop.example/k', new Uint8Array(32).fill(3)).verifierKey);
  const textArb = fc
    .array(fc.string({ unit: 'grapheme', maxLength: 30 }).map(stripControls), { minLength: 1, maxLength: 6 })
    .map((lines) => lines.join('\n') + '\n');
  fc.assert(
    fc.property(textArb, (text) => {
      const note = signNote(text, [signer]);
      assert.equal(openNote(note, [verifier]).text, text);
    }),
    { numRuns: 200 },
  );
  fc.assert(
    fc.property(fc.oneof(fc.string({ unit: 'binary' }), fc.uint8Array()), (input) => {
      try {
        parseNote(input);
      } catch (e) {
        assert.equal((e as Error).name, 'TlogError');
      }
    }),
    { numRuns: 300 },
  );
});

void test('cross-test: our Ed25519 note signatures verify with node:crypto, and the reverse', () => {
  const seed = new Uint8Array(32).map((_, i) => i * 7 + 1);
  const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
  const priv = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
  const pub = new Uint8Array(createPublicKey(priv).export({ format: 'der', type: 'spki' }).subarray(-32));
  const text = 'cross\ntest\n';
  const note = signNote(text, [ed25519Signer('x.example/k', seed)]);
  const sig = parseNote(note).signatures[0]!.signature;
  assert.ok(nodeVerify(null, utf8(text), createPublicKey(priv), sig));
  const theirs = new Uint8Array(nodeSign(null, utf8(text), priv));
  const v = ed25519Verifier('x.example/k', pub);
  assert.ok(v.verify(utf8(text), theirs));
  assert.equal(hex8(v.keyId), hex8(keyId('x.example/k', 1, pub)));
});
