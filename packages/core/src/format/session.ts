/**
 * The two halves every API (bytes, Web Streams, Node files, random access)
 * shares: `beginSeal` builds an authenticated header and a chunk sealer;
 * `unlockHeader` finds a stanza an identity opens, checks the commitment and
 * the header MAC, and only then yields a chunk opener.
 */
import { platform } from '#platform';
import { concat, equalBytes, toHex, wipe } from '../bytes.js';
import { KeywardError } from '../errors.js';
import type { SigningKey, VerifyingKey } from '../keys/signing.js';
import { offloadStanzas } from '../recipients/hpke.js';
import { StanzaContext, type Identity, type Recipient } from '../recipients/types.js';
import {
  DATA_KEY_LENGTH, LABELS, LIMITS, SALT_LENGTH, SIG_LENGTHS, type PayloadAead, type SignatureAlg,
} from './constants.js';
import { contextMatches, encodeContext, normalizeContext, type ContextInput, type ContextPairs } from './context.js';
import { encodeHeader, type ParsedHeader, type Stanza } from './header.js';
import { KeySchedule } from './keyschedule.js';
import { ChunkOpener, ChunkSealer } from './payload.js';

export interface SealOptions {
  /** Public-key (or kms) recipients. */
  recipients?: readonly Recipient[];
  /** Encryption context: visible, authenticated, checked on open. Never put secrets here. */
  context?: ContextInput;
  /** Payload AEAD; AES-256-GCM by default. */
  aead?: PayloadAead;
  /** Sign the envelope (header and whole payload). */
  signer?: SigningKey;
  /** Write no key ids in public-key stanzas. */
  anonymous?: boolean;
}

export interface OpenOptions {
  /** Identities to try, in order. A PassphraseIdentity opens `scrypt` envelopes. */
  identities?: readonly Identity[];
  /** The context the opener requires. Checked by default: it must equal the envelope's. */
  context?: ContextInput;
  /** Explicit opt-out of the context check. */
  anyContext?: boolean;
  /** Require a valid signature by one of these keys; unsigned envelopes are refused. */
  verify?: readonly VerifyingKey[];
  /** Bound on trial decryptions of anonymous stanzas (default 64). */
  maxAnonymousTrials?: number;
}

/** What an open reports besides the plaintext. */
export interface EnvelopeInfo {
  readonly aead: PayloadAead;
  readonly context: ContextPairs;
  /** null when unsigned. `verified` is true only after the signature checked against a key given in `verify`. */
  readonly signature: { readonly alg: SignatureAlg; readonly keyId: string; readonly verified: boolean } | null;
  /** Type of the stanza that opened. */
  readonly openedBy: string;
}

export interface SealSession {
  readonly header: Uint8Array;
  readonly sealer: ChunkSealer;
  readonly aead: PayloadAead;
  readonly payloadKey: Uint8Array;
  /** Feed every ciphertext byte after the header; null when unsigned. */
  readonly signatureHash: ReturnType<typeof platform.sha512> | null;
  /** Returns the signature to append (empty when unsigned). */
  finish(): Promise<Uint8Array>;
}

/** What a seal fixes before any stanza is computed (the checks every seal path makes first). */
export interface SealPlan {
  readonly recipients: readonly Recipient[];
  readonly aead: PayloadAead;
  readonly context: ContextPairs;
  readonly salt: Uint8Array;
  readonly sctx: StanzaContext;
  /** The recipient that supplies the data key (a kms key), if any. */
  readonly provider: Recipient | undefined;
}

