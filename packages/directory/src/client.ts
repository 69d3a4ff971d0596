/**
 * The client side: verifies every search, update and monitor answer of a {@link DirectoryBuilder}
 * with the draft's algorithms (§4.2 view update, §6.3/§7.2 search, §8.2 contact monitoring, §8.3
 * owner initialization and monitoring, §12.3 proof reading, §12.1 inclusion and consistency) and
 * keeps what the draft has a user retain: the last verified tree head, its full-subtree heads, the
 * timestamps and prefix roots of its frontier, and per label the monitoring map and the search keys
 * (VRF outputs, commitments) the monitoring ladders need. It refuses a head older than the one it
 * holds (`KT_ROLLBACK`), a head of the same size with another root or one that does not extend its
 * own (`KT_FORK`), and any proof that does not check out; a refused answer changes nothing.
 */
import { abytes, auint, equalBytes, toHex } from './bytes.js';
import { commit as commitTo } from './commitment.js';
import { ProofReader, type LadderKey } from './combined.js';
import { rightmostDistinguished } from './distinguished.js';
import { DirectoryError, isDirectoryError } from './errors.js';
import { ibst } from './ibst.js';
import { evaluateBatch, fullSubtrees } from './log-tree.js';
import {
  contactMonitor,
  decodeMonitorResponse,
  decodeOwnerInitResponse,
  ownerInit,
  ownerInitLadder,
  ownerMonitor,
  type MonitorResponse,
  type OwnerInitResponse,
} from './monitor.js';
import { answerSize, authenticated, completeFrontier, decodeSearchResponse, finishCombinedProof, verifySearchResponse, type SearchContext, type SearchResponse } from './search.js';
import { alabel, aversion, type Configuration, type FullTreeHead, type MonitorMapEntry } from './structs.js';
import { verifyTreeHead } from './tree-head.js';
import { decodeUpdateResponse, updateLadderVersions, updateProof, type OwnerState, type UpdateResponse } from './update.js';
import { vrfVerify } from './vrf.js';

/** A frontier entry of the verified head: what the next `last` lets the log leave out. */
export interface FrontierEntry {
  readonly position: number;
  readonly timestamp: number;
  readonly prefixRoot: Uint8Array;
}

/** A tree head this client verified, and what it retains of that view. */
export interface VerifiedHead {
  readonly treeSize: number;
  readonly root: Uint8Array;
  readonly signature: Uint8Array;
  /** The full-subtree heads of the log at `treeSize`, left to right (§12.1 consistency). */
  readonly fullSubtrees: readonly Uint8Array[];
  /** Timestamp of the rightmost entry. */
  readonly timestamp: number;
  /** The frontier (§4.1) of the log at `treeSize`, root first. */
  readonly frontier: readonly FrontierEntry[];
}

/** A search key the client holds for a version of a label: VRF output, and commitment when it exists. */
export interface KnownVersion {
  readonly version: number;
  readonly vrfOutput: Uint8Array;
  readonly commitment?: Uint8Array;
}

/** What the client keeps per label (serializable: plain data). */
export interface LabelState {
  readonly label: Uint8Array;
  /** Search keys of every version the client has seen a ladder for. */
  readonly keys: readonly KnownVersion[];
  /** §8.2 monitoring map: label-version pairs looked up, by the entry that last proved them. */
  readonly monitoring: readonly MonitorMapEntry[];
  /** §8.3 owner state, after {@link DirectoryClient.verifyOwnerInit}. */
  readonly owner?: {
    /** The rightmost distinguished entry verified. */
    readonly start: number;
    /** The greatest version at `start` (−1: none). */
    readonly greatestAtStart: number;
    /** Versions this owner added after `start`, with the log entry that added each. */
    readonly additions: readonly { readonly version: number; readonly position: number }[];
  };
}

/** What a verified search proved. */
export interface SearchResult {
  readonly version: number;
  readonly value: Uint8Array;
  readonly commitment: Uint8Array;
  readonly vrfOutput: Uint8Array;
  /** The terminal log entry of the search (§6.3 / §7.2), now in the monitoring map. */
  readonly position: number;
}

