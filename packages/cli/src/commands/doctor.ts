/**
 * `keyward doctor`: audits a deployment and says what is wrong and what to
 * do. Each finding has a stable id, a severity, why it matters and the
 * exact command that fixes it (the catalogue is `doctor/findings.ts`).
 * Exit 1 when any finding is critical.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { loadAdvisories } from '../doctor/advisories.js';
import { configFindings, readConfigFile } from '../doctor/config.js';
import { dataDirFindings } from '../doctor/datadir.js';
import { installedLockfile, lockfileFindings, npmAuditFindings, sbomFindings } from '../doctor/deps.js';
import { finding, sortFindings, type Finding } from '../doctor/findings.js';
import { onlineFindings } from '../doctor/online.js';
import { witnessFactsOffline, witnessFindings } from '../doctor/witnesses.js';
import { directoryFactsOffline, directoryFindings } from '../doctor/directory.js';
import { currentRuntime, runtimeFindings } from '../doctor/runtime.js';
import { intFlag } from './server/init.js';
import { EXIT_FAILURE, EXIT_OK, usageError } from '../lib/errors.js';
import { readFirstLine, writeAll } from '../lib/io.js';
import { printJson } from '../lib/output.js';
import { ADDR_ENV, TOKEN_ENV, TOKEN_FILE_ENV, defineServiceCommand } from '../lib/service.js';

const LABEL = { critical: 'CRITICAL', warning: 'WARNING ', info: 'INFO    ' } as const;

export const doctor = defineServiceCommand({
  name: 'doctor',
  summary: 'audit a deployment: runtime, dependencies, configuration, keys, tokens, audit log',
  usage: [
    '--data DIR [--config FILE] [checks…] [--json]',
    '--addr URL [--token-file FILE] [--namespace NS]… [--audit-key FILE] [checks…] [--json]',
    '[--lockfile FILE] [--npm-audit FILE] [--sbom FILE [--install-dir DIR]] [--advisories FILE] [--now TIME] [--json]',
  ],
  flags: {
    data: { type: 'string', value: 'DIR', help: 'check a data directory offline: the store is opened read-only, nothing is changed' },
    addr: { type: 'string', value: 'URL', help: `check a running service (or $${ADDR_ENV} when --token-file is given)` },
    'token-file': { type: 'string', value: 'FILE', help: `admin token for --addr ("-" = stdin); else $${TOKEN_FILE_ENV}, $${TOKEN_ENV}; without one, keys and audit are skipped` },
    insecure: { type: 'boolean', help: 'allow plain http to a non-loopback --addr (reported as a finding)' },
    namespace: { type: 'string', multiple: true, value: 'NS', help: 'with --addr: check the keys of this namespace' },
    'audit-key': { type: 'string', value: 'FILE', help: "with --addr: the audit log's verifier key file (init writes audit-verifier-key.txt); the log is exported and verified" },
    config: { type: 'string', value: 'FILE', help: 'the server JSON config file (as for "keyward server --config"): TLS, dev mode' },
    lockfile: { type: 'string', value: 'FILE', help: "the deployment's package-lock.json (default: the one of this installation)" },
    'npm-audit': { type: 'string', value: 'FILE', help: 'the output of "npm audit --json" for the deployment' },
    sbom: { type: 'string', value: 'FILE', help: 'the release CycloneDX SBOM (npm run sbom): installed packages must match it' },
    'install-dir': { type: 'string', value: 'DIR', help: "where the deployment's node_modules is (default: the lockfile's directory)" },
    advisories: { type: 'string', value: 'FILE', help: 'use this advisory list instead of the bundled one (same format)' },
    now: { type: 'string', value: 'TIME', help: 'evaluate as of this RFC 3339 time instead of the clock (rehearsals, tests)' },
    'max-token-days': { type: 'string', value: 'N', help: 'tokens valid longer than N days from now count as without expiry (default 365)' },
    'checkpoint-max-age': { type: 'string', value: 'S', help: 'audit events uncovered by a signed checkpoint for longer than S seconds are stale (default 3600)' },
    'witness-max-age': { type: 'string', value: 'S', help: 'the newest witnessed checkpoint is stale when newer checkpoints have waited longer than S seconds for k cosignatures (default 3600)' },
    json: { type: 'boolean', help: 'print { ok, now, summary, findings: [{ id, severity, title, why, fix, details }] } as JSON' },
  },
  details: `
Checks, each reported as a finding with a stable id (docs/cli.md lists them):
runtime (Node.js, OpenSSL against the bundled advisory list, and the list's own
age: stale after 90 days); dependencies (every package of the lockfile against
the list's advisories; --npm-audit; installed packages against --sbom);
configuration (--config: listeners without TLS, dev mode); with --data, the
store read-only (tokens valid for years, administrators without a second
factor, keys past their rotation period, versions scheduled for deletion,
audit checkpoint age, the audit log verified against its signed checkpoint
with the offline verifier, file permissions, shares left in the directory;
with --config, its witnesses: configured, at least k answering, checkpoints
cosigned within --witness-max-age; with the directory enabled, its witnesses,
heads cosigned within --witness-max-age, and the nodes' directory keys);
with --addr, the running service (sealed, keyholder, TLS, keyholder errors;
with a token: keys of --namespace, the audit log, witnesses, the directory's
witnesses and cosigned heads, every node's directory keys).

Exit 0 when no finding is critical, 1 otherwise (the report is printed
either way); usage errors exit 2. The token is never a command-line argument.`,
  examples: [
    'keyward doctor --data /var/lib/keyward --config /etc/keyward.json',
    'keyward doctor --addr https://kms.example:8200 --token-file admin.token --namespace billing --audit-key audit-verifier-key.txt --json',
    'npm audit --json > audit.json; keyward doctor --lockfile package-lock.json --npm-audit audit.json --sbom dist/sbom.cdx.json',
  ],
  async run({ flags, positionals }, { io, stdin }) {
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
  },
});

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
