/** age failure cases: each must fail closed with its specific KeywardError code. */
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
  type AgeIdentity,
} from '../src/age/index.js';
import { bech32 } from '@scure/base';
import { encodeHeader, parseHeader } from '../src/age/format.js';
import { wrapForRecipient } from '../src/age/recipients.js';
import { encryptPayload } from '../src/age/stream.js';

const isCode = (code: string) => (e: unknown) => {
  assert.ok(e instanceof KeywardError, `expected a KeywardError, got ${String(e)}`);
  assert.equal(e.code, code, e.message);
  return true;
};

const bytes = (s: string) => new Uint8Array(Buffer.from(s, 'latin1'));
const text = (b: Uint8Array) => Buffer.from(b).toString('latin1');

void test('scrypt cannot be combined with other recipients when sealing', async () => {
  const id = generateAgeIdentity();
  const to = { recipients: [id.recipient()], passphrase: 'pw' } as unknown as { passphrase: string };
  await assert.rejects(ageSeal(new Uint8Array(1), to), isCode('KW_SCRYPT_NOT_ALONE'));
});

void test('scrypt stanza next to another stanza is rejected when opening (even with a matching identity)', async () => {
  const id = generateAgeIdentity();
  const viaKey = await ageSeal(new Uint8Array([1, 2, 3]), { recipients: [id.recipient()] });
  const viaPass = await ageSeal(new Uint8Array([1, 2, 3]), { passphrase: 'pw', workFactor: 10 });
  // Splice the scrypt stanza into the X25519 file's header.
  const scryptStanza = /\n(-> scrypt [^\n]*\n[^\n]*\n)/.exec(text(viaPass))![1]!;
  const spliced = bytes(text(viaKey).replace('\n-> X25519', `\n${scryptStanza}-> X25519`));
  await assert.rejects(ageOpen(spliced, { identities: [id] }), isCode('KW_SCRYPT_NOT_ALONE'));
  await assert.rejects(ageOpen(spliced, { passphrase: 'pw' }), isCode('KW_SCRYPT_NOT_ALONE'));
  // Two scrypt stanzas are rejected too.
  const doubled = bytes(text(viaPass).replace('\n---', `\n${scryptStanza}---`));
  await assert.rejects(ageOpen(doubled, { passphrase: 'pw' }), isCode('KW_SCRYPT_NOT_ALONE'));
});

void test('scrypt work factor limits and passphrase arguments', async () => {
  await assert.rejects(ageSeal(new Uint8Array(1), { passphrase: 'pw', workFactor: 23 }), isCode('KW_SCRYPT_WORK_FACTOR'));
  await assert.rejects(ageSeal(new Uint8Array(1), { passphrase: 'pw', workFactor: 0 }), isCode('KW_SCRYPT_WORK_FACTOR'));
  await assert.rejects(ageSeal(new Uint8Array(1), { passphrase: 'pw', workFactor: 10.5 }), isCode('KW_SCRYPT_WORK_FACTOR'));
  await assert.rejects(ageSeal(new Uint8Array(1), { passphrase: '' }), isCode('KW_INVALID_ARGUMENT'));
  const file = await ageSeal(new Uint8Array(1), { passphrase: 'pw', workFactor: 10 });
  await assert.rejects(ageOpen(file, { passphrase: 'pw', maxWorkFactor: 9 }), isCode('KW_SCRYPT_WORK_FACTOR'));
  await assert.rejects(ageOpen(file, { passphrase: 'pw', maxWorkFactor: 0 }), isCode('KW_INVALID_ARGUMENT'));
  // A passphrase file opened with identities only, and an identity file opened with a passphrase only.
  await assert.rejects(ageOpen(file, { identities: [generateAgeIdentity()] }), isCode('KW_NO_IDENTITY_MATCHED'));
  const keyFile = await ageSeal(new Uint8Array(1), { recipients: [generateAgeIdentity().recipient()] });
  await assert.rejects(ageOpen(keyFile, { passphrase: 'pw' }), isCode('KW_NO_IDENTITY_MATCHED'));
});

