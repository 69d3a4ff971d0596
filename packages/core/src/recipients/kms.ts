/**
 * The `kms` stanza, reserved in format v1 and filled by the key service: the
 * data key wrapped by a key that never leaves the keyholder. A `kms` stanza
 * always names its key, even in anonymous mode (the service must know which
 * key to ask for).
 *   fields = [key reference (UTF-8, "namespace/name"), version (u32 big-endian), wrapped blob]
 * The wrapped blob is opaque to this library; the key service defines it.
 */
import { KeywardError } from '../errors.js';
import type { Identity, Recipient, Stanza, StanzaContext } from './types.js';

/** What a key service client supplies so `core` can seal and open `kms` stanzas. */
export interface KmsClient {
  /**
   * Asks the service for a new data key under `keyRef`, bound to the context:
   * the key (received sealed to the caller and opened locally) and its `kms` stanza.
   */
  generateDataKey(keyRef: string, ctx: StanzaContext): Promise<{ dataKey: Uint8Array; stanza: Stanza }>;
  /** Asks the service to unwrap; null when the stanza is not for keys this client may use. */
  unwrap(stanza: Stanza, ctx: StanzaContext): Promise<Uint8Array | null>;
}

/** Seals to a key-service key: the service generates the data key (docs/key-service-design.md). */
export class KmsRecipient implements Recipient {
  readonly type = 'kms';
  constructor(private readonly client: KmsClient, readonly keyRef: string) {}
  readonly provideDataKey = (ctx: StanzaContext): Promise<{ dataKey: Uint8Array; stanza: Stanza }> =>
    this.client.generateDataKey(this.keyRef, ctx);
  wrap(): Promise<Stanza> {
    // A data key made elsewhere would have to travel to the service in the clear.
    throw new KeywardError('KW_INVALID_ARGUMENT', 'a kms recipient provides the data key; it cannot wrap one made elsewhere (seal with one kms recipient)');
  }
}

export class KmsIdentity implements Identity {
  readonly type = 'kms';
  constructor(private readonly client: KmsClient) {}
  unwrap(stanza: Stanza, ctx: StanzaContext): Promise<Uint8Array | null> { return this.client.unwrap(stanza, ctx); }
}
