/**
 * `server/audit`: the hash-chained, Merkle-tree audit log with signed
 * checkpoints, its export, and the offline verifier. See docs/audit.md.
 *
 * @example
 * const log = new AuditLog(storage, { origin: 'keyward.example/audit/prod-1' });
 * await log.appendEvent({ ns: 'billing', principal: 'svc-orders', auth: 'signature', op: 'data.unwrap', outcome: 'allowed' });
 * await log.checkpoint(signer);
 * const report = verifyExport(await exportLog(log), { verifierKey });
 */
export { AUDIT_ERRORS, AUDIT_PROBLEMS, AuditError, isAuditError, type AuditErrorCode, type AuditErrorDetails, type AuditProblemCode } from './errors.js';
export { MAX_JSON_DEPTH, canonicalJson, canonicalJsonBytes, parseCanonicalJson, type JsonObject, type JsonValue } from './canonical-json.js';
export {
  AUDIT_EVENT_VERSION,
  AUTH_KINDS,
  AuditEventInputSchema,
  AuditEventSchema,
  GENESIS_PREV,
  KNOWN_OPS,
  MAX_EVENT_BYTES,
  OUTCOMES,
  buildEvent,
  canonicalBytes,
  eventHash,
  eventLeafHash,
  parseEvent,
  type AuditEvent,
  type AuditEventInput,
} from './event.js';
export { DEFAULT_SENSITIVE_PATHS, REDACTED_RE, REDACT_LABEL, localHmacKey, redact, redactionMessage, type HmacKey } from './redact.js';
export { FailureSummarizer, MAX_SUMMARY_BUCKETS, addressBucket, type FailureSummarizerOptions } from './summary.js';
export { CompactRange, MerkleCache, alignedRanges } from './tree.js';
export {
  AuditLog,
  READ_PAGE,
  type AppendedEvent,
  type AuditAppend,
  type AuditCheckpointRecord,
  type AuditLogOptions,
  type AuditStorage,
  type SignedCheckpoint,
  type StoredEvent,
} from './log.js';
export { AUDIT_EXPORT_VERSION, exportLog, exportLogLines, fullExportHeaderLine, type ExportHeader, type ExportOptions } from './export.js';
export { AuditShipper, MAX_SEGMENT_EVENTS, fileSink, httpSink, metaPosition, sinkFromUrl, splitSegments, syslogSink, verifySegments, type AuditSink, type SegmentsResult, type ShipPosition } from './ship.js';
export { auditStorageOf } from './store-adapter.js';
export { MAX_PROBLEMS, verifyExport, type AuditProblem, type VerifyOptions, type VerifyResult } from './verify.js';
export { RECEIPT_LABEL, destroyReceipt, receiptMessage, verifyReceipt, type DestroyReceipt, type DestroyReceiptFacts, type ReceiptSigner } from './receipt.js';
