/**
 * Supply chain: the lockfile is committed and every install uses it
 * (`npm ci`); crypto and native dependencies are pinned to exact versions in
 * every package.json; the release SBOM (`npm sbom`, CycloneDX) matches the
 * installation, as `keyward doctor --sbom` sees it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import semver from 'semver';
import { kw, ok, tempDir } from './helpers.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const read = <T>(f: string): T => JSON.parse(readFileSync(`${ROOT}${f}`, 'utf8')) as T;

interface Pkg { name: string; scripts?: Record<string, string>; dependencies?: Record<string, string>; devDependencies?: Record<string, string>; optionalDependencies?: Record<string, string> }
interface Lock { lockfileVersion: number; packages: Record<string, { version?: string; hasInstallScript?: boolean; link?: boolean }> }

const manifests = (): string[] => ['package.json', ...readdirSync(`${ROOT}packages`).filter((d) => existsSync(`${ROOT}packages/${d}/package.json`)).map((d) => `packages/${d}/package.json`)];

void test('the lockfile is committed, and installs use it (npm ci, never npm install)', () => {
  const tracked = execFileSync('git', ['ls-files', 'package-lock.json'], { cwd: ROOT, encoding: 'utf8' }).trim();
  assert.equal(tracked, 'package-lock.json');
  assert.ok(read<Lock>('package-lock.json').lockfileVersion >= 2);
  const installers = ['scripts/test.sh', '.ci/run', 'scripts/install-test-deps.sh', 'scripts/demo.sh'].filter((f) => existsSync(`${ROOT}${f}`));
  for (const f of installers) assert.doesNotMatch(readFileSync(`${ROOT}${f}`, 'utf8'), /\bnpm (install|i|add)\b/, `${f} installs without the lockfile`);
  assert.match(readFileSync(`${ROOT}scripts/test.sh`, 'utf8'), /^npm ci\b/m);
  assert.match(read<Pkg>('package.json').scripts?.sbom ?? '', /npm sbom --sbom-format cyclonedx/);
});

void test('crypto and native dependencies are pinned to exact versions in every package.json', () => {
  const advisories = JSON.parse(readFileSync(fileURLToPath(new URL('../data/advisories.json', import.meta.url)), 'utf8')) as { cryptoPackages: string[] };
  const isCrypto = (n: string) => advisories.cryptoPackages.some((p) => (p.endsWith('/*') ? n.startsWith(p.slice(0, -1)) : n === p));
  const lock = read<Lock>('package-lock.json');
  const native = new Set(Object.entries(lock.packages).filter(([, e]) => e.hasInstallScript === true).map(([k]) => k.slice(k.lastIndexOf('node_modules/') + 13)));
  assert.ok(native.has('better-sqlite3'), 'the lockfile marks native packages (hasInstallScript)');
  const loose: string[] = [];
  let checked = 0;
  for (const m of manifests()) {
    const p = read<Pkg>(m);
    for (const deps of [p.dependencies, p.devDependencies, p.optionalDependencies]) {
      for (const [name, spec] of Object.entries(deps ?? {})) {
        if (!isCrypto(name) && !native.has(name)) continue;
        checked++;
        if (semver.valid(spec) === null) loose.push(`${m}: ${name} "${spec}"`);
      }
    }
  }
  assert.ok(checked >= 10, `only ${checked} crypto/native dependencies found`);
  assert.deepEqual(loose, [], 'crypto and native dependencies must be exact versions (no ^, ~, ranges or tags)');
});

void test('the release SBOM (npm sbom, CycloneDX) matches the installation: doctor --sbom finds no drift', async () => {
  const t = tempDir();
  try {
    const sbom = execFileSync('npm', ['sbom', '--sbom-format', 'cyclonedx', '--sbom-type', 'application'], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    const doc = JSON.parse(sbom) as { bomFormat: string; components: unknown[] };
    assert.equal(doc.bomFormat, 'CycloneDX');
    assert.ok(doc.components.length > 50);
    writeFileSync(t.path('sbom.json'), sbom);
    const r = JSON.parse(ok(await kw(['doctor', '--sbom', t.path('sbom.json'), '--lockfile', `${ROOT}package-lock.json`, '--json'])).out) as { findings: { id: string; title: string }[] };
    const drift = r.findings.filter((f) => f.id === 'sbom-package-added' || f.id === 'sbom-package-changed');
    assert.deepEqual(drift, []);
  } finally {
    t.cleanup();
  }
});
