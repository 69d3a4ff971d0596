/**
 * Bring-your-own-key import (docs/key-service-crypto.md §8), as AWS KMS
 * (`RSA_AES_KEY_WRAP_SHA_256`) and Vault Transit (`BYOK`) do it, i.e. PKCS#11
 * `CKM_RSA_AES_KEY_WRAP`:
 *
 *   the keyholder makes a fresh RSA-3072 (or 4096) key pair per import; the
 *   client draws an ephemeral AES-256 key K and sends
 *     wrapped = RSA-OAEP(SHA-256, MGF1-SHA-256, no label)(pub, K) ‖ AES-KWP(K, material)   (RFC 8017, RFC 5649)
 *   the keyholder decrypts K, unwraps the material, checks it for the key
 *   type, and stores it like a generated version (wrapped under the master
 *   key, keys.ts); the RSA private key never leaves this process and opens at
 *   most one import.
 *
 * `ImportTokens` keeps the outstanding import key pairs in memory only (a
 * restart or a seal drops them: ask for new parameters). A token is bound to
 * the namespace, key and type it was issued for, expires (default and at
 * most 24 hours), and is consumed by the first import attempt that reaches
 * the RSA decryption, successful or not, so the private key is never a
 * decryption oracle. The parameters are signed with the keyholder's
 * checkpoint key, so a client can check the wrapping key comes from the
 * keyholder and not from a process in the middle.
 *
 * @example
 * const p = tokens.issue({ ns: 'app', key: 'byok', type: 'aes256' }, signer);
 * const wrapped = wrapForImport(p.publicKey, material);          // client side
 * const material2 = tokens.consume(p.token, { ns: 'app', key: 'byok', type: 'aes256' }, (k) => unwrapImport(k, wrapped));
 */
import { concat, toHex, utf8 } from './bytes.js';
import { canonicalJson } from './canonical-json.js';
import { KeyholderError } from './errors.js';
import {
  aesKwpUnwrap, aesKwpWrap, ed25519PublicKey, ed25519Verify, publicKeySpki, randomBytes, rsaGenerateKeyPair, rsaModulusBytes,
  rsaOaepSha256Decrypt, rsaOaepSha256Encrypt, rsaPublicKeyFromSpki, sha256, wipe, type KeyObject,
} from './primitives.js';
import type { KeyType } from './schemas.js';

/** The wrapping algorithm's name (AWS KMS's name for the same construction). */
export const IMPORT_ALGORITHM = 'RSA_AES_KEY_WRAP_SHA_256';
export const IMPORT_RSA_BITS = [3072, 4096] as const;
export type ImportRsaBits = (typeof IMPORT_RSA_BITS)[number];
export const IMPORT_EPHEMERAL_KEY_LENGTH = 32;
/** Default and longest life of an import token. */
export const IMPORT_TOKEN_MAX_TTL_MS = 24 * 3600_000;
export const IMPORT_TOKEN_MIN_TTL_MS = 1000;
/** Outstanding (unused, unexpired) tokens at most; more is KW_LIMIT_EXCEEDED. */
export const MAX_OUTSTANDING_IMPORTS = 32;
/** Used or expired tokens remembered (to name the error) at most. */
const MAX_REMEMBERED = 4096;
/** Domain separation of the signed parameters. */
export const IMPORT_PARAMS_LABEL = 'keyward/v1 import-params\n';

/** Material lengths an import accepts, per type (bytes). */
export const IMPORT_MATERIAL_LENGTHS: Readonly<Record<KeyType, readonly [number, number]>> = {
  aes256: [32, 32],
  'hmac-sha256': [16, 256],
  ed25519: [32, 32],
  x25519: [32, 32],
  xwing: [32, 32],
};

/** What a token is bound to. */
export interface ImportBinding {
  readonly ns: string;
  readonly key: string;
  readonly type: KeyType;
}

/** The signed facts of import parameters. */
export interface ImportParamsFacts extends ImportBinding {
  readonly token: string;
  readonly algorithm: string;
  /** Hex SHA-256 of the DER SubjectPublicKeyInfo. */
  readonly public_key_sha256: string;
  /** RFC 3339 UTC with milliseconds. */
  readonly expires_at: string;
}

export interface ImportParams {
  readonly token: string;
  /** DER SubjectPublicKeyInfo of the RSA wrapping key. */
  readonly publicKey: Uint8Array;
  readonly algorithm: string;
  readonly expiresAt: string;
  readonly facts: ImportParamsFacts;
}

