/**
 * TOTP seeds in the keyholder (issue #7): the seed of a second factor is
 * born here, leaves once as base32 for the enrollment display (QR code /
 * typed secret), and is stored only wrapped under the master key:
 *
 *   sealed = wrap(mk, "totp-seed", { principal, factor }, seed)   (wrap.ts)
 *
 * Verifying a code unwraps the seed here, checks the code (mfa/totp.ts:
 * RFC 6238, SHA-1, 6 digits, 30 s, one step of drift back, never forward,
 * a step at or before `lastTimeStep` is a replay) and wipes the seed; the
 * API learns only ok / wrong / replay and the step. The AAD binds the seed to
 * its principal and factor id, so a sealed seed copied onto another factor
 * or principal in the database does not open (KW_WRAPPED_KEY_MISMATCH).
 *
 * The time is the API's (its MFA clock, for tests), accepted only within
 * five minutes of the keyholder's own clock.
 */
import { base32 } from '@scure/base';
import { KeyholderError } from '../errors.js';
import { randomBytes, wipe, type KeyObject } from '../primitives.js';
import { unwrap, wrap } from '../wrap.js';
import { TOTP_DEFAULTS, verifyTotp } from '../../mfa/totp.js';

/** The wrap purpose of TOTP seeds (HKDF info and AAD). */
export const TOTP_SEED_PURPOSE = 'totp-seed';
/** How far the API's time may be from the keyholder's clock. */
export const TOTP_CLOCK_SKEW_MS = 5 * 60_000;

export interface TotpBinding {
  readonly principal: string;
  readonly factor: string;
}

/** A fresh seed: its sealed form (to store) and its base32 text (shown once). */
export function totpNew(mk: KeyObject, b: TotpBinding): { sealed: Uint8Array; base32: string } {
  const seed = randomBytes(TOTP_DEFAULTS.secretBytes);
  try {
    return { sealed: wrap(mk, TOTP_SEED_PURPOSE, { principal: b.principal, factor: b.factor }, seed), base32: base32.encode(seed).replace(/=+$/, '') };
  } finally {
    wipe(seed);
  }
}

export type TotpCheck = { ok: true; timeStep: number; reason: null } | { ok: false; timeStep: null; reason: 'malformed' | 'wrong' | 'replay' };

/** Verifies `code` against a sealed seed at `time` (RFC 3339, within five minutes of the keyholder clock). */
export async function totpVerify(mk: KeyObject, b: TotpBinding & { sealed: Uint8Array; code: string; lastTimeStep: number | null; time: string }, now = Date.now()): Promise<TotpCheck> {
  const at = Date.parse(b.time);
  if (!Number.isFinite(at) || new Date(at).toISOString() !== b.time || Math.abs(at - now) > TOTP_CLOCK_SKEW_MS) {
    throw new KeyholderError('KW_INVALID_ARGUMENT', 'the TOTP time must be a real RFC 3339 time within five minutes of the keyholder clock');
  }
  const seed = unwrap(mk, TOTP_SEED_PURPOSE, { principal: b.principal, factor: b.factor }, b.sealed);
  try {
    const r = await verifyTotp({ secret: seed, code: b.code, now: new Date(at), lastTimeStep: b.lastTimeStep });
    return r.ok ? { ok: true, timeStep: r.timeStep, reason: null } : { ok: false, timeStep: null, reason: r.reason };
  } finally {
    wipe(seed);
  }
}
