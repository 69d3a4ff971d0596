/**
 * WebAuthn / passkey second factors on `@simplewebauthn/server`: enrollment
 * (registration) and step-up assertions whose challenge IS the request hash
 * (mfa/request-hash.ts), so an assertion made for one request cannot
 * authorise another. User verification is required for step-up; a signature
 * counter that does not advance (a cloned authenticator) is refused.
 *
 * @example
 * const options = await stepUpOptions(rp, creds, requestHash(req));   // → navigator.credentials.get
 * const { newCounter } = await verifyStepUp(rp, response, cred, requestHash(req));
 */
import {
  generateRegistrationOptions, verifyAuthenticationResponse, verifyRegistrationResponse,
  type AuthenticationResponseJSON, type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON, type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { MfaError } from './errors.js';

/** The relying party: the console's host name and the origins it is served from. */
export interface RelyingParty {
  readonly id: string;
  readonly name: string;
  readonly origins: readonly string[];
}

/** A registered credential as the store keeps it (public data only). */
export interface StoredCredential {
  /** Credential id, base64url. */
  readonly id: string;
  /** COSE public key. */
  readonly publicKey: Uint8Array;
  readonly counter: number;
  readonly transports: readonly string[];
  /** Attestation format seen at registration ('none', 'packed', …). */
  readonly fmt: string;
  readonly aaguid: string;
}

const b64u = (b: Uint8Array) => Buffer.from(b).toString('base64url');

/** COSE algorithms accepted: ES256, EdDSA, RS256 (what passkeys use). */
const ALGORITHMS = [-7, -8, -257];

/** Options for navigator.credentials.create; `challenge` must be kept server-side until verification. */
export function registrationOptions(rp: RelyingParty, user: { id: string; name: string }, existing: readonly StoredCredential[]): Promise<PublicKeyCredentialCreationOptionsJSON> {
  return generateRegistrationOptions({
    rpName: rp.name, rpID: rp.id, userName: user.name, userID: new TextEncoder().encode(user.id),
    attestationType: 'direct',
    excludeCredentials: existing.map((c) => ({ id: c.id, transports: [...c.transports] })),
    authenticatorSelection: { residentKey: 'preferred', userVerification: 'required' },
    supportedAlgorithmIDs: ALGORITHMS,
  });
}

/** Verifies an enrollment; the credential to store, or KW_MFA_INVALID. */
export async function verifyRegistration(rp: RelyingParty, response: RegistrationResponseJSON, expectedChallenge: string): Promise<StoredCredential> {
  let r: Awaited<ReturnType<typeof verifyRegistrationResponse>>;
  try {
    r = await verifyRegistrationResponse({
      response, expectedChallenge, expectedOrigin: [...rp.origins], expectedRPID: rp.id, requireUserVerification: true,
      supportedAlgorithmIDs: ALGORITHMS,
    });
  } catch (e) {
    throw new MfaError('KW_MFA_INVALID', 'WebAuthn registration did not verify', { cause: e });
  }
  if (!r.verified) throw new MfaError('KW_MFA_INVALID', 'WebAuthn registration did not verify');
  const { credential, fmt, aaguid } = r.registrationInfo;
  return { id: credential.id, publicKey: credential.publicKey, counter: credential.counter, transports: credential.transports ?? [], fmt, aaguid };
}

/** Options for navigator.credentials.get whose challenge is the request hash. */
export function stepUpOptions(rp: RelyingParty, credentials: readonly StoredCredential[], hash: Uint8Array): PublicKeyCredentialRequestOptionsJSON {
  return {
    challenge: b64u(hash), rpId: rp.id, userVerification: 'required', timeout: 120_000,
    allowCredentials: credentials.map((c) => ({ id: c.id, type: 'public-key', transports: [...c.transports] as AuthenticatorTransport[] })),
  };
}

type AuthenticatorTransport = 'ble' | 'cable' | 'hybrid' | 'internal' | 'nfc' | 'smart-card' | 'usb';

/** The challenge a response was made for (base64url), or null if its client data is unreadable. */
function challengeOf(response: AuthenticationResponseJSON): string | null {
  try {
    const cd = JSON.parse(Buffer.from(response.response.clientDataJSON, 'base64url').toString('utf8')) as { challenge?: unknown };
    return typeof cd.challenge === 'string' ? cd.challenge : null;
  } catch {
    return null;
  }
}

/**
 * Verifies a step-up assertion for the request whose hash is `hash`, made by
 * `credential`. Returns the new signature counter to store.
 * @throws KW_STEP_UP_MISMATCH when it was made for another request; KW_MFA_INVALID otherwise.
 */
export async function verifyStepUp(rp: RelyingParty, response: AuthenticationResponseJSON, credential: StoredCredential, hash: Uint8Array): Promise<{ newCounter: number }> {
  const expected = b64u(hash);
  const got = challengeOf(response);
  if (got === null) throw new MfaError('KW_MFA_INVALID', 'WebAuthn assertion has no readable client data');
  if (got !== expected) throw new MfaError('KW_STEP_UP_MISMATCH');
  if (response.id !== credential.id) throw new MfaError('KW_MFA_INVALID', 'WebAuthn assertion is from another credential');
  let r: Awaited<ReturnType<typeof verifyAuthenticationResponse>>;
  try {
    r = await verifyAuthenticationResponse({
      response, expectedChallenge: expected, expectedOrigin: [...rp.origins], expectedRPID: rp.id, requireUserVerification: true,
      credential: { id: credential.id, publicKey: new Uint8Array(credential.publicKey), counter: credential.counter, transports: [...credential.transports] },
    });
  } catch (e) {
    const cloned = /counter/i.test((e as Error).message);
    throw new MfaError(cloned ? 'KW_MFA_REPLAY' : 'KW_MFA_INVALID', cloned ? 'WebAuthn signature counter did not advance (replayed assertion or cloned authenticator)' : 'WebAuthn assertion did not verify', { cause: e });
  }
  if (!r.verified) throw new MfaError('KW_MFA_INVALID', 'WebAuthn assertion did not verify');
  return { newCounter: r.authenticationInfo.newCounter };
}
