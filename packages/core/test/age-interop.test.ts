/**
 * Interoperability with other age implementations:
 *  - typage (the `age-encryption` npm package), both directions, all three recipient types and armor;
 *  - the real `age` / `age-keygen` binaries (Debian's age 1.1.1: X25519 and scrypt, no post-quantum).
 *
 * The binary tests FAIL when `age` is not installed (CI installs it): they are never skipped.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Decrypter, Encrypter, armor, generateHybridIdentity, generateX25519Identity, identityToRecipient } from 'age-encryption';
import { ageOpen, ageSeal, generateAgeIdentity, parseAgeIdentity, parseAgeIdentityFile, parseAgeRecipient } from '../src/age/index.js';

function pattern(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 131 + seed * 7 + (i >> 9)) & 0xff;
  return b;
}

const SIZES = [0, 1, 65536, 200000];

// --- typage -------------------------------------------------------------------

void test('typage: key strings agree (X25519 and post-quantum)', async () => {
  for (const gen of [generateX25519Identity, generateHybridIdentity]) {
    const theirs = await gen();
    const ours = parseAgeIdentity(theirs);
    assert.equal(ours.text, theirs);
    assert.equal(ours.recipient().text, await identityToRecipient(theirs));
    assert.deepEqual(parseAgeRecipient(await identityToRecipient(theirs)).publicKey, ours.recipient().publicKey);
  }
});

for (const kind of ['x25519', 'mlkem768x25519'] as const) {
  void test(`typage → ours: ${kind}`, async () => {
    const theirs = kind === 'x25519' ? await generateX25519Identity() : await generateHybridIdentity();
    const id = parseAgeIdentity(theirs);
    for (const size of SIZES) {
      const pt = pattern(size);
      const e = new Encrypter();
      e.addRecipient(await identityToRecipient(theirs));
      const file = await e.encrypt(pt);
      assert.deepEqual(await ageOpen(file, { identities: [id] }), pt);
      // Armored by typage.
      assert.deepEqual(await ageOpen(new TextEncoder().encode(armor.encode(file)), { identities: [id] }), pt);
    }
  });

  void test(`ours → typage: ${kind}`, async () => {
    const id = generateAgeIdentity(kind);
    for (const size of SIZES) {
      const pt = pattern(size, 2);
      const d = new Decrypter();
      d.addIdentity(id.text);
      const file = await ageSeal(pt, { recipients: [id.recipient()] });
      assert.deepEqual(await d.decrypt(file), pt);
      const armored = await ageSeal(pt, { recipients: [id.recipient()] }, { armor: true });
      assert.deepEqual(await d.decrypt(armor.decode(new TextDecoder().decode(armored))), pt);
    }
  });
}

void test('typage ↔ ours: scrypt passphrase', async () => {
  for (const size of [0, 1, 65537]) {
    const pt = pattern(size, 3);
    const e = new Encrypter();
    e.setPassphrase('typage and keyward');
    e.setScryptWorkFactor(10);
    assert.deepEqual(await ageOpen(await e.encrypt(pt), { passphrase: 'typage and keyward' }), pt);

    const d = new Decrypter();
    d.addPassphrase('keyward and typage');
    assert.deepEqual(await d.decrypt(await ageSeal(pt, { passphrase: 'keyward and typage', workFactor: 10 })), pt);
  }
});

void test('typage ↔ ours: multiple recipients', async () => {
  const a = generateAgeIdentity();
  const theirs = await generateX25519Identity();
  const pt = pattern(1000, 4);
  const file = await ageSeal(pt, { recipients: [a.recipient(), parseAgeRecipient(await identityToRecipient(theirs))] });
  const d = new Decrypter();
  d.addIdentity(theirs);
  assert.deepEqual(await d.decrypt(file), pt);

  const e = new Encrypter();
  e.addRecipient(await identityToRecipient(theirs));
  e.addRecipient(a.recipient().text);
  assert.deepEqual(await ageOpen(await e.encrypt(pt), { identities: [a] }), pt);
});

// --- the age binary ----------------------------------------------------------------

const dir = mkdtempSync(join(tmpdir(), 'keyward-age-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let fileCounter = 0;
const tmp = (name: string) => join(dir, `${fileCounter++}-${name}`);

function age(args: string[], input?: Uint8Array): Buffer {
  return execFileSync('age', args, { input, maxBuffer: 64 * 1024 * 1024 });
}

function requireAgeBinary(): void {
  let version: string;
  try {
    version = execFileSync('age', ['--version'], { encoding: 'utf8' }).trim();
    execFileSync('age-keygen', ['--version'], { encoding: 'utf8' });
  } catch (e) {
    assert.fail(`the age and age-keygen binaries are required (apt-get install -y age): ${String(e)}`);
  }
  assert.match(version, /^v?1\.\d+\.\d+/);
}

/** An identity file made by age-keygen and the identity we parse from it. */
function ageKeygen(): { path: string; recipient: string } {
  const path = tmp('key.txt');
  execFileSync('age-keygen', ['-o', path], { stdio: 'pipe' });
  const recipient = execFileSync('age-keygen', ['-y', path], { encoding: 'utf8' }).trim();
  return { path, recipient };
}

