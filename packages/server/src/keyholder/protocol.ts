/**
 * The keyholder protocol (docs/key-service-design.md §Keyholder protocol):
 * the messages the API and the keyholder exchange over transport.ts, as zod
 * schemas with the TypeScript types derived from them, and the error codes
 * either side reports.
 *
 *   request  { id, op, params }
 *   response { id, ok: true, result } | { id, ok: false, error: { code, message, details? } }
 *
 * Binary values are canonical unpadded base64url strings. Every request is
 * checked against its op's schema before anything happens; anything else is
 * KW_INVALID_ARGUMENT and changes nothing. Parameter schemas decode base64url
 * into bytes, so `OpParams<op>` (what the client sends) has strings and
 * `ParsedParams<op>` (what the service receives) has `Uint8Array`s. Result
 * schemas are strict: a result carrying a field its schema does not name
 * (a plaintext, say) is refused by the service itself before it is sent.
 *
 * Every op that uses key material carries `event`: the audit event
 * (audit/event.ts) as the UTF-8 bytes of its RFC 8785 canonical JSON. The
 * keyholder checks that it is canonical, that its `index` is the leaf index
 * it is about to get (else KW_AUDIT_CONFLICT), and, for key ops, that its
 * `op` is the matching audit op (`datakey` → `data.datakey`, …,
 * `generate-version` → `keys.create` | `keys.rotate`), its `outcome` is
 * `allowed`, and its `ns` / `target` name what the op touches. It runs the
 * op, appends `leafHash(event)` as a pending leaf, and only then answers,
 * with the leaf index (`leaf`). A refused op appends nothing; denials the API
 * decides are logged with `append`.
 *
 * @example
 * const req: KeyholderRequest = { id: 7, op: 'status', params: {} };
 * const res = responseSchema.parse(JSON.parse(text));
 * if (!res.ok) throw KeyholderProtocolError.fromWire(res.error);
 */
import { ERROR_CODES } from '@keyward/core';
import { z } from 'zod';
import { fromBase64url } from './bytes.js';
import { ERRORS } from './errors.js';
import { HSM_ERRORS } from '../hsm/errors.js';
import { MFA_ERRORS } from '../mfa/errors.js';
import { GovernanceStateSchema } from '../mfa/governance.js';
import { contextSchema, nameSchema, versionRefSchema, versionSchema } from './schemas.js';
import { initStateSchema } from './state.js';
import { custodyRecordSchema } from './custody-sync.js';

// ---------------------------------------------------------------------------
// Errors

/**
 * Every code that crosses the socket: the keyholder's own (errors.ts) plus
 * the protocol's. The extra codes live here because errors.ts belongs to the
 * custody/ops layer; the lead may merge both lists into one registry.
 */
export const PROTOCOL_ERRORS = {
  ...ERRORS,
  KW_NOT_INITIALIZED: 'The keyholder has no state yet: install the state made by `keyward init` (init-state) first.',
  KW_ALREADY_INITIALIZED: 'The keyholder already has its state; it is never replaced over the protocol.',
  KW_AUDIT_NOT_RESTORED: "The keyholder's audit frontier is not restored since it started: call frontier-restore with the hashes of its last signed checkpoint.",
  KW_AUDIT_CONFLICT: "The event's index is not the next leaf index of the keyholder's frontier (a concurrent or stale writer); nothing was appended.",
  KW_AUDIT_FORK: 'The request would make the audit log disagree with the last checkpoint the keyholder signed (fork or rollback); refused.',
  KW_REQUEST_UNAUTHENTICATED: "The caller's signed request does not verify (signature, key, digest, time window or covered components).",
  KW_REQUEST_REPLAYED: "The caller's signed request was already used (its nonce was seen).",
  KW_REQUEST_MISMATCH: 'The operation differs from what the caller signed (recipient, key, version, context or blob).',
  KW_KEYHOLDER_UNAVAILABLE: 'The keyholder process cannot be reached (not running, restarting, or the connection was lost).',
  KW_KEYHOLDER_TIMEOUT: 'The keyholder did not answer in time; the operation may or may not have happened.',
  // `open` (open for recipient) reports envelope failures with core's codes and wording.
  KW_NOT_AN_ENVELOPE: ERROR_CODES.KW_NOT_AN_ENVELOPE,
  KW_UNSUPPORTED_VERSION: ERROR_CODES.KW_UNSUPPORTED_VERSION,
  KW_MALFORMED_HEADER: ERROR_CODES.KW_MALFORMED_HEADER,
  KW_UNSUPPORTED: ERROR_CODES.KW_UNSUPPORTED,
  KW_NO_IDENTITY_MATCHED: ERROR_CODES.KW_NO_IDENTITY_MATCHED,
  KW_STANZA_UNWRAP_FAILED: ERROR_CODES.KW_STANZA_UNWRAP_FAILED,
  KW_TOO_MANY_TRIALS: ERROR_CODES.KW_TOO_MANY_TRIALS,
  KW_COMMITMENT_MISMATCH: ERROR_CODES.KW_COMMITMENT_MISMATCH,
  KW_HEADER_MAC_MISMATCH: ERROR_CODES.KW_HEADER_MAC_MISMATCH,
  KW_CONTEXT_INVALID: ERROR_CODES.KW_CONTEXT_INVALID,
  // HSM (hsm/errors.ts, docs/hsm.md)
  ...HSM_ERRORS,
  KW_HSM_AUTO_UNSEAL: 'This keyholder unseals itself from its HSM (HSM-wrapped mode): it takes no unseal shares. The shares made at init are recovery shares; they authorise recovery operations (keyward hsm verify-recovery) and open nothing without the HSM.',
  KW_HSM_NOT_CONFIGURED: 'This keyholder is not in HSM-wrapped mode: recovery shares do not apply (use keyward unseal), and keys cannot be HSM-resident.',
  // Attestation-gated release (ops/release.ts, docs/tee.md §Release flow)
  KW_ATTEST_NONCE_UNKNOWN: 'The release nonce was not issued by this keyholder for this key (never issued, issued for another key, or dropped by a restart or seal); ask for a new one.',
  KW_ATTEST_NONCE_EXPIRED: 'The release nonce expired before the evidence arrived; ask for a new one.',
  KW_ATTEST_NONCE_USED: 'The release nonce was already spent (each answers one release attempt, allowed or refused); ask for a new one.',
  // Signed governance (governance.ts, docs/mfa.md §Signed policy)
  KW_POLICY_DENIED: 'The signed policy snapshot the keyholder holds does not grant this operation to the caller (whatever the database says).',
  KW_GOVERNANCE_ANCHORED: 'The keyholder already holds a signed governance snapshot; genesis happens once.',
  KW_GOVERNANCE_NOT_ANCHORED: 'The keyholder holds no governance snapshot yet: make the genesis snapshot first.',
  // Directory keys (directory-keys.ts, docs/directory.md §Key custody)
  KW_DIRECTORY_NO_KEYS: 'The keyholder holds no directory keys yet: the API creates (or imports) them with directory-keys when the directory is enabled.',
  KW_DIRECTORY_KEY_MISMATCH: "The directory keys offered, or the tree head's Configuration, are not the directory keys this keyholder holds; nothing changed.",
  KW_DIRECTORY_HEAD_REGRESSION: 'The tree head does not extend the last one the keyholder signed (smaller size: rollback; same size, other root: fork); refused.',
  KW_DIRECTORY_HEAD_INCONSISTENT: 'The larger tree head comes without a consistency proof from the last head the keyholder signed, or the proof does not verify (a fork that grows); refused.',
  ...MFA_ERRORS,
  KW_ATTEST_BINDING_MISMATCH: 'The evidence does not bind this nonce and this recipient key (another nonce, or evidence made for another public key); nothing was released.',
  KW_ATTEST_NOT_CONFIGURED: 'The keyholder has no trust roots for this evidence type (its attest roots: tpmRoots, amdRoots, intelRoots or nitroRoots).',
  KW_ATTEST_EVIDENCE_INVALID: 'The evidence is not well formed (malformed, oversized, non-canonical or unsupported); nothing was released.',
  KW_ATTEST_EVIDENCE_REJECTED: 'The keyholder could not verify the evidence (signature, certificate chain, trust root, validity period, key binding, PCR digest, attestation key, or no evidence verified for this nonce); nothing was released.',
  KW_ATTEST_POLICY_DENIED: "The evidence the keyholder verified does not satisfy the key's release policy; nothing was released.",
  // The attested keyholder channel (attested-channel.ts, docs/tee.md §Enclave-ready keyholder)
  KW_KEYHOLDER_ATTESTATION_FAILED: "The keyholder's evidence does not verify for this connection (signature, certificate chain, credential activation, or a nonce/channel-key binding that is not this handshake's: replayed evidence); nothing was sent to it.",
  KW_KEYHOLDER_MEASUREMENT_MISMATCH: "The keyholder's verified evidence does not match the pinned measurements (keyholder policy); nothing was sent to it.",
  KW_KEYHOLDER_CHANNEL_REFUSED: 'The keyholder refused the channel: the API client key is not authorized, or its handshake signature does not verify.',
  KW_KEYHOLDER_NOT_ATTESTED: 'This keyholder runs without an attested channel (a local process): it has no evidence and no response-signing key to offer.',
} as const;

