/**
 * The KEYTRANS {@link DirectoryStore} of the key service, over the Keyward
 * store (`store/directory-rows.ts`): SQLite on one machine, PostgreSQL for
 * several nodes — the same adapter over either backend, and over a
 * transaction handle, so a directory change, the entity state it follows
 * from and its audit event commit together or not at all.
 *
 * Prefix-tree nodes are stored encoded in 65 bytes:
 * `0x00 ‖ vrf_output[32] ‖ commitment[32]` for a leaf,
 * `0x01 ‖ left[32] ‖ right[32]` for a parent.
 */
import { DirectoryError, type AppendBatch, type DirectoryStore, type LogEntry, type PrefixNode, type StoredVersion } from '@keyward/directory';
import { isStoreError } from '../store/errors.js';
import type { StoreOps } from '../store/types.js';

/**
 * Encodes a prefix node for the store.
 *
 * @example
 * encodePrefixNode({ type: 'parent', left, right }).length // 65
 */
export function encodePrefixNode(n: PrefixNode): Uint8Array {
  const out = new Uint8Array(65);
  if (n.type === 'leaf') {
    out.set(n.vrfOutput, 1);
    out.set(n.commitment, 33);
  } else {
    out[0] = 1;
    out.set(n.left, 1);
    out.set(n.right, 33);
  }
  return out;
}

/**
 * Decodes a stored prefix node; `KT_MALFORMED` for anything but the two 65-byte forms.
 *
 * @example
 * decodePrefixNode(bytes).type // 'leaf' | 'parent'
 */
export function decodePrefixNode(b: Uint8Array): PrefixNode {
  if (b.length !== 65 || b[0]! > 1) throw new DirectoryError('KT_MALFORMED', 'a stored prefix node is not 65 bytes of a known type');
  const a = b.slice(1, 33);
  const c = b.slice(33, 65);
  return b[0] === 0 ? { type: 'leaf', vrfOutput: a, commitment: c } : { type: 'parent', left: a, right: c };
}

/**
 * A {@link DirectoryStore} over the key service's store (or one of its transactions).
 *
 * @example
 * const log = await DirectoryBuilder.create(new KeywardDirectoryStore(store), keys);
 * await store.transaction(async (tx) => { await builderOver(tx).update(changes); await audit(tx); });
 */
export class KeywardDirectoryStore implements DirectoryStore {
  constructor(private readonly ops: StoreOps) {}

  treeSize(): Promise<number> {
    return this.ops.ktTreeSize();
  }

  async logEntry(position: number): Promise<LogEntry | undefined> {
    const e = await this.ops.ktLogEntry(position);
    return e === null ? undefined : { timestamp: e.timestamp, prefixTree: e.prefixRoot };
  }

  async logNode(start: number, len: number): Promise<Uint8Array | undefined> {
    return (await this.ops.ktLogNode(start, len)) ?? undefined;
  }

  async prefixNode(value: Uint8Array): Promise<PrefixNode | undefined> {
    if (value.length !== 32) return undefined;
    const n = await this.ops.ktPrefixNode(value);
    return n === null ? undefined : decodePrefixNode(n);
  }

  versionCount(label: Uint8Array): Promise<number> {
    return this.ops.ktVersionCount(label);
  }

  async labelVersion(label: Uint8Array, version: number): Promise<StoredVersion | undefined> {
    return (await this.ops.ktLabelVersion(label, version)) ?? undefined;
  }

  async append(batch: AppendBatch): Promise<void> {
    try {
      await this.ops.ktAppend({
        position: batch.position,
        timestamp: batch.entry.timestamp,
        prefixRoot: batch.entry.prefixTree,
        logNodes: batch.logNodes.map((n) => ({ start: n.start, len: n.len, value: n.value })),
        prefixNodes: batch.prefixNodes.map(([value, node]) => ({ value, node: encodePrefixNode(node) })),
        versions: batch.versions.map((v) => ({ label: v.label, version: v.version, record: { ...v.record } })),
      });
    } catch (e) {
      // The directory's contract: a lost race to extend the log is KT_CONFLICT.
      if (isStoreError(e) && e.code === 'KW_STORE_CONFLICT') throw new DirectoryError('KT_CONFLICT', e.message, { cause: e });
      throw e;
    }
  }
}
