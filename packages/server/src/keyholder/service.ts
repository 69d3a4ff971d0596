/**
 * The keyholder service: the state machine and op dispatcher behind the
 * socket. It does not take the API's word (DESIGN.md, "The keyholder defends
 * itself"; docs/threat-model.md):
 *
 * - **Sealed until a quorum unseals it.** It starts sealed, with a fresh
 *   per-boot X25519 unseal key whose recipient `status` publishes; shares
 *   arrive sealed to it and go through custody's `Unsealer`. Every key op
 *   while sealed is KW_SEALED; `seal` drops the master key and starts a new
 *   unseal key.
 * - **No op without its event.** Every key op carries its audit event
 *   (canonical JSON); the event must be the next leaf (`index`), name the
 *   matching audit op with outcome `allowed`, and the namespace/key/version
 *   operated on. The op runs, then its leaf is appended, then — only then —
 *   the result is returned. A refused op appends nothing.
 * - **Data leaves only to the caller who signed for it.** `datakey`,
 *   `unwrap` and `decrypt` require the caller's RFC 9421-signed HTTP request
 *   (relayed untouched by the API) and the caller's registered device key.
 *   The keyholder checks that the recipient it seals to is the one named in
 *   the signed JSON body (and, when the body names them, the key, version,
 *   context and blob), then verifies the signature, time window and nonce
 *   itself (a replay is refused), and seals the secret to that recipient
 *   with the request hash bound into the HPKE context.
 * - **Blobs are bound to their key.** The API says which wrapped blob and
 *   version to use; wrap.ts's AAD makes a blob swapped between keys,
 *   versions, types or contexts fail (KW_WRAPPED_KEY_MISMATCH).
 * - **Never a fork.** The audit frontier (frontier.ts) signs only checkpoints
 *   that extend the last one, persisted before they are returned, and after a
 *   restart accepts only a frontier that matches its last signed checkpoint.
 *
 * Signature verification sits behind {@link RequestVerifier}; the default is
 * {@link HttpSigRequestVerifier}, the RFC 9421 profile of `@keyward/client`.
 *
 * @example
 * const service = await KeyholderService.open({ stateFile: new StateFile(path), verifier: new HttpSigRequestVerifier() });
 * const response = await service.handle({ id: 1, op: 'status', params: {} });
 */
import { isKeywardError } from '@keyward/core';
import { MemoryReplayCache, isHttpSigError, verifyRequest, type ReplayCache } from '@keyward/client';
import { parseVerifierKey, type NoteSigner } from '@keyward/tlog';
import { REDACT_LABEL } from '../audit/redact.js';
import { receiptMessage } from '../audit/receipt.js';
import { decodeUtf8, fromBase64url, fromHex, toBase64url, toHex, utf8 } from './bytes.js';
import { canonicalJson } from './canonical-json.js';
import { isKeyholderError } from './errors.js';
import { HsmError, isHsmError } from '../hsm/errors.js';
import { HsmAutoUnseal, RecoveryVerifier } from './hsm-custody.js';
import { destroyResident, generateResident, isResidentMarker, loadResident } from './hsm-resident.js';
import type { Pkcs11Token } from '../hsm/token.js';
import { AuditFrontier, type FrontierLimits, type TreeHead } from './frontier.js';
import { ImportTokens, importParamsMessage, unwrapImport } from './import.js';
import { generateVersion, importVersion, loadVersion, type KeyVersion } from './keys.js';
import { checkContext, parseCallerRecipient, sealToCaller } from './ops/caller.js';
import { datakey } from './ops/datakey.js';
import { AttestNonces, releaseDataKey } from './ops/release.js';
import { PLATFORM_OF_EVIDENCE, attestRefusal, checkPolicyText, keyholderAttestRoots, summarizeClaims, verifyReleaseEvidence, type KeyholderAttestRoots } from './ops/release-verify.js';
import { evaluatePolicy, startAkEnrollment } from '@keyward/attest';
import { decryptAny } from './ops/decrypt.js';
import { encryptAny } from './ops/encrypt.js';
import { macAny, verifyMacAny } from './ops/mac.js';
import { headerContext, openForRecipient } from './ops/open.js';
import { rewrapDataKeyAny } from './ops/rewrap.js';
import { signAny } from './ops/sign.js';
import { unwrapDataKey } from './ops/unwrap.js';
import { verify } from './ops/verify.js';
import { totpNew, totpVerify } from './ops/totp.js';
import { adopt as adoptGovernance, checkDestroyApproval, enforce as enforceGovernance, genesis as governanceGenesis, loadSigned, type SignedSnapshot } from './governance.js';
import { isMfaError } from '../mfa/errors.js';
import { snapshotSignatureMessage } from '../mfa/governance.js';
import { ed25519PublicKey, ed25519Verify, hmacSha256, secretKeyObject, sha256, wipe, type KeyObject } from './primitives.js';
import {
  KeyholderProtocolError, OPS, PROTOCOL_ERRORS, errorResponse, requestSchema,
  type KeyOp, type KeyholderResponse, type Op, type OpParams, type OpResult, type ParsedParams, type RequestId,
} from './protocol.js';
import type { Context, VersionRef } from './schemas.js';
import { openCheckpointSigner, type DirectoryState, type KeyholderState, type StateFile } from './state.js';
import { buildDirectoryState, checkConsistent, checkExtends, directoryHeadLogSeed, directorySign, directoryVrf, parseTbs, sameDirectoryKeys } from './directory-keys.js';
import { UnsealKey } from './unseal-key.js';
import { VerifiedRequests, bindEncrypt, bindMessage, bindRelease, bindRewrapItem, checkTarget, isPlainObject, requestDigest, sameContext, signedBody, type SignedOp } from './signed-ops.js';
import { VersionCache } from './version-cache.js';
import { Unsealer } from './unsealer.js';
import { RekeyAttempt } from './rekey.js';
import { applyShareSet, custodyRecord, generationOf, isShareOfSet, supersedes, verifyCustodyRecord } from './custody-sync.js';
import type { CustodyState } from './custody.js';

// ---------------------------------------------------------------------------
// Request verification

/** The caller's registered device key, as the API relays it. */
export interface DeviceKeyRecord {
  readonly keyId: string;
  readonly principal: string;
  /** 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array;
}

/** The caller's signed HTTP request exactly as the API received it. */
export interface SignedHttpRequest {
  readonly method: string;
  /** Absolute target URI (`https://host/path?query`). */
  readonly url: string;
  readonly headers: Readonly<Record<string, string | readonly string[]>>;
  readonly body: Uint8Array;
}

/** What a verified request vouches for. */
export interface VerifiedCaller {
  readonly keyId: string;
  readonly principal: string;
  readonly nonce: string;
  readonly created: number;
  /** {@link requestHashOf} the request: bound into the sealed secret's context as `kw_request`. */
  readonly requestHash: Uint8Array;
}

/**
 * Checks a caller's signed request against its device key. Resolves only
 * when the signature verifies over the method, target, body digest, creation
 * time and nonce, within the time window, and the nonce was never seen
 * (recorded atomically). Throws KeyholderProtocolError
 * KW_REQUEST_UNAUTHENTICATED or KW_REQUEST_REPLAYED; never returns `false`.
 */
export interface RequestVerifier {
  verify(request: SignedHttpRequest, device: DeviceKeyRecord): Promise<VerifiedCaller>;
}

/** The value of a header field as RFC 9421 uses it: lines trimmed of SP/HTAB, joined with ", ". */
function fieldValue(headers: SignedHttpRequest['headers'], name: string): string | undefined {
  const lines: string[] = [];
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() !== name) continue;
    for (const line of typeof v === 'string' ? [v] : v) lines.push(line.replace(/^[ \t]+|[ \t]+$/g, ''));
  }
  return lines.length === 0 ? undefined : lines.join(', ');
}

/**
 * The request hash a released secret is bound to (`kw_request` in its
 * context): SHA-256(Signature-Input ‖ LF ‖ Signature), the two field values
 * as sent. The signature covers method, target, body digest, time and nonce,
 * and Ed25519 signatures are deterministic, so this names one signed request.
 * The caller computes the same from the fields `signRequest` returned.
 *
 * @example
 * const h = requestHashOf({ 'Signature-Input': sig['Signature-Input'], Signature: sig.Signature });
 */
export function requestHashOf(headers: SignedHttpRequest['headers']): Uint8Array {
  const input = fieldValue(headers, 'signature-input');
  const signature = fieldValue(headers, 'signature');
  if (input === undefined || signature === undefined) {
    throw new KeyholderProtocolError('KW_REQUEST_UNAUTHENTICATED', 'the request has no Signature-Input or Signature field', { details: { reason: 'HTTPSIG_MISSING' } });
  }
  return sha256(utf8.encode(input), Uint8Array.of(0x0a), utf8.encode(signature));
}

/** Device public keys kept imported by {@link HttpSigRequestVerifier}. */
const DEVICE_KEY_CACHE_SIZE = 1024;

/**
 * {@link RequestVerifier} over `@keyward/client`'s RFC 9421 profile
 * (Ed25519, Content-Digest covered, created/nonce/keyid required), with an
 * in-memory replay cache scoped per device key. Because that cache does not
 * survive a restart, a request signed before this verifier was made
 * (`startedAt`, default: now) is refused: its nonce may already have been
 * used with the previous process.
 * The Ed25519 check itself is OpenSSL's (primitives.ts), about ten times
 * faster than the portable default of `verifyRequest`.
 */
export class HttpSigRequestVerifier implements RequestVerifier {
  readonly #replay: ReplayCache;
  readonly #now: () => number;
  readonly #maxAgeSeconds: number;
  readonly #maxSkewSeconds: number;
  readonly #startedAt: number;
  readonly #deviceKeys = new Map<string, KeyObject>();

  constructor(options: { replay?: ReplayCache; now?: () => number; maxAgeSeconds?: number; maxSkewSeconds?: number; startedAt?: number } = {}) {
    this.#replay = options.replay ?? new MemoryReplayCache({ maxEntries: 100_000 });
    this.#now = options.now ?? (() => Math.floor(Date.now() / 1000));
    this.#maxAgeSeconds = options.maxAgeSeconds ?? 300;
    this.#maxSkewSeconds = options.maxSkewSeconds ?? 30;
    this.#startedAt = options.startedAt ?? this.#now();
  }

