/**
 * The KEYTRANS prefix tree (draft §3.3, §11.9, §12.2): a binary trie keyed by
 * 32-byte VRF outputs (bits read most-significant first), whose leaves hold
 * commitments.
 *
 *     leaf.value   = SHA-256(0x02 ‖ vrf_output ‖ commitment)
 *     parent.value = SHA-256(0x03 ‖ left.value ‖ right.value)   (absent child = 32 zero bytes)
 *
 * A one-leaf tree's root is the leaf; an empty tree's root is all zeros.
 *
 * Storage is content-addressed and copy-on-write: a node is stored under its
 * own value, so every historical root stays readable and a new version of the
 * tree adds only the O(depth) nodes on the changed paths. The store is any
 * {@link PrefixNodeReader}; `@keyward/directory`'s builder backs it with its
 * {@link DirectoryStore}.
 */
import { abytes, equalBytes } from './bytes.js';
import { DirectoryError } from './errors.js';
import type { PrefixLeaf, PrefixProof, PrefixSearchResult } from './structs.js';
import { NH, ZERO_HASH, hash } from './suite.js';

/** A stored prefix-tree node. Parents hold their children's values (ZERO_HASH when absent). */
export type PrefixNode =
  | { readonly type: 'leaf'; readonly vrfOutput: Uint8Array; readonly commitment: Uint8Array }
  | { readonly type: 'parent'; readonly left: Uint8Array; readonly right: Uint8Array };

/** Reads a node by its value; `undefined` if the store does not hold it. */
export type PrefixNodeReader = (value: Uint8Array) => Promise<PrefixNode | undefined> | PrefixNode | undefined;

/**
 * The value of a prefix leaf.
 *
 * @example
 * prefixLeafValue({ vrfOutput, commitment })
 */
export function prefixLeafValue(leaf: PrefixLeaf): Uint8Array {
  return hash(new Uint8Array([0x02]), leaf.vrfOutput, leaf.commitment);
}

/**
 * The value of a prefix parent.
 *
 * @example
 * prefixParentValue(left, ZERO_HASH)
 */
export function prefixParentValue(left: Uint8Array, right: Uint8Array): Uint8Array {
  return hash(new Uint8Array([0x03]), left, right);
}

/**
 * The value of a stored node.
 *
 * @example
 * prefixNodeValue({ type: 'parent', left, right })
 */
export function prefixNodeValue(n: PrefixNode): Uint8Array {
  return n.type === 'leaf' ? prefixLeafValue(n) : prefixParentValue(n.left, n.right);
}

/** Bit `i` of a search key, most significant bit of byte 0 first. */
export function keyBit(key: Uint8Array, i: number): boolean {
  return ((key[i >> 3]! >> (7 - (i & 7))) & 1) === 1;
}

function isZero(v: Uint8Array): boolean {
  return equalBytes(v, ZERO_HASH);
}

async function load(read: PrefixNodeReader, value: Uint8Array): Promise<PrefixNode> {
  const n = await read(value);
  if (!n) throw new DirectoryError('KT_INVALID_ARGUMENT', 'prefix-tree node missing from the store');
  return n;
}

/**
 * Inserts `leaf` into the tree rooted at `root` without modifying it, returning the new root and
 * the nodes that must be stored (keyed by value). Refuses a key that is already present
 * (`KT_CONFLICT`): a label-version pair is written once.
 *
 * @example
 * const { root: next, nodes } = await prefixInsert(read, root, { vrfOutput, commitment });
 */
export async function prefixInsert(
  read: PrefixNodeReader,
  root: Uint8Array,
  leaf: PrefixLeaf,
  nodes: Map<string, PrefixNode> = new Map(),
): Promise<{ root: Uint8Array; nodes: Map<string, PrefixNode> }> {
  abytes(leaf.vrfOutput, 'vrf output', NH);
  abytes(leaf.commitment, 'commitment', NH);
  const lookup = async (v: Uint8Array): Promise<PrefixNode> => nodes.get(hexKey(v)) ?? load(read, v);
  const put = (n: PrefixNode): Uint8Array => {
    const v = prefixNodeValue(n);
    nodes.set(hexKey(v), n);
    return v;
  };
  const newLeaf: PrefixNode = { type: 'leaf', vrfOutput: leaf.vrfOutput, commitment: leaf.commitment };
  const split = (existing: PrefixNode & { type: 'leaf' }, depth: number): Uint8Array => {
    if (depth >= NH * 8) throw new DirectoryError('KT_CONFLICT', 'two search keys are equal');
    const a = keyBit(existing.vrfOutput, depth);
    const b = keyBit(leaf.vrfOutput, depth);
    if (a === b) {
      const child = split(existing, depth + 1);
      return put(a ? { type: 'parent', left: ZERO_HASH, right: child } : { type: 'parent', left: child, right: ZERO_HASH });
    }
    const e = prefixNodeValue(existing);
    const n = put(newLeaf);
    return put(b ? { type: 'parent', left: e, right: n } : { type: 'parent', left: n, right: e });
  };
  const go = async (at: Uint8Array, depth: number): Promise<Uint8Array> => {
    if (isZero(at)) return put(newLeaf);
    const node = await lookup(at);
    if (node.type === 'leaf') {
      if (equalBytes(node.vrfOutput, leaf.vrfOutput)) throw new DirectoryError('KT_CONFLICT', 'the search key is already in the prefix tree');
      return split(node, depth);
    }
    if (keyBit(leaf.vrfOutput, depth)) return put({ type: 'parent', left: node.left, right: await go(node.right, depth + 1) });
    return put({ type: 'parent', left: await go(node.left, depth + 1), right: node.right });
  };
  return { root: await go(root, 0), nodes };
}

