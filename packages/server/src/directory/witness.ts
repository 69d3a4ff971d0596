/**
 * The directory's witnessing (issue #6; docs/witness.md §The directory).
 *
 * KEYTRANS tree heads are not RFC 9162 trees, so the directory keeps a
 * companion RFC 9162 **head log** whose leaf i is `headLogEntry(i + 1, root of
 * the KEYTRANS log at size i + 1)` (`@keyward/client`). It needs no storage of
 * its own: it is recomputed from the KEYTRANS log (`DirectoryBuilder.root(size)`),
 * and it is append-only exactly when the KEYTRANS log is.
 *
 * On a timer (and on demand, when a client asks for a head newer than the one
 * witnessed), {@link DirectoryWitnessPublisher} signs the head log's checkpoint
 * with the head-log key and submits it to the configured witnesses (the
 * server's `witnesses` / `witnessesK`, the audit log's), with a consistency
 * proof from the size each one holds. A checkpoint k of them cosigned is kept
 * in the store's meta table (`directory.witnessed`, shared by every node);
 * `GET /v1/directory/witnessed` serves it with the inclusion proof of its
 * latest entry, which a client checks against the head it verified.
 *
 * The head-log key is derived from the directory's signing key (HKDF-SHA256,
 * its own info string), so every node of a deployment signs with the same key
 * and no new key file is needed; its name (the head log's origin) is
 * `keyward.local/directory-heads/<16 hex of a derived id>`.
 */
import { createPrivateKey, createPublicKey, hkdfSync } from 'node:crypto';
import {
  SIGNATURE_TYPE_ED25519,
  ed25519Signer,
  formatVerifierKey,
  leafHash,
  parseCheckpoint,
  parseNote,
  signCheckpoint,
  type NoteSigner,
  type WitnessPolicy,
} from '@keyward/tlog';
import { headLogEntry } from '@keyward/client';
import type { DirectoryKeys } from '@keyward/directory';
import { base64urlnopad } from '@scure/base';
import { CosigningPublisher, parseJson, type CosigningOptions, type WitnessStatusEntry } from '../witness/publisher.js';
import type { Store } from '../store/index.js';
import { loadDirectoryKeys } from './keys.js';
import type { DirectoryService } from './service.js';

export const META_DIR_WITNESSED = 'directory.witnessed';
export const META_DIR_WITNESS_STATUS = 'directory.witness.status';

const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');

/** The head log's key: its origin (= key name), note signer and verifier key. */
export interface HeadLogKey {
  readonly origin: string;
  readonly signer: NoteSigner;
  /** The note verifier key to give witnesses (`keyward witness --log`) and clients. */
  readonly verifierKey: string;
}

/**
 * Derives the head-log key from the directory's keys (see the module comment).
 *
 * @example
 * const { origin, verifierKey } = headLogKey(loadDirectoryKeys(file));
 */
export function headLogKey(keys: DirectoryKeys): HeadLogKey {
  const seed = new Uint8Array(hkdfSync('sha256', keys.signingKey, new Uint8Array(0), 'keyward directory head log key v1', 32));
  const id = Buffer.from(hkdfSync('sha256', keys.signingKey, new Uint8Array(0), 'keyward directory head log id v1', 8)).toString('hex');
  const origin = `keyward.local/directory-heads/${id}`;
  const der = Buffer.concat([PKCS8_ED25519, seed]);
  const jwk = createPublicKey(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })).export({ format: 'jwk' });
  der.fill(0);
  const pub = base64urlnopad.decode(String(jwk.x));
  const signer = ed25519Signer(origin, seed);
  seed.fill(0);
  return { origin, signer, verifierKey: formatVerifierKey(origin, SIGNATURE_TYPE_ED25519, pub) };
}

/** {@link headLogKey} of the directory key file (`loadDirectoryKeys`); the keys read are zeroed after. */
export function headLogKeyFromFile(path: string): HeadLogKey {
  const keys = loadDirectoryKeys(path);
  try {
    return headLogKey(keys);
  } finally {
    keys.signingKey.fill(0);
    keys.vrfKey.fill(0);
  }
}

/** What the publisher stored: the newest head-log checkpoint with at least k cosignatures. */
export interface DirectoryWitnessed {
  readonly size: number;
  readonly note: string;
  readonly cosigned: readonly string[];
  readonly time: string;
}

/** Per witness: the head-log size it holds, the last success and the last error. */
export type DirectoryWitnessStatusEntry = WitnessStatusEntry;

/** What the publisher left in the store, for any node, the metrics and doctor (offline too). */
export interface DirectoryWitnessState {
  readonly k: number;
  readonly n: number;
  /** Tree size of the KEYTRANS log. */
  readonly treeSize: number;
  /** The newest head k witnesses cosigned (without its note). */
  readonly witnessed: { readonly size: number; readonly cosigned: readonly string[]; readonly time: string } | null;
  readonly witnesses: readonly DirectoryWitnessStatusEntry[];
}

/**
 * Reads the directory's witnessing state from the store's meta rows and the KEYTRANS log size.
 * `policy` null: no witnesses configured (the stored per-witness rows are still listed).
 *
 * @example
 * const st = await readDirectoryWitnessState(store, witnessPolicy);
 * if (st.witnessed === null || st.witnessed.size < st.treeSize) console.log('heads waiting for cosignatures');
 */
