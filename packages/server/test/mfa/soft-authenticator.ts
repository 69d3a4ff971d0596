/**
 * A software WebAuthn authenticator for tests: a real P-256 credential that
 * produces real attestation objects (`none`, or `packed` self-attestation)
 * and assertions, CBOR-encoded with the same CBOR library the verifier uses.
 * It signs whatever challenge it is given, like a real authenticator.
 */
import { createHash, createSign, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { isoCBOR } from '@simplewebauthn/server/helpers';
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server';

const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest();
const b64u = (b: Uint8Array) => Buffer.from(b).toString('base64url');
const FLAG_UP = 0x01, FLAG_UV = 0x04, FLAG_AT = 0x40;

export class SoftAuthenticator {
  readonly credentialId = randomBytes(16);
  private readonly key: KeyObject;
  private readonly cosePublicKey: Uint8Array;
  signCount = 0;

  constructor(readonly rpId: string, readonly origin: string, private readonly userVerified = true) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.key = privateKey;
    const jwk = publicKey.export({ format: 'jwk' });
    this.cosePublicKey = isoCBOR.encode(new Map<number, number | Uint8Array>([
      [1, 2], [3, -7], [-1, 1], [-2, Buffer.from(jwk.x!, 'base64url')], [-3, Buffer.from(jwk.y!, 'base64url')],
    ]));
  }

  get id(): string { return b64u(this.credentialId); }

  private authData(attested: boolean): Buffer {
    const flags = FLAG_UP | (this.userVerified ? FLAG_UV : 0) | (attested ? FLAG_AT : 0);
    const count = Buffer.alloc(4);
    count.writeUInt32BE(this.signCount);
    const parts = [sha256(this.rpId), Buffer.from([flags]), count];
    if (attested) {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(this.credentialId.length);
      parts.push(Buffer.alloc(16), len, this.credentialId, Buffer.from(this.cosePublicKey));
    }
    return Buffer.concat(parts);
  }

  private sign(data: Buffer): Buffer {
    return createSign('sha256').update(data).sign(this.key); // DER, as WebAuthn ES256 wants
  }

  private clientData(type: 'webauthn.create' | 'webauthn.get', challenge: string, origin = this.origin): Buffer {
    return Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false }));
  }

  /** A registration response for `challenge` (base64url), with `none` or `packed` self-attestation. */
  register(challenge: string, fmt: 'none' | 'packed' = 'none'): RegistrationResponseJSON {
    const clientDataJSON = this.clientData('webauthn.create', challenge);
    const authData = this.authData(true);
    const attStmt = fmt === 'none'
      ? new Map()
      : new Map<string, number | Uint8Array>([['alg', -7], ['sig', this.sign(Buffer.concat([authData, sha256(clientDataJSON)]))]]);
    const attestationObject = isoCBOR.encode(new Map<string, string | Uint8Array | Map<string, number | Uint8Array>>([
      ['fmt', fmt], ['attStmt', attStmt], ['authData', authData],
    ]));
    return {
      id: this.id, rawId: this.id, type: 'public-key', clientExtensionResults: {},
      response: { clientDataJSON: b64u(clientDataJSON), attestationObject: b64u(attestationObject), transports: ['internal'] },
    };
  }

  /** An assertion over `challenge` (base64url); the counter advances unless `keepCounter`. */
  assert(challenge: string, opts: { origin?: string; keepCounter?: boolean } = {}): AuthenticationResponseJSON {
    if (!opts.keepCounter) this.signCount++;
    const clientDataJSON = this.clientData('webauthn.get', challenge, opts.origin);
    const authenticatorData = this.authData(false);
    const signature = this.sign(Buffer.concat([authenticatorData, sha256(clientDataJSON)]));
    return {
      id: this.id, rawId: this.id, type: 'public-key', clientExtensionResults: {},
      response: { clientDataJSON: b64u(clientDataJSON), authenticatorData: b64u(authenticatorData), signature: b64u(signature) },
    };
  }
}