  /**
   * The device public key as an OpenSSL KeyObject, imported once per key
   * (an import costs about as much as a verification); at most
   * DEVICE_KEY_CACHE_SIZE kept, least recently used dropped. Public keys only.
   */
  #publicKeyObject(raw: Uint8Array): KeyObject {
    const id = toHex(raw);
    let k = this.#deviceKeys.get(id);
    if (k) {
      this.#deviceKeys.delete(id);
    } else {
      k = ed25519PublicKey(raw);
      if (this.#deviceKeys.size >= DEVICE_KEY_CACHE_SIZE) this.#deviceKeys.delete(this.#deviceKeys.keys().next().value!);
    }
    this.#deviceKeys.set(id, k);
    return k;
  }

  async verify(request: SignedHttpRequest, device: DeviceKeyRecord): Promise<VerifiedCaller> {
    try {
      const v = await verifyRequest(
        { method: request.method, url: request.url, headers: request.headers, body: request.body },
        {
          keyLookup: (id) => (id === device.keyId ? device.publicKey : null),
          seenNonce: (nonce, ctx) => this.#replay.seen(nonce, ctx),
          now: this.#now(),
          maxAgeSeconds: this.#maxAgeSeconds,
          maxSkewSeconds: this.#maxSkewSeconds,
          verifySignature: (signature, message, publicKey) => ed25519Verify(this.#publicKeyObject(publicKey), message, signature),
        },
      );
      if (v.created < this.#startedAt) {
        throw new KeyholderProtocolError('KW_REQUEST_UNAUTHENTICATED', 'the request was signed before this keyholder started (its nonce may have been used with the previous one): sign it again', { details: { reason: 'HTTPSIG_EXPIRED' } });
      }
      return { keyId: v.keyId, principal: device.principal, nonce: v.nonce, created: v.created, requestHash: requestHashOf(request.headers) };
    } catch (e) {
      if (isHttpSigError(e, 'HTTPSIG_REPLAY')) throw new KeyholderProtocolError('KW_REQUEST_REPLAYED', 'the signed request was already used (nonce seen)', { details: { reason: e.code } });
      if (isHttpSigError(e)) throw new KeyholderProtocolError('KW_REQUEST_UNAUTHENTICATED', `the signed request does not verify: ${e.message}`, { details: { reason: e.code } });
      throw e;
    }
  }
}

// ---------------------------------------------------------------------------
// Audit events

/**
 * The reserved key name of a namespace's audit redaction HMAC key
 * (`<ns>/audit-hmac`, type `hmac-sha256`, audit/redact.ts). The keyholder
 * only generates versions of it and MACs redaction messages with it
 * (`hmac-audit`); every other key op on it is refused, so no caller can use
 * it as a MAC oracle, and `hmac-audit` refuses every other key.
 */
export const AUDIT_HMAC_KEY = 'audit-hmac';

/** Largest distance between a destroy receipt's time and the keyholder's clock. */
const RECEIPT_CLOCK_SKEW_MS = 5 * 60_000;

/** The audit event op names (audit/event.ts KNOWN_OPS) each key op's event may carry. */
export const AUDIT_EVENT_OPS: Readonly<Record<KeyOp, readonly string[]>> = Object.freeze({
  'generate-version': ['keys.create', 'keys.rotate'],
  'import-version': ['keys.import'],
  open: ['data.open'],
  datakey: ['data.datakey'],
  unwrap: ['data.unwrap'],
  rewrap: ['data.rewrap'],
  encrypt: ['data.encrypt'],
  decrypt: ['data.decrypt'],
  sign: ['data.sign'],
  verify: ['data.verify'],
  mac: ['data.mac'],
  'attest-release': ['attest.release'],
});

type EventObject = Readonly<Record<string, unknown>>;

const badEvent = (field: string, message: string) => new KeyholderProtocolError('KW_INVALID_ARGUMENT', message, { details: { field } });

/** Parses an event: strict UTF-8, a JSON object, in RFC 8785 canonical form (so its bytes are the leaf's). */
export function parseEvent(bytes: Uint8Array): EventObject {
  const text = decodeUtf8(bytes, 'the audit event');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw badEvent('event', 'the audit event is not JSON');
  }
  if (!isPlainObject(value)) throw badEvent('event', 'the audit event must be a JSON object');
  let canonical: string;
  try {
    canonical = canonicalJson(value);
  } catch (e) {
    throw new KeyholderProtocolError('KW_INVALID_ARGUMENT', 'the audit event is not canonical JSON (RFC 8785, integers only)', { cause: e, details: { field: 'event' } });
  }
  if (canonical !== text) throw badEvent('event', 'the audit event is not in canonical form (RFC 8785): its bytes would not be the leaf the log verifies');
  return value;
}

/** The event must be the next leaf: `index` equals the leaf index it is about to get. */
function checkEventIndex(event: EventObject, next: number): void {
  if (event.index !== next) {
    throw new KeyholderProtocolError('KW_AUDIT_CONFLICT', `the event says index ${JSON.stringify(event.index)}, but the next leaf is ${next}`, { details: { field: 'event.index' } });
  }
}

interface EventBinding {
  readonly ns: string;
  readonly key: string;
  /** The version operated on (omitted when the op spans two, as rewrap). */
  readonly version?: number;
}

/** A key op's event names the matching audit op, outcome `allowed`, and what the op touches. */
function checkEventBinding(event: EventObject, op: KeyOp, bind: EventBinding): void {
  const allowed = AUDIT_EVENT_OPS[op];
  if (typeof event.op !== 'string' || !allowed.includes(event.op)) {
    throw badEvent('event.op', `the event of a ${op} must have op ${allowed.map((o) => `"${o}"`).join(' or ')}, not ${JSON.stringify(event.op)}`);
  }
  if (event.outcome !== 'allowed') throw badEvent('event.outcome', `the event of an operation the keyholder performs must have outcome "allowed", not ${JSON.stringify(event.outcome)}`);
  if (event.ns !== bind.ns) throw badEvent('event.ns', `the event names namespace ${JSON.stringify(event.ns)}, the operation uses ${JSON.stringify(bind.ns)}`);
  const target = event.target;
  if (target === undefined) return;
  if (!isPlainObject(target)) throw badEvent('event.target', 'the event target must be an object');
  if (target.key !== undefined && target.key !== bind.key && target.key !== `${bind.ns}/${bind.key}`) {
    throw badEvent('event.target', `the event names key ${JSON.stringify(target.key)}, the operation uses ${bind.ns}/${bind.key}`);
  }
  if (bind.version !== undefined && target.version !== undefined && target.version !== bind.version) {
    throw badEvent('event.target', `the event names version ${JSON.stringify(target.version)}, the operation uses ${bind.version}`);
  }
}

// ---------------------------------------------------------------------------
// The service

/** A structured log line; callers never pass key bytes, shares or plaintexts. */
export type KeyholderLog = (msg: string, fields?: Record<string, string | number | boolean>) => void;

export interface KeyholderServiceOptions {
  readonly stateFile: StateFile;
  readonly verifier: RequestVerifier;
  readonly log?: KeyholderLog;
  readonly frontierLimits?: FrontierLimits;
  /** The clock of import tokens (tests); default Date.now. */
  readonly importClock?: () => number;
  /**
   * HSM-wrapped mode (hsm-custody.ts): the token PIN (never from argv) and
   * the retry period; used only when the state names an HSM.
   */
  readonly hsm?: { readonly pin: string; readonly retryMs?: number };
  /**
   * Attested release (ops/release-verify.ts): the trust roots this keyholder
   * verifies workloads' evidence with, and its clock (tests). Default: the
   * pinned vendor roots, no TPM roots, the system clock.
   */
  readonly attest?: { readonly roots?: KeyholderAttestRoots; readonly clock?: () => Date };
}

/** What exists only while unsealed. */
interface Unsealed {
  readonly mk: KeyObject;
  readonly signer: NoteSigner;
  /** Unwrapped key versions (version-cache.ts); emptied when the keyholder seals. */
  readonly versions: VersionCache;
}

type StoredVersion = ParsedParams<'datakey'>['version'];
type SignedRequest = ParsedParams<'datakey'>['request'];
type Handlers = { readonly [O in Op]: (params: ParsedParams<O>) => Promise<OpResult<O>> };

/** Largest batch of pending events in one response (base64url grows it by 4/3; a frame is 1 MiB). */
const PENDING_EVENTS_BYTES = 600 * 1024;
const REDACT_PREFIX = utf8.encode(REDACT_LABEL);

const b64u = toBase64url;
const refOf = (v: StoredVersion): VersionRef => ({ ns: v.ns, key: v.key, version: v.version, type: v.type });

/** Any thrown value as a protocol error (typed errors keep their code). */
export function toProtocolError(e: unknown): KeyholderProtocolError {
  if (e instanceof KeyholderProtocolError) return e;
  if (isKeyholderError(e)) return new KeyholderProtocolError(e.code, e.message, { cause: e, details: e.details });
  if (isMfaError(e)) return new KeyholderProtocolError(e.code, e.message, { cause: e });
  if (isHsmError(e)) return new KeyholderProtocolError(e.code, e.message, { cause: e, ...(e.ckr ? { details: { reason: e.ckr } } : {}) });
  if (isHttpSigError(e)) {
    return new KeyholderProtocolError(e.code === 'HTTPSIG_REPLAY' ? 'KW_REQUEST_REPLAYED' : 'KW_REQUEST_UNAUTHENTICATED', e.message, { cause: e, details: { reason: e.code } });
  }
  // Core's codes the protocol carries (envelope failures of `open`, argument errors) keep their code.
  if (isKeywardError(e) && e.code !== 'KW_INTERNAL' && Object.hasOwn(PROTOCOL_ERRORS, e.code)) {
    return new KeyholderProtocolError(e.code as keyof typeof PROTOCOL_ERRORS, e.message, { cause: e });
  }
  return new KeyholderProtocolError('KW_INTERNAL', 'internal error', { cause: e });
}

