/**
 * Unwrapped key versions kept in the keyholder between operations, so a hot
 * key is not unwrapped (HKDF, AES-GCM, a KeyObject import) on every request.
 *
 * An entry is found only by everything `loadVersion` was given — the
 * reference (ns, key, version, type), the exact wrapped blob and the stored
 * public key — so a hit is an input that already unwrapped, under the AAD
 * binding, to this handle: the cache never accepts a blob `loadVersion`
 * would refuse. It lives inside the unsealed state and is emptied (every
 * handle disposed) when the keyholder seals; a version is evicted when its
 * destroy receipt is signed; at most `capacity` handles are kept, least
 * recently used dropped first.
 *
 * @example
 * const cache = new VersionCache();
 * const v = await cache.get(ref, wrapped, publicKey, () => loadVersion(mk, ref, wrapped, { publicKey }));
 */
import { toBase64url } from './bytes.js';
import type { KeyVersion } from './keys.js';
import type { VersionRef } from './schemas.js';

export const VERSION_CACHE_SIZE = 256;

const refKey = (ref: Pick<VersionRef, 'ns' | 'key' | 'version'>) => `${ref.ns}\n${ref.key}\n${ref.version}\n`;

export class VersionCache {
  readonly #entries = new Map<string, KeyVersion>();

  constructor(readonly capacity = VERSION_CACHE_SIZE) {}

  get size(): number { return this.#entries.size; }

  /** The handle for exactly these inputs, loading it with `load` (and keeping it) on a miss. */
  async get(ref: VersionRef, wrapped: Uint8Array, publicKey: Uint8Array | undefined, load: () => Promise<KeyVersion>): Promise<KeyVersion> {
    const id = `${refKey(ref)}${ref.type}\n${toBase64url(wrapped)}\n${publicKey ? toBase64url(publicKey) : ''}`;
    const hit = this.#entries.get(id);
    if (hit) {
      this.#entries.delete(id);
      this.#entries.set(id, hit);
      return hit;
    }
    const v = await load();
    const raced = this.#entries.get(id);
    if (raced) {
      v.dispose();
      return raced;
    }
    this.#entries.set(id, v);
    // Dropped, not disposed: an operation may still hold it (the garbage collector frees it after).
    while (this.#entries.size > this.capacity) this.#entries.delete(this.#entries.keys().next().value!);
    return v;
  }

  /** Disposes and forgets every handle of this version (whatever its blob). */
  evict(ref: Pick<VersionRef, 'ns' | 'key' | 'version'>): void {
    const prefix = refKey(ref);
    for (const [id, v] of [...this.#entries]) {
      if (id.startsWith(prefix)) {
        this.#entries.delete(id);
        v.dispose();
      }
    }
  }

  /** Disposes and forgets everything (on seal). */
  clear(): void {
    for (const v of this.#entries.values()) v.dispose();
    this.#entries.clear();
  }
}
