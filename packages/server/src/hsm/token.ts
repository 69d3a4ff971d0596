/**
 * One PKCS#11 token, as the keyholder uses it: a pool of sessions sized for
 * concurrency (a PKCS#11 session runs one operation at a time; operations run
 * on libuv's thread pool through pkcs11js's async calls), a single login, and
 * a reconnect after the errors that mean the token or library went away
 * (removed token, device error, finalized library) — one reconnect shared by
 * every operation that saw the failure, then one retry each.
 *
 * Keys are found by label and kind. Keys the token generates are token
 * objects, `CKA_SENSITIVE` and not `CKA_EXTRACTABLE`: their bytes never leave
 * the HSM. Material wrapped for storage outside (the HSM-wrapped mode) uses
 * AES key wrap with padding (RFC 5649, `CKM_AES_KEY_WRAP_PAD`).
 *
 * @example
 * const hsm = await Pkcs11Token.open({ module: '/usr/lib/softhsm/libsofthsm2.so', tokenLabel: 'keyward', pin });
 * await hsm.generate('aes', 'keyward-root');
 * const blob = await hsm.wrapPad('keyward-root', masterKey);   // 40 bytes for a 32-byte key
 * const again = await hsm.unwrapPad('keyward-root', blob);
 */
import pkcs11js from 'pkcs11js';
import { HsmError, fromPkcs11, isHsmError } from './errors.js';

type Lib = pkcs11js.PKCS11;
type Handle = Buffer;

export interface HsmConfig {
  /** Path of the vendor's PKCS#11 library. */
  readonly module: string;
  /** Label of the token (slot) to use. */
  readonly tokenLabel: string;
  /** User PIN. Read from a file or the environment by the caller, never from argv. */
  readonly pin: string;
  /** Sessions in the pool (default 4). */
  readonly sessions?: number;
  /**
   * The mechanism number under which the token offers RFC 5649 (AES key wrap
   * with padding): `pad` = 0x210A, CKM_AES_KEY_WRAP_PAD as SoftHSM2 and most
   * v2.40 tokens name it; `kwp` = 0x210B, CKM_AES_KEY_WRAP_KWP of PKCS#11 3.0.
   * docs/hsm.md lists which device uses which. Default `pad`.
   */
  readonly wrapMechanism?: 'pad' | 'kwp';
}

/** What a label names: an AES-256 key, an Ed25519 key pair, or an HMAC-SHA256 key. */
export type HsmKeyKind = 'aes' | 'ed25519' | 'hmac';

const P = pkcs11js;
/** DER of the Ed25519 curve OID 1.3.101.112 (RFC 8410), as CKA_EC_PARAMS. */
const ED25519_PARAMS = Buffer.from('06032b6570', 'hex');
const GCM_TAG_BITS = 128;
/** PKCS#11 v3.0 mechanisms that pkcs11js's constants predate. */
const CKM_EC_EDWARDS_KEY_PAIR_GEN = 0x1055;
const CKM_EDDSA = 0x1057;
const WRAP_MECHANISMS = { pad: 0x210a, kwp: 0x210b } as const;

function secretTemplate(kind: 'aes' | 'hmac', label: string): pkcs11js.Template {
  const common = [
    { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }, { type: P.CKA_TOKEN, value: true }, { type: P.CKA_PRIVATE, value: true },
    { type: P.CKA_SENSITIVE, value: true }, { type: P.CKA_EXTRACTABLE, value: false }, { type: P.CKA_LABEL, value: label },
    { type: P.CKA_ID, value: Buffer.from(label) }, { type: P.CKA_VALUE_LEN, value: 32 },
  ];
  return kind === 'aes'
    ? [...common, { type: P.CKA_KEY_TYPE, value: P.CKK_AES }, { type: P.CKA_ENCRYPT, value: true }, { type: P.CKA_DECRYPT, value: true },
      { type: P.CKA_WRAP, value: true }, { type: P.CKA_UNWRAP, value: true }]
    : [...common, { type: P.CKA_KEY_TYPE, value: P.CKK_GENERIC_SECRET }, { type: P.CKA_SIGN, value: true }, { type: P.CKA_VERIFY, value: true }];
}

