/**
 * HSM-wrapped custody (docs/hsm.md, issue #5): the master key is wrapped by a
 * non-extractable AES-256 key inside a PKCS#11 token, and the keyholder
 * unseals itself at start by asking the HSM to unwrap it — no shares needed.
 *
 *   init:   mk          = random(32)
 *           K_hsm       = C_GenerateKey(CKM_AES_KEY_GEN, 256, sensitive, never extractable)   label keyward-mk-<init id>
 *           wrapped     = RFC 5649(K_hsm, mk)              (C_WrapKey, CKM_AES_KEY_WRAP_PAD 0x210A or _KWP 0x210B)
 *           rk          = random(32)                        the recovery key
 *           shares      = Shamir(rk, n, k)                  shares of rk, NOT of mk
 *           state       = custody { initId, threshold, shareHashes (of rk's shares),
 *                                   mkCheck       = HMAC-SHA256(mk, "keyward/v1 mk-check"),
 *                                   recoveryCheck = HMAC-SHA256(rk, "keyward/v1 recovery-check"),
 *                                   hsm { module, tokenLabel, keyLabel, wrapMechanism, wrappedMasterKey } }
 *           rk and mk are wiped.
 *   start:  mk' = C_UnwrapKey(K_hsm, wrapped) → CKA_VALUE; mkCheck compared in constant time; activate.
 *
 * The shares are of rk, which is independent of mk: k shares rebuild rk and
 * nothing else, so without the HSM (or a vendor backup of K_hsm) neither the
 * shares nor the state file nor the store open a single key. They authorise
 * recovery operations (Vault's recovery keys); today that is proving quorum
 * possession (`recovery-share`), see docs/hsm.md §Recovery shares.
 *
 * With `--hsm-audit-key` the audit checkpoint key is an Ed25519 pair generated
 * in the HSM (label keyward-audit-<init id>); the state keeps its label and
 * verifier key, and checkpoints are signed by the HSM synchronously
 * (Pkcs11Token.signEd25519Sync), so tlog's synchronous NoteSigner and the
 * frontier stay as they are.
 *
 * The PIN is given by the caller (read from a file, an inherited descriptor
 * or the environment, never argv), passed only to C_Login, and never logged
 * or stored.
 */
import { SIGNATURE_TYPE_ED25519, keyId, parseVerifierKey, type NoteSigner } from '@keyward/tlog';
import { HsmError, isHsmError } from '../hsm/errors.js';
import { Pkcs11Token, type HsmConfig } from '../hsm/token.js';
import { fromBase64url, fromHex, toBase64url, toHex, utf8 } from './bytes.js';
import { MASTER_KEY_LENGTH, initCustody, mkCheckOf, type CustodyState, type ShareFile } from './custody.js';
import { KeyholderError, isKeyholderError } from './errors.js';
import type { HsmCustody } from './hsm-state.js';
import { equalCT, hmacSha256, randomBytes, wipe } from './primitives.js';
import type { AuditState } from './state.js';
import { Unsealer } from './unsealer.js';

const RECOVERY_CHECK_LABEL = utf8.encode('keyward/v1 recovery-check');

/** HMAC-SHA256(rk, "keyward/v1 recovery-check"): recognises the recovery key without storing it. */
export function recoveryCheckOf(recoveryKey: Uint8Array): Uint8Array {
  return hmacSha256(recoveryKey, RECOVERY_CHECK_LABEL);
}

/** The label of the master-key wrapping key made at init. */
export const masterKeyLabel = (initId: string): string => `keyward-mk-${initId}`;
/** The label of the audit checkpoint key pair made at init with `--hsm-audit-key`. */
export const auditKeyLabel = (initId: string): string => `keyward-audit-${initId}`;

/** Where the HSM is and how to log in. */
export interface HsmConnection {
  readonly module: string;
  readonly tokenLabel: string;
  /** The user PIN (from a file or the environment; never argv). */
  readonly pin: string;
  readonly wrapMechanism?: 'pad' | 'kwp';
}

export interface HsmInitOptions extends HsmConnection {
  readonly shares?: number;
  readonly threshold?: number;
  /** Generate the audit checkpoint key pair in the HSM too. */
  readonly auditKey?: boolean;
  /** Opens the token (tests inject one); default Pkcs11Token.open. */
  readonly openToken?: (cfg: HsmConfig) => Promise<Pkcs11Token>;
}

