/** seal --sign / open --verify. */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { fails, kw, newIdentity, ok, pattern, tempDir } from './helpers.js';

const t = tempDir();
after(t.cleanup);

let id: { file: string; recipient: string };
let signer: { file: string; recipient: string };
let pqSigner: { file: string; recipient: string };
let other: { file: string; recipient: string };
let signed: string;
let unsigned: string;
const plain = pattern(100000, 11);

before(async () => {
  id = await newIdentity(t.path('id.key'));
  signer = await newIdentity(t.path('signer.key'), ['--signing']);
  pqSigner = await newIdentity(t.path('pq-signer.key'), ['--signing', '--pq']);
  other = await newIdentity(t.path('other.key'), ['--signing']);
  signed = t.path('signed.kw');
  unsigned = t.path('unsigned.kw');
  writeFileSync(t.path('plain'), plain);
  ok(await kw(['seal', '-r', id.recipient, '--sign', signer.file, '-o', signed, t.path('plain')]));
  ok(await kw(['seal', '-r', id.recipient, '-o', unsigned, t.path('plain')]));
});

void test('--verify with the verifying key string, or a file holding it', async () => {
  assert.match(signer.recipient, /^kwed255191/);
  assert.deepEqual(ok(await kw(['open', '-i', id.file, '--verify', signer.recipient, signed])).stdout, plain);
  const pub = t.path('signer.pub');
  writeFileSync(pub, ok(await kw(['keygen', '-y', signer.file])).out);
  assert.deepEqual(ok(await kw(['open', '-i', id.file, '--verify', pub, signed])).stdout, plain);
  // Several accepted signers: one matching is enough.
  assert.deepEqual(ok(await kw(['open', '-i', id.file, '--verify', other.recipient, '--verify', pub, signed])).stdout, plain);
  const info = JSON.parse(ok(await kw(['open', '--json', '-i', id.file, '--verify', pub, '-o', t.path('v.out'), signed])).out);
  assert.equal(info.signature.alg, 'ed25519');
  assert.equal(info.signature.verified, true);
  assert.equal(info.signature.keyId, JSON.parse(ok(await kw(['inspect', '--json', signed])).out).signature.keyId);
});

void test('hybrid Ed25519 + ML-DSA-65 signatures', async () => {
  const env = t.path('pq-signed.kw');
  ok(await kw(['seal', '-r', id.recipient, '--sign', pqSigner.file, '-o', env], { input: plain }));
  assert.equal(JSON.parse(ok(await kw(['inspect', '--json', env])).out).signature.alg, 'ed25519-mldsa65');
  assert.deepEqual(ok(await kw(['open', '-i', id.file, '--verify', pqSigner.recipient, env])).stdout, plain);
  fails(await kw(['open', '-i', id.file, '--verify', signer.recipient, env]), 'KW_SIGNER_UNKNOWN');
});

void test('a different signer → KW_SIGNER_UNKNOWN, and no plaintext', async () => {
  const out = t.path('never.out');
  const r = fails(await kw(['open', '-i', id.file, '--verify', other.recipient, '-o', out, signed]), 'KW_SIGNER_UNKNOWN');
  assert.equal(r.stdout.length, 0);
  assert.throws(() => readFileSync(out));
  assert.equal((await kw(['open', '-i', id.file, '--verify', other.recipient, signed])).stdout.length, 0);
});

void test('unsigned envelope with --verify → KW_SIGNATURE_MISSING', async () => {
  const r = fails(await kw(['open', '-i', id.file, '--verify', signer.recipient, unsigned]), 'KW_SIGNATURE_MISSING');
  assert.equal(r.stdout.length, 0);
});

void test('a stripped or damaged signature fails; without --verify a signed envelope opens (unverified)', async () => {
  const bytes = readFileSync(signed);
  const stripped = bytes.subarray(0, bytes.length - 64);
  fails(await kw(['open', '-i', id.file, '--verify', signer.recipient, '-o', t.path('s.out')], { input: stripped }), 'KW_SIGNATURE_MISSING');
  const damaged = Buffer.from(bytes);
  damaged[damaged.length - 1] = damaged[damaged.length - 1]! ^ 1;
  fails(await kw(['open', '-i', id.file, '--verify', signer.recipient, '-o', t.path('s.out')], { input: damaged }), 'KW_SIGNATURE_INVALID');
  assert.throws(() => readFileSync(t.path('s.out')));
  const r = await kw(['open', '--json', '-i', id.file, signed]);
  assert.equal(r.code, 0);
  assert.deepEqual(r.stdout, plain);
  assert.equal(JSON.parse(r.stderr).signature.verified, false);
});

void test('--verify and --sign reject the wrong kinds of keys', async () => {
  // A signing (secret) key file given to --verify.
  assert.match(fails(await kw(['open', '-i', id.file, '--verify', signer.file, signed]), 'KW_INVALID_KEY_STRING').stderr, /signing \(secret\) key/);
  // A recipient string given to --verify.
  fails(await kw(['open', '-i', id.file, '--verify', id.recipient, signed]), 'KW_INVALID_KEY_STRING');
  // Neither a key nor a file.
  fails(await kw(['open', '-i', id.file, '--verify', 'no-such-file', signed]), 'KW_INVALID_ARGUMENT');
  // An identity file given to --sign.
  fails(await kw(['seal', '-r', id.recipient, '--sign', id.file], { input: 'x' }), 'KW_INVALID_KEY_STRING');
  // A signing key given to -i.
  fails(await kw(['open', '-i', signer.file, signed]), 'KW_INVALID_KEY_STRING');
});
