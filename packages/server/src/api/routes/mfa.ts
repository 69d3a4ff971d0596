/**
 * Second factors and step-up over HTTP (issue #7; docs/mfa.md).
 *
 * Factors (a person's own; the bootstrap token may enroll the first
 * administrators' — api/bootstrap.ts):
 *   POST   /v1/mfa/totp                      { name?, principal? } → otpauth URI and base32 seed, shown once (pending)
 *   POST   /v1/mfa/totp/:id/activate         { code, principal? }  → active (the first valid code)
 *   POST   /v1/mfa/webauthn/options          { name?, principal? } → registration options (pending)
 *   POST   /v1/mfa/webauthn/:id              { response, principal? } → active
 *   POST   /v1/mfa/recovery-codes            {}                    → ten one-time codes, shown once (replaces the set)
 *   GET    /v1/mfa/factors[?principal=]                            → ids, kinds, names, states (no secrets)
 *   DELETE /v1/mfa/factors/:id
 * Step-up:
 *   POST   /v1/mfa/step-up                   { method, path, body? } → { id, request, expires_at, factors, webauthn }
 *   POST   /v1/mfa/step-up/:id/verify        { code | recovery_code | webauthn, factor? } → verified
 *
 * Adding a factor, making recovery codes and removing a factor need a
 * step-up themselves once the person has an active factor (step-up.ts).
 * Failed factor checks count per principal: after `maxFailures` in a row the
 * principal's factors lock for `lockoutSeconds` (KW_MFA_LOCKED). Every
 * enrollment, step-up, success and failure is audited (`mfa.*` events: ids,
 * kinds and outcomes — never a seed, code or recovery code).
 */
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { JsonObject } from '../../audit/canonical-json.js';
import type { AuditEventInput } from '../../audit/event.js';
import { MfaError, isMfaError, type MfaErrorCode } from '../../mfa/errors.js';
import { credentialOf, isActiveSecondFactor } from '../../mfa/factors.js';
import { RECOVERY_CODE_COUNT, newRecoveryCodes } from '../../mfa/recovery.js';
import { checkLockout, countFailure, matchFactorAnswer, recoveryData, resetFailures as resetLockout, type TotpCheck } from '../../mfa/answer.js';
import { canonicalRequest } from '../../mfa/request-hash.js';
import { totpUri } from '../../mfa/totp.js';
import { registrationOptions, stepUpOptions, verifyRegistration, type StoredCredential } from '../../mfa/webauthn.js';
import type { MfaFactorRow, PrincipalRow, StoreTx } from '../../store/index.js';
import type { App } from '../app.js';
import { b64u, unb64u } from '../audit-pipe.js';
import { newId, type Principal } from '../auth.js';
import { isBootstrapPrincipal } from '../bootstrap.js';
import { ApiError, toHttpError } from '../errors.js';
import { mfaSettings, resolveMfaSettings, setMfaSettings, startEnforcement, type MfaSettingsInput } from '../mfa-settings.js';
import { describeRequest, stepUpGate, stepUpId, type StepUpGate } from '../step-up.js';
import { approvalDetails, quorumGate } from '../quorum-gate.js';

const Ident = z.string().min(1).max(255).regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces');
const Name = z.string().min(1).max(64).regex(/^[^\p{Cc}]+$/u, 'must not contain control characters');
const FactorView = z.strictObject({
  id: z.string(), principal: z.string(), kind: z.enum(['totp', 'webauthn', 'recovery']), name: z.string(), state: z.enum(['pending', 'active']),
  created: z.string(), last_used: z.string().nullable(), remaining: z.int().optional(),
});
/** How long a pending WebAuthn registration may be answered. */
const REGISTRATION_TTL_MS = 5 * 60_000;

function factorView(f: MfaFactorRow) {
  const data = f.data as { used?: unknown };
  return {
    id: f.id, principal: f.principal, kind: f.kind, name: f.name, state: f.state, created: f.created.toISOString(), last_used: f.lastUsed?.toISOString() ?? null,
    ...(f.kind === 'recovery' && Array.isArray(data.used) ? { remaining: data.used.filter((u) => u === false).length } : {}),
  };
}