const b32 = (hrp: string, data: Uint8Array, upper = false) => {
  const out = bech32.encode(hrp, bech32.toWords(data), false);
  return upper ? out.toUpperCase() : out;
};

/** Upper-cases the first letter after the prefix (a digit there would leave the string unchanged). */
const mixedCase = (s: string) => {
  const i = s.slice(4).search(/[a-z]/) + 4;
  return s.slice(0, i) + s[i]!.toUpperCase() + s.slice(i + 1);
};

void test('bad recipient strings', () => {
  const good = generateAgeIdentity().recipient().text;
  const pq = generateAgeIdentity('mlkem768x25519').recipient().text;
  const lowOrder = new Uint8Array(32);
  lowOrder[0] = 1; // u = 1 has order 4 on Curve25519
  const bad = [
    '',
    'age1',
    'hello',
    good.toUpperCase(), // recipients are lowercase
    good.slice(0, -1) + (good.endsWith('q') ? 'p' : 'q'), // checksum
    mixedCase(good), // mixed case
    good + 'q',
    ` ${good}`,
    `${good}\n`,
    pq.slice(0, -2), // truncated
    b32('age', new Uint8Array(31).fill(1)), // wrong length
    b32('age', new Uint8Array(33).fill(1)),
    b32('age', new Uint8Array(32)), // u = 0: all-zero shared secrets
    b32('age', lowOrder),
    b32('age1pq', new Uint8Array(1216).fill(0xff)), // ML-KEM key with coefficients out of range
    b32('age1pq', new Uint8Array(1215)),
    generateAgeIdentity().text, // an identity is not a recipient
    'age1tag1qt8lw0ual6avlwmwatk888yqnmdamm7xfd0wak53ut6elz5c4swx2yqdj4e', // tag recipients (spec example) are unsupported
    b32('age1yubikey', new Uint8Array(33).fill(2)), // plugin recipients are unsupported
    'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN',
  ];
  for (const s of bad) assert.throws(() => parseAgeRecipient(s), isCode('KW_INVALID_KEY_STRING'), JSON.stringify(s.slice(0, 80)));
  assert.throws(() => parseAgeRecipient(42 as unknown as string), isCode('KW_INVALID_KEY_STRING'));
});

void test('bad identity strings and identity files', () => {
  const good = generateAgeIdentity().text;
  const bad = [
    '',
    'AGE-SECRET-KEY-1',
    good.toLowerCase(), // identities are uppercase
    good.slice(0, -1) + (good.endsWith('Q') ? 'P' : 'Q'),
    good + 'Q',
    generateAgeIdentity().recipient().text,
    b32('age-plugin-yubikey-', new Uint8Array(20), true), // plugin identities are unsupported
    b32('age-secret-key-', new Uint8Array(31).fill(3), true), // wrong length
    b32('age-secret-key-pq-', new Uint8Array(64).fill(3), true),
    'AGE-SECRET-KEY-PQ-1' + good.slice('AGE-SECRET-KEY-1'.length), // checksum covers the HRP
  ];
  for (const s of bad) assert.throws(() => parseAgeIdentity(s), isCode('KW_INVALID_KEY_STRING'), JSON.stringify(s));
  assert.throws(() => parseAgeIdentityFile(`# comment\n${good}\nnot-a-key\n`), (e: unknown) => {
    isCode('KW_INVALID_KEY_STRING')(e);
    assert.match((e as Error).message, /line 3/);
    return true;
  });
  assert.throws(() => parseAgeIdentityFile('# only comments\n\n'), isCode('KW_INVALID_ARGUMENT'));
});

async function sealed(size: number, id: AgeIdentity): Promise<{ file: Uint8Array; payloadOffset: number }> {
  const file = await ageSeal(new Uint8Array(size).fill(7), { recipients: [id.recipient()] });
  return { file, payloadOffset: parseHeader(file).payloadOffset };
}

