/**
 * Keyward's directory responses (the "Keyward profile" of docs/directory.md).
 *
 * They reuse the draft's building blocks — FullTreeHead, BinaryLadderStep-style
 * VRF proofs, PrefixProof, InclusionProof — but prove a label's state against
 * the *rightmost* log entry only, instead of running the draft's §6–§9 binary
 * ladder over the implicit binary search tree. See docs/directory.md.
 *
 *     struct {
 *       FullTreeHead full_tree_head;
 *       uint64 timestamp;                    // of the rightmost log entry
 *       VersionProof versions<0..2^8-1>;     // uint32 version ‖ opaque proof[80]
 *       optional<Opening> opening;           // opening[16] ‖ UpdateValue, for the first version
 *       PrefixProof prefix_proof;            // in the rightmost entry, one result per version
 *       InclusionProof inclusion;            // rightmost leaf, plus consistency with `last`
 *     } DirectoryProof;
 */
import { Reader, Writer } from './bytes.js';
import { DirectoryError } from './errors.js';
import { readFullTreeHead, readPrefixProof, writePrefixProof, encodeFullTreeHead, type DeploymentMode, type FullTreeHead, type PrefixProof } from './structs.js';
import { NC, NH, VRF_NP } from './suite.js';

/** A VRF proof for one version of the label. */
export interface VersionProof {
  readonly version: number;
  readonly proof: Uint8Array;
}

/** A response to a search, update or monitor request. */
export interface DirectoryProof {
  readonly fullTreeHead: FullTreeHead;
  readonly timestamp: number;
  readonly versions: readonly VersionProof[];
  readonly opening?: { readonly opening: Uint8Array; readonly value: Uint8Array };
  readonly prefixProof: PrefixProof;
  readonly inclusion: readonly Uint8Array[];
}

/**
 * Encodes a DirectoryProof (contactMonitoring / thirdPartyAuditing modes: no update signature).
 *
 * @example
 * const bytes = encodeDirectoryProof(res, 1);
 */
export function encodeDirectoryProof(p: DirectoryProof, mode: DeploymentMode): Uint8Array {
  const w = new Writer().bytes(encodeFullTreeHead(p.fullTreeHead, mode)).u64(p.timestamp);
  w.count(p.versions.length, 1);
  for (const v of p.versions) w.u32(v.version).bytes(v.proof);
  if (p.opening) w.u8(1).bytes(p.opening.opening).opaque(p.opening.value, 4);
  else w.u8(0);
  writePrefixProof(w, p.prefixProof);
  w.count(p.inclusion.length, 2);
  for (const e of p.inclusion) w.bytes(e);
  return w.finish();
}

/**
 * Decodes a DirectoryProof from untrusted bytes; throws `KT_MALFORMED`.
 *
 * @example
 * const res = decodeDirectoryProof(bytes, config.mode);
 */
export function decodeDirectoryProof(b: Uint8Array, mode: DeploymentMode): DirectoryProof {
  if (!(b instanceof Uint8Array)) throw new DirectoryError('KT_MALFORMED', 'response must be bytes');
  const r = new Reader(b);
  const fullTreeHead = readFullTreeHead(r, mode);
  const timestamp = r.u64();
  const versions: VersionProof[] = [];
  for (let n = r.count(1); n > 0; n--) versions.push({ version: r.u32(), proof: r.bytes(VRF_NP) });
  const opening = r.present() ? { opening: r.bytes(NC), value: r.opaque(4) } : undefined;
  const prefixProof = readPrefixProof(r);
  const inclusion: Uint8Array[] = [];
  for (let n = r.count(2); n > 0; n--) inclusion.push(r.bytes(NH));
  r.end();
  return { fullTreeHead, timestamp, versions, ...(opening ? { opening } : {}), prefixProof, inclusion };
}
