/**
 * The `kms` stanza, reserved in format v1 and filled by the key service: the
 * data key wrapped by a key that never leaves the keyholder. A `kms` stanza
 * always names its key, even in anonymous mode (the service must know which
 * key to ask for).
 *   fields = [key reference (UTF-8, "namespace/name"), version (u32 big-endian), wrapped blob]
 * The wrapped blob is opaque to this library; the key service defines it.
 */
import type { Identity, Recipient, Stanza, StanzaContext } from './types.js';

/** What a key service client supplies so `core` can seal and open `kms` stanzas. */
export interface KmsClient {
  /** Asks the service for a wrapped copy of `dataKey` under `keyRef`, bound to the context. */
  wrap(keyRef: string, dataKey: Uint8Array, ctx: StanzaContext): Promise<Stanza>;
  /** Asks the service to unwrap; null when the stanza is not for keys this client may use. */
  unwrap(stanza: Stanza, ctx: StanzaContext): Promise<Uint8Array | null>;
}

export class KmsRecipient implements Recipient {
  readonly type = 'kms';
  constructor(private readonly client: KmsClient, readonly keyRef: string) {}
  wrap(dataKey: Uint8Array, ctx: StanzaContext): Promise<Stanza> { return this.client.wrap(this.keyRef, dataKey, ctx); }
}

export class KmsIdentity implements Identity {
  readonly type = 'kms';
  constructor(private readonly client: KmsClient) {}
  unwrap(stanza: Stanza, ctx: StanzaContext): Promise<Uint8Array | null> { return this.client.unwrap(stanza, ctx); }
}
