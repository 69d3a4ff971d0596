/**
 * The two extension points of the format: a Recipient wraps the data key into
 * one stanza; an Identity tries to unwrap a stanza. New stanza types (the key
 * service's `kms`, future KEMs) plug in here without touching the format.
 */
import { concat, utf8 } from '../bytes.js';
import { LABELS } from '../format/constants.js';
import type { ContextPairs } from '../format/context.js';
import type { Stanza } from '../format/header.js';

export type { Stanza };

/** What a stanza is bound to: the envelope's salt and encryption context. */
export class StanzaContext {
  private readonly infos = new Map<string, Uint8Array>();
  constructor(
    readonly salt: Uint8Array,
    readonly context: ContextPairs,
    readonly contextBytes: Uint8Array,
    readonly anonymous: boolean,
  ) {}

  /**
   * The per-type binding string, used as HPKE `info`:
   *   "keyward/v1 stanza" ‖ 0x00 ‖ type ‖ 0x00 ‖ encoded context
   * It binds the format version, the stanza type and the encryption context.
   */
  info(type: string): Uint8Array {
    let i = this.infos.get(type);
    if (!i) {
      i = concat(LABELS.stanza, new Uint8Array([0]), utf8.encode(type), new Uint8Array([0]), this.contextBytes);
      this.infos.set(type, i);
    }
    return i;
  }
}

/** Seals the data key for one party. */
export interface Recipient {
  /** The stanza type this recipient writes, e.g. `x25519`. */
  readonly type: string;
  /** Wraps `dataKey` with a fresh encapsulation. Must not keep a reference to `dataKey`. */
  wrap(dataKey: Uint8Array, ctx: StanzaContext): Promise<Stanza>;
  /**
   * Optional: `wrap` computed synchronously, where this recipient and the
   * platform can (small messages then take no promise steps). Same stanza
   * format, a fresh encapsulation too; absent (or undefined) otherwise.
   */
  readonly wrapSync?: ((dataKey: Uint8Array, ctx: StanzaContext) => Stanza) | undefined;
  /**
   * Optional: supplies the envelope's data key instead of wrapping one made
   * locally (a key service generates it, so it never travels to the service
   * in the clear). At most one recipient of an envelope may provide the key.
   */
  readonly provideDataKey?: (ctx: StanzaContext) => Promise<{ dataKey: Uint8Array; stanza: Stanza }>;
}

/** Opens stanzas meant for one party. */
export interface Identity {
  /** The stanza type this identity reads. */
  readonly type: string;
  /** Key id written in non-anonymous stanzas; absent for types that carry none. */
  readonly keyId?: Uint8Array;
  /**
   * Returns the 32-byte data key, or null when the stanza does not decrypt
   * under this identity (not for us, or tampered). Throws a KeywardError only
   * for failures that must stop the open (e.g. a work factor out of range).
   */
  unwrap(stanza: Stanza, ctx: StanzaContext): Promise<Uint8Array | null>;
  /** Optional: `unwrap` computed synchronously, with the same results and errors; absent (or undefined) where it cannot be. */
  readonly unwrapSync?: ((stanza: Stanza, ctx: StanzaContext) => Uint8Array | null) | undefined;
}
