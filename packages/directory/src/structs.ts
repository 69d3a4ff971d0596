/**
 * KEYTRANS wire structures (draft-ietf-keytrans-protocol-05 §11–§13), written
 * in the TLS presentation language. Vectors of structs are prefixed by their
 * *element* count (§2.1.2); opaque vectors by their byte length.
 */
import { Reader, Writer, abytes, auint } from './bytes.js';
import { DirectoryError, check } from './errors.js';
import { KT_128_SHA256_ED25519, KT_128_SHA256_P256, NH, NC, VRF_NP } from './suite.js';

/** §11.2 DeploymentMode: contactMonitoring(1), thirdPartyManagement(2), thirdPartyAuditing(3). */
export type DeploymentMode = 1 | 2 | 3;

/** §11.2 Configuration: the log's long-term parameters, covered by every tree head signature. */
export interface Configuration {
  readonly cipherSuite: number;
  readonly mode: DeploymentMode;
  readonly signaturePublicKey: Uint8Array;
  readonly vrfPublicKey: Uint8Array;
  /** Present (and only) under thirdPartyManagement. */
  readonly leafPublicKey?: Uint8Array;
  /** Present (and only) under thirdPartyAuditing. */
  readonly auditor?: { readonly maxAuditorLag: number; readonly auditorStartPos: number; readonly auditorPublicKey: Uint8Array };
  /** Milliseconds a tree head may be ahead of / behind the client clock. */
  readonly maxAhead: number;
  readonly maxBehind: number;
  /** The Reasonable Monitoring Window (§6.1), milliseconds. */
  readonly reasonableMonitoringWindow: number;
  /** The maximum lifetime of a log entry (§7.1), if any. */
  readonly maximumLifetime?: number;
}

function checkMode(mode: number): asserts mode is DeploymentMode {
  if (mode !== 1 && mode !== 2 && mode !== 3) throw new DirectoryError('KT_MALFORMED', `unknown deployment mode ${mode}`);
}

/**
 * Encodes a Configuration (§11.2). `leaf_public_key` is written only under
 * thirdPartyManagement — the reading the vectors (and the draft's 2026-07-28
 * revision) pin.
 *
 * @example
 * const bytes = encodeConfiguration(config);
 */
export function encodeConfiguration(c: Configuration): Uint8Array {
  const w = new Writer().u16(c.cipherSuite).u8(c.mode).opaque(c.signaturePublicKey, 2).opaque(c.vrfPublicKey, 2);
  if (c.mode === 2) w.opaque(c.leafPublicKey ?? new Uint8Array(0), 2);
  if (c.mode === 3) {
    const a = c.auditor;
    check(a !== undefined, 'thirdPartyAuditing needs auditor parameters');
    w.u64(a.maxAuditorLag).u64(a.auditorStartPos).opaque(a.auditorPublicKey, 2);
  }
  w.u64(c.maxAhead).u64(c.maxBehind).u64(c.reasonableMonitoringWindow);
  if (c.maximumLifetime === undefined) w.u8(0);
  else w.u8(1).u64(c.maximumLifetime);
  return w.finish();
}

/** Decodes a Configuration from a reader. @internal */
export function readConfiguration(r: Reader): Configuration {
  const cipherSuite = r.u16();
  const mode = r.u8();
  checkMode(mode);
  const signaturePublicKey = r.opaque(2);
  const vrfPublicKey = r.opaque(2);
  const leafPublicKey = mode === 2 ? r.opaque(2) : undefined;
  const auditor = mode === 3 ? { maxAuditorLag: r.u64(), auditorStartPos: r.u64(), auditorPublicKey: r.opaque(2) } : undefined;
  const maxAhead = r.u64();
  const maxBehind = r.u64();
  const reasonableMonitoringWindow = r.u64();
  const maximumLifetime = r.present() ? r.u64() : undefined;
  return {
    cipherSuite,
    mode,
    signaturePublicKey,
    vrfPublicKey,
    ...(leafPublicKey ? { leafPublicKey } : {}),
    ...(auditor ? { auditor } : {}),
    maxAhead,
    maxBehind,
    reasonableMonitoringWindow,
    ...(maximumLifetime !== undefined ? { maximumLifetime } : {}),
  };
}

/**
 * Decodes a Configuration, refusing trailing bytes and any suite but 0x0002 and 0x0001.
 *
 * @example
 * const config = decodeConfiguration(bytes);
 */
