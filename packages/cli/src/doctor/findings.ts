/**
 * What `keyward doctor` reports: findings, each with a stable id (scripts and
 * tests match on it, never on the text), a severity, why it matters and the
 * exact command that fixes it. Every id is declared once in {@link CHECKS};
 * docs/cli.md lists them and a test checks that it does.
 */

export type Severity = 'critical' | 'warning' | 'info';

export const SEVERITIES: readonly Severity[] = ['critical', 'warning', 'info'];

/** One finding of a run. */
export interface Finding {
  /** Stable id, e.g. `key-rotation-overdue`. */
  readonly id: FindingId;
  readonly severity: Severity;
  /** One line: what is wrong, naming the object (key, token id, package@version, file). */
  readonly title: string;
  /** Why it matters. */
  readonly why: string;
  /** The exact command (or the edit) that fixes it; `null` when nothing can be done yet. */
  readonly fix: string | null;
  /** Extra facts (versions, dates, ids), machine-readable. */
  readonly details?: Readonly<Record<string, unknown>>;
}

interface CheckDef {
  readonly severity: Severity;
  readonly why: string;
}

/** Every finding doctor can report, with its default severity and why it matters. */
export const CHECKS = {
  // --- runtime -------------------------------------------------------------------------
  'node-below-minimum': { severity: 'critical', why: 'This Node.js release has published security fixes missing; Node.js carries the TLS stack, the HTTP parser and node:crypto of the key service.' },
  'node-eol': { severity: 'warning', why: 'This Node.js release line no longer receives security fixes.' },
  'openssl-below-minimum': { severity: 'critical', why: "Node.js's OpenSSL performs TLS and part of node:crypto; this version misses published security fixes." },
  'openssl-eol': { severity: 'warning', why: 'This OpenSSL release line no longer receives public security fixes.' },
  'advisories-stale': { severity: 'warning', why: 'The bundled advisory list is old: vulnerabilities published since are not checked. A clean report from a stale list proves little.' },
  // --- supply chain ----------------------------------------------------------------------
  'lockfile-missing': { severity: 'warning', why: 'Without the deployment lockfile the installed dependency versions cannot be checked against advisories.' },
  'dependency-vulnerable': { severity: 'critical', why: 'A crypto dependency of the deployment has a published vulnerability.' },
  'npm-audit-vulnerability': { severity: 'warning', why: 'npm audit reports a vulnerable dependency in the deployment.' },
  'sbom-package-added': { severity: 'warning', why: 'A package is installed that the release SBOM does not list: the deployment is not what was built and reviewed.' },
  'sbom-package-changed': { severity: 'critical', why: 'An installed package has another version than the release SBOM lists: the deployment is not what was built and reviewed.' },
  'sbom-package-missing': { severity: 'info', why: 'A package of the release SBOM is not installed (optional or platform-specific packages are often absent).' },
  // --- configuration -----------------------------------------------------------------------
  'listener-without-tls': { severity: 'critical', why: 'The API listens beyond this machine over plain HTTP: bearer tokens and unseal traffic travel in the clear.' },
  'dev-mode': { severity: 'critical', why: 'Dev mode keeps its unseal shares in memory, unseals itself and prints a root token: nothing it holds is protected.' },
  'data-dir-permissions': { severity: 'warning', why: 'The data directory holds the store and the keyholder state; other local users must not read or replace them.' },
  'shares-in-data-dir': { severity: 'warning', why: 'Unseal shares left beside the store defeat the split: whoever reads the data directory can unseal.' },
  'initial-token-file': { severity: 'warning', why: 'The initial admin token is still on disk beside the store.' },
  // --- identities --------------------------------------------------------------------------
  'token-without-expiry': { severity: 'warning', why: 'A bearer token that lives for years is a standing credential: once copied, it works until someone notices.' },
  'mfa-not-enforced': { severity: 'warning', why: 'Without an enforced second factor, a stolen admin token alone can destroy key versions and change policies and admin tokens.' },
  'admin-without-mfa': { severity: 'warning', why: 'An administrator without a second factor either cannot do sensitive operations (MFA enforced) or is the weak link a stolen token exploits (not enforced).' },
  'governance-not-anchored': { severity: 'warning', why: "The keyholder enforces only policies and roles it signed, chained from a genesis. Without a genesis signed at init, the first governance change has it sign one over whatever the database holds at that moment (trust on first use): a policy row or role written into the database before then, by anyone who could write to it, becomes signed policy the keyholder enforces." },
  'governance-genesis-on-first-use': { severity: 'info', why: 'The signed governance began with a genesis taken from the database (trust on first use), not the empty state signed at init: whatever it held then is signed policy unless a later signed change replaced it.' },
  'quorum-disabled-for-destroy': { severity: 'warning', why: 'Destroying a key version makes everything sealed under it unreadable for good; without a quorum rule one administrator (or one stolen token and second factor) can do it alone.' },
  // --- keys ------------------------------------------------------------------------------
  'key-rotation-overdue': { severity: 'warning', why: 'The key is used beyond its rotation period: more data depends on one version and a compromise exposes more.' },
  'version-scheduled-for-deletion': { severity: 'info', why: 'Data sealed under this version becomes unreadable for good once it is destroyed.' },
  // --- audit -----------------------------------------------------------------------------
  'audit-log-not-verifying': { severity: 'critical', why: 'The stored audit log does not verify against its signed checkpoint: events were changed, removed or inserted, or the store is damaged.' },
  'audit-checkpoint-stale': { severity: 'warning', why: 'Audit events are not yet covered by a signed checkpoint: until they are, they can be changed without detection.' },
  'audit-not-checked': { severity: 'info', why: 'The audit log was not verified in this run.' },
  // --- service ---------------------------------------------------------------------------
  'store-unreadable': { severity: 'critical', why: 'The store cannot be opened or read: the service cannot run on it.' },
  'store-schema-outdated': { severity: 'info', why: 'The store was written by an older Keyward; the server migrates it at its next start.' },
  'node-sealed': { severity: 'critical', why: 'The service is sealed: every key operation fails until custodians unseal it.' },
  'keyholder-down': { severity: 'critical', why: 'The keyholder process does not answer: no key operation can run.' },
  'keyholder-errors': { severity: 'warning', why: 'The keyholder has failed calls since the server started.' },
  'service-unreachable': { severity: 'critical', why: 'The key service does not answer at this address.' },
  'hsm-not-configured': { severity: 'info', why: 'Keys are held by the software keystore (the keyholder process), not an HSM.' },
  'hsm-unreachable': { severity: 'critical', why: 'An HSM-wrapped keyholder cannot unseal without its HSM: no key operation runs until it is back.' },
  'witnesses-not-configured': { severity: 'warning', why: "No witness cosigns the audit log's checkpoints: a compromised service can roll its log back or show different logs to different auditors, and only a checkpoint saved outside the service would reveal it." },
  'witnesses-unreachable': { severity: 'critical', why: 'Fewer witnesses answer than must cosign: new checkpoints get no k-of-n cosignatures, so verifiers that require them refuse every new export.' },
  'witness-cosignatures-stale': { severity: 'warning', why: 'New audit checkpoints are not being cosigned: events since the last witnessed checkpoint could still be rolled back or forked without a witness noticing.' },
  // --- directory (key transparency) ---------------------------------------------------------
  'directory-witnesses-not-configured': { severity: 'warning', why: "No witness cosigns the directory's heads: a compromised or coerced key service can show different senders different keys for one user (a split view), and clients that require witnesses refuse every head." },
  'directory-witnesses-too-few': { severity: 'warning', why: 'With k = 1 a single witness (compromised, or run by the key service\'s own operators) is enough to cosign a split view of the directory.' },
  'directory-witnesses-failing': { severity: 'critical', why: 'Fewer witnesses cosign directory heads than must: clients that require k cosignatures refuse every newer head, so new devices and revocations stay invisible to them.' },
  'directory-head-not-cosigned': { severity: 'critical', why: 'Directory heads newer than the last cosigned one are not witnessed: clients that require k cosignatures refuse them (new keys and revocations are not seen), and clients without witnesses could be shown a split view nobody checks.' },
  'directory-keys-differ': { severity: 'critical', why: 'Every node must hold the same directory signing and VRF keys: a node with other keys signs heads and VRF outputs that clients pinned to the deployment\'s configuration refuse, and two sets of keys for one log is what a split view looks like.' },
} as const satisfies Record<string, CheckDef>;

export type FindingId = keyof typeof CHECKS;

/** A finding with the catalogue's severity and why, unless overridden. */
export function finding(id: FindingId, title: string, fix: string | null, extra: { severity?: Severity; why?: string; details?: Record<string, unknown> } = {}): Finding {
  const def: CheckDef = CHECKS[id];
  return { id, severity: extra.severity ?? def.severity, title, why: extra.why ?? def.why, fix, ...(extra.details ? { details: extra.details } : {}) };
}

/** Findings sorted critical → warning → info, then by id (stable output). */
export function sortFindings(fs: readonly Finding[]): Finding[] {
  return [...fs].sort((a, b) => SEVERITIES.indexOf(a.severity) - SEVERITIES.indexOf(b.severity) || a.id.localeCompare(b.id) || a.title.localeCompare(b.title));
}
