import { toBinary } from './armor.js';
import { concat } from './bytes.js';
import { EnvelopeDecoder, EnvelopeEncoder } from './format/codec.js';
import type { EnvelopeInfo, OpenOptions, SealOptions } from './format/session.js';

/**
 * Seals `plaintext` for the given recipients.
 *
 * @example
 * const alice = await generateIdentity('x25519');
 * const env = await seal(data, { recipients: [await alice.recipient()], context: { table: 'orders' } });
 * const { plaintext } = await open(env, { identities: [alice], context: { table: 'orders' } });
 */
export async function seal(plaintext: Uint8Array, opts: SealOptions): Promise<Uint8Array> {
  const enc = await EnvelopeEncoder.create(opts);
  const parts = await enc.push(plaintext);
  parts.push(...(await enc.finish()));
  return parts.length === 1 ? parts[0]! : concat(...parts);
}

export interface OpenResult extends EnvelopeInfo {
  readonly plaintext: Uint8Array;
}

/**
 * Opens an envelope (binary or armored). Fails closed: no plaintext is
 * returned unless the header, every chunk and (when asked) the signature verify.
 */
export async function open(envelope: Uint8Array | string, opts: OpenOptions): Promise<OpenResult> {
  const dec = new EnvelopeDecoder(opts);
  const parts = await dec.push(toBinary(envelope));
  const { chunks, info } = await dec.finish();
  parts.push(...chunks);
  return { ...info, plaintext: parts.length === 1 ? parts[0]! : concat(...parts) };
}
