/**
 * §15.2 third-party auditing: the `AuditorUpdate` the log sends an auditor for every new log entry,
 * the prefix tree's before/after roots replayed from its proof, and a stateful {@link Auditor}.
 *
 *     struct {
 *       uint64 timestamp;
 *       PrefixLeaf added<0..2^16-1>;     // sorted by search key, no repeats
 *       PrefixLeaf removed<0..2^16-1>;   // sorted by search key, no repeats
 *       PrefixProof proof;               // one result per added, then per removed leaf
 *     } AuditorUpdate;
 *
 * The auditor keeps only what the next update needs: the log's size, full-subtree heads and
 * frontier timestamps, the previous timestamp and prefix root, and the search keys added since the
 * rightmost distinguished entry (a leaf may be removed only after a distinguished entry published
 * it, §15.2 step 5).
 */
import { Reader, Writer, equalBytes } from './bytes.js';
import { previousRightmostDistinguished, rightmostDistinguished } from './distinguished.js';
import { DirectoryError } from './errors.js';
import { ibst } from './ibst.js';
import { LogFrontier, logLeafValue } from './log-tree.js';
import { keyBit, prefixSkeleton, skelValue, type PrefixLookup, type Skel } from './prefix-tree.js';
import { readPrefixProof, writePrefixProof, type PrefixLeaf, type PrefixProof } from './structs.js';
import { NH, ZERO_HASH } from './suite.js';

function bad(message: string): never {
  throw new DirectoryError('KT_BAD_RESPONSE', message);
}

/** §15.2 AuditorUpdate. */
export interface AuditorUpdate {
  readonly timestamp: number;
  readonly added: readonly PrefixLeaf[];
  readonly removed: readonly PrefixLeaf[];
  readonly proof: PrefixProof;
}

/**
 * Encodes an AuditorUpdate.
 *
 * @example
 * const bytes = encodeAuditorUpdate(update);
 */
export function encodeAuditorUpdate(u: AuditorUpdate): Uint8Array {
  const w = new Writer().u64(u.timestamp);
  for (const list of [u.added, u.removed]) {
    w.count(list.length, 2);
    for (const l of list) w.bytes(l.vrfOutput).bytes(l.commitment);
  }
  return writePrefixProof(w, u.proof).finish();
}

/**
 * Decodes an AuditorUpdate from untrusted bytes; throws `KT_MALFORMED`.
 *
 * @example
 * const update = decodeAuditorUpdate(bytes);
 */
export function decodeAuditorUpdate(b: Uint8Array): AuditorUpdate {
  if (!(b instanceof Uint8Array)) throw new DirectoryError('KT_MALFORMED', 'update must be bytes');
  const r = new Reader(b);
  const timestamp = r.u64();
  const lists: PrefixLeaf[][] = [[], []];
  for (const list of lists) for (let n = r.count(2); n > 0; n--) list.push({ vrfOutput: r.bytes(NH), commitment: r.bytes(NH) });
  const proof = readPrefixProof(r);
  r.end();
  return { timestamp, added: lists[0]!, removed: lists[1]!, proof };
}