export interface HsmInitResult {
  /** The 32-byte master key (the caller wipes it after building the state). */
  readonly masterKey: Uint8Array;
  readonly initId: string;
  /** Recovery shares (of the recovery key, not of the master key). */
  readonly shares: readonly ShareFile[];
  /** The custody fragment, with `hsm` and `recoveryCheck`. */
  readonly state: CustodyState;
  /** The checkpoint key pair in the HSM, with --hsm-audit-key. */
  readonly auditKey: { readonly label: string; readonly publicKey: Uint8Array } | null;
}

/**
 * `keyward init --hsm-…`: generates the wrapping key (and optionally the
 * checkpoint key) in the HSM, wraps a fresh master key under it, checks the
 * round trip, and splits a separate recovery key. HSM errors keep their
 * typed codes (KW_HSM_*). A failure after a key was generated destroys it.
 */
export async function initHsmCustody(opts: HsmInitOptions): Promise<HsmInitResult> {
  const wrapMechanism = opts.wrapMechanism ?? 'pad';
  const recovery = await initCustody({ shares: opts.shares ?? 5, threshold: opts.threshold ?? 3 });
  const { initId } = recovery;
  const open = opts.openToken ?? ((cfg: HsmConfig) => Pkcs11Token.open(cfg));
  let token: Pkcs11Token | null = null;
  const made: { kind: 'aes' | 'ed25519'; label: string }[] = [];
  const masterKey = randomBytes(MASTER_KEY_LENGTH);
  try {
    token = await open({ module: opts.module, tokenLabel: opts.tokenLabel, pin: opts.pin, sessions: 1, wrapMechanism });
    const keyLabel = masterKeyLabel(initId);
    await token.generate('aes', keyLabel);
    made.push({ kind: 'aes', label: keyLabel });
    const wrapped = await token.wrapPad(keyLabel, masterKey);
    const back = await token.unwrapPad(keyLabel, wrapped);
    const same = equalCT(back, masterKey);
    wipe(back);
    if (!same) throw new HsmError('KW_HSM_FAILED', 'the HSM did not unwrap the master key it had just wrapped');
    let auditKey: HsmInitResult['auditKey'] = null;
    if (opts.auditKey) {
      const label = auditKeyLabel(initId);
      await token.generate('ed25519', label);
      made.push({ kind: 'ed25519', label });
      auditKey = { label, publicKey: await token.ed25519PublicKey(label) };
    }
    const hsm: HsmCustody = { module: opts.module, tokenLabel: opts.tokenLabel, keyLabel, wrapMechanism, wrappedMasterKey: toBase64url(wrapped) };
    const state: CustodyState = {
      ...recovery.state,
      mkCheck: toHex(mkCheckOf(masterKey)),
      recoveryCheck: toHex(recoveryCheckOf(recovery.masterKey)),
      hsm,
    };
    made.length = 0; // kept from here on
    return { masterKey, initId, shares: recovery.shares, state, auditKey };
  } catch (e) {
    wipe(masterKey);
    for (const k of made) await token?.destroy(k.kind, k.label).catch(() => undefined);
    throw e;
  } finally {
    wipe(recovery.masterKey);
    token?.close();
  }
}

/**
 * A C2SP note signer (Ed25519, type 0x01) whose key is in the HSM. `onError`
 * hears every HSM failure (the keyholder reports it in `status`).
 */
export function hsmNoteSigner(token: Pkcs11Token, label: string, name: string, publicKey: Uint8Array, onError: (e: HsmError) => void = () => undefined): NoteSigner {
  const id = keyId(name, SIGNATURE_TYPE_ED25519, publicKey);
  return Object.freeze({
    name, keyId: id,
    sign: (text: Uint8Array) => {
      try {
        return token.signEd25519Sync(label, text);
      } catch (e) {
        if (isHsmError(e)) onError(e);
        throw e;
      }
    },
  });
}

/** What `status` says about the HSM. */
export interface HsmStatus {
  /**
   * `connecting` (first attempt running), `available` (unsealed from the HSM,
   * token answering), `unavailable` (retrying every `retryMs`), `failed` (not
   * retried: a wrong PIN would lock the token, a blob that does not unwrap or a
   * key that fails its check will not heal; fix and restart), `sealed` (an
   * operator sealed it; a restart auto-unseals again).
   */
  readonly state: 'connecting' | 'available' | 'unavailable' | 'failed' | 'sealed';
  /** The typed code of the last failure (KW_HSM_*, KW_UNSEAL_FAILED), or null. */
  readonly code: string | null;
  readonly message: string | null;
  readonly tokenLabel: string;
  readonly keyLabel: string;
  /** The label of the checkpoint key pair when it is in the HSM. */
  readonly auditKeyLabel: string | null;
  readonly retryMs: number;
  readonly attempts: number;
}

