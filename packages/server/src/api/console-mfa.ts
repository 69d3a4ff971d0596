/**
 * The console's second factor at sign-in (docs/console.md §Second factor at
 * sign-in). A person with an active WebAuthn or TOTP factor signs in in two
 * steps:
 *
 * 1. `POST /v1/console/session { token }` → 200 `{ second_factor: { id,
 *    request, expires_at, factors, webauthn } }` and no cookie. `request` is
 *    the canonical sign-in challenge `{ v: "keyward/v1 console-signin",
 *    principal, token, nonce, expiresAt }` (the signing-in token's id and a
 *    fresh 128-bit nonce); `id` = base64url(SHA-256(RFC 8785 of it)) is the
 *    WebAuthn challenge. It is stored like a step-up (same table, same
 *    lifetime), but its hash is never that of an API request, so it cannot
 *    authorise one.
 * 2. `POST /v1/console/session { token, second_factor: { id, webauthn | code } }`:
 *    the same token again, with an assertion over `id` (or a TOTP code). The
 *    challenge must be this token's, unexpired and unused; in one transaction
 *    the factor's counter / time step moves, the challenge is marked used
 *    (compare-and-set: a replay is KW_MFA_REPLAY) and the session is written.
 *
 * Failures count against the principal's MFA lockout exactly like a step-up
 * (KW_MFA_INVALID, then KW_MFA_LOCKED), and are audited (`sessions.create`
 * denied with the code).
 */
import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { canonicalJsonBytes } from '../audit/canonical-json.js';
import { checkLockout, countFailure, matchFactorAnswer, resetFailures } from '../mfa/answer.js';
import { MfaError } from '../mfa/errors.js';
import { credentialOf, isActiveSecondFactor } from '../mfa/factors.js';
import { stepUpOptions, type StoredCredential } from '../mfa/webauthn.js';
import type { MfaFactorRow, StoreTx } from '../store/index.js';
import type { ApiContext } from './app.js';
import { b64u } from './audit-pipe.js';
import { mfaSettings } from './mfa-settings.js';

/** The label of a console sign-in challenge (never a `keyward/v1 request`). */
export const SIGNIN_CHALLENGE_LABEL = 'keyward/v1 console-signin';

export const SecondFactorAnswer = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'a sign-in challenge id is 43 base64url characters'),
  webauthn: z.record(z.string(), z.unknown()).optional(),
  code: z.string().max(16).optional(),
}).refine((b) => (b.webauthn === undefined) !== (b.code === undefined), 'give exactly one of webauthn, code');
export type SecondFactorAnswer = z.infer<typeof SecondFactorAnswer>;

export const SecondFactorChallengeView = z.strictObject({
  second_factor: z.strictObject({
    id: z.string(), request: z.record(z.string(), z.unknown()), expires_at: z.string(),
    factors: z.array(z.strictObject({ id: z.string(), kind: z.string(), name: z.string() })),
    webauthn: z.record(z.string(), z.unknown()).nullable(),
  }),
});

/** The principal's active second factors (WebAuthn, TOTP); empty: no second step at sign-in. */
export async function activeSecondFactors(ctx: ApiContext, principal: string): Promise<MfaFactorRow[]> {
  return (await ctx.store.listMfaFactors(principal)).filter(isActiveSecondFactor);
}