export class KeyholderService {
  readonly #stateFile: StateFile;
  readonly #verifier: RequestVerifier;
  readonly #log: KeyholderLog;
  readonly #limits: FrontierLimits | undefined;
  #state: KeyholderState | null;
  #frontier: AuditFrontier | null;
  #unsealer: Unsealer | null;
  #unsealKey: UnsealKey;
  #unsealed: Unsealed | null = null;
  #initializing = false;
  /** HSM-wrapped mode: the auto-unseal loop and the recovery-share checker. */
  readonly #hsmOpts: KeyholderServiceOptions['hsm'];
  #hsmUnseal: HsmAutoUnseal | null = null;
  #recovery: RecoveryVerifier | null = null;
  /** The rekey attempt (rekey.ts): at most one, in progress or completed (until cancelled or expired). */
  #rekey: RekeyAttempt | null = null;
  /** While sealed: an unsealer for a newer share set another node published (custody-sync.ts), keyed by its MAC. */
  #candidate: { readonly mac: string; readonly unsealer: Unsealer } | null = null;
  readonly #imports: ImportTokens;
  /** Release nonces (ops/release.ts): memory only, dropped on seal and shutdown. */
  readonly #attestNonces: AttestNonces;
  readonly #attestRoots: KeyholderAttestRoots;
  readonly #attestNow: () => Date;
  readonly #handlers: Handlers;
  /**
   * Tail of the leaf FIFO: ops that append a leaf (key ops, `append`) run one
   * after another in the order they arrived, each checking its event's index
   * when its turn comes, before it does anything. So the API may send a whole
   * group without waiting for each answer (audit-pipe.ts), and an op that
   * finds its index taken (the one before it was refused) has done nothing.
   */
  #leafTail: Promise<unknown> = Promise.resolve();
  /** The signed governance snapshot in force (governance.ts), from the state file; null before genesis. */
  #governance: SignedSnapshot | null = null;
  /** Governance changes run one at a time (each builds on the one before). */
  #govTail: Promise<unknown> = Promise.resolve();
  /** Signed rewrap requests this keyholder verified: their later items pass under the same signature (signed-ops.ts). */
  readonly #verifiedRewraps = new VerifiedRequests();
  /** Directory heads signed since this start (size → root hex), newest last; at most 256. */
  readonly #dirSigned = new Map<number, string>();
  /** State file changes run one at a time, each on the state the one before left ({@link #updateState}). */
  #stateTail: Promise<unknown> = Promise.resolve();