/** Client options. */
export interface ClientOptions {
  /** Clock for the freshness check; defaults to `Date.now`. */
  readonly now?: () => number;
  /** A head verified earlier (persisted state). */
  readonly head?: VerifiedHead;
  /** Label states kept earlier (persisted state). */
  readonly labels?: readonly LabelState[];
}

function bad(message: string): never {
  throw new DirectoryError('KT_BAD_RESPONSE', message);
}

/** A response is bytes or a decoded structure; anything else is `KT_MALFORMED`. */
function aresponse(r: unknown): void {
  if (!(r instanceof Uint8Array) && (typeof r !== 'object' || r === null || !('fullTreeHead' in r))) {
    throw new DirectoryError('KT_MALFORMED', 'a response must be bytes or a decoded response');
  }
}

/**
 * Verifies directory answers and keeps the last verified tree head and the monitoring state.
 *
 * @example
 * const client = new DirectoryClient(config);
 * const found = client.verifySearch({ label }, await log.search({ label, last: client.treeSize }));
 */
export class DirectoryClient {
  private state: VerifiedHead | undefined;
  private labelStates = new Map<string, LabelState>();
  private readonly now: () => number;

  constructor(
    readonly config: Configuration,
    options: ClientOptions = {},
  ) {
    if (config.mode !== 1) throw new DirectoryError('KT_INVALID_ARGUMENT', 'only the contactMonitoring deployment mode is implemented');
    this.now = options.now ?? Date.now;
    this.state = options.head;
    for (const l of options.labels ?? []) this.labelStates.set(toHex(l.label), l);
  }

  /** The last verified head, or undefined before the first answer. */
  get head(): VerifiedHead | undefined {
    return this.state;
  }

  /** The size to advertise as `last` in the next request. */
  get treeSize(): number | undefined {
    return this.state?.treeSize;
  }

  /** Every label's state (to persist with {@link head}). */
  get labels(): LabelState[] {
    return [...this.labelStates.values()];
  }

  /** One label's state, if the client holds any. */
  labelState(label: Uint8Array): LabelState | undefined {
    return this.labelStates.get(toHex(label));
  }

  /** The §12.3 context of the next answer: the advertised size and what the client retained. */
  private context(observed: Map<string, Uint8Array>): SearchContext {
    const s = this.state;
    const observe = (start: number, len: number, v: Uint8Array): void => void observed.set(`${start}/${len}`, v);
    if (!s) return { completeFrontier: true, observe };
    return {
      last: s.treeSize,
      retained: {
        timestamps: new Map(s.frontier.map((f) => [f.position, f.timestamp])),
        prefixRoots: new Map(s.frontier.map((f) => [f.position, f.prefixRoot])),
      },
      retainedHeads: s.fullSubtrees,
      lastRoot: s.root,
      completeFrontier: true,
      observe,
    };
  }

  /**
   * Runs one verification; a proof that recomputes a retained subtree head differently is a fork.
   * Returns the new head (checked for rollback, fork, freshness), not yet stored.
   */
  private verifyAnswer(
    head: FullTreeHead,
    run: (ctx: SearchContext) => { size: number; root: Uint8Array; timestamps: ReadonlyMap<number, number>; prefixRoots: ReadonlyMap<number, Uint8Array> },
  ): VerifiedHead {
    const prev = this.state;
    const observed = new Map<string, Uint8Array>();
    let out: ReturnType<typeof run>;
    try {
      out = run(this.context(observed));
    } catch (e) {
      if (isDirectoryError(e, 'KT_BAD_LOG_PROOF') && /retained head/.test(e.message)) throw new DirectoryError('KT_FORK', e.message, { cause: e });
      throw e;
    }
    const { size, root } = out;
    if (prev && size === prev.treeSize && !equalBytes(prev.root, root)) throw new DirectoryError('KT_FORK', `two roots for tree size ${size}`);
    const ts = out.timestamps.get(size - 1) ?? bad('no timestamp for the rightmost entry');
    const now = this.now();
    if (ts > now + this.config.maxAhead) bad('the rightmost entry is too far in the future');
    if (head.type === 'updated' && now - ts > this.config.maxBehind) bad('the tree head is stale');
    if (prev && ts < prev.timestamp) bad('the rightmost timestamp went backwards');
    const heads = fullSubtrees(size).map((r) => observed.get(`${r.start}/${r.len}`) ?? bad('the proof does not determine the full subtrees'));
    const kept = new Map((prev?.frontier ?? []).map((f) => [f.position, f.prefixRoot]));
    const frontier = ibst.frontier(size).map((position) => ({
      position,
      timestamp: out.timestamps.get(position) ?? bad(`no timestamp for frontier entry ${position}`),
      prefixRoot: out.prefixRoots.get(position) ?? kept.get(position) ?? bad(`no prefix root for frontier entry ${position}`),
    }));
    const signature = head.type === 'same' ? prev!.signature : head.treeHead.signature;
    return { treeSize: size, root, signature, fullSubtrees: heads, timestamp: ts, frontier };
  }