/** Codes that retrying cannot fix (and a wrong PIN must not be retried: tokens lock after a few tries). */
const PERMANENT = new Set(['KW_HSM_PIN_INCORRECT', 'KW_HSM_INTEGRITY', 'KW_HSM_MECHANISM_UNSUPPORTED', 'KW_UNSEAL_FAILED', 'KW_INTERNAL']);

export interface HsmAutoUnsealOptions {
  readonly custody: CustodyState;
  readonly audit: AuditState;
  readonly pin: string;
  /** Retry period while the HSM is unavailable, and the health-check period once unsealed (default 5000 ms). */
  readonly retryMs?: number;
  /** Takes the unwrapped master key (and wipes it) and the HSM checkpoint signer, if any. */
  readonly activate: (masterKey: Uint8Array, signer: NoteSigner | null) => void;
  readonly log?: (msg: string, fields?: Record<string, string | number | boolean>) => void;
  readonly openToken?: (cfg: HsmConfig) => Promise<Pkcs11Token>;
}

/**
 * Auto-unseal from the HSM: one attempt at start, then every `retryMs` until
 * it succeeds (or fails permanently). Once unsealed it pings the token on the
 * same period, so `status` tells an operator the HSM went away before the
 * next restart needs it.
 */
export class HsmAutoUnseal {
  readonly #opts: HsmAutoUnsealOptions;
  readonly #hsm: HsmCustody;
  readonly #retryMs: number;
  #token: Pkcs11Token | null = null;
  #timer: NodeJS.Timeout | null = null;
  #state: HsmStatus['state'] = 'connecting';
  #code: string | null = null;
  #message: string | null = null;
  #attempts = 0;
  #stopped = false;
  #busy = false;

  constructor(opts: HsmAutoUnsealOptions) {
    if (!opts.custody.hsm) throw new KeyholderError('KW_INTERNAL', 'the custody state is not in HSM-wrapped mode');
    this.#opts = opts;
    this.#hsm = opts.custody.hsm;
    this.#retryMs = opts.retryMs ?? 5000;
  }

  /** The open token while unsealed (resident-key operations, benchmarks). */
  get token(): Pkcs11Token | null { return this.#token; }

  status(): HsmStatus {
    return {
      state: this.#state, code: this.#code, message: this.#message,
      tokenLabel: this.#hsm.tokenLabel, keyLabel: this.#hsm.keyLabel, auditKeyLabel: this.#opts.audit.hsmKeyLabel ?? null,
      retryMs: this.#retryMs, attempts: this.#attempts,
    };
  }

  /** Starts the first attempt (resolves when it is over, whatever its outcome). */
  start(): Promise<void> {
    return this.#attempt();
  }

  /** Seals: stops retrying and health checks, closes the token. A new keyholder start auto-unseals again. */
  stop(state: 'sealed' = 'sealed'): void {
    this.#stopped = true;
    this.#state = state;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#token?.close();
    this.#token = null;
  }

  /** Gives up without trying (no PIN was given): `failed` with a typed code. */
  giveUp(e: HsmError): void {
    this.stop();
    this.#state = 'failed';
    this.#fail(e);
  }

  #schedule(fn: () => Promise<void>): void {
    if (this.#stopped || this.#retryMs <= 0) return;
    this.#timer = setTimeout(() => { void fn(); }, this.#retryMs);
    this.#timer.unref();
  }

  #fail(e: unknown): void {
    const code = isHsmError(e) || isKeyholderError(e) ? e.code : 'KW_INTERNAL';
    this.#code = code;
    this.#message = e instanceof Error ? e.message : String(e);
  }

