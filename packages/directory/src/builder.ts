/**
 * The server side: a pure, storage-agnostic KEYTRANS log builder. It appends
 * log entries whose values are prefix-tree roots, signs tree heads, and answers
 * search, update and monitor requests with proofs that {@link DirectoryClient}
 * verifies. It holds the VRF and tree-head signing keys in memory; a later
 * server module will move both behind the keyholder.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { abytes, auint, toHex } from './bytes.js';
import { commit, randomOpening } from './commitment.js';
import { DirectoryError, check } from './errors.js';
import { logLeafValue, logParentValue, proveBatch, splitPoint } from './log-tree.js';
import { prefixInsert, prefixProve, type PrefixNode } from './prefix-tree.js';
import type { DirectoryProof, VersionProof } from './responses.js';
import type { AppendBatch, DirectoryStore, StoredVersion } from './store.js';
import { alabel, aversion, type Configuration, type FullTreeHead, type LogEntry, type TreeHead } from './structs.js';
import { KT_128_SHA256_ED25519, ZERO_HASH } from './suite.js';
import { signTreeHead } from './tree-head.js';
import { vrfEvaluate, vrfPublicKey } from './vrf.js';

/** The log's secret keys: 32-byte Ed25519 tree-head signing key and 32-byte VRF key. */
export interface DirectoryKeys {
  readonly signingKey: Uint8Array;
  readonly vrfKey: Uint8Array;
}

/** Deployment parameters (milliseconds); defaults follow the vectors' configuration. */
export interface DirectoryParams {
  readonly maxAhead?: number;
  readonly maxBehind?: number;
  readonly reasonableMonitoringWindow?: number;
  readonly maximumLifetime?: number;
  /** Clock for entry timestamps; defaults to `Date.now`. */
  readonly now?: () => number;
}

/** One change: append the next version of `label` with `value`. */
export interface LabelUpdate {
  readonly label: Uint8Array;
  readonly value: Uint8Array;
}

/** A search request (Keyward profile): `last` is the client's verified tree size. */
export interface DirectorySearch {
  readonly label: Uint8Array;
  /** A fixed version; absent asks for the greatest. */
  readonly version?: number;
  readonly last?: number;
}

/** A monitor request: versions the client already verified, and for an owner its greatest version. */
export interface DirectoryMonitor {
  readonly label: Uint8Array;
  readonly versions: readonly number[];
  /** Owners only: the greatest version they added; the proof then shows `greatest+1` is absent. */
  readonly greatestVersion?: number;
  readonly last?: number;
}

/**
 * A KEYTRANS log over a {@link DirectoryStore}.
 *
 * @example
 * const log = await DirectoryBuilder.create(new MemoryDirectoryStore(), { signingKey, vrfKey });
 * await log.update([{ label: utf8('alice'), value: key }]);
 * const res = await log.search({ label: utf8('alice') });
 */
export class DirectoryBuilder {
  private constructor(
    private readonly store: DirectoryStore,
    private readonly keys: DirectoryKeys,
    readonly config: Configuration,
    private readonly now: () => number,
  ) {}

  /**
   * Opens a log over `store` (empty or not) with the given keys and parameters.
   *
   * @example
   * const log = await DirectoryBuilder.create(store, keys, { maxBehind: 60_000 });
   */
  static create(store: DirectoryStore, keys: DirectoryKeys, params: DirectoryParams = {}): Promise<DirectoryBuilder> {
    abytes(keys.signingKey, 'signing key', 32);
    abytes(keys.vrfKey, 'VRF key', 32);
    const config: Configuration = {
      cipherSuite: KT_128_SHA256_ED25519,
      mode: 1,
      signaturePublicKey: ed25519.getPublicKey(keys.signingKey),
      vrfPublicKey: vrfPublicKey(keys.vrfKey),
      maxAhead: params.maxAhead ?? 10_000,
      maxBehind: params.maxBehind ?? 10_000,
      reasonableMonitoringWindow: params.reasonableMonitoringWindow ?? 604_800_000,
      ...(params.maximumLifetime !== undefined ? { maximumLifetime: params.maximumLifetime } : {}),
    };
    return Promise.resolve(new DirectoryBuilder(store, keys, config, params.now ?? Date.now));
  }

  /** Number of log entries. */
  treeSize(): Promise<number> {
    return this.store.treeSize();
  }

