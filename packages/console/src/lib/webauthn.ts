/**
 * WebAuthn in the page: the API's JSON options (base64url strings, as
 * `@simplewebauthn/server` makes them) to `navigator.credentials` calls, and
 * the credentials back to the JSON the API verifies. The challenge of an
 * assertion is always the server's request hash (a step-up, a sign-in
 * challenge, an approval), so what the authenticator signs is bound to the
 * exact request the page showed.
 */

function fromB64u(s: string): Uint8Array<ArrayBuffer> {
  const b = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4));
  const out = new Uint8Array(b.length);
  for (let i = 0; i < b.length; i++) out[i] = b.charCodeAt(i);
  return out;
}

function toB64u(buf: ArrayBuffer | ArrayBufferView): string {
  const u = buf instanceof ArrayBuffer ? new Uint8Array(buf) : new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  let s = '';
  for (const c of u) s += String.fromCharCode(c);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

interface CredRef { id: string; type?: string; transports?: string[] }

/** True when this browser can do WebAuthn at all (a secure context with PublicKeyCredential). */
export function webauthnAvailable(): boolean {
  return typeof window.PublicKeyCredential === 'function' && window.isSecureContext;
}

/** Length in bytes of the CBOR item at `at` (definite lengths only, as authenticators write them). */
function cborLength(b: Uint8Array, at: number): number {
  const major = b[at]! >> 5;
  const info = b[at]! & 31;
  let n = info;
  let p = at + 1;
  if (info === 24) { n = b[p]!; p += 1; } else if (info === 25) { n = (b[p]! << 8) | b[p + 1]!; p += 2; } else if (info === 26) { n = ((b[p]! << 24) >>> 0) + (b[p + 1]! << 16) + (b[p + 2]! << 8) + b[p + 3]!; p += 4; } else if (info > 26) throw new Error('unsupported CBOR length');
  if (major === 0 || major === 1 || major === 7) return p - at;
  if (major === 2 || major === 3) return p - at + n;
  if (major === 6) return p - at + cborLength(b, p);
  let q = p;
  for (let i = 0; i < (major === 5 ? 2 * n : n); i++) q += cborLength(b, q);
  return q - at;
}

/**
 * The COSE public key in a registration's authenticator data (WebAuthn §6.5.1:
 * rpIdHash 32, flags 1, signCount 4, AAGUID 16, credential id length 2, id, key).
 */
export function coseKeyOf(authData: Uint8Array): string {
  if (authData.length < 55 || (authData[32]! & 0x40) === 0) throw new Error('no attested credential data');
  const idLen = (authData[53]! << 8) | authData[54]!;
  const start = 55 + idLen;
  return toB64u(authData.subarray(start, start + cborLength(authData, start)));
}

/**
 * navigator.credentials.create with the API's registration options: the
 * RegistrationResponseJSON to POST back, and the credential's COSE public key
 * (base64url: what an approval key of kind webauthn is).
 */
export async function createCredential(options: Record<string, unknown>): Promise<{ response: Record<string, unknown>; id: string; cose: string }> {
  const o = options as {
    challenge: string; rp: PublicKeyCredentialRpEntity; user: { id: string; name: string; displayName: string };
    pubKeyCredParams: PublicKeyCredentialParameters[]; timeout?: number; excludeCredentials?: CredRef[];
    authenticatorSelection?: AuthenticatorSelectionCriteria; attestation?: AttestationConveyancePreference;
  };
  const cred = await navigator.credentials.create({
    publicKey: {
      challenge: fromB64u(o.challenge), rp: o.rp, user: { ...o.user, id: fromB64u(o.user.id) }, pubKeyCredParams: o.pubKeyCredParams,
      ...(o.timeout !== undefined ? { timeout: o.timeout } : {}),
      excludeCredentials: (o.excludeCredentials ?? []).map((c) => ({ id: fromB64u(c.id), type: 'public-key' as const, transports: c.transports as AuthenticatorTransport[] })),
      ...(o.authenticatorSelection !== undefined ? { authenticatorSelection: o.authenticatorSelection } : {}),
      attestation: o.attestation ?? 'none',
    },
  }) as PublicKeyCredential | null;
  if (cred === null) throw new Error('no credential was created');
  const r = cred.response as AuthenticatorAttestationResponse;
  return {
    id: cred.id,
    cose: coseKeyOf(new Uint8Array(r.getAuthenticatorData())),
    response: {
      id: cred.id, rawId: toB64u(cred.rawId), type: cred.type, clientExtensionResults: cred.getClientExtensionResults(),
      ...(cred.authenticatorAttachment ? { authenticatorAttachment: cred.authenticatorAttachment } : {}),
      response: { clientDataJSON: toB64u(r.clientDataJSON), attestationObject: toB64u(r.attestationObject), transports: r.getTransports?.() ?? [] },
    },
  };
}

/** navigator.credentials.get with the API's request options (challenge = a request hash); the AuthenticationResponseJSON. */
export async function getAssertion(options: Record<string, unknown>): Promise<Record<string, unknown>> {
  const o = options as { challenge: string; rpId?: string; timeout?: number; userVerification?: UserVerificationRequirement; allowCredentials?: CredRef[] };
  const cred = await navigator.credentials.get({
    publicKey: {
      challenge: fromB64u(o.challenge), ...(o.rpId !== undefined ? { rpId: o.rpId } : {}), ...(o.timeout !== undefined ? { timeout: o.timeout } : {}),
      userVerification: o.userVerification ?? 'required',
      allowCredentials: (o.allowCredentials ?? []).map((c) => ({ id: fromB64u(c.id), type: 'public-key' as const, ...(c.transports?.length ? { transports: c.transports as AuthenticatorTransport[] } : {}) })),
    },
  }) as PublicKeyCredential | null;
  if (cred === null) throw new Error('the authenticator gave no assertion');
  const r = cred.response as AuthenticatorAssertionResponse;
  return {
    id: cred.id, rawId: toB64u(cred.rawId), type: cred.type, clientExtensionResults: cred.getClientExtensionResults(),
    ...(cred.authenticatorAttachment ? { authenticatorAttachment: cred.authenticatorAttachment } : {}),
    response: {
      clientDataJSON: toB64u(r.clientDataJSON), authenticatorData: toB64u(r.authenticatorData), signature: toB64u(r.signature),
      ...(r.userHandle ? { userHandle: toB64u(r.userHandle) } : {}),
    },
  };
}
