/**
 * `@keyward/tlog` — transparency-log primitives shared by the audit log, the
 * key directory, clients and the console. Pure TypeScript over `@noble/*` and
 * `@scure/base`; runs unchanged in Node and browsers.
 *
 * - RFC 9162 Merkle trees: hashes, tree heads, inclusion and consistency proofs.
 * - A compact frontier that appends leaves, computes roots and is checked
 *   against a signed tree head when rebuilt from untrusted input.
 * - C2SP signed notes, checkpoints and cosignatures (Ed25519).
 *
 * Every failure is a {@link TlogError} with a stable `code`. See docs/tlog.md.
 *
 * @example
 * import { Frontier, leafHash, signCheckpoint, openCheckpoint, newSigner, newVerifier } from '@keyward/tlog';
 *
 * const f = Frontier.empty();
 * f.append(leafHash(new TextEncoder().encode('event 1')));
 * const note = signCheckpoint(newSigner(skey), { origin: 'example.com/audit', size: f.size, root: f.root() });
 * const { checkpoint } = openCheckpoint(note, [newVerifier(vkey)], { origin: 'example.com/audit' });
 *
 * @packageDocumentation
 */

export { TLOG_ERROR_CODES, TlogError, isTlogError, type TlogErrorCode } from './errors.js';

export {
  consistencyProof,
  consistencyRanges,
  emptyRoot,
  inclusionProof,
  inclusionRanges,
  leafHash,
  nodeHash,
  rootFromInclusionProof,
  rootFromLeaves,
  verifyConsistency,
  verifyInclusion,
  type SubtreeRange,
} from './merkle.js';

export { Frontier, type FrontierConsistency } from './frontier.js';

export {
  DEFAULT_NOTE_LIMITS,
  SIGNATURE_TYPE_ED25519,
  addSignatures,
  ed25519Signer,
  ed25519Verifier,
  formatNote,
  formatVerifierKey,
  generateSignerKey,
  isValidKeyName,
  keyId,
  newSigner,
  newVerifier,
  openNote,
  parseNote,
  parseSignerKey,
  parseVerifierKey,
  signNote,
  type Note,
  type NoteLimits,
  type NoteSignature,
  type NoteSigner,
  type NoteVerifier,
  type OpenedNote,
  type SignerKey,
  type VerifierKey,
} from './note.js';

export {
  formatCheckpoint,
  openCheckpoint,
  parseCheckpoint,
  signCheckpoint,
  type Checkpoint,
  type OpenedCheckpoint,
} from './checkpoint.js';

export {
  SIGNATURE_TYPE_COSIGNATURE_V1,
  cosignatureMessage,
  cosignatureVerifier,
  cosignatureVerifierKey,
  cosigner,
  newCosignatureVerifier,
  newCosigner,
  parseCosignature,
  requireCosignatures,
  type Cosignature,
  type CosignaturePayload,
  type CosignaturePolicyOptions,
  type CosignatureVerifier,
  type CosignerOptions,
} from './cosignature.js';

export {
  SIZE_MEDIA_TYPE,
  addCheckpoint,
  collectCosignatures,
  formatAddCheckpoint,
  openWitnessedCheckpoint,
  parseAddCheckpoint,
  verifyWitnessedLatestEntry,
  witnessCheck,
  witnessHttpStatus,
  witnessPolicy,
  type AddCheckpointRequest,
  type AddCheckpointResult,
  type CollectOptions,
  type CollectedCosignatures,
  type WitnessAccepted,
  type WitnessClientOptions,
  type WitnessEndpoint,
  type WitnessFailure,
  type WitnessLogState,
  type WitnessPolicy,
  type WitnessedCheckpointOptions,
} from './witness.js';
