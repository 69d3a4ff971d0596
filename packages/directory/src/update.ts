/**
 * §9.1 update proofs and the §13.5 UpdateResponse that carries them.
 *
 * After the log adds `count` new versions of a label in log entry `position`, the owner checks,
 * reading a CombinedTreeProof in this order (after §4.2's view update):
 *
 * 1. the previous tree (`position` entries): from its first entry that is not distinguished in
 *    the current tree, along the rest of its frontier, a search ladder at every entry right of the
 *    owner's last update showing the owner's previous greatest version as the greatest (or no
 *    version at all) — so the log cannot have created a version and hidden it; lookups that an
 *    earlier greatest-version search already settled are omitted;
 * 2. the new entry: if it is not distinguished, a search ladder showing the new greatest version;
 *    then, in either case, one more prefix proof for the new versions that ladder does not look up.
 *
 * The owner state is the §8.3 one: `starting` (rightmost distinguished entry verified),
 * `versionAtStarting` (−1: none) and `upcoming`, the log entry of every version added since.
 */
import { Reader, Writer } from './bytes.js';
import type { LadderKey, ProofSource } from './combined.js';
import { isDistinguished } from './distinguished.js';
import { DirectoryError } from './errors.js';
import { ibst } from './ibst.js';
import { interpretSearchLadder, searchBinaryLadder } from './ladder.js';
import {
  encodeFullTreeHead,
  readBinaryLadderStep,
  readCombinedTreeProof,
  readFullTreeHead,
  writeBinaryLadderStep,
  writeCombinedTreeProof,
  type BinaryLadderStep,
  type CombinedTreeProof,
  type Configuration,
  type DeploymentMode,
  type FullTreeHead,
  type MonitorMapEntry,
} from './structs.js';
import { NC } from './suite.js';

function bad(message: string): never {
  throw new DirectoryError('KT_BAD_RESPONSE', message);
}

/** The §8.3 state of a label's owner. */
export interface OwnerState {
  /** The rightmost distinguished log entry owner monitoring verified. */
  readonly starting: number;
  /** The greatest version at `starting`, or −1 when the label did not exist there. */
  readonly versionAtStarting: number;
  /** The log entry of each version added after `starting`, ascending. */
  readonly upcoming: readonly number[];
}

/**
 * The greatest version the owner expects at log entry `x`.
 *
 * @example
 * ownerGreatestAt({ starting: 3, versionAtStarting: 3, upcoming: [4, 5] }, 4) // 4
 */
export function ownerGreatestAt(owner: OwnerState, x: number): number {
  return owner.versionAtStarting + owner.upcoming.filter((p) => p <= x).length;
}

/** §13.5 UpdateInfo: the opening of a new version (and the signature under thirdPartyManagement). */
export interface UpdateInfo {
  readonly opening: Uint8Array;
  readonly signature?: Uint8Array;
}

/**
 * §13.5 UpdateResponse (the shape katie's structs give it; its bytes were never measured):
 *
 *     struct {
 *       FullTreeHead full_tree_head;
 *       uint64 position;
 *       LabelValue values<0..2^8-1>;
 *       UpdateInfo info<0..2^8-1>;
 *       BinaryLadderStep binary_ladder<0..2^8-1>;
 *       CombinedTreeProof update;
 *     } UpdateResponse;
 */
export interface UpdateResponse {
  readonly fullTreeHead: FullTreeHead;
  readonly position: number;
  readonly values: readonly Uint8Array[];
  readonly info: readonly UpdateInfo[];
  readonly binaryLadder: readonly BinaryLadderStep[];
  readonly update: CombinedTreeProof;
}

/**
 * Encodes an UpdateResponse.
 *
 * @example
 * const bytes = encodeUpdateResponse(res, 1);
 */
