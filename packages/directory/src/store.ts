/**
 * The storage interface of the directory builder. Pure and storage-agnostic: a
 * later server module backs it with SQLite or PostgreSQL; {@link MemoryDirectoryStore}
 * is the in-memory implementation used by tests.
 *
 * Everything the builder writes for one log entry goes through one
 * {@link DirectoryStore.append} call, which must be atomic and must refuse a
 * batch whose `position` is not the current tree size (optimistic concurrency:
 * two writers cannot both extend the same tree).
 */
import { toHex } from './bytes.js';
import { DirectoryError } from './errors.js';
import type { PrefixNode } from './prefix-tree.js';
import type { LogEntry } from './structs.js';

/** What the log keeps per label-version pair (never the VRF secret). */
export interface StoredVersion {
  readonly value: Uint8Array;
  readonly opening: Uint8Array;
  readonly vrfOutput: Uint8Array;
  readonly vrfProof: Uint8Array;
  readonly commitment: Uint8Array;
  /** The log position of the entry that added it. */
  readonly position: number;
}

/** Everything one new log entry writes. */
export interface AppendBatch {
  /** Must equal the current tree size. */
  readonly position: number;
  readonly entry: LogEntry;
  /** Newly completed balanced log subtrees (len a power of two). */
  readonly logNodes: readonly { readonly start: number; readonly len: number; readonly value: Uint8Array }[];
  /** New prefix-tree nodes, keyed by their own value. */
  readonly prefixNodes: readonly (readonly [Uint8Array, PrefixNode])[];
  /** New label versions; `version` is the label's next version. */
  readonly versions: readonly { readonly label: Uint8Array; readonly version: number; readonly record: StoredVersion }[];
}

/** The persistence the builder needs. All reads of committed data; one atomic write. */
export interface DirectoryStore {
  /** Number of log entries. */
  treeSize(): Promise<number>;
  /** The log entry at `position`. */
  logEntry(position: number): Promise<LogEntry | undefined>;
  /** The value of the balanced subtree `[start, start+len)`. */
  logNode(start: number, len: number): Promise<Uint8Array | undefined>;
  /** A prefix-tree node by its value. */
  prefixNode(value: Uint8Array): Promise<PrefixNode | undefined>;
  /** How many versions `label` has (its greatest version + 1, or 0). */
  versionCount(label: Uint8Array): Promise<number>;
  /** One version of a label. */
  labelVersion(label: Uint8Array, version: number): Promise<StoredVersion | undefined>;
  /** Atomically writes one log entry and everything it adds. */
  append(batch: AppendBatch): Promise<void>;
}

/**
 * An in-memory {@link DirectoryStore}.
 *
 * @example
 * const store = new MemoryDirectoryStore();
 */
export class MemoryDirectoryStore implements DirectoryStore {
  private readonly entries: LogEntry[] = [];
  private readonly logNodes = new Map<string, Uint8Array>();
  private readonly prefixNodes = new Map<string, PrefixNode>();
  private readonly versions = new Map<string, StoredVersion[]>();

  treeSize(): Promise<number> {
    return Promise.resolve(this.entries.length);
  }

  logEntry(position: number): Promise<LogEntry | undefined> {
    return Promise.resolve(this.entries[position]);
  }

  logNode(start: number, len: number): Promise<Uint8Array | undefined> {
    return Promise.resolve(this.logNodes.get(`${start}/${len}`));
  }

  prefixNode(value: Uint8Array): Promise<PrefixNode | undefined> {
    return Promise.resolve(this.prefixNodes.get(toHex(value)));
  }

  versionCount(label: Uint8Array): Promise<number> {
    return Promise.resolve(this.versions.get(toHex(label))?.length ?? 0);
  }

  labelVersion(label: Uint8Array, version: number): Promise<StoredVersion | undefined> {
    return Promise.resolve(this.versions.get(toHex(label))?.[version]);
  }

  append(batch: AppendBatch): Promise<void> {
    if (batch.position !== this.entries.length) {
      return Promise.reject(new DirectoryError('KT_CONFLICT', `append at ${batch.position} but the log has ${this.entries.length} entries`));
    }
    for (const v of batch.versions) {
      const have = this.versions.get(toHex(v.label))?.length ?? 0;
      const earlier = batch.versions.filter((w) => w !== v && toHex(w.label) === toHex(v.label) && w.version < v.version).length;
      if (v.version !== have + earlier) return Promise.reject(new DirectoryError('KT_CONFLICT', 'label version is not the next one'));
    }
    this.entries.push(batch.entry);
    for (const n of batch.logNodes) this.logNodes.set(`${n.start}/${n.len}`, n.value);
    for (const [v, n] of batch.prefixNodes) this.prefixNodes.set(toHex(v), n);
    for (const v of batch.versions) {
      const list = this.versions.get(toHex(v.label)) ?? [];
      list[v.version] = v.record;
      this.versions.set(toHex(v.label), list);
    }
    return Promise.resolve();
  }
}