export function mfaRoutes(app: App, input: MfaSettingsInput = {}): void {
  const { ctx } = app;
  setMfaSettings(ctx, resolveMfaSettings(input));
  const settings = () => mfaSettings(ctx);
  const now = () => settings().now();

  const base = (who: Principal, op: string, req: FastifyRequest, details: JsonObject = {}): Omit<AuditEventInput, 'outcome'> => ({
    ns: null, principal: who.id, auth: 'token', op, details: { ...details, client: { address: req.ip } },
  });

  /** Audits a refusal (outside any transaction) and rethrows it. */
  async function refused(ev: Omit<AuditEventInput, 'outcome'>, e: unknown): Promise<never> {
    const code = toHttpError(e).code;
    if (code !== 'KW_KEYHOLDER_UNAVAILABLE' && code !== 'KW_SEALED') {
      await ctx.audit.recordFailure({ ...ev, outcome: isMfaError(e) || code === 'KW_FORBIDDEN' || code === 'KW_BOOTSTRAP_ONLY' ? 'denied' : 'error', code });
    }
    throw e;
  }

  /**
   * The principal whose factors a request acts on: the caller, or — for the
   * bootstrap token only — a person it enrolled as administrator who has no
   * active factor yet. Services cannot hold factors.
   */
  async function targetOf(who: Principal, principal: string | undefined): Promise<PrincipalRow> {
    if (who.bootstrap) {
      const refuse = () => new ApiError('KW_BOOTSTRAP_ONLY', 'the initial admin token enrolls second factors only for administrators (people with an admin token) who have none yet: give their principal');
      if (principal === undefined) throw refuse();
      const p = await ctx.store.getPrincipal(principal);
      if (!p || p.kind !== 'person' || p.disabledAt !== null || isBootstrapPrincipal(p)) throw refuse();
      const t = await ctx.store.listTokens(p.id);
      const at = new Date();
      if (!t.some((x) => x.admin && x.revokedAt === null && x.expiresAt.getTime() > at.getTime())) throw refuse();
      if ((await ctx.store.listMfaFactors(p.id)).some(isActiveSecondFactor)) throw refuse();
      return p;
    }
    if (principal !== undefined && principal !== who.id) throw new ApiError('KW_FORBIDDEN', 'second factors are enrolled by their owner (or, before the first administrators have any, with the initial admin token)');
    const p = await ctx.store.getPrincipal(who.id);
    if (!p) throw new ApiError('KW_UNAUTHENTICATED');
    if (p.kind !== 'person') throw new ApiError('KW_INVALID_ARGUMENT', 'service principals cannot hold second factors; sensitive operations are for people');
    return p;
  }

  /** The gate of a factor route: a step-up when the target already has an active factor. */
  async function factorGate(req: FastifyRequest, who: Principal, target: PrincipalRow): Promise<StepUpGate | null> {
    const active = (await ctx.store.listMfaFactors(target.id)).some(isActiveSecondFactor);
    return stepUpGate(app, req, who, { factorTargetHasActive: active });
  }

  const checkLock = (principal: string): Promise<void> => checkLockout(ctx.store, principal, now());

  /** Counts a failed factor check (audited, in one transaction) and throws `e` (or KW_MFA_LOCKED if this one locked). */
  async function failed(ev: Omit<AuditEventInput, 'outcome'>, principal: string, e: MfaError): Promise<never> {
    const s = settings();
    const t = now();
    let locked = false;
    await ctx.audit.record({ ...ev, outcome: 'denied', code: e.code }, async (tx) => {
      locked = await countFailure(tx, principal, { maxFailures: s.maxFailures, lockoutSeconds: s.lockoutSeconds, now: t });
      return { result: undefined };
    });
    throw locked ? new MfaError('KW_MFA_LOCKED', `too many failed second-factor attempts; locked for ${s.lockoutSeconds} s`) : e;
  }

  const resetFailures = (tx: StoreTx, principal: string): Promise<void> => resetLockout(tx, principal, now());

  /** The keyholder's check of a TOTP code against a factor's sealed seed (mfa/answer.ts TotpCheck). */
  const totpCheck: TotpCheck = (f, code) => ctx.keyholder.call('totp-verify', { principal: f.principal, factor: f.id, sealed: b64u(f.secret), code, lastTimeStep: f.lastStep, time: now().toISOString() });

  /** Checks `code` against the TOTP factor `f` in the keyholder; the time step on success. */
  async function checkTotp(f: MfaFactorRow, code: string): Promise<{ ok: true; step: number } | { ok: false; code: MfaErrorCode }> {
    if (f.secret === null || !/^[0-9]{6}$/.test(code)) return { ok: false, code: 'KW_MFA_INVALID' };
    const r = await totpCheck(f as MfaFactorRow & { secret: Uint8Array }, code);
    if (r.ok && r.timeStep !== null) return { ok: true, step: r.timeStep };
    return { ok: false, code: r.reason === 'replay' ? 'KW_MFA_REPLAY' : 'KW_MFA_INVALID' };
  }

  // --- TOTP -----------------------------------------------------------------------------

  app.route({
    method: 'POST', url: '/v1/mfa/totp', summary: 'Enroll a TOTP factor: the otpauth URI and base32 seed are shown once; activate it with its first code', tag: 'mfa', auth: 'token', status: 201,
    body: z.strictObject({ name: Name.optional(), principal: Ident.optional() }),
    response: z.strictObject({ id: z.string(), principal: z.string(), kind: z.literal('totp'), name: z.string(), state: z.literal('pending'), otpauth_uri: z.string(), secret_base32: z.string() }),
  }, async ({ body, req }) => {
    const who = await app.principal(req);
    const id = newId('mfa_');
    const ev = base(who, 'mfa.enroll', req, { factor: id, kind: 'totp', ...(body.principal !== undefined ? { for: body.principal } : {}) });
    try {
      const target = await targetOf(who, body.principal);
      const gate = await factorGate(req, who, target);
      const name = body.name ?? 'authenticator app';
      const t = await ctx.keyholder.call('totp-new', { principal: target.id, factor: id });
      await ctx.audit.record({ ...ev, outcome: 'allowed', request: gate?.requestHex ?? null, details: { ...ev.details, for: target.id } }, async (tx) => {
        await gate?.consume(tx);
        await tx.addMfaFactor({ id, principal: target.id, kind: 'totp', name, state: 'pending', secret: unb64u(t.sealed), data: { digits: 6, period: 30, algorithm: 'SHA1' }, created: now() });
        return { result: undefined };
      });
      return { id, principal: target.id, kind: 'totp' as const, name, state: 'pending' as const, otpauth_uri: totpUri(t.base32, settings().issuer, target.name), secret_base32: t.base32 };
    } catch (e) {
      return refused(ev, e);
    }
  });

  app.route({
    method: 'POST', url: '/v1/mfa/totp/:id/activate', summary: 'Activate a pending TOTP factor with its first valid code', tag: 'mfa', auth: 'token',
    params: z.strictObject({ id: Ident }), body: z.strictObject({ code: z.string().max(16), principal: Ident.optional() }), response: FactorView,
  }, async ({ params, body, req }) => {
    const who = await app.principal(req);
    const ev = base(who, 'mfa.activate', req, { factor: params.id, kind: 'totp' });
    let target: PrincipalRow;
    let f: MfaFactorRow | null;
    try {
      target = await targetOf(who, body.principal);
      f = await ctx.store.getMfaFactor(params.id);
      if (!f || f.principal !== target.id || f.kind !== 'totp') throw new ApiError('KW_NOT_FOUND', `no TOTP factor ${params.id}`);
      if (f.state !== 'pending') throw new ApiError('KW_INVALID_ARGUMENT', `factor ${params.id} is already active`);
      await checkLock(target.id);
    } catch (e) {
      return refused(ev, e);
    }
    const r = await checkTotp(f, body.code).catch((e: unknown) => refused(ev, e));
    if (!r.ok) return failed(ev, target.id, new MfaError(r.code));
    const row = await ctx.audit.record({ ...ev, outcome: 'allowed', details: { ...ev.details, for: target.id } }, async (tx) => {
      const active = await tx.updateMfaFactor(f.id, { state: 'active', lastStep: r.step, lastUsed: now() }, { lastStep: f.lastStep });
      await resetFailures(tx, target.id);
      await startEnforcement(tx, now());
      return { result: active };
    });
    return factorView(row);
  });

  // --- WebAuthn ---------------------------------------------------------------------------

  app.route({
    method: 'POST', url: '/v1/mfa/webauthn/options', summary: 'Start enrolling a WebAuthn credential (passkey): registration options to pass to navigator.credentials.create', tag: 'mfa', auth: 'token', status: 201,
    body: z.strictObject({ name: Name.optional(), principal: Ident.optional() }),
    response: z.strictObject({ id: z.string(), options: z.record(z.string(), z.unknown()) }),
  }, async ({ body, req }) => {
    const who = await app.principal(req);
    const id = newId('mfa_');
    const ev = base(who, 'mfa.enroll', req, { factor: id, kind: 'webauthn' });
    try {
      const target = await targetOf(who, body.principal);
      const gate = await factorGate(req, who, target);
      const existing = (await ctx.store.listMfaFactors(target.id)).map(credentialOf).filter((c): c is StoredCredential => c !== null);
      const options = await registrationOptions(settings().rp, { id: target.id, name: target.name }, existing);
      await ctx.audit.record({ ...ev, outcome: 'allowed', request: gate?.requestHex ?? null, details: { ...ev.details, for: target.id } }, async (tx) => {
        await gate?.consume(tx);
        await tx.addMfaFactor({
          id, principal: target.id, kind: 'webauthn', name: body.name ?? 'security key', state: 'pending', secret: null,
          data: { challenge: options.challenge, expires: now().getTime() + REGISTRATION_TTL_MS }, created: now(),
        });
        return { result: undefined };
      });
      return { id, options: options as unknown as Record<string, unknown> };
    } catch (e) {
      return refused(ev, e);
    }
  });

  app.route({
    method: 'POST', url: '/v1/mfa/webauthn/:id', summary: 'Finish enrolling a WebAuthn credential with the authenticator\'s registration response', tag: 'mfa', auth: 'token',
    params: z.strictObject({ id: Ident }), body: z.strictObject({ response: z.record(z.string(), z.unknown()), principal: Ident.optional() }), response: FactorView,
  }, async ({ params, body, req }) => {
    const who = await app.principal(req);
    const ev = base(who, 'mfa.activate', req, { factor: params.id, kind: 'webauthn' });
    let target: PrincipalRow;
    let f: MfaFactorRow | null;
    let challenge: string;
    try {
      target = await targetOf(who, body.principal);
      f = await ctx.store.getMfaFactor(params.id);
      if (!f || f.principal !== target.id || f.kind !== 'webauthn') throw new ApiError('KW_NOT_FOUND', `no WebAuthn factor ${params.id}`);
      if (f.state !== 'pending') throw new ApiError('KW_INVALID_ARGUMENT', `factor ${params.id} is already active`);
      const d = f.data as { challenge?: unknown; expires?: unknown };
      if (typeof d.challenge !== 'string' || typeof d.expires !== 'number') throw new ApiError('KW_NOT_FOUND', `no WebAuthn factor ${params.id}`);
      if (d.expires < now().getTime()) throw new MfaError('KW_STEP_UP_EXPIRED', 'the registration options expired; start again');
      challenge = d.challenge;
      await checkLock(target.id);
    } catch (e) {
      return refused(ev, e);
    }
    let cred: StoredCredential;
    try {
      cred = await verifyRegistration(settings().rp, body.response as never, challenge);
    } catch (e) {
      if (isMfaError(e)) return failed(ev, target.id, e);
      return refused(ev, e);
    }
    const row = await ctx.audit.record({ ...ev, outcome: 'allowed', details: { ...ev.details, for: target.id, fmt: cred.fmt } }, async (tx) => {
      const active = await tx.updateMfaFactor(f.id, {
        state: 'active', secret: cred.publicKey, counter: cred.counter,
        data: { credentialId: cred.id, transports: [...cred.transports], fmt: cred.fmt, aaguid: cred.aaguid }, lastUsed: now(),
      }, { data: f.data });
      await resetFailures(tx, target.id);
      await startEnforcement(tx, now());
      return { result: active };
    });
    return factorView(row);
  });

  // --- recovery codes, list, remove -------------------------------------------------------

  app.route({
    method: 'POST', url: '/v1/mfa/recovery-codes', summary: 'Make a new set of one-time recovery codes (shown once; replaces the previous set)', tag: 'mfa', auth: 'token', status: 201,
    body: z.strictObject({}), response: z.strictObject({ id: z.string(), codes: z.array(z.string()) }),
  }, async ({ req }) => {
    const who = await app.principal(req);
    const id = newId('mfa_');
    const ev = base(who, 'mfa.recovery_codes', req, { factor: id, kind: 'recovery', count: RECOVERY_CODE_COUNT });
    try {
      const target = await targetOf(who, undefined);
      const factors = await ctx.store.listMfaFactors(target.id);
      if (!factors.some(isActiveSecondFactor)) throw new MfaError('KW_MFA_REQUIRED', 'recovery codes back up a second factor: enroll and activate TOTP or WebAuthn first');
      const gate = await factorGate(req, who, target);
      const { codes, stored } = newRecoveryCodes();
      await ctx.audit.record({ ...ev, outcome: 'allowed', request: gate?.requestHex ?? null }, async (tx) => {
        await gate?.consume(tx);
        for (const old of await tx.listMfaFactors(target.id)) if (old.kind === 'recovery') await tx.removeMfaFactor(old.id);
        await tx.addMfaFactor({ id, principal: target.id, kind: 'recovery', name: 'recovery codes', state: 'active', secret: null, data: recoveryData(stored), created: now() });
        return { result: undefined };
      });
      return { id, codes };
    } catch (e) {
      return refused(ev, e);
    }
  });

  app.route({
    method: 'GET', url: '/v1/mfa/factors', summary: "List second factors: the caller's own, or (admin) another principal's with ?principal=", tag: 'mfa', auth: 'token',
    query: z.strictObject({ principal: Ident.optional() }), response: z.strictObject({ factors: z.array(FactorView) }),
  }, async ({ query, req }) => {
    const who = await app.principal(req);
    const principal = query.principal ?? who.id;
    const ev = base(who, 'mfa.read', req, { principal_id: principal });
    if (principal !== who.id && !who.admin) return refused(ev, new ApiError('KW_NOT_FOUND', `no principal ${principal}`));
    const factors = await ctx.store.listMfaFactors(principal);
    await ctx.audit.recordOp({ ...ev, outcome: 'allowed', details: { ...ev.details, count: factors.length } });
    return { factors: factors.map(factorView) };
  });

  app.route({
    method: 'DELETE', url: '/v1/mfa/factors/:id', summary: 'Remove a second factor (needs a step-up; an administrator may remove another person\'s, e.g. a lost device)', tag: 'mfa', auth: 'token',
    params: z.strictObject({ id: Ident }), response: z.strictObject({ id: z.string(), principal: z.string(), removed: z.literal(true) }),
  }, async ({ params, req }) => {
    const who = await app.principal(req);
    const ev = base(who, 'mfa.remove', req, { factor: params.id });
    try {
      const f = await ctx.store.getMfaFactor(params.id);
      // Another principal's factor is "not found" to a non-admin (no oracle).
      if (!f || (f.principal !== who.id && !who.admin)) throw new ApiError('KW_NOT_FOUND', `no factor ${params.id}`);
      // The caller steps up with their own factors: always needed when they have one (and, removing someone else's, once MFA is enforced).
      const own = (await ctx.store.listMfaFactors(who.id)).some(isActiveSecondFactor);
      const gate = await stepUpGate(app, req, who, { factorTargetHasActive: own || f.principal !== who.id });
      // With a quorum rule for mfa.remove, an approved approval request too (quorum-gate.ts).
      const quorum = await quorumGate(app, req, who);
      await ctx.audit.record({ ...ev, outcome: 'allowed', request: quorum?.requestHex ?? gate?.requestHex ?? null, details: { ...ev.details, kind: f.kind, for: f.principal, ...(quorum ? approvalDetails(quorum) : {}) } }, async (tx) => {
        await gate?.consume(tx);
        await quorum?.consume(tx);
        await tx.removeMfaFactor(f.id);
        return { result: undefined };
      });
      return { id: f.id, principal: f.principal, removed: true as const };
    } catch (e) {
      return refused(ev, e);
    }
  });

  // --- step-up ------------------------------------------------------------------------------

  app.route({
    method: 'POST', url: '/v1/mfa/step-up', summary: 'Request a step-up for one sensitive request: its id (the request hash), the canonical request to show, and WebAuthn options whose challenge is the hash', tag: 'mfa', auth: 'token', status: 201,
    body: z.strictObject({ method: z.enum(['GET', 'POST', 'PUT', 'DELETE']), path: z.string().min(1).max(2048).regex(/^\/v1\//, 'path starts with /v1/'), body: z.unknown().optional() }),
    response: z.strictObject({
      id: z.string(), request: z.record(z.string(), z.unknown()), expires_at: z.string(), operation: z.string(),
      factors: z.array(z.strictObject({ id: z.string(), kind: z.string(), name: z.string() })), webauthn: z.record(z.string(), z.unknown()).nullable(),
    }),
  }, async ({ body, req }) => {
    const who = await app.principal(req);
    const ev = base(who, 'mfa.step_up', req, {});
    try {
      const d = describeRequest(body.method, body.path, body.body);
      if (!d) throw new ApiError('KW_INVALID_ARGUMENT', `${body.method} ${body.path.slice(0, 200)} is not a sensitive request: it needs no step-up`);
      const p = await ctx.store.getPrincipal(who.id);
      if (!p || p.kind !== 'person' || who.bootstrap) throw new MfaError('KW_MFA_REQUIRED', 'only people with a second factor can step up; service principals and the initial admin token cannot');
      const factors = (await ctx.store.listMfaFactors(who.id)).filter((f) => f.state === 'active');
      if (!factors.some(isActiveSecondFactor)) throw new MfaError('KW_MFA_REQUIRED', 'no active second factor: enroll one first (keyward mfa enroll totp)');
      const t = now();
      let expiresAt = Math.floor(t.getTime() / 1000) + settings().stepUpTtlSeconds;
      let id = stepUpId(d.request, expiresAt);
      // The same request asked twice in one second has one id: hand the unused one back, else move the expiry by a second.
      for (let i = 0; ; i++) {
        const existing = await ctx.store.getStepUp(id);
        if (!existing) break;
        if (existing.principal === who.id && existing.verifiedAt === null) break;
        if (i >= 30) throw new ApiError('KW_RATE_LIMITED', 'too many step-ups for the same request');
        expiresAt += 1;
        id = stepUpId(d.request, expiresAt);
      }
      const request = canonicalRequest({ ...d.request, expiresAt });
      const creds = factors.map(credentialOf).filter((c): c is StoredCredential => c !== null);
      const hash = Buffer.from(id, 'base64url');
      await ctx.audit.record({ ...ev, outcome: 'allowed', request: hash.toString('hex'), details: { ...ev.details, step_up: id, operation: d.match.op } }, async (tx) => {
        if (!(await tx.getStepUp(id))) await tx.createStepUp({ id, principal: who.id, request: JSON.stringify(request), created: t, expiresAt: new Date(expiresAt * 1000) });
        return { result: undefined };
      });
      return {
        id, request: request as Record<string, unknown>, expires_at: new Date(expiresAt * 1000).toISOString(), operation: d.match.op,
        factors: factors.map((f) => ({ id: f.id, kind: f.kind, name: f.name })),
        webauthn: creds.length > 0 ? (stepUpOptions(settings().rp, creds, hash) as unknown as Record<string, unknown>) : null,
      };
    } catch (e) {
      return refused(ev, e);
    }
  });

  app.route({
    method: 'POST', url: '/v1/mfa/step-up/:id/verify', summary: 'Answer a step-up with a TOTP code, a WebAuthn assertion over the request hash, or a recovery code', tag: 'mfa', auth: 'token',
    params: z.strictObject({ id: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'a step-up id is 43 base64url characters') }),
    body: z.strictObject({ factor: Ident.optional(), code: z.string().max(16).optional(), recovery_code: z.string().max(64).optional(), webauthn: z.record(z.string(), z.unknown()).optional() })
      .refine((b) => [b.code, b.recovery_code, b.webauthn].filter((x) => x !== undefined).length === 1, 'give exactly one of code, recovery_code, webauthn'),
    response: z.strictObject({ id: z.string(), verified: z.literal(true), factor: z.string(), kind: z.string(), expires_at: z.string() }),
  }, async ({ params, body, req }) => {
    const who = await app.principal(req);
    const kind = body.code !== undefined ? 'totp' : body.recovery_code !== undefined ? 'recovery' : 'webauthn';
    const ev = { ...base(who, 'mfa.step_up_verify', req, { step_up: params.id, kind }), request: Buffer.from(params.id, 'base64url').toString('hex') };
    let factors: MfaFactorRow[];
    try {
      const row = await ctx.store.getStepUp(params.id);
      if (!row || row.principal !== who.id) throw new ApiError('KW_NOT_FOUND', 'no step-up of yours has this id');
      if (row.verifiedAt !== null) throw new MfaError('KW_MFA_REPLAY', 'this step-up was already verified');
      if (now().getTime() > row.expiresAt.getTime()) throw new MfaError('KW_STEP_UP_EXPIRED');
      await checkLock(who.id);
      factors = (await ctx.store.listMfaFactors(who.id)).filter((f) => f.state === 'active' && f.kind === kind && (body.factor === undefined || f.id === body.factor));
    } catch (e) {
      return refused(ev, e);
    }
    // Find the factor that verifies, and what to write for it (compare-and-set on what was read): mfa/answer.ts.
    const m = await matchFactorAnswer({
      factors, answer: { code: body.code, webauthn: body.webauthn, recovery_code: body.recovery_code }, hash: Buffer.from(params.id, 'base64url'),
      rp: settings().rp, now: now(), totp: totpCheck,
    }).catch((e: unknown) => refused(ev, e));
    if (!m.ok) return failed(ev, who.id, new MfaError(m.code));
    const u = { f: m.match.factor, patch: m.match.patch, expect: m.match.expect };
    try {
      const row = await ctx.audit.record({ ...ev, outcome: 'allowed', details: { ...ev.details, factor: u.f.id } }, async (tx) => {
        await tx.updateMfaFactor(u.f.id, u.patch, u.expect);
        await resetFailures(tx, who.id);
        return { result: await tx.markStepUpVerified(params.id, { factor: u.f.id, at: now() }) };
      });
      return { id: row.id, verified: true as const, factor: u.f.id, kind: u.f.kind, expires_at: row.expiresAt.toISOString() };
    } catch (e) {
      // A concurrent use of the same code or step-up: one wins, the other is a replay.
      if ((e as { code?: unknown }).code === 'KW_STORE_CONFLICT') return refused(ev, new MfaError('KW_MFA_REPLAY'));
      return refused(ev, e);
    }
  });
}
