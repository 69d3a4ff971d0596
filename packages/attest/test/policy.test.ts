/**
 * The release-policy evaluator: each rule, the validation of untrusted
 * policies, and the property that narrowing a policy never admits more.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { PLATFORMS, evaluatePolicy, parseReleasePolicy, type AttestationClaims, type Platform, type ReleasePolicy } from '../src/index.js';
import { throwsAttest } from './helpers.js';

const NOW = new Date('2026-01-01T00:00:00Z');
const claims = (over: Partial<AttestationClaims> = {}): AttestationClaims => ({
  platform: 'aws-nitro',
  measurements: { PCR0: Uint8Array.of(1, 2), PCR1: Uint8Array.of(3) },
  versions: { v: 5n },
  debug: false,
  nonce: undefined,
  publicKey: undefined,
  issuedAt: new Date(NOW.getTime() - 10_000),
  verifiedAt: NOW,
  extra: {},
  ...over,
});

void describe('policy rules', () => {
  const base: ReleasePolicy = { platforms: ['aws-nitro'], measurements: { PCR0: '0102' }, minVersions: { v: 5 }, maxAgeSeconds: 60 };

  void test('admits matching evidence', () => {
    assert.deepEqual(evaluatePolicy(base, claims(), NOW), { allowed: true });
    assert.deepEqual(evaluatePolicy({ ...base, measurements: { PCR0: ['ffff', '0102'] } }, claims(), NOW), { allowed: true });
  });

  void test('each rule refuses with its code', () => {
    const code = (p: ReleasePolicy, c: AttestationClaims = claims()): string | undefined => {
      const d = evaluatePolicy(p, c, NOW);
      return d.allowed ? undefined : d.code;
    };
    assert.equal(code({ ...base, platforms: ['tpm2'] }), 'ATTEST_POLICY_PLATFORM');
    assert.equal(code({ ...base, measurements: { PCR0: '0103' } }), 'ATTEST_POLICY_MEASUREMENT_MISMATCH');
    assert.equal(code({ ...base, measurements: { PCR0: '01' } }), 'ATTEST_POLICY_MEASUREMENT_MISMATCH');
    assert.equal(code({ ...base, measurements: { PCR7: '00' } }), 'ATTEST_POLICY_MEASUREMENT_MISSING');
    assert.equal(code({ ...base, measurements: { constructor: '00' } }), 'ATTEST_POLICY_MEASUREMENT_MISSING');
    assert.equal(code(base, claims({ debug: true })), 'ATTEST_POLICY_DEBUG');
    assert.equal(code({ ...base, allowDebug: true }, claims({ debug: true })), undefined);
    assert.equal(code({ ...base, minVersions: { v: 6 } }), 'ATTEST_POLICY_VERSION');
    assert.equal(code({ ...base, minVersions: { w: 0 } }), 'ATTEST_POLICY_VERSION');
    assert.equal(code({ ...base, maxAgeSeconds: 9 }), 'ATTEST_POLICY_EVIDENCE_AGE');
    assert.equal(code(base, claims({ issuedAt: new Date(NOW.getTime() + 61_000) })), 'ATTEST_POLICY_EVIDENCE_AGE');
    assert.equal(code({ ...base, maxClockSkewSeconds: 120 }, claims({ issuedAt: new Date(NOW.getTime() + 61_000) })), undefined);
    // no timestamp in the evidence: the verification instant counts
    assert.equal(code({ ...base, maxAgeSeconds: 1 }, claims({ issuedAt: undefined, verifiedAt: new Date(NOW.getTime() - 2000) })), 'ATTEST_POLICY_EVIDENCE_AGE');
  });

  void test('untrusted policies are validated', () => {
    const bad: unknown[] = [
      null,
      [],
      {},
      { platforms: [] },
      { platforms: ['sev'] },
      { platforms: ['tpm2', 'tpm2'] },
      { platforms: ['tpm2'], extra: 1 },
      { platforms: ['tpm2'], measurements: { PCR0: 'ABCD' } },
      { platforms: ['tpm2'], measurements: { PCR0: 'abc' } },
      { platforms: ['tpm2'], measurements: { PCR0: [] } },
      { platforms: ['tpm2'], measurements: { 'bad name!': '00' } },
      { platforms: ['tpm2'], allowDebug: 'yes' },
      { platforms: ['tpm2'], minVersions: { v: -1 } },
      { platforms: ['tpm2'], minVersions: { v: 1.5 } },
      { platforms: ['tpm2'], maxAgeSeconds: -1 },
      { platforms: ['tpm2'], maxAgeSeconds: Number.NaN },
    ];
    for (const p of bad) throwsAttest(() => parseReleasePolicy(p), 'ATTEST_INVALID_POLICY');
    assert.deepEqual(parseReleasePolicy({ platforms: ['tpm2'], minVersions: { 'tpm.firmware': '2310767700000000000' } }).minVersions, { 'tpm.firmware': 2310767700000000000n });
    throwsAttest(() => evaluatePolicy({ platforms: [] }, claims(), NOW), 'ATTEST_INVALID_POLICY');
  });
});

// --- property: narrowing a policy never admits more ------------------------------------

const NAMES = ['A', 'B', 'C'];
const VALUES = ['00', '01', '02'];
const VERSIONS = ['v', 'w'];

const arbClaims: fc.Arbitrary<AttestationClaims> = fc.record({
  platform: fc.constantFrom(...PLATFORMS),
  measurements: fc.dictionary(fc.constantFrom(...NAMES), fc.constantFrom(...VALUES).map((h) => new Uint8Array(Buffer.from(h, 'hex')))),
  versions: fc.dictionary(fc.constantFrom(...VERSIONS), fc.bigInt({ min: 0n, max: 4n })),
  debug: fc.boolean(),
  nonce: fc.constant(undefined),
  publicKey: fc.constant(undefined),
  issuedAt: fc.option(fc.integer({ min: -120, max: 600 }).map((s) => new Date(NOW.getTime() - s * 1000)), { nil: undefined }),
  verifiedAt: fc.constant(NOW),
  extra: fc.constant({}),
});

const arbPolicy: fc.Arbitrary<ReleasePolicy> = fc.record(
  {
    platforms: fc.subarray([...PLATFORMS], { minLength: 1 }),
    measurements: fc.dictionary(fc.constantFrom(...NAMES), fc.subarray(VALUES, { minLength: 1 })),
    allowDebug: fc.boolean(),
    minVersions: fc.dictionary(fc.constantFrom(...VERSIONS), fc.integer({ min: 0, max: 4 })),
    maxAgeSeconds: fc.integer({ min: 0, max: 600 }),
  },
  { requiredKeys: ['platforms'] },
);

/** One narrowing step: every one only adds requirements or shrinks what is allowed. */
type Narrowing =
  | { kind: 'dropPlatform'; i: number }
  | { kind: 'requireMeasurement'; name: string; values: string[] }
  | { kind: 'shrinkMeasurement'; name: string; keep: number }
  | { kind: 'refuseDebug' }
  | { kind: 'raiseVersion'; name: string; by: number }
  | { kind: 'lowerMaxAge'; to: number };