  private async subtree(start: number, len: number): Promise<Uint8Array> {
    if ((len & (len - 1)) === 0) {
      const v = await this.store.logNode(start, len);
      if (!v) throw new DirectoryError('KT_INVALID_ARGUMENT', `log node [${start}, ${start + len}) missing from the store`);
      return v;
    }
    const k = splitPoint(len);
    return logParentValue(await this.subtree(start, k), k === 1, await this.subtree(start + k, len - k), len - k === 1);
  }

  /** The log root at `size` (≤ current size). */
  async root(size?: number): Promise<Uint8Array> {
    const n = size ?? (await this.store.treeSize());
    check(n >= 1, 'an empty log has no root');
    return this.subtree(0, n);
  }

  /**
   * The signed tree head of the current log.
   *
   * @example
   * const { treeHead, root } = await log.treeHead();
   */
  async treeHead(): Promise<{ treeHead: TreeHead; root: Uint8Array }> {
    const size = await this.store.treeSize();
    const root = await this.root(size);
    return { treeHead: signTreeHead(this.config, this.keys.signingKey, size, root), root };
  }

  private async rightmost(): Promise<{ size: number; entry: LogEntry }> {
    const size = await this.store.treeSize();
    if (size === 0) throw new DirectoryError('KT_NOT_FOUND', 'the log is empty');
    const entry = await this.store.logEntry(size - 1);
    if (!entry) throw new DirectoryError('KT_INVALID_ARGUMENT', 'rightmost log entry missing from the store');
    return { size, entry };
  }

  /**
   * Appends one log entry carrying the next version of each label in `changes` (a label may
   * appear several times: its versions follow in order). Returns the new signed tree head.
   *
   * @example
   * await log.update([{ label, value: publicKey }]);
   */
  async update(changes: readonly LabelUpdate[]): Promise<{ treeHead: TreeHead; versions: number[] }> {
    check(changes.length >= 1 && changes.length <= 255, 'an update carries 1 to 255 changes');
    const size = await this.store.treeSize();
    const previous = size > 0 ? await this.store.logEntry(size - 1) : undefined;
    let root = previous?.prefixTree ?? ZERO_HASH;
    const nodes = new Map<string, PrefixNode>();
    const read = (v: Uint8Array): Promise<PrefixNode | undefined> => this.store.prefixNode(v);
    const next = new Map<string, number>();
    const versions: AppendBatch['versions'][number][] = [];
    for (const { label, value } of changes) {
      alabel(label);
      abytes(value, 'value');
      const key = toHex(label);
      const version = next.get(key) ?? (await this.store.versionCount(label));
      aversion(version);
      next.set(key, version + 1);
      const { output, proof } = vrfEvaluate(this.keys.vrfKey, label, version);
      const opening = randomOpening();
      const commitment = commit(opening, label, version, { value });
      root = (await prefixInsert(read, root, { vrfOutput: output, commitment }, nodes)).root;
      const record: StoredVersion = { value, opening, vrfOutput: output, vrfProof: proof, commitment, position: size };
      versions.push({ label, version, record });
    }
    // Timestamps never go backwards, whatever the clock does.
    const timestamp = Math.max(this.now(), previous?.timestamp ?? 0);
    const entry: LogEntry = { timestamp, prefixTree: root };
    const leaf = logLeafValue(entry);
    const logNodes: { start: number; len: number; value: Uint8Array }[] = [{ start: size, len: 1, value: leaf }];
    let value = leaf;
    for (let len = 2; (size + 1) % len === 0; len *= 2) {
      const start = size + 1 - len;
      const left = await this.subtree(start, len / 2);
      value = logParentValue(left, len / 2 === 1, value, len / 2 === 1);
      logNodes.push({ start, len, value });
    }
    // Keep only the nodes reachable from the new root (intermediate ones from earlier changes in
    // this batch are garbage).
    const prefixNodes = [...collectReachable(root, nodes)];
    await this.store.append({ position: size, entry, logNodes, prefixNodes, versions });
    return { treeHead: (await this.treeHead()).treeHead, versions: versions.map((v) => v.version) };
  }

  private async headFor(last: number | undefined, size: number): Promise<FullTreeHead> {
    if (last !== undefined) {
      auint(last, 'last');
      if (last > size) throw new DirectoryError('KT_INVALID_ARGUMENT', `the client claims size ${last}, the log has ${size}`);
      if (last === size) return { type: 'same' };
    }
    return { type: 'updated', treeHead: (await this.treeHead()).treeHead };
  }

