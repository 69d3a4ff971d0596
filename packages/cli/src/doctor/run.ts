/**
 * What `keyward doctor` does (commands/doctor.ts declares it): runs every
 * check that applies, prints the findings, exits 1 when one is critical.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { loadAdvisories } from './advisories.js';
import { configFindings, readConfigFile } from './config.js';
import { dataDirFindings } from './datadir.js';
import { installedLockfile, lockfileFindings, npmAuditFindings, sbomFindings } from './deps.js';
import { finding, sortFindings, type Finding } from './findings.js';
import { onlineFindings } from './online.js';
import { witnessFactsOffline, witnessFindings } from './witnesses.js';
import { directoryFactsOffline, directoryFindings } from './directory.js';
import { currentRuntime, runtimeFindings } from './runtime.js';
import { intFlag } from '../commands/server/init.js';
import { EXIT_FAILURE, EXIT_OK, usageError } from '../lib/errors.js';
import { readFirstLine, writeAll } from '../lib/io.js';
import { printJson } from '../lib/output.js';
import { ADDR_ENV, TOKEN_ENV, TOKEN_FILE_ENV } from '../lib/service.js';
import type { ParsedArgs } from '../lib/args.js';
import type { RunContext } from '../lib/command.js';
import type { DOCTOR_FLAGS } from '../commands/doctor.js';

const LABEL = { critical: 'CRITICAL', warning: 'WARNING ', info: 'INFO    ' } as const;

export async function runDoctor({ flags, positionals }: ParsedArgs<typeof DOCTOR_FLAGS>, { io, stdin }: RunContext): Promise<number> {
  if (positionals.length > 0) usageError('doctor takes no positional arguments');
  if (flags.data !== undefined && flags.addr !== undefined) usageError('give --data DIR (offline) or --addr URL (a running service), not both');
  const now = flags.now === undefined ? new Date() : new Date(flags.now);
  if (Number.isNaN(now.getTime()) || (flags.now !== undefined && !/^\d{4}-\d{2}-\d{2}T/.test(flags.now))) usageError('--now must be an RFC 3339 time, e.g. 2027-01-31T12:00:00Z');
  const maxTokenDays = intFlag(flags['max-token-days'], '--max-token-days', 365);
  const checkpointMaxAgeSeconds = intFlag(flags['checkpoint-max-age'], '--checkpoint-max-age', 3600);
  const witnessMaxAgeSeconds = intFlag(flags['witness-max-age'], '--witness-max-age', 3600);
  if (flags['install-dir'] !== undefined && flags.sbom === undefined) usageError('--install-dir goes with --sbom');

  const list = loadAdvisories(flags.advisories);
  const findings: Finding[] = [...runtimeFindings(list, currentRuntime(), now)];

  const lockfile = flags.lockfile ?? installedLockfile();
  let deps: { packages: number; crypto: number } | null = null;
  if (lockfile === null || !existsSync(lockfile)) {
    findings.push(finding('lockfile-missing', lockfile === null ? 'no package-lock.json found above this installation' : `the lockfile ${lockfile} does not exist`,
      'keyward doctor --lockfile /path/to/deployment/package-lock.json (deploy with npm ci so the lockfile is what is installed)'));
  } else {
    const r = lockfileFindings(list, lockfile);
    findings.push(...r.findings);
    deps = { packages: r.packages, crypto: r.crypto };
  }
  if (flags['npm-audit'] !== undefined) findings.push(...npmAuditFindings(flags['npm-audit']));
  if (flags.sbom !== undefined) {
    const root = flags['install-dir'] ?? (lockfile !== null ? path.dirname(lockfile) : undefined);
    if (root === undefined) usageError('--sbom needs --install-dir DIR (no lockfile to locate the installation)');
    findings.push(...sbomFindings(flags.sbom, root));
  }
  if (flags.config !== undefined) findings.push(...configFindings(readConfigFile(flags.config), flags.config));

  let target: Record<string, unknown> = { lockfile };
  if (flags.data !== undefined) {
    const dir = path.resolve(flags.data);
    if (!existsSync(dir)) usageError(`--data ${flags.data}: no such directory`);
    findings.push(...await dataDirFindings(dir, { now, maxTokenDays, checkpointMaxAgeSeconds }));
    target = { data: dir, ...target };
  } else if (flags.addr !== undefined || flags['token-file'] !== undefined) {
    const addrs = (flags.addr ?? io.env[ADDR_ENV] ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
    if (addrs.length === 0) usageError(`--token-file needs --addr URL (or $${ADDR_ENV})`);
    const token = await optionalToken(flags['token-file'], io, stdin);
    const auditKey = flags['audit-key'] === undefined ? null
      : readFileSync(flags['audit-key'], 'utf8').split('\n').map((l) => l.trim()).find((l) => l !== '' && !l.startsWith('#')) ?? null;
    findings.push(...await onlineFindings({ service: { addresses: addrs, token, insecure: flags.insecure }, namespaces: flags.namespace, auditKey, now, checkpointMaxAgeSeconds, witnessMaxAgeSeconds }));
    target = { addr: addrs.join(','), ...target };
  } else if (flags.namespace.length > 0 || flags['audit-key'] !== undefined) {
    usageError('--namespace and --audit-key go with --addr URL');
  }
  if (flags.data !== undefined) {
    // Witnesses (docs/witness.md): the config's list, probed; the store's witnessed checkpoint.
    const cfg = flags.config !== undefined ? readConfigFile(flags.config) : null;
    findings.push(...await witnessFindings(await witnessFactsOffline(path.resolve(flags.data), cfg, flags.config), { now, maxAgeSeconds: witnessMaxAgeSeconds }));
    // The directory (docs/witness.md §The directory): its witnesses and cosigned heads, the nodes' directory keys.
    findings.push(...directoryFindings(await directoryFactsOffline(path.resolve(flags.data), cfg, flags.config), { now, maxAgeSeconds: witnessMaxAgeSeconds }));
  }

  const sorted = sortFindings(findings);
  const summary = { critical: 0, warning: 0, info: 0 };
  for (const f of sorted) summary[f.severity]++;
  const ok = summary.critical === 0;
  if (flags.json) {
    await printJson(io.stdout, { ok, now: now.toISOString(), target: { ...target, config: flags.config ?? null }, advisories: { updated: list.updated, source: flags.advisories ?? 'bundled' }, dependencies: deps, summary, findings: sorted });
  } else {
    const what = (target.data ?? target.addr ?? 'this installation') as string;
    const lines = [`keyward doctor: ${what} — ${summary.critical} critical, ${summary.warning} warning(s), ${summary.info} info (advisories of ${list.updated}${deps ? `; ${deps.packages} locked packages, ${deps.crypto} crypto` : ''})`];
    for (const f of sorted) {
      lines.push('', `${LABEL[f.severity]}  ${f.id}: ${f.title}`, `          why: ${f.why}`, `          fix: ${f.fix ?? 'nothing can be done yet'}`);
    }
    await writeAll(io.stdout, lines.join('\n') + '\n');
  }
  return ok ? EXIT_OK : EXIT_FAILURE;
}

/** The admin token if one is given (--token-file, $KEYWARD_TOKEN_FILE, $KEYWARD_TOKEN), else null: never argv, never an implicit stdin read. */
async function optionalToken(flag: string | undefined, io: Parameters<typeof readFirstLine>[1], stdin: { claim(what: string): void }): Promise<string | null> {
  const file = flag ?? (io.env[TOKEN_FILE_ENV] || undefined);
  let token: string | null = null;
  if (file !== undefined) {
    if (file === '-') stdin.claim('the token');
    token = (await readFirstLine(file, io))?.trim() ?? null;
  } else if (io.env[TOKEN_ENV]) {
    token = io.env[TOKEN_ENV].trim();
  }
  if (token === '') token = null;
  if (token !== null && !/^[\x21-\x7e]+$/.test(token)) usageError('the token is not printable ASCII');
  return token;
}
