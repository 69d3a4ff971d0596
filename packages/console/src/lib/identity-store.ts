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
 */
import { HpkeIdentity, generateIdentity, parseIdentity, type Identity } from '@keyward/core';

export type KeyStorage = 'webcrypto-x25519' | 'core-x25519-wrapped';

interface WebCryptoRecord { kind: 'webcrypto-x25519'; privateKey: CryptoKey; publicKey: Uint8Array; recipient: string; created: string }
interface WrappedRecord { kind: 'core-x25519-wrapped'; wrapKey: CryptoKey; iv: Uint8Array; sealed: Uint8Array; recipient: string; created: string }
type IdentityRecord = WebCryptoRecord | WrappedRecord;

export interface BrowserIdentity {
  readonly storage: KeyStorage;
  readonly recipient: string;
  readonly created: string;
  /** A core Identity for open(); for the fallback the secret is decrypted for this call only. */
  identity(): Promise<Identity>;
}

const DB = 'keyward-console';
const STORE = 'identities';
const ID = 'seal-demo';

function db(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const r = indexedDB.open(DB, 1);
    r.onupgradeneeded = () => { r.result.createObjectStore(STORE); };
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error ?? new Error('IndexedDB unavailable'));
  });
}

async function tx<T>(mode: IDBTransactionMode, fn: (s: IDBObjectStore) => IDBRequest): Promise<T> {
  const d = await db();
  try {
    return await new Promise<T>((resolve, reject) => {
      const t = d.transaction(STORE, mode);
      const req = fn(t.objectStore(STORE));
      t.oncomplete = () => resolve(req.result as T);
      t.onerror = () => reject(t.error ?? new Error('IndexedDB transaction failed'));
      t.onabort = () => reject(t.error ?? new Error('IndexedDB transaction aborted'));
    });
  } finally {
    d.close();
  }
}

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

function toIdentity(r: IdentityRecord): BrowserIdentity {
  return {
    storage: r.kind, recipient: r.recipient, created: r.created,
    identity: async () => {
      if (r.kind === 'webcrypto-x25519') return HpkeIdentity.fromDh('x25519', r.publicKey, webCryptoDh(r.privateKey));
      const secret = new Uint8Array(await crypto.subtle.decrypt({ name: 'AES-GCM', iv: r.iv as BufferSource }, r.wrapKey, r.sealed as BufferSource));
      try {
        return await parseIdentity(new TextDecoder().decode(secret));
      } finally {
        secret.fill(0);
      }
    },
  };
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
  if (!forceFallback && await webCryptoX25519()) {
    const pair = await crypto.subtle.generateKey({ name: 'X25519' }, false, ['deriveBits']) as CryptoKeyPair;
    const publicKey = new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey));
    const id = await HpkeIdentity.fromDh('x25519', publicKey, webCryptoDh(pair.privateKey));
    record = { kind: 'webcrypto-x25519', privateKey: pair.privateKey, publicKey, recipient: (await id.recipient()).toString(), created };
  } else {
    const id = await generateIdentity('x25519');
    const wrapKey = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const text = new TextEncoder().encode(id.toString());
    const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, wrapKey, text));
    text.fill(0);
    record = { kind: 'core-x25519-wrapped', wrapKey, iv, sealed, recipient: (await id.recipient()).toString(), created };
  }
  await tx('readwrite', (s) => s.put(record, ID));
  return toIdentity(record);
}

/** Deletes the stored identity: envelopes sealed to it can no longer be opened here. */
export async function deleteIdentity(): Promise<void> {
  await tx('readwrite', (s) => s.delete(ID));
}
