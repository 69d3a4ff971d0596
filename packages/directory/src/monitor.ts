/**
 * Monitoring (draft §8.2 contact monitoring, §8.3 owner initialization and owner monitoring) and
 * the §13.2–§13.4 responses that carry it. Each verifier reads a {@link ProofReader} in §12.3.4–
 * §12.3.6 order and throws `KT_BAD_RESPONSE` (or a proof code) when the log's answer does not
 * establish what the section requires; an owner's ladder that does not place the version it
 * expects as the greatest is `KT_UNEXPECTED_VERSION` (a version the owner did not add).
 */
import { Reader, Writer } from './bytes.js';
import { isExpired, type LadderKey, type ProofSource } from './combined.js';
import { isDistinguished } from './distinguished.js';
import { DirectoryError } from './errors.js';
import { ibst } from './ibst.js';
import { interpretSearchLadder, monitoringBinaryLadder, searchBinaryLadder } from './ladder.js';
import {
  encodeFullTreeHead,
  readBinaryLadderStep,
  readCombinedTreeProof,
  readFullTreeHead,
  writeBinaryLadderStep,
  writeCombinedTreeProof,
  type BinaryLadderStep,
  type CombinedTreeProof,
  type DeploymentMode,
  type FullTreeHead,
  type MonitorMapEntry,
} from './structs.js';

function bad(message: string): never {
  throw new DirectoryError('KT_BAD_RESPONSE', message);
}

/** §13.2 / §13.4 monitor responses: `FullTreeHead ‖ CombinedTreeProof`. */
export interface MonitorResponse {
  readonly fullTreeHead: FullTreeHead;
  readonly proof: CombinedTreeProof;
}

/** §13.3 OwnerInitResponse. */
export interface OwnerInitResponse {
  readonly fullTreeHead: FullTreeHead;
  readonly greatestVersions: readonly number[];
  readonly binaryLadder: readonly BinaryLadderStep[];
  readonly proof: CombinedTreeProof;
}

/**
 * Decodes a ContactMonitorResponse or OwnerMonitorResponse.
 *
 * @example
 * const res = decodeMonitorResponse(bytes, 1);
 */
export function decodeMonitorResponse(b: Uint8Array, mode: DeploymentMode): MonitorResponse {
  const r = new Reader(b);
  const fullTreeHead = readFullTreeHead(r, mode);
  const proof = readCombinedTreeProof(r);
  r.end();
  return { fullTreeHead, proof };
}

/**
 * Encodes a ContactMonitorResponse or OwnerMonitorResponse.
 *
 * @example
 * encodeMonitorResponse(res, 1)
 */
export function encodeMonitorResponse(m: MonitorResponse, mode: DeploymentMode): Uint8Array {
  return writeCombinedTreeProof(new Writer().bytes(encodeFullTreeHead(m.fullTreeHead, mode)), m.proof).finish();
}

/**
 * Decodes an OwnerInitResponse (`greatest_versions<0..2^8-1>`, `binary_ladder<0..2^16-1>`).
 *
 * @example
 * const res = decodeOwnerInitResponse(bytes, 1);
 */
export function decodeOwnerInitResponse(b: Uint8Array, mode: DeploymentMode): OwnerInitResponse {
  const r = new Reader(b);
  const fullTreeHead = readFullTreeHead(r, mode);
  const greatestVersions: number[] = [];
  for (let n = r.count(1); n > 0; n--) greatestVersions.push(r.u32());
  const binaryLadder: BinaryLadderStep[] = [];
  for (let n = r.count(2); n > 0; n--) binaryLadder.push(readBinaryLadderStep(r));
  const proof = readCombinedTreeProof(r);
  r.end();
  return { fullTreeHead, greatestVersions, binaryLadder, proof };
}

/**
 * Encodes an OwnerInitResponse.
 *
 * @example
 * encodeOwnerInitResponse(res, 1)
 */
