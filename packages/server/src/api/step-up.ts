/**
 * Step-up enforcement (issue #7; docs/mfa.md): which requests are
 * sensitive, their canonical description (mfa/request-hash.ts), and the gate
 * a sensitive route passes before it changes anything.
 *
 * A sensitive request names a verified, unconsumed step-up in the header
 * `Keyward-Step-Up: <id>`; the id is the request hash, SHA-256 over the
 * RFC 8785 JSON of { method, path, namespace, key, version, body, expiresAt }.
 * The gate recomputes that hash from the request it is handling (with the
 * step-up's own expiry) and refuses, changing nothing:
 *
 *   no header, unknown id, another principal's id, not verified → KW_MFA_REQUIRED
 *   a step-up for another request                              → KW_STEP_UP_MISMATCH
 *   consumed already                                           → KW_MFA_REPLAY
 *   past its expiry                                            → KW_STEP_UP_EXPIRED
 *
 * The route then calls `consume(tx)` inside the transaction of the operation
 * (compare-and-set: of two requests racing with one step-up, one commits and
 * the other is KW_MFA_REPLAY with nothing written).
 *
 * Who needs it: people, once MFA is enforced (mfa-settings.ts); the factor
 * routes, whenever the target principal has an active factor. Service
 * principals cannot hold factors: their sensitive requests are refused with
 * KW_MFA_REQUIRED once MFA is enforced. The bootstrap token is exempt (it
 * only enrolls administrators, and expires when enforcement starts).
 */
import type { FastifyRequest } from 'fastify';
import type { JsonValue } from '../audit/canonical-json.js';
import { MfaError } from '../mfa/errors.js';
import { canonicalRequest, requestHash, type SensitiveRequest } from '../mfa/request-hash.js';
import { isStoreError, type StoreTx } from '../store/index.js';
import type { App } from './app.js';
import type { Principal } from './auth.js';
import { mfaEnforced, mfaSettings } from './mfa-settings.js';

/** The request header naming the step-up. */
export const STEP_UP_HEADER = 'keyward-step-up';

/** What a sensitive request does, as the route table sees it. */
export interface SensitiveMatch {
  /** The operation, for messages and audit details. */
  readonly op: string;
  readonly namespace: string;
  readonly key: string | null;
  readonly version: number | null;
  /** Factor routes: needed only when the target has an active factor. */
  readonly factorChange: boolean;
}

const SEG = '([^/?#]+)';
const dec = (s: string): string => decodeURIComponent(s);

/** The sensitive requests (method, path, body) and how each is described. Anything else is not sensitive. */
const TABLE: readonly { method: string; re: RegExp; when?: (body: JsonValue) => boolean; describe: (m: RegExpExecArray, body: JsonValue) => SensitiveMatch }[] = [
  {
    method: 'POST', re: new RegExp(`^/v1/keys/${SEG}/${SEG}/versions/([1-9][0-9]{0,9})/(destroy|schedule-deletion)$`),
    describe: (m) => ({ op: m[4] === 'destroy' ? 'keys.destroy' : 'keys.schedule_deletion', namespace: dec(m[1]!), key: dec(m[2]!), version: Number(m[3]), factorChange: false }),
  },
  { method: 'PUT', re: new RegExp(`^/v1/policies/${SEG}/${SEG}$`), describe: (m) => ({ op: 'policies.put', namespace: dec(m[1]!), key: null, version: null, factorChange: false }) },
  {
    // An admin token, or a token whose principal gets roles (a role change: principals.update).
    method: 'POST', re: /^\/v1\/tokens$/, when: (b) => isObject(b) && (b.admin === true || b.roles !== undefined),
    describe: (_m, b) => ({
      op: isObject(b) && b.admin === true ? 'tokens.create_admin' : 'principals.update',
      namespace: isObject(b) && typeof b.ns === 'string' ? b.ns : '', key: null, version: null, factorChange: false,
    }),
  },
  { method: 'PUT', re: new RegExp(`^/v1/quorum/${SEG}$`), describe: () => ({ op: 'quorum.put', namespace: '', key: null, version: null, factorChange: false }) },
  { method: 'DELETE', re: new RegExp(`^/v1/quorum/${SEG}$`), describe: () => ({ op: 'quorum.put', namespace: '', key: null, version: null, factorChange: false }) },
  { method: 'PUT', re: new RegExp(`^/v1/approvers/${SEG}/keys/${SEG}$`), describe: () => ({ op: 'approvers.put', namespace: '', key: null, version: null, factorChange: false }) },
  { method: 'DELETE', re: new RegExp(`^/v1/approvers/${SEG}/keys/${SEG}$`), describe: () => ({ op: 'approvers.put', namespace: '', key: null, version: null, factorChange: false }) },
  { method: 'PUT', re: new RegExp(`^/v1/principals/${SEG}/roles$`), describe: () => ({ op: 'principals.update', namespace: '', key: null, version: null, factorChange: false }) },
  // Unseal-share rotation (api/routes/rekey.ts): starting it; the shares themselves are the authority to finish it.
  { method: 'POST', re: /^\/v1\/sys\/rekey$/, describe: () => ({ op: 'sys.rekey', namespace: '', key: null, version: null, factorChange: false }) },
  { method: 'DELETE', re: new RegExp(`^/v1/mfa/factors/${SEG}$`), describe: () => ({ op: 'mfa.remove', namespace: '', key: null, version: null, factorChange: true }) },
  { method: 'POST', re: /^\/v1\/mfa\/(totp|webauthn\/options|recovery-codes)$/, describe: () => ({ op: 'mfa.enroll', namespace: '', key: null, version: null, factorChange: true }) },
];

