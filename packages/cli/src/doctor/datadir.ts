/**
 * Offline checks of a data directory (`keyward doctor --data DIR`): the
 * files' permissions, shares or tokens left beside the store, and the store
 * itself opened read-only (tokens, administrators, keys, key versions, the
 * audit log verified with the offline verifier against its signed
 * checkpoint). Nothing in DIR is changed.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import * as server from '../lib/server-modules.js';
import { finding, type Finding } from './findings.js';
import { governanceFindingsOffline } from './governance.js';

export interface DataDirOptions {
  readonly now: Date;
  /** Tokens that stay valid longer than this from now count as "without expiry". */
  readonly maxTokenDays: number;
  /** Audit events older than this and not covered by a checkpoint make it stale. */
  readonly checkpointMaxAgeSeconds: number;
}

const DAY_MS = 86_400_000;
const PAGE = 10_000;

const q = (s: string): string => (/^[A-Za-z0-9_./:@+=-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`);

export async function dataDirFindings(dir: string, opts: DataDirOptions): Promise<Finding[]> {
  const out: Finding[] = [];
  const D = q(dir);
  const { STORE_FILE, SHARES_DIR, TOKEN_FILE, VERIFIER_KEY_FILE, openSqliteStoreReadOnly, CURRENT_SCHEMA_VERSION, verifyExport, fullExportHeaderLine } = await server.serverModule();

  // --- files -------------------------------------------------------------------------
  const loose = (p: string, allowed: number): number | null => {
    if (!existsSync(p)) return null;
    const m = statSync(p).mode & 0o777;
    return (m & ~allowed) === 0 ? null : m;
  };
  for (const [p, allowed] of [[dir, 0o700], [path.join(dir, STORE_FILE), 0o600], [path.join(dir, 'keyholder.json'), 0o600]] as const) {
    const m = loose(p, allowed);
    if (m !== null) {
      out.push(finding('data-dir-permissions', `${p} has mode ${m.toString(8).padStart(4, '0')}; expected ${allowed.toString(8).padStart(4, '0')} or stricter`,
        `chmod ${allowed.toString(8)} ${q(p)}`, { details: { path: p, mode: m.toString(8) } }));
    }
  }
  const sharesDir = path.join(dir, SHARES_DIR);
  if (existsSync(sharesDir)) {
    const plain = readdirSync(sharesDir).filter((f) => /^share-\d+\.txt$/.test(f)).sort();
    if (plain.length > 0) {
      out.push(finding('shares-in-data-dir', `${plain.length} unseal share file(s) in clear beside the store: ${plain.join(', ')}`,
        `hand each share to its custodian (or re-init with --share-recipients), then: shred -u ${plain.map((f) => q(path.join(sharesDir, f))).join(' ')}`,
        { details: { files: plain.map((f) => path.join(sharesDir, f)) } }));
    }
  }
  const tokenFile = path.join(dir, TOKEN_FILE);
  if (existsSync(tokenFile)) {
    out.push(finding('initial-token-file', `the initial admin token is still in ${tokenFile}`,
      `enroll the first administrators with it, revoke it (keyward token revoke TOKEN_ID) and delete it: shred -u ${q(tokenFile)}`, { details: { path: tokenFile } }));
  }

  // --- custody: HSM-wrapped or software ----------------------------------------------------
  out.push(...hsmFindingsOffline(path.join(dir, 'keyholder.json')));
  out.push(...quorumFindingsOffline(path.join(dir, 'keyholder.json')));

  // --- the store, read-only ---------------------------------------------------------------
  let store;
  try {
    store = await openSqliteStoreReadOnly({ path: path.join(dir, STORE_FILE) });
  } catch (e) {
    out.push(finding('store-unreadable', `cannot open ${path.join(dir, STORE_FILE)}: ${(e as Error).message}`,
      `check the path (keyward doctor --data DIR names the directory made by keyward init); restore a damaged store from a backup (docs/operations/restore-from-backup.md)`,
      { details: { code: (e as { code?: unknown }).code ?? null } }));
    out.push(...await governanceFindingsOffline(path.join(dir, 'keyholder.json'), null));
    return out;
  }
  try {
    if (store.schemaVersion < CURRENT_SCHEMA_VERSION) {
      out.push(finding('store-schema-outdated', `the store has schema version ${store.schemaVersion}; this Keyward writes ${CURRENT_SCHEMA_VERSION}`,
        `keyward server --data ${D} (it migrates the store at start)`, { details: { found: store.schemaVersion, current: CURRENT_SCHEMA_VERSION } }));
    }
    try {
      await identityFindings(store, opts, out);
      await keyFindings(store, opts, out);
      // Signed governance anchored at init, or by trust on first use (governance.ts).
      out.push(...await governanceFindingsOffline(path.join(dir, 'keyholder.json'), store));
    } catch (e) {
      out.push(finding('store-unreadable', `reading the store failed: ${(e as Error).message}`,
        'restore the store from a backup (docs/operations/restore-from-backup.md)', { details: { code: (e as { code?: unknown }).code ?? null } }));
    }

    // --- audit log ------------------------------------------------------------------------
    const keyFile = path.join(dir, VERIFIER_KEY_FILE);
    const verify = `keyward audit export -o audit.jsonl && keyward audit verify --export audit.jsonl --key ${q(keyFile)} --json; then follow docs/operations/suspected-key-compromise.md`;
    try {
      const size = await store.auditSize();
      const cp = await store.latestAuditCheckpoint();
      const covered = cp?.size ?? 0;
      if (size > covered) {
        const first = (await store.readAuditEvents({ start: covered, end: covered + 1 }))[0];
        const age = first ? (opts.now.getTime() - first.time.getTime()) / 1000 : 0;
        if (age > opts.checkpointMaxAgeSeconds) {
          out.push(finding('audit-checkpoint-stale', `${size - covered} audit event(s) are not covered by a signed checkpoint; the oldest is ${Math.round(age)} s old (limit ${opts.checkpointMaxAgeSeconds} s)`,
            `start and unseal the service, which signs a checkpoint within a second: keyward server --data ${D}, then each custodian: keyward unseal --share FILE`,
            { details: { size, checkpointSize: covered, oldestUncoveredSeconds: Math.round(age), lastCheckpoint: cp?.created.toISOString() ?? null } }));
        }
      }
      if (cp === null) {
        out.push(finding('audit-not-checked', 'the audit log has no signed checkpoint yet, so there is nothing to verify it against', `keyward server --data ${D} (signs the first checkpoint once unsealed)`));
      } else if (!existsSync(keyFile)) {
        out.push(finding('audit-not-checked', `the audit log's public key ${keyFile} is missing, so the log was not verified`, `copy the verifier key kept at init back to ${q(keyFile)}`));
      } else {
        const vkey = readFileSync(keyFile, 'utf8').split('\n').map((l) => l.trim()).find((l) => l !== '' && !l.startsWith('#')) ?? '';
        const lines = [fullExportHeaderLine(cp.note)];
        for (let from = 0; from < cp.size; from += PAGE) {
          for (const row of await store.readAuditEvents({ start: from, end: Math.min(cp.size, from + PAGE) })) lines.push(row.event + '\n');
        }
        const r = verifyExport(lines.join(''), { verifierKey: vkey });
        if (!r.ok) {
          const p = r.problems[0];
          out.push(finding('audit-log-not-verifying', `the stored audit log fails verification: ${p?.code ?? 'AUDIT_MALFORMED'}${p?.index === null || p === undefined ? '' : ` at event ${p.index}`} (${r.problems.length + r.problemsOmitted} problem(s))`,
            verify, { details: { problems: r.problems.slice(0, 20), size: cp.size } }));
        }
      }
    } catch (e) {
      out.push(finding('audit-log-not-verifying', `the stored audit log cannot be read: ${(e as Error).message}`, verify, { details: { code: (e as { code?: unknown }).code ?? null } }));
    }
  } finally {
    store.close();
  }
  return out;
}

