/** `keyward keygen`: key files, modes, no overwrite, -y, key types, JSON. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { fails, kw, ok, tempDir } from './helpers.js';

const t = tempDir();
after(t.cleanup);

void test('keygen -o: mode 0600, age-keygen layout, recipient on stdout', async () => {
  const file = t.path('id.key');
  const r = ok(await kw(['keygen', '-o', file]));
  const recipient = r.out.trim();
  assert.match(recipient, /^kwx255191[a-z0-9]+$/);
  assert.equal(r.out, recipient + '\n');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const lines = readFileSync(file, 'utf8').split('\n');
  assert.match(lines[0]!, /^# created: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.equal(lines[1], `# public key: ${recipient}`);
  assert.match(lines[2]!, /^KWSECRETX255191[A-Z0-9]+$/);
  assert.equal(lines[3], '');
  assert.equal(lines.length, 4);
  // -y derives the same recipient from the secret key.
  assert.equal(ok(await kw(['keygen', '-y', file])).out, recipient + '\n');
  assert.equal(ok(await kw(['keygen', '-y'], { input: readFileSync(file) })).out, recipient + '\n');
});

void test('keygen refuses to overwrite an existing file and leaves it untouched', async () => {
  const file = t.path('exists.key');
  writeFileSync(file, 'precious\n');
  const r = fails(await kw(['keygen', '-o', file]), 'KW_IO');
  assert.match(r.stderr, /already exists/);
  assert.equal(r.out, '');
  assert.equal(readFileSync(file, 'utf8'), 'precious\n');
  // A second keygen to the same new path fails too.
  const fresh = t.path('fresh.key');
  ok(await kw(['keygen', '-o', fresh]));
  const before = readFileSync(fresh, 'utf8');
  fails(await kw(['keygen', '--pq', '-o', fresh]), 'KW_IO');
  assert.equal(readFileSync(fresh, 'utf8'), before);
});

void test('keygen without -o: the key file on stdout, "Public key:" on stderr', async () => {
  const r = await kw(['keygen']);
  assert.equal(r.code, 0);
  const recipient = /^Public key: (kwx25519\S+)\n$/.exec(r.stderr)?.[1];
  assert.ok(recipient, r.stderr);
  assert.match(r.out, new RegExp(`^# created: .+\\n# public key: ${recipient}\\nKWSECRETX25519\\S+\\n$`));
  assert.equal(ok(await kw(['keygen', '-y', '-'], { input: r.out })).out, `${recipient}\n`);
});

void test('keygen types: --pq / --type xwing / --type p256 / --signing / --signing --pq / --age', async () => {
  const cases: [string[], RegExp, RegExp][] = [
    [['--pq'], /^kwxwing1/, /^KWSECRETXWING1/],
    [['--type', 'xwing'], /^kwxwing1/, /^KWSECRETXWING1/],
    [['--type', 'p256'], /^kwp2561/, /^KWSECRETP2561/],
    [['--type', 'x25519'], /^kwx255191/, /^KWSECRETX255191/],
    [['--signing'], /^kwed255191/, /^KWSECRETED255191/],
    [['--signing', '--pq'], /^kwed25519mldsa651/, /^KWSECRETED25519MLDSA651/],
    [['--age'], /^age1[a-z0-9]{58}$/, /^AGE-SECRET-KEY-1/],
    [['--age', '--pq'], /^age1pq1/, /^AGE-SECRET-KEY-PQ-1/],
  ];
  for (const [flags, pub, secret] of cases) {
    const file = t.path(`k-${flags.join('')}.key`);
    const publicKey = ok(await kw(['keygen', ...flags, '-o', file])).out.trim();
    assert.match(publicKey, pub, flags.join(' '));
    const keyLine = readFileSync(file, 'utf8').split('\n')[2]!;
    assert.match(keyLine, secret, flags.join(' '));
    assert.equal(ok(await kw(['keygen', '-y', file])).out.trim(), publicKey, `-y of ${flags.join(' ')}`);
  }
});

void test('keygen --json: with -o no secret; without -o the secret is in the JSON', async () => {
  const file = t.path('json.key');
  const withFile = JSON.parse(ok(await kw(['keygen', '--json', '--type', 'p256', '-o', file])).out);
  assert.deepEqual(Object.keys(withFile), ['kind', 'type', 'publicKey', 'file', 'created']);
  assert.equal(withFile.kind, 'identity');
  assert.equal(withFile.type, 'p256');
  assert.equal(withFile.file, file);
  assert.ok(readFileSync(file, 'utf8').includes(`# public key: ${withFile.publicKey}\n`));

  const noFile = JSON.parse(ok(await kw(['keygen', '--json', '--signing'])).out);
  assert.equal(noFile.kind, 'signing-key');
  assert.equal(noFile.type, 'ed25519');
  assert.match(noFile.secretKey, /^KWSECRETED255191/);
  assert.equal(noFile.file, null);
  assert.equal(ok(await kw(['keygen', '-y'], { input: noFile.secretKey + '\n' })).out.trim(), noFile.publicKey);
});

void test('keygen -y: several keys in order, --json, -o', async () => {
  const a = t.path('ya.key');
  const b = t.path('yb.key');
  const c = t.path('yc.key');
  const ra = ok(await kw(['keygen', '-o', a])).out.trim();
  const rb = ok(await kw(['keygen', '--signing', '-o', b])).out.trim();
  const rc = ok(await kw(['keygen', '--age', '-o', c])).out.trim();
  const combined = t.path('combined.key');
  writeFileSync(combined, [a, b, c].map((f) => readFileSync(f, 'utf8')).join('\n# another key\n\n'));
  assert.equal(ok(await kw(['keygen', '-y', combined])).out, `${ra}\n${rb}\n${rc}\n`);
  const json = JSON.parse(ok(await kw(['keygen', '-y', '--json', combined])).out);
  assert.deepEqual(json, {
    keys: [
      { kind: 'recipient', type: 'x25519', publicKey: ra },
      { kind: 'verifying-key', type: 'ed25519', publicKey: rb },
      { kind: 'age-recipient', type: 'x25519', publicKey: rc },
    ],
  });
  const pub = t.path('combined.pub');
  assert.equal(ok(await kw(['keygen', '-y', combined, '-o', pub])).out, '');
  assert.equal(readFileSync(pub, 'utf8'), `${ra}\n${rb}\n${rc}\n`);
});

void test('keygen -y rejects public keys and bad keys without echoing secrets', async () => {
  const file = t.path('bad.key');
  ok(await kw(['keygen', '-o', file]));
  const text = readFileSync(file, 'utf8');
  const secret = text.split('\n')[2]!;
  // Flip the last checksum character: the key no longer decodes.
  const broken = secret.slice(0, -1) + (secret.endsWith('Q') ? 'P' : 'Q');
  const badFile = t.path('broken.key');
  writeFileSync(badFile, text.replace(secret, broken));
  const r = fails(await kw(['keygen', '-y', badFile]), 'KW_INVALID_KEY_STRING');
  assert.match(r.stderr, /line 3/);
  assert.ok(!r.stderr.toUpperCase().includes(broken.slice(16, 40)), 'the secret key must not be echoed');
  assert.ok(!r.stderr.toUpperCase().includes(secret.slice(16, 40)));

  const pubFile = t.path('pub.txt');
  writeFileSync(pubFile, text.split('\n')[1]!.replace('# public key: ', '') + '\n');
  assert.match(fails(await kw(['keygen', '-y', pubFile]), 'KW_INVALID_KEY_STRING').stderr, /already a public key/);
  fails(await kw(['keygen', '-y'], { input: '# only a comment\n' }), 'KW_INVALID_KEY_STRING');
});

void test('keygen usage errors exit 2', async () => {
  for (const args of [
    ['--type', 'rsa'],
    ['--pq', '--type', 'p256'],
    ['--signing', '--type', 'p256'],
    ['--signing', '--age'],
    ['-y', '--pq', 'x'],
    ['extra-argument'],
    ['--bogus'],
    ['-o'],
    ['-o', 'a', '-o', 'b'],
  ]) {
    const r = fails(await kw(['keygen', ...args]), 'KW_INVALID_ARGUMENT');
    assert.equal(r.out, '', args.join(' '));
  }
});
