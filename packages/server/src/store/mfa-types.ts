/**
 * The MFA part of the store's contract (issue #7): second factors per
 * principal, the per-principal failure counter behind lockout, and step-up
 * records bound to one request hash. Part of `StoreOps` (types.ts), so it
 * runs inside `transaction(fn)` too — a step-up is consumed in the same
 * transaction as the operation it authorises. Both backends pass the same
 * cases (`test/store/conformance-mfa.ts`).
 */
import type { z } from 'zod';
import type {
  MfaFactorExpectSchema,
  MfaFactorPatchSchema,
  MfaFactorRowSchema,
  MfaLockoutRowSchema,
  NewMfaFactorSchema,
  NewMfaLockoutSchema,
  NewStepUpSchema,
  StepUpRowSchema,
  StepUpVerificationSchema,
} from './mfa-schema.js';

export type { MfaFactorKind, MfaFactorState } from './mfa-schema.js';

export type MfaFactorRow = z.output<typeof MfaFactorRowSchema>;
export type MfaLockoutRow = z.output<typeof MfaLockoutRowSchema>;
export type StepUpRow = z.output<typeof StepUpRowSchema>;
export type NewMfaFactor = z.input<typeof NewMfaFactorSchema>;
export type MfaFactorPatch = z.input<typeof MfaFactorPatchSchema>;
export type MfaFactorExpect = z.input<typeof MfaFactorExpectSchema>;
export type NewMfaLockout = z.input<typeof NewMfaLockoutSchema>;
export type NewStepUp = z.input<typeof NewStepUpSchema>;
export type StepUpVerification = z.input<typeof StepUpVerificationSchema>;

/** Second factors, lockout counters and step-up records. */
export interface MfaStore {
  /** `KW_STORE_NOT_FOUND` if the principal is missing; `KW_STORE_CONFLICT` if the id exists. */
  addMfaFactor(input: NewMfaFactor): Promise<MfaFactorRow>;
  getMfaFactor(id: string): Promise<MfaFactorRow | null>;
  /** A principal's factors, oldest first. */
  listMfaFactors(principal: string): Promise<MfaFactorRow[]>;
  /**
   * Changes a factor. With `expect`, only while the stored last step,
   * counter or data still equal what the caller read (else
   * `KW_STORE_CONFLICT`, nothing written): two uses of one TOTP step or one
   * recovery code cannot both succeed.
   */
  updateMfaFactor(id: string, patch: MfaFactorPatch, expect?: MfaFactorExpect): Promise<MfaFactorRow>;
  /** Deletes a factor; returns what it was. `KW_STORE_NOT_FOUND` if it does not exist. */
  removeMfaFactor(id: string): Promise<MfaFactorRow>;
  getMfaLockout(principal: string): Promise<MfaLockoutRow | null>;
  /** Sets (creates or replaces) a principal's failure counter and lock. */
  setMfaLockout(input: NewMfaLockout): Promise<MfaLockoutRow>;
  /** `KW_STORE_CONFLICT` if a step-up with this id (request hash) exists. */
  createStepUp(input: NewStepUp): Promise<StepUpRow>;
  getStepUp(id: string): Promise<StepUpRow | null>;
  /** Records the factor that verified it; `KW_STORE_CONFLICT` if it was verified already. */
  markStepUpVerified(id: string, v: StepUpVerification): Promise<StepUpRow>;
  /** Consumes a verified step-up, once: `KW_STORE_CONFLICT` if unverified or consumed already. */
  consumeStepUp(id: string, at: Date): Promise<StepUpRow>;
}

/** Whether each MfaStore operation writes (SQLite takes the write lock up front for those). */
export const MFA_OP_KINDS = {
  addMfaFactor: 'write',
  getMfaFactor: 'read',
  listMfaFactors: 'read',
  updateMfaFactor: 'write',
  removeMfaFactor: 'write',
  getMfaLockout: 'read',
  setMfaLockout: 'write',
  createStepUp: 'write',
  getStepUp: 'read',
  markStepUpVerified: 'write',
  consumeStepUp: 'write',
} as const satisfies Record<keyof MfaStore, 'read' | 'write'>;
