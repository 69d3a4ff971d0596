/**
 * Checking a person's answer to a second-factor challenge, and the lockout
 * around it — one implementation for the step-up (`POST
 * /v1/mfa/step-up/{id}/verify`, api/routes/mfa.ts) and the console's
 * sign-in (api/console-mfa.ts), so both match answers and count failures
 * alike (docs/mfa.md §Lockout and rate limits).
 *
 * {@link matchFactorAnswer} finds the factor that verifies the answer over
 * the challenge hash and says what to write for it (compare-and-set on what
 * was read); it writes nothing. {@link checkLockout}, {@link countFailure}
 * and {@link resetFailures} are the per-principal lockout.
 *
 * @example
 * await checkLockout(store, principal, now);
 * const m = await matchFactorAnswer({ factors, answer: { code: '123456' }, hash, rp, now, totp });
 * if (!m.ok) { const locked = await countFailure(tx, principal, limits); … }
 */
import type { MfaFactorRow, Store, StoreTx } from '../store/index.js';
import { MfaError, isMfaError, type MfaErrorCode } from './errors.js';
import { credentialOf } from './factors.js';
import { markRecoveryCodeUsed, matchRecoveryCode, type StoredRecoveryCodes } from './recovery.js';
import { verifyStepUp, type RelyingParty } from './webauthn.js';

/** Exactly one of a TOTP code, a WebAuthn assertion (over the challenge hash) or a recovery code. */
export interface FactorAnswer {
  readonly code?: string | undefined;
  readonly webauthn?: Record<string, unknown> | undefined;
  readonly recovery_code?: string | undefined;
}

/** The keyholder's TOTP check (`totp-verify`) of `code` against the sealed seed of `f`. */
export type TotpCheck = (f: MfaFactorRow & { secret: Uint8Array }, code: string) => Promise<{ ok: boolean; timeStep: number | null; reason: 'malformed' | 'wrong' | 'replay' | null }>;

/** The factor that verified, and the write that spends the answer (compare-and-set on `expect`). */
export interface FactorMatch {
  readonly factor: MfaFactorRow;
  readonly patch: Parameters<StoreTx['updateMfaFactor']>[1];
  readonly expect: Parameters<StoreTx['updateMfaFactor']>[2];
}

/** A recovery-code factor's stored hashes, or null for any other row. */
export function recoveryOf(f: MfaFactorRow): StoredRecoveryCodes | null {
  const d = f.data as { salt?: unknown; hashes?: unknown; used?: unknown };
  if (f.kind !== 'recovery' || typeof d.salt !== 'string' || !Array.isArray(d.hashes) || !Array.isArray(d.used)) return null;
  return { salt: d.salt, hashes: d.hashes.filter((h): h is string => typeof h === 'string'), used: d.used.map((u) => u === true) };
}

/** Recovery codes as stored in a factor row's `data`. */
export function recoveryData(r: StoredRecoveryCodes): { salt: string; hashes: string[]; used: boolean[] } {
  return { salt: r.salt, hashes: [...r.hashes], used: [...r.used] };
}

/**
 * Finds the active factor among `factors` that verifies `answer` over
 * `hash` (the challenge: a request hash or a sign-in challenge). Either the
 * match, or the code of the failure: KW_MFA_INVALID (wrong, malformed, no
 * such factor), KW_MFA_REPLAY (a TOTP step already used, a WebAuthn counter
 * that did not advance), or the WebAuthn check's own code. Writes nothing;
 * throws only on an internal failure (the keyholder unreachable, say).
 */
export async function matchFactorAnswer(opts: {
  readonly factors: readonly MfaFactorRow[]; readonly answer: FactorAnswer; readonly hash: Uint8Array;
  readonly rp: RelyingParty; readonly now: Date; readonly totp: TotpCheck;
}): Promise<{ ok: true; match: FactorMatch } | { ok: false; code: MfaErrorCode }> {
  const { answer, now } = opts;
  const active = opts.factors.filter((f) => f.state === 'active');
  let failure: MfaErrorCode = 'KW_MFA_INVALID';
  if (answer.code !== undefined) {
    if (!/^[0-9]{6}$/.test(answer.code)) return { ok: false, code: 'KW_MFA_INVALID' };
    for (const f of active) {
      if (f.kind !== 'totp' || f.secret === null) continue;
      const r = await opts.totp(f as MfaFactorRow & { secret: Uint8Array }, answer.code);
      if (r.ok && r.timeStep !== null) return { ok: true, match: { factor: f, patch: { lastStep: r.timeStep, lastUsed: now }, expect: { lastStep: f.lastStep } } };
      if (r.reason === 'replay') failure = 'KW_MFA_REPLAY';
    }
  } else if (answer.recovery_code !== undefined) {
    for (const f of active) {
      const stored = recoveryOf(f);
      const i = stored ? matchRecoveryCode(stored, answer.recovery_code) : -1;
      if (stored && i >= 0) return { ok: true, match: { factor: f, patch: { data: recoveryData(markRecoveryCodeUsed(stored, i)), lastUsed: now }, expect: { data: f.data } } };
    }
  } else if (answer.webauthn !== undefined) {
    const f = active.find((x) => credentialOf(x)?.id === (answer.webauthn as { id?: unknown }).id);
    if (f) {
      try {
        const { newCounter } = await verifyStepUp(opts.rp, answer.webauthn as never, credentialOf(f)!, opts.hash);
        return { ok: true, match: { factor: f, patch: { counter: newCounter, lastUsed: now }, expect: { counter: f.counter } } };
      } catch (e) {
        if (!isMfaError(e)) throw e;
        failure = e.code;
      }
    }
  }
  return { ok: false, code: failure };
}

/** KW_MFA_LOCKED while the principal's factors are locked. */
export async function checkLockout(store: Pick<Store, 'getMfaLockout'>, principal: string, now: Date): Promise<void> {
  const l = await store.getMfaLockout(principal);
  if (l?.lockedUntil && l.lockedUntil.getTime() > now.getTime()) throw new MfaError('KW_MFA_LOCKED', `too many failed second-factor attempts; locked until ${l.lockedUntil.toISOString()}`);
}

/** Counts a failed answer (in `tx`); true when this failure locked the factors (`maxFailures` in a row → `lockoutSeconds`). */
export async function countFailure(tx: StoreTx, principal: string, limits: { readonly maxFailures: number; readonly lockoutSeconds: number; readonly now: Date }): Promise<boolean> {
  const l = await tx.getMfaLockout(principal);
  const failures = (l?.failures ?? 0) + 1;
  const locked = failures >= limits.maxFailures;
  await tx.setMfaLockout({ principal, failures: locked ? 0 : failures, lockedUntil: locked ? new Date(limits.now.getTime() + limits.lockoutSeconds * 1000) : null, updated: limits.now });
  return locked;
}

/** A success clears the count (in `tx`). */
export async function resetFailures(tx: StoreTx, principal: string, now: Date): Promise<void> {
  const l = await tx.getMfaLockout(principal);
  if (l && (l.failures > 0 || l.lockedUntil !== null)) await tx.setMfaLockout({ principal, failures: 0, lockedUntil: null, updated: now });
}