/**
 * Where the search for `key` in the tree rooted at `root` terminates (§12.2). For
 * nonInclusionParent, `depth` is the depth of the empty child slot.
 *
 * @example
 * const r = await prefixSearch(read, root, key); // { type: 'inclusion', depth: 3 }
 */
export async function prefixSearch(read: PrefixNodeReader, root: Uint8Array, key: Uint8Array): Promise<PrefixSearchResult & { commitment?: Uint8Array }> {
  let at = root;
  for (let depth = 0; ; depth++) {
    if (isZero(at)) return { type: 'nonInclusionParent', depth };
    const node = await load(read, at);
    if (node.type === 'leaf') {
      if (equalBytes(node.vrfOutput, key)) return { type: 'inclusion', depth, commitment: node.commitment };
      return { type: 'nonInclusionLeaf', leaf: { vrfOutput: node.vrfOutput, commitment: node.commitment }, depth };
    }
    if (depth > 255) throw new DirectoryError('KT_INVALID_ARGUMENT', 'prefix tree deeper than a uint8 depth');
    at = keyBit(key, depth) ? node.right : node.left;
  }
}

/**
 * Builds a §12.2 batch PrefixProof for `keys` (in request order) against the tree rooted at `root`.
 *
 * @example
 * const proof = await prefixProve(read, root, [key1, key2]);
 */
export async function prefixProve(read: PrefixNodeReader, root: Uint8Array, keys: readonly Uint8Array[]): Promise<PrefixProof> {
  const results: PrefixSearchResult[] = [];
  for (const k of keys) {
    abytes(k, 'search key', NH);
    const r = await prefixSearch(read, root, k);
    results.push(r.type === 'nonInclusionLeaf' ? { type: r.type, leaf: r.leaf, depth: r.depth } : { type: r.type, depth: r.depth });
  }
  const elements: Uint8Array[] = [];
  const collect = async (at: Uint8Array, depth: number, active: readonly Uint8Array[]): Promise<void> => {
    if (isZero(at)) return;
    const node = await load(read, at);
    if (node.type === 'leaf') return;
    const left = active.filter((k) => !keyBit(k, depth));
    const right = active.filter((k) => keyBit(k, depth));
    if (left.length === 0) elements.push(node.left);
    else await collect(node.left, depth + 1, left);
    if (right.length === 0) elements.push(node.right);
    else await collect(node.right, depth + 1, right);
  };
  if (keys.length > 0) await collect(root, 0, keys);
  else elements.push(root);
  return { results, elements };
}

/** A lookup the verifier makes: the search key, and the commitment it expects when included. */
export interface PrefixLookup {
  readonly vrfOutput: Uint8Array;
  readonly commitment?: Uint8Array;
}

/** The part of a prefix tree a proof reveals: known leaves and empty slots, copath hashes, parents. @internal */
export type Skel =
  | { k: 'unknown'; v?: Uint8Array }
  | { k: 'empty' }
  | { k: 'leaf'; leaf: PrefixLeaf }
  | { k: 'parent'; l: Skel; r: Skel };

/**
 * Recomputes the prefix root a §12.2 proof implies for `lookups` (one per result, in order).
 * Throws `KT_BAD_PREFIX_PROOF` for any inconsistency: result count, impossible depths or leaves,
 * an inclusion without the expected commitment, or a wrong number of elements.
 *
 * @example
 * const root = evaluatePrefixProof([{ vrfOutput, commitment }], proof);
 */
export function evaluatePrefixProof(lookups: readonly PrefixLookup[], proof: PrefixProof): Uint8Array {
  return skelValue(prefixSkeleton(lookups, proof));
}

/** The value of a skeleton node. @internal */
export function skelValue(s: Skel): Uint8Array {
  switch (s.k) {
    case 'unknown':
      return s.v!;
    case 'empty':
      return ZERO_HASH;
    case 'leaf':
      return prefixLeafValue(s.leaf);
    case 'parent':
      return prefixParentValue(skelValue(s.l), skelValue(s.r));
  }
}