  private constructor(opts: KeyholderServiceOptions, state: KeyholderState | null, unsealKey: UnsealKey) {
    this.#stateFile = opts.stateFile;
    this.#verifier = opts.verifier;
    this.#log = opts.log ?? (() => undefined);
    this.#limits = opts.frontierLimits;
    this.#state = state;
    this.#frontier = state ? AuditFrontier.awaitingRestore(headOf(state), this.#limits) : null;
    this.#governance = state?.governance ? loadSigned(state.governance) : null;
    this.#unsealer = state ? new Unsealer(state.custody) : null;
    this.#unsealKey = unsealKey;
    this.#hsmOpts = opts.hsm;
    this.#imports = new ImportTokens(opts.importClock ? { now: opts.importClock } : {});
    this.#attestNonces = new AttestNonces(opts.importClock ? { now: opts.importClock } : {});
    this.#attestRoots = opts.attest?.roots ?? keyholderAttestRoots();
    this.#attestNow = opts.attest?.clock ?? (() => new Date());
    this.#handlers = {
      status: () => Promise.resolve(this.#status()),
      'init-state': (p) => this.#initState(p),
      'unseal-key': () => Promise.resolve(this.#unsealKeyInfo()),
      unseal: (p) => this.#unseal(p),
      'recovery-share': (p) => this.#recoveryShare(p),
      'rekey-start': (p) => this.#rekeyStart(p),
      'rekey-status': () => Promise.resolve(this.#rekeyStatus()),
      'rekey-share': (p) => this.#rekeyShare(p),
      'rekey-cancel': (p) => Promise.resolve(this.#rekeyCancel(p)),
      'custody-sync': (p) => this.#custodySync(p),
      seal: () => this.#seal(),
      'generate-version': (p) => this.#generateVersion(p),
      'import-params': (p) => this.#importParams(p),
      'import-version': (p) => this.#importVersion(p),
      open: (p) => this.#open(p),
      datakey: (p) => this.#datakey(p),
      unwrap: (p) => this.#unwrap(p),
      rewrap: (p) => this.#rewrap(p),
      encrypt: (p) => this.#encrypt(p),
      decrypt: (p) => this.#decrypt(p),
      sign: (p) => this.#sign(p),
      verify: (p) => this.#verify(p),
      mac: (p) => this.#mac(p),
      'hmac-audit': (p) => this.#hmacAudit(p),
      'destroy-receipt': (p) => this.#destroyReceipt(p),
      // A keyholder run apart answers this op in process.ts (response-signing.ts); a local one has no evidence.
      'keyholder-attestation': () => Promise.reject(new KeyholderProtocolError('KW_KEYHOLDER_NOT_ATTESTED')),
      'attest-nonce': (p) => Promise.resolve(this.#attestNonce(p)),
      'attest-nonce-check': (p) => Promise.resolve(this.#attestNonceCheck(p)),
      'attest-verify': (p) => Promise.resolve(this.#attestVerify(p)),
      'attest-release': (p) => this.#attestRelease(p),
      'totp-new': (p) => {
        const t = totpNew(this.#requireUnsealed().mk, p);
        return Promise.resolve({ sealed: toBase64url(t.sealed), base32: t.base32 });
      },
      'totp-verify': (p) => totpVerify(this.#requireUnsealed().mk, p),
      'governance-head': () => Promise.resolve(this.#governanceHead()),
      'governance-genesis': (p) => this.#inGovernanceOrder(() => this.#governanceGenesis(p)),
      'governance-adopt': (p) => this.#inGovernanceOrder(() => this.#governanceAdopt(p)),
      'governance-sync': (p) => this.#inGovernanceOrder(() => this.#governanceSync(p)),
      // Directory key changes and head signatures rewrite the state file: one at a time, in the governance order.
      'directory-keys': (p) => this.#inGovernanceOrder(() => this.#directoryKeys(p)),
      'directory-vrf': (p) => Promise.resolve(this.#directoryVrf(p)),
      'directory-head-log-key': () => {
        const { u, initId, dir } = this.#requireDirectory();
        const r = directoryHeadLogSeed(u.mk, initId, dir);
        try {
          return Promise.resolve({ seed: b64u(r.seed), id: r.id });
        } finally {
          wipe(r.seed);
        }
      },
      'directory-sign-head': (p) => this.#inGovernanceOrder(() => this.#directorySignHead(p)),
      append: (p) => this.#inOrder(() => this.#append(p)),
      ack: (p) => Promise.resolve(this.#ack(p)),
      'pending-events': (p) => Promise.resolve(this.#pendingEvents(p)),
      'discard-pending': (p) => Promise.resolve(this.#discardPending(p)),
      checkpoint: () => this.#checkpoint(),
      'frontier-restore': (p) => Promise.resolve(this.#frontierRestore(p)),
    };
  }

  /** Reads the state file (a malformed one throws: the keyholder must not start) and makes this boot's unseal key. Starts sealed. */
  static async open(opts: KeyholderServiceOptions): Promise<KeyholderService> {
    const state = await opts.stateFile.read();
    const service = new KeyholderService(opts, state, await UnsealKey.generate());
    if (state?.custody.hsm) await service.#startHsm(state);
    return service;
  }

  /** HSM-wrapped mode: auto-unseal now, and retry on a timer while the HSM is unavailable (hsm-custody.ts). */
  async #startHsm(state: KeyholderState): Promise<void> {
    this.#recovery = new RecoveryVerifier(state.custody);
    const pin = this.#hsmOpts?.pin;
    this.#hsmUnseal = new HsmAutoUnseal({
      custody: state.custody, audit: state.audit, pin: pin ?? '', log: this.#log,
      ...(this.#hsmOpts?.retryMs !== undefined ? { retryMs: this.#hsmOpts.retryMs } : {}),
      activate: (mk, signer) => this.#activate(mk, signer ?? undefined),
    });
    if (pin === undefined) {
      this.#log('HSM-wrapped mode but no PIN was given (KEYWARD_HSM_PIN or --hsm-pin-fd): staying sealed');
      this.#hsmUnseal.giveUp(new HsmError('KW_HSM_PIN_INCORRECT', 'no HSM PIN was given to the keyholder (--hsm-pin-file, KEYWARD_HSM_PIN or "hsm_pin_file" in the config)'));
      return;
    }
    await this.#hsmUnseal.start();
  }

  get sealed(): boolean { return this.#unsealed === null; }

  /**
   * Answers one request (any JSON value). Never throws: every failure is an
   * error response with a stable code, and a refused request changes nothing.
   */
  async handle(message: unknown): Promise<KeyholderResponse> {
    const env = requestSchema.safeParse(message);
    if (!env.success) {
      const rawId = (message as { id?: unknown } | null)?.id;
      const id = (typeof rawId === 'number' && Number.isSafeInteger(rawId) && rawId >= 0) || (typeof rawId === 'string' && rawId.length > 0 && rawId.length <= 64) ? rawId : null;
      const issue = env.error.issues[0];
      const where = issue && issue.path.length ? ` at ${issue.path.map(String).join('.')}` : '';
      return errorResponse(id, new KeyholderProtocolError('KW_INVALID_ARGUMENT', `invalid request${where}: ${issue?.message ?? 'rejected'}`));
    }
    const { id, op, params } = env.data;
    try {
      return { id, ok: true, result: await this.#dispatch(op, params ?? {}) };
    } catch (e) {
      const err = toProtocolError(e);
      this.#logRefusal(op, id, err, e);
      return errorResponse(id, err);
    }
  }

  /** In-process call (tests, embedding): same checks as {@link handle}, throws KeyholderProtocolError. */
  async call<O extends Op>(op: O, params: OpParams<O>): Promise<OpResult<O>> {
    try {
      return (await this.#dispatch(op, params)) as OpResult<O>;
    } catch (e) {
      throw toProtocolError(e);
    }
  }

  /** Seals (drops every key) and forgets the unseal key: on SIGTERM. */
  shutdown(): void {
    this.#hsmUnseal?.stop();
    this.#recovery?.reset();
    this.#unsealed?.versions.clear();
    this.#unsealed = null;
    this.#imports.clear();
    this.#attestNonces.clear();
    this.#verifiedRewraps.clear();
    this.#rekey?.dispose();
    this.#rekey = null;
    this.#candidate?.unsealer.reset();
    this.#unsealer?.reset();
    this.#unsealKey.dispose();
  }

  async #dispatch(op: Op, params: unknown): Promise<unknown> {
    const def = OPS[op];
    const parsed = def.params.safeParse(params);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue && issue.path.length ? ` at ${issue.path.map(String).join('.')}` : '';
      throw new KeyholderProtocolError('KW_INVALID_ARGUMENT', `invalid ${op} params${where}: ${issue?.message ?? 'rejected'}`, { cause: parsed.error });
    }
    const handler = this.#handlers[op] as (p: unknown) => Promise<unknown>;
    const result = await handler(parsed.data);
    // Results are checked against their strict schemas: nothing unnamed (a plaintext, say) can leave.
    const checked = def.result.safeParse(result);
    if (!checked.success) {
      this.#log('result refused by its schema', { op });
      throw new KeyholderProtocolError('KW_INTERNAL', `the ${op} result did not match its schema`);
    }
    return checked.data;
  }

  #logRefusal(op: Op, id: RequestId, err: KeyholderProtocolError, raw: unknown): void {
    const fields: Record<string, string | number | boolean> = { op, code: err.code };
    if (err.details.reason) fields.reason = err.details.reason;
    if (err.details.field) fields.field = err.details.field;
    if (err.code === 'KW_INTERNAL') fields.error = raw instanceof Error ? raw.name : typeof raw;
    if (err.code.startsWith('KW_REQUEST_') || err.code.startsWith('KW_AUDIT_') || err.code === 'KW_INTERNAL' || err.code === 'KW_WRAPPED_KEY_MISMATCH') {
      this.#log('refused', { ...fields, id: String(id) });
    }
  }

  // --- state checks ---------------------------------------------------------

  #requireState(): KeyholderState {
    if (!this.#state) throw new KeyholderProtocolError('KW_NOT_INITIALIZED');
    return this.#state;
  }

  #requireUnsealed(): Unsealed {
    this.#requireState();
    if (!this.#unsealed) throw new KeyholderProtocolError('KW_SEALED');
    return this.#unsealed;
  }

  #requireFrontier(): AuditFrontier {
    this.#requireState();
    const f = this.#frontier!;
    if (!f.restored) throw new KeyholderProtocolError('KW_AUDIT_NOT_RESTORED');
    return f;
  }

  // --- status, init, unseal, seal ------------------------------------------

  #status(): OpResult<'status'> {
    const st = this.#state;
    const f = this.#frontier;
    const last = f?.lastSigned ?? null;
    const progress = this.#unsealer?.progress();
    return {
      initialized: st !== null,
      sealed: this.#unsealed === null,
      initId: st?.custody.initId ?? null,
      hsm: this.#hsmUnseal?.status() ?? null,
      unseal: st && !this.#unsealed && progress && !st.custody.hsm
        ? { recipient: this.#unsealKey.recipient, bootId: this.#unsealKey.bootId, received: progress.received, threshold: progress.threshold }
        : null,
      audit: {
        origin: st?.audit.origin ?? null,
        verifierKey: st?.audit.verifierKey ?? null,
        restored: f?.restored ?? false,
        size: f?.size ?? 0,
        appended: f?.appended ?? 0,
        checkpoint: last ? { size: last.size, root: b64u(last.root) } : null,
      },
    };
  }

  async #initState(p: ParsedParams<'init-state'>): Promise<OpResult<'init-state'>> {
    if (this.#state || this.#initializing) throw new KeyholderProtocolError('KW_ALREADY_INITIALIZED');
    this.#initializing = true;
    try {
      const state: KeyholderState = { ...p.state, lastCheckpoint: null };
      await this.#stateFile.write(state);
      this.#state = state;
      // Anchored at init (init.ts): the genesis signed there is in force from now on, and no other genesis is taken.
      this.#governance = state.governance ? loadSigned(state.governance) : null;
      this.#frontier = AuditFrontier.fresh(this.#limits);
      this.#unsealer = new Unsealer(state.custody);
      this.#log('initialized', { init: state.custody.initId, threshold: state.custody.threshold });
      if (state.custody.hsm) await this.#startHsm(state);
      return { initId: state.custody.initId, threshold: state.custody.threshold };
    } finally {
      this.#initializing = false;
    }
  }

  #unsealKeyInfo(): OpResult<'unseal-key'> {
    const st = this.#requireState();
    // HSM-wrapped mode: the per-boot key receives recovery shares, unsealed or not.
    if (this.#unsealed && !st.custody.hsm) throw new KeyholderProtocolError('KW_ALREADY_UNSEALED');
    return { recipient: this.#unsealKey.recipient, bootId: this.#unsealKey.bootId };
  }

  async #unseal(p: ParsedParams<'unseal'>): Promise<OpResult<'unseal'>> {
    const state = this.#requireState();
    if (state.custody.hsm) throw new KeyholderProtocolError('KW_HSM_AUTO_UNSEAL');
    if (this.#unsealed) throw new KeyholderProtocolError('KW_ALREADY_UNSEALED');
    // A newer share set another node published after a rekey (custody-sync.ts): believed only once
    // a master key is combined and verifies its MAC. Shares of that set go to their own unsealer.
    const record = p.custody && supersedes(state.custody, p.custody.shares) ? p.custody : null;
    const shareFile = await this.#unsealKey.openSealedShare(p.share);
    let unsealer = this.#unsealer!;
    let candidate: Unsealer | null = null;
    if (record && isShareOfSet(shareFile, state.custody, record.shares)) {
      if (this.#candidate?.mac !== record.mac) {
        this.#candidate?.unsealer.reset();
        this.#candidate = { mac: record.mac, unsealer: new Unsealer(applyShareSet(state.custody, record.shares)) };
      }
      unsealer = candidate = this.#candidate.unsealer;
    }
    let progress;
    try {
      progress = await unsealer.submit(shareFile);
    } catch (e) {
      if (candidate && isKeyholderError(e, 'KW_UNSEAL_FAILED')) this.#candidate = null;
      throw e;
    } finally {
      wipe(shareFile);
    }
    if (progress.sealed) {
      this.#log('share accepted', { received: progress.received, threshold: progress.threshold });
      return { sealed: true, received: progress.received, threshold: progress.threshold };
    }
    if ((candidate ? candidate !== this.#candidate?.unsealer : unsealer !== this.#unsealer) || this.#unsealed) {
      wipe(progress.masterKey);
      throw new KeyholderProtocolError('KW_SEALED', 'the keyholder was sealed while the last share was being combined; submit the shares again');
    }
    if (record && verifyCustodyRecord(progress.masterKey, record)) {
      try {
        await this.#adoptCustody(applyShareSet(state.custody, record.shares), generationOf(state.custody));
      } catch (e) {
        wipe(progress.masterKey);
        throw e;
      }
      if (!candidate) {
        // Old shares: valid, but a rekey replaced them. They stop working here too.
        wipe(progress.masterKey);
        this.#log('unseal refused: shares superseded by a rekey', { generation: record.shares.generation });
        throw new KeyholderProtocolError('KW_SHARES_SUPERSEDED', `these shares were replaced by rekey generation ${record.shares.generation} (${record.shares.threshold} of ${record.shares.shareHashes.length}); this keyholder adopted the new set and stays sealed: unseal with the new shares`);
      }
    } else if (candidate) {
      wipe(progress.masterKey);
      this.#candidate = null;
      throw new KeyholderProtocolError('KW_UNSEAL_FAILED', 'the shares belong to a published share set whose record does not verify under the combined key; progress was discarded');
    } else if (record) {
      this.#log('custody record ignored: its MAC does not verify under this master key', { generation: record.shares.generation });
    }
    this.#activate(progress.masterKey);
    return { sealed: false, received: progress.received, threshold: progress.threshold };
  }

  async #recoveryShare(p: ParsedParams<'recovery-share'>): Promise<OpResult<'recovery-share'>> {
    this.#requireState();
    const recovery = this.#recovery;
    if (!recovery) throw new KeyholderProtocolError('KW_HSM_NOT_CONFIGURED');
    const shareFile = await this.#unsealKey.openSealedShare(p.share);
    try {
      const r = await recovery.submit(shareFile);
      this.#log(r.verified ? 'recovery quorum verified' : 'recovery share accepted', { received: r.received, threshold: r.threshold });
      return r;
    } finally {
      wipe(shareFile);
    }
  }

  // --- rekey: unseal-share rotation (rekey.ts), custody sync (custody-sync.ts) -------

  /**
   * Replaces the custody fragment (a rekey's, or one another node published) through the serialised
   * atomic state write: either the old or the new fragment is on disk, never a mix. `fromGeneration`
   * must still be in force (else another change won: nothing is written).
   */
  async #adoptCustody(next: CustodyState, fromGeneration: number): Promise<void> {
    await this.#updateState((s) => {
      if (generationOf(s.custody) !== fromGeneration) {
        throw new KeyholderProtocolError('KW_REKEY_NOT_FOUND', `the custody changed meanwhile (generation ${generationOf(s.custody)}, expected ${fromGeneration}); nothing was written`);
      }
      return { ...s, custody: next };
    });
    this.#unsealer?.reset();
    this.#unsealer = new Unsealer(next);
    this.#candidate?.unsealer.reset();
    this.#candidate = null;
    if (next.hsm) {
      this.#recovery?.reset();
      this.#recovery = new RecoveryVerifier(next);
    }
    this.#log('custody adopted', { generation: generationOf(next), shares: next.shareHashes.length, threshold: next.threshold });
  }

  /** The attempt, unless it expired (then it is dropped). */
  #currentRekey(): RekeyAttempt | null {
    const a = this.#rekey;
    if (a && a.expired()) {
      a.dispose();
      this.#rekey = null;
      this.#log('rekey expired', { id: a.id, completed: a.done });
      return null;
    }
    return a;
  }

  #rekeyPending(a: RekeyAttempt): KeyholderProtocolError {
    const v = a.view();
    return new KeyholderProtocolError('KW_REKEY_PENDING', `rekey ${a.id} is in progress (${v.received} of ${v.required} shares) until ${new Date(a.expiresAt).toISOString()}: cancel it first`);
  }

  async #rekeyStart(p: ParsedParams<'rekey-start'>): Promise<OpResult<'rekey-start'>> {
    this.#requireUnsealed();
    const cur = this.#currentRekey();
    if (cur && !cur.done) throw this.#rekeyPending(cur);
    const a = await RekeyAttempt.start({
      custody: this.#requireState().custody, shares: p.shares, threshold: p.threshold, recipients: p.recipients,
      ...(p.ttlSeconds !== undefined ? { ttlMs: p.ttlSeconds * 1000 } : {}),
    });
    const again = this.#currentRekey();
    if (again && !again.done) {
      a.dispose();
      throw this.#rekeyPending(again);
    }
    again?.dispose();
    this.#rekey = a;
    this.#log('rekey started', { id: a.id, shares: a.shares, threshold: a.threshold, mode: a.mode });
    return a.view();
  }

  #rekeyStatus(): OpResult<'rekey-status'> {
    const state = this.#requireState();
    return { generation: generationOf(state.custody), rekey: this.#currentRekey()?.view() ?? null };
  }

  async #rekeyShare(p: ParsedParams<'rekey-share'>): Promise<OpResult<'rekey-share'>> {
    const u = this.#requireUnsealed();
    const a = this.#currentRekey();
    if (!a || a.id !== p.id) throw new KeyholderProtocolError('KW_REKEY_NOT_FOUND');
    const r = await a.submit(p.share);
    const base = { id: a.id, index: r.index, received: r.received, required: r.required };
    if (!r.result) {
      this.#log('rekey share accepted', { id: a.id, received: r.received, required: r.required });
      return { ...base, complete: false, completed: null };
    }
    if (this.#rekey !== a || this.#unsealed !== u) {
      a.abortCompletion();
      throw new KeyholderProtocolError('KW_REKEY_NOT_FOUND', 'the rekey was cancelled, or the keyholder sealed, while the last share was combined; nothing changed');
    }
    try {
      await this.#adoptCustody(r.result.custody, a.fromGeneration);
    } catch (e) {
      a.abortCompletion();
      throw e;
    }
    const c = r.result.custody;
    const record = custodyRecord(u.mk, c);
    a.markCompleted(r.result, record);
    this.#log('rekey completed', { id: a.id, generation: generationOf(c), shares: c.shareHashes.length, threshold: c.threshold });
    return {
      ...base, complete: true,
      completed: {
        generation: generationOf(c), shares: c.shareHashes.length, threshold: c.threshold, shareHashes: c.shareHashes,
        sealedShares: r.result.sealedShares.map((x) => ({ index: x.index, recipient: x.recipient, armored: x.armored })),
        record,
      },
    };
  }

  #rekeyCancel(p: ParsedParams<'rekey-cancel'>): OpResult<'rekey-cancel'> {
    this.#requireState();
    const a = this.#currentRekey();
    if (!a || a.id !== p.id) throw new KeyholderProtocolError('KW_REKEY_NOT_FOUND');
    a.dispose();
    this.#rekey = null;
    this.#log('rekey cancelled', { id: a.id, completed: a.done });
    return { cancelled: true, completed: a.done };
  }

  async #custodySync(p: ParsedParams<'custody-sync'>): Promise<OpResult<'custody-sync'>> {
    const u = this.#requireUnsealed();
    const state = this.#requireState();
    const set = p.record.shares;
    if (!supersedes(state.custody, set)) return { generation: generationOf(state.custody), taken: false };
    if (!verifyCustodyRecord(u.mk, p.record)) {
      throw new KeyholderProtocolError('KW_INVALID_ARGUMENT', "the custody record is not authenticated by this deployment's master key");
    }
    await this.#adoptCustody(applyShareSet(state.custody, set), generationOf(state.custody));
    // An attempt here started from the shares just replaced: it is void.
    const a = this.#rekey;
    if (a && !a.done) {
      a.dispose();
      this.#rekey = null;
    }
    return { generation: set.generation, taken: true };
  }

  /** `hsmSigner`: the checkpoint signer in the HSM (HSM-wrapped mode with --hsm-audit-key). */
  #activate(masterKey: Uint8Array, hsmSigner?: NoteSigner): void {
    const state = this.#requireState();
    const mk = secretKeyObject(masterKey);
    wipe(masterKey);
    let signer: NoteSigner;
    try {
      signer = hsmSigner ?? openCheckpointSigner(mk, state);
    } catch (e) {
      this.#unsealer = new Unsealer(state.custody);
      this.#log('unseal failed', { reason: 'checkpoint key does not open' });
      throw new KeyholderProtocolError('KW_INTERNAL', 'the master key does not open the checkpoint signing key in the state file; the keyholder stays sealed', { cause: e });
    }
    this.#unsealed = { mk, signer, versions: new VersionCache() };
    // HSM-wrapped mode keeps the per-boot key: recovery shares are sealed to it.
    if (!state.custody.hsm) this.#unsealKey.dispose();
    this.#log('unsealed', { init: state.custody.initId });
  }

  async #seal(): Promise<OpResult<'seal'>> {
    const wasUnsealed = this.#unsealed !== null;
    // Synchronously: from here on every op sees KW_SEALED, and in-flight ops are refused when they finish.
    this.#unsealed?.versions.clear();
    this.#unsealed = null;
    this.#imports.clear();
    this.#attestNonces.clear();
    this.#verifiedRewraps.clear();
    // A rekey needs the keyholder unsealed throughout: sealing cancels it.
    this.#rekey?.dispose();
    this.#rekey = null;
    // HSM-wrapped mode: no auto-unseal again until the keyholder restarts.
    this.#hsmUnseal?.stop();
    const state = this.#state;
    if (state) {
      this.#unsealer?.reset();
      this.#unsealer = new Unsealer(state.custody);
      const old = this.#unsealKey;
      old.dispose();
      this.#unsealKey = await UnsealKey.generate();
    }
    this.#log('sealed', { wasUnsealed });
    return { sealed: true };
  }

  // --- key ops ---------------------------------------------------------------

  /**
   * Runs a key op: unsealed, frontier restored, event checked (next index,
   * matching op, namespace/key/version), op run, then the leaf appended, then
   * the result returned. If the keyholder sealed meanwhile, or another event
   * took the index, nothing is returned and nothing appended. Ops run in
   * arrival order, one at a time (#leafTail).
   */
  #keyOp<R extends object>(op: KeyOp, eventBytes: Uint8Array, bind: EventBinding, run: (u: Unsealed) => Promise<R>): Promise<R & { leaf: number }> {
    return this.#inOrder(() => this.#keyOpNow(op, eventBytes, bind, run));
  }