/** Union of the codes a keyholder response (or the client) reports. */
export type ProtocolErrorCode = keyof typeof PROTOCOL_ERRORS;

/** Facts about a failure that callers may act on; never secrets. */
export interface ProtocolErrorDetails {
  /** The share index a custody error is about. */
  readonly index?: number;
  /** Which signed field differed (KW_REQUEST_MISMATCH). */
  readonly field?: string;
  /** The underlying code (e.g. the HTTPSIG_* code behind KW_REQUEST_UNAUTHENTICATED). */
  readonly reason?: string;
}

/**
 * The error of the keyholder protocol, on both sides of the socket: the
 * service throws it for protocol-level refusals, and the client rebuilds it
 * from every error response (so the API matches on `code` whichever side
 * produced it).
 *
 * @example
 * try { await client.call('datakey', params) }
 * catch (e) { if (isProtocolError(e, 'KW_KEYHOLDER_UNAVAILABLE')) return reply(503) }
 */
export class KeyholderProtocolError extends Error {
  readonly code: ProtocolErrorCode;
  readonly details: ProtocolErrorDetails;

  constructor(code: ProtocolErrorCode, message?: string, options?: { cause?: unknown; details?: ProtocolErrorDetails }) {
    super(message ?? PROTOCOL_ERRORS[code], options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'KeyholderProtocolError';
    this.code = code;
    this.details = options?.details ?? {};
  }

  /** Rebuilds an error from a response; an unknown code becomes KW_INTERNAL (the message is kept). */
  static fromWire(e: WireError): KeyholderProtocolError {
    const known = Object.hasOwn(PROTOCOL_ERRORS, e.code);
    const code = known ? (e.code as ProtocolErrorCode) : 'KW_INTERNAL';
    return new KeyholderProtocolError(code, known ? e.message : `${e.code}: ${e.message}`, e.details ? { details: e.details } : undefined);
  }
}

/** True when `e` is a KeyholderProtocolError, optionally with the given code. */
export function isProtocolError(e: unknown, code?: ProtocolErrorCode): e is KeyholderProtocolError {
  return e instanceof KeyholderProtocolError && (code === undefined || e.code === code);
}

// ---------------------------------------------------------------------------
// Limits

/** Largest frame either side sends or accepts (transport.ts). */
export const MAX_FRAME_BYTES = 1024 * 1024;
/** Largest audit event (canonical JSON bytes). */
export const MAX_EVENT_BYTES = 64 * 1024;
/** Largest message for sign / verify / mac (as ops/sign.ts). */
export const MAX_MESSAGE_BYTES = 64 * 1024;
/** Largest encrypt plaintext (as ops/encrypt.ts). */
export const MAX_PLAINTEXT_BYTES = 4096;
/** Largest wrapped blob (a key version or a data key is < 100 bytes). */
export const MAX_WRAPPED_BYTES = 4096;
/** Largest stored public key (X-Wing: 1216 bytes). */
export const MAX_PUBLIC_KEY_BYTES = 2048;
/** Largest sealed unseal share (as unseal-key.ts). */
export const MAX_SEALED_SHARE_BYTES = 64 * 1024;
/** Limits on the caller's signed HTTP request the API relays. */
export const SIGNED_REQUEST_LIMITS = { maxBodyBytes: 64 * 1024, maxHeaders: 64, maxHeaderValue: 8192, maxUrl: 8192 } as const;
/** hmac-audit: messages per request and bytes per message. */
export const HMAC_AUDIT_LIMITS = { maxMessages: 64, maxMessageBytes: 4096 } as const;
/** import-version: the wrapped material (RSA-4096 block + RFC 5649 of ≤ 256 bytes). */
export const MAX_IMPORT_WRAPPED_BYTES = 1024;
/** open: the envelope header (as ops/open.ts). */
export const MAX_OPEN_HEADER_BYTES = 32 * 1024;
/** frontier-restore: events replayed in one request (larger backlogs: append + ack). */
export const MAX_RESTORE_EVENTS = 1000;

// ---------------------------------------------------------------------------
// Field schemas

const b64uChars = (bytes: number) => Math.ceil((bytes * 4) / 3);
const B64U = /^[A-Za-z0-9_-]*$/;

/** A base64url string on the wire (results), at most `maxBytes` once decoded. */
export function b64uText(maxBytes: number, exact?: number) {
  return z.string().max(b64uChars(maxBytes)).regex(B64U, 'must be unpadded base64url').refine((s) => {
    const b = fromBase64url(s);
    return b !== null && (exact === undefined || b.length === exact);
  }, exact === undefined ? 'must be canonical unpadded base64url' : `must be canonical base64url of ${exact} bytes`);
}

/** A base64url field decoded to bytes (params): strings in, `Uint8Array` out. */
export function b64uBytes(maxBytes: number, opts: { exact?: number; min?: number } = {}) {
  return z.string().max(b64uChars(maxBytes), `must be at most ${maxBytes} bytes`).transform((s, ctx): Uint8Array => {
    const b = fromBase64url(s);
    if (b === null) {
      ctx.addIssue({ code: 'custom', message: 'must be canonical unpadded base64url' });
      return z.NEVER;
    }
    if (b.length > maxBytes || (opts.exact !== undefined && b.length !== opts.exact) || (opts.min !== undefined && b.length < opts.min)) {
      ctx.addIssue({ code: 'custom', message: opts.exact !== undefined ? `must be ${opts.exact} bytes` : `must be ${opts.min ?? 0} to ${maxBytes} bytes` });
      return z.NEVER;
    }
    return b;
  });
}

const safeSize = z.int().min(0).max(Number.MAX_SAFE_INTEGER);

const lowerHex = (maxBytes: number) => z.string().regex(new RegExp(`^(?:[0-9a-f]{2}){1,${maxBytes}}$`), 'must be lower-case hex');
const pcrBank = z.record(z.string().regex(/^(?:[0-9]|[12][0-9]|3[01])$/, 'PCR indices are 0..31'), lowerHex(64)).optional();

/** A workload's TEE evidence for attest-verify (the HTTP release body's `evidence`, binary values base64url). */
export const releaseEvidenceSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('nitro'), document: b64uBytes(16 * 1024, { min: 1 }) }),
  z.strictObject({
    type: z.literal('tpm'), attest: b64uBytes(1024, { min: 1 }), signature: b64uBytes(1024, { min: 1 }),
    pcrs: z.strictObject({ sha1: pcrBank, sha256: pcrBank, sha384: pcrBank, sha512: pcrBank }),
    activatedCredential: b64uBytes(64, { min: 1 }),
  }),
  z.strictObject({ type: z.literal('snp'), report: b64uBytes(1184, { min: 1 }), vcek: b64uBytes(4096, { min: 1 }), intermediates: z.array(b64uBytes(4096, { min: 1 })).min(1).max(4) }),
  z.strictObject({ type: z.literal('sgx'), quote: b64uBytes(32 * 1024, { min: 1 }) }),
  z.strictObject({ type: z.literal('tdx'), quote: b64uBytes(32 * 1024, { min: 1 }) }),
]);