export function decodeConfiguration(b: Uint8Array): Configuration {
  const r = new Reader(b);
  const c = readConfiguration(r);
  r.end();
  if (c.cipherSuite !== KT_128_SHA256_ED25519 && c.cipherSuite !== KT_128_SHA256_P256) throw new DirectoryError('KT_MALFORMED', `unsupported cipher suite ${c.cipherSuite}`);
  return c;
}

/** §11.2 TreeHead. */
export interface TreeHead {
  readonly treeSize: number;
  readonly signature: Uint8Array;
}

/** §11.3 AuditorTreeHead. */
export interface AuditorTreeHead {
  readonly timestamp: number;
  readonly treeSize: number;
  readonly signature: Uint8Array;
}

/**
 * §11.2 TreeHeadTBS = Configuration ‖ uint64 tree_size ‖ root[Nh]: the bytes a tree head signature covers.
 *
 * @example
 * const tbs = encodeTreeHeadTbs(config, 8, root);
 */
export function encodeTreeHeadTbs(config: Configuration, treeSize: number, root: Uint8Array): Uint8Array {
  abytes(root, 'root', NH);
  return new Writer().bytes(encodeConfiguration(config)).u64(treeSize).bytes(root).finish();
}

/**
 * §11.3 AuditorTreeHeadTBS = Configuration ‖ timestamp ‖ tree_size ‖ root.
 *
 * @example
 * const tbs = encodeAuditorTreeHeadTbs(config, Date.now(), 8, root);
 */
export function encodeAuditorTreeHeadTbs(config: Configuration, timestamp: number, treeSize: number, root: Uint8Array): Uint8Array {
  abytes(root, 'root', NH);
  return new Writer().bytes(encodeConfiguration(config)).u64(timestamp).u64(treeSize).bytes(root).finish();
}

/**
 * Encodes a TreeHead.
 *
 * @example
 * encodeTreeHead({ treeSize: 1, signature })
 */
export function encodeTreeHead(h: TreeHead): Uint8Array {
  return new Writer().u64(h.treeSize).opaque(h.signature, 2).finish();
}

/**
 * Encodes an AuditorTreeHead.
 *
 * @example
 * encodeAuditorTreeHead({ timestamp, treeSize: 1, signature })
 */
export function encodeAuditorTreeHead(h: AuditorTreeHead): Uint8Array {
  return new Writer().u64(h.timestamp).u64(h.treeSize).opaque(h.signature, 2).finish();
}

/** §11.4 FullTreeHead: `same` (reuse the advertised head) or an updated head. */
export type FullTreeHead =
  | { readonly type: 'same' }
  | { readonly type: 'updated'; readonly treeHead: TreeHead; readonly auditorTreeHead?: AuditorTreeHead };

/**
 * Encodes a FullTreeHead.
 *
 * @example
 * encodeFullTreeHead({ type: 'same' }) // Uint8Array [1]
 */
export function encodeFullTreeHead(h: FullTreeHead, mode: DeploymentMode): Uint8Array {
  if (h.type === 'same') return new Uint8Array([1]);
  const w = new Writer().u8(2).bytes(encodeTreeHead(h.treeHead));
  if (mode === 3) {
    check(h.auditorTreeHead !== undefined, 'thirdPartyAuditing needs an auditor tree head');
    w.bytes(encodeAuditorTreeHead(h.auditorTreeHead));
  }
  return w.finish();
}

/** Reads a FullTreeHead. @internal */
export function readFullTreeHead(r: Reader, mode: DeploymentMode): FullTreeHead {
  const t = r.u8();
  if (t === 1) return { type: 'same' };
  if (t !== 2) throw new DirectoryError('KT_MALFORMED', `unknown FullTreeHeadType ${t}`);
  const treeHead = { treeSize: r.u64(), signature: r.opaque(2) };
  if (mode !== 3) return { type: 'updated', treeHead };
  const auditorTreeHead = { timestamp: r.u64(), treeSize: r.u64(), signature: r.opaque(2) };
  return { type: 'updated', treeHead, auditorTreeHead };
}

/** §11.5 UpdateValue: the value bound to a label-version pair, with the mode's suffix. */
export interface UpdateValue {
  readonly value: Uint8Array;
  /** Service Operator signature over UpdateTBS; present only under thirdPartyManagement. */
  readonly signature?: Uint8Array;
}

/** Writes an UpdateValue. @internal */
export function writeUpdateValue(w: Writer, u: UpdateValue): Writer {
  w.opaque(u.value, 4);
  if (u.signature !== undefined) w.opaque(u.signature, 2);
  return w;
}