  private withKeys(state: LabelState | undefined, label: Uint8Array, keys: ReadonlyMap<number, LadderKey>): LabelState {
    const known = new Map((state?.keys ?? []).map((k) => [k.version, k]));
    for (const [version, k] of keys) if (!known.get(version)?.commitment) known.set(version, { version, ...k });
    return {
      label,
      monitoring: state?.monitoring ?? [],
      ...(state?.owner ? { owner: state.owner } : {}),
      keys: [...known.values()].sort((a, b) => a.version - b.version),
    };
  }

  private keyOf(state: LabelState | undefined): (v: number) => LadderKey {
    const m = new Map((state?.keys ?? []).map((k) => [k.version, k]));
    return (v) => m.get(v) ?? bad(`this client holds no search key for version ${v}`);
  }

  /**
   * Verifies a §13.1 SearchResponse to `{ label, version? }`, asked with `last: client.treeSize`.
   * A found version is added to the label's monitoring map; a verified absence throws
   * `KT_NOT_FOUND` (after the head is updated).
   *
   * @example
   * const { version, value } = client.verifySearch({ label }, bytes);
   */
  verifySearch(request: { readonly label: Uint8Array; readonly version?: number }, response: SearchResponse | Uint8Array): SearchResult {
    alabel(request.label);
    if (request.version !== undefined) aversion(request.version);
    aresponse(response);
    const res = response instanceof Uint8Array ? decodeSearchResponse(response, this.config.mode, request.version !== undefined) : response;
    let found: ReturnType<typeof verifySearchResponse> | undefined;
    const head = this.verifyAnswer(res.fullTreeHead, (ctx) => {
      found = verifySearchResponse(this.config, request, res, ctx);
      return { size: found.treeSize, root: found.root!, timestamps: found.timestamps, prefixRoots: found.prefixRoots };
    });
    const r = found!;
    if (r.expired) bad('the log answered with an expired version');
    this.state = head;
    if (!r.found) throw new DirectoryError('KT_NOT_FOUND', request.version === undefined ? 'the label has no versions' : `version ${request.version} does not exist`);
    const key = toHex(request.label);
    const st = this.withKeys(this.labelStates.get(key), request.label, r.ladder);
    const position = r.terminal!;
    const monitoring = st.monitoring.some((m) => m.version === r.version) ? st.monitoring : [...st.monitoring, { position, version: r.version }];
    this.labelStates.set(key, { ...st, monitoring });
    return { version: r.version, value: r.value!, commitment: r.commitment!, vrfOutput: r.ladder.get(r.version)!.vrfOutput, position };
  }

