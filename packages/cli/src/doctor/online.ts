/**
 * Checks of a running service (`keyward doctor --addr URL`): health (sealed,
 * keyholder), transport, keyholder errors from `/metrics`, and with an admin
 * token the keys of the namespaces named with `--namespace` and the audit log
 * (exported through the API and verified offline with `--audit-key`).
 */
import { parseCheckpoint, parseNote } from '@keyward/tlog';
import * as server from '../lib/server-modules.js';
import { call, type ServiceOptions } from '../lib/service.js';
import { addressFindings } from './config.js';
import { finding, type Finding } from './findings.js';
import { witnessFindings } from './witnesses.js';
import { directoryFactsOnline, directoryFindings } from './directory.js';
import { quorumDisabledForDestroy } from './datadir.js';
import { governanceFindingOnline } from './governance.js';

export interface OnlineOptions {
  readonly service: ServiceOptions;
  readonly namespaces: readonly string[];
  /** The log's verifier key (text), or null to skip verification. */
  readonly auditKey: string | null;
  readonly now: Date;
  readonly checkpointMaxAgeSeconds: number;
  /** Witness cosignatures older than this, while newer checkpoints wait, are stale (default checkpointMaxAgeSeconds). */
  readonly witnessMaxAgeSeconds?: number;
}

interface KeyView {
  ns: string; name: string; rotation_period_seconds: number | null; latest_version: number;
  versions?: { version: number; state: string; created: string; deletion_at: string | null }[];
}

