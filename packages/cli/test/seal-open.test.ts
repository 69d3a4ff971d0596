/** seal/open round trips: key types, several recipients, -R, pipes, armor, context, failures. */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { BIN, fails, kw, newIdentity, ok, pattern, tempDir } from './helpers.js';

const t = tempDir();
after(t.cleanup);

const ids: Record<'x25519' | 'xwing' | 'p256', { file: string; recipient: string }> = {} as Record<"x25519" | "xwing" | "p256", { file: string; recipient: string }>;
before(async () => {
  ids.x25519 = await newIdentity(t.path('x25519.key'));
  ids.xwing = await newIdentity(t.path('xwing.key'), ['--pq']);
  ids.p256 = await newIdentity(t.path('p256.key'), ['--type', 'p256']);
});

for (const type of ['x25519', 'xwing', 'p256'] as const) {
  void test(`round trip file → file: ${type} (0, 1, 65536, 200001 bytes)`, async () => {
    for (const size of [0, 1, 65536, 200001]) {
      const plain = pattern(size, size);
      const inFile = t.path(`${type}-${size}.bin`);
      writeFileSync(inFile, plain);
      const env = t.path(`${type}-${size}.kw`);
      assert.equal(ok(await kw(['seal', '-r', ids[type].recipient, '-o', env, inFile])).out, '');
      assert.equal(readFileSync(env).subarray(0, 4).toString('latin1'), 'KWRD');
      const out = t.path(`${type}-${size}.out`);
      ok(await kw(['open', '-i', ids[type].file, '-o', out, env]));
      assert.deepEqual(readFileSync(out), plain, `size ${size}`);
      // And to stdout.
      assert.deepEqual(ok(await kw(['open', '-i', ids[type].file, env])).stdout, plain);
    }
  });
}

void test('several recipients (-r and -R with comments): each opens; others do not', async () => {
  const recipientsFile = t.path('team.txt');
  writeFileSync(recipientsFile, `# the team\n\n${ids.xwing.recipient}\n  ${ids.p256.recipient}  \n`);
  const plain = pattern(70000, 9);
  const env = ok(await kw(['seal', '-r', ids.x25519.recipient, '-R', recipientsFile], { input: plain })).stdout;
  const envFile = t.path('team.kw');
  writeFileSync(envFile, env);
  const described = JSON.parse(ok(await kw(['inspect', '--json', envFile])).out);
  assert.deepEqual(described.stanzas.map((s: { type: string }) => s.type), ['x25519', 'xwing', 'p256']);
  for (const id of Object.values(ids)) assert.deepEqual(ok(await kw(['open', '-i', id.file, envFile])).stdout, plain);
  // Several -i files: the matching one is found.
  const stranger = await newIdentity(t.path('stranger.key'));
  assert.deepEqual(ok(await kw(['open', '-i', stranger.file, '-i', ids.p256.file, envFile])).stdout, plain);
  fails(await kw(['open', '-i', stranger.file, envFile]), 'KW_NO_IDENTITY_MATCHED');
});

void test('stdin → stdout piping, and "-" for stdin/stdout', async () => {
  const plain = pattern(150000, 3);
  const env = ok(await kw(['seal', '-r', ids.x25519.recipient], { input: plain })).stdout;
  assert.deepEqual(ok(await kw(['open', '-i', ids.x25519.file], { input: env })).stdout, plain);
  const env2 = ok(await kw(['seal', '-r', ids.x25519.recipient, '-o', '-', '-'], { input: plain })).stdout;
  assert.deepEqual(ok(await kw(['open', '-i', ids.x25519.file, '-o', '-', '-'], { input: env2 })).stdout, plain);
});

void test('--armor: canonical text envelope that opens from a file and from stdin', async () => {
  const plain = pattern(1000, 4);
  const armored = ok(await kw(['seal', '--armor', '-r', ids.xwing.recipient], { input: plain })).out;
  assert.ok(armored.startsWith('-----BEGIN KEYWARD ENVELOPE-----\n'));
  assert.ok(armored.endsWith('-----END KEYWARD ENVELOPE-----\n'));
  assert.ok(armored.split('\n').every((l) => l.length <= 64));
  assert.deepEqual(ok(await kw(['open', '-i', ids.xwing.file], { input: armored })).stdout, plain);
  const f = t.path('armored.kw.txt');
  writeFileSync(f, armored);
  assert.deepEqual(ok(await kw(['open', '-i', ids.xwing.file, f])).stdout, plain);
  assert.equal(JSON.parse(ok(await kw(['inspect', '--json', f])).out).stanzas[0].type, 'xwing');
});

