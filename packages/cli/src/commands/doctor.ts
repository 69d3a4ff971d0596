/**
 * `keyward doctor`: audits a deployment and says what is wrong and what to
 * do. Each finding has a stable id, a severity, why it matters and the
 * exact command that fixes it (the catalogue is `doctor/findings.ts`).
 * Exit 1 when any finding is critical.
 */
import { ADDR_ENV, TOKEN_ENV, TOKEN_FILE_ENV, defineServiceCommand } from '../lib/service.js';

/** The flags of `keyward doctor`. */
export const DOCTOR_FLAGS = {
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
} as const;

export const doctor = defineServiceCommand({
  name: 'doctor',
  summary: 'audit a deployment: runtime, dependencies, configuration, keys, tokens, audit log',
  usage: [
    '--data DIR [--config FILE] [checks…] [--json]',
    '--addr URL [--token-file FILE] [--namespace NS]… [--audit-key FILE] [checks…] [--json]',
    '[--lockfile FILE] [--npm-audit FILE] [--sbom FILE [--install-dir DIR]] [--advisories FILE] [--now TIME] [--json]',
  ],
  flags: DOCTOR_FLAGS,
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
  // The checks load zod, semver and the advisory list: only when doctor runs, so every other command starts faster.
  async run(args, ctx) {
    return (await import('../doctor/run.js')).runDoctor(args, ctx);
  },
});
