import { toBinary } from './armor.js';
import { concat } from './bytes.js';
import { KeywardError } from './errors.js';
import { EnvelopeDecoder } from './format/codec.js';
import { CHUNK_SIZE, SIG_LENGTHS } from './format/constants.js';
import { headerLengthFromPreamble } from './format/header.js';
import { CIPHER_CHUNK_SIZE, openedPayloadLength, sealedPayloadLength } from './format/payload.js';
import { beginSeal, type EnvelopeInfo, type OpenOptions, type SealOptions } from './format/session.js';
import { openSmall, sealSmall } from './format/small.js';

/**
 * Seals `plaintext` for the given recipients.
 *
 * @example
 * const alice = await generateIdentity('x25519');
 * const env = await seal(data, { recipients: [await alice.recipient()], context: { table: 'orders' } });
 * const { plaintext } = await open(env, { identities: [alice], context: { table: 'orders' } });
 */
export async function seal(plaintext: Uint8Array, opts: SealOptions): Promise<Uint8Array> {
  // One chunk to synchronous recipients (HPKE on node:crypto): no promise steps.
  const small = sealSmall(plaintext, opts);
  if (small) return small;
  // The same bytes as EnvelopeEncoder (64 KiB chunks, the last one final and
  // possibly short or empty), sealed straight into one preallocated envelope.
  const session = await beginSeal(opts);
  const { header, sealer, signatureHash } = session;
  const signatureLength = opts.signer ? SIG_LENGTHS[opts.signer.alg] : 0;
  const out = new Uint8Array(header.length + sealedPayloadLength(plaintext.length) + signatureLength);
  out.set(header, 0);
  let o = header.length;
  let i = 0;
  do {
    const end = Math.min(plaintext.length, i + CHUNK_SIZE);
    const n = await sealer.sealInto(plaintext.subarray(i, end), end === plaintext.length, out, o);
    signatureHash?.update(out.subarray(o, o + n));
    o += n;
    i = end;
  } while (i < plaintext.length);
  const signature = await session.finish();
  if (signature.length !== signatureLength) throw new KeywardError('KW_INTERNAL', 'the signature has an unexpected length');
  out.set(signature, o);
  return out;
}

export interface OpenResult extends EnvelopeInfo {
  readonly plaintext: Uint8Array;
}

/** Envelope bytes the decoder takes per step when opening a large envelope: 16 chunks. */
const OPEN_STEP = 16 * CIPHER_CHUNK_SIZE;

/**
 * Opens an envelope (binary or armored). Fails closed: no plaintext is
 * returned unless the header, every chunk and (when asked) the signature verify.
 */
export async function open(envelope: Uint8Array | string, opts: OpenOptions): Promise<OpenResult> {
  const bytes = toBinary(envelope);
  const small = openSmall(bytes, opts);
  if (small) return small;
  const dec = new EnvelopeDecoder(opts);
  let headerLength = bytes.length;
  if (bytes.length > OPEN_STEP) {
    try {
      headerLength = headerLengthFromPreamble(bytes);
    } catch {
      // one step: the decoder reports what is wrong
    }
  }
  if (bytes.length <= headerLength + OPEN_STEP) {
    const parts = await dec.push(bytes);
    const { chunks, info } = await dec.finish();
    parts.push(...chunks);
    return { ...info, plaintext: parts.length === 1 ? parts[0]! : concat(...parts) };
  }
  // Large envelopes: feed the decoder whole chunks a step at a time and copy the
  // plaintext into one buffer while it is still in cache, instead of holding
  // every chunk until a final concatenation.
  let plaintext: Uint8Array | null = null;
  let o = 0;
  const spill: Uint8Array[] = []; // only for an envelope whose sizes are off, which the decoder rejects by its end
  const take = (chunks: Uint8Array[]) => {
    if (!plaintext) {
      const alg = dec.info?.signature?.alg;
      plaintext = new Uint8Array(openedPayloadLength(bytes.length - headerLength - (alg ? SIG_LENGTHS[alg] : 0)));
    }
    for (const c of chunks) {
      if (spill.length === 0 && o + c.length <= plaintext.length) {
        plaintext.set(c, o);
        o += c.length;
      } else {
        spill.push(c);
      }
    }
  };
  for (let i = 0, end = headerLength + OPEN_STEP; i < bytes.length; i = end, end += OPEN_STEP) {
    take(await dec.push(bytes.subarray(i, Math.min(bytes.length, end))));
  }
  const { chunks, info } = await dec.finish();
  take(chunks);
  const whole: Uint8Array = plaintext!;
  return { ...info, plaintext: spill.length || o !== whole.length ? concat(whole.subarray(0, o), ...spill) : whole };
}