void test('--context is required on open: exact pairs, order kept, --any-context opts out', async () => {
  const plain = Buffer.from('row 42');
  const env = t.path('ctx.kw');
  ok(await kw(['seal', '-r', ids.x25519.recipient, '--context', 'table=orders', '--context', 'tenant=acme', '--context', 'note=a=b', '-o', env], { input: plain }));
  const described = JSON.parse(ok(await kw(['inspect', '--json', env])).out);
  assert.deepEqual(described.context, [['table', 'orders'], ['tenant', 'acme'], ['note', 'a=b']]);

  const open = (...extra: string[]) => kw(['open', '-i', ids.x25519.file, ...extra, env]);
  assert.deepEqual(ok(await open('--context', 'table=orders', '--context', 'tenant=acme', '--context', 'note=a=b')).stdout, plain);
  // Order of the opener's pairs does not matter; their set does.
  assert.deepEqual(ok(await open('--context', 'note=a=b', '--context', 'tenant=acme', '--context', 'table=orders')).stdout, plain);
  for (const bad of [
    [],
    ['--context', 'table=orders', '--context', 'tenant=acme'],
    ['--context', 'table=orders', '--context', 'tenant=evil', '--context', 'note=a=b'],
    ['--context', 'table=orders', '--context', 'tenant=acme', '--context', 'note=a=b', '--context', 'x=y'],
  ]) {
    const r = fails(await open(...bad), 'KW_CONTEXT_MISMATCH');
    assert.equal(r.stdout.length, 0, 'no plaintext on a context mismatch');
  }
  assert.deepEqual(ok(await open('--any-context')).stdout, plain);
  // An envelope without context does not open when the opener requires one.
  const bare = ok(await kw(['seal', '-r', ids.x25519.recipient], { input: plain })).stdout;
  fails(await kw(['open', '-i', ids.x25519.file, '--context', 'table=orders'], { input: bare }), 'KW_CONTEXT_MISMATCH');
  // Malformed context arguments.
  fails(await kw(['seal', '-r', ids.x25519.recipient, '--context', 'novalue'], { input: plain }), 'KW_INVALID_ARGUMENT');
  fails(await kw(['seal', '-r', ids.x25519.recipient, '--context', 'a=1', '--context', 'a=2'], { input: plain }), 'KW_CONTEXT_INVALID');
  fails(await kw(['seal', '-r', ids.x25519.recipient, '--context', '=v'], { input: plain }), 'KW_CONTEXT_INVALID');
  fails(await open('--any-context', '--context', 'a=1'), 'KW_INVALID_ARGUMENT');
});

void test('--aead chacha20-poly1305 and --anonymous', async () => {
  const plain = pattern(5000, 5);
  const env = t.path('anon.kw');
  ok(await kw(['seal', '--anonymous', '--aead', 'chacha20-poly1305', '-r', ids.x25519.recipient, '-r', ids.p256.recipient, '-o', env], { input: plain }));
  const d = JSON.parse(ok(await kw(['inspect', '--json', env])).out);
  assert.equal(d.aead, 'chacha20-poly1305');
  assert.deepEqual(d.stanzas.map((s: { keyId: string | null }) => s.keyId), [null, null]);
  assert.deepEqual(ok(await kw(['open', '-i', ids.p256.file, env])).stdout, plain);
  fails(await kw(['seal', '--aead', 'des', '-r', ids.x25519.recipient], { input: plain }), 'KW_INVALID_ARGUMENT');
});

