/** Global behaviour: help, version, usage errors and exit codes, docs/cli.md coverage. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { COMMANDS } from '../src/commands/index.js';
import type { Entry } from '../src/lib/command.js';
import { parseArgs } from '../src/lib/args.js';
import { SERVICE_NAMES } from '../src/commands/server/kms.js';
import { plainSealOrOpen } from '../src/main.js';
import { fails, kw, ok, tempDir } from './helpers.js';
import { runCliHere } from './here.js';

const COMMAND_NAMES = ['keygen', 'seal', 'open', 'inspect'];

void test('keyward --help / -h / help list every command; no arguments is a usage error', async () => {
  for (const args of [['--help'], ['-h'], ['help']]) {
    const r = ok(await kw(args));
    for (const name of COMMAND_NAMES) assert.match(r.out, new RegExp(`^  ${name} `, 'm'));
  }
  const none = await kw([]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /Commands:/);
  assert.equal(none.out, '');
});

void test('keyward --version prints the package version', async () => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  assert.equal(ok(await kw(['--version'])).out, `keyward ${pkg.version}\n`);
});

for (const name of COMMAND_NAMES) {
  void test(`keyward ${name} --help / -h / help ${name}`, async () => {
    for (const args of [[name, '--help'], [name, '-h'], ['help', name]]) {
      const r = ok(await kw(args));
      assert.match(r.out, new RegExp(`^keyward ${name} — `));
      assert.match(r.out, /^Usage:$/m);
      assert.match(r.out, /^Options:$/m);
      assert.match(r.out, /--help/);
    }
  });

  void test(`keyward ${name}: unknown flag → exit 2, error[KW_INVALID_ARGUMENT]`, async () => {
    const r = fails(await kw([name, '--no-such-flag']), 'KW_INVALID_ARGUMENT');
    assert.match(r.stderr, /unknown option "--no-such-flag"/);
    assert.equal(r.out, '');
    fails(await kw([name, '-Z']), 'KW_INVALID_ARGUMENT');
  });
}

void test('every command and group, at every depth, answers --help (in this process: the spawned binary is covered above)', async () => {
  let commands = 0;
  const walk = async (entries: readonly Entry[], path: readonly string[]): Promise<void> => {
    for (const e of entries) {
      const p = [...path, e.name];
      const r = await runCliHere([...p, '--help'], {});
      assert.equal(r.code, 0, `${p.join(' ')}: ${r.err}`);
      assert.equal(r.err, '', p.join(' '));
      if (e.kind === 'group') {
        assert.match(r.out, new RegExp(`^keyward ${p.join(' ')}\\n`), p.join(' '));
        for (const sub of e.entries) assert.match(r.out, new RegExp(`^  ${sub.name} +\\S`, 'm'), `${p.join(' ')} lists ${sub.name}`);
        await walk(e.entries, p);
      } else {
        commands++;
        assert.match(r.out, new RegExp(`^keyward ${p.join(' ')} — \\S`), p.join(' '));
        assert.match(r.out, /^Usage:$/m, p.join(' '));
        assert.match(r.out, /^ {2}-h, --help +\S/m, p.join(' '));
        for (const [flag, spec] of Object.entries(e.flags)) assert.ok(r.out.includes(`--${flag}`) && (!spec.short || r.out.includes(`-${spec.short}, --${flag}`)), `${p.join(' ')} --${flag}`);
      }
    }
  };
  await walk(COMMANDS, []);
  assert.ok(commands > 60, `${commands} commands`);
  assert.match((await runCliHere(['seal', '--help'], {})).out, /--kms NS\/NAME/, 'seal --help is the kms-aware wrapper');
});

void test('usage errors: unknown command, missing value, value for a boolean, repeated single flags, extra positionals', async () => {
  assert.match(fails(await kw(['frobnicate']), 'KW_INVALID_ARGUMENT').stderr, /unknown command "frobnicate"/);
  assert.match(fails(await kw(['--frob']), 'KW_INVALID_ARGUMENT').stderr, /unknown option/);
  assert.match(fails(await kw(['seal', '-r']), 'KW_INVALID_ARGUMENT').stderr, /needs a value/);
  assert.match(fails(await kw(['seal', '--armor=yes', '-r', 'x']), 'KW_INVALID_ARGUMENT').stderr, /takes no value/);
  assert.match(fails(await kw(['open', '-o', 'a', '--output', 'b']), 'KW_INVALID_ARGUMENT').stderr, /more than once/);
  fails(await kw(['seal', '-r', 'x', 'in1', 'in2']), 'KW_INVALID_ARGUMENT');
  fails(await kw(['open', 'in1', 'in2']), 'KW_INVALID_ARGUMENT');
  assert.match(fails(await kw(['seal'], { input: 'x' }), 'KW_INVALID_ARGUMENT').stderr, /needs recipients/);
  assert.match(fails(await kw(['seal', '--armour']), 'KW_INVALID_ARGUMENT').stderr, /did you mean "--armor"/);
});

void test('flag syntax: --name=value, -ovalue, clusters, and "--" ends the flags', async () => {
  const key = await kw(['keygen', '--json']);
  const { publicKey, secretKey } = JSON.parse(key.out) as { publicKey: string; secretKey: string };
  const env = ok(await kw(['seal', `--recipient=${publicKey}`, '-a'], { input: 'flags' })).out;
  assert.match(env, /^-----BEGIN KEYWARD ENVELOPE-----/);
  const t = tempDir();
  try {
    const idFile = t.path('id.key');
    writeFileSync(idFile, secretKey + '\n', { mode: 0o600 });
    assert.equal(ok(await kw(['open', `-i${idFile}`], { input: env })).out, 'flags');
    assert.equal(ok(await kw(['open', '-i', idFile, '--', '-'], { input: env })).out, 'flags');
    // -pa = --passphrase --armor
    const p = ok(await kw(['seal', '-pa', '--work-factor=10'], { input: 'cluster', env: { KEYWARD_PASSPHRASE: 'c' } })).out;
    assert.match(p, /^-----BEGIN KEYWARD ENVELOPE-----/);
    assert.equal(ok(await kw(['open'], { input: p, env: { KEYWARD_PASSPHRASE: 'c' } })).out, 'cluster');
  } finally {
    t.cleanup();
  }
});

void test('docs/cli.md documents every command and every flag', () => {
  const doc = readFileSync(new URL('../../../docs/cli.md', import.meta.url), 'utf8');
  for (const c of COMMANDS) {
    assert.ok(doc.includes(`keyward ${c.name}`), `docs/cli.md: command ${c.name}`);
    if (c.kind !== 'command') continue;
    for (const [flag, spec] of Object.entries(c.flags)) {
      assert.ok(doc.includes(`--${flag}`), `docs/cli.md: ${c.name} --${flag}`);
      if (spec.short) assert.ok(doc.includes(`-${spec.short}`), `docs/cli.md: ${c.name} -${spec.short}`);
    }
  }
  for (const code of ['KW_INVALID_ARGUMENT', 'KW_SCRYPT_NOT_ALONE', 'KW_CONTEXT_MISMATCH', 'KW_SIGNATURE_MISSING', 'KW_SIGNER_UNKNOWN', 'KW_IO']) {
    assert.ok(doc.includes(code), `docs/cli.md mentions ${code}`);
  }
  assert.ok(doc.includes('KEYWARD_PASSPHRASE'));
});

void test('the seal/open fast path defers to the kms wrappers on every key-service flag, and on help', async () => {
  for (const cmd of ['seal', 'open']) {
    assert.equal((await plainSealOrOpen([cmd, '-r', 'x', 'in']))?.name, cmd);
    assert.equal(await plainSealOrOpen([cmd, '--help']), null);
    assert.equal(await plainSealOrOpen([cmd, '-h']), null);
    for (const name of SERVICE_NAMES) {
      assert.equal(await plainSealOrOpen([cmd, `--${name}`, 'v', 'in']), null, `--${name}`);
      assert.equal(await plainSealOrOpen([cmd, `--${name}=v`, 'in']), null, `--${name}=v`);
    }
    assert.equal((await plainSealOrOpen([cmd, '--', '--kms']))?.name, cmd, 'after --, a file name');
  }
  assert.equal(await plainSealOrOpen(['keygen']), null);
});

void test('an operand pattern keeps id-shaped words that begin with "-" as operands, and only those', () => {
  const spec = { out: { type: 'string', short: 'o', help: 'o' }, yes: { type: 'boolean', short: 'y', help: 'y' } } as const;
  const id = `-y${'A'.repeat(41)}`;
  const r = parseArgs([id, '-o', '-', '-y'], spec, 't', /^[A-Za-z0-9_-]{43}$/);
  assert.deepEqual(r.positionals, [id]);
  assert.equal(r.flags.out, '-');
  assert.equal(r.flags.yes, true);
  // Without the pattern the same word is an option cluster (-y then an unknown -A).
  assert.throws(() => parseArgs([id], spec, 't'), /unknown option "-A"/);
  // A shorter dashed word is still an option.
  assert.throws(() => parseArgs(['-yA'], spec, 't', /^[A-Za-z0-9_-]{43}$/), /unknown option "-A"/);
});

void test('start-up cost: what every command loads (main → the command table) imports neither zod nor semver (doctor loads them when it runs)', () => {
  const seen = new Set<string>();
  const bare = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    // Static imports only (`import … from '…'`, `import '…'`, `export … from '…'`), not `import('…')`.
    for (const m of readFileSync(file, 'utf8').matchAll(/^(?:import|export)\s(?:[^;]*?\sfrom\s+)?'([^']+)'/gms)) {
      const spec = m[1]!;
      if (/^import\s+type\s/.test(m[0])) continue;
      if (spec.startsWith('.')) visit(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
      else bare.add(spec);
    }
  };
  const src = fileURLToPath(new URL('../src/', import.meta.url));
  visit(`${src}main.ts`);
  visit(`${src}commands/index.ts`);
  assert.ok(seen.has(`${src}commands/doctor.ts`) && seen.size > 40, 'the walk follows the command table');
  for (const heavy of ['zod', 'semver']) assert.ok(![...bare].some((b) => b === heavy || b.startsWith(`${heavy}/`)), `${heavy} is imported statically by the command table`);
  assert.ok(![...seen].some((f) => f.startsWith(`${src}doctor/`)), 'a doctor check module is imported statically');
});