  /** Reported by the HSM checkpoint signer: the token is failing now. */
  reportError(e: HsmError): void {
    if (this.#stopped || this.#state !== 'available') return;
    if (e.code === 'KW_HSM_UNAVAILABLE' || e.code === 'KW_HSM_TOKEN_MISSING') {
      this.#state = 'unavailable';
      this.#fail(e);
    }
  }

  async #attempt(): Promise<void> {
    if (this.#stopped || this.#busy) return;
    this.#busy = true;
    this.#attempts++;
    const log = this.#opts.log ?? (() => undefined);
    let mk: Uint8Array | null = null;
    try {
      const open = this.#opts.openToken ?? ((cfg: HsmConfig) => Pkcs11Token.open(cfg));
      const token = await open({ module: this.#hsm.module, tokenLabel: this.#hsm.tokenLabel, pin: this.#opts.pin, wrapMechanism: this.#hsm.wrapMechanism });
      if (this.#stopped) { token.close(); return; }
      this.#token = token;
      mk = await token.unwrapPad(this.#hsm.keyLabel, fromBase64url(this.#hsm.wrappedMasterKey)!);
      const expected = fromHex(this.#opts.custody.mkCheck, 32)!;
      if (mk.length !== MASTER_KEY_LENGTH || !equalCT(mkCheckOf(mk), expected)) {
        throw new KeyholderError('KW_UNSEAL_FAILED', 'the key the HSM unwrapped fails the master-key check: the state file and the HSM key disagree');
      }
      let signer: NoteSigner | null = null;
      const { hsmKeyLabel, verifierKey, origin } = this.#opts.audit;
      if (hsmKeyLabel !== undefined) {
        const pub = await token.ed25519PublicKey(hsmKeyLabel);
        if (!equalCT(pub, parseVerifierKey(verifierKey).publicKey)) {
          throw new KeyholderError('KW_UNSEAL_FAILED', `the HSM key pair '${hsmKeyLabel}' is not the checkpoint key the state's verifier key names`);
        }
        signer = hsmNoteSigner(token, hsmKeyLabel, origin, pub, (e) => this.reportError(e));
      }
      if (this.#stopped) return;
      this.#opts.activate(mk, signer);
      mk = null; // activate wiped it
      this.#state = 'available';
      this.#code = null;
      this.#message = null;
      log('unsealed from the HSM', { token: this.#hsm.tokenLabel, key: this.#hsm.keyLabel, attempts: this.#attempts });
      this.#schedule(() => this.#health());
    } catch (e) {
      this.#fail(e);
      this.#token?.close();
      this.#token = null;
      if (PERMANENT.has(this.#code ?? '')) {
        this.#state = 'failed';
        log('HSM auto-unseal failed; not retrying (fix the cause and restart)', { code: this.#code ?? 'unknown' });
      } else {
        this.#state = 'unavailable';
        log('HSM unavailable; staying sealed and retrying', { code: this.#code ?? 'unknown', retryMs: this.#retryMs });
        this.#schedule(() => this.#attempt());
      }
    } finally {
      if (mk) wipe(mk);
      this.#busy = false;
    }
  }

  /** While unsealed: a round trip to the token every period, for `status`. */
  async #health(): Promise<void> {
    const token = this.#token;
    if (this.#stopped || !token) return;
    try {
      await token.ping();
      this.#state = 'available';
      this.#code = null;
      this.#message = null;
    } catch (e) {
      this.#state = 'unavailable';
      this.#fail(e);
    }
    this.#schedule(() => this.#health());
  }
}

/**
 * Recovery shares, submitted like unseal shares (sealed to the per-boot key),
 * checked like them (checksum, init, recorded hash, duplicates), and combined
 * at the threshold into the recovery key, which is checked against
 * `recoveryCheck` in constant time and wiped at once. Success proves a quorum
 * of custodians holds valid recovery shares; the recovery key itself opens
 * nothing (docs/hsm.md §Recovery shares).
 */
export class RecoveryVerifier {
  #unsealer: Unsealer;
  readonly #custody: CustodyState;

  constructor(custody: CustodyState) {
    if (custody.recoveryCheck === undefined) throw new KeyholderError('KW_INTERNAL', 'the custody state has no recovery check (not HSM-wrapped mode)');
    this.#custody = custody;
    this.#unsealer = this.#fresh();
  }

  #fresh(): Unsealer {
    return new Unsealer(this.#custody, { value: this.#custody.recoveryCheck!, of: recoveryCheckOf });
  }

  /** Submits one recovery share file; at the threshold, checks the quorum and starts a new round. */
  async submit(shareFile: Uint8Array): Promise<{ received: number; threshold: number; verified: boolean }> {
    let p;
    try {
      p = await this.#unsealer.submit(shareFile);
    } catch (e) {
      if (isKeyholderError(e, 'KW_UNSEAL_FAILED')) this.#unsealer = this.#fresh();
      throw e;
    }
    if (p.sealed) return { received: p.received, threshold: p.threshold, verified: false };
    wipe(p.masterKey);
    this.#unsealer = this.#fresh();
    return { received: p.received, threshold: p.threshold, verified: true };
  }

  reset(): void {
    this.#unsealer.reset();
    this.#unsealer = this.#fresh();
  }
}
