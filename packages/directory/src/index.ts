/**
 * `@keyward/directory` — key transparency for the Keyward directory, following
 * draft-ietf-keytrans-protocol-05 with the KT_128_SHA256_Ed25519 cipher suite.
 * Pure TypeScript over audited `@noble/*`; runs unchanged in Node and browsers.
 *
 * - RFC 9381 ECVRF-EDWARDS25519-SHA512 (TAI and ELL2) and the KEYTRANS VRF wrapper.
 * - Commitments, the prefix tree, the log tree, tree heads and every wire structure.
 * - A storage-agnostic {@link DirectoryBuilder} (server side) and a {@link DirectoryClient}
 *   that verifies every answer and refuses rollback and forks.
 *
 * Every failure is a {@link DirectoryError} with a stable `code`. See docs/directory.md.
 *
 * @example
 * const store = new MemoryDirectoryStore();
 * const log = await DirectoryBuilder.create(store, keys, config);
 * await log.update([{ label, value }]);
 * const client = new DirectoryClient(config);
 * const { value } = client.verifySearch({ label }, await log.search({ label, last: client.treeSize }));
 *
 * @packageDocumentation
 */
export { DIRECTORY_ERROR_CODES, DirectoryError, isDirectoryError, type DirectoryErrorCode } from './errors.js';
export { fromHex, toHex } from './bytes.js';
export { ECVRF_PROOF_LENGTH, ecvrfProofToHash, ecvrfProve, ecvrfPublicKey, ecvrfVerify, type EcvrfSuite } from './ecvrf.js';
export { KC, KT_128_SHA256_ED25519, KT_128_SHA256_P256, NC, NH, VRF_NH, VRF_NP, ZERO_HASH } from './suite.js';
export { vrfEvaluate, vrfP256Evaluate, vrfP256Verify, vrfPublicKey, vrfVerify } from './vrf.js';
export {
  ECVRF_P256_PROOF_LENGTH,
  ecvrfP256ProofToHash,
  ecvrfP256Prove,
  ecvrfP256PublicKey,
  ecvrfP256Verify,
  type EcvrfP256Suite,
} from './ecvrf-p256.js';
export { commit, randomOpening, verifyCommitment } from './commitment.js';
export { signTreeHead, verifyTreeHead } from './tree-head.js';
export * from './structs.js';
export {
  LogFrontier,
  batchCopath,
  evaluateBatch,
  fullSubtrees,
  logLeafValue,
  logParentValue,
  logRoot,
  logSubtreeValue,
  nodeIndex,
  proveBatch,
  splitPoint,
  verifyBatch,
  type LogRange,
  type RetainedView,
  type SubtreeSource,
} from './log-tree.js';
export {
  evaluatePrefixProof,
  keyBit,
  prefixInsert,
  prefixLeafValue,
  prefixNodeValue,
  prefixParentValue,
  prefixProve,
  prefixSearch,
  verifyPrefixProof,
  type PrefixLookup,
  type PrefixNode,
  type PrefixNodeReader,
} from './prefix-tree.js';
export { MemoryDirectoryStore, type AppendBatch, type DirectoryStore, type StoredVersion } from './store.js';
export {
  DirectoryBuilder,
  memoryDirectoryKeys,
  type ContactMonitorRequest,
  type DirectoryKeyHolder,
  type DirectoryKeys,
  type DirectoryParams,
  type LabelUpdate,
  type OwnerInitRequest,
  type OwnerMonitorRequest,
  type SignedHeadRequest,
} from './builder.js';
export { DirectoryClient, type ClientOptions, type FrontierEntry, type KnownVersion, type LabelState, type SearchResult, type VerifiedHead } from './client.js';
export { ibstFrontier, ibstIsLeaf, ibstLeft, ibstPathTo, ibstRight, ibstRoot, updateView } from './ibst.js';
export { baseBinaryLadder, interpretSearchLadder, monitoringBinaryLadder, searchBinaryLadder } from './ladder.js';
export { isDistinguished, previousRightmostDistinguished, rightmostDistinguished, type TimestampSource } from './distinguished.js';
export {
  ProofReader,
  fixedVersionSearch,
  greatestVersionSearch,
  isExpired,
  type FixedOutcome,
  type GreatestOutcome,
  type LadderKey,
  type LadderSpec,
  type ProofSource,
  type RetainedEntries,
} from './combined.js';
export {
  answerSize,
  completeFrontier,
  decodeSearchResponse,
  encodeSearchResponse,
  finishCombinedProof,
  runSearch,
  verifySearchResponse,
  type SearchContext,
  type SearchResponse,
  type VerifiedSearch,
} from './search.js';
export {
  contactMonitor,
  decodeMonitorResponse,
  decodeOwnerInitResponse,
  encodeMonitorResponse,
  encodeOwnerInitResponse,
  ownerInit,
  ownerInitLadder,
  ownerMonitor,
  type MonitorResponse,
  type OwnerInitResponse,
} from './monitor.js';
export {
  decodeUpdateResponse,
  encodeUpdateResponse,
  ownerGreatestAt,
  updateLadderVersions,
  updateProof,
  type OwnerState,
  type UpdateInfo,
  type UpdateOutcome,
  type UpdateResponse,
} from './update.js';
export { Auditor, decodeAuditorUpdate, encodeAuditorUpdate, prefixBeforeAfter, type AuditorState, type AuditorUpdate, type PrefixMutation } from './audit.js';