export async function readDirectoryWitnessState(
  store: Pick<Store, 'getMeta' | 'ktTreeSize'>,
  policy: Pick<WitnessPolicy, 'k'> & { readonly witnesses: readonly { readonly name: string; readonly url: string }[] } | null,
): Promise<DirectoryWitnessState> {
  const w = parseJson<DirectoryWitnessed>(await store.getMeta(META_DIR_WITNESSED));
  const stored = parseJson<DirectoryWitnessStatusEntry[]>(await store.getMeta(META_DIR_WITNESS_STATUS)) ?? [];
  const witnesses = policy === null ? stored : policy.witnesses.map((x) => stored.find((s) => s.name === x.name) ?? { name: x.name, url: x.url, size: 0, lastOk: null, lastError: null });
  return {
    k: policy?.k ?? 0, n: policy?.witnesses.length ?? 0, treeSize: await store.ktTreeSize(),
    witnessed: w === null ? null : { size: w.size, cosigned: [...w.cosigned], time: w.time }, witnesses,
  };
}

export interface DirectoryWitnessPublisherOptions extends CosigningOptions {
  readonly service: DirectoryService;
  readonly store: Pick<Store, 'getMeta' | 'setMeta'>;
  readonly key: HeadLogKey;
  /**
   * Re-submit the current head, even unchanged, once its cosignatures are this old, ms (default
   * {@link DEFAULT_WITNESS_REFRESH_MS}): witnesses stamp each cosignature, and clients refuse a
   * head whose k-th freshest cosignature is older than their maximum age (one day by default).
   */
  readonly refreshMs?: number;
}

/** Default {@link DirectoryWitnessPublisherOptions.refreshMs}: one hour. */
export const DEFAULT_WITNESS_REFRESH_MS = 3_600_000;

/** The answer of `GET /v1/directory/witnessed` (see `WitnessedHeadAnswer` in `@keyward/client`). */
export interface WitnessedHeadView {
  readonly tree_size: number;
  readonly root: string;
  readonly checkpoint: string;
  readonly proof: string[];
  readonly cosigned: string[];
  readonly time: string;
}

/** Publishes directory heads to the witnesses (see the module comment). */
export class DirectoryWitnessPublisher extends CosigningPublisher {
  readonly #o: DirectoryWitnessPublisherOptions;
  /** KEYTRANS roots by size (the answer's `root`); `cache` holds the head log's leaf hashes. */
  readonly #roots: Uint8Array[] = [];
  #done = 0;
  /** When the head of size `#done` was last cosigned by k witnesses (ms). */
  #doneAt = 0;
  #lastDemand = 0;

  constructor(o: DirectoryWitnessPublisherOptions) {
    super(o, { store: o.store, key: META_DIR_WITNESS_STATUS, label: 'directory witness' });
    this.#o = o;
  }

  get origin(): string {
    return this.#o.key.origin;
  }

  get verifierKey(): string {
    return this.#o.key.verifierKey;
  }

  /** Extends the head log to `size` KEYTRANS heads. */
  async #extend(size: number): Promise<void> {
    if (this.cache.size >= size) return;
    const b = await this.#o.service.builder();
    while (this.cache.size < size) {
      const s = this.cache.size + 1;
      const root = await b.root(s);
      this.#roots.push(root);
      this.cache.append(leafHash(headLogEntry(s, root)));
    }
  }

  protected async run(): Promise<void> {
    const { store, key } = this.#o;
    const size = await (await this.#o.service.builder()).treeSize();
    // An unchanged head is submitted again once its cosignatures age (freshness: the witnesses
    // stamp each cosignature, and clients refuse old ones).
    if (size === 0 || (size <= this.#done && Date.now() - this.#doneAt < (this.#o.refreshMs ?? DEFAULT_WITNESS_REFRESH_MS))) return;
    await this.#extend(size);
    const r = await this.cosign(signCheckpoint(key.signer, { origin: key.origin, size, root: this.cache.root(size) }), size);
    if (!r.ok) return;
    const prev = parseJson<DirectoryWitnessed>(await store.getMeta(META_DIR_WITNESSED));
    // Another node may have stored a larger witnessed head meanwhile: never go back.
    if (prev === null || prev.size <= size) await store.setMeta(META_DIR_WITNESSED, JSON.stringify({ size, note: r.note, cosigned: r.cosigned, time: new Date().toISOString() } satisfies DirectoryWitnessed));
    this.#done = size;
    this.#doneAt = Date.now();
  }

  /** Per-witness status, as stored. */
  async status(): Promise<DirectoryWitnessStatusEntry[]> {
    return parseJson<DirectoryWitnessStatusEntry[]>(await this.#o.store.getMeta(META_DIR_WITNESS_STATUS)) ?? [];
  }

  /**
   * The newest witnessed head with the inclusion proof of its latest entry. When it is older
   * than `atLeast` (the head a client just verified), publishes first. Null when nothing is
   * witnessed (yet).
   */
  async witnessed(atLeast = 0): Promise<WitnessedHeadView | null> {
    let w = parseJson<DirectoryWitnessed>(await this.#o.store.getMeta(META_DIR_WITNESSED));
    // A run already under way may be for an older head: at most two runs. Runs asked for by
    // (unauthenticated) readers start at most every 200 ms, so readers cannot flood the witnesses.
    for (let i = 0; i < 2 && (w === null || w.size < atLeast); i++) {
      if (!this.running && Date.now() - this.#lastDemand < 200) break;
      this.#lastDemand = Date.now();
      await this.tick().catch((e: unknown) => this.logFailure(e));
      w = parseJson<DirectoryWitnessed>(await this.#o.store.getMeta(META_DIR_WITNESSED));
    }
    if (w === null) return null;
    const size = parseCheckpoint(parseNote(w.note).text).size;
    await this.#extend(size);
    return {
      tree_size: size, root: base64urlnopad.encode(this.#roots[size - 1]!), checkpoint: w.note,
      proof: this.cache.inclusionProof(size - 1, size).map((p) => base64urlnopad.encode(p)), cosigned: [...w.cosigned], time: w.time,
    };
  }
}