/** What the audit log keeps of verified claims (hex measurements, decimal versions). */
export const claimsSummarySchema = z.strictObject({
  platform: z.enum(['aws-nitro', 'tpm2', 'amd-sev-snp', 'intel-sgx', 'intel-tdx']),
  debug: z.boolean(),
  measurements: z.record(z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/), lowerHex(128)),
  versions: z.record(z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/), z.string().regex(/^[0-9]{1,40}$/)),
  issued_at: z.string().optional(),
});
const hash32Text = b64uText(32, 32);

/** A new share sealed to its custodian (custodians.ts): ciphertext only. */
const sealedShareView = z.strictObject({ index: z.int(), recipient: z.string(), armored: z.string() });
/** A rekey attempt as `rekey-status` shows it (rekey.ts RekeyView): never share material. */
const rekeyView = z.strictObject({
  id: z.string(), recipient: z.string(), mode: z.enum(['software', 'hsm-wrapped']),
  shares: z.int(), threshold: z.int(), received: z.int(), required: z.int(),
  startedAt: safeSize, expiresAt: safeSize,
  completed: z.strictObject({ generation: z.int(), shareHashes: z.array(z.string()), sealedShares: z.array(sealedShareView), record: custodyRecordSchema }).nullable(),
});

/** The audit event that travels with an operation (canonical JSON bytes; checked by the service). */
export const eventField = b64uBytes(MAX_EVENT_BYTES, { min: 2 });

/** A caller's encryption context. JSON.parse keeps an own "__proto__" key that a record schema would drop unseen: refuse it. */
export const contextField = z
  .custom<unknown>((v) => !(typeof v === 'object' && v !== null && Object.hasOwn(v, '__proto__')), 'the context key "__proto__" is not allowed')
  .pipe(contextSchema);

/** A key version as the store holds it: its reference, the blob wrapped under the master key, and its public key if any. */
export const storedVersionSchema = z.strictObject({
  ns: nameSchema,
  key: nameSchema,
  version: versionSchema,
  type: versionRefSchema.shape.type,
  wrapped: b64uBytes(MAX_WRAPPED_BYTES, { min: 1 }),
  publicKey: b64uBytes(MAX_PUBLIC_KEY_BYTES, { min: 1 }).optional(),
});

/** The registered device key the caller signed with (from the directory, relayed by the API). */
export const deviceKeySchema = z.strictObject({
  keyId: z.string().min(1).max(256),
  principal: z.string().min(1).max(256),
  publicKey: b64uBytes(32, { exact: 32 }),
});

/**
 * The caller's RFC 9421-signed HTTP request, as the API received it: the
 * keyholder verifies the signature itself (over method, target, body digest,
 * time and nonce) and reads the recipient from the signed body.
 */
