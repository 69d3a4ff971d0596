/**
 * Release policies on keys (issue #8; docs/tee.md §Release flow): which TEE
 * evidence may receive a data key of an `aes256` key. The document is
 * @keyward/attest's `ReleasePolicy` (platforms, measurements, allowDebug,
 * minVersions, maxAgeSeconds, maxClockSkewSeconds), validated by its
 * `parseReleasePolicy` — a malformed one is KW_RELEASE_POLICY_INVALID (reason
 * ATTEST_INVALID_POLICY) and nothing is stored.
 *
 * Stored with the key as store meta `key.release_policy:<ns>/<name>`: the
 * RFC 8785 canonical JSON of the checked policy (versions as decimal
 * strings), written in the transaction of its `keys.release_policy` audit
 * event. Its SHA-256 is the policy hash bound into every release.
 *
 * @example
 * const p = checkReleasePolicy({ platforms: ['tpm2'], measurements: { 'sha256:PCR7': 'ab…' } });
 * p.hash // 64 hex digits
 */
import { createHash } from 'node:crypto';
import { isAttestError, parseReleasePolicy, type ReleasePolicy } from '@keyward/attest';
import { canonicalJson } from '../keyholder/canonical-json.js';
import type { StoreTx } from '../store/index.js';
import { ApiError } from './errors.js';

/** The store meta key of a key's release policy. */
export const releasePolicyMetaKey = (ns: string, name: string): string => `key.release_policy:${ns}/${name}`;

/** A checked release policy, its canonical text and hash. */
export interface StoredReleasePolicy {
  readonly policy: ReleasePolicy;
  /** The canonical JSON document (what GET returns and what is hashed). */
  readonly document: Record<string, unknown>;
  readonly text: string;
  /** SHA-256 of `text`, lower-case hex. */
  readonly hash: string;
}

/** The JSON form of a checked policy: bigints as decimal strings, fields in a fixed set. */
function documentOf(p: ReleasePolicy): Record<string, unknown> {
  return {
    platforms: [...p.platforms],
    ...(p.measurements ? { measurements: Object.fromEntries(Object.entries(p.measurements).map(([k, v]) => [k, typeof v === 'string' ? [v] : [...v]])) } : {}),
    ...(p.allowDebug !== undefined ? { allowDebug: p.allowDebug } : {}),
    ...(p.minVersions ? { minVersions: Object.fromEntries(Object.entries(p.minVersions).map(([k, v]) => [k, String(v)])) } : {}),
    ...(p.maxAgeSeconds !== undefined ? { maxAgeSeconds: p.maxAgeSeconds } : {}),
    ...(p.maxClockSkewSeconds !== undefined ? { maxClockSkewSeconds: p.maxClockSkewSeconds } : {}),
  };
}

/** Validates an untrusted policy value; KW_RELEASE_POLICY_INVALID (reason ATTEST_INVALID_POLICY) on any deviation. */
export function checkReleasePolicy(value: unknown): StoredReleasePolicy {
  let policy: ReleasePolicy;
  try {
    policy = parseReleasePolicy(value);
  } catch (e) {
    if (isAttestError(e)) throw new ApiError('KW_RELEASE_POLICY_INVALID', e.message, { reason: e.code });
    throw e;
  }
  for (const k of ['maxAgeSeconds', 'maxClockSkewSeconds'] as const) {
    const x = policy[k];
    if (x !== undefined && (!Number.isInteger(x) || x > 10 * 365 * 86_400)) {
      throw new ApiError('KW_RELEASE_POLICY_INVALID', `release policy: ${k} must be a whole number of seconds up to 10 years`, { reason: 'ATTEST_INVALID_POLICY' });
    }
  }
  const document = documentOf(policy);
  let text: string;
  try {
    text = canonicalJson(document);
  } catch (e) {
    throw new ApiError('KW_RELEASE_POLICY_INVALID', 'release policy: not representable as canonical JSON', { reason: 'ATTEST_INVALID_POLICY', cause: e });
  }
  return { policy, document, text, hash: createHash('sha256').update(text).digest('hex') };
}

/** The key's release policy, or null. A stored document that no longer parses is treated as absent (deny). */
export async function loadReleasePolicy(store: Pick<StoreTx, 'getMeta'>, ns: string, name: string): Promise<StoredReleasePolicy | null> {
  const text = await store.getMeta(releasePolicyMetaKey(ns, name));
  if (text === null || text === '') return null;
  try {
    const p = checkReleasePolicy(JSON.parse(text));
    return p.text === text ? p : null;
  } catch {
    return null;
  }
}
