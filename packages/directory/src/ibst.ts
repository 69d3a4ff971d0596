/**
 * The implicit binary search tree over log entries (draft §4.1, Appendix A).
 *
 * Log positions are `uint64` on the wire, so the arithmetic is done in `bigint`; callers that
 * hold positions as numbers (every realistic log) use the `…N` wrappers. A leaf's children and
 * the rightmost entry's right child do not exist: asking for them throws `KT_INVALID_ARGUMENT`
 * rather than answering (Appendix A's pseudocode would walk off the tree).
 */
import { DirectoryError } from './errors.js';

const U64_MAX = (1n << 64n) - 1n;

function au64(x: bigint, what: string): void {
  if (typeof x !== 'bigint' || x < 0n || x > U64_MAX) throw new DirectoryError('KT_INVALID_ARGUMENT', `${what} is not a uint64`);
}

/** floor(log2(x)) for x ≥ 1; 0 for x = 0 (Appendix A). */
function log2(x: bigint): bigint {
  let k = 0n;
  while (x >> (k + 1n) > 0n) k++;
  return k;
}

/** The level of a node: the number of trailing one bits (0 for leaves). */
function level(x: bigint): bigint {
  let k = 0n;
  while ((x >> k) & 1n) k++;
  return k;
}

/** Whether `x` is a leaf of the search tree (an even position). */
export function ibstIsLeaf(x: bigint): boolean {
  return (x & 1n) === 0n;
}

/**
 * The root of the search tree over `size` entries: `2^floor(log2(size)) - 1`.
 *
 * @example
 * ibstRoot(50n) // 31n
 */
export function ibstRoot(size: bigint): bigint {
  au64(size, 'size');
  if (size === 0n) throw new DirectoryError('KT_INVALID_ARGUMENT', 'an empty log has no search tree');
  return (1n << log2(size)) - 1n;
}

/**
 * The left child of `x`; a leaf has none.
 *
 * @example
 * ibstLeft(7n) // 3n
 */
export function ibstLeft(x: bigint): bigint {
  au64(x, 'position');
  const k = level(x);
  if (k === 0n) throw new DirectoryError('KT_INVALID_ARGUMENT', `log entry ${x} is a leaf of the search tree`);
  return x ^ (1n << (k - 1n));
}

/**
 * The right child of `x` in a log of `size` entries; a leaf and the rightmost entry have none.
 *
 * @example
 * ibstRight(7n, 14n) // 11n
 */
export function ibstRight(x: bigint, size: bigint): bigint {
  au64(x, 'position');
  au64(size, 'size');
  if (x >= size) throw new DirectoryError('KT_INVALID_ARGUMENT', `log entry ${x} is outside a log of ${size}`);
  const k = level(x);
  if (k === 0n) throw new DirectoryError('KT_INVALID_ARGUMENT', `log entry ${x} is a leaf of the search tree`);
  if (x + 1n === size) throw new DirectoryError('KT_INVALID_ARGUMENT', `log entry ${x} is the rightmost and has no right child`);
  let r = x ^ (3n << (k - 1n));
  while (r >= size) r = ibstLeft(r);
  return r;
}

/**
 * The frontier: the root, then right children down to the rightmost entry (§4.1).
 *
 * @example
 * ibstFrontier(50n) // [31n, 47n, 49n]
 */
export function ibstFrontier(size: bigint): bigint[] {
  const out = [ibstRoot(size)];
  while (out[out.length - 1]! !== size - 1n) out.push(ibstRight(out[out.length - 1]!, size));
  return out;
}

/**
 * The ancestors of `x` in a log of `size` entries, from the root down to `x`'s parent.
 *
 * @example
 * ibstPathTo(2n, 7n) // [3n, 1n]
 */
export function ibstPathTo(x: bigint, size: bigint): bigint[] {
  if (x >= size) throw new DirectoryError('KT_INVALID_ARGUMENT', `log entry ${x} is outside a log of ${size}`);
  const out: bigint[] = [];
  let cur = ibstRoot(size);
  while (cur !== x) {
    out.push(cur);
    cur = x < cur ? ibstLeft(cur) : ibstRight(cur, size);
  }
  return out;
}

/**
 * §4.2: the entries whose timestamps a user must be given to move its view from `advertised`
 * entries (absent: no previous view) to `size`, in the order it checks them. Empty when the
 * user is up to date, and also when its previous rightmost entry is still on the new frontier.
 *
 * @example
 * updateView(7n, 5n) // [5n, 6n]
 */
export function updateView(size: bigint, advertised?: bigint): bigint[] {
  if (advertised === undefined) return ibstFrontier(size);
  au64(advertised, 'advertised size');
  if (advertised < 1n || advertised > size) throw new DirectoryError('KT_INVALID_ARGUMENT', `advertised size ${advertised} is not in [1, ${size}]`);
  if (advertised === size) return [];
  const prev = advertised - 1n;
  const out = ibstPathTo(prev, size)
    .filter((y) => y > prev)
    .reverse();
  if (out.length === 0) return out;
  while (out[out.length - 1]! !== size - 1n) out.push(ibstRight(out[out.length - 1]!, size));
  return out;
}

/** Number wrappers for positions that fit a JS number. @internal */
export const ibst = {
  root: (n: number): number => Number(ibstRoot(BigInt(n))),
  left: (x: number): number => Number(ibstLeft(BigInt(x))),
  right: (x: number, n: number): number => Number(ibstRight(BigInt(x), BigInt(n))),
  isLeaf: (x: number): boolean => x % 2 === 0,
  frontier: (n: number): number[] => ibstFrontier(BigInt(n)).map(Number),
  pathTo: (x: number, n: number): number[] => ibstPathTo(BigInt(x), BigInt(n)).map(Number),
  updateView: (n: number, m?: number): number[] => updateView(BigInt(n), m === undefined ? undefined : BigInt(m)).map(Number),
  hasRight: (x: number, n: number): boolean => x % 2 === 1 && x + 1 < n,
};