function isObject(v: JsonValue): v is { readonly [k: string]: JsonValue } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A body as hashed: absent and `{}` are both null (routes treat them alike). */
export function normalizeBody(b: unknown): JsonValue {
  if (b === undefined || b === null) return null;
  if (typeof b === 'object' && !Array.isArray(b) && Object.keys(b).length === 0) return null;
  return b as JsonValue;
}

/** The sensitive operation `method path body` is, or null. */
export function matchSensitive(method: string, path: string, body: JsonValue): SensitiveMatch | null {
  for (const t of TABLE) {
    if (t.method !== method.toUpperCase()) continue;
    const m = t.re.exec(path);
    if (!m) continue;
    if (t.when && !t.when(body)) return null;
    try {
      return t.describe(m, body);
    } catch {
      return null; // a malformed percent-escape: not a path of ours
    }
  }
  return null;
}

/** The canonical request (without expiry) for `method path body`, or null if not sensitive. */
export function describeRequest(method: string, path: string, body: unknown): { match: SensitiveMatch; request: Omit<SensitiveRequest, 'expiresAt'> } | null {
  const b = normalizeBody(body);
  const match = matchSensitive(method, path, b);
  if (!match) return null;
  return { match, request: { method: method.toUpperCase(), path, namespace: match.namespace, key: match.key, version: match.version, body: b } };
}

/** The step-up id (base64url request hash) of `r` expiring at `expiresAt` (seconds). */
export function stepUpId(r: Omit<SensitiveRequest, 'expiresAt'>, expiresAt: number): string {
  return Buffer.from(requestHash({ ...r, expiresAt })).toString('base64url');
}

export { canonicalRequest };

/** A verified step-up the route consumes in its own transaction. */
export interface StepUpGate {
  readonly id: string;
  /** Hex SHA-256 of the canonical request (the audit event's `request`). */
  readonly requestHex: string;
  consume(tx: StoreTx): Promise<void>;
}

/**
 * The gate of a sensitive route (see the module comment). Returns null when
 * no step-up is needed for this caller; throws the typed refusal otherwise;
 * else the gate to consume in the operation's transaction.
 * `factorTargetHasActive`: for factor routes, whether the target principal
 * has an active factor (they need step-up exactly then).
 */
export async function stepUpGate(app: App, req: FastifyRequest, who: Principal, opts: { factorTargetHasActive?: boolean } = {}): Promise<StepUpGate | null> {
  const { ctx } = app;
  const path = (req.url.split('?')[0] ?? req.url);
  const d = describeRequest(req.method, path, req.body);
  if (!d) return null;
  if (who.bootstrap) return null;
  if (d.match.factorChange) {
    if (!opts.factorTargetHasActive) return null;
  } else if (!(await mfaEnforced(ctx))) {
    return null;
  }
  const p = await ctx.store.getPrincipal(who.id);
  if (!p || p.kind !== 'person') {
    throw new MfaError('KW_MFA_REQUIRED', `${d.match.op} needs a person's second factor (step-up); service principals cannot step up`);
  }
  const header = req.headers[STEP_UP_HEADER];
  const id = typeof header === 'string' ? header.trim() : '';
  if (!/^[A-Za-z0-9_-]{43}$/.test(id)) throw new MfaError('KW_MFA_REQUIRED', `${d.match.op} needs a step-up: POST /v1/mfa/step-up with this request, verify it with a second factor, then send its id in the Keyward-Step-Up header`);
  const row = await ctx.store.getStepUp(id);
  if (!row || row.principal !== who.id) throw new MfaError('KW_MFA_REQUIRED', 'no step-up of yours has this id');
  const expiresAt = Math.floor(row.expiresAt.getTime() / 1000);
  if (stepUpId(d.request, expiresAt) !== row.id) throw new MfaError('KW_STEP_UP_MISMATCH');
  if (row.verifiedAt === null) throw new MfaError('KW_MFA_REQUIRED', 'the step-up is not verified yet: answer it with a second factor');
  if (row.consumedAt !== null) throw new MfaError('KW_MFA_REPLAY', 'this step-up was already used; each authorises one request');
  const now = mfaSettings(ctx).now();
  if (now.getTime() > row.expiresAt.getTime()) throw new MfaError('KW_STEP_UP_EXPIRED', `the step-up expired at ${row.expiresAt.toISOString()}`);
  return {
    id,
    requestHex: Buffer.from(id, 'base64url').toString('hex'),
    async consume(tx) {
      try {
        await tx.consumeStepUp(id, mfaSettings(ctx).now());
      } catch (e) {
        if (isStoreError(e, 'KW_STORE_CONFLICT')) throw new MfaError('KW_MFA_REPLAY', 'this step-up was used by another request meanwhile');
        throw e;
      }
    },
  };
}