/** The exact bytes the keyholder signs for import parameters. */
export function importParamsMessage(facts: ImportParamsFacts): Uint8Array {
  const { ns, key, type, token, algorithm, public_key_sha256, expires_at } = facts;
  return concat(utf8.encode(IMPORT_PARAMS_LABEL), utf8.encode(canonicalJson({ ns, key, type, token, algorithm, public_key_sha256, expires_at })));
}

/**
 * Checks signed import parameters on the client side: the signature by
 * `signer` (raw Ed25519, hex) over the facts, and the public key's hash.
 * Returns false on any mismatch. Pin `signer` to the audit log's verifier key.
 */
export function verifyImportParams(p: { facts: ImportParamsFacts; publicKey: Uint8Array; signer: string; signature: string }): boolean {
  if (!/^[0-9a-f]{64}$/.test(p.signer) || !/^[0-9a-f]{128}$/.test(p.signature)) return false;
  if (toHex(sha256(p.publicKey)) !== p.facts.public_key_sha256) return false;
  return ed25519Verify(ed25519PublicKey(Buffer.from(p.signer, 'hex')), importParamsMessage(p.facts), Buffer.from(p.signature, 'hex'));
}

function checkMaterial(type: KeyType, material: Uint8Array): void {
  const [min, max] = IMPORT_MATERIAL_LENGTHS[type];
  if (material.length < min || material.length > max) {
    throw new KeyholderError('KW_IMPORT_MATERIAL_INVALID', `${type} key material is ${min === max ? `${min}` : `${min} to ${max}`} bytes, not ${material.length}`);
  }
  if (material.every((b) => b === 0)) throw new KeyholderError('KW_IMPORT_MATERIAL_INVALID', 'the key material is all zero bytes');
}

/**
 * Client side: wraps `material` for the keyholder's RSA public key (DER SPKI).
 * The ephemeral key is wiped; the material is not (the caller owns it).
 */
export function wrapForImport(publicKeyDer: Uint8Array, material: Uint8Array): Uint8Array {
  const pub = rsaPublicKeyFromSpki(publicKeyDer, IMPORT_RSA_BITS[0]);
  if (!pub) throw new KeyholderError('KW_INVALID_ARGUMENT', 'the wrapping key must be a DER SubjectPublicKeyInfo of an RSA key of 3072 bits or more');
  const k = randomBytes(IMPORT_EPHEMERAL_KEY_LENGTH);
  try {
    return concat(rsaOaepSha256Encrypt(pub, k), aesKwpWrap(k, material));
  } finally {
    wipe(k);
  }
}

/**
 * Keyholder side: opens `wrapped` with the import's RSA private key. Every
 * failure (length, RSA-OAEP, ephemeral key size, RFC 5649 integrity check) is
 * the one error KW_IMPORT_UNWRAP_FAILED. Returns material the caller wipes.
 */
export function unwrapImport(privateKey: KeyObject, wrapped: Uint8Array): Uint8Array {
  const n = rsaModulusBytes(privateKey);
  const fail = () => new KeyholderError('KW_IMPORT_UNWRAP_FAILED', 'the wrapped key material does not open with this import\'s wrapping key (wrong key or parameters, wrong algorithm, or modified)');
  if (wrapped.length < n + 16 || (wrapped.length - n) % 8 !== 0) throw fail();
  const k = rsaOaepSha256Decrypt(privateKey, wrapped.subarray(0, n));
  if (!k) throw fail();
  try {
    if (k.length !== IMPORT_EPHEMERAL_KEY_LENGTH) throw fail();
    const material = aesKwpUnwrap(k, wrapped.subarray(n));
    if (!material) throw fail();
    return material;
  } finally {
    wipe(k);
  }
}

interface Outstanding {
  readonly binding: ImportBinding;
  readonly expiresAt: number;
  privateKey: KeyObject | null;
}

/** The outstanding imports of one keyholder boot (module comment). */
export class ImportTokens {
  readonly #live = new Map<string, Outstanding>();
  /** token → why it no longer works. */
  readonly #gone = new Map<string, 'used' | 'expired'>();
  readonly #now: () => number;
  readonly #max: number;
  /** Reserved while a key pair is being generated, so concurrent issues respect the limit. */
  #pending = 0;

  constructor(opts: { now?: () => number; maxOutstanding?: number } = {}) {
    this.#now = opts.now ?? Date.now;
    this.#max = opts.maxOutstanding ?? MAX_OUTSTANDING_IMPORTS;
  }

