/**
 * Supply-chain checks of a deployment:
 *
 * - every package of its lockfile (`package-lock.json`, lockfile v2/v3)
 *   against the advisory list (semver ranges);
 * - an `npm audit --json` report, when given one;
 * - the installed packages (`node_modules`, walked) against the release's
 *   CycloneDX SBOM (`npm run sbom`): additions and version changes.
 */
import { existsSync, lstatSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { fail } from '../lib/errors.js';
import { advisoriesFor, isCryptoPackage, type AdvisoryList } from './advisories.js';
import { finding, type Finding, type Severity } from './findings.js';

/** `node_modules/a/node_modules/@s/b` → `@s/b`. */
export function packageNameOf(lockKey: string): string | null {
  const i = lockKey.lastIndexOf('node_modules/');
  return i < 0 ? null : lockKey.slice(i + 'node_modules/'.length) || null;
}

const LockfileSchema = z.object({
  lockfileVersion: z.int(),
  packages: z.record(z.string(), z.object({ version: z.string().optional(), link: z.boolean().optional() }).loose()).optional(),
}).loose();

export interface LockedPackage { readonly name: string; readonly version: string; readonly path: string }

/** The packages a lockfile pins (links and the root project excluded). */
export function readLockfile(file: string): LockedPackage[] {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    fail(e instanceof SyntaxError ? 'KW_INVALID_ARGUMENT' : 'KW_IO', `cannot read the lockfile '${file}'${e instanceof SyntaxError ? ': not JSON' : ''}`, e);
  }
  const r = LockfileSchema.safeParse(raw);
  if (!r.success || r.data.packages === undefined || r.data.lockfileVersion < 2) {
    fail('KW_INVALID_ARGUMENT', `'${file}' is not an npm lockfile of version 2 or 3 (run npm install with npm 7 or later to upgrade it)`);
  }
  const out: LockedPackage[] = [];
  for (const [key, entry] of Object.entries(r.data.packages)) {
    const name = packageNameOf(key);
    if (name === null || entry.link === true || entry.version === undefined) continue;
    out.push({ name, version: entry.version, path: key });
  }
  return out;
}

/** The lockfile of the installation this CLI runs from: the nearest package-lock.json above it. */
export function installedLockfile(): string | null {
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); ; dir = path.dirname(dir)) {
    const f = path.join(dir, 'package-lock.json');
    if (existsSync(f)) return f;
    if (path.dirname(dir) === dir) return null;
  }
}

const severityOf = (s: string): Severity => (s === 'critical' || s === 'high' ? 'critical' : s === 'moderate' ? 'warning' : 'info');

/** Advisory findings for the lockfile's packages, and how many crypto packages it pins. */
export function lockfileFindings(list: AdvisoryList, file: string): { findings: Finding[]; packages: number; crypto: number } {
  const pkgs = readLockfile(file);
  const findings: Finding[] = [];
  const seen = new Set<string>();
  for (const p of pkgs) {
    for (const a of advisoriesFor(list, p.name, p.version)) {
      const k = `${a.id} ${p.name}@${p.version}`;
      if (seen.has(k)) continue;
      seen.add(k);
      findings.push(finding('dependency-vulnerable', `${p.name}@${p.version} (${p.path}): ${a.id} (${a.severity}) ${a.summary}`,
        a.fixed ? `npm install ${p.name}@${a.fixed} (or upgrade the package that depends on it), then deploy with npm ci` : `remove or replace ${p.name}`,
        { severity: severityOf(a.severity), details: { package: p.name, version: p.version, path: p.path, advisory: a.id, vulnerable: a.vulnerable, fixed: a.fixed ?? null, lockfile: file } }));
    }
  }
  return { findings, packages: pkgs.length, crypto: pkgs.filter((p) => isCryptoPackage(list, p.name)).length };
}

const ViaSchema = z.union([z.string(), z.object({ source: z.union([z.number(), z.string()]).optional(), title: z.string().optional(), url: z.string().optional(), severity: z.string().optional() }).loose()]);
const NpmAuditSchema = z.object({
  vulnerabilities: z.record(z.string(), z.object({
    name: z.string(),
    severity: z.string(),
    range: z.string().optional(),
    via: z.array(ViaSchema).optional(),
    fixAvailable: z.union([z.boolean(), z.object({ name: z.string(), version: z.string() }).loose()]).optional(),
  }).loose()),
}).loose();

