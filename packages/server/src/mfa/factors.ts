/**
 * Reading stored second-factor rows, shared by the MFA routes and the
 * console's sign-in (api/routes/mfa.ts, api/console-mfa.ts).
 */
import type { MfaFactorRow } from '../store/index.js';
import type { StoredCredential } from './webauthn.js';

/** An active TOTP or WebAuthn factor (recovery codes back one up; they are not one). */
export const isActiveSecondFactor = (f: MfaFactorRow): boolean => f.state === 'active' && (f.kind === 'totp' || f.kind === 'webauthn');

/** An active WebAuthn factor as mfa/webauthn.ts wants it; null for any other row. */
export function credentialOf(f: MfaFactorRow): StoredCredential | null {
  const d = f.data as { credentialId?: unknown; transports?: unknown; fmt?: unknown; aaguid?: unknown };
  if (f.kind !== 'webauthn' || f.state !== 'active' || f.secret === null || typeof d.credentialId !== 'string') return null;
  return {
    id: d.credentialId, publicKey: f.secret, counter: f.counter ?? 0,
    transports: Array.isArray(d.transports) ? d.transports.filter((t): t is string => typeof t === 'string') : [],
    fmt: typeof d.fmt === 'string' ? d.fmt : 'none', aaguid: typeof d.aaguid === 'string' ? d.aaguid : '',
  };
}