  /**
   * Verifies that the log shows the owner's own update: the greatest version now carries exactly
   * the submitted value (at `expectedVersion`, if given). `position` is the log entry that added it
   * (`DirectoryBuilder.update` returns it); an owner that ran {@link verifyOwnerInit} records it and
   * expects it from then on. A refused answer changes nothing (`KT_BAD_RESPONSE`).
   *
   * @example
   * const r = client.verifyUpdate({ label, value, expectedVersion: 3, position }, await log.search({ label, last }));
   */
  verifyUpdate(
    request: { readonly label: Uint8Array; readonly value: Uint8Array; readonly expectedVersion?: number; readonly position?: number },
    response: SearchResponse | Uint8Array,
  ): SearchResult {
    abytes(request.value, 'value');
    if (request.position !== undefined) auint(request.position, 'position');
    const before = this.state;
    const labelsBefore = new Map(this.labelStates);
    let r: SearchResult;
    try {
      r = this.verifySearch({ label: request.label }, response);
    } catch (e) {
      this.state = before;
      this.labelStates = labelsBefore;
      if (isDirectoryError(e, 'KT_NOT_FOUND')) throw new DirectoryError('KT_BAD_RESPONSE', 'the log shows no version of the label', { cause: e });
      throw e;
    }
    if (!equalBytes(r.value, request.value) || (request.expectedVersion !== undefined && r.version !== request.expectedVersion)) {
      this.state = before;
      this.labelStates = labelsBefore;
      throw new DirectoryError('KT_BAD_RESPONSE', 'the log does not show the submitted value as the greatest version');
    }
    const key = toHex(request.label);
    const st = this.labelStates.get(key)!;
    if (st.owner) {
      const position = request.position ?? r.position;
      this.labelStates.set(key, { ...st, owner: { ...st.owner, additions: [...st.owner.additions, { version: r.version, position }] } });
    }
    return r;
  }

  /**
   * The §8.3 owner state of `label` as §9.1 reads it (after {@link verifyOwnerInit}).
   *
   * @example
   * const owner = client.ownerState(label);
   */
  ownerState(label: Uint8Array): OwnerState {
    alabel(label);
    const o = this.labelStates.get(toHex(label))?.owner;
    if (!o) throw new DirectoryError('KT_INVALID_ARGUMENT', 'this client is not the owner monitor of the label (run ownerInit first)');
    return { starting: o.start, versionAtStarting: o.greatestAtStart, upcoming: o.additions.map((a) => a.position).sort((a, b) => a - b) };
  }

  /**
   * Verifies a §13.5 UpdateResponse (§9.1) for the `values` this owner submitted for `label`: the
   * log added exactly them, as the next versions, at the entry it names, and no version the owner
   * did not add appeared since its last update (`KT_UNEXPECTED_VERSION`). Records the new versions
   * in the owner state and the monitoring map. A refused answer changes nothing.
   *
   * @example
   * client.verifyUpdateResponse({ label, values: [key] }, await log.updateResponse({ ... }));
   */
  verifyUpdateResponse(request: { readonly label: Uint8Array; readonly values: readonly Uint8Array[] }, response: UpdateResponse | Uint8Array): { versions: number[]; position: number } {
    alabel(request.label);
    const owner = this.ownerState(request.label);
    aresponse(response);
    const res = response instanceof Uint8Array ? decodeUpdateResponse(response, this.config.mode) : response;
    const count = request.values.length;
    if (count < 1 || res.values.length !== count || res.info.length !== count) bad('the response does not carry the submitted values');
    res.values.forEach((v, k) => {
      if (!equalBytes(v, request.values[k]!)) bad('the log added another value than the one submitted');
    });
    const previous = owner.versionAtStarting + owner.upcoming.length;
    const versions = updateLadderVersions(previous, count);
    if (res.binaryLadder.length !== versions.length) bad(`${res.binaryLadder.length} ladder steps for ${versions.length} versions`);
    const keys = new Map<number, LadderKey>();
    res.binaryLadder.forEach((step, i) => {
      const v = versions[i]!;
      const vrfOutput = vrfVerify(this.config.vrfPublicKey, request.label, v, step.proof);
      const k = v - previous - 1;
      if (k >= 0 && k < count) {
        if (step.commitment) bad('a new version carries a commitment');
        keys.set(v, { vrfOutput, commitment: commitTo(res.info[k]!.opening, request.label, v, { value: res.values[k]! }) });
      } else keys.set(v, step.commitment ? { vrfOutput, commitment: step.commitment } : { vrfOutput });
    });
    const key = (v: number): LadderKey => keys.get(v) ?? bad(`no ladder step for version ${v}`);
    let outcome: ReturnType<typeof updateProof> | undefined;
    let verified = keys;
    const head = this.verifyCombined(res.fullTreeHead, res.update, (size, reader) => {
      outcome = updateProof(this.config, size, res.position, count, owner, key, reader);
      verified = authenticated(keys, reader);
      // The new versions' commitments the owner computed itself, from its own values.
      for (let v = previous + 1; v <= previous + count; v++) verified.set(v, keys.get(v)!);
    });
    this.state = head;
    const label = toHex(request.label);
    const st = this.withKeys(this.labelStates.get(label), request.label, verified);
    const added = Array.from({ length: count }, (_, k) => ({ version: previous + 1 + k, position: res.position }));
    const o = st.owner!;
    const c = outcome!.contact;
    this.labelStates.set(label, {
      ...st,
      monitoring: c && !st.monitoring.some((m) => m.version === c.version) ? [...st.monitoring, c] : st.monitoring,
      owner: { ...o, additions: [...o.additions, ...added] },
    });
    return { versions: added.map((a) => a.version), position: res.position };
  }