export class Pkcs11Token {
  private lib: Lib | null = null;
  private slot: Handle | null = null;
  private idle: Handle[] = [];
  /** A session of its own for the synchronous calls (signEd25519Sync): never in the pool. */
  private syncSession: Handle | null = null;
  private readonly waiters: { resolve(s: Handle): void; reject(e: Error): void }[] = [];
  /** Bumped on every reconnect: a failure seen under an older generation is already handled. */
  private generation = 0;
  private reconnecting: Promise<void> | null = null;
  private closed = false;

  private constructor(private readonly cfg: HsmConfig) {}

  /** Loads the module, finds the token, logs in and opens the session pool. */
  static async open(cfg: HsmConfig): Promise<Pkcs11Token> {
    const t = new Pkcs11Token(cfg);
    await t.connect();
    return t;
  }

  private get wrapMechanism(): number { return WRAP_MECHANISMS[this.cfg.wrapMechanism ?? 'pad']; }

  /** Sessions in the pool. */
  get size(): number { return this.cfg.sessions ?? 4; }

  private async connect(): Promise<void> {
    await Promise.resolve(); // always settle asynchronously, after the caller has stored this promise
    const lib = new P.PKCS11();
    try {
      lib.load(this.cfg.module);
    } catch (e) {
      throw new HsmError('KW_HSM_MODULE_MISSING', `cannot load the PKCS#11 module '${this.cfg.module}'`, { cause: e });
    }
    try {
      try {
        lib.C_Initialize({ flags: P.CKF_OS_LOCKING_OK }); // operations run on several threads (pkcs11js async calls)
      } catch (e) {
        if (!/CKR_CRYPTOKI_ALREADY_INITIALIZED/.test(String(e))) throw e;
      }
      const slot = lib.C_GetSlotList(true).find((s) => lib.C_GetTokenInfo(s).label.trim() === this.cfg.tokenLabel);
      if (!slot) throw new HsmError('KW_HSM_TOKEN_MISSING', `no token labelled '${this.cfg.tokenLabel}' is present`);
      const sessions: Handle[] = [];
      for (let i = 0; i < this.size; i++) sessions.push(lib.C_OpenSession(slot, P.CKF_RW_SESSION | P.CKF_SERIAL_SESSION));
      const syncSession = lib.C_OpenSession(slot, P.CKF_SERIAL_SESSION);
      try {
        lib.C_Login(sessions[0]!, P.CKU_USER, this.cfg.pin); // one login covers every session of this application
      } catch (e) {
        if (!/CKR_USER_ALREADY_LOGGED_IN/.test(String(e))) throw e;
      }
      this.lib = lib;
      this.slot = slot;
      this.idle = sessions;
      this.syncSession = syncSession;
    } catch (e) {
      try { lib.C_Finalize(); } catch { /* already gone */ }
      try { lib.close(); } catch { /* already gone */ }
      throw fromPkcs11(e, 'opening the HSM token');
    }
  }

  private disconnect(): void {
    const lib = this.lib;
    this.lib = null;
    this.slot = null;
    this.idle = [];
    this.syncSession = null;
    if (!lib) return;
    try { lib.C_Finalize(); } catch { /* the library may already be finalized */ }
    try { lib.close(); } catch { /* ditto */ }
  }