/** An empty slot, or a copath element listed as zeros (§12.2: a missing copath child). */
function isEmpty(s: Skel): boolean {
  return s.k === 'empty' || (s.k === 'unknown' && s.v !== undefined && equalBytes(s.v, ZERO_HASH));
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** The prefix roots before and after a mutation, replayed from its proof. */
export interface PrefixMutation {
  readonly before: Uint8Array;
  readonly after: Uint8Array;
  /**
   * A removal emptied a slot whose sibling is a bare copath hash: §3.3's collapse depends on that
   * node's type, which the proof does not reveal; `after` then assumes no collapse.
   */
  readonly siblingUncovered: boolean;
}

/**
 * Replays a prefix-tree mutation from the batch proof for its keys (results: `added` in order, then
 * `removed`): the root before, and the root after removing `removed` (collapsing a parent left with
 * a single leaf, §3.3) and inserting `added`. An added key shown included must be one that is also
 * removed (a replacement). Throws `KT_BAD_PREFIX_PROOF` or `KT_BAD_RESPONSE`.
 *
 * @example
 * const { before, after } = prefixBeforeAfter(added, [], proof);
 */
export function prefixBeforeAfter(added: readonly PrefixLeaf[], removed: readonly PrefixLeaf[], proof: PrefixProof): PrefixMutation {
  if (proof.results.length !== added.length + removed.length) bad('unexpected number of prefix proof results');
  const lookups: PrefixLookup[] = [];
  const results: PrefixProof['results'][number][] = [];
  added.forEach((a, i) => {
    const res = proof.results[i]!;
    if (res.type === 'inclusion') {
      const j = removed.findIndex((r) => equalBytes(r.vrfOutput, a.vrfOutput));
      if (j < 0) bad('the proof shows an added leaf already included');
      if (proof.results[added.length + j]!.depth !== res.depth) bad('two results for one search key disagree');
      return; // a replacement: its path is the removed leaf's
    }
    lookups.push({ vrfOutput: a.vrfOutput });
    results.push(res);
  });
  removed.forEach((r, j) => {
    const res = proof.results[added.length + j]!;
    if (res.type !== 'inclusion') bad('the proof shows a removed leaf as absent');
    lookups.push({ vrfOutput: r.vrfOutput, commitment: r.commitment });
    results.push(res);
  });
  const root = prefixSkeleton(lookups, { results, elements: proof.elements });
  const before = skelValue(root);
  // Parents kept on the no-collapse assumption; it matters only if one survives to the end
  // (an insertion through it rebuilds it, and the trie's shape depends only on its leaves).
  const assumed = new Set<Skel>();

  // Removal, with collapse: returns the replacement for `node` at `depth`.
  const remove = (node: Skel, key: Uint8Array, depth: number): Skel => {
    if (node.k === 'leaf') {
      if (!equalBytes(node.leaf.vrfOutput, key)) bad('a removed leaf is not where the proof put it');
      return { k: 'empty' };
    }
    if (node.k !== 'parent') return bad('a removed leaf is not where the proof put it');
    const right = keyBit(key, depth);
    const l = right ? node.l : remove(node.l, key, depth + 1);
    const r = right ? remove(node.r, key, depth + 1) : node.r;
    // A parent left with one empty child collapses into its other child if that is a leaf (or
    // empty); a bare hash there may be either, and is assumed to be a parent.
    if (isEmpty(l) || isEmpty(r)) {
      const other = isEmpty(l) ? r : l;
      if (isEmpty(other)) return { k: 'empty' };
      if (other.k === 'leaf' || other.k === 'empty') return other;
      if (other.k === 'unknown') {
        const kept: Skel = { k: 'parent', l, r };
        assumed.add(kept);
        return kept;
      }
    }
    return { k: 'parent', l, r };
  };
  // Insertion, splitting a leaf until the keys part.
  const insert = (node: Skel, leaf: PrefixLeaf, depth: number): Skel => {
    if (isEmpty(node)) return { k: 'leaf', leaf };
    if (node.k === 'unknown') return bad('the proof does not reach an added leaf\'s slot');
    if (depth >= NH * 8) return bad('two search keys are equal');
    if (node.k === 'leaf') {
      if (equalBytes(node.leaf.vrfOutput, leaf.vrfOutput)) bad('an added leaf is already present');
      const split: Skel = keyBit(node.leaf.vrfOutput, depth) ? { k: 'parent', l: { k: 'empty' }, r: node } : { k: 'parent', l: node, r: { k: 'empty' } };
      return insert(split, leaf, depth);
    }
    if (node.k !== 'parent') return { k: 'leaf', leaf };
    const p = node;
    return keyBit(leaf.vrfOutput, depth) ? { k: 'parent', l: p.l, r: insert(p.r, leaf, depth + 1) } : { k: 'parent', l: insert(p.l, leaf, depth + 1), r: p.r };
  };
  let after: Skel = root;
  for (const r of removed) after = remove(after, r.vrfOutput, 0);
  for (const a of added) after = insert(after, a, 0);
  const survives = (s: Skel): boolean => assumed.has(s) || (s.k === 'parent' && (survives(s.l) || survives(s.r)));
  return { before, after: skelValue(after), siblingUncovered: survives(after) };
}

/** A §15.2 auditor's state (plain data: persist it between updates). */
export interface AuditorState {
  readonly treeSize: number;
  readonly fullSubtrees: readonly Uint8Array[];
  /** Timestamps of the frontier of the log at `treeSize`, root first. */
  readonly frontierTimestamps: readonly number[];
  readonly timestamp: number;
  readonly prefixRoot: Uint8Array;
  /** Search keys added since the rightmost distinguished entry, with the entry that added each. */
  readonly inserted: readonly { readonly position: number; readonly vrfOutput: Uint8Array }[];
}

/**
 * A stateful §15.2 auditor: checks each AuditorUpdate against what it already verified, and
 * advances to the new log entry (whose tree head it may then sign as an AuditorTreeHead).
 *
 * @example
 * const auditor = new Auditor(604_800_000);
 * auditor.process(decodeAuditorUpdate(bytes)); auditor.root();
 */
export class Auditor {
  private current: AuditorState | undefined;

  constructor(
    private readonly window: number,
    state?: AuditorState,
  ) {
    this.current = state;
  }

  /** The state after the last accepted update. */
  get state(): AuditorState | undefined {
    return this.current;
  }

  /** The log root after the last accepted update. */
  root(): Uint8Array {
    const s = this.current;
    if (!s) throw new DirectoryError('KT_INVALID_ARGUMENT', 'the auditor has seen no log entry');
    return frontierOf(s).root();
  }

  /**
   * Verifies `update` (the next log entry) and, only if it is sound, advances the state.
   * Refusals are `KT_BAD_RESPONSE` (or a prefix-proof code) and change nothing.
   *
   * @example
   * auditor.process(update);
   */
  process(update: AuditorUpdate): void {
    const s = this.current;
    if (s && update.timestamp < s.timestamp) bad('the update\'s timestamp is less than the rightmost one');
    for (const list of [update.added, update.removed]) {
      for (let i = 1; i < list.length; i++) if (compareBytes(list[i - 1]!.vrfOutput, list[i]!.vrfOutput) >= 0) bad('added or removed leaves are not sorted and distinct');
    }
    if (update.proof.results.length !== update.added.length + update.removed.length) bad('unexpected number of prefix proof results');
    // Step 5: a leaf may be removed only once a distinguished entry has published it.
    const n = s?.treeSize ?? 0;
    const ts = new Map<number, number>(s ? ibst.frontier(n).map((p, i) => [p, s.frontierTimestamps[i]!]) : []);
    ts.set(n, update.timestamp);
    const stamp = (p: number): number => ts.get(p) ?? bad(`no timestamp for log entry ${p}`);
    if (update.removed.length > 0) {
      const prev = previousRightmostDistinguished(n + 1, this.window, stamp);
      if (prev === undefined) bad('a removed leaf is not eligible for removal');
      for (const r of update.removed) {
        if ((s?.inserted ?? []).some((i) => i.position > prev && equalBytes(i.vrfOutput, r.vrfOutput))) bad('a removed leaf is not eligible for removal');
      }
    }
    const { before, after } = prefixBeforeAfter(update.added, update.removed, update.proof);
    if (s && !equalBytes(before, s.prefixRoot)) bad('the proof does not start from the previous prefix root');
    const frontier = s ? frontierOf(s) : new LogFrontier();
    frontier.append(logLeafValue({ timestamp: update.timestamp, prefixTree: after }));
    const size = n + 1;
    const newTs = ibst.frontier(size).map(stamp);
    const stamps = new Map(ibst.frontier(size).map((p, i) => [p, newTs[i]!]));
    const rightmost = rightmostDistinguished(size, this.window, (p) => stamps.get(p) ?? bad(`no timestamp for log entry ${p}`));
    const inserted = [...(s?.inserted ?? []), ...update.added.map((a) => ({ position: n, vrfOutput: a.vrfOutput }))].filter((i) => rightmost === undefined || i.position > rightmost);
    this.current = { treeSize: size, fullSubtrees: frontier.fullSubtreeHeads, frontierTimestamps: newTs, timestamp: update.timestamp, prefixRoot: after, inserted };
  }
}

function frontierOf(s: AuditorState): LogFrontier {
  return LogFrontier.fromHeads(s.treeSize, s.fullSubtrees);
}
