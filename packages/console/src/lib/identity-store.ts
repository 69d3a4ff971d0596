/**
 * The seal demo's browser identity, kept in IndexedDB.
 *
 * Preferred: a WebCrypto X25519 key pair generated non-extractable — script
 * (even this page's) can ask it for a Diffie-Hellman but never read the
 * private key; @keyward/core opens envelopes with it through
 * `HpkeIdentity.fromDh`. Browsers without X25519 in WebCrypto get the
 * fallback: @keyward/core generates the X25519 secret, which is stored
 * encrypted under a non-extractable WebCrypto AES-256-GCM key (also in
 * IndexedDB) and decrypted only in memory while opening. Both are said on
 * the page. (IndexedDB lives in the browser profile: anyone with the
 * profile and the user's OS account can use either key.)
 *
 * The identity also holds what makes the browser a *device* in the
 * directory (docs/directory.md §Identities and devices): two Ed25519 keys,
 * one signing directory changes, one for RFC 9421 requests — non-extractable
 * WebCrypto Ed25519 keys next to the WebCrypto X25519 key, or, in the
 * fallback, seeds encrypted under the same AES key. `enroll` publishes the
 * device's public keys for an identity (`user:…`, `service:…`) with a
 * one-time enrollment token, signing its proof of possession in the browser.
 */
import { HpkeIdentity, parseIdentity, type Identity } from '@keyward/core';
import { devicePublicKeys, type DeviceKeys, type Directory } from '@keyward/client';
import { fromB64u } from './directory.js';
import { idb } from './idb.js';

export type KeyStorage = 'webcrypto-x25519' | 'core-x25519-wrapped';

/** Where the browser is enrolled in the directory. */
export interface Enrollment { readonly name: string; readonly device: string; readonly version: number; readonly at: string }

interface Common { publicKey: Uint8Array; recipient: string; created: string; signPublic?: Uint8Array; requestPublic?: Uint8Array; enrolled?: Enrollment }
interface WebCryptoRecord extends Common { kind: 'webcrypto-x25519'; privateKey: CryptoKey; signKey?: CryptoKey; requestKey?: CryptoKey }
/** `seeds`: AES-GCM of the Ed25519 sign seed ‖ request seed (32 + 32 bytes) under `wrapKey`, with `seedsIv`. */
interface WrappedRecord extends Common { kind: 'core-x25519-wrapped'; wrapKey: CryptoKey; iv: Uint8Array; sealed: Uint8Array; seedsIv?: Uint8Array; seeds?: Uint8Array }
type IdentityRecord = WebCryptoRecord | WrappedRecord;

export interface BrowserIdentity {
  readonly storage: KeyStorage;
  readonly recipient: string;
  readonly created: string;
  /** Where this browser is published in the directory, if it is. */
  readonly enrolled: Enrollment | null;
  /** A core Identity for open(); for the fallback the secret is decrypted for this call only. */
  identity(): Promise<Identity>;
  /**
   * Publishes this browser as device `deviceId` of identity `name` with a one-time enrollment
   * token (`POST /v1/directory/enroll`, verified after by a proven search) and remembers it.
   */
  enroll(dir: Directory, name: string, deviceId: string, token: string): Promise<Enrollment>;
}

const ID = 'seal-demo';

const tx = <T>(mode: IDBTransactionMode, fn: (s: IDBObjectStore) => IDBRequest): Promise<T> => idb<T>('identities', mode, fn);

/** True when this browser's WebCrypto does X25519 (generate + deriveBits). */
export async function webCryptoX25519(): Promise<boolean> {
  try {
    const k = await crypto.subtle.generateKey({ name: 'X25519' }, false, ['deriveBits']) as CryptoKeyPair;
    return k.privateKey instanceof CryptoKey;
  } catch {
    return false;
  }
}

function webCryptoDh(privateKey: CryptoKey): (peer: Uint8Array) => Promise<Uint8Array | null> {
  return async (peer) => {
    try {
      const pub = await crypto.subtle.importKey('raw', peer as BufferSource, { name: 'X25519' }, true, []);
      return new Uint8Array(await crypto.subtle.deriveBits({ name: 'X25519', public: pub }, privateKey, 256));
    } catch {
      return null;
    }
  };
}

const b64u = (b: Uint8Array): string => btoa(String.fromCharCode(...b)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const requestKeyId = (pub: Uint8Array): string => `dev-${b64u(pub).slice(0, 16)}`;

async function decrypt(key: CryptoKey, iv: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.decrypt({ name: 'AES-GCM', iv: iv as BufferSource }, key, data as BufferSource));
}

