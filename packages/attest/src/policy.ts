/**
 * Release policies over the normalized claim set: which platforms, which
 * measurements must be present and equal, whether debug evidence is allowed,
 * minimum versions, maximum evidence age. Evaluation is pure (the instant is
 * injected) and deny-by-default: anything the policy requires and the
 * evidence does not show is a refusal.
 */
import { adate, equalBytes } from './bytes.js';
import { PLATFORMS, type AttestationClaims, type Platform } from './claims.js';
import { AttestError, type AttestErrorCode } from './errors.js';

/**
 * A release policy. Every field narrows what is admitted:
 * - `platforms`: the evidence's platform must be one of these (non-empty);
 * - `measurements`: each named measurement must be present and equal one of
 *   the listed lower-case hex values (a missing one fails);
 * - `allowDebug`: debug-mode evidence is refused unless this is `true`;
 * - `minVersions`: each named version must be present and at least this;
 * - `maxAgeSeconds`: evidence dated (issuedAt, else verifiedAt) more than this
 *   before `now` is refused;
 * - `maxClockSkewSeconds`: evidence dated more than this after `now` is
 *   refused (default 60).
 */
export interface ReleasePolicy {
  readonly platforms: readonly Platform[];
  readonly measurements?: Readonly<Record<string, string | readonly string[]>>;
  readonly allowDebug?: boolean;
  readonly minVersions?: Readonly<Record<string, number | bigint>>;
  readonly maxAgeSeconds?: number;
  readonly maxClockSkewSeconds?: number;
}

/** The outcome of {@link evaluatePolicy}. */
export type PolicyDecision = { readonly allowed: true } | { readonly allowed: false; readonly code: AttestErrorCode; readonly reason: string };

const DEFAULT_SKEW_SECONDS = 60;
const NAME = /^[A-Za-z0-9_.:-]{1,64}$/;
const HEX = /^(?:[0-9a-f]{2}){1,128}$/;
const FIELDS = new Set(['platforms', 'measurements', 'allowDebug', 'minVersions', 'maxAgeSeconds', 'maxClockSkewSeconds']);

/**
 * Validates an untrusted policy value (e.g. parsed JSON) and returns a checked
 * copy; ATTEST_INVALID_POLICY on any deviation. Versions may be given as
 * numbers or decimal strings.
 *
 * @example
 * const policy = parseReleasePolicy(JSON.parse(text));
 */
