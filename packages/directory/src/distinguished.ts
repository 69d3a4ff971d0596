/**
 * Distinguished log entries (draft §6.1): an entry is distinguished when the timestamps that
 * bracket it in the implicit binary search tree are at least the Reasonable Monitoring Window
 * apart (so a window of 0 distinguishes every entry), recursively from the root with a left
 * bracket of 0 and the rightmost entry's timestamp on the right. The set is ancestor-closed, so
 * the rightmost ones are found by walking the frontier.
 */
import { DirectoryError } from './errors.js';
import { ibst } from './ibst.js';

/** A timestamp source: the timestamp of a log entry, or throws if the caller cannot give it. */
export type TimestampSource = (position: number) => number;

/**
 * Whether an entry bracketed by timestamps `left` and `right` is distinguished (§6.1).
 *
 * @example
 * isDistinguished(8000, 0, 8000) // true
 */
export function isDistinguished(window: number, left: number, right: number): boolean {
  if (right < left) throw new DirectoryError('KT_BAD_RESPONSE', 'timestamps are not monotonic');
  return right - left >= window;
}

/**
 * The rightmost distinguished entry of a log of `size`, or undefined (§6.1). Asks `ts` for the
 * rightmost entry, then for each distinguished frontier entry it needs to bracket the next.
 *
 * @example
 * rightmostDistinguished(9, 8000, (i) => i * 1000) // 7
 */
export function rightmostDistinguished(size: number, window: number, ts: TimestampSource): number | undefined {
  if (size === 0) return undefined;
  const last = size - 1;
  const right = ts(last);
  let cur = ibst.root(size);
  let left = 0;
  let found: number | undefined;
  for (;;) {
    if (!isDistinguished(window, left, right)) return found;
    found = cur;
    if (cur === last) return found;
    left = ts(cur);
    cur = ibst.right(cur, size);
  }
}

/**
 * The rightmost distinguished entry strictly left of the rightmost log entry, or undefined.
 *
 * @example
 * previousRightmostDistinguished(16, 8000, (i) => i * 1000) // 11
 */
export function previousRightmostDistinguished(size: number, window: number, ts: TimestampSource): number | undefined {
  if (size === 0) return undefined;
  const last = size - 1;
  const right = ts(last);
  let cur = ibst.root(size);
  let left = 0;
  let found: number | undefined;
  for (;;) {
    if (!isDistinguished(window, left, right)) return found;
    if (cur === last) break;
    found = cur;
    left = ts(cur);
    cur = ibst.right(cur, size);
  }
  // The rightmost entry is distinguished: descend its left subtree along right children.
  if (ibst.isLeaf(last)) return found;
  let node = ibst.left(last);
  for (;;) {
    if (!isDistinguished(window, left, right)) return found;
    found = node;
    if (!ibst.hasRight(node, size)) return found;
    left = ts(node);
    node = ibst.right(node, size);
  }
}