  /**
   * The §13.2 ContactMonitorRequest for `label`: this client's monitoring map.
   *
   * @example
   * const res = await log.contactMonitor(client.contactMonitorRequest(label));
   */
  contactMonitorRequest(label: Uint8Array): { last?: number; label: Uint8Array; entries: MonitorMapEntry[] } {
    alabel(label);
    const st = this.labelStates.get(toHex(label));
    if (!st) throw new DirectoryError('KT_INVALID_ARGUMENT', 'this client monitors nothing for the label');
    return { ...(this.state ? { last: this.state.treeSize } : {}), label, entries: [...st.monitoring] };
  }

  private readMonitor(response: MonitorResponse | Uint8Array): MonitorResponse {
    aresponse(response);
    return response instanceof Uint8Array ? decodeMonitorResponse(response, this.config.mode) : response;
  }

  /** Runs a monitor-type verification over a fresh ProofReader and returns the new head. */
  private verifyCombined(
    head: FullTreeHead,
    proof: MonitorResponse['proof'],
    algorithm: (size: number, reader: ProofReader) => void,
  ): VerifiedHead {
    return this.verifyAnswer(head, (ctx) => {
      const size = answerSize(head, ctx.last);
      const reader = new ProofReader(proof, ctx.retained);
      for (const p of ibst.updateView(size, ctx.last)) reader.timestamp(p);
      algorithm(size, reader);
      completeFrontier(size, reader);
      const root = finishCombinedProof(this.config, size, head, reader, ctx)!;
      return { size, root, timestamps: reader.knownTimestamps(), prefixRoots: reader.establishedRoots() };
    });
  }

  /**
   * Verifies a §13.2 ContactMonitorResponse to {@link contactMonitorRequest}: §8.2 re-proves every
   * monitored version (a version no longer present is `KT_BAD_RESPONSE`) and moves the map up.
   *
   * @example
   * client.verifyContactMonitor(label, await log.contactMonitor(client.contactMonitorRequest(label)));
   */
  verifyContactMonitor(label: Uint8Array, response: MonitorResponse | Uint8Array): void {
    alabel(label);
    const key = toHex(label);
    const st = this.labelStates.get(key);
    if (!st) throw new DirectoryError('KT_INVALID_ARGUMENT', 'this client monitors nothing for the label');
    const res = this.readMonitor(response);
    let map: MonitorMapEntry[] = [];
    const head = this.verifyCombined(res.fullTreeHead, res.proof, (size, reader) => {
      map = contactMonitor(size, this.config.reasonableMonitoringWindow, st.monitoring, this.keyOf(st), reader);
    });
    this.state = head;
    this.labelStates.set(key, { ...st, monitoring: map });
  }