/** Findings from an `npm audit --json` report (npm 7 and later). */
export function npmAuditFindings(file: string): Finding[] {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    fail(e instanceof SyntaxError ? 'KW_INVALID_ARGUMENT' : 'KW_IO', `cannot read the npm audit report '${file}'${e instanceof SyntaxError ? ': not JSON' : ''}`, e);
  }
  const r = NpmAuditSchema.safeParse(raw);
  if (!r.success) fail('KW_INVALID_ARGUMENT', `'${file}' is not the output of "npm audit --json" (npm 7 or later)`);
  return Object.values(r.data.vulnerabilities).map((v) => {
    const advisories = (v.via ?? []).flatMap((x) => (typeof x === 'string' ? [] : [x.url ?? x.title ?? String(x.source ?? '')]));
    const fix = v.fixAvailable === true ? 'npm audit fix, then deploy with npm ci'
      : typeof v.fixAvailable === 'object' ? `npm install ${v.fixAvailable.name}@${v.fixAvailable.version}, then deploy with npm ci`
        : null;
    return finding('npm-audit-vulnerability', `${v.name}${v.range ? ` ${v.range}` : ''}: ${v.severity}${advisories.length ? ` (${advisories.join(', ')})` : ''}`, fix,
      { severity: severityOf(v.severity), details: { package: v.name, severity: v.severity, advisories } });
  });
}

const SbomSchema = z.object({
  bomFormat: z.literal('CycloneDX'),
  components: z.array(z.object({ name: z.string(), version: z.string().optional(), group: z.string().optional(), purl: z.string().optional() }).loose()).default([]),
}).loose();

/** `name@version` of every component of a CycloneDX JSON SBOM. */
export function readSbom(file: string): Map<string, Set<string>> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    fail(e instanceof SyntaxError ? 'KW_INVALID_ARGUMENT' : 'KW_IO', `cannot read the SBOM '${file}'${e instanceof SyntaxError ? ': not JSON' : ''}`, e);
  }
  const r = SbomSchema.safeParse(raw);
  if (!r.success) fail('KW_INVALID_ARGUMENT', `'${file}' is not a CycloneDX JSON SBOM (make one with: npm run sbom)`);
  const out = new Map<string, Set<string>>();
  for (const c of r.data.components) {
    // npm names workspace components by folder ("cli"); their purl carries the package name.
    const fromPurl = c.purl?.startsWith('pkg:npm/') ? decodeURIComponent(c.purl.slice('pkg:npm/'.length).replace(/@[^@/]*$/, '')) : null;
    const name = fromPurl ?? (c.group ? `${c.group}/${c.name}` : c.name);
    if (!out.has(name)) out.set(name, new Set());
    if (c.version !== undefined) out.get(name)!.add(c.version);
  }
  return out;
}

/** Every package installed under `root/node_modules` (nested ones too); workspace links count under their own name. */
export function installedPackages(root: string): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  const visit = (nm: string, depth: number): void => {
    if (depth > 32 || !existsSync(nm)) return;
    for (const entry of readdirSync(nm)) {
      if (entry.startsWith('.')) continue;
      const dirs = entry.startsWith('@') ? readdirSync(path.join(nm, entry)).map((s) => path.join(entry, s)) : [entry];
      for (const rel of dirs) {
        const dir = path.join(nm, rel);
        const link = lstatSync(dir).isSymbolicLink(); // a workspace package (npm link)
        const pj = path.join(dir, 'package.json');
        if (!existsSync(pj)) continue;
        const v = (JSON.parse(readFileSync(pj, 'utf8')) as { version?: unknown }).version;
        if (link) {
          if (typeof v === 'string') (out.get(rel) ?? out.set(rel, new Set()).get(rel)!).add(v);
          continue; // its own dependencies are hoisted into the root node_modules, walked already
        }
        if (typeof v === 'string') {
          if (!out.has(rel)) out.set(rel, new Set());
          out.get(rel)!.add(v);
        }
        visit(path.join(dir, 'node_modules'), depth + 1);
      }
    }
  };
  visit(path.join(root, 'node_modules'), 0);
  return out;
}

/** Installed packages compared with the SBOM. */
export function sbomFindings(sbomFile: string, installRoot: string): Finding[] {
  const sbom = readSbom(sbomFile);
  const installed = installedPackages(installRoot);
  const findings: Finding[] = [];
  const regen = `if the change is intended: npm run sbom (and ship the new SBOM); otherwise reinstall what was released: npm ci`;
  for (const [name, versions] of installed) {
    const expected = sbom.get(name);
    for (const v of versions) {
      if (expected === undefined) {
        findings.push(finding('sbom-package-added', `${name}@${v} is installed but not in the SBOM`, regen, { details: { package: name, version: v, sbom: sbomFile } }));
      } else if (!expected.has(v)) {
        findings.push(finding('sbom-package-changed', `${name}@${v} is installed; the SBOM lists ${[...expected].join(', ')}`, regen, { details: { package: name, version: v, expected: [...expected], sbom: sbomFile } }));
      }
    }
  }
  // Packages of the SBOM that are not installed: often optional or platform-specific; one summary.
  const missing = [...sbom.keys()].filter((name) => !installed.has(name)).sort();
  if (missing.length > 0) {
    findings.push(finding('sbom-package-missing', `${missing.length} package(s) of the SBOM are not installed: ${missing.slice(0, 8).join(', ')}${missing.length > 8 ? ', …' : ''}`,
      'nothing, if they are optional or for another platform; otherwise: npm ci', { details: { packages: missing, sbom: sbomFile } }));
  }
  return findings;
}
