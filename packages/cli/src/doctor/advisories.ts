/**
 * The bundled, dated advisory list (`packages/cli/data/advisories.json`):
 * minimum Node.js and OpenSSL versions per release line with their end of
 * life, the names of crypto packages, and advisories as npm semver ranges.
 * Loaded and checked with a schema; `--advisories FILE` replaces it with a
 * newer list of the same shape.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import semver from 'semver';
import { z } from 'zod';
import { fail } from '../lib/errors.js';
import { cliPackageDir } from '../lib/package-dir.js';

/** The advisory list shipped in the package's data/. */
export const bundledAdvisories = (): string => join(cliPackageDir(), 'data', 'advisories.json');

const Day = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'must be YYYY-MM-DD').refine((s) => !Number.isNaN(Date.parse(`${s}T00:00:00Z`)), 'must be a real date');
const Version = z.string().refine((s) => semver.valid(s) !== null, 'must be a semver version');
const Range = z.string().refine((s) => semver.validRange(s) !== null, 'must be a semver range');
const Severity = z.enum(['critical', 'high', 'moderate', 'low']);

export const AdvisoryListSchema = z.object({
  updated: Day,
  maxAgeDays: z.int().min(1).max(3650),
  runtime: z.object({
    node: z.object({
      minimum: Version,
      lines: z.array(z.object({ major: z.int().min(0), minimum: Version, eol: Day, note: z.string().optional() })),
    }),
    openssl: z.object({
      minimum: Version,
      lines: z.array(z.object({ line: z.string().regex(/^\d+\.\d+$/), minimum: Version, eol: Day, note: z.string().optional() })),
    }),
  }),
  cryptoPackages: z.array(z.string().min(1)),
  advisories: z.array(z.object({
    id: z.string().min(1),
    package: z.string().min(1),
    vulnerable: Range,
    severity: Severity,
    fixed: Version.optional(),
    summary: z.string().min(1),
  })),
});

export type AdvisoryList = z.infer<typeof AdvisoryListSchema>;
export type Advisory = AdvisoryList['advisories'][number];

/** Loads and validates an advisory list (the bundled one by default). KW_INVALID_ARGUMENT when it is not a valid list. */
export function loadAdvisories(file: string = bundledAdvisories()): AdvisoryList {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    fail(e instanceof SyntaxError ? 'KW_INVALID_ARGUMENT' : 'KW_IO', `cannot read the advisory list '${file}'${e instanceof SyntaxError ? ': not JSON' : ''}`, e);
  }
  const r = AdvisoryListSchema.safeParse(raw);
  if (!r.success) fail('KW_INVALID_ARGUMENT', `the advisory list '${file}' is invalid: ${r.error.issues.slice(0, 3).map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return r.data;
}

/** True when `name` is a crypto package by the list's patterns (`@noble/*` or an exact name). */
export function isCryptoPackage(list: AdvisoryList, name: string): boolean {
  return list.cryptoPackages.some((p) => (p.endsWith('/*') ? name.startsWith(p.slice(0, -1)) : name === p));
}

/** The advisories that affect `name@version` (a version that is not semver matches nothing). */
export function advisoriesFor(list: AdvisoryList, name: string, version: string): Advisory[] {
  if (semver.valid(version) === null) return [];
  return list.advisories.filter((a) => a.package === name && semver.satisfies(version, a.vulnerable, { includePrerelease: true }));
}