  /**
   * One reconnect for everyone who saw generation `seen` fail; waiting
   * operations get the new sessions, or the failure.
   */
  private reconnect(seen: number): Promise<void> {
    if (this.generation !== seen) return this.reconnecting ?? Promise.resolve();
    this.generation++; // sessions of the old connection are dropped when released
    this.reconnecting = (async () => {
      this.disconnect();
      try {
        await this.connect();
      } catch (e) {
        const err = isHsmError(e) && (e.code === 'KW_HSM_PIN_INCORRECT' || e.code === 'KW_HSM_MODULE_MISSING')
          ? e : new HsmError('KW_HSM_UNAVAILABLE', `the HSM did not come back (${isHsmError(e) ? e.code : 'error'})`, { cause: e });
        for (const w of this.waiters.splice(0)) w.reject(err);
        throw err;
      }
      while (this.idle.length && this.waiters.length) this.waiters.shift()!.resolve(this.idle.pop()!);
    })().finally(() => { this.reconnecting = null; });
    return this.reconnecting;
  }

  private acquire(): Promise<{ lib: Lib; session: Handle; generation: number }> {
    if (this.closed) return Promise.reject(new HsmError('KW_HSM_UNAVAILABLE', 'the HSM token was closed'));
    const take = (session: Handle) => ({ lib: this.lib!, session, generation: this.generation });
    const s = this.lib ? this.idle.pop() : undefined;
    if (s) return Promise.resolve(take(s));
    const waiting = new Promise<Handle>((resolve, reject) => this.waiters.push({ resolve, reject }));
    // Not connected (an earlier reconnect failed): try again now, the token may be back.
    if (!this.lib && !this.reconnecting) this.reconnect(this.generation).catch(() => undefined);
    return waiting.then(take);
  }

  private release(session: Handle, generation: number): void {
    if (generation !== this.generation || !this.lib) return; // a session of a previous connection
    const w = this.waiters.shift();
    if (w) w.resolve(session);
    else this.idle.push(session);
  }