export function planSeal(opts: SealOptions): SealPlan {
  const recipients = opts.recipients ?? [];
  if (recipients.length === 0) throw new KeywardError('KW_NO_RECIPIENTS');
  if (recipients.length > 1 && recipients.some((r) => r.type === 'scrypt')) throw new KeywardError('KW_SCRYPT_NOT_ALONE');
  if (recipients.length > LIMITS.maxStanzas) throw new KeywardError('KW_LIMIT_EXCEEDED', `more than ${LIMITS.maxStanzas} recipients`);
  const aead = opts.aead ?? 'aes-256-gcm';
  if (aead !== 'aes-256-gcm' && aead !== 'chacha20-poly1305') throw new KeywardError('KW_UNSUPPORTED', `unknown payload AEAD ${String(aead)}`);
  const context = normalizeContext(opts.context);
  const contextBytes = encodeContext(context);
  const salt = platform.randomBytes(SALT_LENGTH);
  const sctx = new StanzaContext(salt, context, contextBytes, opts.anonymous ?? false);
  const providers = recipients.filter((r) => r.provideDataKey);
  if (providers.length > 1) throw new KeywardError('KW_INVALID_ARGUMENT', 'at most one recipient (e.g. one kms key) may provide the data key');
  return { recipients, aead, context, salt, sctx, provider: providers[0] };
}

/**
 * The header (authenticated part ‖ MAC) over the stanzas, and the payload key
 * bound to it. The caller wipes `dataKey` and, when done, the payload key.
 */
export function sealHeader(plan: SealPlan, signer: SigningKey | undefined, dataKey: Uint8Array, stanzas: readonly Stanza[]): { header: Uint8Array; payloadKey: Uint8Array } {
  for (const s of stanzas) {
    if (s.type === 'kms' && !s.fields[0]?.length) throw new KeywardError('KW_INVALID_ARGUMENT', 'a kms stanza must name its key, even in anonymous mode');
  }
  // Also on what was written: a recipient's declared type need not be its stanza's (e.g. a wrapping recipient).
  if (stanzas.length > 1 && stanzas.some((s) => s.type === 'scrypt')) throw new KeywardError('KW_SCRYPT_NOT_ALONE');
  const ks = new KeySchedule(dataKey, plan.salt);
  try {
    const authenticated = encodeHeader({
      aead: plan.aead, salt: plan.salt, context: plan.context, stanzas, commitment: ks.commitment,
      signer: signer ? { alg: signer.alg, keyId: signer.keyId } : null,
    });
    const mac = ks.headerMac(authenticated);
    const payloadKey = ks.payloadKey(mac);
    return { header: concat(authenticated, mac), payloadKey };
  } finally {
    ks.dispose();
  }
}

export async function beginSeal(opts: SealOptions): Promise<SealSession> {
  const plan = planSeal(opts);
  const { recipients, aead, sctx, provider } = plan;
  const provided = provider?.provideDataKey ? await provider.provideDataKey(sctx) : null;
  if (provided && provided.dataKey.length !== DATA_KEY_LENGTH) throw new KeywardError('KW_INTERNAL', 'the provided data key is not 32 bytes');
  const dataKey = provided ? provided.dataKey : platform.randomBytes(DATA_KEY_LENGTH);
  try {
    // With many x25519 recipients (Node), other threads compute some stanzas meanwhile.
    const offloaded = offloadStanzas(recipients, dataKey, sctx);
    const slots: (Stanza | undefined)[] = [];
    for (const [i, r] of recipients.entries()) {
      slots.push(offloaded?.indices.has(i) ? undefined : r === provider && provided ? provided.stanza : await r.wrap(dataKey, sctx));
    }
    const done = offloaded ? await offloaded.stanzas : null;
    const stanzas: Stanza[] = slots.map((s, i) => s ?? done!.get(i)!);
    const { header, payloadKey } = sealHeader(plan, opts.signer, dataKey, stanzas);
    const sealer = await ChunkSealer.create(aead, payloadKey);
    const signatureHash = opts.signer ? platform.sha512().update(header) : null;
    const signingKey = opts.signer;
    return {
      header, sealer, aead, payloadKey, signatureHash,
      async finish() {
        wipe(payloadKey);
        if (!signingKey || !signatureHash) return new Uint8Array(0);
        return signingKey.sign(signatureMessage(signatureHash.digest()));
      },
    };
  } finally {
    wipe(dataKey);
  }
}

