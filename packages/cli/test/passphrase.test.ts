/** Passphrase sealing: sources (file, /dev/fd/N, env, terminal), errors, the scrypt-alone rule. */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { BIN, fails, kw, newIdentity, ok, pattern, tempDir, withTerminal } from './helpers.js';

const t = tempDir();
after(t.cleanup);

const plain = pattern(70000, 21);
const WF = ['--work-factor', '10'];
let pwFile: string;
let id: { file: string; recipient: string };

before(async () => {
  pwFile = t.path('pw.txt');
  writeFileSync(pwFile, 'correct horse battery staple\nsecond line is ignored\n');
  writeFileSync(t.path('plain'), plain);
  id = await newIdentity(t.path('id.key'));
  writeFileSync(t.path('recipients.txt'), id.recipient + '\n');
});

void test('--passphrase-file on seal and open (first line only, CRLF tolerated)', async () => {
  const env = t.path('pf.kw');
  ok(await kw(['seal', '--passphrase', '--passphrase-file', pwFile, ...WF, '-o', env, t.path('plain')]));
  const d = JSON.parse(ok(await kw(['inspect', '--json', env])).out);
  assert.deepEqual(d.stanzas.map((s: { type: string }) => s.type), ['scrypt']);
  assert.deepEqual(ok(await kw(['open', '--passphrase-file', pwFile, env])).stdout, plain);
  const crlf = t.path('pw-crlf.txt');
  writeFileSync(crlf, 'correct horse battery staple\r\n');
  assert.deepEqual(ok(await kw(['open', '--passphrase-file', crlf, env])).stdout, plain);
  // --passphrase-file alone implies --passphrase.
  const env2 = t.path('pf2.kw');
  ok(await kw(['seal', '--passphrase-file', pwFile, ...WF, '-o', env2], { input: plain }));
  assert.deepEqual(ok(await kw(['open', '--passphrase-file', pwFile, env2])).stdout, plain);
});

void test('--passphrase-file /dev/fd/3 (a file descriptor)', async () => {
  const env = ok(await kw(['seal', '--passphrase', '--passphrase-file', '/dev/fd/3', ...WF], { input: plain, fds: ['fd secret\n'] })).stdout;
  assert.deepEqual(ok(await kw(['open', '--passphrase-file', '/dev/fd/3'], { input: env, fds: ['fd secret'] })).stdout, plain);
  fails(await kw(['open', '--passphrase-file', '/dev/fd/3'], { input: env, fds: ['wrong\n'] }), 'KW_WRONG_PASSPHRASE');
});

void test('KEYWARD_PASSPHRASE; the file takes precedence over the environment', async () => {
  const env = ok(await kw(['seal', '--passphrase', ...WF], { input: plain, env: { KEYWARD_PASSPHRASE: 'from the env' } })).stdout;
  assert.deepEqual(ok(await kw(['open'], { input: env, env: { KEYWARD_PASSPHRASE: 'from the env' } })).stdout, plain);
  fails(await kw(['open', '--passphrase-file', pwFile], { input: env, env: { KEYWARD_PASSPHRASE: 'from the env' } }), 'KW_WRONG_PASSPHRASE');
  // Identities given too: the passphrase still opens a scrypt envelope.
  assert.deepEqual(ok(await kw(['open', '-i', id.file], { input: env, env: { KEYWARD_PASSPHRASE: 'from the env' } })).stdout, plain);
});

void test('wrong passphrase with -o: KW_WRONG_PASSPHRASE and no output file', async () => {
  const env = t.path('wrong.kw');
  ok(await kw(['seal', '--passphrase-file', pwFile, ...WF, '-o', env], { input: plain }));
  const out = t.path('wrong.out');
  fails(await kw(['open', '-o', out, env], { env: { KEYWARD_PASSPHRASE: 'nope' } }), 'KW_WRONG_PASSPHRASE');
  assert.equal(existsSync(out), false);
});

