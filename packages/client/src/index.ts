/**
 * @keyward/client — the key service client. This entry point holds the
 * request-signing profile the key service requires (RFC 9421 HTTP Message
 * Signatures with Ed25519, over an RFC 9530 Content-Digest): the caller signs
 * with {@link signRequest}, the keyholder verifies with {@link verifyRequest}.
 * Everything here is a pure function over plain data and runs in Node and
 * browsers.
 *
 * @example
 * // client
 * const sig = signRequest({ method: 'POST', url, headers: {}, body }, { keyId, privateKey: deviceSeed });
 * await fetch(url, { method: 'POST', body, headers: sig });
 * // keyholder
 * const v = await verifyRequest({ method, url, headers, body }, { keyLookup, seenNonce: replay.seen });
 */

export { signRequest, type SignOptions, type SignatureHeaders } from './httpsig/sign.js';
export { verifyRequest, type VerifyOptions, type VerifiedRequest } from './httpsig/verify.js';
export { contentDigest, verifyContentDigest } from './httpsig/digest.js';
export { MemoryReplayCache, type ReplayCache, type NonceContext } from './httpsig/replay.js';
export {
  createSignatureBase,
  DEFAULT_COMPONENTS,
  DERIVED_COMPONENTS,
  type HttpRequestLike,
  type HeadersInput,
} from './httpsig/base.js';
export type { SignatureParams } from './httpsig/structured.js';
export { HttpSigError, isHttpSigError, HTTPSIG_ERROR_CODES, type HttpSigErrorCode } from './httpsig/errors.js';

// Key service client: HTTP v1 API, kms stanzas for @keyward/core, data-key cache.
export {
  KeywardHttpClient,
  JsonText,
  signedRequestHash,
  DATA_OPERATIONS,
  DATA_OPERATION_RETRY,
  type DataOperation,
  type DeviceKey,
  type KeywardHttpClientOptions,
  type RequestOptions,
  type JsonResponse,
  type HttpMethod,
} from './http/client.js';
export {
  KeywardClientError,
  isKeywardClientError,
  CLIENT_ERROR_CODES,
  type ClientErrorCode,
  type AttemptFailure,
  type KeywardClientErrorOptions,
} from './http/errors.js';
export {
  KmsKeyService,
  kmsRecipient,
  kmsIdentity,
  serviceKeyIdentities,
  type KmsKeyServiceOptions,
  type GenerateDataKeyOptions,
  type KmsSealOptions,
  type RequestHashCheck,
} from './kms/client.js';
export { encodeKmsStanza, decodeKmsStanza, parseKeyRef, KMS_STANZA_TYPE, type ParsedKmsStanza, type KeyRef } from './kms/stanza.js';
export { kmsMac, kmsRewrap, MAX_REWRAP_ITEMS, MAX_MAC_MESSAGE_BYTES, type MacResult, type RewrapItem, type RewrappedKey } from './kms/data-ops.js';
export {
  DataKeyCache,
  DATA_KEY_CACHE_DEFAULT_MAX_AGE_MS,
  DATA_KEY_CACHE_MAX_AGE_CEILING_MS,
  DATA_KEY_CACHE_DEFAULT_MAX_MESSAGES,
  DATA_KEY_CACHE_DEFAULT_MAX_BYTES,
  DATA_KEY_CACHE_DEFAULT_CAPACITY,
  type DataKeyCacheOptions,
  type DataKeyWithStanza,
  type SealingKeyId,
  type UnwrapKeyId,
  type DataKeyCacheTableStats,
} from './cache/datakey-cache.js';

// The directory's records (issue #6): identity and group values, device keys, signed changes.
export {
  DEVICE_HPKE_ALGS,
  DEVICE_ID,
  ENTITY_NAME,
  DirectoryRecordError,
  changeMessage,
  checkDeviceKeys,
  decodeGroupValue,
  decodeIdentityValue,
  encodeEntityValue,
  entityLabel,
  signChange,
  verifyChange,
  type ChangeSigner,
  type DeviceHpkeAlg,
  type DeviceKeys,
  type DeviceRecord,
  type GroupValue,
  type IdentityChange,
  type IdentityValue,
} from './directory/records.js';
export {
  Directory,
  DirectoryServiceError,
  devicePublicKeys,
  fetchTransport,
  generateDevice,
  safetyNumber,
  type DeviceSecrets,
  type DirectoryTransport,
  type MonitorReport,
} from './directory/client.js';
// Witnessed directory heads (issue #6; docs/witness.md §The directory).
export {
  DEFAULT_MAX_COSIGNATURE_AGE_S,
  DirectoryWitnessCheck,
  checkPinnedWitnesses,
  headLogEntry,
  parseWitnessConfig,
  witnessConfigChanges,
  type DirectoryWitnessConfig,
  type WitnessedHead,
  type WitnessedHeadAnswer,
} from './directory/witnessed.js';