void test('a tampered envelope with -o OUT: no OUT, no temp file, exit 1', async () => {
  const plain = pattern(200000, 6);
  const env = readFileSync(await sealToFile(plain, 'tamper.kw'));
  const cases: [string, Buffer, string][] = [
    ['payload bit flip (last chunk)', flip(env, env.length - 5), 'KW_PAYLOAD_AUTH_FAILED'],
    ['payload bit flip (first chunk)', flip(env, 400), 'KW_PAYLOAD_AUTH_FAILED'],
    // 200000 bytes = 3 full chunks (65536 + 16 bytes each) and a final one of 3392 + 16 bytes.
    ['final chunk cut off', env.subarray(0, env.length - (3392 + 16)), 'KW_TRUNCATED'],
    ['cut inside a chunk', env.subarray(0, env.length - 70000), 'KW_PAYLOAD_AUTH_FAILED'],
    ['header bit flip (context/salt)', flip(env, 20), 'KW_'],
    ['trailing garbage', Buffer.concat([env, Buffer.from('x')]), 'KW_'],
  ];
  const dir = t.path('tamper');
  mkdirSync(dir);
  for (const [name, bytes, code] of cases) {
    const inFile = `${dir}/in.kw`;
    writeFileSync(inFile, bytes);
    const out = `${dir}/out.bin`;
    const r = await kw(['open', '-i', ids.x25519.file, '-o', out, inFile]);
    assert.equal(r.code, 1, `${name}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^error\\[${code}`), name);
    assert.equal(existsSync(out), false, `${name}: no output file`);
    assert.deepEqual(readdirSync(dir), ['in.kw'], `${name}: no temp file left`);
    assert.equal(r.stdout.length, 0);
  }
  // The exact code for a modified payload chunk.
  const r = fails(await kw(['open', '-i', ids.x25519.file, '-o', `${dir}/out.bin`], { input: flip(env, env.length - 5) }), 'KW_PAYLOAD_AUTH_FAILED');
  assert.equal(r.stdout.length, 0);
  assert.equal(existsSync(`${dir}/out.bin`), false);
  // A failed open never replaces an existing output either.
  writeFileSync(`${dir}/keep.bin`, 'keep');
  fails(await kw(['open', '-i', ids.x25519.file, '-o', `${dir}/keep.bin`], { input: flip(env, 400) }), 'KW_PAYLOAD_AUTH_FAILED');
  assert.equal(readFileSync(`${dir}/keep.bin`, 'utf8'), 'keep');
});

void test('open/seal --json: on stdout with -o, on stderr when stdout carries data', async () => {
  const plain = Buffer.from('json please');
  const env = t.path('json.kw');
  const sealed = JSON.parse(ok(await kw(['seal', '--json', '-r', ids.x25519.recipient, '--context', 'k=v', '-o', env], { input: plain })).out);
  assert.deepEqual(sealed, {
    format: 'keyward', output: env, armor: false, aead: 'aes-256-gcm', context: [['k', 'v']], anonymous: false,
    recipients: [{ type: 'x25519', publicKey: ids.x25519.recipient }], signature: null,
  });
  const out = t.path('json.out');
  const opened = JSON.parse(ok(await kw(['open', '--json', '-i', ids.x25519.file, '--context', 'k=v', '-o', out, env])).out);
  assert.deepEqual(opened, { format: 'keyward', output: out, aead: 'aes-256-gcm', context: [['k', 'v']], signature: null, openedBy: 'x25519' });
  assert.deepEqual(readFileSync(out), plain);
  const toStdout = await kw(['open', '--json', '-i', ids.x25519.file, '--context', 'k=v', env]);
  assert.equal(toStdout.code, 0);
  assert.deepEqual(toStdout.stdout, plain);
  assert.equal(JSON.parse(toStdout.stderr).openedBy, 'x25519');
});

void test('open errors: not an envelope, missing input, bad identity file, wrong key kinds', async () => {
  fails(await kw(['open', '-i', ids.x25519.file], { input: 'hello world, not an envelope' }), 'KW_NOT_AN_ENVELOPE');
  fails(await kw(['open', '-i', ids.x25519.file], { input: '' }), 'KW_MALFORMED_HEADER');
  fails(await kw(['open', '-i', ids.x25519.file, t.path('missing.kw')]), 'KW_IO');
  fails(await kw(['open', '-i', t.path('missing.key')], { input: 'x' }), 'KW_IO');
  const pubAsIdentity = t.path('pub-as-id.txt');
  writeFileSync(pubAsIdentity, ids.x25519.recipient + '\n');
  assert.match(fails(await kw(['open', '-i', pubAsIdentity], { input: 'x' }), 'KW_INVALID_KEY_STRING').stderr, /not an identity/);
  fails(await kw(['seal', '-r', 'kwx25519notakey'], { input: 'x' }), 'KW_INVALID_KEY_STRING');
  const secret = readFileSync(ids.x25519.file, 'utf8').split('\n')[2]!;
  const r = fails(await kw(['seal', '-r', secret], { input: 'x' }), 'KW_INVALID_KEY_STRING');
  assert.ok(!r.stderr.includes(secret.slice(15)), 'a secret given as -r is never echoed');
  fails(await kw(['seal', '-r', secret.toLowerCase()], { input: 'x' }), 'KW_INVALID_KEY_STRING');
  assert.ok(!(await kw(['seal', '-r', secret.toLowerCase()], { input: 'x' })).stderr.includes(secret.toLowerCase().slice(15)));
  fails(await kw(['seal', '-r', ids.x25519.recipient, '-o', t.path('no/such/dir/out.kw')], { input: 'x' }), 'KW_IO');
  fails(await kw(['open', '-i', ids.x25519.file, '-o', t.path('no/such/dir/out')], { input: 'x' }), 'KW_IO');
  // stdin can feed only one thing.
  fails(await kw(['open', '-i', '-'], { input: readFileSync(ids.x25519.file) }), 'KW_INVALID_ARGUMENT');
});