type Ro = Awaited<ReturnType<Awaited<ReturnType<typeof server.serverModule>>['openSqliteStoreReadOnly']>>;

async function identityFindings(store: Ro, opts: DataDirOptions, out: Finding[]): Promise<void> {
  const admins: string[] = [];
  for (const ns of await store.listNamespaces()) {
    for (const p of await store.listPrincipals(ns.name)) {
      if (p.disabledAt !== null && p.disabledAt !== undefined) continue;
      let admin = false;
      for (const t of await store.listTokens(p.id)) {
        if (t.revokedAt !== null || t.expiresAt.getTime() <= opts.now.getTime()) continue;
        if (t.admin) admin = true;
        const days = (t.expiresAt.getTime() - opts.now.getTime()) / DAY_MS;
        if (days > opts.maxTokenDays) {
          out.push(finding('token-without-expiry', `token ${t.id} of ${p.id}${t.admin ? ' (admin)' : ''} is valid for ${Math.round(days)} more days (until ${t.expiresAt.toISOString().slice(0, 10)}; limit ${opts.maxTokenDays})`,
            `keyward token create --principal ${q(p.id)}${t.admin ? ' --admin' : ''} --ttl ${30 * 86400} -o NEW.token, switch ${p.id} to it, then: keyward token revoke ${t.id}`,
            { details: { token: t.id, principal: p.id, admin: t.admin, expiresAt: t.expiresAt.toISOString() } }));
        }
      }
      if (admin) admins.push(p.id);
    }
  }
  const enforced = await store.getMeta('mfa.enforced_since');
  if (enforced === null) {
    out.push(finding('mfa-not-enforced', 'second factors are not enforced: no TOTP or WebAuthn factor was ever activated, so sensitive operations (destroy, policy and admin-token changes) need no step-up',
      'each administrator: keyward mfa enroll totp (then activate it with its first code); enforcement starts with the first active factor (docs/mfa.md)', {}));
  }
  const without: string[] = [];
  for (const id of admins) {
    const factors = await store.listMfaFactors(id);
    if (!factors.some((f) => f.state === 'active' && (f.kind === 'totp' || f.kind === 'webauthn'))) without.push(id);
  }
  if (without.length > 0) {
    out.push(finding('admin-without-mfa', `${without.length} administrator(s) have no active second factor: ${without.join(', ')}${enforced === null ? '' : ' (once MFA is enforced they cannot perform sensitive operations)'}`,
      'as each of them: keyward mfa enroll totp, then activate it with its first code (or enroll a passkey in the console)',
      { details: { admins: without } }));
  }
}

