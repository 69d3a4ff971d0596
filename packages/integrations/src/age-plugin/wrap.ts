/**
 * The `keyward` stanza in an age header:
 *
 *     -> keyward <ns/name>
 *     <body: a Keyward envelope whose plaintext is age's 16-byte file key>
 *
 * The envelope is sealed by `@keyward/core` with a data key from the key
 * service (a `kms` stanza: `datakey` on `ns/name`), under the encryption
 * context `integration=age-plugin/v1, age_recipient=<the age1keyward1…
 * recipient>`. The keyholder binds the wrapped data key to that context, and
 * core binds the payload to it, so the stanza opens only as an age-plugin
 * stanza of that recipient. The file key never leaves the plugin: the key
 * service sees a context and a wrapped data key, never the file key.
 *
 * Unwrapping: `unwrap` through the key service (the data key comes back
 * sealed to this device's HPKE identity), then core opens the envelope.
 */
import { inspect, open, seal } from '@keyward/core';
import { kmsIdentity, kmsRecipient, parseKeyRef, type KmsKeyService } from '@keyward/client';
import { invalid } from '../errors.js';
import { parseRecipient } from './strings.js';

export const STANZA_TYPE = 'keyward';
export const AGE_PLUGIN_PURPOSE = 'age-plugin/v1';
export const FILE_KEY_BYTES = 16;
/** A keyward stanza body is a small envelope (one kms stanza, a 16-byte payload); anything larger is not ours. */
const MAX_BODY = 16 * 1024;

export interface AgeStanza {
  readonly type: string;
  readonly args: readonly string[];
  readonly body: Uint8Array;
}

export const stanzaContext = (recipient: string): [string, string][] => [['integration', AGE_PLUGIN_PURPOSE], ['age_recipient', recipient]];

/** Wraps `fileKey` for `recipient` (an `age1keyward1…` string) through the key service. */
export async function wrapFileKey(kms: KmsKeyService, recipient: string, fileKey: Uint8Array): Promise<AgeStanza> {
  const { keyRef } = parseRecipient(recipient);
  if (fileKey.length !== FILE_KEY_BYTES) throw invalid(`an age file key has ${FILE_KEY_BYTES} bytes`);
  const body = await seal(fileKey, { recipients: [kmsRecipient(kms, keyRef)], context: stanzaContext(recipient) });
  return { type: STANZA_TYPE, args: [keyRef], body };
}

/**
 * Checks a `keyward` stanza's structure without any key service call, and
 * returns its key reference and context. Throws KW_INT_INVALID_ARGUMENT when
 * it is not a well-formed keyward stanza (an invalid age header).
 */
export function checkStanza(s: AgeStanza): { keyRef: string; context: [string, string][] } {
  if (s.type !== STANZA_TYPE) throw invalid('not a keyward stanza');
  if (s.args.length !== 1 || !parseKeyRef(s.args[0])) throw invalid('a keyward stanza has exactly one argument, the key "ns/name"');
  if (s.body.length === 0 || s.body.length > MAX_BODY) throw invalid('the keyward stanza body is not an envelope');
  let d;
  try {
    d = inspect(s.body);
  } catch {
    throw invalid('the keyward stanza body is not a Keyward envelope');
  }
  const keyRef = s.args[0]!;
  const ctx = d.context;
  if (ctx.length !== 2 || ctx[0]![0] !== 'integration' || ctx[0]![1] !== AGE_PLUGIN_PURPOSE || ctx[1]![0] !== 'age_recipient') {
    throw invalid('the keyward stanza was not sealed by age-plugin-keyward (context)');
  }
  let named;
  try {
    named = parseRecipient(ctx[1]![1]);
  } catch {
    throw invalid('the keyward stanza names an invalid recipient');
  }
  if (named.keyRef !== keyRef) throw invalid('the keyward stanza argument and its sealed recipient name different keys');
  if (d.stanzas.length !== 1 || d.stanzas[0]!.type !== 'kms' || d.plaintextLength !== FILE_KEY_BYTES) {
    throw invalid('the keyward stanza envelope must hold one kms stanza and a 16-byte file key');
  }
  return { keyRef, context: ctx.map(([k, v]) => [k, v]) };
}

/**
 * The file key of a checked stanza, or null when the key service says it is
 * not this caller's (no grant on, or no such, key or version). Other
 * refusals (revoked token, disabled version, unavailable service) throw.
 */
export async function unwrapFileKey(kms: KmsKeyService, s: AgeStanza): Promise<Uint8Array | null> {
  const { context } = checkStanza(s);
  let opened;
  try {
    opened = await open(s.body, { identities: [kmsIdentity(kms)], context });
  } catch (e) {
    if ((e as { code?: unknown }).code === 'KW_NO_IDENTITY_MATCHED') return null;
    throw e;
  }
  if (opened.plaintext.length !== FILE_KEY_BYTES) {
    opened.plaintext.fill(0);
    throw invalid('the keyward stanza does not hold a 16-byte file key');
  }
  return opened.plaintext;
}
