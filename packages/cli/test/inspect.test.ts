/** `keyward inspect`: human and JSON output, untrusted strings escaped. */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { inspect } from '@keyward/core';
import { fails, kw, newIdentity, ok, pattern, tempDir } from './helpers.js';

const t = tempDir();
after(t.cleanup);

let id: { file: string; recipient: string };
let signer: { file: string; recipient: string };
let env: string;

before(async () => {
  id = await newIdentity(t.path('id.key'));
  signer = await newIdentity(t.path('signer.key'), ['--signing']);
  env = t.path('e.kw');
  ok(await kw(['seal', '-r', id.recipient, '--sign', signer.file, '--context', 'table=orders', '--context', 'tenant=acme', '-o', env], { input: pattern(150000) }));
});

void test('inspect --json is the inspect() object of @keyward/core, from a file and from stdin', async () => {
  const bytes = readFileSync(env);
  const expected = JSON.parse(JSON.stringify(inspect(bytes)));
  assert.deepEqual(JSON.parse(ok(await kw(['inspect', '--json', env])).out), expected);
  assert.deepEqual(JSON.parse(ok(await kw(['inspect', '--json'], { input: bytes })).out), expected);
  assert.equal(expected.plaintextLength, 150000);
  assert.equal(expected.chunkCount, 3);
});

void test('inspect (text): format, context, signature, stanzas, sizes', async () => {
  const out = ok(await kw(['inspect', env])).out;
  const d = inspect(readFileSync(env));
  assert.match(out, /^format\s+keyward v1$/m);
  assert.match(out, /^aead\s+aes-256-gcm$/m);
  assert.match(out, /^context\s+"table" = "orders"\n\s+"tenant" = "acme"$/m);
  assert.match(out, new RegExp(`^signature\\s+ed25519, key id ${d.signature!.keyId}$`, 'm'));
  assert.match(out, new RegExp(`^\\s+x25519\\s+key id ${d.stanzas[0]!.keyId}$`, 'm'));
  assert.match(out, /^payload\s+\d+ bytes in 3 chunks \(150000 bytes of plaintext\)$/m);
  assert.match(out, /nothing above is authenticated/);
});

void test('inspect escapes control characters from the (untrusted) header', async () => {
  const e = t.path('evil.kw');
  ok(await kw(['seal', '-r', id.recipient, '--context', 'k=\u001b[31mred\u0007', '-o', e], { input: 'x' }));
  const out = ok(await kw(['inspect', e])).out;
  assert.ok(!out.includes('\u001b'), 'no raw escape sequence reaches the terminal');
  assert.match(out, /"k" = "\\u001b\[31mred\\u0007"/);
});

void test('inspect of a passphrase envelope and an anonymous one', async () => {
  const pw = t.path('pw');
  writeFileSync(pw, 'pw\n');
  const p = ok(await kw(['seal', '--passphrase-file', pw, '--work-factor', '10'], { input: 'x' })).stdout;
  assert.match(ok(await kw(['inspect'], { input: p })).out, /^\s+scrypt\s+passphrase$/m);
  const a = ok(await kw(['seal', '--anonymous', '-r', id.recipient], { input: 'x' })).stdout;
  assert.match(ok(await kw(['inspect'], { input: a })).out, /^\s+x25519\s+anonymous$/m);
});

void test('inspect errors', async () => {
  fails(await kw(['inspect'], { input: 'not an envelope at all' }), 'KW_NOT_AN_ENVELOPE');
  fails(await kw(['inspect', t.path('missing')]), 'KW_IO');
  fails(await kw(['inspect', 'a', 'b']), 'KW_INVALID_ARGUMENT');
  fails(await kw(['inspect'], { input: readFileSync(env).subarray(0, 40) }), 'KW_MALFORMED_HEADER');
});