  /**
   * Runs `fn` on a pooled session. After a connection-level failure, reconnects
   * (once, shared) and retries once; a second failure is reported as such.
   */
  private async run<T>(what: string, fn: (lib: Lib, session: Handle) => Promise<T> | T): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const { lib, session, generation } = await this.acquire();
      try {
        return await fn(lib, session);
      } catch (e) {
        let err = fromPkcs11(e, what);
        if ((err.code === 'KW_HSM_FAILED' || err.code === 'KW_HSM_KEY_MISSING') && !this.answers(lib)) {
          // A token whose store went away (SoftHSM2: its directory moved; a device that lost power) can fail with a
          // generic CKR_GENERAL_ERROR or find no object, and stays broken in this connection even once it is back.
          err = new HsmError('KW_HSM_UNAVAILABLE', `${what}: the token does not answer (${err.ckr ?? err.code})`, { cause: err, ckr: err.ckr });
        }
        if (err.code !== 'KW_HSM_UNAVAILABLE' || attempt > 0 || this.closed) throw err;
        await this.reconnect(generation); // throws KW_HSM_UNAVAILABLE when the token does not come back
      } finally {
        this.release(session, generation); // dropped if a reconnect replaced this connection meanwhile
      }
    }
  }

  /** True when the token still answers C_GetTokenInfo on this connection (it cannot fail for the caller's input). */
  private answers(lib: Lib): boolean {
    if (lib !== this.lib || !this.slot) return false;
    try {
      lib.C_GetTokenInfo(this.slot);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Some tokens (SoftHSM2 among them) answer CKR_GENERAL_ERROR when a wrapped
   * blob or ciphertext does not authenticate. If the token still answers, that
   * is an integrity failure; if not, the HSM is unavailable.
   */
  private async integrity<T>(p: Promise<T>, what: string): Promise<T> {
    try {
      return await p;
    } catch (e) {
      if (!isHsmError(e, 'KW_HSM_FAILED') || e.ckr !== 'CKR_GENERAL_ERROR') throw e;
      await this.ping();
      throw new HsmError('KW_HSM_INTEGRITY', `${what}: does not authenticate under this key`, { cause: e, ckr: e.ckr });
    }
  }

  private find(lib: Lib, session: Handle, label: string, cls: number, kind?: HsmKeyKind): Handle | null {
    const keyType = kind === 'aes' ? P.CKK_AES : kind === 'hmac' ? P.CKK_GENERIC_SECRET : null;
    lib.C_FindObjectsInit(session, [
      { type: P.CKA_CLASS, value: cls }, { type: P.CKA_LABEL, value: label },
      ...(keyType === null ? [] : [{ type: P.CKA_KEY_TYPE, value: keyType }]),
    ]);
    try {
      return lib.C_FindObjects(session, 1)[0] ?? null;
    } finally {
      lib.C_FindObjectsFinal(session);
    }
  }

  private key(lib: Lib, session: Handle, label: string, cls: number, kind: HsmKeyKind): Handle {
    const h = this.find(lib, session, label, cls, kind);
    if (!h) throw new HsmError('KW_HSM_KEY_MISSING', `the HSM holds no ${kind} key labelled '${label}'`);
    return h;
  }

  /** True when a key of this kind and label exists. */
  has(kind: HsmKeyKind, label: string): Promise<boolean> {
    return this.run(`looking up '${label}'`, (lib, s) => this.find(lib, s, label, kind === 'ed25519' ? P.CKO_PRIVATE_KEY : P.CKO_SECRET_KEY, kind) !== null);
  }

  /** Generates a non-extractable key (pair) inside the HSM. KW_HSM_KEY_EXISTS if the label is taken. */
  generate(kind: HsmKeyKind, label: string): Promise<void> {
    return this.run(`generating ${kind} key '${label}'`, async (lib, s) => {
      if (this.find(lib, s, label, kind === 'ed25519' ? P.CKO_PRIVATE_KEY : P.CKO_SECRET_KEY)) throw new HsmError('KW_HSM_KEY_EXISTS', `the HSM already holds a key labelled '${label}'`);
      if (kind === 'ed25519') {
        const id = Buffer.from(label);
        await lib.C_GenerateKeyPairAsync(s, { mechanism: CKM_EC_EDWARDS_KEY_PAIR_GEN }, [
          { type: P.CKA_TOKEN, value: true }, { type: P.CKA_VERIFY, value: true }, { type: P.CKA_EC_PARAMS, value: ED25519_PARAMS },
          { type: P.CKA_LABEL, value: label }, { type: P.CKA_ID, value: id },
        ], [
          { type: P.CKA_TOKEN, value: true }, { type: P.CKA_PRIVATE, value: true }, { type: P.CKA_SIGN, value: true },
          { type: P.CKA_SENSITIVE, value: true }, { type: P.CKA_EXTRACTABLE, value: false }, { type: P.CKA_LABEL, value: label }, { type: P.CKA_ID, value: id },
        ]);
        return;
      }
      const mechanism = kind === 'aes' ? P.CKM_AES_KEY_GEN : P.CKM_GENERIC_SECRET_KEY_GEN;
      await lib.C_GenerateKeyAsync(s, { mechanism }, secretTemplate(kind, label));
    });
  }

  /** The raw 32-byte Ed25519 public key of the pair labelled `label`. */
  ed25519PublicKey(label: string): Promise<Uint8Array> {
    return this.run(`reading public key '${label}'`, (lib, s) => {
      const h = this.key(lib, s, label, P.CKO_PUBLIC_KEY, 'ed25519');
      const point = lib.C_GetAttributeValue(s, h, [{ type: P.CKA_EC_POINT }])[0]!.value;
      // CKA_EC_POINT is a DER OCTET STRING around the 32 raw bytes (some tokens omit the wrapper).
      const raw = point.length === 34 && point[0] === 0x04 && point[1] === 0x20 ? point.subarray(2) : point;
      if (raw.length !== 32) throw new HsmError('KW_HSM_FAILED', `unexpected Ed25519 public key encoding (${point.length} bytes)`);
      return new Uint8Array(raw);
    });
  }

  /** Ed25519 signature (64 bytes) by the HSM-resident key. */
  signEd25519(label: string, message: Uint8Array): Promise<Uint8Array> {
    return this.run(`signing with '${label}'`, async (lib, s) => {
      const h = this.key(lib, s, label, P.CKO_PRIVATE_KEY, 'ed25519');
      lib.C_SignInit(s, { mechanism: CKM_EDDSA }, h);
      return new Uint8Array(await lib.C_SignAsync(s, Buffer.from(message), Buffer.alloc(64)));
    });
  }

  /**
   * Ed25519 signature, synchronously, on a session reserved for it: for
   * callers whose interface is synchronous (the audit checkpoint's C2SP
   * NoteSigner). It blocks the event loop for one C_Sign (well under a
   * millisecond on SoftHSM2; a network HSM's round trip otherwise), which is
   * acceptable for checkpoints (at most one a second). A connection-level
   * failure is KW_HSM_UNAVAILABLE and starts the shared reconnect in the
   * background; the next call after it succeeds uses the new connection.
   */
  signEd25519Sync(label: string, message: Uint8Array): Uint8Array {
    if (this.closed) throw new HsmError('KW_HSM_UNAVAILABLE', 'the HSM token was closed');
    const lib = this.lib;
    const s = this.syncSession;
    if (!lib || !s) {
      if (!this.reconnecting) this.reconnect(this.generation).catch(() => undefined);
      throw new HsmError('KW_HSM_UNAVAILABLE', 'the HSM is not connected (reconnecting)');
    }
    const generation = this.generation;
    try {
      const h = this.key(lib, s, label, P.CKO_PRIVATE_KEY, 'ed25519');
      lib.C_SignInit(s, { mechanism: CKM_EDDSA }, h);
      return new Uint8Array(lib.C_Sign(s, Buffer.from(message), Buffer.alloc(64)));
    } catch (e) {
      let err = fromPkcs11(e, `signing with '${label}'`);
      if ((err.code === 'KW_HSM_FAILED' || err.code === 'KW_HSM_KEY_MISSING') && !this.answers(lib)) {
        err = new HsmError('KW_HSM_UNAVAILABLE', `signing with '${label}': the token does not answer (${err.ckr ?? err.code})`, { cause: err, ckr: err.ckr });
      }
      if (err.code === 'KW_HSM_UNAVAILABLE') this.reconnect(generation).catch(() => undefined);
      throw err;
    }
  }

  /** HMAC-SHA256 by the HSM-resident key. */
  hmacSha256(label: string, message: Uint8Array): Promise<Uint8Array> {
    return this.run(`HMAC with '${label}'`, async (lib, s) => {
      const h = this.key(lib, s, label, P.CKO_SECRET_KEY, 'hmac');
      lib.C_SignInit(s, { mechanism: P.CKM_SHA256_HMAC }, h);
      return new Uint8Array(await lib.C_SignAsync(s, Buffer.from(message), Buffer.alloc(32)));
    });
  }

  private gcm(iv: Uint8Array, aad: Uint8Array): pkcs11js.Mechanism {
    return {
      mechanism: P.CKM_AES_GCM,
      parameter: { type: P.CK_PARAMS_AES_GCM, iv: Buffer.from(iv), aad: Buffer.from(aad), ivBits: iv.length * 8, tagBits: GCM_TAG_BITS } as pkcs11js.AesGCM,
    };
  }

  /** AES-256-GCM by the HSM-resident key: ciphertext ‖ 16-byte tag. */
  encryptGcm(label: string, iv: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Promise<Uint8Array> {
    return this.run(`encrypting with '${label}'`, async (lib, s) => {
      const h = this.key(lib, s, label, P.CKO_SECRET_KEY, 'aes');
      lib.C_EncryptInit(s, this.gcm(iv, aad), h);
      return new Uint8Array(await lib.C_EncryptAsync(s, Buffer.from(plaintext), Buffer.alloc(plaintext.length + 16)));
    });
  }

  /** Opens what encryptGcm made; KW_HSM_INTEGRITY when it does not authenticate. */
  decryptGcm(label: string, iv: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array): Promise<Uint8Array> {
    return this.integrity(this.run(`decrypting with '${label}'`, async (lib, s) => {
      const h = this.key(lib, s, label, P.CKO_SECRET_KEY, 'aes');
      lib.C_DecryptInit(s, this.gcm(iv, aad), h);
      return new Uint8Array(await lib.C_DecryptAsync(s, Buffer.from(ciphertext), Buffer.alloc(ciphertext.length)));
    }), `decrypting with '${label}'`);
  }

  /**
   * Wraps `material` under the AES key `kekLabel` with RFC 5649 (AES key wrap
   * with padding). The material enters the HSM as a session object that is
   * destroyed right after.
   */
  wrapPad(kekLabel: string, material: Uint8Array): Promise<Uint8Array> {
    return this.run(`wrapping under '${kekLabel}'`, async (lib, s) => {
      const kek = this.key(lib, s, kekLabel, P.CKO_SECRET_KEY, 'aes');
      const value = Buffer.from(material);
      const obj = lib.C_CreateObject(s, [
        { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_GENERIC_SECRET },
        { type: P.CKA_TOKEN, value: false }, { type: P.CKA_EXTRACTABLE, value: true }, { type: P.CKA_SENSITIVE, value: false },
        { type: P.CKA_VALUE, value },
      ]);
      value.fill(0);
      try {
        const out = await lib.C_WrapKeyAsync(s, { mechanism: this.wrapMechanism }, kek, obj, Buffer.alloc(material.length + 16));
        return new Uint8Array(out);
      } finally {
        lib.C_DestroyObject(s, obj);
      }
    });
  }

  /** Reverses wrapPad; KW_HSM_INTEGRITY when the blob does not unwrap under this key. */
  unwrapPad(kekLabel: string, blob: Uint8Array): Promise<Uint8Array> {
    return this.integrity(this.run(`unwrapping under '${kekLabel}'`, async (lib, s) => {
      const kek = this.key(lib, s, kekLabel, P.CKO_SECRET_KEY, 'aes');
      const obj = await lib.C_UnwrapKeyAsync(s, { mechanism: this.wrapMechanism }, kek, Buffer.from(blob), [
        { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_GENERIC_SECRET },
        { type: P.CKA_TOKEN, value: false }, { type: P.CKA_EXTRACTABLE, value: true }, { type: P.CKA_SENSITIVE, value: false },
      ]);
      try {
        const value = lib.C_GetAttributeValue(s, obj, [{ type: P.CKA_VALUE }])[0]!.value;
        const out = new Uint8Array(value);
        value.fill(0);
        return out;
      } finally {
        lib.C_DestroyObject(s, obj);
      }
    }), `unwrapping under '${kekLabel}'`);
  }

  /** Destroys the key (pair) labelled `label` in the HSM. */
  destroy(kind: HsmKeyKind, label: string): Promise<void> {
    return this.run(`destroying '${label}'`, (lib, s) => {
      const classes = kind === 'ed25519' ? [P.CKO_PRIVATE_KEY, P.CKO_PUBLIC_KEY] : [P.CKO_SECRET_KEY];
      let found = false;
      for (const cls of classes) {
        const h = this.find(lib, s, label, cls);
        if (h) { lib.C_DestroyObject(s, h); found = true; }
      }
      if (!found) throw new HsmError('KW_HSM_KEY_MISSING', `the HSM holds no ${kind} key labelled '${label}'`);
    });
  }

  /** A cheap round trip to the token (health checks). */
  ping(): Promise<void> {
    return this.run('checking the HSM', (lib) => { lib.C_GetTokenInfo(this.slot!); });
  }

  /** Logs out, closes the sessions and unloads the module. */
  close(): void {
    this.closed = true;
    this.disconnect();
  }
}
