/** age round trips through our own seal and open, and key string handling. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeywardError } from '../src/errors.js';
import {
  ageOpen,
  ageSeal,
  generateAgeIdentity,
  isAgeFile,
  parseAgeIdentity,
  parseAgeIdentityFile,
  parseAgeRecipient,
} from '../src/age/index.js';

const SIZES = [0, 1, 65535, 65536, 65537, 200000];

function pattern(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >> 8)) & 0xff;
  return b;
}

const isCode = (code: string) => (e: unknown) => e instanceof KeywardError && e.code === code;

/** Ciphertext size of an age payload: 16-byte nonce, one 16-byte tag per 64 KiB chunk (at least one). */
const payloadSize = (n: number) => 16 + n + 16 * Math.max(1, Math.ceil(n / 65536));

for (const kind of ['x25519', 'mlkem768x25519'] as const) {
  for (const size of SIZES) {
    void test(`round trip ${kind}, ${size} bytes`, async () => {
      const id = generateAgeIdentity(kind);
      const pt = pattern(size);
      const file = await ageSeal(pt, { recipients: [id.recipient()] });
      assert.ok(isAgeFile(file));
      const text = Buffer.from(file).toString('latin1');
      assert.ok(text.startsWith(`age-encryption.org/v1\n-> ${kind === 'x25519' ? 'X25519' : 'mlkem768x25519'} `));
      const headerEnd = text.indexOf('\n---') + 1 + 4 + 43 + 1;
      assert.equal(file.length - headerEnd, payloadSize(size), 'payload is chunked as the spec says');
      assert.deepEqual(await ageOpen(file, { identities: [id] }), pt);
    });
  }
}

for (const size of SIZES) {
  void test(`round trip armored x25519, ${size} bytes`, async () => {
    const id = generateAgeIdentity();
    const pt = pattern(size);
    const file = await ageSeal(pt, { recipients: [id.recipient()] }, { armor: true });
    const text = Buffer.from(file).toString('latin1');
    assert.ok(text.startsWith('-----BEGIN AGE ENCRYPTED FILE-----\n'));
    assert.ok(text.endsWith('\n-----END AGE ENCRYPTED FILE-----\n'));
    for (const line of text.split('\n').slice(1, -2)) assert.ok(line.length <= 64);
    assert.ok(isAgeFile(file));
    assert.deepEqual(await ageOpen(file, { identities: [id] }), pt);
    // Whitespace around the block and CRLF line endings are accepted on input.
    const crlf = Buffer.from(`\n \t${text.replaceAll('\n', '\r\n')}\r\n  `, 'latin1');
    assert.ok(isAgeFile(crlf));
    assert.deepEqual(await ageOpen(crlf, { identities: [id] }), pt);
  });
}

void test('round trip passphrase (scrypt, work factor 10), binary and armored', async () => {
  for (const size of [0, 1, 65536, 65537]) {
    const pt = pattern(size);
    const file = await ageSeal(pt, { passphrase: 'correct horse battery staple', workFactor: 10 });
    assert.match(Buffer.from(file).toString('latin1'), /^age-encryption\.org\/v1\n-> scrypt [A-Za-z0-9+/]{22} 10\n/);
    assert.deepEqual(await ageOpen(file, { passphrase: 'correct horse battery staple' }), pt);
  }
  const armored = await ageSeal(pattern(100), { passphrase: 'pw', workFactor: 10 }, { armor: true });
  assert.deepEqual(await ageOpen(armored, { passphrase: 'pw' }), pattern(100));
  await assert.rejects(ageOpen(armored, { passphrase: 'wrong' }), isCode('KW_WRONG_PASSPHRASE'));
  // A file sealed with a work factor above the opener's limit is refused before any scrypt work.
  const wf12 = await ageSeal(pattern(3), { passphrase: 'pw', workFactor: 12 });
  await assert.rejects(ageOpen(wf12, { passphrase: 'pw', maxWorkFactor: 11 }), isCode('KW_SCRYPT_WORK_FACTOR'));
  assert.deepEqual(await ageOpen(wf12, { passphrase: 'pw', maxWorkFactor: 12 }), pattern(3));
});

void test('multiple recipients: each identity opens the file, others do not', async () => {
  const ids = [generateAgeIdentity(), generateAgeIdentity(), generateAgeIdentity()];
  const pt = pattern(70000);
  const file = await ageSeal(pt, { recipients: ids.map((i) => i.recipient()) });
  assert.equal(Buffer.from(file).toString('latin1').split('\n-> X25519 ').length - 1, 3);
  for (const id of ids) assert.deepEqual(await ageOpen(file, { identities: [id] }), pt);
  const stranger = generateAgeIdentity();
  await assert.rejects(ageOpen(file, { identities: [stranger] }), isCode('KW_NO_IDENTITY_MATCHED'));
  // The matching identity may come after non-matching ones.
  assert.deepEqual(await ageOpen(file, { identities: [stranger, ids[2]!] }), pt);

  const pq = [generateAgeIdentity('mlkem768x25519'), generateAgeIdentity('mlkem768x25519')];
  const pqFile = await ageSeal(pt, { recipients: pq.map((i) => i.recipient()) });
  for (const id of pq) assert.deepEqual(await ageOpen(pqFile, { identities: [id] }), pt);
  await assert.rejects(ageOpen(pqFile, { identities: [generateAgeIdentity('mlkem768x25519'), stranger] }), isCode('KW_NO_IDENTITY_MATCHED'));
});

void test('post-quantum and X25519 recipients are not mixed', async () => {
  const recipients = [generateAgeIdentity('mlkem768x25519').recipient(), generateAgeIdentity().recipient()];
  await assert.rejects(ageSeal(pattern(1), { recipients }), isCode('KW_INVALID_ARGUMENT'));
});

void test('key strings: identities, recipients and identity files round trip', () => {
  // The examples of the age specification (C2SP age.md).
  const spec = parseAgeIdentity('AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX');
  assert.equal(spec.kind, 'x25519');
  assert.equal(spec.recipient().text, 'age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj');
  assert.deepEqual(parseAgeRecipient(spec.recipient().text), spec.recipient());

  for (const kind of ['x25519', 'mlkem768x25519'] as const) {
    const id = generateAgeIdentity(kind);
    assert.equal(id.kind, kind);
    assert.equal(id.secretKey.length, 32);
    assert.ok(id.text.startsWith(kind === 'x25519' ? 'AGE-SECRET-KEY-1' : 'AGE-SECRET-KEY-PQ-1'));
    assert.equal(id.text, id.text.toUpperCase());
    const r = id.recipient();
    assert.ok(r.text.startsWith(kind === 'x25519' ? 'age1' : 'age1pq1'));
    assert.equal(r.publicKey.length, kind === 'x25519' ? 32 : 1216);
    const again = parseAgeIdentity(id.text);
    assert.deepEqual(again.secretKey, id.secretKey);
    assert.equal(again.recipient().text, r.text);
    assert.deepEqual(parseAgeRecipient(r.text).publicKey, r.publicKey);
  }

  const a = generateAgeIdentity();
  const b = generateAgeIdentity('mlkem768x25519');
  const file = `# created: 2026-01-01\r\n# public key: ${a.recipient().text}\r\n${a.text}\r\n\n   \n# pq\n${b.text}\n`;
  const ids = parseAgeIdentityFile(file);
  assert.deepEqual(ids.map((i) => i.text), [a.text, b.text]);
});