/** M = "keyward/v1 signature" ‖ 0x00 ‖ SHA-512(header ‖ payload ciphertext) */
export function signatureMessage(digest: Uint8Array): Uint8Array {
  return concat(LABELS.signature, new Uint8Array([0]), digest);
}

export interface OpenSession {
  readonly header: ParsedHeader;
  readonly opener: ChunkOpener;
  readonly info: EnvelopeInfo;
  /** Length of the signature that follows the payload (0 when unsigned). */
  readonly signatureLength: number;
  /** The key the signature must verify under, when the opener asked for verification. */
  readonly verifyingKey: VerifyingKey | null;
  readonly payloadKey: Uint8Array;
}

/** What an open checks before trying any stanza. */
export interface UnlockPlan {
  readonly verifyingKey: VerifyingKey | null;
  readonly search: Generator<readonly [Identity, Stanza], { dataKey: Uint8Array; openedBy: string }, Uint8Array | null>;
  readonly sctx: StanzaContext;
}

export function planUnlock(header: ParsedHeader, opts: OpenOptions): UnlockPlan {
  const { stanzas } = header;
  if (stanzas.some((s) => s.type === 'scrypt') && stanzas.length > 1) throw new KeywardError('KW_SCRYPT_NOT_ALONE');

  // Fail early on a missing or unexpected signer (the header MAC check below still binds them).
  let verifyingKey: VerifyingKey | null = null;
  if (opts.verify) {
    if (!header.signer) throw new KeywardError('KW_SIGNATURE_MISSING', 'the envelope is not signed');
    const signer = header.signer;
    verifyingKey = opts.verify.find((k) => k.alg === signer.alg && equalBytes(k.keyId, signer.keyId)) ?? null;
    if (!verifyingKey) throw new KeywardError('KW_SIGNER_UNKNOWN', `signed by key ${toHex(signer.keyId)}, which is not among the expected signers`);
  }

  const identities = opts.identities ?? [];
  const maxTrials = opts.maxAnonymousTrials ?? LIMITS.defaultMaxAnonymousTrials;
  if (!Number.isSafeInteger(maxTrials) || maxTrials < 0) throw new KeywardError('KW_INVALID_ARGUMENT', 'maxAnonymousTrials must be a non-negative integer');
  for (const s of stanzas) {
    if (s.type === 'kms' && !s.fields[0]?.length) throw new KeywardError('KW_MALFORMED_HEADER', 'a kms stanza must name its key');
  }
  return { verifyingKey, search: stanzaSearch(stanzas, identities, maxTrials), sctx: new StanzaContext(header.salt, header.context, header.contextBytes, false) };
}

/**
 * The order in which identities try stanzas, the bound on anonymous trials and
 * the error when none opens: yields each (identity, stanza) to try and takes
 * back what the identity's unwrap returned, so the async and the synchronous
 * open share this logic exactly.
 */