/**
 * Whether the governance snapshot the keyholder signed (its own state file,
 * not the database) requires a quorum for destroying key versions.
 */
function quorumFindingsOffline(stateFile: string): Finding[] {
  let rule: unknown;
  try {
    const st = JSON.parse(readFileSync(stateFile, 'utf8')) as { governance?: { snapshot?: unknown } };
    const snap = typeof st.governance?.snapshot === 'string' ? JSON.parse(st.governance.snapshot) as { state?: { quorum?: Record<string, unknown> } } : null;
    rule = snap?.state?.quorum?.['keys.destroy'];
  } catch {
    return []; // no or unreadable state file: reported by the file and store checks
  }
  return rule === undefined ? [quorumDisabledForDestroy()] : [];
}

async function keyFindings(store: Ro, opts: DataDirOptions, out: Finding[]): Promise<void> {
  for (const k of await store.listKeysDueForRotation(opts.now)) {
    const latest = (await store.listKeyVersions(k.ns, k.name)).find((v) => v.version === k.latestVersion);
    const overdue = latest ? Math.round((opts.now.getTime() - latest.created.getTime()) / 1000 - (k.rotationPeriodSeconds ?? 0)) : null;
    out.push(finding('key-rotation-overdue', `key ${k.ns}/${k.name} v${k.latestVersion} is past its rotation period of ${k.rotationPeriodSeconds} s${overdue === null ? '' : ` by ${overdue} s`}`,
      `keyward keys rotate ${q(`${k.ns}/${k.name}`)}`, { details: { key: `${k.ns}/${k.name}`, version: k.latestVersion, rotationPeriodSeconds: k.rotationPeriodSeconds, created: latest?.created.toISOString() ?? null } }));
  }
  for (const ns of await store.listNamespaces()) {
    for (const k of await store.listKeys(ns.name)) {
      for (const v of await store.listKeyVersions(ns.name, k.name)) {
        if (v.state !== 'scheduled_for_deletion') continue;
        out.push(finding('version-scheduled-for-deletion', `key ${k.ns}/${k.name} v${v.version} is scheduled for deletion on ${v.deletionAt?.toISOString() ?? '?'}`,
          `if that is a mistake: keyward keys cancel-deletion ${q(`${k.ns}/${k.name}`)} ${v.version}`,
          { details: { key: `${k.ns}/${k.name}`, version: v.version, deletionAt: v.deletionAt?.toISOString() ?? null } }));
      }
    }
  }
}

/**
 * HSM-wrapped custody (docs/hsm.md) needs the token's PKCS#11 module on this
 * machine to auto-unseal; software custody is reported for information.
 */
/** The finding when no quorum rule covers keys.destroy (shared with the online check). */
export function quorumDisabledForDestroy(): Finding {
  return finding('quorum-disabled-for-destroy', 'quorum disabled for destroy: one administrator (with a step-up) can destroy a key version; no approver has to agree',
    'give two or more people a role and their approval keys (keyward principal set-roles ID --role key-admins; keyward approvals enroll-key --principal ID --key-file KEY.pem), then: keyward quorum set keys.destroy --role key-admins --threshold 2 --step-up (docs/mfa.md)');
}

function hsmFindingsOffline(stateFile: string): Finding[] {
  let hsm: { module?: unknown; tokenLabel?: unknown } | undefined;
  try {
    hsm = (JSON.parse(readFileSync(stateFile, 'utf8')) as { custody?: { hsm?: { module?: unknown; tokenLabel?: unknown } } }).custody?.hsm;
  } catch {
    return []; // no or unreadable state file: reported by the file and store checks
  }
  if (hsm === undefined) {
    return [finding('hsm-not-configured', 'the master key is held by the software keystore (Shamir-split), not wrapped by an HSM',
      'for a new deployment: keyward init --hsm-module PATH --hsm-token LABEL --hsm-pin-file FILE (docs/hsm.md)')];
  }
  if (typeof hsm.module !== 'string' || !existsSync(hsm.module)) {
    return [finding('hsm-unreachable', `the PKCS#11 module ${String(hsm.module)} (token ${String(hsm.tokenLabel)}) is not on this machine: the keyholder cannot auto-unseal`,
      'install the HSM vendor client and its PKCS#11 module at that path, then restart: keyward server --data DIR --hsm-pin-file FILE (docs/hsm.md)',
      { details: { module: hsm.module, token: hsm.tokenLabel } })];
  }
  return [];
}
