/** Shared fixtures for the httpsig tests: a device key, a request, and assertion helpers. */
import assert from 'node:assert/strict';
import { ed25519 } from '@noble/curves/ed25519.js';
import {
  HttpSigError,
  MemoryReplayCache,
  signRequest,
  verifyRequest,
  type HttpRequestLike,
  type HttpSigErrorCode,
  type SignOptions,
  type VerifyOptions,
} from '../src/index.js';

/** A fixed device key (seed 0x01..0x20), so failures reproduce. */
export const SEED = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
export const PUBLIC_KEY = ed25519.getPublicKey(SEED);
export const KEY_ID = 'device-1';
export const NOW = 1_750_000_000;

export const BODY = '{"key":"app/db","recipient":"kwhpke1example","context":{"tenant":"t1"}}';

/** A data-plane request as the client builds it (before signing). */
export function baseRequest(): { method: string; url: string; headers: Record<string, string>; body: string } {
  return {
    method: 'POST',
    url: 'https://kms.example.com/v1/ns/app/keys/db:datakey?version=3',
    headers: { 'content-type': 'application/json' },
    body: BODY,
  };
}

/** Signs `req` and returns it with the signature fields merged into its headers. */
export function signed(
  req: ReturnType<typeof baseRequest> = baseRequest(),
  opts: Partial<SignOptions> = {},
): { method: string; url: string; headers: Record<string, string | string[]>; body: string | Uint8Array } {
  const sig = signRequest(req, { keyId: KEY_ID, privateKey: SEED, created: NOW, ...opts });
  return { ...req, headers: { ...req.headers, ...sig } };
}

/** Verify options with a one-key registry and a fresh replay cache. */
export function verifyOpts(extra: Partial<VerifyOptions> = {}): VerifyOptions {
  const cache = new MemoryReplayCache();
  return {
    keyLookup: (id) => (id === KEY_ID ? PUBLIC_KEY : null),
    seenNonce: cache.seen,
    now: NOW,
    ...extra,
  };
}

/** Asserts that verification fails with exactly `code`. */
export async function rejectsWith(req: HttpRequestLike, code: HttpSigErrorCode, opts: VerifyOptions = verifyOpts()): Promise<void> {
  await assert.rejects(verifyRequest(req, opts), (e: unknown) => {
    assert.ok(e instanceof HttpSigError, `expected HttpSigError, got ${String(e)}`);
    assert.equal(e.code, code, `expected ${code}, got ${e.code}: ${e.message}`);
    return true;
  });
}

/** Replaces a header's value (exact, lowercase-keyed as `signed` produces them). */
export function withHeader<T extends { headers: Record<string, string | string[]> }>(req: T, name: string, value: string | string[] | undefined): T {
  const headers = { ...req.headers };
  if (value === undefined) delete headers[name];
  else headers[name] = value;
  return { ...req, headers };
}
