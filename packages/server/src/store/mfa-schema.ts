/**
 * Rows and inputs of the MFA part of the store (issue #7): second factors,
 * the per-principal failure counter (lockout) and step-up records. Same
 * conventions as `schema.ts`: inputs are checked (`KW_STORE_INVALID_ARGUMENT`),
 * every row read is validated (`KW_STORE_CORRUPT_ROW`), times are integer
 * milliseconds as stored, JSON is TEXT.
 *
 * Nothing secret is stored in the clear: a TOTP factor's `secret` is its
 * seed sealed by the keyholder (purpose `totp-seed`), a WebAuthn factor's is
 * its COSE public key, a recovery-code set keeps salted SHA-256 hashes only
 * (in `data`).
 */
import { z } from 'zod';
import { BytesSchema, DisplayNameSchema, IdentifierSchema, JsonValueSchema, MAX_BLOB_BYTES, MAX_TEXT_LENGTH, TimeSchema, type JsonValue } from './schema.js';

export const MFA_FACTOR_KINDS = ['totp', 'webauthn', 'recovery'] as const;
export type MfaFactorKind = (typeof MFA_FACTOR_KINDS)[number];
export const MFA_FACTOR_STATES = ['pending', 'active'] as const;
export type MfaFactorState = (typeof MFA_FACTOR_STATES)[number];

/** A step-up id: the base64url (unpadded) SHA-256 request hash, 43 characters. */
export const StepUpIdSchema = z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'must be a base64url SHA-256 hash (43 characters)');

const DbTime = z.number().int().min(0).max(8.64e15).transform((ms) => new Date(ms));
const DbBytes = BytesSchema.transform((b) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
const Step = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const JsonObjectSchema = z.record(z.string(), JsonValueSchema);
const SecretSchema = BytesSchema.refine((b) => b.length > 0 && b.length <= MAX_BLOB_BYTES, { message: `must be 1..${MAX_BLOB_BYTES} bytes` });

const SECRET_RULE = 'totp and webauthn factors hold a secret blob (a pending webauthn one may not yet), recovery sets none';
/** Recovery sets hold no blob; TOTP always (its sealed seed); WebAuthn once registered (its public key). */
function secretRule(kind: MfaFactorKind, state: MfaFactorState, secret: Uint8Array | null): boolean {
  if (kind === 'recovery') return secret === null;
  return secret !== null || (kind === 'webauthn' && state === 'pending');
}

function dbJsonObject() {
  return z.string().max(MAX_TEXT_LENGTH).transform((s, ctx) => {
    try {
      const v = JSON.parse(s) as unknown;
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, JsonValue>;
    } catch { /* reported below */ }
    ctx.addIssue({ code: 'custom', message: 'not the JSON text of an object' });
    return z.NEVER;
  });
}

export const MfaFactorRowSchema = z
  .object({
    id: IdentifierSchema,
    principal: IdentifierSchema,
    kind: z.enum(MFA_FACTOR_KINDS),
    name: DisplayNameSchema,
    state: z.enum(MFA_FACTOR_STATES),
    secret: DbBytes.nullable(),
    data: dbJsonObject(),
    last_step: Step.nullable(),
    counter: Step.nullable(),
    created: DbTime,
    last_used: DbTime.nullable(),
  })
  .refine((r) => secretRule(r.kind, r.state, r.secret), SECRET_RULE)
  .transform((r) => ({
    id: r.id,
    principal: r.principal,
    kind: r.kind,
    name: r.name,
    state: r.state,
    /** TOTP: the seed sealed by the keyholder; WebAuthn: the COSE public key; recovery: null. */
    secret: r.secret,
    /** Public parameters (WebAuthn credential id, transports, format; recovery salt, hashes, used flags). */
    data: r.data,
    /** TOTP: the time step of the last accepted code (a code of that step or earlier is a replay). */
    lastStep: r.last_step,
    /** WebAuthn: the signature counter last seen. */
    counter: r.counter,
    created: r.created,
    lastUsed: r.last_used,
  }));

export const MfaLockoutRowSchema = z
  .object({ principal: IdentifierSchema, failures: z.number().int().min(0), locked_until: DbTime.nullable(), updated: DbTime })
  .transform((r) => ({ principal: r.principal, failures: r.failures, lockedUntil: r.locked_until, updated: r.updated }));

export const StepUpRowSchema = z
  .object({
    id: StepUpIdSchema,
    principal: IdentifierSchema,
    request: z.string().min(2).max(MAX_TEXT_LENGTH),
    created: DbTime,
    expires_at: DbTime,
    verified_at: DbTime.nullable(),
    factor: IdentifierSchema.nullable(),
    consumed_at: DbTime.nullable(),
  })
  .refine((r) => (r.verified_at === null) === (r.factor === null), 'a step-up is verified exactly when it names its factor')
  .refine((r) => r.consumed_at === null || r.verified_at !== null, 'only a verified step-up is consumed')
  .transform((r) => ({
    id: r.id,
    principal: r.principal,
    /** The canonical request (RFC 8785 JSON text) whose SHA-256 is the id. */
    request: r.request,
    created: r.created,
    expiresAt: r.expires_at,
    verifiedAt: r.verified_at,
    factor: r.factor,
    consumedAt: r.consumed_at,
  }));

// --- inputs --------------------------------------------------------------------------

export const NewMfaFactorSchema = z
  .object({
    id: IdentifierSchema,
    principal: IdentifierSchema,
    kind: z.enum(MFA_FACTOR_KINDS),
    name: DisplayNameSchema,
    state: z.enum(MFA_FACTOR_STATES),
    secret: SecretSchema.nullable(),
    data: JsonObjectSchema,
    counter: Step.nullable().default(null),
    created: TimeSchema,
  })
  .refine((r) => secretRule(r.kind, r.state, r.secret), SECRET_RULE);

export const MfaFactorPatchSchema = z
  .object({
    state: z.literal('active').optional(),
    /** WebAuthn: the public key, set when its registration verifies. */
    secret: SecretSchema.optional(),
    lastStep: Step.optional(),
    counter: Step.optional(),
    data: JsonObjectSchema.optional(),
    lastUsed: TimeSchema.optional(),
  })
  .refine((p) => Object.values(p).some((v) => v !== undefined), 'a factor update must change something');

/** Compare-and-set on what the caller read: the update applies only if these still hold. */
export const MfaFactorExpectSchema = z.object({ lastStep: Step.nullable().optional(), counter: Step.nullable().optional(), data: JsonObjectSchema.optional() });

export const NewMfaLockoutSchema = z.object({ principal: IdentifierSchema, failures: z.number().int().min(0).max(1_000_000), lockedUntil: TimeSchema.nullable(), updated: TimeSchema });

export const NewStepUpSchema = z
  .object({ id: StepUpIdSchema, principal: IdentifierSchema, request: z.string().min(2).max(MAX_TEXT_LENGTH), created: TimeSchema, expiresAt: TimeSchema })
  .refine((r) => r.expiresAt.getTime() > r.created.getTime(), 'a step-up expires after it is created');

export const StepUpVerificationSchema = z.object({ factor: IdentifierSchema, at: TimeSchema });