  /** Issues parameters for one import into `binding`. */
  async issue(binding: ImportBinding, opts: { ttlMs?: number; bits?: ImportRsaBits } = {}): Promise<ImportParams> {
    const ttl = opts.ttlMs ?? IMPORT_TOKEN_MAX_TTL_MS;
    if (!Number.isSafeInteger(ttl) || ttl < IMPORT_TOKEN_MIN_TTL_MS || ttl > IMPORT_TOKEN_MAX_TTL_MS) {
      throw new KeyholderError('KW_INVALID_ARGUMENT', `an import token lives ${IMPORT_TOKEN_MIN_TTL_MS / 1000} s to ${IMPORT_TOKEN_MAX_TTL_MS / 3600_000} h`);
    }
    const bits = opts.bits ?? 3072;
    if (!(IMPORT_RSA_BITS as readonly number[]).includes(bits)) throw new KeyholderError('KW_INVALID_ARGUMENT', 'the wrapping key is RSA 3072 or 4096');
    this.#expire();
    if (this.#live.size + this.#pending >= this.#max) {
      throw new KeyholderError('KW_LIMIT_EXCEEDED', `${this.#max} imports are already outstanding; use or let them expire first`);
    }
    this.#pending += 1;
    let pair;
    try {
      pair = await rsaGenerateKeyPair(bits);
    } finally {
      this.#pending -= 1;
    }
    const { privateKey, publicKey } = pair;
    const token = Buffer.from(randomBytes(24)).toString('base64url');
    const expiresAt = this.#now() + ttl;
    const spki = publicKeySpki(publicKey);
    const expiresText = new Date(expiresAt).toISOString();
    this.#live.set(token, { binding: { ns: binding.ns, key: binding.key, type: binding.type }, expiresAt, privateKey });
    const facts: ImportParamsFacts = {
      ns: binding.ns, key: binding.key, type: binding.type, token, algorithm: IMPORT_ALGORITHM,
      public_key_sha256: toHex(sha256(spki)), expires_at: expiresText,
    };
    return { token, publicKey: spki, algorithm: IMPORT_ALGORITHM, expiresAt: expiresText, facts };
  }

  /**
   * Checks `token` (known, unexpired, unused, issued for `binding`) without
   * consuming it: a refusal here leaves the token usable.
   */
  check(token: string, binding: ImportBinding): void {
    this.#expire();
    const o = this.#live.get(token);
    if (!o) {
      const why = this.#gone.get(token);
      if (why === 'used') throw new KeyholderError('KW_IMPORT_TOKEN_USED', 'this import token was already used: ask for new import parameters');
      if (why === 'expired') throw new KeyholderError('KW_IMPORT_TOKEN_EXPIRED', 'this import token expired: ask for new import parameters');
      throw new KeyholderError('KW_IMPORT_TOKEN_INVALID', 'unknown import token (never issued, or issued before the keyholder restarted or sealed)');
    }
    const b = o.binding;
    if (b.ns !== binding.ns || b.key !== binding.key || b.type !== binding.type) {
      throw new KeyholderError('KW_IMPORT_TOKEN_INVALID', `this import token was issued for ${b.ns}/${b.key} (${b.type}), not ${binding.ns}/${binding.key} (${binding.type})`);
    }
  }

  /**
   * Consumes `token` and runs `unwrap` with its private key, then checks the
   * material for the type. The token is spent whatever the outcome.
   * Returns material the caller wipes.
   */
  consume(token: string, binding: ImportBinding, unwrap: (privateKey: KeyObject) => Uint8Array): Uint8Array {
    this.check(token, binding);
    const o = this.#live.get(token)!;
    const key = o.privateKey!;
    o.privateKey = null;
    this.#live.delete(token);
    this.#remember(token, 'used');
    const material = unwrap(key);
    try {
      checkMaterial(binding.type, material);
    } catch (e) {
      wipe(material);
      throw e;
    }
    return material;
  }

  /** Forgets every outstanding import (seal, shutdown). */
  clear(): void {
    for (const o of this.#live.values()) o.privateKey = null;
    this.#live.clear();
    this.#gone.clear();
  }

  get outstanding(): number {
    this.#expire();
    return this.#live.size;
  }

  #expire(): void {
    const now = this.#now();
    for (const [t, o] of this.#live) {
      if (o.expiresAt <= now) {
        o.privateKey = null;
        this.#live.delete(t);
        this.#remember(t, 'expired');
      }
    }
  }

  #remember(token: string, why: 'used' | 'expired'): void {
    this.#gone.set(token, why);
    while (this.#gone.size > MAX_REMEMBERED) this.#gone.delete(this.#gone.keys().next().value!);
  }
}
