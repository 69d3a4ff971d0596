/**
 * Small messages without promise steps: an envelope whose payload is one
 * chunk (at most 64 KiB), sealed to or opened by recipients and identities
 * that can wrap and unwrap synchronously (`wrapSync` / `unwrapSync`: HPKE
 * stanzas on node:crypto), is computed here in one synchronous call. The
 * bytes, the checks and the errors are those of the general path
 * (session.ts, codec.ts), whose parts these functions share; anything else
 * (signatures, passphrases, key-service stanzas, keys held outside the
 * library, browsers' asynchronous WebCrypto, larger payloads) returns null
 * and takes the general path.
 */
import { platform } from '#platform';
import { wipe } from '../bytes.js';
import { offloadWanted } from '../recipients/hpke.js';
import { CHUNK_SIZE, DATA_KEY_LENGTH, PREAMBLE_LENGTH, TAG_LENGTH } from './constants.js';
import { headerLengthFromPreamble, parseHeader } from './header.js';
import { CIPHER_CHUNK_SIZE, openSingleChunkSync, sealSingleChunkSync } from './payload.js';
import {
  headerInfo, headerPayloadKey, planSeal, planUnlock, sealHeader, type EnvelopeInfo, type OpenOptions, type SealOptions,
} from './session.js';

/** The envelope, or null when this seal must take the general path. */
export function sealSmall(plaintext: Uint8Array, opts: SealOptions): Uint8Array | null {
  const recipients = opts.recipients;
  if (plaintext.length > CHUNK_SIZE || opts.signer || !platform.aeadSync || !recipients?.length) return null;
  for (const r of recipients) if (!r.wrapSync || r.provideDataKey) return null;
  if (offloadWanted(recipients)) return null; // many recipients: other threads help (general path)
  const plan = planSeal(opts);
  const dataKey = platform.randomBytes(DATA_KEY_LENGTH);
  let payloadKey: Uint8Array | null = null;
  try {
    const stanzas = recipients.map((r) => r.wrapSync!(dataKey, plan.sctx));
    const sealed = sealHeader(plan, undefined, dataKey, stanzas);
    payloadKey = sealed.payloadKey;
    const { header } = sealed;
    const out = new Uint8Array(header.length + plaintext.length + TAG_LENGTH);
    out.set(header, 0);
    sealSingleChunkSync(plan.aead, payloadKey, plaintext, out, header.length);
    return out;
  } finally {
    wipe(dataKey, payloadKey);
  }
}

/** The plaintext and what the header says, or null when this open must take the general path. */
export function openSmall(bytes: Uint8Array, opts: OpenOptions): (EnvelopeInfo & { plaintext: Uint8Array }) | null {
  const identities = opts.identities;
  if (!platform.aeadSync || !identities?.length || bytes.length < PREAMBLE_LENGTH) return null;
  for (const id of identities) if (!id.unwrapSync) return null;
  let total: number;
  try {
    total = headerLengthFromPreamble(bytes);
  } catch {
    return null; // the general path reports it
  }
  // One final chunk after the header (or nothing: the general path's errors), and no signature.
  if (bytes.length < total || bytes.length - total > CIPHER_CHUNK_SIZE) return null;
  const header = parseHeader(bytes.subarray(0, total));
  if (header.signer) return null;
  const { search, sctx } = planUnlock(header, opts);
  let step = search.next();
  while (!step.done) {
    const [id, stanza] = step.value;
    step = search.next(id.unwrapSync!(stanza, sctx));
  }
  const payloadKey = headerPayloadKey(header, opts, step.value.dataKey);
  try {
    const plaintext = openSingleChunkSync(header.aead, payloadKey, bytes.subarray(total));
    return { ...headerInfo(header, step.value.openedBy), plaintext };
  } finally {
    wipe(payloadKey);
  }
}