const shellQuote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/**
 * Runs an age command under a pseudo-terminal (util-linux `script`), since age
 * reads passphrases from the TTY only, answering every passphrase prompt.
 */
function runWithPassphrase(args: string[], passphrase: string): Promise<void> {
  const command = ['age', ...args].map(shellQuote).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    let answered = 0;
    const onData = (d: Buffer) => {
      output += d.toString('utf8');
      const prompts = output.match(/passphrase[^:\n]*: /gi)?.length ?? 0;
      while (answered < prompts) {
        child.stdin.write(passphrase + '\n');
        answered++;
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      child.stdin.destroy();
      if (code === 0 && answered > 0) resolve();
      else reject(new Error(`age ${args.join(' ')} exited with ${code} after ${answered} prompt(s): ${output}`));
    });
  });
}

void test('age binary is installed', () => {
  requireAgeBinary();
});

void test('age binary: decrypts what we seal to an age-keygen recipient (binary and armored)', async () => {
  requireAgeBinary();
  const key = ageKeygen();
  const recipient = parseAgeRecipient(key.recipient);
  // Our parser reads age-keygen's identity file (with its comments) and derives the same recipient.
  const [ours] = parseAgeIdentityFile(readFileSync(key.path, 'utf8'));
  assert.equal(ours!.recipient().text, key.recipient);
  for (const size of SIZES) {
    for (const armorOpt of [false, true]) {
      const pt = pattern(size, 5);
      const path = tmp('ours.age');
      writeFileSync(path, await ageSeal(pt, { recipients: [recipient] }, { armor: armorOpt }));
      assert.deepEqual(new Uint8Array(age(['-d', '-i', key.path, path])), pt, `size ${size}, armor ${armorOpt}`);
    }
  }
});

void test('age binary: reads our identity file and opens what we seal', async () => {
  requireAgeBinary();
  const id = generateAgeIdentity();
  const idPath = tmp('our-key.txt');
  writeFileSync(idPath, `# created by keyward\n# public key: ${id.recipient().text}\n${id.text}\n`);
  const pt = pattern(70000, 6);
  const other = ageKeygen();
  const path = tmp('multi.age');
  writeFileSync(path, await ageSeal(pt, { recipients: [parseAgeRecipient(other.recipient), id.recipient()] }));
  assert.deepEqual(new Uint8Array(age(['-d', '-i', idPath, path])), pt);
  assert.deepEqual(new Uint8Array(age(['-d', '-i', other.path, path])), pt);
});

void test('age binary: we open what `age -r` encrypts (binary and armored)', async () => {
  requireAgeBinary();
  const id = generateAgeIdentity();
  const other = ageKeygen();
  for (const size of SIZES) {
    const pt = pattern(size, 7);
    const bin = age(['-r', id.recipient().text], pt);
    assert.deepEqual(await ageOpen(new Uint8Array(bin), { identities: [id] }), pt);
    const armored = age(['-a', '-r', other.recipient, '-r', id.recipient().text], pt);
    assert.ok(armored.toString('latin1').startsWith('-----BEGIN AGE ENCRYPTED FILE-----'));
    assert.deepEqual(await ageOpen(new Uint8Array(armored), { identities: [id] }), pt);
  }
  // An age-keygen identity, parsed from its file, opens age's output.
  const [theirs] = parseAgeIdentityFile(readFileSync(other.path, 'utf8'));
  const pt = pattern(12345, 8);
  assert.deepEqual(await ageOpen(new Uint8Array(age(['-r', other.recipient], pt)), { identities: [theirs!] }), pt);
});

void test('age binary: scrypt passphrase both ways (through a pseudo-terminal)', async () => {
  requireAgeBinary();
  const passphrase = 'keyward passphrase interop';
  const pt = pattern(70000, 9);
  const plainPath = tmp('plain.bin');
  writeFileSync(plainPath, pt);

  // age -p (work factor 18, age's default) → ageOpen.
  const theirPath = tmp('theirs-p.age');
  await runWithPassphrase(['-p', '-o', theirPath, plainPath], passphrase);
  const theirs = new Uint8Array(readFileSync(theirPath));
  assert.match(Buffer.from(theirs.subarray(0, 60)).toString('latin1'), /^age-encryption\.org\/v1\n-> scrypt \S+ 18\n/);
  assert.deepEqual(await ageOpen(theirs, { passphrase }), pt);

  // ageSeal (work factor 10) → age -d.
  const ourPath = tmp('ours-p.age');
  const outPath = tmp('ours-p.out');
  writeFileSync(ourPath, await ageSeal(pt, { passphrase, workFactor: 10 }, { armor: true }));
  await runWithPassphrase(['-d', '-o', outPath, ourPath], passphrase);
  assert.deepEqual(new Uint8Array(readFileSync(outPath)), pt);
});