void test('truncated payloads', async () => {
  const id = generateAgeIdentity();
  const { file, payloadOffset } = await sealed(200000, id); // 4 chunks: 3 full + 1 short
  const cut = (n: number) => ageOpen(file.subarray(0, n), { identities: [id] });
  await assert.rejects(cut(payloadOffset), isCode('KW_TRUNCATED')); // no nonce
  await assert.rejects(cut(payloadOffset + 10), isCode('KW_TRUNCATED')); // half a nonce
  await assert.rejects(cut(payloadOffset + 16), isCode('KW_TRUNCATED')); // nonce, no chunk
  await assert.rejects(cut(payloadOffset + 16 + 65552), isCode('KW_TRUNCATED')); // cut at a chunk boundary
  await assert.rejects(cut(payloadOffset + 16 + 2 * 65552), isCode('KW_TRUNCATED'));
  await assert.rejects(cut(payloadOffset + 16 + 65552 + 5), isCode('KW_TRUNCATED')); // shorter than a tag
  await assert.rejects(cut(payloadOffset + 16 + 1000), isCode('KW_PAYLOAD_AUTH_FAILED')); // mid-chunk
  await assert.rejects(cut(file.length - 1), isCode('KW_PAYLOAD_AUTH_FAILED'));
  await assert.rejects(cut(payloadOffset - 1), isCode('KW_AGE_MALFORMED')); // inside the MAC line
  await assert.rejects(cut(20), isCode('KW_AGE_MALFORMED'));
  await assert.rejects(cut(0), isCode('KW_AGE_MALFORMED'));
});

void test('trailing data after the final chunk', async () => {
  const id = generateAgeIdentity();
  for (const size of [0, 100, 65536, 131072]) {
    const { file } = await sealed(size, id);
    for (const extra of [1, 16, 17, 65552, 70000]) {
      const longer = new Uint8Array(file.length + extra);
      longer.set(file);
      longer.fill(0xab, file.length);
      // A short final chunk cannot be told apart from garbage appended to it (the tag fails);
      // a full final chunk can, as it authenticates with the last-chunk flag.
      const expected = size > 0 && size % 65536 === 0 ? 'KW_TRAILING_DATA' : 'KW_PAYLOAD_AUTH_FAILED';
      await assert.rejects(ageOpen(longer, { identities: [id] }), isCode(expected), `size ${size} + ${extra}`);
    }
  }
  // An appended copy of the final chunk is trailing data too.
  const { file } = await sealed(65536, id);
  const doubled = new Uint8Array(file.length + 65552);
  doubled.set(file);
  doubled.set(file.subarray(file.length - 65552), file.length);
  await assert.rejects(ageOpen(doubled, { identities: [id] }), isCode('KW_TRAILING_DATA'));
});

void test('tampering: payload, header MAC, stanza body and header text', async () => {
  const id = generateAgeIdentity();
  const { file, payloadOffset } = await sealed(1000, id);
  const flip = (i: number) => {
    const c = file.slice();
    c[i]! ^= 1;
    return c;
  };
  await assert.rejects(ageOpen(flip(file.length - 1), { identities: [id] }), isCode('KW_PAYLOAD_AUTH_FAILED'));
  await assert.rejects(ageOpen(flip(payloadOffset), { identities: [id] }), isCode('KW_PAYLOAD_AUTH_FAILED')); // nonce
  // A different but well-formed MAC.
  const macStart = text(file).indexOf('\n--- ') + 5;
  const badMac = file.slice();
  badMac[macStart] = badMac[macStart] === 0x41 ? 0x42 : 0x41;
  await assert.rejects(ageOpen(badMac, { identities: [id] }), isCode('KW_AGE_HMAC_MISMATCH'));
  // Adding a grease stanza keeps the header well-formed but breaks the MAC.
  const greased = bytes(text(file).replace('\n---', '\n-> grease x\nAAAA\n---'));
  await assert.rejects(ageOpen(greased, { identities: [id] }), isCode('KW_AGE_HMAC_MISMATCH'));
  // Tampering with the wrapped key makes the stanza not open.
  const bodyStart = text(file).indexOf('\n', text(file).indexOf('-> X25519')) + 1;
  const badBody = file.slice();
  badBody[bodyStart] = badBody[bodyStart] === 0x41 ? 0x42 : 0x41;
  await assert.rejects(ageOpen(badBody, { identities: [id] }), isCode('KW_NO_IDENTITY_MATCHED'));
  // CRLF, a BOM, or a different version are not age v1.
  await assert.rejects(ageOpen(bytes(text(file).replace('\n', '\r\n')), { identities: [id] }), isCode('KW_AGE_MALFORMED'));
  await assert.rejects(ageOpen(bytes('\xef\xbb\xbf' + text(file)), { identities: [id] }), isCode('KW_AGE_MALFORMED'));
  await assert.rejects(ageOpen(bytes(text(file).replace('/v1', '/v2')), { identities: [id] }), isCode('KW_AGE_MALFORMED'));
});