function toIdentity(r: IdentityRecord): BrowserIdentity {
  const identity = async (): Promise<Identity> => {
    if (r.kind === 'webcrypto-x25519') return HpkeIdentity.fromDh('x25519', r.publicKey, webCryptoDh(r.privateKey));
    const secret = await decrypt(r.wrapKey, r.iv, r.sealed);
    try {
      return await parseIdentity(new TextDecoder().decode(secret));
    } finally {
      secret.fill(0);
    }
  };
  return {
    storage: r.kind, recipient: r.recipient, created: r.created, enrolled: r.enrolled ?? null, identity,
    enroll: async (dir, name, deviceId, token) => {
      if (r.signPublic === undefined || r.requestPublic === undefined) throw new Error('This identity predates directory enrollment: generate a new identity first.');
      const keys: DeviceKeys = {
        id: deviceId, hpke: { alg: 'x25519', key: b64u(r.publicKey) }, sign: b64u(r.signPublic),
        request: { keyId: requestKeyId(r.requestPublic), key: b64u(r.requestPublic) },
      };
      let version: number;
      if (r.kind === 'webcrypto-x25519') {
        const key = r.signKey!;
        ({ version } = await dir.enrollKeys(name, token, keys, async (m) => new Uint8Array(await crypto.subtle.sign('Ed25519', key, m as BufferSource))));
      } else {
        // The fallback signs with @keyward/client from the seeds, decrypted for this call only.
        const seeds = await decrypt(r.wrapKey, r.seedsIv!, r.seeds!);
        const secret = await decrypt(r.wrapKey, r.iv, r.sealed);
        try {
          const device = { id: deviceId, hpke: { alg: 'x25519' as const, identity: new TextDecoder().decode(secret) }, signSeed: b64u(seeds.subarray(0, 32)), requestSeed: b64u(seeds.subarray(32)), requestKeyId: keys.request.keyId };
          ({ version } = await dir.enroll(name, token, device));
        } finally {
          seeds.fill(0);
          secret.fill(0);
        }
      }
      const enrolled: Enrollment = { name, device: deviceId, version, at: new Date().toISOString() };
      r.enrolled = enrolled;
      await tx('readwrite', (s) => s.put(r, ID));
      return enrolled;
    },
  };
}

/** True when this browser's WebCrypto does Ed25519 (generate + sign). */
export async function webCryptoEd25519(): Promise<boolean> {
  try {
    const k = await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify']);
    await crypto.subtle.sign('Ed25519', k.privateKey, new Uint8Array(1));
    return true;
  } catch {
    return false;
  }
}

async function ed25519Pair(): Promise<{ key: CryptoKey; pub: Uint8Array }> {
  const pair = await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify']);
  return { key: pair.privateKey, pub: new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey)) };
}

/** The stored identity, or null. */
export async function loadIdentity(): Promise<BrowserIdentity | null> {
  const r = await tx<IdentityRecord | undefined>('readonly', (s) => s.get(ID));
  return r ? toIdentity(r) : null;
}

/**
 * Generates and stores a new identity (replacing any), WebCrypto X25519 when
 * available unless `forceFallback`.
 */
export async function createIdentity(forceFallback = false): Promise<BrowserIdentity> {
  const created = new Date().toISOString();
  let record: IdentityRecord;
  if (!forceFallback && await webCryptoX25519() && await webCryptoEd25519()) {
    const pair = await crypto.subtle.generateKey({ name: 'X25519' }, false, ['deriveBits']) as CryptoKeyPair;
    const publicKey = new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey));
    const id = await HpkeIdentity.fromDh('x25519', publicKey, webCryptoDh(pair.privateKey));
    const [sign, request] = [await ed25519Pair(), await ed25519Pair()];
    record = {
      kind: 'webcrypto-x25519', privateKey: pair.privateKey, publicKey, recipient: (await id.recipient()).toString(), created,
      signKey: sign.key, signPublic: sign.pub, requestKey: request.key, requestPublic: request.pub,
    };
  } else {
    const id = await HpkeIdentity.generate('x25519');
    const wrapKey = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const text = new TextEncoder().encode(id.toString());
    const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, wrapKey, text));
    text.fill(0);
    // Ed25519 seeds are 32 random bytes; their public keys come from @keyward/client.
    const seeds = crypto.getRandomValues(new Uint8Array(64));
    const pub = await devicePublicKeys({ id: 'x', hpke: { alg: 'x25519', identity: id.toString() }, signSeed: b64u(seeds.subarray(0, 32)), requestSeed: b64u(seeds.subarray(32)), requestKeyId: 'x' });
    const seedsIv = crypto.getRandomValues(new Uint8Array(12));
    const sealedSeeds = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv: seedsIv }, wrapKey, seeds));
    seeds.fill(0);
    record = {
      kind: 'core-x25519-wrapped', wrapKey, iv, sealed, publicKey: id.publicKey, recipient: (await id.recipient()).toString(), created,
      seedsIv, seeds: sealedSeeds, signPublic: fromB64u(pub.sign), requestPublic: fromB64u(pub.request.key),
    };
  }
  await tx('readwrite', (s) => s.put(record, ID));
  return toIdentity(record);
}

/** Deletes the stored identity: envelopes sealed to it can no longer be opened here. */
export async function deleteIdentity(): Promise<void> {
  await tx('readwrite', (s) => s.delete(ID));
}