export const signedRequestSchema = z.strictObject({
  method: z.string().min(1).max(16),
  url: z.string().min(1).max(SIGNED_REQUEST_LIMITS.maxUrl),
  headers: z
    .record(
      z.string().min(1).max(256),
      z.union([z.string().max(SIGNED_REQUEST_LIMITS.maxHeaderValue), z.array(z.string().max(SIGNED_REQUEST_LIMITS.maxHeaderValue)).max(16)]),
    )
    .refine((h) => Object.keys(h).length <= SIGNED_REQUEST_LIMITS.maxHeaders, `at most ${SIGNED_REQUEST_LIMITS.maxHeaders} headers`),
  body: b64uBytes(SIGNED_REQUEST_LIMITS.maxBodyBytes),
  device: deviceKeySchema,
});

const refResult = versionRefSchema;
/** A principal or MFA factor id (printable ASCII, as the store's identifiers). */
const mfaIdent = z.string().regex(/^[\x21-\x7e]{1,255}$/, 'must be 1–255 printable ASCII characters without spaces');
const leaf = safeSize;
/** A keyholder run apart: its response key's Ed25519 signature over the result, when the request asked for it (response-signing.ts). */
const responseProof = b64uText(64, 64).optional();
/**
 * Asks a keyholder run apart to sign this op's result (response-signing.ts): the request hash of the caller's
 * signed request (hex; the client checks it is its own) and, for rewrap, the item index. Release: `{}`.
 */
const proofParam = z.strictObject({ requestHash: z.string().regex(/^[0-9a-f]{64}$/).optional(), item: z.int().min(0).max(999).optional() }).optional();
const versionedText = (max: number) => z.string().min(4).max(max).regex(/^kw:v[1-9][0-9]*:[A-Za-z0-9_-]*$/);

// ---------------------------------------------------------------------------
// Ops

const empty = z.strictObject({});