/**
 * §11.6 CommitmentValue = opening[Nc] ‖ label<0..255> ‖ uint32 version ‖ UpdateValue.
 *
 * @example
 * encodeCommitmentValue(opening, label, 0, { value })
 */
export function encodeCommitmentValue(opening: Uint8Array, label: Uint8Array, version: number, update: UpdateValue): Uint8Array {
  abytes(opening, 'opening', NC);
  abytes(label, 'label');
  check(label.length <= 255, 'label longer than 255 bytes');
  const w = new Writer().bytes(opening).opaque(label, 1).u32(version);
  return writeUpdateValue(w, update).finish();
}

/**
 * §11.7 VrfInput = label<0..255> ‖ uint32 version: the VRF's alpha string.
 *
 * @example
 * encodeVrfInput(new TextEncoder().encode('alice'), 0)
 */
export function encodeVrfInput(label: Uint8Array, version: number): Uint8Array {
  abytes(label, 'label');
  check(label.length <= 255, 'label longer than 255 bytes');
  return new Writer().opaque(label, 1).u32(version).finish();
}

/** §11.8 LogEntry = uint64 timestamp ‖ prefix_tree[Nh]. */
export interface LogEntry {
  readonly timestamp: number;
  readonly prefixTree: Uint8Array;
}

/**
 * Encodes a LogEntry.
 *
 * @example
 * encodeLogEntry({ timestamp: Date.now(), prefixTree: root })
 */
export function encodeLogEntry(e: LogEntry): Uint8Array {
  abytes(e.prefixTree, 'prefix_tree', NH);
  return new Writer().u64(e.timestamp).bytes(e.prefixTree).finish();
}

/** §12.2 PrefixLeaf. */
export interface PrefixLeaf {
  readonly vrfOutput: Uint8Array;
  readonly commitment: Uint8Array;
}

/** §12.2 PrefixSearchResult: where one lookup terminated. */
export type PrefixSearchResult =
  | { readonly type: 'inclusion'; readonly depth: number }
  | { readonly type: 'nonInclusionLeaf'; readonly leaf: PrefixLeaf; readonly depth: number }
  | { readonly type: 'nonInclusionParent'; readonly depth: number };

/** §12.2 PrefixProof. */
export interface PrefixProof {
  readonly results: readonly PrefixSearchResult[];
  readonly elements: readonly Uint8Array[];
}

/** Writes a PrefixProof. @internal */
export function writePrefixProof(w: Writer, p: PrefixProof): Writer {
  w.count(p.results.length, 1);
  for (const r of p.results) {
    if (r.type === 'inclusion') w.u8(1);
    else if (r.type === 'nonInclusionLeaf') w.u8(2).bytes(r.leaf.vrfOutput).bytes(r.leaf.commitment);
    else w.u8(3);
    w.u8(r.depth);
  }
  w.count(p.elements.length, 2);
  for (const e of p.elements) w.bytes(e);
  return w;
}

/** Reads a PrefixProof. @internal */
export function readPrefixProof(r: Reader): PrefixProof {
  const n = r.count(1);
  const results: PrefixSearchResult[] = [];
  for (let i = 0; i < n; i++) {
    const t = r.u8();
    if (t === 1) results.push({ type: 'inclusion', depth: r.u8() });
    else if (t === 2) {
      const leaf = { vrfOutput: r.bytes(NH), commitment: r.bytes(NH) };
      results.push({ type: 'nonInclusionLeaf', leaf, depth: r.u8() });
    } else if (t === 3) results.push({ type: 'nonInclusionParent', depth: r.u8() });
    else throw new DirectoryError('KT_MALFORMED', `unknown PrefixSearchResultType ${t}`);
  }
  return { results, elements: readHashes(r) };
}

function readHashes(r: Reader): Uint8Array[] {
  const m = r.count(2);
  const elements: Uint8Array[] = [];
  for (let i = 0; i < m; i++) elements.push(r.bytes(NH));
  return elements;
}

/**
 * Encodes a PrefixProof.
 *
 * @example
 * decodePrefixProof(encodePrefixProof(proof))
 */
export function encodePrefixProof(p: PrefixProof): Uint8Array {
  return writePrefixProof(new Writer(), p).finish();
}

/**
 * Decodes a PrefixProof, refusing trailing bytes.
 *
 * @example
 * const proof = decodePrefixProof(bytes);
 */
export function decodePrefixProof(b: Uint8Array): PrefixProof {
  const r = new Reader(b);
  const p = readPrefixProof(r);
  r.end();
  return p;
}

/**
 * Encodes an InclusionProof (§12.1): `HashValue elements<0..2^16-1>`.
 *
 * @example
 * encodeInclusionProof([])  // Uint8Array [0, 0]
 */