/** The skeleton a §12.2 proof reveals for `lookups` (see {@link evaluatePrefixProof}). @internal */
export function prefixSkeleton(lookups: readonly PrefixLookup[], proof: PrefixProof): Skel {
  const bad = (m: string): never => {
    throw new DirectoryError('KT_BAD_PREFIX_PROOF', m);
  };
  if (lookups.length !== proof.results.length) bad(`proof has ${proof.results.length} results for ${lookups.length} lookups`);
  for (let i = 0; i < lookups.length; i++) {
    abytes(lookups[i]!.vrfOutput, 'search key', NH);
    for (let j = i + 1; j < lookups.length; j++) if (equalBytes(lookups[i]!.vrfOutput, lookups[j]!.vrfOutput)) bad('the same search key appears twice');
  }
  let root: Skel = { k: 'unknown' };
  lookups.forEach((lk, index) => {
    const res = proof.results[index]!;
    const target = res.depth;
    const terminal = (depth: number): Skel => {
      if (res.type === 'inclusion') {
        if (!lk.commitment) return bad(`lookup ${index}: inclusion without an expected commitment`);
        return { k: 'leaf', leaf: { vrfOutput: lk.vrfOutput, commitment: lk.commitment } };
      }
      if (res.type === 'nonInclusionLeaf') {
        const other = res.leaf.vrfOutput;
        if (equalBytes(other, lk.vrfOutput)) bad(`lookup ${index}: non-inclusion leaf holds the searched key`);
        for (let i = 0; i < depth; i++) if (keyBit(other, i) !== keyBit(lk.vrfOutput, i)) bad(`lookup ${index}: leaf is not on the search path`);
        return { k: 'leaf', leaf: res.leaf };
      }
      return { k: 'empty' };
    };
    // Walk down, growing the skeleton; `set` replaces the node we stand on.
    let node: Skel = root;
    let set = (s: Skel): void => {
      root = s;
    };
    for (let depth = 0; ; depth++) {
      if (node.k === 'empty') {
        if (target !== depth || res.type === 'inclusion') bad(`lookup ${index}: contradicts an empty slot`);
        return;
      }
      if (node.k === 'leaf') {
        const same = equalBytes(node.leaf.vrfOutput, lk.vrfOutput);
        if (target !== depth || (res.type === 'inclusion') !== same) bad(`lookup ${index}: contradicts a leaf`);
        if (res.type === 'nonInclusionLeaf' && !equalBytes(prefixLeafValue(res.leaf), prefixLeafValue(node.leaf))) bad(`lookup ${index}: two different leaves in one slot`);
        if (res.type === 'inclusion' && lk.commitment && !equalBytes(lk.commitment, node.leaf.commitment)) bad(`lookup ${index}: two commitments for one key`);
        return;
      }
      if (node.k === 'unknown') {
        if (depth > target) bad(`lookup ${index}: ends above a known parent`);
        if (depth === target) {
          set(terminal(depth));
          return;
        }
        const p: Skel = { k: 'parent', l: { k: 'unknown' }, r: { k: 'unknown' } };
        set(p);
        node = p;
      }
      if (depth > 255) bad('depth overflow');
      const parent = node;
      if (keyBit(lk.vrfOutput, depth)) {
        node = parent.r;
        set = (s) => {
          parent.r = s;
        };
      } else {
        node = parent.l;
        set = (s) => {
          parent.l = s;
        };
      }
    }
  });
  let next = 0;
  const fill = (s: Skel): void => {
    if (s.k === 'unknown') {
      const e = proof.elements[next++];
      if (e === undefined) bad('too few proof elements');
      if (e!.length !== NH) bad('proof element is not 32 bytes');
      s.v = e;
    } else if (s.k === 'parent') {
      fill(s.l);
      fill(s.r);
    }
  };
  fill(root);
  if (next !== proof.elements.length) bad(`proof needs ${next} elements, got ${proof.elements.length}`);
  return root;
}

/**
 * Verifies a §12.2 proof against `root`; throws `KT_BAD_PREFIX_PROOF` otherwise.
 *
 * @example
 * verifyPrefixProof(lookups, proof, root);
 */
export function verifyPrefixProof(lookups: readonly PrefixLookup[], proof: PrefixProof, root: Uint8Array): void {
  if (!equalBytes(evaluatePrefixProof(lookups, proof), root)) throw new DirectoryError('KT_BAD_PREFIX_PROOF', 'the proof does not lead to the expected root');
}

/** Map key for a node value. @internal */
export function hexKey(v: Uint8Array): string {
  let s = '';
  for (const x of v) s += x.toString(16).padStart(2, '0');
  return s;
}
