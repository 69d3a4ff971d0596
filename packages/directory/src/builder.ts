/**
 * The server side: a pure, storage-agnostic KEYTRANS log builder. It appends
 * log entries whose values are prefix-tree roots, signs tree heads, and answers
 * search, update and monitor requests with proofs that {@link DirectoryClient}
 * verifies. The VRF and tree-head signing keys sit behind {@link DirectoryKeyHolder}: in memory
 * ({@link memoryDirectoryKeys}, for tests and the library) or in another process (the key
 * service's keyholder, packages/server/src/directory/keyholder-keys.ts).
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { abytes, auint, toHex } from './bytes.js';
import { isExpired, type LadderKey, type LadderSpec, type ProofSource } from './combined.js';
import { commit, randomOpening } from './commitment.js';
import { DirectoryError, check } from './errors.js';
import { ibst } from './ibst.js';
import { baseBinaryLadder, searchBinaryLadder } from './ladder.js';
import { fullSubtrees, logLeafValue, logParentValue, proveBatch, splitPoint } from './log-tree.js';
import { contactMonitor, ownerInit, ownerInitLadder, ownerMonitor, type MonitorResponse, type OwnerInitResponse } from './monitor.js';
import { prefixInsert, prefixProve, type PrefixNode } from './prefix-tree.js';
import { completeFrontier, runSearch, type SearchResponse } from './search.js';
import { updateLadderVersions, updateProof, type OwnerState, type UpdateResponse } from './update.js';
import type { AppendBatch, DirectoryStore, StoredVersion } from './store.js';
import {
  alabel,
  aversion,
  encodeTreeHeadTbs as treeHeadTbs,
  type BinaryLadderStep,
  type CombinedTreeProof,
  type Configuration,
  type FullTreeHead,
  type LogEntry,
  type MonitorMapEntry,
  type PrefixProof,
  type SearchRequest,
  type TreeHead,
} from './structs.js';
import { KT_128_SHA256_ED25519, NC, ZERO_HASH } from './suite.js';
import { vrfEvaluate, vrfPublicKey } from './vrf.js';

/** The log's secret keys: 32-byte Ed25519 tree-head signing key and 32-byte VRF key. */
export interface DirectoryKeys {
  readonly signingKey: Uint8Array;
  readonly vrfKey: Uint8Array;
}

/**
 * Whoever holds the log's secret keys: proves VRF outputs and signs tree heads on request. The
 * builder never sees the private keys through this interface.
 */
export interface DirectoryKeyHolder {
  /** 32-byte Ed25519 public key of the tree-head signing key (the Configuration's). */
  readonly signaturePublicKey: Uint8Array;
  /** 32-byte ECVRF-EDWARDS25519-SHA512 public key (the Configuration's). */
  readonly vrfPublicKey: Uint8Array;
  /** The VRF output and proof for (label, version) (§8 VrfInput). */
  vrfProve(label: Uint8Array, version: number): Promise<{ output: Uint8Array; proof: Uint8Array }>;
  /**
   * A signature over `tbs` (§11.2 TreeHeadTBS for `head`). A holder that refuses to sign a fork
   * (the keyholder: docs/directory.md §Key custody) asks `head.consistency(fromSize)` for the
   * proof that this head extends the last one it signed.
   */
  signTreeHead(tbs: Uint8Array, head: SignedHeadRequest): Promise<Uint8Array>;
}

/** What {@link DirectoryKeyHolder.signTreeHead} is told about the head it signs. */
export interface SignedHeadRequest {
  readonly treeSize: number;
  readonly root: Uint8Array;
  /**
   * Consistency with an earlier size `fromSize` (1 ≤ fromSize ≤ treeSize): the full-subtree heads
   * of the log at `fromSize` (they recompute its root) and the §12.1 consistency proof from there.
   * The builder always gives it; a caller signing a bare head may not.
   */
  consistency?(fromSize: number): Promise<{ readonly fromHeads: Uint8Array[]; readonly proof: Uint8Array[] }>;
}