function* stanzaSearch(stanzas: readonly Stanza[], identities: readonly Identity[], maxTrials: number): Generator<readonly [Identity, Stanza], { dataKey: Uint8Array; openedBy: string }, Uint8Array | null> {
  let trials = 0;
  let addressedButFailed = false;
  for (const s of stanzas) {
    for (const id of identities) {
      if (id.type !== s.type) continue;
      const stanzaKeyId = id.keyId ? s.fields[0] : undefined;
      const anonymous = id.keyId !== undefined && stanzaKeyId !== undefined && stanzaKeyId.length === 0;
      if (anonymous && ++trials > maxTrials) {
        throw new KeywardError('KW_TOO_MANY_TRIALS', `more than ${maxTrials} trial decryptions of anonymous stanzas`);
      }
      const addressed = id.keyId !== undefined && stanzaKeyId !== undefined && equalBytes(stanzaKeyId, id.keyId);
      const dk = yield [id, s];
      if (dk && dk.length === DATA_KEY_LENGTH) return { dataKey: dk, openedBy: s.type };
      if (addressed || s.type === 'scrypt') addressedButFailed = true;
    }
  }
  if (stanzas.length === 1 && stanzas[0]!.type === 'scrypt' && addressedButFailed) throw new KeywardError('KW_WRONG_PASSPHRASE');
  if (addressedButFailed) throw new KeywardError('KW_STANZA_UNWRAP_FAILED');
  if (stanzas.some((s) => s.type === 'kms') && !identities.some((i) => i.type === 'kms')) {
    throw new KeywardError('KW_KMS_UNAVAILABLE', 'the envelope is sealed to a key service key; pass a KmsIdentity (a key service client) to open it');
  }
  throw new KeywardError('KW_NO_IDENTITY_MATCHED', `no identity opens any of the ${stanzas.length} stanzas (${[...new Set(stanzas.map((s) => s.type))].join(', ')})`);
}

/**
 * With the data key a stanza gave: checks the commitment (constant time, before
 * anything else uses the key), the header MAC and the encryption context, and
 * returns the payload key. Wipes `dataKey`.
 */
export function headerPayloadKey(header: ParsedHeader, opts: OpenOptions, dataKey: Uint8Array): Uint8Array {
  const ks = new KeySchedule(dataKey, header.salt);
  wipe(dataKey);
  ks.checkCommitment(header.commitment); // constant time, before anything else uses the key
  ks.checkHeaderMac(header.authenticated, header.mac);
  const payloadKey = ks.payloadKey(header.mac);
  ks.dispose();

  if (!opts.anyContext) {
    const expected = normalizeContext(opts.context);
    if (!contextMatches(header.context, expected)) {
      wipe(payloadKey);
      const keys = header.context.map(([k]) => k).join(', ') || '(none)';
      throw new KeywardError('KW_CONTEXT_MISMATCH', `the envelope's encryption context (keys: ${keys}) differs from the required one`);
    }
  }
  return payloadKey;
}

/** What an open reports before the signature is checked. */
export function headerInfo(header: ParsedHeader, openedBy: string): EnvelopeInfo {
  return {
    aead: header.aead,
    context: header.context,
    signature: header.signer ? { alg: header.signer.alg, keyId: toHex(header.signer.keyId), verified: false } : null,
    openedBy,
  };
}

/** Authenticates the header with one of the identities. Nothing is decrypted before this succeeds. */
export async function unlockHeader(header: ParsedHeader, opts: OpenOptions): Promise<OpenSession> {
  const { verifyingKey, search, sctx } = planUnlock(header, opts);
  let step = search.next();
  while (!step.done) {
    const [id, stanza] = step.value;
    step = search.next(await id.unwrap(stanza, sctx));
  }
  const { dataKey, openedBy } = step.value;
  const payloadKey = headerPayloadKey(header, opts, dataKey);
  const opener = await ChunkOpener.create(header.aead, payloadKey);
  return {
    header, opener, verifyingKey, payloadKey,
    signatureLength: header.signer ? SIG_LENGTHS[header.signer.alg] : 0,
    info: headerInfo(header, openedBy),
  };
}

/** Checks the trailing signature against the hash of header ‖ ciphertext. */
export async function checkSignature(session: OpenSession, digest: Uint8Array, signature: Uint8Array): Promise<EnvelopeInfo> {
  if (!session.info.signature) return session.info;
  if (signature.length !== session.signatureLength) throw new KeywardError('KW_SIGNATURE_MISSING', 'the signature is missing or truncated');
  if (!session.verifyingKey) return session.info;
  if (!(await session.verifyingKey.verify(signatureMessage(digest), signature))) throw new KeywardError('KW_SIGNATURE_INVALID');
  return { ...session.info, signature: { ...session.info.signature, verified: true } };
}
