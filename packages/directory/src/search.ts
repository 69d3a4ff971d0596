/**
 * §13.1 SearchResponse: decoding, encoding, and the client's verification of it with the draft's
 * algorithms — §4.2 view update, §6.3 greatest-version search or §7.2 fixed-version search, the
 * §12.3 element ordering, the §12.1 inclusion proof over every entry whose timestamp was supplied,
 * and the §11.2 tree head signature.
 *
 *     struct {
 *       FullTreeHead full_tree_head;
 *       select (SearchRequest.version) { case absent: uint32 version; };
 *       opaque opening[Nc];
 *       UpdateValue value;
 *       BinaryLadderStep binary_ladder<0..2^8-1>;
 *       CombinedTreeProof search;
 *     } SearchResponse;
 */
import { Reader, Writer, equalBytes } from './bytes.js';
import { commit } from './commitment.js';
import { fixedVersionSearch, greatestVersionSearch, ProofReader, type LadderKey, type ProofSource, type RetainedEntries } from './combined.js';
import { DirectoryError } from './errors.js';
import { ibst } from './ibst.js';
import { baseBinaryLadder } from './ladder.js';
import { evaluateBatch, logLeafValue, type RetainedView } from './log-tree.js';
import {
  encodeFullTreeHead,
  readBinaryLadderStep,
  readCombinedTreeProof,
  readFullTreeHead,
  writeBinaryLadderStep,
  writeCombinedTreeProof,
  writeUpdateValue,
  type BinaryLadderStep,
  type CombinedTreeProof,
  type Configuration,
  type DeploymentMode,
  type FullTreeHead,
  type UpdateValue,
} from './structs.js';
import { NC } from './suite.js';
import { verifyTreeHead } from './tree-head.js';
import { vrfVerify } from './vrf.js';

/** §13.1 SearchResponse. `version` is present exactly when the request named none. */
export interface SearchResponse {
  readonly fullTreeHead: FullTreeHead;
  readonly version?: number;
  readonly opening: Uint8Array;
  readonly value: UpdateValue;
  readonly binaryLadder: readonly BinaryLadderStep[];
  readonly search: CombinedTreeProof;
}

/**
 * Encodes a SearchResponse.
 *
 * @example
 * const bytes = encodeSearchResponse(res, config.mode);
 */
export function encodeSearchResponse(r: SearchResponse, mode: DeploymentMode): Uint8Array {
  const w = new Writer().bytes(encodeFullTreeHead(r.fullTreeHead, mode));
  if (r.version !== undefined) w.u32(r.version);
  w.bytes(r.opening);
  writeUpdateValue(w, r.value);
  w.count(r.binaryLadder.length, 1);
  for (const s of r.binaryLadder) writeBinaryLadderStep(w, s);
  return writeCombinedTreeProof(w, r.search).finish();
}

/**
 * Decodes a SearchResponse from untrusted bytes; `versionRequested` is whether the request named a
 * version (which decides whether a `version` field is on the wire). Throws `KT_MALFORMED`.
 *
 * @example
 * const res = decodeSearchResponse(bytes, 1, false);
 */
export function decodeSearchResponse(b: Uint8Array, mode: DeploymentMode, versionRequested: boolean): SearchResponse {
  if (!(b instanceof Uint8Array)) throw new DirectoryError('KT_MALFORMED', 'response must be bytes');
  const r = new Reader(b);
  const fullTreeHead = readFullTreeHead(r, mode);
  const version = versionRequested ? undefined : r.u32();
  const opening = r.bytes(NC);
  const value: UpdateValue = mode === 2 ? { value: r.opaque(4), signature: r.opaque(2) } : { value: r.opaque(4) };
  const binaryLadder: BinaryLadderStep[] = [];
  for (let n = r.count(1); n > 0; n--) binaryLadder.push(readBinaryLadderStep(r));
  const search = readCombinedTreeProof(r);
  r.end();
  return { fullTreeHead, ...(version !== undefined ? { version } : {}), opening, value, binaryLadder, search };
}

/** What the client knew before the answer: its last verified tree size, and what it retained. */
export interface SearchContext {
  /** The tree size the request advertised (`last`), if any. */
  readonly last?: number;
  /** Timestamps (and prefix roots) the client retained for entries of its previous view. */
  readonly retained?: RetainedEntries;
  /** The full-subtree heads of the `last` tree, for the consistency half of the inclusion proof. */
  readonly retainedHeads?: readonly Uint8Array[];
  /** The root of the `last` tree, needed when the answer is `same`. */
  readonly lastRoot?: Uint8Array;
  /**
   * Keyward's rule (not katie's): after the algorithm, the answer also carries the timestamps of
   * every entry of the new frontier the algorithm did not ask for, so that the user can retain the
   * whole frontier (which the next `last` relies on) even when §4.2's view update is empty.
   */
  readonly completeFrontier?: boolean;
  /** Sees every log subtree value the inclusion proof determines (to keep the new full-subtree heads). */
  readonly observe?: (start: number, len: number, value: Uint8Array) => void;
}