/**
 * The in-memory {@link DirectoryKeyHolder} over raw keys (tests, the library).
 *
 * @example
 * const holder = memoryDirectoryKeys({ signingKey, vrfKey });
 */
export function memoryDirectoryKeys(keys: DirectoryKeys): DirectoryKeyHolder {
  abytes(keys.signingKey, 'signing key', 32);
  abytes(keys.vrfKey, 'VRF key', 32);
  const signingKey = keys.signingKey;
  const vrfKey = keys.vrfKey;
  return Object.freeze({
    signaturePublicKey: ed25519.getPublicKey(signingKey),
    vrfPublicKey: vrfPublicKey(vrfKey),
    vrfProve: (label: Uint8Array, version: number) => Promise.resolve(vrfEvaluate(vrfKey, label, version)),
    signTreeHead: (tbs: Uint8Array) => Promise.resolve(ed25519.sign(tbs, signingKey)),
  });
}

const isKeyHolder = (k: DirectoryKeys | DirectoryKeyHolder): k is DirectoryKeyHolder => typeof (k as Partial<DirectoryKeyHolder>).vrfProve === 'function';

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

/** §13.2 ContactMonitorRequest. */
export interface ContactMonitorRequest {
  readonly last?: number;
  readonly label: Uint8Array;
  readonly entries: readonly MonitorMapEntry[];
}

/** §13.3 OwnerInitRequest. */
export interface OwnerInitRequest {
  readonly last?: number;
  readonly label: Uint8Array;
  readonly start: number;
}