export function encodeInclusionProof(elements: readonly Uint8Array[]): Uint8Array {
  const w = new Writer().count(elements.length, 2);
  for (const e of elements) w.bytes(e);
  return w.finish();
}

/**
 * Decodes an InclusionProof, refusing trailing bytes.
 *
 * @example
 * const elements = decodeInclusionProof(bytes);
 */
export function decodeInclusionProof(b: Uint8Array): Uint8Array[] {
  const r = new Reader(b);
  const e = readHashes(r);
  r.end();
  return e;
}

/** §12.3 CombinedTreeProof. */
export interface CombinedTreeProof {
  readonly timestamps: readonly number[];
  readonly prefixProofs: readonly PrefixProof[];
  readonly prefixRoots: readonly Uint8Array[];
  readonly inclusion: readonly Uint8Array[];
}

/** Writes a CombinedTreeProof. @internal */
export function writeCombinedTreeProof(w: Writer, p: CombinedTreeProof): Writer {
  w.count(p.timestamps.length, 1);
  for (const t of p.timestamps) w.u64(t);
  w.count(p.prefixProofs.length, 1);
  for (const pp of p.prefixProofs) writePrefixProof(w, pp);
  w.count(p.prefixRoots.length, 1);
  for (const r of p.prefixRoots) w.bytes(r);
  w.count(p.inclusion.length, 2);
  for (const e of p.inclusion) w.bytes(e);
  return w;
}

/** Reads a CombinedTreeProof. @internal */
export function readCombinedTreeProof(r: Reader): CombinedTreeProof {
  const timestamps: number[] = [];
  for (let i = r.count(1); i > 0; i--) timestamps.push(r.u64());
  const prefixProofs: PrefixProof[] = [];
  for (let i = r.count(1); i > 0; i--) prefixProofs.push(readPrefixProof(r));
  const prefixRoots: Uint8Array[] = [];
  for (let i = r.count(1); i > 0; i--) prefixRoots.push(r.bytes(NH));
  return { timestamps, prefixProofs, prefixRoots, inclusion: readHashes(r) };
}

/** §13 BinaryLadderStep: a VRF proof (no prefix, VRF.Np bytes) and an optional commitment. */
export interface BinaryLadderStep {
  readonly proof: Uint8Array;
  readonly commitment?: Uint8Array;
}

/** Writes a BinaryLadderStep. @internal */
export function writeBinaryLadderStep(w: Writer, s: BinaryLadderStep): Writer {
  abytes(s.proof, 'VRF proof', VRF_NP);
  w.bytes(s.proof);
  if (s.commitment === undefined) return w.u8(0);
  abytes(s.commitment, 'commitment', NH);
  return w.u8(1).bytes(s.commitment);
}

/** Reads a BinaryLadderStep. @internal */
export function readBinaryLadderStep(r: Reader): BinaryLadderStep {
  const proof = r.bytes(VRF_NP);
  return r.present() ? { proof, commitment: r.bytes(NH) } : { proof };
}

/** §13 MonitorMapEntry. */
export interface MonitorMapEntry {
  readonly position: number;
  readonly version: number;
}

function writeOptionalU64(w: Writer, v: number | undefined): Writer {
  return v === undefined ? w.u8(0) : w.u8(1).u64(v);
}

function writeOptionalU32(w: Writer, v: number | undefined): Writer {
  return v === undefined ? w.u8(0) : w.u8(1).u32(v);
}

function writeEntries(w: Writer, entries: readonly MonitorMapEntry[]): Writer {
  w.count(entries.length, 1);
  for (const e of entries) w.u64(e.position).u32(e.version);
  return w;
}

/** §13.1 SearchRequest. */
export interface SearchRequest {
  /** The tree size the client last verified, if any. */
  readonly last?: number;
  readonly label: Uint8Array;
  /** A fixed version; absent asks for the greatest version. */
  readonly version?: number;
}

/**
 * Encodes a SearchRequest: optional<uint64 last> ‖ label<0..255> ‖ optional<uint32 version>.
 *
 * @example
 * encodeSearchRequest({ label })
 */
export function encodeSearchRequest(q: SearchRequest): Uint8Array {
  const w = writeOptionalU64(new Writer(), q.last).opaque(q.label, 1);
  return writeOptionalU32(w, q.version).finish();
}

/**
 * Encodes a ContactMonitorRequest (§13.2).
 *
 * @example
 * encodeContactMonitorRequest({ label, entries: [{ position: 5, version: 2 }] })
 */
