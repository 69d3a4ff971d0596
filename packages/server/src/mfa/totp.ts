/**
 * TOTP second factors (RFC 6238) on `otplib`: enrollment secrets, the
 * otpauth:// URI for authenticator apps, and verification that accepts each
 * time step at most once (RFC 6238 §5.2) and one step of clock drift back,
 * never forward. The seed is returned as bytes for the keyholder to seal; it
 * is never stored or logged in the clear.
 *
 * @example
 * const enrollment = newTotpSecret();                  // show enrollment.uri('Keyward', 'alice') as a QR code
 * const r = await verifyTotp({ secret, code: '123456', now: new Date(), lastTimeStep });
 * if (r.ok) persist(r.timeStep);                       // the next code must be from a later step
 */
import { randomBytes } from 'node:crypto';
import { generate, generateURI, verify, type HashAlgorithm } from 'otplib';
import { base32 } from '@scure/base';

/** Parameters every mainstream authenticator app supports. */
export const TOTP_DEFAULTS = { digits: 6, period: 30, algorithm: 'sha1' as HashAlgorithm, secretBytes: 20 } as const;

/** Accepted drift: the previous time step (network and typing delay), never a future one. */
export const TOTP_STEPS_BACK = 1;

export interface TotpParams {
  readonly digits?: 6 | 7 | 8;
  readonly period?: number;
  readonly algorithm?: HashAlgorithm;
}

/** A fresh TOTP seed. `secret` is what the keyholder seals; `base32` is what the user types or scans. */
export interface TotpEnrollment {
  readonly secret: Uint8Array;
  readonly base32: string;
  uri(issuer: string, account: string): string;
}

export function newTotpSecret(): TotpEnrollment {
  const secret = new Uint8Array(randomBytes(TOTP_DEFAULTS.secretBytes));
  const text = base32.encode(secret).replace(/=+$/, '');
  return {
    secret,
    base32: text,
    uri: (issuer, account) => generateURI({ issuer, label: account, secret: text, digits: TOTP_DEFAULTS.digits, period: TOTP_DEFAULTS.period }),
  };
}

export type TotpResult =
  | { readonly ok: true; readonly timeStep: number }
  | { readonly ok: false; readonly reason: 'malformed' | 'wrong' | 'replay' };

/**
 * Verifies `code` at `now`. `lastTimeStep` is the step of the last code this
 * factor accepted (null if none): a code from that step or earlier is a replay.
 */
export async function verifyTotp(opts: {
  secret: Uint8Array;
  code: string;
  now: Date;
  lastTimeStep: number | null;
  params?: TotpParams;
}): Promise<TotpResult> {
  const digits = opts.params?.digits ?? TOTP_DEFAULTS.digits;
  const period = opts.params?.period ?? TOTP_DEFAULTS.period;
  const algorithm = opts.params?.algorithm ?? TOTP_DEFAULTS.algorithm;
  if (!new RegExp(`^[0-9]{${digits}}$`).test(opts.code)) return { ok: false, reason: 'malformed' };
  const epoch = Math.floor(opts.now.getTime() / 1000);
  const r = await verify({
    secret: opts.secret, token: opts.code, epoch, period, digits, algorithm,
    epochTolerance: [TOTP_STEPS_BACK * period, 0],
  });
  if (!r.valid) return { ok: false, reason: 'wrong' };
  const { timeStep } = r as { timeStep: number }; // a TOTP result (the union also covers HOTP)
  if (opts.lastTimeStep !== null && timeStep <= opts.lastTimeStep) return { ok: false, reason: 'replay' };
  return { ok: true, timeStep };
}

/** The code at `now` (for tests and the CLI's enrollment check). */
export function totpAt(secret: Uint8Array, now: Date, params: TotpParams = {}): Promise<string> {
  return generate({
    secret, epoch: Math.floor(now.getTime() / 1000),
    digits: params.digits ?? TOTP_DEFAULTS.digits, period: params.period ?? TOTP_DEFAULTS.period,
    algorithm: params.algorithm ?? TOTP_DEFAULTS.algorithm,
  });
}

/**
 * The otpauth:// URI for a seed given as base32 text (the enrollment QR
 * code), with the default parameters.
 *
 * @example
 * totpUri('JBSWY3DPEHPK3PXP', 'Keyward', 'alice') // otpauth://totp/Keyward:alice?secret=…
 */
export function totpUri(base32Text: string, issuer: string, account: string): string {
  return generateURI({ issuer, label: account, secret: base32Text, digits: TOTP_DEFAULTS.digits, period: TOTP_DEFAULTS.period });
}
