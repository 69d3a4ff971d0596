/**
 * MFA settings of a running server (server config `mfa`, issue #7) and the
 * one fact every node reads from the store: whether step-up is enforced.
 *
 * Enforcement starts for the whole deployment when the first second factor
 * (TOTP or WebAuthn) is activated — store meta `mfa.enforced_since`, written
 * in the same transaction as that activation and never removed — or from the
 * start with `requireStepUp: true`. The same moment expires the bootstrap
 * token (bootstrap.ts). Before it, nobody can step up, so nothing is asked.
 */
import { z } from 'zod';
import type { Store, StoreTx } from '../store/index.js';
import type { ApiContext } from './app.js';

/** The store meta key holding the ISO time enforcement started. */
export const MFA_ENFORCED_META = 'mfa.enforced_since';

export const MfaSettingsSchema = z.strictObject({
  /** WebAuthn relying party id (the console's host name). */
  rpId: z.string().min(1).max(253).optional(),
  rpName: z.string().min(1).max(64).optional(),
  /** Origins WebAuthn assertions may come from (the console's). */
  origins: z.array(z.string().url()).min(1).max(16).optional(),
  /** The issuer shown in authenticator apps (otpauth URI). */
  issuer: z.string().min(1).max(64).optional(),
  /** How long a step-up may be used after it is requested, seconds (default 300). */
  stepUpTtlSeconds: z.int().min(30).max(3600).optional(),
  /** How long a quorum approval request waits for its approvers, seconds (default 86400). */
  approvalTtlSeconds: z.int().min(60).max(30 * 86_400).optional(),
  /** How often the server closes expired approval requests (audited `approvals.expire`), ms (default 10000). */
  approvalSweepMs: z.int().min(100).max(3_600_000).optional(),
  /** Failed factor attempts in a row before a principal's factors lock (default 5). */
  maxFailures: z.int().min(1).max(100).optional(),
  /** How long a lock lasts, seconds (default 900). */
  lockoutSeconds: z.int().min(1).max(86_400).optional(),
  /** Enforce step-up for people from the start, before any factor exists (default false: from the first activated factor). */
  requireStepUp: z.boolean().optional(),
  /** The MFA clock (programmatic only; tests): step-up expiry and the time TOTP codes are checked at. */
  clock: z.custom<() => Date>((v) => typeof v === 'function', 'clock must be a function returning a Date').optional(),
});
export type MfaSettingsInput = z.input<typeof MfaSettingsSchema>;

export interface MfaSettings {
  readonly rp: { readonly id: string; readonly name: string; readonly origins: readonly string[] };
  readonly issuer: string;
  readonly stepUpTtlSeconds: number;
  readonly approvalTtlSeconds: number;
  readonly approvalSweepMs: number;
  readonly maxFailures: number;
  readonly lockoutSeconds: number;
  readonly requireStepUp: boolean;
  readonly now: () => Date;
}

export function resolveMfaSettings(input: MfaSettingsInput = {}): MfaSettings {
  const rpId = input.rpId ?? 'localhost';
  return {
    rp: { id: rpId, name: input.rpName ?? 'Keyward', origins: input.origins ?? [`https://${rpId}`] },
    issuer: input.issuer ?? 'Keyward',
    stepUpTtlSeconds: input.stepUpTtlSeconds ?? 300,
    approvalTtlSeconds: input.approvalTtlSeconds ?? 86_400,
    approvalSweepMs: input.approvalSweepMs ?? 10_000,
    maxFailures: input.maxFailures ?? 5,
    lockoutSeconds: input.lockoutSeconds ?? 900,
    requireStepUp: input.requireStepUp ?? false,
    now: input.clock ?? (() => new Date()),
  };
}

const SETTINGS = new WeakMap<object, MfaSettings>();

/** Attaches the settings to a server's context (routes/mfa.ts does it when the routes are added). */
export function setMfaSettings(ctx: ApiContext, s: MfaSettings): void {
  SETTINGS.set(ctx, s);
}

/** The settings of this server (defaults if none were attached). */
export function mfaSettings(ctx: ApiContext): MfaSettings {
  let s = SETTINGS.get(ctx);
  if (!s) {
    s = resolveMfaSettings();
    SETTINGS.set(ctx, s);
  }
  return s;
}

/** True once step-up is enforced for people (see the module comment). */
export async function mfaEnforced(ctx: ApiContext): Promise<boolean> {
  return mfaSettings(ctx).requireStepUp || (await mfaEnforcedInStore(ctx.store));
}

/** True once the first factor was activated in this deployment (every node agrees: it is in the store). */
export async function mfaEnforcedInStore(store: Pick<Store, 'getMeta'>): Promise<boolean> {
  return (await store.getMeta(MFA_ENFORCED_META)) !== null;
}

/** Inside the activating transaction: starts enforcement if it has not started. */
export async function startEnforcement(tx: StoreTx, at: Date): Promise<void> {
  if ((await tx.getMeta(MFA_ENFORCED_META)) === null) await tx.setMeta(MFA_ENFORCED_META, at.toISOString());
}