export function parseReleasePolicy(value: unknown): ReleasePolicy {
  const bad = (why: string): never => {
    throw new AttestError('ATTEST_INVALID_POLICY', `release policy: ${why}`);
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return bad('not an object');
  const v = value as Record<string, unknown>;
  for (const k of Object.keys(v)) if (!FIELDS.has(k)) bad(`unknown field ${JSON.stringify(k)}`);

  const platforms = v.platforms;
  if (!Array.isArray(platforms) || platforms.length === 0) return bad('platforms must be a non-empty array');
  const seen = new Set<string>();
  for (const p of platforms) {
    if (typeof p !== 'string' || !(PLATFORMS as readonly string[]).includes(p)) bad(`unknown platform ${JSON.stringify(p)}`);
    if (seen.has(p as string)) bad(`platform ${String(p)} listed twice`);
    seen.add(p as string);
  }
  const out: { -readonly [K in keyof ReleasePolicy]: ReleasePolicy[K] } = { platforms: [...(platforms as Platform[])] };

  if (v.measurements !== undefined) {
    if (typeof v.measurements !== 'object' || v.measurements === null || Array.isArray(v.measurements)) bad('measurements must be an object');
    const m: Record<string, string[]> = {};
    for (const [name, val] of Object.entries(v.measurements as Record<string, unknown>)) {
      if (!NAME.test(name)) bad(`measurement name ${JSON.stringify(name)} is not valid`);
      const list = typeof val === 'string' ? [val] : val;
      if (!Array.isArray(list) || list.length === 0) return bad(`measurement ${name} must be a hex string or a non-empty array of them`);
      for (const h of list) if (typeof h !== 'string' || !HEX.test(h)) bad(`measurement ${name}: ${JSON.stringify(h)} is not lower-case hex`);
      m[name] = [...(list as string[])];
    }
    out.measurements = m;
  }
  if (v.allowDebug !== undefined) {
    if (typeof v.allowDebug !== 'boolean') bad('allowDebug must be a boolean');
    out.allowDebug = v.allowDebug as boolean;
  }
  if (v.minVersions !== undefined) {
    if (typeof v.minVersions !== 'object' || v.minVersions === null || Array.isArray(v.minVersions)) bad('minVersions must be an object');
    const mv: Record<string, bigint> = {};
    for (const [name, val] of Object.entries(v.minVersions as Record<string, unknown>)) {
      if (!NAME.test(name)) bad(`version name ${JSON.stringify(name)} is not valid`);
      let n: bigint | undefined;
      if (typeof val === 'bigint') n = val;
      else if (typeof val === 'number' && Number.isSafeInteger(val)) n = BigInt(val);
      else if (typeof val === 'string' && /^[0-9]{1,20}$/.test(val)) n = BigInt(val);
      if (n === undefined || n < 0n) return bad(`minVersions.${name} must be a non-negative integer`);
      mv[name] = n;
    }
    out.minVersions = mv;
  }
  for (const k of ['maxAgeSeconds', 'maxClockSkewSeconds'] as const) {
    const x = v[k];
    if (x === undefined) continue;
    if (typeof x !== 'number' || !Number.isFinite(x) || x < 0) bad(`${k} must be a non-negative number`);
    out[k] = x as number;
  }
  return out;
}

/**
 * Evaluates `policy` over `claims` at `now`; returns the first failing rule,
 * checked in this order: platform, measurements, debug, versions, age.
 *
 * @example
 * const d = evaluatePolicy(policy, claims, new Date());
 * if (!d.allowed) audit('refused', d.code);
 */
export function evaluatePolicy(policy: ReleasePolicy, claims: AttestationClaims, now: Date): PolicyDecision {
  const p = parseReleasePolicy(policy);
  adate(now);
  const deny = (code: AttestErrorCode, reason: string): PolicyDecision => ({ allowed: false, code, reason });

  if (!p.platforms.includes(claims.platform)) return deny('ATTEST_POLICY_PLATFORM', `platform ${claims.platform} is not allowed`);

  for (const [name, allowed] of Object.entries(p.measurements ?? {})) {
    const got = Object.hasOwn(claims.measurements, name) ? claims.measurements[name] : undefined;
    if (got === undefined) return deny('ATTEST_POLICY_MEASUREMENT_MISSING', `measurement ${name} is required and absent`);
    const list = typeof allowed === 'string' ? [allowed] : allowed;
    if (!list.some((h) => equalBytes(Buffer.from(h, 'hex'), got))) return deny('ATTEST_POLICY_MEASUREMENT_MISMATCH', `measurement ${name} is not an allowed value`);
  }

  if (claims.debug && p.allowDebug !== true) return deny('ATTEST_POLICY_DEBUG', 'the evidence comes from a debug-mode TEE');

  for (const [name, min] of Object.entries(p.minVersions ?? {})) {
    const got = Object.hasOwn(claims.versions, name) ? claims.versions[name] : undefined;
    if (got === undefined) return deny('ATTEST_POLICY_VERSION', `version ${name} is required and absent`);
    if (got < BigInt(min)) return deny('ATTEST_POLICY_VERSION', `version ${name} is ${got}, below the minimum ${min}`);
  }

  const dated = claims.issuedAt ?? claims.verifiedAt;
  const ageMs = now.getTime() - dated.getTime();
  const skewMs = (p.maxClockSkewSeconds ?? DEFAULT_SKEW_SECONDS) * 1000;
  if (ageMs < -skewMs) return deny('ATTEST_POLICY_EVIDENCE_AGE', `the evidence is dated ${-ageMs} ms in the future`);
  if (p.maxAgeSeconds !== undefined && ageMs > p.maxAgeSeconds * 1000) return deny('ATTEST_POLICY_EVIDENCE_AGE', `the evidence is ${ageMs} ms old, more than ${p.maxAgeSeconds} s`);
  return { allowed: true };
}

/**
 * Like {@link evaluatePolicy}, but throws the refusal as an AttestError.
 *
 * @example
 * enforcePolicy(policy, verifyNitroDocument(doc, opts), now); // throws ATTEST_POLICY_* on refusal
 */
export function enforcePolicy(policy: ReleasePolicy, claims: AttestationClaims, now: Date): void {
  const d = evaluatePolicy(policy, claims, now);
  if (!d.allowed) throw new AttestError(d.code, d.reason);
}