void test('unknown (grease) stanzas are ignored, before and after ours', async () => {
  const id = generateAgeIdentity();
  const other = generateAgeIdentity('x25519');
  const fileKey = new Uint8Array(16).fill(9);
  const pt = new Uint8Array(70000).fill(5);
  const stanzas = [
    { args: ['grease-1', 'a!', '"#$'], body: new Uint8Array(100).fill(1) },
    await wrapForRecipient(other.recipient(), fileKey),
    { args: ['x25519', 'lowercase-is-another-type'], body: new Uint8Array(48) }, // exactly 64 base64 columns + empty line
    await wrapForRecipient(id.recipient(), fileKey),
    { args: ['grease-2'], body: new Uint8Array(0) },
  ];
  const file = new Uint8Array([...encodeHeader(stanzas, fileKey), ...encryptPayload(fileKey, pt)]);
  assert.match(text(file), /\n-> x25519 lowercase-is-another-type\n[A]{64}\n\n/);
  assert.deepEqual(await ageOpen(file, { identities: [id] }), pt);
  assert.deepEqual(await ageOpen(file, { identities: [other] }), pt);
});

void test('argument validation', async () => {
  const id = generateAgeIdentity();
  const file = await ageSeal(new Uint8Array(1), { recipients: [id.recipient()] });
  await assert.rejects(ageSeal('x' as unknown as Uint8Array, { recipients: [id.recipient()] }), isCode('KW_INVALID_ARGUMENT'));
  await assert.rejects(ageSeal(new Uint8Array(1), { recipients: [] }), isCode('KW_NO_RECIPIENTS'));
  await assert.rejects(ageSeal(new Uint8Array(1), { recipients: [{ kind: 'x25519', publicKey: new Uint8Array(3), text: '' }] }), isCode('KW_INVALID_ARGUMENT'));
  await assert.rejects(ageSeal(new Uint8Array(1), {} as { recipients: [] }), isCode('KW_INVALID_ARGUMENT'));
  await assert.rejects(ageSeal(new Uint8Array(1), { recipients: [id.recipient()] }, { armor: 'yes' as unknown as boolean }), isCode('KW_INVALID_ARGUMENT'));
  await assert.rejects(ageOpen(file, {}), isCode('KW_INVALID_ARGUMENT'));
  await assert.rejects(ageOpen(file, { identities: [] }), isCode('KW_INVALID_ARGUMENT'));
  await assert.rejects(ageOpen(file, { identities: [{} as AgeIdentity] }), isCode('KW_INVALID_ARGUMENT'));
  await assert.rejects(ageOpen('x' as unknown as Uint8Array, { identities: [id] }), isCode('KW_INVALID_ARGUMENT'));
  await assert.rejects(ageOpen(bytes('hello world'), { identities: [id] }), isCode('KW_AGE_MALFORMED'));
  await assert.rejects(ageOpen(bytes('-----BEGIN AGE ENCRYPTED FILE-----\nnot base64!\n-----END AGE ENCRYPTED FILE-----\n'), { identities: [id] }), isCode('KW_ARMOR_INVALID'));
  assert.throws(() => generateAgeIdentity('rsa' as 'x25519'), isCode('KW_INVALID_ARGUMENT'));
  assert.equal(isAgeFile(bytes('hello')), false);
  assert.equal(isAgeFile(bytes('age-encryption.org/v2\n')), false);
  assert.equal(isAgeFile(new Uint8Array()), false);
  assert.equal(isAgeFile(bytes('  \n-----BEGIN AGE ENCRYPTED FILE-----\n')), true);
});