/** §13.4 OwnerMonitorRequest. */
export interface OwnerMonitorRequest {
  readonly last?: number;
  readonly label: Uint8Array;
  readonly entries: readonly MonitorMapEntry[];
  readonly start: number;
  readonly greatestVersion?: number;
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
    private readonly keys: DirectoryKeyHolder,
    readonly config: Configuration,
    private readonly now: () => number,
  ) {}

  /**
   * Opens a log over `store` (empty or not) with the given keys (raw, kept in memory, or a
   * {@link DirectoryKeyHolder}) and parameters.
   *
   * @example
   * const log = await DirectoryBuilder.create(store, keys, { maxBehind: 60_000 });
   */
  static create(store: DirectoryStore, keys: DirectoryKeys | DirectoryKeyHolder, params: DirectoryParams = {}): Promise<DirectoryBuilder> {
    const holder = isKeyHolder(keys) ? keys : memoryDirectoryKeys(keys);
    abytes(holder.signaturePublicKey, 'signature public key', 32);
    abytes(holder.vrfPublicKey, 'VRF public key', 32);
    const config: Configuration = {
      cipherSuite: KT_128_SHA256_ED25519,
      mode: 1,
      signaturePublicKey: holder.signaturePublicKey,
      vrfPublicKey: holder.vrfPublicKey,
      maxAhead: params.maxAhead ?? 10_000,
      maxBehind: params.maxBehind ?? 10_000,
      reasonableMonitoringWindow: params.reasonableMonitoringWindow ?? 604_800_000,
      ...(params.maximumLifetime !== undefined ? { maximumLifetime: params.maximumLifetime } : {}),
    };
    return Promise.resolve(new DirectoryBuilder(store, holder, config, params.now ?? Date.now));
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
    const signature = await this.keys.signTreeHead(treeHeadTbs(this.config, size, root), {
      treeSize: size,
      root,
      consistency: async (fromSize) => {
        auint(fromSize, 'fromSize');
        check(fromSize >= 1 && fromSize <= size, `fromSize must be in [1, ${size}]`);
        const fromHeads = await Promise.all(fullSubtrees(fromSize).map((r) => this.subtree(r.start, r.len)));
        return { fromHeads, proof: await proveBatchAsync((st, l) => this.subtree(st, l), size, [], fromSize) };
      },
    });
    return { treeHead: { treeSize: size, signature }, root };
  }

  /**
   * Appends one log entry carrying the next version of each label in `changes` (a label may
   * appear several times: its versions follow in order). Returns the new signed tree head.
   *
   * @example
   * await log.update([{ label, value: publicKey }]);
   */
  async update(changes: readonly LabelUpdate[]): Promise<{ treeHead: TreeHead; versions: number[]; position: number }> {
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
      const { output, proof } = await this.keys.vrfProve(label, version);
      const opening = randomOpening();
      const commitment = commit(opening, label, version, { value });
      root = (await prefixInsert(read, root, { vrfOutput: output, commitment }, nodes)).root;
      const record: StoredVersion = { value, opening, vrfOutput: output, vrfProof: proof, commitment, position: size };
      versions.push({ label, version, record });
    }
    // Keep only the nodes reachable from the new root (intermediate ones from earlier changes in
    // this batch are garbage).
    const prefixNodes = [...collectReachable(root, nodes)];
    await this.appendEntry(size, previous, root, prefixNodes, versions);
    return { treeHead: (await this.treeHead()).treeHead, versions: versions.map((v) => v.version), position: size };
  }

  /**
   * Appends a log entry that changes no label (the same prefix root, a new timestamp) when the
   * newest entry is at least `maxAgeMs` old: the heartbeat that keeps an idle log's rightmost
   * timestamp within the Configuration's `max_behind`, which clients check (§4.2; without it a
   * client with no retained head refuses an honest log that has been idle longer than
   * `max_behind`). Returns the new position, or null when nothing was due (or the log is empty).
   *
   * @example
   * await log.heartbeat(3_600_000); // at most one entry an hour on an idle log
   */
  async heartbeat(maxAgeMs: number): Promise<number | null> {
    auint(maxAgeMs, 'maxAgeMs');
    const size = await this.store.treeSize();
    if (size === 0) return null;
    const previous = (await this.store.logEntry(size - 1))!;
    if (this.now() - previous.timestamp < maxAgeMs) return null;
    await this.appendEntry(size, previous, previous.prefixTree, [], []);
    return size;
  }

  private async appendEntry(size: number, previous: LogEntry | undefined, root: Uint8Array, prefixNodes: AppendBatch['prefixNodes'], versions: AppendBatch['versions']): Promise<void> {
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
    await this.store.append({ position: size, entry, logNodes, prefixNodes, versions });
  }

  private async headFor(last: number | undefined, size: number): Promise<FullTreeHead> {
    if (last !== undefined && last === size) return { type: 'same' };
    return { type: 'updated', treeHead: (await this.treeHead()).treeHead };
  }

  private async sizeFor(last: number | undefined): Promise<number> {
    const size = await this.store.treeSize();
    if (size === 0) throw new DirectoryError('KT_NOT_FOUND', 'the log is empty');
    if (last !== undefined) {
      auint(last, 'last');
      if (last < 1 || last > size) throw new DirectoryError('KT_INVALID_ARGUMENT', `the client claims size ${last}, the log has ${size}`);
    }
    return size;
  }

  /**
   * Runs `algorithm` (the client's own verification code) against the store: every timestamp and
   * ladder it asks for becomes an element of the CombinedTreeProof, in the order it asks. The
   * algorithm is synchronous and the store is not, so a read the cache cannot answer aborts the
   * run, is loaded, and the run starts again (each restart gets further; runs are O(log n)).
   */
  private async prove<T>(
    label: Uint8Array,
    size: number,
    last: number | undefined,
    algorithm: (w: ProofWriter, cache: LabelCache) => T,
    evidence = false,
  ): Promise<{ result: T | undefined; proof: CombinedTreeProof; cache: LabelCache }> {
    const cache = await LabelCache.load(this.store, this.keys, label);
    const retained = new Set(last === undefined ? [] : ibst.frontier(last));
    for (let attempt = 0; ; attempt++) {
      const w = new ProofWriter(cache, retained);
      let result: T | undefined;
      try {
        result = algorithm(w, cache);
      } catch (e) {
        if (e instanceof Need) {
          await e.load();
          continue;
        }
        // Owner monitoring met a version the owner does not expect: the answer stops there, and
        // the owner's verification stops at the same element (it is the evidence).
        if (e instanceof DirectoryError && e.code === 'KT_UNEXPECTED_VERSION' && evidence) return this.finish(undefined, w, cache, size, last);
        // The algorithm refuses what an honest log would never show: the request was wrong.
        if (e instanceof DirectoryError && (e.code === 'KT_BAD_RESPONSE' || e.code === 'KT_UNEXPECTED_VERSION')) {
          throw new DirectoryError('KT_INVALID_ARGUMENT', `the request does not match the log: ${e.message}`, { cause: e });
        }
        throw e;
      }
      return this.finish(result, w, cache, size, last);
    }
  }

  private async finish<T>(result: T, w: ProofWriter, cache: LabelCache, size: number, last: number | undefined): Promise<{ result: T; proof: CombinedTreeProof; cache: LabelCache }> {
    for (;;) {
      try {
        const prefixRoots = w.owedRoots();
        const inclusion = await proveBatchAsync((s, l) => this.subtree(s, l), size, w.supplied(), last);
        return { result, cache, proof: { timestamps: w.timestamps, prefixProofs: w.proofs, prefixRoots, inclusion } };
      } catch (e) {
        if (!(e instanceof Need)) throw e;
        await e.load();
      }
    }
  }

  /**
   * Answers a §13.1 SearchRequest with the §6.3 greatest-version search (no `version`) or the
   * §7.2 fixed-version search, choosing entries and ladders exactly as {@link verifySearchResponse}
   * reads them. A label with no versions is answered as version 0 proven absent; a fixed version
   * the log never had as that version proven absent. An expired version is refused
   * (`KT_NOT_FOUND`).
   *
   * @example
   * const res = await log.search({ label, last: client.treeSize });
   */
  async search(q: SearchRequest): Promise<SearchResponse> {
    alabel(q.label);
    if (q.version !== undefined) aversion(q.version);
    const size = await this.sizeFor(q.last);
    const count = await this.store.versionCount(q.label);
    const greatest = q.version === undefined;
    const target = q.version ?? Math.max(count - 1, 0);
    const ladderVersions = baseBinaryLadder(target);
    const { result, proof, cache } = await this.prove(q.label, size, q.last, (w) =>
      runSearch(this.config, size, q.last, greatest, target, NO_KEYS, w, true),
    );
    if (!result) throw new DirectoryError('KT_INVALID_ARGUMENT', 'no search result');
    if (result.expired) throw new DirectoryError('KT_NOT_FOUND', `version ${target} has expired`);
    const stored = result.found ? await this.store.labelVersion(q.label, target) : undefined;
    if (result.found && !stored) throw new DirectoryError('KT_INVALID_ARGUMENT', `version ${target} missing from the store`);
    await cache.preload(ladderVersions);
    const binaryLadder = ladderVersions.map((v) => cache.step(v, v !== target && v < count));
    return {
      fullTreeHead: await this.headFor(q.last, size),
      ...(greatest ? { version: target } : {}),
      opening: stored?.opening ?? new Uint8Array(NC),
      value: { value: stored?.value ?? new Uint8Array(0) },
      binaryLadder,
      search: proof,
    };
  }

  /**
   * Answers a §13.2 ContactMonitorRequest: §8.2 over the user's monitoring map.
   *
   * @example
   * const res = await log.contactMonitor({ label, entries: [{ position: 5, version: 2 }], last });
   */
  async contactMonitor(q: ContactMonitorRequest): Promise<MonitorResponse> {
    alabel(q.label);
    const size = await this.sizeFor(q.last);
    checkEntries(q.entries, size);
    const { proof } = await this.prove(q.label, size, q.last, (w, c) => {
      checkHeld(q.entries, c);
      for (const p of ibst.updateView(size, q.last)) w.timestamp(p);
      contactMonitor(size, this.config.reasonableMonitoringWindow, q.entries, NO_KEYS, w);
      completeFrontier(size, w);
    });
    return { fullTreeHead: await this.headFor(q.last, size), proof };
  }

  /**
   * Answers a §13.3 OwnerInitRequest: §8.3 owner initialization at the distinguished entry
   * `start`, with the greatest version at each inspected entry and the binary ladder (ascending,
   * a commitment for every version that exists).
   *
   * @example
   * const res = await log.ownerInit({ label, start: 31, last });
   */
  async ownerInit(q: OwnerInitRequest): Promise<OwnerInitResponse> {
    alabel(q.label);
    const size = await this.sizeFor(q.last);
    auint(q.start, 'start');
    if (q.start >= size) throw new DirectoryError('KT_INVALID_ARGUMENT', `start ${q.start} is beyond a log of ${size}`);
    const lifetime = this.config.maximumLifetime;
    let greatestVersions: number[] = [];
    const { proof, cache } = await this.prove(q.label, size, q.last, (w, c) => {
      for (const p of ibst.updateView(size, q.last)) w.timestamp(p);
      // The inspected entries, as ownerInit walks them, read from the cache (not the proof).
      const rightmost = c.entry(size - 1).timestamp;
      const list = [q.start];
      for (const e of ibst.pathTo(q.start, size).filter((x) => x < q.start).sort((a, b) => b - a)) {
        if (isExpired(lifetime, c.entry(e).timestamp, rightmost)) break;
        list.push(e);
      }
      greatestVersions = list.map((e) => c.countAt(e) - 1).filter((g) => g >= 0);
      ownerInit(size, lifetime, q.start, greatestVersions, NO_KEYS, w);
      completeFrontier(size, w);
    });
    const initLadder = ownerInitLadder(greatestVersions);
    await cache.preload(initLadder);
    return {
      fullTreeHead: await this.headFor(q.last, size),
      greatestVersions,
      binaryLadder: initLadder.map((v) => cache.step(v, v < cache.count)),
      proof,
    };
  }

  /**
   * Answers a §13.4 OwnerMonitorRequest: §8.2 over `entries`, then §8.3 owner monitoring of the
   * distinguished entries right of `start`, each with the ladder for the version the owner holds
   * there (`min(greatest there, greatestVersion)`), so a version the owner did not add shows up.
   *
   * @example
   * const res = await log.ownerMonitor({ label, entries: [], start: 31, greatestVersion: 2, last });
   */
  async ownerMonitor(q: OwnerMonitorRequest): Promise<MonitorResponse> {
    alabel(q.label);
    const size = await this.sizeFor(q.last);
    checkEntries(q.entries, size);
    auint(q.start, 'start');
    if (q.start >= size) throw new DirectoryError('KT_INVALID_ARGUMENT', `start ${q.start} is beyond a log of ${size}`);
    if (q.greatestVersion !== undefined) aversion(q.greatestVersion);
    const { proof } = await this.prove(q.label, size, q.last, (w, c) => {
      checkHeld(q.entries, c);
      for (const p of ibst.updateView(size, q.last)) w.timestamp(p);
      contactMonitor(size, this.config.reasonableMonitoringWindow, q.entries, NO_KEYS, w);
      const expected = (p: number): number => (q.greatestVersion === undefined ? -1 : Math.min(c.countAt(p) - 1, q.greatestVersion));
      ownerMonitor(size, this.config.reasonableMonitoringWindow, q.start, expected, NO_KEYS, w);
      completeFrontier(size, w);
    }, true);
    return { fullTreeHead: await this.headFor(q.last, size), proof };
  }

  /**
   * Answers the owner of `label` for the `count` versions the log added at entry `position`, with a
   * §13.5 UpdateResponse carrying the §9.1 proof. A §13.5 UpdateRequest does not tell the log the
   * owner's §8.3 state, which §9.1's choice of entries depends on, so the owner passes it (`owner`,
   * as `DirectoryClient.ownerState` gives it): Keyward's extension of the request.
   *
   * @example
   * const { position, versions } = await log.update([{ label, value }]);
   * const res = await log.updateResponse({ label, position, count: 1, owner, last });
   */
  async updateResponse(q: { readonly label: Uint8Array; readonly position: number; readonly count: number; readonly owner: OwnerState; readonly last?: number }): Promise<UpdateResponse> {
    alabel(q.label);
    const size = await this.sizeFor(q.last);
    auint(q.position, 'position');
    check(q.position < size, `position ${q.position} is beyond a log of ${size}`);
    auint(q.count, 'count', 255);
    const previous = q.owner.versionAtStarting + q.owner.upcoming.length;
    const { proof, cache } = await this.prove(q.label, size, q.last, (w, c) => {
      if (c.countAt(q.position) !== previous + q.count + 1 || c.countAt(q.position - 1) !== previous + 1) {
        throw new DirectoryError('KT_INVALID_ARGUMENT', `entry ${q.position} did not add versions ${previous + 1} to ${previous + q.count} of the label`);
      }
      for (const p of ibst.updateView(size, q.last)) w.timestamp(p);
      updateProof(this.config, size, q.position, q.count, q.owner, NO_KEYS, w);
      completeFrontier(size, w);
    });
    const added = Array.from({ length: q.count }, (_, k) => cache.record(previous + 1 + k));
    const upLadder = updateLadderVersions(previous, q.count);
    await cache.preload(upLadder);
    return {
      fullTreeHead: await this.headFor(q.last, size),
      position: q.position,
      values: added.map((r) => r.value),
      info: added.map((r) => ({ opening: r.opening })),
      binaryLadder: upLadder.map((v) => cache.step(v, v <= previous && v < cache.count)),
      update: proof,
    };
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

function checkEntries(entries: readonly MonitorMapEntry[], size: number): void {
  check(entries.length <= 255, 'at most 255 monitoring map entries');
  for (const e of entries) {
    auint(e.position, 'position');
    aversion(e.version);
    if (e.position >= size) throw new DirectoryError('KT_INVALID_ARGUMENT', `monitored entry ${e.position} is beyond a log of ${size}`);
  }
}

function checkHeld(entries: readonly MonitorMapEntry[], cache: LabelCache): void {
  for (const e of entries) {
    if (cache.countAt(e.position) <= e.version) throw new DirectoryError('KT_INVALID_ARGUMENT', `log entry ${e.position} does not hold version ${e.version} of the label`);
  }
}

/** The builder's runs never read search keys: its {@link ProofWriter} ignores them. */
const NO_KEYS = (): LadderKey => ({ vrfOutput: ZERO_HASH });

/** A read the synchronous run could not answer from the cache. */
class Need extends Error {
  constructor(readonly load: () => Promise<void>) {
    super('not cached');
  }
}

/** What the builder knows about one label while it answers: versions, VRF proofs, entries, prefix proofs. */
class LabelCache {
  private readonly entries = new Map<number, LogEntry>();
  private readonly proofs = new Map<string, PrefixProof>();
  private readonly vrf = new Map<number, { output: Uint8Array; proof: Uint8Array }>();

  private constructor(
    private readonly store: DirectoryStore,
    private readonly keys: DirectoryKeyHolder,
    private readonly label: Uint8Array,
    private readonly positions: readonly number[],
    private readonly records: readonly StoredVersion[],
  ) {}

  static async load(store: DirectoryStore, keys: DirectoryKeyHolder, label: Uint8Array): Promise<LabelCache> {
    const count = await store.versionCount(label);
    const records: StoredVersion[] = [];
    for (let v = 0; v < count; v++) {
      const r = await store.labelVersion(label, v);
      if (!r) throw new DirectoryError('KT_INVALID_ARGUMENT', `version ${v} missing from the store`);
      records.push(r);
    }
    return new LabelCache(store, keys, label, records.map((r) => r.position), records);
  }

  /** Versions of the label in the current log. */
  get count(): number {
    return this.records.length;
  }

  /** A stored version (it must exist). */
  record(v: number): StoredVersion {
    const r = this.records[v];
    if (!r) throw new DirectoryError('KT_INVALID_ARGUMENT', `version ${v} missing from the store`);
    return r;
  }

  /** Versions of the label in log entry `position` (versions are added in order). */
  countAt(position: number): number {
    let n = 0;
    while (n < this.positions.length && this.positions[n]! <= position) n++;
    return n;
  }

  entry(position: number): LogEntry {
    const e = this.entries.get(position);
    if (e) return e;
    throw new Need(async () => {
      const got = await this.store.logEntry(position);
      if (!got) throw new DirectoryError('KT_INVALID_ARGUMENT', `log entry ${position} missing from the store`);
      this.entries.set(position, got);
    });
  }

  private key(v: number): { output: Uint8Array; proof: Uint8Array } {
    let k = this.vrf.get(v);
    if (!k) {
      const r = this.records[v];
      if (!r) throw new Need(() => this.preload([v]));
      k = { output: r.vrfOutput, proof: r.vrfProof };
      this.vrf.set(v, k);
    }
    return k;
  }

  /** Asks the key holder for the VRF proofs of `versions` the store does not hold (versions the label never had). */
  async preload(versions: readonly number[]): Promise<void> {
    for (const v of versions) {
      if (this.vrf.has(v) || this.records[v]) continue;
      this.vrf.set(v, await this.keys.vrfProve(this.label, v));
    }
  }

  /** A BinaryLadderStep for `v`, with its commitment when `withCommitment`. */
  step(v: number, withCommitment: boolean): BinaryLadderStep {
    const { proof } = this.key(v);
    return withCommitment ? { proof, commitment: this.records[v]!.commitment } : { proof };
  }

  /** The prefix proof for `versions` in entry `position`. */
  prefixProof(position: number, versions: readonly number[]): PrefixProof {
    const id = `${position}:${versions.join(',')}`;
    const p = this.proofs.get(id);
    if (p) return p;
    const root = this.entry(position).prefixTree;
    const keys = versions.map((v) => this.key(v).output);
    throw new Need(async () => {
      this.proofs.set(id, await prefixProve((v) => this.store.prefixNode(v), root, keys));
    });
  }
}

/** The builder's {@link ProofSource}: answers the algorithm from the store and records the proof. */
class ProofWriter implements ProofSource {
  readonly timestamps: number[] = [];
  readonly proofs: PrefixProof[] = [];
  private readonly known = new Map<number, number>();
  private readonly read: number[] = [];
  private readonly proven = new Set<number>();
  readonly exhausted = false;

  constructor(
    private readonly cache: LabelCache,
    private readonly retained: ReadonlySet<number>,
  ) {}

  timestamp(position: number): number {
    const t = this.known.get(position);
    if (t !== undefined) return t;
    const ts = this.cache.entry(position).timestamp;
    this.known.set(position, ts);
    if (!this.retained.has(position)) {
      this.timestamps.push(ts);
      this.read.push(position);
    }
    return ts;
  }

  ladder(position: number, versions: readonly number[], _keys: (v: number) => LadderKey, spec: LadderSpec): boolean[] {
    const greatest = this.cache.countAt(position) - 1;
    let used: readonly number[] = versions;
    if (spec.kind === 'search') {
      used = searchBinaryLadder(spec.target, greatest, spec.left, spec.right);
      if (used.length === 0 || used.some((v, i) => versions[i] !== v)) {
        throw new DirectoryError('KT_INVALID_ARGUMENT', `entry ${position}: the ladder the log holds is not a prefix of the one the user reads`);
      }
    }
    this.proofs.push(this.cache.prefixProof(position, used));
    this.proven.add(position);
    return used.map((v) => v <= greatest);
  }

  /** Positions whose timestamps were supplied, ascending: the leaves the inclusion proof covers. */
  supplied(): number[] {
    return [...this.read].sort((a, b) => a - b);
  }

  /** `prefix_roots`: the supplied entries without a prefix proof, left to right. */
  owedRoots(): Uint8Array[] {
    return this.supplied()
      .filter((p) => !this.proven.has(p))
      .map((p) => this.cache.entry(p).prefixTree);
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