export function encodeOwnerInitResponse(m: OwnerInitResponse, mode: DeploymentMode): Uint8Array {
  const w = new Writer().bytes(encodeFullTreeHead(m.fullTreeHead, mode)).count(m.greatestVersions.length, 1);
  for (const v of m.greatestVersions) w.u32(v);
  w.count(m.binaryLadder.length, 2);
  for (const s of m.binaryLadder) writeBinaryLadderStep(w, s);
  return writeCombinedTreeProof(w, m.proof).finish();
}

/**
 * The versions an OwnerInitResponse's binary ladder covers, ascending: every version the §8.3
 * ladders look up (version 0 alone when the label has no versions at the starting entry).
 *
 * @example
 * ownerInitLadder([3]) // [0, 1, 3, 4, 5, 7]
 */
export function ownerInitLadder(greatestVersions: readonly number[]): number[] {
  if (greatestVersions.length === 0) return [0];
  return [...new Set(greatestVersions.flatMap((g) => searchBinaryLadder(g, g)))].sort((a, b) => a - b);
}

function readLadder(reader: ProofSource, position: number, versions: readonly number[], keys: (v: number) => LadderKey, exactTarget: number | undefined): boolean[] {
  return reader.ladder(position, versions, keys, exactTarget === undefined ? { kind: 'exact' } : { kind: 'search', target: exactTarget, left: [], right: [], owner: true });
}

/**
 * §8.2 contact monitoring over the user's monitoring map (position → version), rightmost first.
 * Returns the updated map (pairs moved up to the entry that re-proved them; pairs at a
 * distinguished entry dropped). A version the user already holds that is not re-proven present
 * is `KT_BAD_RESPONSE`.
 *
 * @example
 * const map = contactMonitor(size, window, [{ position: 2, version: 2 }], keys, reader);
 */
export function contactMonitor(size: number, window: number, map: readonly MonitorMapEntry[], keys: (v: number) => LadderKey, reader: ProofSource): MonitorMapEntry[] {
  const last = size - 1;
  const pairs = [...map].sort((a, b) => b.position - a.position);
  const provided = new Map<number, number>();
  const dist = new Map<number, boolean>();
  const updated: MonitorMapEntry[] = [];
  for (const pair of pairs) {
    if (pair.position >= size) bad(`monitored entry ${pair.position} is beyond the log`);
    // §12.3.4: timestamps down the path to the entry's parent, stopping at a non-distinguished one.
    const rightTs = reader.timestamp(last);
    const chain = [...ibst.pathTo(pair.position, size), pair.position];
    let left = 0;
    let right = rightTs;
    for (let k = 0; k < chain.length; k++) {
      const e = chain[k]!;
      if (dist.get(e) === false || !isDistinguished(window, left, right)) {
        for (const rest of chain.slice(k)) dist.set(rest, false);
        break;
      }
      dist.set(e, true);
      const next = chain[k + 1];
      if (next === undefined) break;
      const t = reader.timestamp(e);
      if (next < e) right = t;
      else left = t;
    }
    if (dist.get(pair.position) === true) {
      updated.push(pair);
      continue;
    }
    let list = ibst
      .pathTo(pair.position, size)
      .filter((e) => e > pair.position)
      .sort((a, b) => a - b);
    const firstDist = list.findIndex((e) => dist.get(e) === true);
    if (firstDist >= 0) list = list.slice(0, firstDist + 1);
    let moved: number | undefined;
    let superseded = false;
    for (const e of list) {
      const prior = provided.get(e);
      if (prior !== undefined) {
        if (prior > pair.version) {
          superseded = true;
          break;
        }
        bad(`entry ${e} already carried a ladder for version ${prior}`);
      }
      const versions = monitoringBinaryLadder(pair.version);
      const results = readLadder(reader, e, versions, keys, undefined);
      results.forEach((inc, i) => {
        if (!inc) bad(`entry ${e} no longer holds version ${versions[i]}, which the user was already shown`);
      });
      provided.set(e, pair.version);
      moved = e;
    }
    if (!superseded) updated.push({ position: moved ?? pair.position, version: pair.version });
  }
  return updated.filter((p) => dist.get(p.position) !== true).sort((a, b) => a.position - b.position);
}