void test('no passphrase source and no terminal → usage error naming the options', async () => {
  const r = fails(await kw(['seal', '--passphrase', ...WF], { input: plain }), 'KW_INVALID_ARGUMENT');
  assert.match(r.stderr, /--passphrase-file/);
  assert.match(r.stderr, /KEYWARD_PASSPHRASE/);
  const env = ok(await kw(['seal', '--passphrase-file', pwFile, ...WF], { input: plain })).stdout;
  fails(await kw(['open'], { input: env }), 'KW_INVALID_ARGUMENT');
  // A public-key envelope never asks for a passphrase.
  const pk = ok(await kw(['seal', '-r', id.recipient], { input: plain })).stdout;
  assert.deepEqual(ok(await kw(['open', '-i', id.file], { input: pk })).stdout, plain);
  const empty = t.path('empty.txt');
  writeFileSync(empty, '\nsecond\n');
  fails(await kw(['seal', '--passphrase-file', empty], { input: plain }), 'KW_INVALID_ARGUMENT');
});

void test('a passphrase cannot be combined with recipients: KW_SCRYPT_NOT_ALONE', async () => {
  for (const args of [
    ['--passphrase', '-r', id.recipient],
    ['--passphrase-file', pwFile, '-r', id.recipient],
    ['--passphrase', '-R', t.path('recipients.txt')],
  ]) {
    const r = fails(await kw(['seal', ...args], { input: plain, env: { KEYWARD_PASSPHRASE: 'x' } }), 'KW_SCRYPT_NOT_ALONE');
    assert.equal(r.code, 1);
    assert.equal(r.stdout.length, 0);
  }
});

void test('--work-factor: range 10..22, only with a passphrase', async () => {
  for (const wf of ['9', '23', 'ten', '12.5', '-1']) fails(await kw(['seal', '--passphrase-file', pwFile, '--work-factor', wf], { input: plain }), 'KW_INVALID_ARGUMENT');
  fails(await kw(['seal', '-r', id.recipient, '--work-factor', '12'], { input: plain }), 'KW_INVALID_ARGUMENT');
});

void test('terminal prompt: asked twice when sealing, once when opening; mismatch refused', async () => {
  const env = t.path('tty.kw');
  const sealed = await withTerminal([process.execPath, BIN, 'seal', '--passphrase', ...WF, '-o', env, t.path('plain')], ['typed on a tty', 'typed on a tty']);
  assert.equal(sealed.code, 0, sealed.output);
  assert.match(sealed.output, /Enter passphrase: [\s\S]*Confirm passphrase: /);
  assert.ok(!sealed.output.includes('typed on a tty'), 'the passphrase is not echoed');
  const out = t.path('tty.out');
  const opened = await withTerminal([process.execPath, BIN, 'open', '-o', out, env], ['typed on a tty']);
  assert.equal(opened.code, 0, opened.output);
  assert.deepEqual(readFileSync(out), plain);
  const mismatch = await withTerminal([process.execPath, BIN, 'seal', '--passphrase', ...WF, '-o', t.path('mismatch.kw'), t.path('plain')], ['one', 'two']);
  assert.equal(mismatch.code, 2);
  assert.match(mismatch.output, /error\[KW_INVALID_ARGUMENT\]: the passphrases do not match/);
  assert.equal(existsSync(t.path('mismatch.kw')), false);
});

void test('a binary envelope is never written to a terminal; --armor is', async () => {
  const r = await withTerminal([process.execPath, BIN, 'seal', '-r', id.recipient, t.path('plain')], []);
  assert.equal(r.code, 2);
  assert.match(r.output, /error\[KW_INVALID_ARGUMENT\]: refusing to write a binary envelope to a terminal/);
  const a = await withTerminal([process.execPath, BIN, 'seal', '--armor', '-r', id.recipient, t.path('plain')], []);
  assert.equal(a.code, 0);
  assert.match(a.output, /-----BEGIN KEYWARD ENVELOPE-----/);
});