export async function onlineFindings(opts: OnlineOptions): Promise<Finding[]> {
  const out: Finding[] = [];
  const base = opts.service.addresses[0] ?? '';
  const anon = { ...opts.service, token: null };
  let health: { sealed?: unknown; keyholder?: unknown; initialized?: unknown; hsm?: { state?: string; code?: string | null } };
  try {
    health = await call(anon, 'GET', '/v1/sys/health');
  } catch (e) {
    out.push(finding('service-unreachable', `no answer from ${opts.service.addresses.join(', ')}: ${(e as Error).message}`,
      'start it: keyward server --data DIR (then unseal), or check --addr', { details: { code: (e as { code?: unknown }).code ?? null } }));
    return out;
  }
  out.push(...addressFindings(base));
  if (health.hsm === undefined) {
    out.push(finding('hsm-not-configured', 'the master key is held by the software keystore (Shamir-split), not wrapped by an HSM',
      'for a new deployment: keyward init --hsm-module PATH --hsm-token LABEL --hsm-pin-file FILE (docs/hsm.md)'));
  }
  if (health.keyholder === 'down') {
    out.push(finding('keyholder-down', 'the keyholder process does not answer', 'restart the service: keyward server --data DIR (the keyholder comes back sealed; then each custodian: keyward unseal --share FILE)'));
  } else if (health.hsm !== undefined && (health.hsm.state === 'unavailable' || health.hsm.state === 'failed')) {
    out.push(finding('hsm-unreachable', `the keyholder cannot auto-unseal from its HSM: ${health.hsm.state} (${health.hsm.code ?? 'no code'})`,
      health.hsm.code === 'KW_HSM_PIN_INCORRECT' ? 'fix the PIN file and restart: keyward server --data DIR --hsm-pin-file FILE (docs/hsm.md)' : 'bring the HSM back (network, client, token); the keyholder retries by itself (docs/hsm.md)',
      { details: { state: health.hsm.state, code: health.hsm.code ?? null } }));
  } else if (health.sealed === true) {
    out.push(finding('node-sealed', 'the service is sealed', 'each custodian, from their own machine: keyward unseal --share FILE (docs/operations/key-ceremony.md)'));
  }

  // Keyholder errors since start, from the Prometheus endpoint (no token needed).
  try {
    const res = await fetch(new URL('/metrics', base));
    const text = await res.text();
    let errors = 0;
    const codes: Record<string, number> = {};
    for (const m of text.matchAll(/^keyward_keyholder_errors_total\{code="([^"]*)"\} (\d+(?:\.\d+)?)$/gm)) {
      errors += Number(m[2]);
      codes[m[1]!] = Number(m[2]);
    }
    if (errors > 0) {
      out.push(finding('keyholder-errors', `${errors} keyholder call(s) failed since the server started (${Object.entries(codes).map(([c, n]) => `${c}: ${n}`).join(', ')})`,
        'read the server log for "keyholder" lines; a sealed or restarted keyholder needs: keyward unseal --share FILE', { details: { codes } }));
    }
  } catch {
    // /metrics is optional for this report.
  }

  if (opts.service.token === null) {
    out.push(finding('audit-not-checked', 'no admin token given: keys and the audit log were not checked', 'keyward doctor --addr URL --token-file FILE (or $KEYWARD_TOKEN_FILE)'));
    return out;
  }

  for (const ns of opts.namespaces) {
    const { keys } = await call<{ keys: KeyView[] }>(opts.service, 'GET', `/v1/keys/${encodeURIComponent(ns)}`);
    for (const summary of keys) {
      const k = await call<KeyView>(opts.service, 'GET', `/v1/keys/${encodeURIComponent(ns)}/${encodeURIComponent(summary.name)}`);
      const latest = k.versions?.find((v) => v.version === k.latest_version);
      if (k.rotation_period_seconds !== null && latest && Date.parse(latest.created) + k.rotation_period_seconds * 1000 <= opts.now.getTime()) {
        out.push(finding('key-rotation-overdue', `key ${ns}/${k.name} v${k.latest_version} is past its rotation period of ${k.rotation_period_seconds} s`,
          `keyward keys rotate ${ns}/${k.name}`, { details: { key: `${ns}/${k.name}`, version: k.latest_version, created: latest.created } }));
      }
      for (const v of k.versions ?? []) {
        if (v.state === 'scheduled_for_deletion') {
          out.push(finding('version-scheduled-for-deletion', `key ${ns}/${k.name} v${v.version} is scheduled for deletion on ${v.deletion_at ?? '?'}`,
            `if that is a mistake: keyward keys cancel-deletion ${ns}/${k.name} ${v.version}`, { details: { key: `${ns}/${k.name}`, version: v.version, deletionAt: v.deletion_at } }));
        }
      }
    }
  }

  // The audit log: export through the API, verify offline.
  const { note } = await call<{ note: string }>(opts.service, 'GET', '/v1/audit/checkpoint');
  const cp = parseCheckpoint(parseNote(note).text);
  const after = await call<{ events: { index: number; event: string }[] }>(opts.service, 'GET', `/v1/audit/events?from=${cp.size}&to=${cp.size + 1}`);
  const oldest = after.events[0] ? Date.parse((JSON.parse(after.events[0].event) as { time?: string }).time ?? '') : NaN;
  if (!Number.isNaN(oldest) && (opts.now.getTime() - oldest) / 1000 > opts.checkpointMaxAgeSeconds) {
    out.push(finding('audit-checkpoint-stale', `audit events after tree size ${cp.size} are not covered by a signed checkpoint; the oldest is ${Math.round((opts.now.getTime() - oldest) / 1000)} s old`,
      'unseal the service (a sealed keyholder signs no checkpoint): keyward unseal --share FILE; check the server log for "audit: checkpoint failed"'));
  }
  if (opts.auditKey === null) {
    out.push(finding('audit-not-checked', 'no --audit-key given: the audit log was not verified', 'keyward doctor --addr URL --token-file FILE --audit-key audit-verifier-key.txt'));
  } else {
    const { fullExportHeaderLine, verifyExport } = await server.audit();
    const lines = [fullExportHeaderLine(note)];
    for (let from = 0; from < cp.size;) {
      const to = Math.min(cp.size, from + 1000);
      const { events } = await call<{ events: { event: string }[] }>(opts.service, 'GET', `/v1/audit/events?from=${from}&to=${to}`);
      if (events.length === 0) break;
      for (const e of events) lines.push(e.event + '\n');
      from += events.length;
    }
    const r = verifyExport(lines.join(''), { verifierKey: opts.auditKey });
    if (!r.ok) {
      const p = r.problems[0];
      out.push(finding('audit-log-not-verifying', `the service's audit log fails verification: ${p?.code ?? 'AUDIT_MALFORMED'}${p?.index === null || p === undefined ? '' : ` at event ${p.index}`}`,
        'keyward audit export -o audit.jsonl && keyward audit verify --export audit.jsonl --key audit-verifier-key.txt --json; then follow docs/operations/suspected-key-compromise.md',
        { details: { problems: r.problems.slice(0, 20) } }));
    }
  }
  // Witnesses (docs/witness.md): configured, reachable, cosigning.
  type Ws = { k: number; n: number; latest_size: number | null; witnessed: { size: number; time: string } | null; witnesses: { name: string; url: string }[] };
  // A service older than the witness routes answers 404: it has no witnesses.
  const ws = await call<Ws>(opts.service, 'GET', '/v1/audit/witnesses').catch((e: unknown): Ws => {
    if ((e as { code?: string }).code === 'KW_NOT_FOUND') return { k: 0, n: 0, latest_size: null, witnessed: null, witnesses: [] };
    throw e;
  });
  out.push(...await witnessFindings({ witnesses: ws.witnesses, k: ws.n > 0 ? ws.k : null, witnessed: ws.witnessed, latestSize: ws.latest_size, configHint: 'the server config file (keyward server --config FILE)' },
    { now: opts.now, maxAgeSeconds: opts.witnessMaxAgeSeconds ?? opts.checkpointMaxAgeSeconds }));
  // The directory (docs/witness.md §The directory): its witnesses and cosigned heads; every node's directory keys.
  out.push(...directoryFindings(await directoryFactsOnline(opts.service), { now: opts.now, maxAgeSeconds: opts.witnessMaxAgeSeconds ?? opts.checkpointMaxAgeSeconds }));
  // Second factors of the principal whose token runs this check (the API lists a principal's own factors).
  const { factors } = await call<{ factors: { kind: string; state: string }[] }>(opts.service, 'GET', '/v1/mfa/factors');
  if (!factors.some((f) => f.state === 'active' && (f.kind === 'totp' || f.kind === 'webauthn'))) {
    out.push(finding('admin-without-mfa', 'the administrator running this check has no active second factor',
      'keyward mfa enroll totp, then activate it with its first code (or enroll a passkey in the console)'));
  }
  // Quorum rules come from the keyholder-signed governance snapshot (GET /v1/quorum).
  const { rules } = await call<{ rules: { op: string }[] }>(opts.service, 'GET', '/v1/quorum');
  if (!rules.some((r) => r.op === 'keys.destroy')) out.push(quorumDisabledForDestroy());
  // The snapshot in force (GET /v1/governance syncs this node's keyholder from the database first): none is a genesis still to be taken on first use.
  // Not an admin token (403), or a service older than the route (404): not checked.
  const gov = await call<{ seq: number | null }>(opts.service, 'GET', '/v1/governance').catch((e: unknown) => {
    if (['KW_FORBIDDEN', 'KW_NOT_FOUND'].includes(String((e as { code?: unknown }).code))) return null;
    throw e;
  });
  if (gov) out.push(...governanceFindingOnline(gov));
  return out;
}
