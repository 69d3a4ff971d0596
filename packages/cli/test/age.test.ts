/**
 * The --age path against the real `age` / `age-keygen` binaries (Debian's
 * age 1.1.1). These tests FAIL when age is not installed: CI installs it
 * (apt-get install -y age); they are never skipped.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { BIN, fails, kw, newIdentity, ok, pattern, tempDir, withTerminal } from './helpers.js';

const t = tempDir();
after(t.cleanup);

function age(args: readonly string[], input?: Uint8Array): Buffer {
  return execFileSync('age', args, { input, maxBuffer: 64 * 1024 * 1024 });
}

let ageKey: { file: string; recipient: string };
const SIZES = [0, 1, 70000];

before(() => {
  let version = '';
  try {
    version = execFileSync('age', ['--version'], { encoding: 'utf8' }).trim();
    execFileSync('age-keygen', ['--version'], { encoding: 'utf8' });
  } catch (e) {
    assert.fail(`the age and age-keygen binaries are required (apt-get install -y age): ${String(e)}`);
  }
  assert.match(version, /^v?1\.\d+\.\d+/);
  const file = t.path('age-keygen.txt');
  execFileSync('age-keygen', ['-o', file], { stdio: 'pipe' });
  ageKey = { file, recipient: execFileSync('age-keygen', ['-y', file], { encoding: 'utf8' }).trim() };
});

void test('age is installed', () => {
  assert.ok(existsSync(ageKey.file));
  assert.match(ageKey.recipient, /^age1[a-z0-9]{58}$/);
});

void test('keyward seal --age -r age1… is opened by age -d -i (binary and armored)', async () => {
  for (const size of SIZES) {
    const plain = pattern(size, 31);
    const inFile = t.path(`plain-${size}`);
    writeFileSync(inFile, plain);
    const bin = t.path(`ours-${size}.age`);
    assert.equal(ok(await kw(['seal', '--age', '-r', ageKey.recipient, '-o', bin, inFile])).out, '');
    assert.equal(readFileSync(bin).subarray(0, 22).toString('latin1'), 'age-encryption.org/v1\n');
    assert.deepEqual(age(['-d', '-i', ageKey.file, bin]), plain, `binary, size ${size}`);
    const armored = ok(await kw(['seal', '--age', '--armor', '-r', ageKey.recipient], { input: plain })).stdout;
    assert.ok(armored.toString('latin1').startsWith('-----BEGIN AGE ENCRYPTED FILE-----\n'));
    assert.deepEqual(age(['-d', '-i', ageKey.file], armored), plain, `armored, size ${size}`);
  }
});

void test('age -r output is opened by keyward open -i (binary and armored, stdout and -o)', async () => {
  for (const size of SIZES) {
    const plain = pattern(size, 32);
    const bin = age(['-r', ageKey.recipient], plain);
    assert.deepEqual(ok(await kw(['open', '-i', ageKey.file], { input: bin })).stdout, plain, `binary, size ${size}`);
    const armored = age(['-a', '-r', ageKey.recipient], plain);
    assert.deepEqual(ok(await kw(['open', '-i', ageKey.file], { input: armored })).stdout, plain, `armored, size ${size}`);
    const inFile = t.path(`theirs-${size}.age`);
    writeFileSync(inFile, bin);
    const out = t.path(`theirs-${size}.out`);
    ok(await kw(['open', '-i', ageKey.file, '-o', out, inFile]));
    assert.deepEqual(readFileSync(out), plain);
  }
});

void test('several age recipients, -R files and identity files mixing Keyward and age keys', async () => {
  const ours = t.path('ours-age.key');
  const ourRecipient = ok(await kw(['keygen', '--age', '-o', ours])).out.trim();
  // age-keygen -y reads the key file keyward keygen --age writes.
  assert.equal(execFileSync('age-keygen', ['-y', ours], { encoding: 'utf8' }).trim(), ourRecipient);
  const list = t.path('age-recipients.txt');
  writeFileSync(list, `# age recipients\n${ourRecipient}\n`);
  const plain = pattern(1000, 33);
  const file = ok(await kw(['seal', '--age', '-r', ageKey.recipient, '-R', list], { input: plain })).stdout;
  assert.deepEqual(age(['-d', '-i', ageKey.file], file), plain);
  assert.deepEqual(age(['-d', '-i', ours], file), plain);
  // One -i file holding a Keyward identity and an age identity.
  const kwId = await newIdentity(t.path('kw.key'));
  const mixed = t.path('mixed.key');
  writeFileSync(mixed, readFileSync(kwId.file, 'utf8') + readFileSync(ours, 'utf8'));
  assert.deepEqual(ok(await kw(['open', '-i', mixed], { input: file })).stdout, plain);
  const kwEnvelope = ok(await kw(['seal', '-r', kwId.recipient], { input: plain })).stdout;
  assert.deepEqual(ok(await kw(['open', '-i', mixed], { input: kwEnvelope })).stdout, plain);
});

void test('age passphrase files: keyward ↔ keyward, keyward → age, age → keyward', async () => {
  const plain = pattern(5000, 34);
  const pw = t.path('age-pw');
  writeFileSync(pw, 'age pass phrase\n');
  const ours = t.path('pw-ours.age');
  ok(await kw(['seal', '--age', '--passphrase-file', pw, '--work-factor', '10', '-o', ours], { input: plain }));
  assert.deepEqual(ok(await kw(['open', '--passphrase-file', pw, ours])).stdout, plain);
  assert.deepEqual(ok(await kw(['open', ours], { env: { KEYWARD_PASSPHRASE: 'age pass phrase' } })).stdout, plain);
  fails(await kw(['open', ours], { env: { KEYWARD_PASSPHRASE: 'wrong' } }), 'KW_WRONG_PASSPHRASE');
  fails(await kw(['open', ours]), 'KW_INVALID_ARGUMENT');

  // age reads passphrases from a terminal only.
  const decrypted = t.path('pw-ours.out');
  const r = await withTerminal(['age', '-d', '-o', decrypted, ours], ['age pass phrase']);
  assert.equal(r.code, 0, r.output);
  assert.deepEqual(readFileSync(decrypted), plain);

  const plainFile = t.path('pw-plain');
  writeFileSync(plainFile, plain);
  const theirs = t.path('pw-theirs.age');
  const e = await withTerminal(['age', '-p', '-o', theirs, plainFile], ['their pass phrase', 'their pass phrase']);
  assert.equal(e.code, 0, e.output);
  assert.deepEqual(ok(await kw(['open', theirs], { env: { KEYWARD_PASSPHRASE: 'their pass phrase' } })).stdout, plain);
  // The keyward prompt works for age files too.
  const out = t.path('pw-theirs.out');
  const p = await withTerminal([process.execPath, BIN, 'open', '-o', out, theirs], ['their pass phrase']);
  assert.equal(p.code, 0, p.output);
  assert.deepEqual(readFileSync(out), plain);
});

void test('a tampered age file with -o OUT: no OUT, no temp file', async () => {
  const plain = pattern(70000, 35);
  const file = age(['-r', ageKey.recipient], plain);
  const dir = t.path('age-tamper');
  mkdirSync(dir);
  const cases: [Buffer, string][] = [
    [flip(file, file.length - 3), 'KW_PAYLOAD_AUTH_FAILED'],
    [file.subarray(0, file.length - (70000 - 65536 + 16)), 'KW_TRUNCATED'],
    [flip(file, 60), 'KW_'],
  ];
  for (const [bytes, code] of cases) {
    writeFileSync(`${dir}/in.age`, bytes);
    const r = await kw(['open', '-i', ageKey.file, '-o', `${dir}/out`, `${dir}/in.age`]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^error\\[${code}`));
    assert.deepEqual(readdirSync(dir), ['in.age']);
    // On stdout, age files are released only after the whole file verified.
    const s = await kw(['open', '-i', ageKey.file, `${dir}/in.age`]);
    assert.equal(s.code, 1);
    assert.equal(s.stdout.length, 0);
  }
  fails(await kw(['open', '-i', ageKey.file, '-o', `${dir}/out`], { input: flip(file, file.length - 3) }), 'KW_PAYLOAD_AUTH_FAILED');
  assert.equal(existsSync(`${dir}/out`), false);
});

void test('age mode errors: wrong key kinds, flags age has no notion of', async () => {
  const kwId = await newIdentity(t.path('kw2.key'));
  const file = age(['-r', ageKey.recipient], Buffer.from('x'));
  fails(await kw(['seal', '--age', '-r', kwId.recipient], { input: 'x' }), 'KW_INVALID_KEY_STRING');
  assert.match(fails(await kw(['seal', '-r', ageKey.recipient], { input: 'x' }), 'KW_INVALID_KEY_STRING').stderr, /--age/);
  for (const extra of [['--context', 'a=b'], ['--anonymous'], ['--aead', 'aes-256-gcm'], ['--sign', kwId.file]]) {
    fails(await kw(['seal', '--age', '-r', ageKey.recipient, ...extra], { input: 'x' }), 'KW_INVALID_ARGUMENT');
  }
  fails(await kw(['seal', '--age', '--passphrase', '-r', ageKey.recipient], { input: 'x', env: { KEYWARD_PASSPHRASE: 'p' } }), 'KW_SCRYPT_NOT_ALONE');
  fails(await kw(['open', '-i', ageKey.file, '--verify', 'kwed255191nrz9ssg4cs0pqt9aac9x9r673ccqd5x3je3jhc0njgm5ux7940qqpma8fr'], { input: file }), 'KW_SIGNATURE_MISSING');
  fails(await kw(['open', '-i', ageKey.file, '--context', 'a=b'], { input: file }), 'KW_CONTEXT_MISMATCH');
  assert.equal(ok(await kw(['open', '-i', ageKey.file, '--any-context'], { input: file })).out, 'x');
  fails(await kw(['open', '-i', kwId.file], { input: file }), 'KW_NO_IDENTITY_MATCHED');
  const stranger = t.path('stranger-age.key');
  ok(await kw(['keygen', '--age', '-o', stranger]));
  fails(await kw(['open', '-i', stranger], { input: file }), 'KW_NO_IDENTITY_MATCHED');
});

void test('inspect reads age files (binary and armored)', async () => {
  const plain = pattern(70000, 36);
  const d = JSON.parse(ok(await kw(['inspect', '--json'], { input: age(['-r', ageKey.recipient, '-r', ageKey.recipient], plain) })).out);
  assert.deepEqual(d, {
    format: 'age', version: 'age-encryption.org/v1', armored: false, stanzas: [{ type: 'X25519' }, { type: 'X25519' }], postQuantum: false,
    headerLength: d.headerLength, payloadLength: d.payloadLength, chunkCount: 2, plaintextLength: 70000,
  });
  const a = JSON.parse(ok(await kw(['inspect', '--json'], { input: age(['-a', '-r', ageKey.recipient], plain) })).out);
  assert.equal(a.armored, true);
  assert.equal(a.plaintextLength, 70000);
  assert.match(ok(await kw(['inspect'], { input: age(['-r', ageKey.recipient], plain) })).out, /^format\s+age \(age-encryption\.org\/v1\)$/m);
});

function flip(b: Buffer, at: number): Buffer {
  const c = Buffer.from(b);
  c[at] = c[at]! ^ 1;
  return c;
}