void test('a Keyward identity file can be read from stdin when the envelope is a file', async () => {
  const env = await sealToFile(Buffer.from('stdin key'), 'stdin-key.kw');
  assert.equal(ok(await kw(['open', '-i', '-', env], { input: readFileSync(ids.x25519.file) })).out, 'stdin key');
});

void test('large files (> 8 MiB, sealed and opened on worker threads): round trip, tamper, passphrase', async () => {
  const plain = pattern(9 * 1024 * 1024 + 123, 13);
  const dir = t.path('large');
  mkdirSync(dir);
  writeFileSync(`${dir}/in`, plain);
  ok(await kw(['seal', '-r', ids.x25519.recipient, '--context', 'size=large', '-o', `${dir}/in.kw`, `${dir}/in`]));
  ok(await kw(['open', '-i', ids.x25519.file, '--context', 'size=large', '-o', `${dir}/out`, `${dir}/in.kw`]));
  assert.ok(readFileSync(`${dir}/out`).equals(plain));
  writeFileSync(`${dir}/bad.kw`, flip(readFileSync(`${dir}/in.kw`), 5 * 1024 * 1024));
  fails(await kw(['open', '-i', ids.x25519.file, '--context', 'size=large', '-o', `${dir}/bad.out`, `${dir}/bad.kw`]), 'KW_PAYLOAD_AUTH_FAILED');
  assert.deepEqual(readdirSync(dir).sort(), ['bad.kw', 'in', 'in.kw', 'out']);
  const pw = `${dir}/pw`;
  writeFileSync(pw, 'large\n');
  ok(await kw(['seal', '--passphrase-file', pw, '--work-factor', '10', '-o', `${dir}/p.kw`, `${dir}/in`]));
  ok(await kw(['open', '--passphrase-file', pw, '-o', `${dir}/p.out`, `${dir}/p.kw`]));
  assert.ok(readFileSync(`${dir}/p.out`).equals(plain));
});

void test('interrupted open with -o (SIGTERM): the temp file is removed, no output', async () => {
  const env = readFileSync(await sealToFile(pattern(300000, 12), 'interrupt.kw'));
  const dir = t.path('interrupt');
  mkdirSync(dir);
  const child = spawn(process.execPath, [BIN, 'open', '-i', ids.x25519.file, '-o', `${dir}/out`], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  const closed = new Promise<NodeJS.Signals | null>((resolve) => child.on('close', (_code, signal) => resolve(signal)));
  child.stdin.write(env.subarray(0, 200000)); // most of it; stdin stays open
  const deadline = Date.now() + 10_000;
  while (!readdirSync(dir).some((f) => f.endsWith('.partial')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.ok(readdirSync(dir).some((f) => f.endsWith('.partial')), 'the temp file exists while opening');
  child.kill('SIGTERM');
  assert.equal(await closed, 'SIGTERM');
  assert.deepEqual(readdirSync(dir), []);
});

async function sealToFile(plain: Buffer, name: string): Promise<string> {
  const env = t.path(name);
  ok(await kw(['seal', '-r', ids.x25519.recipient, '-o', env], { input: plain }));
  return env;
}

function flip(b: Buffer, at: number): Buffer {
  const c = Buffer.from(b);
  c[at] = c[at]! ^ 0x01;
  return c;
}