/** One entry per op: its params schema and its result schema. */
export const OPS = {
  status: {
    params: empty,
    result: z.strictObject({
      initialized: z.boolean(),
      sealed: z.boolean(),
      initId: z.string().nullable(),
      /** While sealed (and initialized): where to send shares, and progress. */
      unseal: z.strictObject({ recipient: z.string(), bootId: z.string(), received: z.int(), threshold: z.int() }).nullable(),
      /** HSM-wrapped mode (hsm-custody.ts HsmStatus); absent or null otherwise. */
      hsm: z.strictObject({
        state: z.enum(['connecting', 'available', 'unavailable', 'failed', 'sealed']),
        code: z.string().nullable(),
        message: z.string().max(4096).nullable(),
        tokenLabel: z.string(),
        keyLabel: z.string(),
        auditKeyLabel: z.string().nullable(),
        retryMs: z.int(),
        attempts: z.int(),
      }).nullable().optional(),
      audit: z.strictObject({
        origin: z.string().nullable(),
        verifierKey: z.string().nullable(),
        restored: z.boolean(),
        /** Leaves acknowledged as durable. */
        size: safeSize,
        /** Leaves appended (durable + pending). */
        appended: safeSize,
        checkpoint: z.strictObject({ size: safeSize, root: hash32Text }).nullable(),
      }),
    }),
  },
  'init-state': {
    params: z.strictObject({ state: initStateSchema }),
    result: z.strictObject({ initId: z.string(), threshold: z.int() }),
  },
  'unseal-key': {
    params: empty,
    result: z.strictObject({ recipient: z.string(), bootId: z.string() }),
  },
  unseal: {
    /**
     * `share`: a share file sealed to this boot's unseal key (binary Keyward envelope).
     * `custody`: the newest share set published by a node that rekeyed (custody-sync.ts),
     * as the store holds it; trusted only once the combined master key verifies its MAC.
     */
    params: z.strictObject({ share: b64uBytes(MAX_SEALED_SHARE_BYTES, { min: 1 }), custody: custodyRecordSchema.optional() }),
    result: z.strictObject({ sealed: z.boolean(), received: z.int(), threshold: z.int() }),
  },
  'recovery-share': {
    /**
     * HSM-wrapped mode: one recovery share file sealed to this boot's unseal
     * key (as `unseal`), checked like an unseal share; at the threshold the
     * recovery key is rebuilt, checked against recoveryCheck and wiped
     * (`verified: true`). Opens nothing (hsm-custody.ts RecoveryVerifier).
     */
    params: z.strictObject({ share: b64uBytes(MAX_SEALED_SHARE_BYTES, { min: 1 }) }),
    result: z.strictObject({ received: z.int(), threshold: z.int(), verified: z.boolean() }),
  },
  seal: {
    params: empty,
    result: z.strictObject({ sealed: z.literal(true) }),
  },
  // Rekey: unseal-share rotation (rekey.ts, docs/key-service-crypto.md §Rekey). Needs an unsealed keyholder.
  'rekey-start': {
    /** New set: `shares` (n), `threshold` (k), one Keyward recipient per new share. One attempt at a time (KW_REKEY_PENDING). */
    params: z.strictObject({
      shares: z.int().min(2).max(255), threshold: z.int().min(2).max(255),
      recipients: z.array(z.string().min(1).max(8192)).min(2).max(255),
      ttlSeconds: z.int().min(60).max(86_400).optional(),
    }),
    result: rekeyView,
  },
  'rekey-status': {
    params: empty,
    /** `rekey`: the attempt in progress (or completed, until cancelled or expired), or null. */
    result: z.strictObject({ generation: safeSize, rekey: rekeyView.nullable() }),
  },
  'rekey-share': {
    /** One CURRENT share (unseal or recovery share) sealed to the attempt's key, purpose "rekey", boot = id. */
    params: z.strictObject({ id: z.string().regex(/^[0-9a-f]{32}$/), share: b64uBytes(MAX_SEALED_SHARE_BYTES, { min: 1 }) }),
    result: z.strictObject({
      id: z.string(), index: z.int(), received: z.int(), required: z.int(), complete: z.boolean(),
      /** Set by the completing share: the new set (committed), its sealed shares, and the record other nodes adopt. */
      completed: z.strictObject({
        generation: z.int(), shares: z.int(), threshold: z.int(), shareHashes: z.array(z.string()),
        sealedShares: z.array(sealedShareView), record: custodyRecordSchema,
      }).nullable(),
    }),
  },
  'rekey-cancel': {
    /** Cancels the attempt `id` (or acknowledges a completed one, dropping its sealed shares). */
    params: z.strictObject({ id: z.string().regex(/^[0-9a-f]{32}$/) }),
    result: z.strictObject({ cancelled: z.literal(true), completed: z.boolean() }),
  },
  'custody-sync': {
    /**
     * A share set another node's keyholder published after a rekey (custody-sync.ts): adopted when its MAC
     * verifies under this master key and its generation is newer; else ignored (`taken: false`).
     */
    params: z.strictObject({ record: custodyRecordSchema }),
    result: z.strictObject({ generation: safeSize, taken: z.boolean() }),
  },
  'generate-version': {
    params: z.strictObject({
      event: eventField, ref: versionRefSchema,
      /** Generate the version inside the HSM (HSM-resident; needs HSM custody, else KW_HSM_NOT_CONFIGURED): the result's `wrapped` is then a marker, not material. */
      resident: z.boolean().optional(),
    }),
    result: z.strictObject({
      ref: refResult,
      wrapped: b64uText(MAX_WRAPPED_BYTES),
      publicKey: b64uText(MAX_PUBLIC_KEY_BYTES).optional(),
      publicKeyText: z.string().max(4096).optional(),
      leaf,
    }),
  },
  'import-params': {
    /**
     * A fresh RSA wrapping key pair for one bring-your-own-key import into
     * `ns/key` of `type` (import.ts), held in memory until used or expired.
     * Signed with the checkpoint key over import.ts's importParamsMessage.
     * Touches no stored key material, so it carries no event (the API
     * audits the request).
     */
    params: z.strictObject({
      ns: nameSchema,
      key: nameSchema,
      type: versionRefSchema.shape.type,
      ttlSeconds: z.int().min(1).max(24 * 3600).optional(),
      bits: z.union([z.literal(3072), z.literal(4096)]).optional(),
    }),
    result: z.strictObject({
      token: z.string().min(1).max(64),
      /** DER SubjectPublicKeyInfo of the RSA wrapping key. */
      publicKey: b64uText(1024),
      algorithm: z.literal('RSA_AES_KEY_WRAP_SHA_256'),
      expiresAt: z.string(),
      publicKeySha256: z.string().regex(/^[0-9a-f]{64}$/),
      signer: z.string().regex(/^[0-9a-f]{64}$/),
      signature: z.string().regex(/^[0-9a-f]{128}$/),
    }),
  },
  'import-version': {
    /** Opens `wrapped` with the token's private key (consumed) and stores the material as version `ref` (origin external). */
    params: z.strictObject({
      event: eventField,
      ref: versionRefSchema,
      token: z.string().min(1).max(64),
      wrapped: b64uBytes(MAX_IMPORT_WRAPPED_BYTES, { min: 1 }),
    }),
    result: z.strictObject({
      ref: refResult,
      wrapped: b64uText(MAX_WRAPPED_BYTES),
      publicKey: b64uText(MAX_PUBLIC_KEY_BYTES).optional(),
      publicKeyText: z.string().max(4096).optional(),
      leaf,
    }),
  },
  open: {
    /**
     * Open for recipient (ops/open.ts): the header of an envelope sealed to
     * an x25519/xwing version's public key; its data key leaves sealed to
     * the recipient named in the caller's signed body. `context` is the one
     * the API decided policy on: it must equal the header's.
     */
    params: z.strictObject({
      event: eventField,
      version: storedVersionSchema,
      header: b64uBytes(MAX_OPEN_HEADER_BYTES, { min: 1 }),
      context: contextField.optional(),
      recipient: z.string().min(1).max(4096),
      request: signedRequestSchema,
    }),
    result: z.strictObject({ ref: refResult, sealed: b64uText(MAX_FRAME_BYTES / 2), leaf, proof: responseProof }),
  },
  datakey: {
    params: z.strictObject({
      event: eventField,
      version: storedVersionSchema,
      context: contextField.optional(),
      /** The recipient the data key is sealed to: must be the one named in the signed body. */
      recipient: z.string().min(1).max(4096),
      request: signedRequestSchema,
    }),
    result: z.strictObject({ ref: refResult, wrapped: b64uText(MAX_WRAPPED_BYTES), sealed: b64uText(MAX_FRAME_BYTES / 2), leaf, proof: responseProof }),
  },
  unwrap: {
    params: z.strictObject({
      event: eventField,
      version: storedVersionSchema,
      context: contextField.optional(),
      wrapped: b64uBytes(MAX_WRAPPED_BYTES, { min: 1 }),
      recipient: z.string().min(1).max(4096),
      request: signedRequestSchema,
    }),
    result: z.strictObject({ ref: refResult, sealed: b64uText(MAX_FRAME_BYTES / 2), leaf, proof: responseProof }),
  },
  rewrap: {
    params: z.strictObject({
      event: eventField,
      from: storedVersionSchema,
      to: storedVersionSchema,
      context: contextField.optional(),
      wrapped: b64uBytes(MAX_WRAPPED_BYTES, { min: 1 }),
      /** The caller's signed request (its body's `items` must hold this item); required once the keyholder holds a governance snapshot. */
      request: signedRequestSchema.optional(),
      proof: proofParam,
    }),
    result: z.strictObject({ ref: refResult, wrapped: b64uText(MAX_WRAPPED_BYTES), leaf, proof: responseProof }),
  },
  encrypt: {
    /** `request`: the caller's signed request, which the keyholder verifies and decides on its signed policy; required once it holds a governance snapshot. */
    params: z.strictObject({ event: eventField, version: storedVersionSchema, context: contextField.optional(), plaintext: b64uBytes(MAX_PLAINTEXT_BYTES), request: signedRequestSchema.optional(), proof: proofParam }),
    result: z.strictObject({ ref: refResult, ciphertext: versionedText(16 + b64uChars(MAX_PLAINTEXT_BYTES + 49)), leaf, proof: responseProof }),
  },
  decrypt: {
    /** The plaintext leaves only sealed to the caller, like a data key. */
    params: z.strictObject({
      event: eventField,
      version: storedVersionSchema,
      context: contextField.optional(),
      ciphertext: versionedText(16 + b64uChars(MAX_PLAINTEXT_BYTES + 49)),
      recipient: z.string().min(1).max(4096),
      request: signedRequestSchema,
    }),
    result: z.strictObject({ ref: refResult, sealed: b64uText(MAX_FRAME_BYTES / 2), leaf, proof: responseProof }),
  },
  sign: {
    /** `request`: as for encrypt. */
    params: z.strictObject({ event: eventField, version: storedVersionSchema, message: b64uBytes(MAX_MESSAGE_BYTES), request: signedRequestSchema.optional(), proof: proofParam }),
    result: z.strictObject({ ref: refResult, signature: versionedText(128), leaf, proof: responseProof }),
  },
  verify: {
    params: z.strictObject({ event: eventField, version: storedVersionSchema, message: b64uBytes(MAX_MESSAGE_BYTES), signature: versionedText(128), proof: proofParam }),
    result: z.strictObject({ ref: refResult, valid: z.boolean(), leaf, proof: responseProof }),
  },
  mac: {
    /** Without `mac`: computes a MAC. With it: verifies it (constant time). */
    params: z.strictObject({ event: eventField, version: storedVersionSchema, message: b64uBytes(MAX_MESSAGE_BYTES), mac: versionedText(64).optional(), request: signedRequestSchema.optional(), proof: proofParam }),
    result: z.strictObject({ ref: refResult, mac: versionedText(64).optional(), valid: z.boolean().optional(), leaf, proof: responseProof }),
  },
  'hmac-audit': {
    /**
     * HMAC-SHA256 under a namespace's audit HMAC key version (an `hmac-sha256`
     * version), for redacting values in audit events (audit/redact.ts). It
     * builds events, so carries none; to keep it from being an unaudited MAC
     * oracle, every message must be a redaction message (start with
     * audit/redact.ts's REDACT_LABEL). MACs are lowercase hex.
     */
    params: z.strictObject({
      version: storedVersionSchema,
      messages: z.array(b64uBytes(HMAC_AUDIT_LIMITS.maxMessageBytes)).min(1).max(HMAC_AUDIT_LIMITS.maxMessages),
    }),
    result: z.strictObject({ ref: refResult, macs: z.array(z.string().regex(/^[0-9a-f]{64}$/)) }),
  },
  'destroy-receipt': {
    /**
     * A signed destroy receipt (audit/receipt.ts) for a key version the API is
     * about to erase. The keyholder first checks that `version.wrapped` really
     * is that version's blob (it must unwrap under the master key for exactly
     * this namespace, key, version and type), that `time` is within five
     * minutes of its own clock, then signs
     * `"keyward/v1 destroy-receipt\n" ‖ canonicalJson({ ns, key, version, blob_sha256, time })`
     * with its checkpoint key (Ed25519; the public key is the one in the
     * checkpoint verifier key). It builds an event, so carries none; the API
     * puts the receipt in the `keys.destroy` event it stores with the erasure.
     * When its signed governance has a `keys.destroy` / `keys.schedule_deletion`
     * quorum rule, it first checks `approval` itself (governance.ts
     * `checkDestroyApproval`): KW_QUORUM_REQUIRED / KW_QUORUM_PENDING /
     * KW_APPROVAL_DENIED / KW_STEP_UP_EXPIRED, nothing receipted or evicted.
     */
    params: z.strictObject({
      version: storedVersionSchema,
      time: z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/, 'must be RFC 3339 UTC with milliseconds'),
      approval: z.strictObject({ request: z.record(z.string(), z.unknown()), requester: mfaIdent, approvals: z.array(z.unknown()).max(64) }).optional(),
      rp: z.strictObject({ id: z.string().min(1).max(253), name: z.string().min(1).max(64), origins: z.array(z.string().min(1).max(512)).min(1).max(16) }).optional(),
    }),
    result: z.strictObject({
      ref: refResult,
      blob_sha256: z.string().regex(/^[0-9a-f]{64}$/),
      time: z.string(),
      /** Hex of the raw Ed25519 public key that signed. */
      signer: z.string().regex(/^[0-9a-f]{64}$/),
      /** Hex of the Ed25519 signature. */
      signature: z.string().regex(/^[0-9a-f]{128}$/),
    }),
  },
  'totp-new': {
    /**
     * A fresh TOTP seed for a second factor (issue #7; ops/totp.ts): wrapped
     * under the master key with purpose `totp-seed`, AAD { principal, factor },
     * and its base32 text, which the API shows once (enrollment) and never
     * stores. Not a key op: the API audits the enrollment.
     */
    params: z.strictObject({ principal: mfaIdent, factor: mfaIdent }),
    result: z.strictObject({ sealed: b64uText(256), base32: z.string().regex(/^[A-Z2-7]{16,128}$/) }),
  },
  'totp-verify': {
    /**
     * Checks a TOTP code against a sealed seed at `time` (within five minutes
     * of the keyholder clock): ok with its time step, or why not. The seed
     * never leaves; a step at or before `lastTimeStep` is a replay.
     */
    params: z.strictObject({
      principal: mfaIdent, factor: mfaIdent, sealed: b64uBytes(256, { min: 1 }),
      code: z.string().regex(/^[0-9]{6,8}$/, 'a TOTP code is 6 to 8 digits'),
      lastTimeStep: z.int().min(0).max(Number.MAX_SAFE_INTEGER).nullable(),
      time: z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/, 'must be RFC 3339 UTC with milliseconds'),
    }),
    result: z.strictObject({ ok: z.boolean(), timeStep: z.int().min(0).nullable(), reason: z.enum(['malformed', 'wrong', 'replay']).nullable() }),
  },
  'governance-head': {
    /** The signed governance snapshot in force (governance.ts), or nulls before genesis. Public data. */
    params: empty,
    result: z.strictObject({ snapshot: z.string().nullable(), signature: z.string().regex(/^[0-9a-f]{128}$/).nullable(), seq: z.int().min(0).nullable(), hash: z.string().regex(/^[0-9a-f]{64}$/).nullable() }),
  },
  'governance-genesis': {
    /** Signs the first governance snapshot over `base` (once: KW_GOVERNANCE_ANCHORED after). */
    params: z.strictObject({ base: GovernanceStateSchema, time: z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/) }),
    result: z.strictObject({ snapshot: z.string(), signature: z.string(), seq: z.int(), hash: z.string() }),
  },
  'governance-sync': {
    /**
     * Another node's keyholder signed this snapshot (same checkpoint key, so
     * it checked the transition): taken when it is newer (higher seq) than
     * the one held, else ignored. Lets every node of a deployment enforce
     * the newest snapshot; an older or foreign one changes nothing.
     */
    params: z.strictObject({ snapshot: z.string().min(2).max(4 * 1024 * 1024), signature: z.string().regex(/^[0-9a-f]{128}$/) }),
    result: z.strictObject({ seq: z.int().nullable(), hash: z.string().nullable(), taken: z.boolean() }),
  },
  'governance-adopt': {
    /**
     * Checks a governance change against the snapshot in force (the quorum's
     * approvals of its request hash, when a rule covers it) and signs the next
     * snapshot (governance.ts). `request` is the canonical request object.
     */
    params: z.strictObject({
      request: z.record(z.string(), z.unknown()),
      requester: mfaIdent,
      approvals: z.array(z.unknown()).max(64),
      rp: z.strictObject({ id: z.string().min(1).max(253), name: z.string().min(1).max(64), origins: z.array(z.string().min(1).max(512)).min(1).max(16) }).optional(),
      time: z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/),
    }),
    result: z.strictObject({ snapshot: z.string(), signature: z.string(), seq: z.int(), hash: z.string() }),
  },
  'directory-keys': {
    /**
     * The directory's public keys (directory-keys.ts), making them on first
     * use: derived from the master key, or `import`ed once from a
     * pre-keyholder directory.key file (64 bytes: signing seed ‖ VRF key).
     * Importing other keys than the ones held is KW_DIRECTORY_KEY_MISMATCH.
     */
    params: z.strictObject({ import: b64uBytes(64, { exact: 64 }).optional() }),
    result: z.strictObject({
      signaturePublicKey: b64uText(32, 32),
      vrfPublicKey: b64uText(32, 32),
      source: z.enum(['derived', 'imported']),
      created: z.boolean(),
      lastHead: z.strictObject({ size: safeSize, root: hash32Text }).nullable(),
    }),
  },
  'directory-vrf': {
    /** The ECVRF output and proof for the KEYTRANS VrfInput (label, version). */
    params: z.strictObject({ label: b64uBytes(255), version: z.int().min(0).max(0xffffffff) }),
    result: z.strictObject({ output: b64uText(32, 32), proof: b64uText(80, 80) }),
  },
  'directory-sign-head': {
    /**
     * Signs a §11.2 TreeHeadTBS (Configuration ‖ uint64 size ‖ root) whose
     * Configuration names the keyholder's directory keys and whose head
     * extends the last one it signed (KW_DIRECTORY_HEAD_REGRESSION). A larger
     * head needs `consistency`: `from` = the size of the last head signed,
     * `fromHeads` = that log's full-subtree heads (they must recompute the
     * root signed then), `proof` = the §12.1 consistency proof from `from` to
     * the new size; missing, from another size or failing:
     * KW_DIRECTORY_HEAD_INCONSISTENT (a fork that grows).
     */
    params: z.strictObject({
      tbs: b64uBytes(8 * 1024, { min: 41 }),
      consistency: z.strictObject({
        from: z.int().min(1).max(Number.MAX_SAFE_INTEGER),
        fromHeads: z.array(b64uBytes(32, { exact: 32 })).min(1).max(64),
        proof: z.array(b64uBytes(32, { exact: 32 })).max(128),
      }).optional(),
    }),
    result: z.strictObject({ signature: b64uText(64, 64) }),
  },
  'directory-head-log-key': {
    /**
     * The seed of the directory's witness head-log key (docs/witness.md §The
     * directory), derived one-way from the tree-head signing key:
     * HKDF-SHA256(sk, "", "keyward directory head log key v1", 32), and the
     * head log's id (HKDF(sk, "", "keyward directory head log id v1", 8), hex).
     * It signs head-log checkpoints only: not tree heads, not VRF proofs.
     */
    params: empty,
    result: z.strictObject({ seed: b64uText(32, 32), id: z.string().regex(/^[0-9a-f]{16}$/) }),
  },
  'keyholder-attestation': {
    /**
     * A keyholder run apart (response-signing.ts, docs/tee.md §Pinning the
     * keyholder from a client): without `nonce`/`challenge` its evidence
     * offer (TPM: EK certificate, EK and AK public areas) and its response
     * key; with them, evidence answering the client's challenge and binding
     * SHA-256("keyward/v1 keyholder-response-key\n" ‖ nonce ‖ responseKey).
     * A local keyholder answers KW_KEYHOLDER_NOT_ATTESTED.
     */
    params: z.strictObject({ nonce: b64uBytes(32, { exact: 32 }).optional(), challenge: z.record(z.string(), z.unknown()).optional() }),
    result: z.strictObject({
      platform: z.string().max(32),
      responseKey: b64uText(32, 32),
      offer: z.record(z.string(), z.unknown()).optional(),
      evidence: z.record(z.string(), z.unknown()).optional(),
    }),
  },
  'attest-nonce': {
    /**
     * A single-use release nonce for `ns/key` (ops/release.ts), held in this
     * keyholder's memory until spent or expired. Touches no key material:
     * no event (the API audits the request).
     */
    params: z.strictObject({
      ns: nameSchema, key: nameSchema, ttlSeconds: z.int().min(1).max(600).optional(),
      /** TPM evidence: the keyholder checks the EK chain to its own TPM roots and answers with the MakeCredential challenge for the AK. */
      tpm: z.strictObject({
        ekCertificate: b64uBytes(4096, { min: 1 }), ekIntermediates: z.array(b64uBytes(4096, { min: 1 })).max(4).optional(),
        ekPublic: b64uBytes(1024, { min: 1 }), akPublic: b64uBytes(1024, { min: 1 }),
      }).optional(),
    }),
    result: z.strictObject({
      nonce: b64uText(32, 32), expiresAt: z.string(),
      tpm: z.strictObject({ akName: z.string().regex(/^[0-9a-f]{2,256}$/), credentialBlob: b64uText(1024), encryptedSecret: b64uText(1024), tpm2ToolsFile: b64uText(2048) }).optional(),
    }),
  },
  'attest-verify': {
    /**
     * The keyholder verifies the workload's evidence itself (ops/release-verify.ts):
     * with its own trust roots, at its own clock, expecting the binding of this
     * nonce and recipient; for TPM evidence it finishes the AK enrollment it
     * started with the nonce. The verified claims stay with the nonce for
     * `attest-release`; a refusal spends the nonce. Returns a claims summary.
     */
    params: z.strictObject({ ns: nameSchema, key: nameSchema, nonce: b64uBytes(32, { exact: 32 }), recipient: z.string().min(1).max(4096), evidence: releaseEvidenceSchema }),
    result: z.strictObject({ claims: claimsSummarySchema }),
  },
  'attest-nonce-check': {
    /** Refuses a nonce that is unknown, expired or spent (typed); with `spend`, spends it (refused evidence). */
    params: z.strictObject({ ns: nameSchema, key: nameSchema, nonce: b64uBytes(32, { exact: 32 }), spend: z.boolean() }),
    result: z.strictObject({ expiresAt: z.string() }),
  },
  'attest-release': {
    /**
     * Attestation-gated release (ops/release.ts): spends the nonce, checks the
     * verified evidence binds it and the recipient, then returns a fresh data
     * key wrapped under the `aes256` version and sealed (HPKE) to the
     * recipient with the release context (nonce, key, version, platform,
     * policy hash, measurements hash) in HPKE info.
     */
    params: z.strictObject({
      event: eventField,
      version: storedVersionSchema,
      nonce: b64uBytes(32, { exact: 32 }),
      recipient: z.string().min(1).max(4096),
      platform: z.enum(['aws-nitro', 'tpm2', 'amd-sev-snp', 'intel-sgx', 'intel-tdx']),
      /** The release policy as stored (RFC 8785 canonical JSON); the keyholder checks its hash and evaluates it over the claims it verified itself. */
      policy: z.string().min(2).max(64 * 1024),
      policyHash: z.string().regex(/^[0-9a-f]{64}$/),
      context: contextField.optional(),
      /** The workload's signed request, when it signed one with a device key: then verified and decided on the keyholder's signed policy (bearer-token callers are authenticated by the API alone). */
      request: signedRequestSchema.optional(),
      proof: proofParam,
    }),
    result: z.strictObject({ ref: refResult, wrapped: b64uText(MAX_WRAPPED_BYTES), sealed: b64uText(MAX_FRAME_BYTES / 2), measurementsHash: z.string().regex(/^[0-9a-f]{64}$/), leaf, proof: responseProof }),
  },
  append: {
    /** An audit event that is not a key operation (a denial, an admin action): appended as a pending leaf. */
    params: z.strictObject({ event: eventField }),
    result: z.strictObject({ leaf }),
  },
  ack: {
    /** The store durably holds leaves [0, size). */
    params: z.strictObject({ size: safeSize }),
    result: z.strictObject({ size: safeSize, appended: safeSize }),
  },
  'discard-pending': {
    /**
     * Several nodes: drops the pending (appended, never acknowledged, never
     * signed) leaves from index `from` on, because another node's event took
     * that index in the shared log. `from` below the durable size is
     * KW_AUDIT_FORK: a durable leaf is never taken back.
     */
    params: z.strictObject({ from: safeSize }),
    result: z.strictObject({ size: safeSize, appended: safeSize, discarded: safeSize }),
  },
  'pending-events': {
    /** Events appended but not acknowledged, from index `from` (default: the durable size), as many as fit a frame. */
    params: z.strictObject({ from: safeSize.optional() }),
    result: z.strictObject({ from: safeSize, events: z.array(b64uText(MAX_EVENT_BYTES)), appended: safeSize }),
  },
  checkpoint: {
    params: empty,
    result: z.strictObject({ note: z.string().max(64 * 1024), size: safeSize, root: hash32Text }),
  },
  'frontier-restore': {
    /**
     * After a keyholder restart: the frontier hashes at the last signed
     * checkpoint (must hash to its root), then the events the store holds
     * after it, in order.
     */
    params: z.strictObject({
      size: safeSize,
      hashes: z.array(b64uBytes(32, { exact: 32 })).max(64),
      events: z.array(eventField).max(MAX_RESTORE_EVENTS).optional(),
    }),
    result: z.strictObject({ size: safeSize, appended: safeSize }),
  },
} as const;