/** Step 1: a fresh sign-in challenge for this principal and token, written with `tx` (the caller audits it). */
export async function newSignInChallenge(ctx: ApiContext, tx: Pick<StoreTx, 'createStepUp'>, principal: string, tokenId: string, factors: readonly MfaFactorRow[]) {
  const s = mfaSettings(ctx);
  const t = s.now();
  const expiresAt = Math.floor(t.getTime() / 1000) + s.stepUpTtlSeconds;
  const request = { v: SIGNIN_CHALLENGE_LABEL, principal, token: tokenId, nonce: randomBytes(16).toString('base64url'), expiresAt };
  const hash = createHash('sha256').update(canonicalJsonBytes(request)).digest();
  const id = hash.toString('base64url');
  await tx.createStepUp({ id, principal, request: JSON.stringify(request), created: t, expiresAt: new Date(expiresAt * 1000) });
  const creds = factors.map(credentialOf).filter((c): c is StoredCredential => c !== null);
  return {
    second_factor: {
      id, request, expires_at: new Date(expiresAt * 1000).toISOString(),
      factors: factors.map((f) => ({ id: f.id, kind: f.kind, name: f.name })),
      webauthn: creds.length > 0 ? (stepUpOptions(s.rp, creds, new Uint8Array(hash)) as unknown as Record<string, unknown>) : null,
    },
  };
}

/** What a verified answer writes, inside the session's transaction. */
export interface VerifiedSecondFactor {
  readonly factor: MfaFactorRow;
  /** Moves the factor's counter / time step, marks the challenge used, resets the failure count (compare-and-set). */
  commit(tx: StoreTx): Promise<void>;
}

/**
 * Step 2: checks an answer to a challenge of `principal` made for `tokenId`.
 * Throws MfaError: KW_MFA_REQUIRED (unknown / another token's challenge),
 * KW_MFA_REPLAY (used), KW_STEP_UP_EXPIRED, KW_MFA_LOCKED; and, counted
 * against the lockout by {@link recordSecondFactorFailure}, KW_MFA_INVALID.
 */
export async function checkSecondFactor(ctx: ApiContext, principal: string, tokenId: string, answer: SecondFactorAnswer): Promise<VerifiedSecondFactor> {
  const s = mfaSettings(ctx);
  const row = await ctx.store.getStepUp(answer.id);
  let req: { v?: unknown; token?: unknown } = {};
  try { req = row ? (JSON.parse(row.request) as typeof req) : {}; } catch { /* not ours */ }
  if (!row || row.principal !== principal || req.v !== SIGNIN_CHALLENGE_LABEL || req.token !== tokenId) {
    throw new MfaError('KW_MFA_REQUIRED', 'no sign-in challenge of this token has this id: start again');
  }
  if (row.verifiedAt !== null) throw new MfaError('KW_MFA_REPLAY', 'this sign-in challenge was already answered');
  if (s.now().getTime() > row.expiresAt.getTime()) throw new MfaError('KW_STEP_UP_EXPIRED', 'the sign-in challenge expired: start again');
  await checkLockout(ctx.store, principal, s.now());
  // The same matching as a step-up (mfa/answer.ts), over the sign-in challenge's hash.
  const m = await matchFactorAnswer({
    factors: await activeSecondFactors(ctx, principal), answer: { code: answer.code, webauthn: answer.webauthn }, hash: Buffer.from(answer.id, 'base64url'),
    rp: s.rp, now: s.now(),
    totp: (f, code) => ctx.keyholder.call('totp-verify', { principal, factor: f.id, sealed: b64u(f.secret), code, lastTimeStep: f.lastStep, time: s.now().toISOString() }),
  });
  if (!m.ok) throw new MfaError(m.code === 'KW_STEP_UP_MISMATCH' ? 'KW_MFA_INVALID' : m.code, m.code === 'KW_MFA_REPLAY' ? undefined : 'the second factor did not verify');
  const { factor, patch, expect } = m.match;
  return {
    factor,
    async commit(tx) {
      await tx.updateMfaFactor(factor.id, patch, expect);
      await resetFailures(tx, principal, s.now());
      await tx.markStepUpVerified(answer.id, { factor: factor.id, at: s.now() });
    },
  };
}

/** Counts a failed answer against the principal's lockout (in `tx`); true when this failure locked the factors. */
export async function recordSecondFactorFailure(ctx: ApiContext, tx: StoreTx, principal: string): Promise<boolean> {
  const s = mfaSettings(ctx);
  return countFailure(tx, principal, { maxFailures: s.maxFailures, lockoutSeconds: s.lockoutSeconds, now: s.now() });
}
