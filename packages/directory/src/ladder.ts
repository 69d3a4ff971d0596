/**
 * Binary ladders (draft §5, Appendix B) and what a search ladder's results say (§6.2).
 *
 * A ladder is computed with unbounded arithmetic so that its rungs above `2^32 - 1` are seen
 * and refused (`KT_INVALID_ARGUMENT`) rather than wrapped: the greatest version `2^32 - 1` cannot
 * be proven, because that needs a non-inclusion proof for a version the `uint32` field cannot hold.
 */
import { DirectoryError } from './errors.js';

const U32_MAX = 0xffffffff;

function rungs(n: number): number[] {
  const out: number[] = [];
  let lower = 0;
  let upper = 0;
  for (let e = 0; ; e++) {
    const r = 2 ** e - 1;
    out.push(r);
    if (r > n) {
      upper = r;
      break;
    }
    lower = r;
  }
  while (lower + 1 < upper) {
    const r = Math.floor((lower + upper) / 2);
    out.push(r);
    if (r <= n) lower = r;
    else upper = r;
  }
  return out;
}

function narrow(r: number): number {
  if (r > U32_MAX) throw new DirectoryError('KT_INVALID_ARGUMENT', `binary ladder needs version ${r}, beyond uint32`);
  return r;
}

/**
 * The base binary ladder establishing `greatest` as the greatest version (§5).
 *
 * @example
 * baseBinaryLadder(6) // [0, 1, 3, 7, 5, 6]
 */
export function baseBinaryLadder(greatest: number): number[] {
  return rungs(greatest).map(narrow);
}

/**
 * A search ladder (§6.2, App. B): the base ladder of `greatest`, stopping at the first rung that
 * settles whether `greatest` reaches `target`, without the lookups already known from entries to
 * the left (inclusions) or right (non-inclusions) — which still count for where it stops.
 *
 * @example
 * searchBinaryLadder(5, 100) // [0, 1, 3, 7]
 */
export function searchBinaryLadder(target: number, greatest: number, leftInclusion: readonly number[] = [], rightNonInclusion: readonly number[] = []): number[] {
  const out: number[] = [];
  for (const r of rungs(greatest)) {
    const v = narrow(r);
    if (!leftInclusion.includes(v) && !rightNonInclusion.includes(v)) out.push(v);
    if ((r <= greatest && r > target) || (r > greatest && r <= target)) break;
  }
  return out;
}

/**
 * A monitoring ladder (§8.1): the rungs of the base ladder of `target` that are ≤ `target`.
 *
 * @example
 * monitoringBinaryLadder(6) // [0, 1, 3, 5, 6]
 */
export function monitoringBinaryLadder(target: number, leftInclusion: readonly number[] = []): number[] {
  return rungs(target).filter((r) => r <= target && !leftInclusion.includes(r));
}

/**
 * What a search ladder's results say about the greatest version relative to `target` (§6.2):
 * -1 below, 0 equal, 1 above. `known` adds facts established elsewhere (versions proven
 * included to the left, absent to the right). Throws `KT_BAD_RESPONSE` for contradictory or
 * inconclusive results.
 *
 * @example
 * interpretSearchLadder([0, 1], [true, false], 0) // 0
 */
export function interpretSearchLadder(
  ladder: readonly number[],
  results: readonly boolean[],
  target: number,
  known: { readonly included?: readonly number[]; readonly absent?: readonly number[] } = {},
): -1 | 0 | 1 {
  if (ladder.length !== results.length) throw new DirectoryError('KT_BAD_RESPONSE', 'ladder and results differ in length');
  let maxIn = -1;
  let minOut = Infinity;
  ladder.forEach((v, i) => {
    if (results[i]) maxIn = Math.max(maxIn, v);
    else minOut = Math.min(minOut, v);
  });
  for (const v of known.included ?? []) maxIn = Math.max(maxIn, v);
  for (const v of known.absent ?? []) minOut = Math.min(minOut, v);
  if (maxIn >= minOut) throw new DirectoryError('KT_BAD_RESPONSE', `version ${maxIn} is included but ${minOut} is not`);
  if (maxIn > target) return 1;
  if (minOut <= target) return -1;
  if (maxIn === target && minOut === target + 1) return 0;
  throw new DirectoryError('KT_BAD_RESPONSE', `the ladder does not settle version ${target}`);
}