/**
 * §8.3 owner initialization at distinguished entry `start`: one full ladder per inspected entry
 * (the start, then its ancestors to the left until the first expired one), each placing the
 * response's `greatestVersions[i]` as the greatest (or version 0 absent past the list's end).
 *
 * @example
 * ownerInit(size, lifetime, 3, [3], keys, reader)
 */
export function ownerInit(size: number, lifetime: number | undefined, start: number, greatestVersions: readonly number[], keys: (v: number) => LadderKey, reader: ProofSource): number[] {
  const rightmost = reader.timestamp(size - 1);
  for (const e of ibst.pathTo(start, size)) reader.timestamp(e);
  const st = reader.timestamp(start);
  if (isExpired(lifetime, st, rightmost)) bad(`the starting entry ${start} has expired`);
  const list = [start];
  for (const e of ibst
    .pathTo(start, size)
    .filter((x) => x < start)
    .sort((a, b) => b - a)) {
    if (isExpired(lifetime, reader.timestamp(e), rightmost)) break;
    list.push(e);
  }
  for (let k = 1; k < greatestVersions.length; k++) if (greatestVersions[k]! > greatestVersions[k - 1]!) bad('greatest versions do not descend');
  if (greatestVersions.length > list.length) bad('more greatest versions than inspected entries');
  list.forEach((e, k) => {
    const target = greatestVersions[k] ?? 0;
    const versions = searchBinaryLadder(target, target);
    const results = readLadder(reader, e, versions, keys, target);
    const verdict = interpretSearchLadder(versions.slice(0, results.length), results, target);
    if (verdict !== (k < greatestVersions.length ? 0 : -1)) throw new DirectoryError('KT_UNEXPECTED_VERSION', `entry ${e} does not show the claimed greatest version`);
  });
  return list;
}

/**
 * §8.3 owner monitoring: the distinguished entries right of `start` (the rightmost distinguished
 * entry already verified), left subtree first, each with a full ladder for the version the owner
 * expects to be greatest there (`expected(position)`). The log may truncate: the walk stops when
 * the proof is exhausted. Returns the rightmost entry checked. A mismatch is `KT_UNEXPECTED_VERSION`.
 *
 * @example
 * ownerMonitor(size, window, 3, (p) => versionAt(p), keys, reader)
 */
export function ownerMonitor(size: number, window: number, start: number, expected: (position: number) => number, keys: (v: number) => LadderKey, reader: ProofSource): number | undefined {
  const last = size - 1;
  const rightmost = reader.timestamp(last);
  let reached: number | undefined;
  const visit = (cur: number, left: number, right: number): void => {
    if (!isDistinguished(window, left, right)) return;
    if (cur <= start) {
      if (ibst.hasRight(cur, size)) visit(ibst.right(cur, size), reader.timestamp(cur), right);
      return;
    }
    if (!ibst.isLeaf(cur)) visit(ibst.left(cur), left, reader.timestamp(cur));
    if (reader.exhausted) return;
    reader.timestamp(cur);
    // −1: the owner holds no version there yet, so version 0 must be absent.
    const target = expected(cur);
    const top = Math.max(target, 0);
    const versions = searchBinaryLadder(top, top);
    const results = readLadder(reader, cur, versions, keys, target);
    if (target < 0 ? results.some(Boolean) : interpretSearchLadder(versions.slice(0, results.length), results, target) !== 0) {
      throw new DirectoryError('KT_UNEXPECTED_VERSION', `entry ${cur} does not show version ${target} as the greatest: a version the owner did not add`);
    }
    reached = cur;
    if (ibst.hasRight(cur, size)) visit(ibst.right(cur, size), reader.timestamp(cur), right);
  };
  visit(ibst.root(size), 0, rightmost);
  return reached;
}