  /**
   * The §13.3 OwnerInitRequest for `label`, starting at the rightmost distinguished entry of the
   * verified head.
   *
   * @example
   * const req = client.ownerInitRequest(label);
   */
  ownerInitRequest(label: Uint8Array): { last: number; label: Uint8Array; start: number } {
    alabel(label);
    const s = this.state;
    if (!s) throw new DirectoryError('KT_INVALID_ARGUMENT', 'this client has no tree head yet');
    const ts = new Map(s.frontier.map((f) => [f.position, f.timestamp]));
    const start = rightmostDistinguished(s.treeSize, this.config.reasonableMonitoringWindow, (p) => ts.get(p)!) ?? ibst.root(s.treeSize);
    return { last: s.treeSize, label, start };
  }

  /**
   * Verifies a §13.3 OwnerInitResponse to `request` and makes this client the label's owner
   * monitor: it then expects exactly the versions it adds ({@link verifyUpdate}), plus the
   * `additions` it made before (version and log entry, as `DirectoryBuilder.update` returned them)
   * right of `start`. A ladder that
   * does not show the greatest version claimed is `KT_UNEXPECTED_VERSION`.
   *
   * @example
   * client.verifyOwnerInit(req, await log.ownerInit(req));
   */
  verifyOwnerInit(
    request: { readonly label: Uint8Array; readonly start: number; readonly additions?: readonly { readonly version: number; readonly position: number }[] },
    response: OwnerInitResponse | Uint8Array,
  ): { greatestVersions: readonly number[] } {
    alabel(request.label);
    auint(request.start, 'start');
    for (const a of request.additions ?? []) {
      aversion(a.version);
      auint(a.position, 'position');
    }
    aresponse(response);
    const res = response instanceof Uint8Array ? decodeOwnerInitResponse(response, this.config.mode) : response;
    const versions = ownerInitLadder(res.greatestVersions);
    if (res.binaryLadder.length !== versions.length) bad(`${res.binaryLadder.length} ladder steps for ${versions.length} versions`);
    const keys = new Map<number, LadderKey>();
    res.binaryLadder.forEach((s, i) => {
      const v = versions[i]!;
      keys.set(v, { vrfOutput: vrfVerify(this.config.vrfPublicKey, request.label, v, s.proof), ...(s.commitment ? { commitment: s.commitment } : {}) });
    });
    let verified = keys;
    const head = this.verifyCombined(res.fullTreeHead, res.proof, (size, reader) => {
      if (request.start >= size) bad(`start ${request.start} is beyond a log of ${size}`);
      ownerInit(size, this.config.maximumLifetime, request.start, res.greatestVersions, (v) => keys.get(v) ?? bad(`no ladder step for version ${v}`), reader);
      verified = authenticated(keys, reader);
    });
    this.state = head;
    const key = toHex(request.label);
    const st = this.withKeys(this.labelStates.get(key), request.label, verified);
    const additions = (request.additions ?? []).filter((a) => a.position > request.start);
    this.labelStates.set(key, { ...st, owner: { start: request.start, greatestAtStart: res.greatestVersions[0] ?? -1, additions } });
    return { greatestVersions: res.greatestVersions };
  }

  /**
   * The §13.4 OwnerMonitorRequest for `label` (after {@link verifyOwnerInit}).
   *
   * @example
   * const req = client.ownerMonitorRequest(label);
   */
  ownerMonitorRequest(label: Uint8Array): { last?: number; label: Uint8Array; entries: MonitorMapEntry[]; start: number; greatestVersion?: number } {
    alabel(label);
    const st = this.labelStates.get(toHex(label));
    if (!st?.owner) throw new DirectoryError('KT_INVALID_ARGUMENT', 'this client is not the owner monitor of the label (run ownerInit first)');
    const greatest = Math.max(st.owner.greatestAtStart, ...st.owner.additions.map((a) => a.version));
    return {
      ...(this.state ? { last: this.state.treeSize } : {}),
      label,
      entries: [...st.monitoring],
      start: st.owner.start,
      ...(greatest >= 0 ? { greatestVersion: greatest } : {}),
    };
  }