/**
 * Reads the timestamps of the frontier entries of a log of `size` not yet known (Keyward's
 * frontier completion, see {@link SearchContext.completeFrontier}).
 *
 * @example
 * completeFrontier(size, reader);
 */
export function completeFrontier(size: number, reader: { timestamp(position: number): number }): void {
  for (const p of ibst.frontier(size)) reader.timestamp(p);
}

/** The verified result of a search. */
export interface VerifiedSearch {
  readonly treeSize: number;
  readonly root: Uint8Array | undefined;
  /** The version found; for a label with no versions, absent with `found: false`. */
  readonly found: boolean;
  readonly version: number;
  readonly value?: Uint8Array;
  readonly commitment?: Uint8Array;
  /** The §6.3 terminal entry (greatest-version search) or §7.2's (fixed). */
  readonly terminal?: number;
  /** `'expired'` when §7.2 refused the version as expired. */
  readonly expired: boolean;
  /** The rightmost entry's timestamp. */
  readonly rightmostTimestamp: number;
  /** Every entry's timestamp the client now knows. */
  readonly timestamps: ReadonlyMap<number, number>;
  /** The prefix roots this answer established (by a proof or `prefix_roots`), by position. */
  readonly prefixRoots: ReadonlyMap<number, Uint8Array>;
  /** The binary ladder's search keys, by version, with the commitments a lookup authenticated. */
  readonly ladder: ReadonlyMap<number, LadderKey>;
}

/**
 * Verifies a SearchResponse for `request` under `config`. Checks every VRF proof of the binary
 * ladder, the target's commitment from `opening` and `value`, the search algorithm's reading of the
 * CombinedTreeProof (exact consumption), and — unless `structureOnly` — the inclusion proof and the
 * tree head signature. A version that verifiably does not exist yields `found: false`.
 *
 * `structureOnly` exists for an advertised `last` whose retained subtree heads the caller does
 * not hold (the published vectors); the result's `root` is then undefined.
 *
 * @example
 * const r = verifySearchResponse(config, { label }, bytes, {});
 */
export function verifySearchResponse(
  config: Configuration,
  request: { readonly label: Uint8Array; readonly version?: number },
  response: SearchResponse | Uint8Array,
  ctx: SearchContext = {},
  structureOnly = false,
): VerifiedSearch {
  const res = response instanceof Uint8Array ? decodeSearchResponse(response, config.mode, request.version !== undefined) : response;
  const bad = (m: string): never => {
    throw new DirectoryError('KT_BAD_RESPONSE', m);
  };
  if ((request.version === undefined) !== (res.version !== undefined)) bad('the response version field does not match the request');
  let size: number;
  if (res.fullTreeHead.type === 'same') {
    if (ctx.last === undefined) bad('"same" tree head without an advertised size');
    size = ctx.last!;
  } else size = res.fullTreeHead.treeHead.treeSize;
  if (size < 1) bad('tree size 0');
  if (ctx.last !== undefined && size < ctx.last) throw new DirectoryError('KT_ROLLBACK', `the log shows size ${size}, the client advertised ${ctx.last}`);
  const target = request.version ?? res.version!;
  const reader = new ProofReader(res.search, ctx.retained);

  const ladder = baseBinaryLadder(target);
  if (res.binaryLadder.length > ladder.length) bad(`${res.binaryLadder.length} ladder steps for a ladder of ${ladder.length}`);
  const targetCommitment = commit(res.opening, request.label, target, res.value);
  const keys = new Map<number, LadderKey>();
  res.binaryLadder.forEach((step, i) => {
    const v = ladder[i]!;
    if (v === target && step.commitment !== undefined) bad('the target version carries a commitment');
    const vrfOutput = vrfVerify(config.vrfPublicKey, request.label, v, step.proof);
    const commitment = v === target ? targetCommitment : step.commitment;
    keys.set(v, commitment ? { vrfOutput, commitment } : { vrfOutput });
  });
  const key = (v: number): LadderKey => keys.get(v) ?? bad(`no binary ladder step for version ${v}`);
  const { found, expired, terminal } = runSearch(config, size, ctx.last, request.version === undefined, target, key, reader, ctx.completeFrontier === true);
  // An absent version binds no opening or value: require them empty so the answer is not malleable.
  if (!found && (res.opening.some((x) => x !== 0) || res.value.value.length > 0 || (res.value.signature?.length ?? 0) > 0)) {
    bad('an answer proving absence carries an opening or a value');
  }
  const root = finishCombinedProof(config, size, res.fullTreeHead, reader, ctx, structureOnly);
  const timestamps = reader.knownTimestamps();
  return {
    treeSize: size,
    root,
    found,
    version: target,
    ...(found ? { value: res.value.value, commitment: targetCommitment } : {}),
    ...(terminal !== undefined ? { terminal } : {}),
    expired,
    rightmostTimestamp: reader.timestamp(size - 1),
    timestamps,
    prefixRoots: reader.establishedRoots(),
    ladder: authenticated(keys, reader),
  };
}