  /** Runs `fn` after every leaf-appending op that arrived before it has settled (see #leafTail). */
  #inOrder<T>(fn: () => T | Promise<T>): Promise<T> {
    const run = this.#leafTail.then(fn, fn);
    this.#leafTail = run.catch(() => undefined);
    return run;
  }

  async #keyOpNow<R extends object>(op: KeyOp, eventBytes: Uint8Array, bind: EventBinding, run: (u: Unsealed) => Promise<R>): Promise<R & { leaf: number }> {
    const u = this.#requireUnsealed();
    const frontier = this.#requireFrontier();
    if (bind.key === AUDIT_HMAC_KEY && op !== 'generate-version') {
      throw badEvent('version.key', `${bind.ns}/${AUDIT_HMAC_KEY} is the namespace's audit redaction key: only hmac-audit uses it`);
    }
    const event = parseEvent(eventBytes);
    checkEventBinding(event, op, bind);
    checkEventIndex(event, frontier.appended);
    frontier.requireCapacity(eventBytes.length);
    const result = await run(u);
    if (this.#unsealed !== u) throw new KeyholderProtocolError('KW_SEALED', 'the keyholder was sealed while the operation ran; nothing was released');
    checkEventIndex(event, frontier.appended);
    const leaf = frontier.appendPending(eventBytes);
    return { ...result, leaf };
  }

  /** Runs `fn` with the unwrapped version (kept in the unsealed state's VersionCache for the next operation). */
  async #withVersion<R>(u: Unsealed, stored: StoredVersion, fn: (v: KeyVersion) => Promise<R> | R): Promise<R> {
    const ref = refOf(stored);
    // An HSM-resident version: the store holds a marker, the key is in the HSM (hsm-resident.ts).
    const load = isResidentMarker(stored.wrapped)
      ? () => loadResident(this.#hsmToken(), this.#requireState().custody.initId, ref, stored.wrapped, stored.publicKey)
      : () => loadVersion(u.mk, ref, stored.wrapped, stored.publicKey ? { publicKey: stored.publicKey } : {});
    const v = await u.versions.get(ref, stored.wrapped, stored.publicKey, load);
    return fn(v);
  }

  /** The open HSM token, for HSM-resident versions: KW_HSM_NOT_CONFIGURED without HSM custody, KW_HSM_UNAVAILABLE while it is not connected. */
  #hsmToken(): Pkcs11Token {
    if (!this.#requireState().custody.hsm) throw new KeyholderProtocolError('KW_HSM_NOT_CONFIGURED', 'this version is HSM-resident, but this keyholder has no HSM custody');
    const token = this.#hsmUnseal?.token;
    if (!token) throw new HsmError('KW_HSM_UNAVAILABLE', 'the HSM is not connected');
    return token;
  }

  /**
   * Checks the signed body names what the op does (before the nonce is
   * spent), then has the verifier check the signature, window and nonce.
   * Returns the request hash the released secret is bound to.
   */
  async #authorize(req: SignedRequest, bind: { op: 'datakey' | 'unwrap' | 'decrypt' | 'open'; recipient: string; ref: VersionRef; context: Context | undefined; wrapped?: Uint8Array; ciphertext?: string; header?: Uint8Array }): Promise<Uint8Array> {
    let body: unknown;
    try {
      body = JSON.parse(decodeUtf8(req.body, 'the signed body'));
    } catch (e) {
      throw new KeyholderProtocolError('KW_REQUEST_MISMATCH', 'the signed body is not JSON: it must name the recipient', { cause: e, details: { field: 'body' } });
    }
    if (!isPlainObject(body)) throw new KeyholderProtocolError('KW_REQUEST_MISMATCH', 'the signed body must be a JSON object naming the recipient', { details: { field: 'body' } });
    const mismatch = (field: string, what: string) => new KeyholderProtocolError('KW_REQUEST_MISMATCH', `the ${what} differs from the one the caller signed`, { details: { field } });
    if (body.recipient !== bind.recipient) throw mismatch('recipient', 'recipient the secret would be sealed to');
    const { ref } = bind;
    if (body.key !== undefined && body.key !== `${ref.ns}/${ref.key}`) throw mismatch('key', 'key');
    if (body.version !== undefined && body.version !== ref.version) throw mismatch('version', 'key version');
    if (body.context !== undefined && !sameContext(body.context, bind.context ?? {})) throw mismatch('context', 'encryption context');
    if (bind.wrapped && body.wrapped !== undefined && body.wrapped !== b64u(bind.wrapped)) throw mismatch('wrapped', 'wrapped data key');
    if (bind.ciphertext !== undefined && body.ciphertext !== undefined && body.ciphertext !== bind.ciphertext) throw mismatch('ciphertext', 'ciphertext');
    // The header decides which data key is released: the caller must have signed it.
    if (bind.header && body.header !== b64u(bind.header)) throw mismatch('header', 'envelope header');

    // The keyholder's own policy decision, on the snapshot it signed (never the database's rows), for the
    // principal the device key belongs to — before the signature check spends the nonce, so a refusal can be retried.
    enforceGovernance(this.#governance, req.device.principal, bind.op, ref.ns, ref.key, bind.context ?? {});
    const caller = await this.#verifier.verify(
      { method: req.method, url: req.url, headers: req.headers, body: req.body },
      { keyId: req.device.keyId, principal: req.device.principal, publicKey: req.device.publicKey },
    );
    return caller.requestHash;
  }

  /**
   * The caller's signed request for an op whose result is not sealed to it
   * (signed-ops.ts): the URL names this key and op, `bind` checks the signed
   * body names what the op does, the keyholder's signed policy grants it, and
   * the signature verifies. Without a request: refused once the keyholder
   * holds a governance snapshot, except `release` (a bearer-token caller,
   * authenticated by the API alone). `reuse`: a rewrap's later items.
   */
  async #authorizeSigned(req: SignedRequest | undefined, op: SignedOp, ref: { ns: string; key: string }, context: Context | undefined, bind: (body: Record<string, unknown>) => void, reuse = false): Promise<void> {
    if (!req) {
      const g = this.#governance;
      if (g && op !== 'release') {
        throw new KeyholderProtocolError('KW_REQUEST_UNAUTHENTICATED', `the signed governance in force (snapshot ${g.snapshot.seq}) decides ${op} on the caller's signed request, and none was relayed`, { details: { reason: 'HTTPSIG_MISSING' } });
      }
      return;
    }
    checkTarget(req.url, ref, op);
    bind(signedBody(req));
    // Decided before the signature check spends the nonce, so a refusal can be retried (as #authorize).
    enforceGovernance(this.#governance, req.device.principal, op, ref.ns, ref.key, context ?? {});
    const digest = reuse ? requestDigest(req) : null;
    if (digest !== null && this.#verifiedRewraps.has(digest)) return;
    await this.#verifier.verify(
      { method: req.method, url: req.url, headers: req.headers, body: req.body },
      { keyId: req.device.keyId, principal: req.device.principal, publicKey: req.device.publicKey },
    );
    if (digest !== null) this.#verifiedRewraps.add(digest);
  }

  #generateVersion(p: ParsedParams<'generate-version'>): Promise<OpResult<'generate-version'>> {
    const { ref } = p;
    if (ref.key === AUDIT_HMAC_KEY && ref.type !== 'hmac-sha256') {
      return Promise.reject(badEvent('ref.type', `${AUDIT_HMAC_KEY} is reserved for the audit redaction key, of type hmac-sha256`));
    }
    if (p.resident) {
      // HSM-resident (hsm-resident.ts): only with HSM custody, and checked before the event is looked at.
      const state = this.#state;
      if (state && !state.custody.hsm) {
        return Promise.reject(new KeyholderProtocolError('KW_HSM_NOT_CONFIGURED', 'HSM-resident keys need HSM custody (keyward init --hsm-module …); this keyholder keeps its keys in software'));
      }
      if (ref.key === AUDIT_HMAC_KEY) return Promise.reject(badEvent('ref.key', `${AUDIT_HMAC_KEY} is the namespace's audit redaction key: it is never HSM-resident`));
    }
    return this.#keyOp('generate-version', p.event, { ns: ref.ns, key: ref.key, version: ref.version }, async (u) => {
      const g = p.resident ? await generateResident(this.#hsmToken(), this.#requireState().custody.initId, ref) : await generateVersion(u.mk, ref);
      return {
        ref: g.ref,
        wrapped: b64u(g.wrapped),
        ...(g.publicKey ? { publicKey: b64u(g.publicKey) } : {}),
        ...(g.publicKeyText ? { publicKeyText: g.publicKeyText } : {}),
      };
    });
  }

  async #importParams(p: ParsedParams<'import-params'>): Promise<OpResult<'import-params'>> {
    const u = this.#requireUnsealed();
    const state = this.#requireState();
    if (p.key === AUDIT_HMAC_KEY) throw badEvent('key', `${AUDIT_HMAC_KEY} is the namespace's audit redaction key: it is never imported`);
    const issued = await this.#imports.issue({ ns: p.ns, key: p.key, type: p.type }, {
      ...(p.ttlSeconds !== undefined ? { ttlMs: p.ttlSeconds * 1000 } : {}),
      ...(p.bits !== undefined ? { bits: p.bits } : {}),
    });
    const signature = u.signer.sign(importParamsMessage(issued.facts));
    if (this.#unsealed !== u) throw new KeyholderProtocolError('KW_SEALED', 'the keyholder was sealed while signing');
    this.#log('import parameters issued', { ns: p.ns, key: p.key, type: p.type });
    return {
      token: issued.token, publicKey: b64u(issued.publicKey), algorithm: 'RSA_AES_KEY_WRAP_SHA_256', expiresAt: issued.expiresAt,
      publicKeySha256: issued.facts.public_key_sha256, signer: toHex(parseVerifierKey(state.audit.verifierKey).publicKey), signature: toHex(signature),
    };
  }

  #importVersion(p: ParsedParams<'import-version'>): Promise<OpResult<'import-version'>> {
    const { ref } = p;
    if (ref.key === AUDIT_HMAC_KEY) return Promise.reject(badEvent('ref.key', `${AUDIT_HMAC_KEY} is the namespace's audit redaction key: it is never imported`));
    const binding = { ns: ref.ns, key: ref.key, type: ref.type };
    // A bad token is refused before the event is looked at, and leaves the token as it was.
    try {
      this.#imports.check(p.token, binding);
    } catch (e) {
      return Promise.reject(toProtocolError(e));
    }
    return this.#keyOp('import-version', p.event, { ns: ref.ns, key: ref.key, version: ref.version }, async (u) => {
      const material = this.#imports.consume(p.token, binding, (k) => unwrapImport(k, p.wrapped));
      try {
        const g = await importVersion(u.mk, ref, material);
        this.#log('key material imported', { ns: ref.ns, key: ref.key, version: ref.version, type: ref.type });
        return {
          ref: g.ref,
          wrapped: b64u(g.wrapped),
          ...(g.publicKey ? { publicKey: b64u(g.publicKey) } : {}),
          ...(g.publicKeyText ? { publicKeyText: g.publicKeyText } : {}),
        };
      } finally {
        wipe(material);
      }
    });
  }

  #open(p: ParsedParams<'open'>): Promise<OpResult<'open'>> {
    const ref = refOf(p.version);
    return this.#keyOp('open', p.event, ref, async (u) => {
      // The API decided policy on the context it read from the header: it must be the header's
      // (which the HPKE info and the header MAC then authenticate when the stanza opens).
      if (!sameContext(p.context ?? {}, headerContext(p.header))) {
        throw new KeyholderProtocolError('KW_REQUEST_MISMATCH', "the context the API passed differs from the envelope header's", { details: { field: 'context' } });
      }
      const requestHash = await this.#authorize(p.request, { op: 'open', recipient: p.recipient, ref, context: p.context, header: p.header });
      return this.#withVersion(u, p.version, async (v) => {
        const r = await openForRecipient({ version: v, header: p.header, recipient: p.recipient, requestHash });
        return { ref: r.ref, sealed: b64u(r.sealed) };
      });
    });
  }

  // --- attestation-gated release (ops/release.ts) ------------------------------

  #attestNonce(p: ParsedParams<'attest-nonce'>): OpResult<'attest-nonce'> {
    this.#requireUnsealed();
    if (p.key === AUDIT_HMAC_KEY) throw badEvent('key', `${AUDIT_HMAC_KEY} is the namespace's audit redaction key: it is never released`);
    // TPM evidence: this keyholder enrolls the AK itself (EK chain to its own roots, MakeCredential).
    let tpm: ReturnType<typeof startAkEnrollment> | undefined;
    if (p.tpm) {
      if (this.#attestRoots.tpm.length === 0) throw new KeyholderProtocolError('KW_ATTEST_NOT_CONFIGURED', 'the keyholder has no TPM manufacturer roots configured');
      try {
        tpm = startAkEnrollment({ ekCertificate: p.tpm.ekCertificate, ekIntermediates: p.tpm.ekIntermediates ?? [], roots: this.#attestRoots.tpm, ekPublic: p.tpm.ekPublic, akPublic: p.tpm.akPublic, now: this.#attestNow() });
      } catch (e) {
        throw attestRefusal(e);
      }
    }
    const n = this.#attestNonces.issue(p.ns, p.key, p.ttlSeconds, tpm ? { tpm: tpm.pending } : {});
    return {
      nonce: b64u(n.nonce), expiresAt: n.expiresAt,
      ...(tpm ? { tpm: { akName: toHex(tpm.pending.akName), credentialBlob: b64u(tpm.challenge.credentialBlob), encryptedSecret: b64u(tpm.challenge.encryptedSecret), tpm2ToolsFile: b64u(tpm.challenge.tpm2ToolsFile) } } : {}),
    };
  }

  #attestNonceCheck(p: ParsedParams<'attest-nonce-check'>): OpResult<'attest-nonce-check'> {
    this.#requireUnsealed();
    return { expiresAt: this.#attestNonces.check(p.nonce, p.ns, p.key, p.spend).expiresAt };
  }

  /** The keyholder's own verification of the workload's evidence (ops/release-verify.ts); a refusal spends the nonce. */
  #attestVerify(p: ParsedParams<'attest-verify'>): OpResult<'attest-verify'> {
    this.#requireUnsealed();
    const { slot } = this.#attestNonces.check(p.nonce, p.ns, p.key, false);
    if (slot.verified) throw new KeyholderProtocolError('KW_ATTEST_NONCE_USED', 'evidence was already verified with this nonce');
    const pendingTpm = slot.tpm;
    slot.tpm = undefined; // one activation answer per enrollment
    let claims;
    try {
      claims = verifyReleaseEvidence(p.evidence, { nonce: p.nonce, recipient: p.recipient, roots: this.#attestRoots, now: this.#attestNow(), pendingTpm });
    } catch (e) {
      this.#attestNonces.check(p.nonce, p.ns, p.key, true);
      throw attestRefusal(e);
    }
    slot.verified = { recipient: p.recipient, platform: PLATFORM_OF_EVIDENCE[p.evidence.type], claims };
    return { claims: summarizeClaims(claims) };
  }

  #attestRelease(p: ParsedParams<'attest-release'>): Promise<OpResult<'attest-release'>> {
    const ref = refOf(p.version);
    return this.#keyOp('attest-release', p.event, ref, async (u) => {
      // Spent first, whatever follows: one nonce answers one release attempt.
      const { slot } = this.#attestNonces.check(p.nonce, ref.ns, ref.key, true);
      // A workload that signed its request with a device key: the keyholder's signed policy decides (bearer callers: the API's decision).
      await this.#authorizeSigned(p.request, 'release', ref, undefined, (b) => bindRelease(b, { nonce: p.nonce, recipient: p.recipient, context: p.context }));
      // Only claims this keyholder verified itself (attest-verify), for this recipient: never the API's word.
      const verified = slot.verified;
      if (!verified) throw new KeyholderProtocolError('KW_ATTEST_EVIDENCE_REJECTED', 'the keyholder has not verified evidence for this nonce (attest-verify)', { details: { reason: 'not_verified' } });
      if (verified.recipient !== p.recipient || verified.platform !== p.platform) {
        throw new KeyholderProtocolError('KW_ATTEST_BINDING_MISMATCH', 'the release names another recipient or platform than the evidence the keyholder verified', { details: { field: verified.recipient !== p.recipient ? 'recipient' : 'platform' } });
      }
      const measurements = summarizeClaims(verified.claims).measurements;
      const policy = checkPolicyText(p.policy, p.policyHash);
      const decision = evaluatePolicy(policy, verified.claims, this.#attestNow());
      if (!decision.allowed) throw new KeyholderProtocolError('KW_ATTEST_POLICY_DENIED', decision.reason.slice(0, 1024), { details: { reason: decision.code } });
      return this.#withVersion(u, p.version, async (v) => {
        const r = await releaseDataKey({
          version: v, nonce: p.nonce, recipient: p.recipient, platform: p.platform,
          policyHash: p.policyHash, measurements, context: p.context,
        });
        this.#log('attested release', { ns: ref.ns, key: ref.key, version: ref.version, platform: p.platform });
        return { ref: r.ref, wrapped: b64u(r.wrapped), sealed: b64u(r.sealed), measurementsHash: r.measurementsHash };
      });
    });
  }

  #datakey(p: ParsedParams<'datakey'>): Promise<OpResult<'datakey'>> {
    const ref = refOf(p.version);
    return this.#keyOp('datakey', p.event, ref, async (u) => {
      const requestHash = await this.#authorize(p.request, { op: 'datakey', recipient: p.recipient, ref, context: p.context });
      return this.#withVersion(u, p.version, async (v) => {
        const r = await datakey({ version: v, context: p.context, recipient: p.recipient, requestHash });
        return { ref: r.ref, wrapped: b64u(r.wrapped), sealed: b64u(r.sealed!) };
      });
    });
  }

  #unwrap(p: ParsedParams<'unwrap'>): Promise<OpResult<'unwrap'>> {
    const ref = refOf(p.version);
    return this.#keyOp('unwrap', p.event, ref, async (u) => {
      const requestHash = await this.#authorize(p.request, { op: 'unwrap', recipient: p.recipient, ref, context: p.context, wrapped: p.wrapped });
      return this.#withVersion(u, p.version, async (v) => {
        const r = await unwrapDataKey({ version: v, context: p.context, wrapped: p.wrapped, recipient: p.recipient, requestHash });
        return { ref: r.ref, sealed: b64u(r.sealed) };
      });
    });
  }

  #rewrap(p: ParsedParams<'rewrap'>): Promise<OpResult<'rewrap'>> {
    if (p.to.key === AUDIT_HMAC_KEY) return Promise.reject(badEvent('to.key', `${AUDIT_HMAC_KEY} is the namespace's audit redaction key: only hmac-audit uses it`));
    return this.#keyOp('rewrap', p.event, { ns: p.from.ns, key: p.from.key }, async (u) => {
      await this.#authorizeSigned(p.request, 'rewrap', p.from, p.context, (b) => bindRewrapItem(b, { version: p.from.version, wrapped: p.wrapped, context: p.context }), true);
      return this.#withVersion(u, p.from, (from) =>
        this.#withVersion(u, p.to, async (to) => {
          const r = await rewrapDataKeyAny({ from, to, context: p.context, wrapped: p.wrapped });
          return { ref: r.ref, wrapped: b64u(r.wrapped) };
        }));
    });
  }

  #encrypt(p: ParsedParams<'encrypt'>): Promise<OpResult<'encrypt'>> {
    const ref = refOf(p.version);
    return this.#keyOp('encrypt', p.event, ref, async (u) => {
      await this.#authorizeSigned(p.request, 'encrypt', ref, p.context, (b) => bindEncrypt(b, { plaintext: p.plaintext, context: p.context }));
      return this.#withVersion(u, p.version, async (v) => ({ ref: v.ref, ciphertext: await encryptAny({ version: v, plaintext: p.plaintext, context: p.context }) }));
    });
  }

  #decrypt(p: ParsedParams<'decrypt'>): Promise<OpResult<'decrypt'>> {
    const ref = refOf(p.version);
    return this.#keyOp('decrypt', p.event, ref, async (u) => {
      const context = checkContext(p.context);
      const recipient = await parseCallerRecipient(p.recipient);
      const requestHash = await this.#authorize(p.request, { op: 'decrypt', recipient: p.recipient, ref, context: p.context, ciphertext: p.ciphertext });
      return this.#withVersion(u, p.version, async (v) => {
        const plaintext = await decryptAny({ version: v, ciphertext: p.ciphertext, context });
        try {
          return { ref: v.ref, sealed: b64u(await sealToCaller(plaintext, recipient, requestHash, v.ref, context)) };
        } finally {
          wipe(plaintext);
        }
      });
    });
  }

  #sign(p: ParsedParams<'sign'>): Promise<OpResult<'sign'>> {
    const ref = refOf(p.version);
    return this.#keyOp('sign', p.event, ref, async (u) => {
      await this.#authorizeSigned(p.request, 'sign', ref, undefined, (b) => bindMessage(b, { message: p.message }));
      return this.#withVersion(u, p.version, async (v) => ({ ref: v.ref, signature: await signAny({ version: v, message: p.message }) }));
    });
  }

  #verify(p: ParsedParams<'verify'>): Promise<OpResult<'verify'>> {
    const ref = refOf(p.version);
    return this.#keyOp('verify', p.event, ref, (u) =>
      this.#withVersion(u, p.version, (v) => ({ ref: v.ref, valid: verify({ version: v, message: p.message, signature: p.signature }) })));
  }

  #mac(p: ParsedParams<'mac'>): Promise<OpResult<'mac'>> {
    const ref = refOf(p.version);
    return this.#keyOp('mac', p.event, ref, async (u) => {
      await this.#authorizeSigned(p.request, 'mac', ref, undefined, (b) => bindMessage(b, { message: p.message, mac: p.mac }));
      return this.#withVersion(u, p.version, async (v) =>
        p.mac === undefined
          ? { ref: v.ref, mac: await macAny({ version: v, message: p.message }) }
          : { ref: v.ref, valid: await verifyMacAny({ version: v, message: p.message, mac: p.mac }) });
    });
  }

  async #hmacAudit(p: ParsedParams<'hmac-audit'>): Promise<OpResult<'hmac-audit'>> {
    const u = this.#requireUnsealed();
    if (p.version.key !== AUDIT_HMAC_KEY) throw badEvent('version.key', `hmac-audit uses only the namespace's audit redaction key (${AUDIT_HMAC_KEY})`);
    p.messages.forEach((m, i) => {
      const prefixed = m.length >= REDACT_PREFIX.length && REDACT_PREFIX.every((b, j) => m[j] === b);
      if (!prefixed) throw badEvent(`messages.${i}`, 'hmac-audit MACs only audit redaction messages (audit/redact.ts REDACT_LABEL ‖ canonical JSON)');
    });
    return this.#withVersion(u, p.version, (v) => {
      const key = v.secretKey('hmac-sha256');
      return { ref: v.ref, macs: p.messages.map((m) => toHex(hmacSha256(key, m))) };
    });
  }

  async #destroyReceipt(p: ParsedParams<'destroy-receipt'>): Promise<OpResult<'destroy-receipt'>> {
    const u = this.#requireUnsealed();
    const state = this.#requireState();
    const at = Date.parse(p.time);
    if (!Number.isFinite(at) || new Date(at).toISOString() !== p.time || Math.abs(at - Date.now()) > RECEIPT_CLOCK_SKEW_MS) {
      throw badEvent('time', 'the destroy time must be a real RFC 3339 time within five minutes of the keyholder clock');
    }
    // Under a destroy quorum in its own signed governance, the keyholder counts the approvals itself (before anything is evicted or destroyed).
    await checkDestroyApproval(this.#governance, refOf(p.version), p.approval, new Date(), p.rp);
    let ref: VersionRef;
    if (isResidentMarker(p.version.wrapped)) {
      // HSM-resident: the marker must name this version's HSM key, which is destroyed now (a retry finds it gone and goes on).
      ref = refOf(p.version);
      u.versions.evict(ref);
      await destroyResident(this.#hsmToken(), state.custody.initId, ref, p.version.wrapped);
      this.#log('HSM-resident key version destroyed in the HSM', { ns: ref.ns, key: ref.key, version: ref.version });
    } else {
      // Only a blob that really is this version is ever receipted (AAD binding).
      ref = await this.#withVersion(u, p.version, (v) => v.ref);
      // The version is being destroyed: no unwrapped copy of it stays in memory.
      u.versions.evict(ref);
    }
    const facts = { ns: ref.ns, key: ref.key, version: ref.version, blob_sha256: toHex(sha256(p.version.wrapped)), time: p.time };
    const signature = u.signer.sign(receiptMessage(facts));
    if (this.#unsealed !== u) throw new KeyholderProtocolError('KW_SEALED', 'the keyholder was sealed while signing');
    return { ref: { ...ref }, blob_sha256: facts.blob_sha256, time: facts.time, signer: toHex(parseVerifierKey(state.audit.verifierKey).publicKey), signature: toHex(signature) };
  }

  // --- audit frontier ----------------------------------------------------------

  #append(p: ParsedParams<'append'>): OpResult<'append'> {
    const frontier = this.#requireFrontier();
    const event = parseEvent(p.event);
    checkEventIndex(event, frontier.appended);
    return { leaf: frontier.appendPending(p.event) };
  }

  #ack(p: ParsedParams<'ack'>): OpResult<'ack'> {
    const frontier = this.#requireFrontier();
    const size = frontier.ack(p.size);
    return { size, appended: frontier.appended };
  }

  #discardPending(p: ParsedParams<'discard-pending'>): OpResult<'discard-pending'> {
    const frontier = this.#requireFrontier();
    const discarded = frontier.discardPending(p.from);
    if (discarded > 0) this.#log('pending audit leaves discarded (their index was taken by another node)', { from: p.from, discarded });
    return { size: frontier.size, appended: frontier.appended, discarded };
  }

  #pendingEvents(p: ParsedParams<'pending-events'>): OpResult<'pending-events'> {
    const frontier = this.#requireFrontier();
    const r = frontier.pendingEvents(p.from, PENDING_EVENTS_BYTES);
    return { from: r.from, events: r.events.map(b64u), appended: frontier.appended };
  }

  async #checkpoint(): Promise<OpResult<'checkpoint'>> {
    const u = this.#requireUnsealed();
    const frontier = this.#requireFrontier();
    const state = this.#requireState();
    const cp = await frontier.checkpoint(u.signer, state.audit.origin, (head) => this.#persistCheckpoint(head));
    return { note: cp.note, size: cp.size, root: b64u(cp.root) };
  }

  // --- signed governance (governance.ts) --------------------------------------

  #inGovernanceOrder<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#govTail.then(fn, fn);
    this.#govTail = run.catch(() => undefined);
    return run;
  }

  #governanceHead(): OpResult<'governance-head'> {
    const g = this.#governance;
    return { snapshot: g?.text ?? null, signature: g?.signature ?? null, seq: g?.snapshot.seq ?? null, hash: g?.hash ?? null };
  }

  async #governanceGenesis(p: ParsedParams<'governance-genesis'>): Promise<OpResult<'governance-genesis'>> {
    const u = this.#requireUnsealed();
    if (this.#governance) throw new KeyholderProtocolError('KW_GOVERNANCE_ANCHORED');
    const next = governanceGenesis(p.base, p.time, (m) => u.signer.sign(m));
    await this.#persistGovernance(next);
    return { snapshot: next.text, signature: next.signature, seq: next.snapshot.seq, hash: next.hash };
  }

  async #governanceAdopt(p: ParsedParams<'governance-adopt'>): Promise<OpResult<'governance-adopt'>> {
    const u = this.#requireUnsealed();
    const head = this.#governance;
    if (!head) throw new KeyholderProtocolError('KW_GOVERNANCE_NOT_ANCHORED');
    const next = await adoptGovernance(head, { request: p.request, requester: p.requester, approvals: p.approvals, ...(p.rp ? { rp: p.rp } : {}), time: p.time }, (m) => u.signer.sign(m));
    await this.#persistGovernance(next);
    this.#log('governance snapshot adopted', { seq: next.snapshot.seq, authority: next.snapshot.authority });
    return { snapshot: next.text, signature: next.signature, seq: next.snapshot.seq, hash: next.hash };
  }

  async #governanceSync(p: ParsedParams<'governance-sync'>): Promise<OpResult<'governance-sync'>> {
    this.#requireUnsealed();
    const state = this.#requireState();
    const theirs = loadSigned({ snapshot: p.snapshot, signature: p.signature });
    const pub = parseVerifierKey(state.audit.verifierKey).publicKey;
    if (canonicalJson(theirs.snapshot) !== p.snapshot || !ed25519Verify(ed25519PublicKey(pub), snapshotSignatureMessage(theirs.hash), fromHex(p.signature, 64) ?? new Uint8Array(64))) {
      throw new KeyholderProtocolError('KW_INVALID_ARGUMENT', 'the governance snapshot is not signed by this deployment\'s keyholder key');
    }
    const mine = this.#governance;
    if (mine && theirs.snapshot.seq <= mine.snapshot.seq) return { seq: mine.snapshot.seq, hash: mine.hash, taken: false };
    await this.#persistGovernance(theirs);
    this.#log('governance snapshot taken from another node', { seq: theirs.snapshot.seq });
    return { seq: theirs.snapshot.seq, hash: theirs.hash, taken: true };
  }

  /** Written to the state file before it is in force or returned. */
  // --- directory keys (directory-keys.ts) ----------------------------------

  async #directoryKeys(p: ParsedParams<'directory-keys'>): Promise<OpResult<'directory-keys'>> {
    const u = this.#requireUnsealed();
    const state = this.#requireState();
    let dir = state.directory;
    let created = false;
    try {
      if (dir) {
        if (p.import && !sameDirectoryKeys(dir, p.import)) throw new KeyholderProtocolError('KW_DIRECTORY_KEY_MISMATCH', 'the keyholder already holds other directory keys than the imported ones');
      } else {
        dir = buildDirectoryState(u.mk, state.custody.initId, p.import);
        await this.#persistDirectory(dir);
        created = true;
        this.#log('directory keys created', { source: dir.source });
      }
    } finally {
      if (p.import) wipe(p.import);
    }
    return { signaturePublicKey: dir.signaturePublicKey, vrfPublicKey: dir.vrfPublicKey, source: dir.source, created, lastHead: dir.lastHead };
  }

  #requireDirectory(): { u: Unsealed; initId: string; dir: DirectoryState } {
    const u = this.#requireUnsealed();
    const state = this.#requireState();
    if (!state.directory) throw new KeyholderProtocolError('KW_DIRECTORY_NO_KEYS');
    return { u, initId: state.custody.initId, dir: state.directory };
  }

  #directoryVrf(p: ParsedParams<'directory-vrf'>): OpResult<'directory-vrf'> {
    const { u, initId, dir } = this.#requireDirectory();
    const r = directoryVrf(u.mk, initId, dir, p.label, p.version);
    return { output: b64u(r.output), proof: b64u(r.proof) };
  }

  async #directorySignHead(p: ParsedParams<'directory-sign-head'>): Promise<OpResult<'directory-sign-head'>> {
    const { u, initId, dir } = this.#requireDirectory();
    const head = parseTbs(dir, p.tbs);
    // A head signed since this start may be signed again (the same signature: Ed25519 is
    // deterministic, so this releases nothing new): a request that read the log just before
    // an update is answered. Any other head must extend the last one, proven (a fork that
    // grows is refused too).
    const rootHex = toHex(head.root);
    if (this.#dirSigned.get(head.treeSize) !== rootHex) {
      checkExtends(dir, head);
      checkConsistent(dir, head, p.consistency);
    }
    const signature = directorySign(u.mk, initId, dir, p.tbs);
    this.#dirSigned.set(head.treeSize, rootHex);
    if (this.#dirSigned.size > 256) this.#dirSigned.delete(this.#dirSigned.keys().next().value!);
    const last = dir.lastHead;
    // A new head is recorded before its signature leaves (a restart never forgets it).
    if (!last || head.treeSize > last.size) await this.#persistDirectory({ ...dir, lastHead: { size: head.treeSize, root: b64u(head.root) } });
    return { signature: b64u(signature) };
  }

  /**
   * Changes the state file: `change` gets the state as it is when its turn comes (changes run one
   * at a time, so a checkpoint, a governance snapshot and a directory head never overwrite each
   * other's field with a stale copy), the result is written, then held.
   */
  #updateState(change: (state: KeyholderState) => KeyholderState): Promise<KeyholderState> {
    const run = this.#stateTail.then(async () => {
      const next = change(this.#requireState());
      await this.#stateFile.write(next);
      this.#state = next;
      return next;
    });
    this.#stateTail = run.catch(() => undefined);
    return run;
  }

  async #persistDirectory(dir: DirectoryState): Promise<void> {
    await this.#updateState((state) => ({ ...state, directory: dir }));
  }

  async #persistGovernance(next: SignedSnapshot): Promise<void> {
    await this.#updateState((state) => ({ ...state, governance: { snapshot: next.text, signature: next.signature } }));
    this.#governance = next;
  }

  async #persistCheckpoint(head: TreeHead): Promise<void> {
    await this.#updateState((state) => {
      const prev = state.lastCheckpoint;
      if (prev && head.size < prev.size) throw new KeyholderProtocolError('KW_AUDIT_FORK', `refusing to record checkpoint size ${head.size} after size ${prev.size}`);
      return { ...state, lastCheckpoint: { size: head.size, root: b64u(head.root) } };
    });
    this.#log('checkpoint', { size: head.size });
  }

  #frontierRestore(p: ParsedParams<'frontier-restore'>): OpResult<'frontier-restore'> {
    this.#requireState();
    const frontier = this.#frontier!;
    const events = p.events ?? [];
    events.forEach((bytes, i) => checkEventIndex(parseEvent(bytes), p.size + i));
    frontier.restore({ size: p.size, hashes: p.hashes, events });
    this.#log('frontier restored', { size: frontier.size });
    return { size: frontier.size, appended: frontier.appended };
  }
}

function headOf(state: KeyholderState): TreeHead | null {
  const cp = state.lastCheckpoint;
  if (!cp) return null;
  return { size: cp.size, root: fromBase64url(cp.root)! };
}