export function encodeContactMonitorRequest(q: { readonly last?: number; readonly label: Uint8Array; readonly entries: readonly MonitorMapEntry[] }): Uint8Array {
  return writeEntries(writeOptionalU64(new Writer(), q.last).opaque(q.label, 1), q.entries).finish();
}

/**
 * Encodes an OwnerInitRequest (§13.3).
 *
 * @example
 * encodeOwnerInitRequest({ label, start: 0 })
 */
export function encodeOwnerInitRequest(q: { readonly last?: number; readonly label: Uint8Array; readonly start: number }): Uint8Array {
  return writeOptionalU64(new Writer(), q.last).opaque(q.label, 1).u64(q.start).finish();
}

/**
 * Encodes an OwnerMonitorRequest (§13.4).
 *
 * @example
 * encodeOwnerMonitorRequest({ label, entries: [], start: 31 })
 */
export function encodeOwnerMonitorRequest(q: {
  readonly last?: number;
  readonly label: Uint8Array;
  readonly entries: readonly MonitorMapEntry[];
  readonly start: number;
  readonly greatestVersion?: number;
}): Uint8Array {
  const w = writeEntries(writeOptionalU64(new Writer(), q.last).opaque(q.label, 1), q.entries).u64(q.start);
  return writeOptionalU32(w, q.greatestVersion).finish();
}

/**
 * Encodes an UpdateRequest (§13.5): last, label, optional greatest version, LabelValue values<0..255>.
 *
 * @example
 * encodeUpdateRequest({ last: 8, label, values: [value] })
 */
export function encodeUpdateRequest(q: {
  readonly last?: number;
  readonly label: Uint8Array;
  readonly greatestVersion?: number;
  readonly values: readonly Uint8Array[];
}): Uint8Array {
  const w = writeOptionalU32(writeOptionalU64(new Writer(), q.last).opaque(q.label, 1), q.greatestVersion);
  w.count(q.values.length, 1);
  for (const v of q.values) w.opaque(v, 4);
  return w.finish();
}

/**
 * Encodes a LabelValue: `opaque value<0..2^32-1>`.
 *
 * @example
 * encodeLabelValue(new Uint8Array(0)) // 00000000
 */
export function encodeLabelValue(value: Uint8Array): Uint8Array {
  return new Writer().opaque(value, 4).finish();
}

/**
 * Encodes an UpdateInfo (§13.5): the opening, plus the signature under thirdPartyManagement.
 *
 * @example
 * encodeUpdateInfo(opening, 1)
 */
export function encodeUpdateInfo(opening: Uint8Array, mode: DeploymentMode, signature?: Uint8Array): Uint8Array {
  abytes(opening, 'opening', NC);
  const w = new Writer().bytes(opening);
  if (mode === 2) w.opaque(signature ?? new Uint8Array(0), 2);
  return w.finish();
}

/**
 * Encodes an UpdateTBS (§11.5): Configuration ‖ label ‖ version ‖ value<0..2^32-1>, what the
 * Service Operator signs under thirdPartyManagement.
 *
 * @example
 * encodeUpdateTbs(config, label, 4, value)
 */
export function encodeUpdateTbs(config: Configuration, label: Uint8Array, version: number, value: Uint8Array): Uint8Array {
  return new Writer().bytes(encodeConfiguration(config)).opaque(label, 1).u32(version).opaque(value, 4).finish();
}

/** Asserts a label fits `label<0..255>`. @internal */
export function alabel(label: unknown): asserts label is Uint8Array {
  abytes(label, 'label');
  check(label.length <= 255, 'label longer than 255 bytes');
}

/** Asserts a version fits uint32. @internal */
export function aversion(v: unknown): asserts v is number {
  auint(v, 'version', 0xffffffff);
}

/**
 * Encodes a CombinedTreeProof (§12.3).
 *
 * @example
 * encodeCombinedTreeProof({ timestamps: [], prefixProofs: [], prefixRoots: [], inclusion: [] })
 */
export function encodeCombinedTreeProof(p: CombinedTreeProof): Uint8Array {
  return writeCombinedTreeProof(new Writer(), p).finish();
}

/**
 * Decodes a CombinedTreeProof, refusing trailing bytes (`KT_MALFORMED`).
 *
 * @example
 * const proof = readCombinedTreeProofBytes(bytes);
 */
export function readCombinedTreeProofBytes(b: Uint8Array): CombinedTreeProof {
  const r = new Reader(b);
  const p = readCombinedTreeProof(r);
  r.end();
  return p;
}