const arbNarrowing: fc.Arbitrary<Narrowing> = fc.oneof(
  fc.record({ kind: fc.constant('dropPlatform' as const), i: fc.nat(10) }),
  fc.record({ kind: fc.constant('requireMeasurement' as const), name: fc.constantFrom(...NAMES), values: fc.subarray(VALUES, { minLength: 1 }) }),
  fc.record({ kind: fc.constant('shrinkMeasurement' as const), name: fc.constantFrom(...NAMES), keep: fc.nat(3) }),
  fc.record({ kind: fc.constant('refuseDebug' as const) }),
  fc.record({ kind: fc.constant('raiseVersion' as const), name: fc.constantFrom(...VERSIONS), by: fc.nat(3) }),
  fc.record({ kind: fc.constant('lowerMaxAge' as const), to: fc.integer({ min: 0, max: 600 }) }),
);

function narrow(p: ReleasePolicy, n: Narrowing): ReleasePolicy {
  const m = { ...(p.measurements ?? {}) } as Record<string, string | readonly string[]>;
  const list = (name: string): readonly string[] | undefined => {
    const v = m[name];
    return v === undefined ? undefined : typeof v === 'string' ? [v] : v;
  };
  switch (n.kind) {
    case 'dropPlatform':
      return p.platforms.length > 1 ? { ...p, platforms: p.platforms.filter((_, i) => i !== n.i % p.platforms.length) } : p;
    case 'requireMeasurement': {
      // a new requirement, or the intersection with an existing one (kept non-empty: else nothing to narrow to)
      const cur = list(n.name);
      const next = cur === undefined ? n.values : cur.filter((v) => n.values.includes(v));
      return next.length === 0 ? p : { ...p, measurements: { ...m, [n.name]: next } };
    }
    case 'shrinkMeasurement': {
      const cur = list(n.name);
      if (cur === undefined) return p;
      return { ...p, measurements: { ...m, [n.name]: cur.slice(0, Math.max(1, Math.min(cur.length, n.keep))) } };
    }
    case 'refuseDebug':
      return { ...p, allowDebug: false };
    case 'raiseVersion': {
      const cur = p.minVersions?.[n.name];
      return { ...p, minVersions: { ...(p.minVersions ?? {}), [n.name]: BigInt(cur ?? 0) + BigInt(n.by) } };
    }
    case 'lowerMaxAge':
      return { ...p, maxAgeSeconds: Math.min(p.maxAgeSeconds ?? Infinity, n.to) };
  }
}

void test('property: a narrowed policy never admits evidence the original refuses', () => {
  let admittedByNarrowed = 0;
  let refusedByNarrowedOnly = 0;
  fc.assert(
    fc.property(arbPolicy, fc.array(arbNarrowing, { minLength: 1, maxLength: 5 }), fc.array(arbClaims, { minLength: 1, maxLength: 8 }), (policy, steps, evidence) => {
      const narrowed = steps.reduce(narrow, policy);
      for (const c of evidence) {
        const wide = evaluatePolicy(policy, c, NOW).allowed;
        const tight = evaluatePolicy(narrowed, c, NOW).allowed;
        if (tight) admittedByNarrowed++;
        if (wide && !tight) refusedByNarrowedOnly++;
        if (tight && !wide) return false;
      }
      return true;
    }),
    { numRuns: 1000 },
  );
  // the generators reach both interesting outcomes, so the property is not vacuous
  assert.ok(admittedByNarrowed > 20, `only ${admittedByNarrowed} admissions`);
  assert.ok(refusedByNarrowedOnly > 20, `only ${refusedByNarrowedOnly} strict narrowings`);
});

void test('property: the platform rule alone decides for an otherwise empty policy', () => {
  fc.assert(
    fc.property(fc.subarray([...PLATFORMS], { minLength: 1 }), arbClaims, (platforms: Platform[], c) => {
      const d = evaluatePolicy({ platforms, allowDebug: true, maxClockSkewSeconds: 1e9 }, c, NOW);
      return d.allowed === platforms.includes(c.platform);
    }),
  );
});
