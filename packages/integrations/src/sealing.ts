/**
 * Who a sealing integration seals for, and how a receiving one opens: the
 * shared options of messaging, columns and HTTP bodies, and the one place
 * where they call `core.seal` / `core.open`.
 *
 * - Public-key recipients (`recipients`): HPKE stanzas; no key service on
 *   either path.
 * - The key service (`kms: { service, key }`): the service provides the data
 *   key (a `kms` stanza). The size of each plaintext is passed on, so the
 *   service's {@link DataKeyCache} (if the `KmsKeyService` has one) hands one
 *   data key to many envelopes of the same context within its limits — the
 *   key service is then off the hot path. Opening through the service goes
 *   through the same cache (`unwrap` of a stanza already seen is served
 *   locally).
 * - Both at once: the kms data key is also wrapped to the recipients.
 */
import {
  inspect, open, seal,
  type ContextInput, type Identity, type OpenResult, type Recipient, type SigningKey, type VerifyingKey,
} from '@keyward/core';
import { kmsIdentity, kmsRecipient, KmsKeyService } from '@keyward/client';
import { IntegrationError, invalid, openFailure, sealFailure } from './errors.js';

export interface SealingOptions {
  /** Public-key recipients (`HpkeRecipient`, or `parseRecipient('kwx25519…')`). */
  readonly recipients?: readonly Recipient[];
  /** Seal through the key service: `key` is `"ns/name"` of an `aes256` key. */
  readonly kms?: { readonly service: KmsKeyService; readonly key: string };
  /** Sign every envelope (receivers that require it pass `verify`). */
  readonly signer?: SigningKey;
  /** Application pairs appended to every encryption context (e.g. `{ tenant: 'acme' }`). Visible; never secrets. */
  readonly context?: ContextInput;
}

export interface OpeningOptions {
  /** Identities of this receiver (e.g. its `HpkeIdentity`). */
  readonly identities?: readonly Identity[];
  /** Open `kms` stanzas through the key service (with its cache). */
  readonly kms?: KmsKeyService;
  /** Require a signature by one of these keys. */
  readonly verify?: readonly VerifyingKey[];
  /** The application pairs the sender appended (must be equal). */
  readonly context?: ContextInput;
}

export type Pairs = [string, string][];

function pairsOf(input: ContextInput | undefined): Pairs {
  if (input === undefined) return [];
  if (Array.isArray(input)) return (input as readonly (readonly [string, string])[]).map(([k, v]) => [k, v]);
  return Object.entries(input as Record<string, string>);
}

/** The integration's own pairs, then the application's; a collision is refused. */
export function bindContext(own: Pairs, extra: ContextInput | undefined): Pairs {
  const app = pairsOf(extra);
  const names = new Set(own.map(([k]) => k));
  for (const [k, v] of app) {
    if (typeof k !== 'string' || typeof v !== 'string') throw invalid('context pairs are strings');
    if (names.has(k)) throw invalid(`context key "${k}" is bound by the integration itself`);
  }
  return [...own, ...app];
}

export function checkSealing(o: SealingOptions | undefined, what: string): SealingOptions {
  if (!o || typeof o !== 'object') throw invalid(`${what}: sealing options are required`);
  const n = (o.recipients?.length ?? 0) + (o.kms ? 1 : 0);
  if (n === 0) throw invalid(`${what}: give recipients, a kms key, or both`);
  if (o.kms && (!(o.kms.service instanceof KmsKeyService) || typeof o.kms.key !== 'string')) throw invalid(`${what}: kms needs a KmsKeyService and a "ns/name" key`);
  return o;
}

export function checkOpening(o: OpeningOptions | undefined, what: string): OpeningOptions {
  if (!o || typeof o !== 'object') throw invalid(`${what}: opening options are required`);
  if ((o.identities?.length ?? 0) === 0 && !o.kms) throw invalid(`${what}: give identities, a key service, or both`);
  if (o.kms && !(o.kms instanceof KmsKeyService)) throw invalid(`${what}: kms must be a KmsKeyService`);
  return o;
}

/** Seals `plaintext` under `context` as `o` says. Errors are IntegrationErrors. */
export async function sealWith(o: SealingOptions, plaintext: Uint8Array, context: Pairs, what: string): Promise<Uint8Array> {
  const recipients: Recipient[] = [];
  if (o.kms) recipients.push(kmsRecipient(o.kms.service, o.kms.key, { plaintextBytes: plaintext.length }));
  recipients.push(...(o.recipients ?? []));
  try {
    return await seal(plaintext, { recipients, context, ...(o.signer ? { signer: o.signer } : {}) });
  } catch (e) {
    throw sealFailure(e, what);
  }
}

/** The identities `o` opens with: its own, then the key service's. */
export function identitiesOf(o: OpeningOptions): Identity[] {
  return [...(o.identities ?? []), ...(o.kms ? [kmsIdentity(o.kms)] : [])];
}

/** Equal as sets of pairs (as core compares contexts). */
export function sameContext(a: readonly (readonly [string, string])[], b: readonly (readonly [string, string])[]): boolean {
  if (a.length !== b.length) return false;
  const m = new Map(a.map(([k, v]) => [k, v]));
  return b.every(([k, v]) => m.get(k) === v);
}

/**
 * Opens `envelope`, requiring exactly `context`. Errors are IntegrationErrors.
 *
 * The header's (not yet authenticated) context is compared first: an envelope
 * that names another destination is refused before any key service call, so
 * a misrouted message costs no `unwrap` and leaves no audit noise. Core's own
 * check after authentication is what the guarantee rests on.
 */
export async function openWith(o: OpeningOptions, envelope: Uint8Array, context: Pairs, what: string, identities: readonly Identity[] = identitiesOf(o)): Promise<OpenResult> {
  try {
    if (!sameContext(inspect(envelope).context, context)) throw new IntegrationError('KW_INT_CONTEXT_MISMATCH', `${what} was sealed for another destination`);

    return await open(envelope, { identities, context, ...(o.verify ? { verify: o.verify } : {}) });
  } catch (e) {
    throw openFailure(e, what);
  }
}
