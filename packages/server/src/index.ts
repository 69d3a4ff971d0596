/**
 * `@keyward/server`: the key service, and the parts of it the CLI runs
 * locally (init, unseal share handling, offline audit verification).
 */
export { startServer, SERVER_VERSION, type RunningServer } from './server.js';
export {
  loadConfig, configFromEnv, ServerConfigSchema, ServerStartError,
  type ServerConfig, type ServerConfigInput, type ServerStartReason,
} from './config.js';
export { ERROR_REGISTRY, API_ERRORS, type ApiErrorCode } from './api/errors.js';
export {
  initDataDir, INIT_TOKEN_TTL_SECONDS, INIT_PRINCIPAL, INIT_NAMESPACE, SHARES_DIR, STORE_FILE, TOKEN_FILE, VERIFIER_KEY_FILE,
  type InitDataDirOptions, type InitOutcome, type RunningInit,
} from './init.js';
export { initCustody, type ShareFile, type CustodyState } from './keyholder/custody.js';
export { hsmRewrap, type HsmRewrapOptions, type HsmRewrapOutcome, type RewrapTarget } from './hsm-rewrap.js';
export { splitToRecipients, openCustodianShare, type CustodianShare } from './keyholder/custodians.js';
export { sealShareForBoot, unsealContext } from './keyholder/unseal-key.js';
export { decodeShareFile, type DecodedShare } from './keyholder/share-file.js';
export { buildInitState, StateFile, STATE_FILE_NAME, type InitState, type KeyholderState } from './keyholder/state.js';
export { openSqliteStore, type Store, type StoreTx, type SqliteStore } from './store/index.js';
export {
  openPostgresStore, migratePostgresStore, migrateConfiguredStore, openConfiguredStore, storeLocation, isPostgresUrl, redactUrl,
  type PostgresStore, type MigrateOutcome, type StoreLocation,
} from './store/index.js';
export { openSqliteStoreReadOnly, CURRENT_SCHEMA_VERSION, type ReadOnlyStore } from './store/sqlite-readonly.js';
export { verifyApprovals } from './audit/verify-approvals.js';
export { verifyExport, verifySegments, splitSegments, type SegmentsResult, canonicalJson, AUDIT_EXPORT_VERSION, fullExportHeaderLine, type VerifyResult, type AuditProblem } from './audit/index.js';
export {
  wrapForImport, verifyImportParams, importParamsMessage, IMPORT_ALGORITHM, IMPORT_MATERIAL_LENGTHS, type ImportParamsFacts,
} from './keyholder/import.js';
export { startWitness, generateWitnessKey, type WitnessOptions, type WitnessedLog, type RunningWitness } from './witness/server.js';
export { WitnessStateFile, WITNESS_STATE_FILE } from './witness/state.js';
export {
  AuditWitnessPublisher, readWitnessStatus, META_WITNESSED, META_WITNESS_LATEST, META_WITNESS_STATUS,
  type WitnessStatus, type WitnessStatusEntry, type WitnessedCheckpoint,
} from './witness/publisher.js';
export { readDirectoryWitnessState, type DirectoryWitnessState } from './directory/witness.js';
export { listNodes, type NodeRecord } from './api/nodes.js';
// The enclave-ready keyholder (issue #8; docs/tee.md): its entry point, the attested channel and TCP transport.
export { keyholderEntry } from './keyholder/entry.js';
export { AttestedTransport, parseAuthorizedClients, parseClientKey, channelBinding, type ChannelEvidenceProvider, type ChannelEvidenceVerifier } from './keyholder/attested-channel.js';
export { TcpTransport, parseTcpAddress } from './keyholder/tcp-transport.js';
export { Tpm2ChannelEvidence, tpmChannelVerifier } from './keyholder/tpm-evidence.js';