/**
 * `keys` with only the commitments some prefix proof of the answer showed included.
 *
 * @example
 * const keys = authenticated(ladderKeys, reader);
 */
export function authenticated(keys: ReadonlyMap<number, LadderKey>, reader: ProofReader): Map<number, LadderKey> {
  const seen = reader.verifiedCommitments();
  const out = new Map<number, LadderKey>();
  for (const [v, k] of keys) {
    const c = seen.get(v);
    out.set(v, c && k.commitment && equalBytes(c, k.commitment) ? k : { vrfOutput: k.vrfOutput });
  }
  return out;
}

/**
 * The search half shared by the client and the builder: §4.2's view update, then §6.3
 * (`greatest`) or §7.2, then (Keyward) the frontier completion, all read through `source`.
 *
 * @example
 * const o = runSearch(config, size, last, true, claimed, key, reader, true);
 */
export function runSearch(
  config: Configuration,
  size: number,
  last: number | undefined,
  greatest: boolean,
  target: number,
  key: (v: number) => LadderKey,
  source: ProofSource,
  complete: boolean,
): { found: boolean; expired: boolean; terminal?: number } {
  // §4.2 / §12.3.1: the view update's timestamps come first.
  for (const p of ibst.updateView(size, last)) source.timestamp(p);
  let out: { found: boolean; expired: boolean; terminal?: number };
  if (greatest) {
    const o = greatestVersionSearch(size, config.reasonableMonitoringWindow, target, key, source);
    out = o.kind === 'found' ? { found: true, expired: false, terminal: o.terminal } : { found: false, expired: false };
  } else {
    const o = fixedVersionSearch(size, config.maximumLifetime, config.reasonableMonitoringWindow, target, key, source);
    out = o.kind === 'found' ? { found: true, expired: false, terminal: o.terminal } : { found: false, expired: o.kind === 'expired' };
  }
  if (complete) completeFrontier(size, source);
  return out;
}

/**
 * The common end of every §12.3 verification: reads the owed `prefix_roots`, requires exact
 * consumption, evaluates the inclusion proof over every entry whose timestamp was supplied (plus
 * consistency with the advertised `last`), and verifies the tree head signature (or, for `same`,
 * that the root is the retained one). Returns the root, or undefined with `structureOnly`.
 *
 * @example
 * const root = finishCombinedProof(config, size, res.fullTreeHead, reader, ctx);
 */
export function finishCombinedProof(
  config: Configuration,
  size: number,
  head: FullTreeHead,
  reader: ProofReader,
  ctx: SearchContext = {},
  structureOnly = false,
): Uint8Array | undefined {
  reader.readOwedRoots();
  reader.finish();
  const leaves = reader.leaves().map((l) => [l.position, logLeafValue({ timestamp: l.timestamp, prefixTree: l.prefixRoot })] as const);
  if (structureOnly) return undefined;
  let retainedView: RetainedView | undefined;
  if (ctx.last !== undefined) {
    if (!ctx.retainedHeads) throw new DirectoryError('KT_INVALID_ARGUMENT', 'retained subtree heads are needed with an advertised size');
    retainedView = { size: ctx.last, heads: ctx.retainedHeads };
  }
  const root = evaluateBatch(size, leaves, reader.proof.inclusion, retainedView, ctx.observe);
  if (head.type === 'same') {
    if (!ctx.lastRoot || !equalBytes(root, ctx.lastRoot)) throw new DirectoryError('KT_BAD_LOG_PROOF', 'the proof does not lead to the retained root');
  } else verifyTreeHead(config, head.treeHead, root);
  return root;
}

/** The tree size an answer speaks for: its head's, or the advertised one for `same`. @internal */
export function answerSize(head: FullTreeHead, last: number | undefined): number {
  const size = head.type === 'same' ? last : head.treeHead.treeSize;
  if (size === undefined) throw new DirectoryError('KT_BAD_RESPONSE', '"same" tree head without an advertised size');
  if (size < 1) throw new DirectoryError('KT_BAD_RESPONSE', 'tree size 0');
  if (last !== undefined && size < last) throw new DirectoryError('KT_ROLLBACK', `the log shows size ${size}, the client advertised ${last}`);
  return size;
}
