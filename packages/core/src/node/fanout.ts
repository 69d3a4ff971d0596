/**
 * Fan-out on worker threads: the `x25519` stanzas of an envelope sealed to
 * many recipients, computed partly on the pool's workers (pool.ts) while the
 * calling thread computes the rest. Each stanza is still HPKE base mode
 * (RFC 9180) with its own fresh encapsulation; the bytes are those
 * recipients/hpke.ts writes, which the tests check against RFC 9180's vectors
 * and by opening with the ordinary code.
 *
 * `sealX25519Stanzas` runs from its source text on the workers
 * (`new Worker(code, { eval: true })`), so it must stay self-contained: it
 * may use only its parameters and globals, never a binding from this module.
 */
import type * as NodeCrypto from 'node:crypto';

/** One batch of single-shot HPKE seals of the same plaintext, each to its own recipient. */
export interface StanzaJob {
  /** "KEM" ‖ I2OSP(0x0020, 2): DHKEM(X25519, HKDF-SHA256). */
  readonly kemSuiteId: Uint8Array;
  /** "HPKE" ‖ kem_id ‖ kdf_id ‖ aead_id, the AEAD being AES-256-GCM. */
  readonly suiteId: Uint8Array;
  /** mode_base ‖ psk_id_hash ‖ info_hash (RFC 9180 §5.1), the same for every stanza of an envelope. */
  readonly ksContext: Uint8Array;
  readonly aad: Uint8Array;
  /** The data key (the worker wipes its copy when done; this function does not). */
  readonly plaintext: Uint8Array;
  /** The recipients' raw 32-byte public keys, concatenated (already validated by the caller). */
  readonly publicKeys: Uint8Array;
  /** Known-answer tests only: the ephemeral secret keys, concatenated. */
  readonly ephemeralSecrets?: Uint8Array;
}

/** `enc` (32 bytes) and `ct` (plaintext + 16 bytes) of every stanza, concatenated in the job's order. */
export interface StanzaBatch {
  readonly encs: Uint8Array;
  readonly cts: Uint8Array;
}

/**
 * HPKE SealBase for every public key of the job: a fresh X25519 key pair, the
 * DH, ExtractAndExpand, the base-mode key schedule and AES-256-GCM (RFC 9180
 * §4.1, §5.1, §5.2 with sequence number 0), the labeled HKDF steps written
 * out over node:crypto's HMAC-SHA256 exactly as hpke/kdf.ts composes them.
 * `keys` caches imported recipient public keys across batches.
 */
export function sealX25519Stanzas(crypto: typeof NodeCrypto, job: StanzaJob, keys: Map<string, NodeCrypto.KeyObject>): StanzaBatch {
  const te = new TextEncoder();
  const cat = (...parts: Uint8Array[]) => {
    let n = 0;
    for (const p of parts) n += p.length;
    const out = new Uint8Array(n);
    let o = 0;
    for (const p of parts) { out.set(p, o); o += p.length; }
    return out;
  };
  const b64u = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');
  const hpkeV1 = te.encode('HPKE-v1');
  const extractPrefix = (suite: Uint8Array, label: string) => cat(hpkeV1, suite, te.encode(label));
  const expandPrefix = (suite: Uint8Array, label: string, length: number) =>
    cat(new Uint8Array([length >>> 8, length & 0xff]), hpkeV1, suite, te.encode(label));
  const one = new Uint8Array([1]);
  const zeroSalt = new Uint8Array(32);
  const hmac = (key: Uint8Array, ...parts: Uint8Array[]) => {
    const h = crypto.createHmac('sha256', key);
    for (const p of parts) h.update(p);
    return h.digest();
  };
  const eaePrk = extractPrefix(job.kemSuiteId, 'eae_prk');
  const sharedSecret = expandPrefix(job.kemSuiteId, 'shared_secret', 32);
  const secretLabel = extractPrefix(job.suiteId, 'secret');
  const keyLabel = expandPrefix(job.suiteId, 'key', 32);
  const nonceLabel = expandPrefix(job.suiteId, 'base_nonce', 12);

  const n = job.publicKeys.length / 32;
  const ptLength = job.plaintext.length;
  const encs = new Uint8Array(n * 32);
  const cts = new Uint8Array(n * (ptLength + 16));
  const random = job.ephemeralSecrets ? null : crypto.randomBytes(32 * n);
  try {
    for (let i = 0; i < n; i++) {
      const pkR = job.publicKeys.subarray(32 * i, 32 * i + 32);
      const x = b64u(pkR);
      let pub = keys.get(x);
      if (!pub) {
        if (keys.size >= 4096) keys.clear();
        pub = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x }, format: 'jwk' });
        keys.set(x, pub);
      }
      // Any 32 random bytes are an X25519 secret key (RFC 7748 clamps them); see platform/node.ts on why not generateKeyPair.
      const skE = (job.ephemeralSecrets ?? random!).subarray(32 * i, 32 * i + 32);
      const priv = crypto.createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: b64u(skE), x: '' }, format: 'jwk' });
      const enc = Buffer.from(crypto.createPublicKey(priv).export({ format: 'jwk' }).x ?? '', 'base64url');
      if (enc.length !== 32) throw new Error('X25519 public key export failed');
      const dh = crypto.diffieHellman({ privateKey: priv, publicKey: pub });
      if (dh.every((b) => b === 0)) throw new Error('X25519 shared secret is zero');
      const prk = hmac(zeroSalt, eaePrk, dh);
      const shared = hmac(prk, sharedSecret, enc, pkR, one);
      const secret = hmac(shared, secretLabel);
      const key = hmac(secret, keyLabel, job.ksContext, one);
      const nonce = hmac(secret, nonceLabel, job.ksContext, one).subarray(0, 12);
      const c = crypto.createCipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 });
      c.setAAD(job.aad, { plaintextLength: ptLength });
      const body = c.update(job.plaintext);
      c.final();
      const at = i * (ptLength + 16);
      cts.set(body, at);
      cts.set(c.getAuthTag(), at + body.length);
      encs.set(enc, 32 * i);
      for (const b of [dh, prk, shared, secret, key, nonce, body]) b.fill(0);
    }
  } finally {
    random?.fill(0);
  }
  return { encs, cts };
}