export type Op = keyof typeof OPS;
export const OP_NAMES = Object.keys(OPS) as Op[];
/** Ops that use key material and so carry an audit event. */
export const KEY_OPS = ['generate-version', 'import-version', 'open', 'datakey', 'unwrap', 'rewrap', 'encrypt', 'decrypt', 'sign', 'verify', 'mac', 'attest-release'] as const satisfies readonly Op[];
export type KeyOp = (typeof KEY_OPS)[number];

/** Params as sent (binary values as base64url strings). */
export type OpParams<O extends Op> = z.input<(typeof OPS)[O]['params']>;
/** Params as the service sees them once checked (binary values as bytes). */
export type ParsedParams<O extends Op> = z.output<(typeof OPS)[O]['params']>;
/** The result of an op, as sent. */
export type OpResult<O extends Op> = z.output<(typeof OPS)[O]['result']>;

// ---------------------------------------------------------------------------
// Envelopes

export const requestIdSchema = z.union([z.int().min(0).max(Number.MAX_SAFE_INTEGER), z.string().min(1).max(64)]);
export type RequestId = z.infer<typeof requestIdSchema>;

/** The request envelope; `params` is checked against the op's schema afterwards. */
export const requestSchema = z.strictObject({
  id: requestIdSchema,
  op: z.enum(OP_NAMES as [Op, ...Op[]]),
  params: z.unknown().optional(),
});
export type KeyholderRequest = { readonly [O in Op]: { id: RequestId; op: O; params: OpParams<O> } }[Op];

export const wireErrorSchema = z.strictObject({
  code: z.string().regex(/^KW_[A-Z0-9_]{1,64}$/),
  message: z.string().max(4096),
  details: z.strictObject({ index: z.int().optional(), field: z.string().max(64).optional(), reason: z.string().max(64).optional() }).optional(),
});
export type WireError = z.infer<typeof wireErrorSchema>;

/** A response; `id` is null when the request was too broken to have one. */
export const responseSchema = z.discriminatedUnion('ok', [
  z.strictObject({ id: requestIdSchema.nullable(), ok: z.literal(true), result: z.unknown() }),
  z.strictObject({ id: requestIdSchema.nullable(), ok: z.literal(false), error: wireErrorSchema }),
]);
export type KeyholderResponse = z.infer<typeof responseSchema>;

/** Builds an error response from a thrown value (typed errors keep their code; anything else is KW_INTERNAL). */
export function errorResponse(id: RequestId | null, e: KeyholderProtocolError): KeyholderResponse {
  const d = e.details;
  const details = d.index !== undefined || d.field !== undefined || d.reason !== undefined ? { ...d } : undefined;
  return { id, ok: false, error: { code: e.code, message: e.message.slice(0, 4096), ...(details ? { details } : {}) } };
}