  private async prove(
    label: Uint8Array,
    versions: readonly number[],
    last: number | undefined,
    opening: StoredVersion | undefined,
  ): Promise<DirectoryProof> {
    const { size, entry } = await this.rightmost();
    const vp: VersionProof[] = [];
    const keys: Uint8Array[] = [];
    for (const v of versions) {
      const stored = await this.store.labelVersion(label, v);
      const { output, proof } = stored ? { output: stored.vrfOutput, proof: stored.vrfProof } : vrfEvaluate(this.keys.vrfKey, label, v);
      vp.push({ version: v, proof });
      keys.push(output);
    }
    const prefixProof = await prefixProve((v) => this.store.prefixNode(v), entry.prefixTree, keys);
    const retained = last !== undefined && last >= 1 ? last : undefined;
    const inclusion = await proveBatchAsync((s, l) => this.subtree(s, l), size, [size - 1], retained);
    return {
      fullTreeHead: await this.headFor(last, size),
      timestamp: entry.timestamp,
      versions: vp,
      ...(opening ? { opening: { opening: opening.opening, value: opening.value } } : {}),
      prefixProof,
      inclusion,
    };
  }

  /**
   * Answers a search: for the greatest version, proofs that version `g` is present and `g+1`
   * absent (or that version 0 is absent); for a fixed version `v`, that `v` is present (or absent).
   *
   * @example
   * const res = await log.search({ label, last: client.treeSize });
   */
  async search(q: DirectorySearch): Promise<DirectoryProof> {
    alabel(q.label);
    const count = await this.store.versionCount(q.label);
    if (q.version !== undefined) {
      aversion(q.version);
      const stored = await this.store.labelVersion(q.label, q.version);
      return this.prove(q.label, [q.version], q.last, stored);
    }
    if (count === 0) return this.prove(q.label, [0], q.last, undefined);
    const greatest = count - 1;
    return this.prove(q.label, count > 0xfffffffe ? [greatest] : [greatest, greatest + 1], q.last, await this.store.labelVersion(q.label, greatest));
  }

  /**
   * Answers a monitor request: every listed version is still present with the same commitment,
   * and (for an owner) no version above `greatestVersion` exists.
   *
   * @example
   * const res = await log.monitor({ label, versions: [0, 1], greatestVersion: 1, last });
   */
  async monitor(q: DirectoryMonitor): Promise<DirectoryProof> {
    alabel(q.label);
    const versions = [...q.versions];
    if (q.greatestVersion !== undefined) versions.push(q.greatestVersion + 1);
    check(new Set(versions).size === versions.length && versions.length <= 255, 'monitored versions must be distinct, at most 255');
    return this.prove(q.label, versions, q.last, undefined);
  }

  /**
   * A consistency proof from `fromSize` to `toSize` (§12.1 batch form with no proven leaves).
   *
   * @example
   * const elements = await log.consistency(5, 9);
   */
  async consistency(fromSize: number, toSize: number): Promise<Uint8Array[]> {
    auint(fromSize, 'fromSize');
    auint(toSize, 'toSize');
    const size = await this.store.treeSize();
    check(fromSize >= 1 && fromSize <= toSize && toSize <= size, 'need 1 ≤ fromSize ≤ toSize ≤ tree size');
    return proveBatchAsync((s, l) => this.subtree(s, l), toSize, [], fromSize);
  }
}

async function proveBatchAsync(
  source: (start: number, len: number) => Promise<Uint8Array>,
  size: number,
  leaves: readonly number[],
  retainedSize?: number,
): Promise<Uint8Array[]> {
  const ranges: { s: number; l: number }[] = [];
  proveBatch(
    (s, l) => {
      ranges.push({ s, l });
      return ZERO_HASH;
    },
    size,
    leaves,
    retainedSize,
  );
  const out: Uint8Array[] = [];
  for (const r of ranges) out.push(await source(r.s, r.l));
  return out;
}

function* collectReachable(root: Uint8Array, nodes: Map<string, PrefixNode>): Generator<[Uint8Array, PrefixNode]> {
  const stack = [root];
  while (stack.length > 0) {
    const v = stack.pop()!;
    const n = nodes.get(toHex(v));
    if (!n) continue; // already stored, or the zero hash
    yield [v, n];
    if (n.type === 'parent') stack.push(n.left, n.right);
  }
}

