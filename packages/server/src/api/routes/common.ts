/** Shared by the route files: authorization with audit of refusals, key views, policy loading. */
import type { FastifyRequest } from 'fastify';
import type { AuditEventInput } from '../../audit/event.js';
import type { KeyRow, KeyVersionRow, Store } from '../../store/index.js';
import type { App } from '../app.js';
import { b64u } from '../audit-pipe.js';
import type { Principal } from '../auth.js';
import { ApiError, toHttpError } from '../errors.js';
import { PolicyDocumentSchema, decide, type Operation, type PolicyDocument } from '../policy.js';

/** Checked policy documents by stored document object (a cached row is checked once: store/read-cache.ts); null: malformed. */
const checkedPolicies = new WeakMap<object, PolicyDocument | null>();

/** The policy documents in force for a namespace (malformed stored documents are skipped: deny). */
export async function policiesOf(store: Store, ns: string): Promise<PolicyDocument[]> {
  const rows = await store.listPolicies(ns);
  const out: PolicyDocument[] = [];
  for (const r of rows) {
    const doc = r.document as unknown;
    let checked = typeof doc === 'object' && doc !== null ? checkedPolicies.get(doc) : undefined;
    if (checked === undefined) {
      const p = PolicyDocumentSchema.safeParse(doc);
      checked = p.success ? p.data : null;
      if (typeof doc === 'object' && doc !== null && Object.isFrozen(doc)) checkedPolicies.set(doc, checked);
    }
    if (checked !== null) out.push(checked);
  }
  return out;
}

export interface Guarded {
  readonly who: Principal;
  readonly event: Omit<AuditEventInput, 'outcome'>;
}

/**
 * Authenticates, decides (`op` on `ns/key`), audits a denial, then runs
 * `run`; a failure of `run` is audited as outcome `error` with its code.
 */
export async function guarded<T>(
  app: App, req: FastifyRequest,
  spec: { op: Operation; auditOp: string; ns: string | null; key?: string; version?: number; context?: Record<string, string>; auth?: 'token' | 'signature'; request?: string | null },
  run: (g: Guarded) => Promise<T>,
): Promise<T> {
  const { ctx } = app;
  const who = await app.principal(req);
  const event: Omit<AuditEventInput, 'outcome'> = {
    ns: spec.ns, principal: who.id, auth: spec.auth ?? 'token', op: spec.auditOp,
    target: { ...(spec.key !== undefined ? { key: spec.key } : {}), ...(spec.version !== undefined ? { version: spec.version } : {}) },
    request: spec.request ?? null,
    // Sensitive: the audit pipe replaces these by HMAC markers (audit/redact.ts) before the event is built.
    details: { ...(spec.context && Object.keys(spec.context).length > 0 ? { context: spec.context } : {}), client: { address: req.ip } },
  };
  const keyRef = spec.ns === null ? '*' : `${spec.ns}/${spec.key ?? ''}`;
  const policies = spec.ns === null ? [] : await policiesOf(ctx.store, spec.ns);
  const d = decide(who, spec.op, keyRef, spec.context ?? {}, policies);
  if (!d.allowed) {
    await ctx.audit.recordFailure({ ...event, outcome: 'denied', code: 'KW_FORBIDDEN' });
    throw new ApiError('KW_FORBIDDEN', `the policy does not grant ${spec.op} on ${keyRef} to ${who.id}`);
  }
  try {
    return await run({ who, event });
  } catch (e) {
    const code = toHttpError(e).code;
    if (code !== 'KW_KEYHOLDER_UNAVAILABLE' && code !== 'KW_SEALED') {
      await ctx.audit.recordFailure({ ...event, outcome: 'error', code });
    }
    throw e;
  }
}

export function versionView(v: KeyVersionRow) {
  return {
    version: v.version,
    state: v.state,
    created: v.created.toISOString(),
    deletion_at: v.deletionAt?.toISOString() ?? null,
    destroyed_at: v.destroyedAt?.toISOString() ?? null,
    ...(v.publicKey ? { public_key: b64u(v.publicKey) } : {}),
  };
}

export function keyView(k: KeyRow, versions?: readonly KeyVersionRow[]) {
  return {
    ns: k.ns,
    name: k.name,
    type: k.type,
    created: k.created.toISOString(),
    rotation_period_seconds: k.rotationPeriodSeconds,
    min_decryption_version: k.minDecryptionVersion,
    latest_version: k.latestVersion,
    ...(versions ? { versions: versions.map(versionView) } : {}),
  };
}

export async function requireKey(store: Pick<Store, 'getKey'>, ns: string, name: string): Promise<KeyRow> {
  const k = await store.getKey(ns, name);
  if (!k) throw new ApiError('KW_NOT_FOUND', `no key ${ns}/${name}`);
  return k;
}

export async function requireVersion(store: Pick<Store, 'getKeyVersion'>, ns: string, name: string, version: number): Promise<KeyVersionRow> {
  const v = await store.getKeyVersion(ns, name, version);
  if (!v) throw new ApiError('KW_NOT_FOUND', `no version ${version} of ${ns}/${name}`);
  return v;
}
