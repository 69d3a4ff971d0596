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