export function encodeUpdateResponse(r: UpdateResponse, mode: DeploymentMode): Uint8Array {
  const w = new Writer().bytes(encodeFullTreeHead(r.fullTreeHead, mode)).u64(r.position);
  w.count(r.values.length, 1);
  for (const v of r.values) w.opaque(v, 4);
  w.count(r.info.length, 1);
  for (const i of r.info) {
    w.bytes(i.opening);
    if (mode === 2) w.opaque(i.signature ?? new Uint8Array(0), 2);
  }
  w.count(r.binaryLadder.length, 1);
  for (const s of r.binaryLadder) writeBinaryLadderStep(w, s);
  return writeCombinedTreeProof(w, r.update).finish();
}

/**
 * Decodes an UpdateResponse from untrusted bytes; throws `KT_MALFORMED`.
 *
 * @example
 * const res = decodeUpdateResponse(bytes, 1);
 */
export function decodeUpdateResponse(b: Uint8Array, mode: DeploymentMode): UpdateResponse {
  if (!(b instanceof Uint8Array)) throw new DirectoryError('KT_MALFORMED', 'response must be bytes');
  const r = new Reader(b);
  const fullTreeHead = readFullTreeHead(r, mode);
  const position = r.u64();
  const values: Uint8Array[] = [];
  for (let n = r.count(1); n > 0; n--) values.push(r.opaque(4));
  const info: UpdateInfo[] = [];
  for (let n = r.count(1); n > 0; n--) info.push(mode === 2 ? { opening: r.bytes(NC), signature: r.opaque(2) } : { opening: r.bytes(NC) });
  const binaryLadder: BinaryLadderStep[] = [];
  for (let n = r.count(1); n > 0; n--) binaryLadder.push(readBinaryLadderStep(r));
  const update = readCombinedTreeProof(r);
  r.end();
  return { fullTreeHead, position, values, info, binaryLadder, update };
}

/**
 * The versions an UpdateResponse's binary ladder covers, ascending: every version §9.1 may look up
 * when the owner's greatest version goes from `previous` (−1: none) to `previous + count` — the
 * search ladders of both (version 0 for none) and the new versions. Keyward's reading: the draft
 * leaves the binary ladder of an UpdateResponse unspecified, and katie never served one.
 *
 * @example
 * updateLadderVersions(3, 1) // [0, 1, 3, 4, 5, 6, 7]
 */
export function updateLadderVersions(previous: number, count: number): number[] {
  const greatest = previous + count;
  const set = new Set<number>(previous >= 0 ? searchBinaryLadder(previous, previous) : [0]);
  for (const v of searchBinaryLadder(greatest, greatest)) set.add(v);
  for (let v = previous + 1; v <= greatest; v++) set.add(v);
  return [...set].sort((a, b) => a - b);
}

/** What lookups established, per entry, to omit later (the §6.2 left-inclusion / right-non-inclusion sets). */
class Known {
  private readonly entries: { at: number; included: number[]; absent: number[] }[] = [];

  add(at: number, versions: readonly number[], included: (v: number, i: number) => boolean): void {
    this.entries.push({ at, included: versions.filter(included), absent: versions.filter((v, i) => !included(v, i)) });
  }

  sets(x: number): { left: number[]; right: number[] } {
    const left = new Set<number>();
    const right = new Set<number>();
    for (const e of this.entries) {
      if (e.at < x) e.included.forEach((v) => left.add(v));
      if (e.at > x) e.absent.forEach((v) => right.add(v));
    }
    return { left: [...left], right: [...right] };
  }
}

/** The first entry on the path from the root to `target` that is not distinguished, or undefined. */
function nonDistinguishedAncestor(size: number, window: number, target: number, ts: (p: number) => number): number | undefined {
  let x = ibst.root(size);
  let left = 0;
  let right = ts(size - 1);
  for (;;) {
    if (!isDistinguished(window, left, right)) return x;
    if (x === target) return undefined;
    const t = ts(x);
    if (x < target) {
      left = t;
      x = ibst.right(x, size);
    } else {
      right = t;
      x = ibst.left(x);
    }
  }
}