  /**
   * Verifies a §13.4 OwnerMonitorResponse: contact monitoring of the label's map, then every
   * distinguished entry right of the owner's start shows exactly the version the owner holds there.
   * Anything else is `KT_UNEXPECTED_VERSION`: a key the owner did not add.
   *
   * @example
   * client.verifyOwnerMonitor(label, await log.ownerMonitor(client.ownerMonitorRequest(label)));
   */
  verifyOwnerMonitor(label: Uint8Array, response: MonitorResponse | Uint8Array): { reached?: number } {
    alabel(label);
    const key = toHex(label);
    const st = this.labelStates.get(key);
    const owner = st?.owner;
    if (!st || !owner) throw new DirectoryError('KT_INVALID_ARGUMENT', 'this client is not the owner monitor of the label (run ownerInit first)');
    const res = this.readMonitor(response);
    const expected = (p: number): number => {
      let g = owner.greatestAtStart;
      for (const a of owner.additions) if (a.position <= p && a.version > g) g = a.version;
      return g;
    };
    let map: MonitorMapEntry[] = [];
    let reached: number | undefined;
    const head = this.verifyCombined(res.fullTreeHead, res.proof, (size, reader) => {
      const keys = this.keyOf(st);
      map = contactMonitor(size, this.config.reasonableMonitoringWindow, st.monitoring, keys, reader);
      reached = ownerMonitor(size, this.config.reasonableMonitoringWindow, owner.start, expected, keys, reader);
    });
    this.state = head;
    const start = reached ?? owner.start;
    this.labelStates.set(key, { ...st, monitoring: map, owner: { start, greatestAtStart: expected(start), additions: owner.additions.filter((a) => a.position > start) } });
    return reached === undefined ? {} : { reached };
  }

  /**
   * Compares this client's head with another signed head (gossip between clients or from a
   * witness). Equal sizes must have equal roots; otherwise the smaller head must be extended by
   * the larger one, which `consistency` (a §12.1 proof from the log) must show.
   * Throws `KT_FORK` when the two cannot both be honest.
   *
   * @example
   * client.checkHead(other, await log.consistency(client.treeSize, other.treeSize));
   */
  checkHead(other: { readonly treeSize: number; readonly root: Uint8Array; readonly signature: Uint8Array }, consistency?: readonly Uint8Array[]): void {
    const mine = this.state;
    if (!mine) throw new DirectoryError('KT_INVALID_ARGUMENT', 'this client has no tree head yet');
    auint(other.treeSize, 'tree size');
    verifyTreeHead(this.config, { treeSize: other.treeSize, signature: other.signature }, other.root);
    if (other.treeSize === mine.treeSize) {
      if (!equalBytes(other.root, mine.root)) throw new DirectoryError('KT_FORK', `two signed roots for tree size ${mine.treeSize}`);
      return;
    }
    if (other.treeSize < mine.treeSize) throw new DirectoryError('KT_INVALID_ARGUMENT', 'the other head is older: let its holder run the check');
    if (!consistency) throw new DirectoryError('KT_INVALID_ARGUMENT', 'a consistency proof is needed for heads of different sizes');
    let root: Uint8Array;
    try {
      root = evaluateBatch(other.treeSize, [], consistency, { size: mine.treeSize, heads: mine.fullSubtrees });
    } catch (e) {
      throw new DirectoryError('KT_FORK', 'the larger head is not consistent with this one', { cause: e });
    }
    if (!equalBytes(root, other.root)) throw new DirectoryError('KT_FORK', 'the larger head does not extend this one');
  }

  /**
   * The signed head to gossip to other clients or witnesses.
   *
   * @example
   * const h = client.signedHead();
   */
  signedHead(): { treeSize: number; root: Uint8Array; signature: Uint8Array } {
    const s = this.state;
    if (!s) throw new DirectoryError('KT_INVALID_ARGUMENT', 'this client has no tree head yet');
    return { treeSize: s.treeSize, root: s.root, signature: s.signature };
  }
}