/** What a verified §9.1 proof established. */
export interface UpdateOutcome {
  /** Whether the new entry is distinguished (then no ladder is read there). */
  readonly distinguished: boolean;
  /** The new greatest version. */
  readonly greatest: number;
  /** The contact-monitoring pair the owner adds (absent when the entry is distinguished). */
  readonly contact?: MonitorMapEntry;
}

/**
 * §9.1: verifies (reading `source`) that `count` new versions of the label were added at log entry
 * `position` of a log of `size` entries and that no other version appeared since the owner's last
 * update. `keys` gives the search key (and, for included versions, the commitment) of each version.
 * A ladder inconsistent with the owner's versions is `KT_UNEXPECTED_VERSION`.
 *
 * @example
 * const o = updateProof(config, 7, 6, 1, owner, keys, reader);
 */
export function updateProof(
  config: Configuration,
  size: number,
  position: number,
  count: number,
  owner: OwnerState,
  keys: (v: number) => LadderKey,
  source: ProofSource,
): UpdateOutcome {
  if (!Number.isSafeInteger(position) || position < 0 || position >= size) bad(`update position ${position} is outside a log of ${size}`);
  const lastUpdate = owner.upcoming.at(-1) ?? -1;
  if (position <= lastUpdate) bad('the update is not right of the owner\'s previous one');
  if (!Number.isInteger(count) || count < 1 || count > 255) bad(`${count} new versions`);
  const previous = owner.versionAtStarting + owner.upcoming.length;
  const greatest = previous + count;
  if (greatest >= 0xffffffff) bad('version overflow');
  const window = config.reasonableMonitoringWindow;
  const ts = (p: number): number => source.timestamp(p);
  const ladderOfGreatest = searchBinaryLadder(greatest, greatest);
  const additional: number[] = [];
  for (let v = previous + 1; v <= greatest; v++) if (!ladderOfGreatest.includes(v)) additional.push(v);
  const known = new Known();

  const searchLadder = (x: number, target: number): void => {
    // target −1: no version may exist, i.e. the ladder for version 0 shows it absent.
    const t = Math.max(target, 0);
    const { left, right } = known.sets(x);
    const versions = searchBinaryLadder(t, t, left, right);
    const results = versions.length === 0 ? [] : source.ladder(x, versions, keys, { kind: 'search', target, left, right, owner: true });
    const used = versions.slice(0, results.length);
    const verdict = interpretSearchLadder(used, results, t, { included: left, absent: right });
    known.add(x, used, (_, i) => results[i]!);
    if (verdict !== (target < 0 ? -1 : 0)) {
      throw new DirectoryError('KT_UNEXPECTED_VERSION', `entry ${x} does not show version ${target} as the greatest: a version the owner did not add`);
    }
  };

  // Step 2: the previous tree's frontier, from its first entry not distinguished in this tree.
  if (position > 0) {
    const first = nonDistinguishedAncestor(size, window, position - 1, ts);
    if (first !== undefined) {
      let x = first;
      while (x > position - 1) x = ibst.left(x);
      if (previous >= 0) {
        const ladder = searchBinaryLadder(previous, previous);
        if (x !== ibst.root(position)) {
          const parent = ibst.pathTo(x, position).at(-1)!;
          const g = ownerGreatestAt(owner, parent);
          known.add(parent, ladder, (v) => v <= g);
        }
        known.add(x, ladder, (v) => v <= previous);
      }
      for (;;) {
        if (x > lastUpdate) searchLadder(x, previous);
        if (x === position - 1) break;
        x = ibst.right(x, position);
      }
    }
  }

  // Step 3: the new entry.
  const distinguished = nonDistinguishedAncestor(size, window, position, ts) === undefined;
  if (!distinguished) searchLadder(position, greatest);
  if (additional.length > 0) {
    const results = source.ladder(position, additional, keys, { kind: 'exact' });
    results.forEach((inc, i) => {
      if (!inc) bad(`entry ${position} does not hold the new version ${additional[i]}`);
    });
  }
  return { distinguished, greatest, ...(distinguished ? {} : { contact: { position, version: greatest } }) };
}
