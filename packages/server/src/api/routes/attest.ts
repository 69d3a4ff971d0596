/**
 * Attestation-gated key release (issue #8; docs/tee.md §Release flow).
 *
 * Administration (admin token; `keys.update` / `keys.read`):
 *   PUT  /v1/keys/{ns}/{name}/release-policy  { policy: ReleasePolicy | null }  audited `keys.release_policy`
 *   GET  /v1/keys/{ns}/{name}/release-policy
 *
 * Workloads (bearer token with a grant of operation `release` on the key):
 *   POST /v1/attest/{ns}/{name}/nonce    { ttl_seconds?, tpm?: { ek_certificate, ek_intermediates?, ek_public, ak_public } }
 *        → { nonce, expires_at, tpm_challenge? }                    audited `attest.nonce`
 *   POST /v1/attest/{ns}/{name}/release  { nonce, recipient, context?, evidence }
 *        → { key, version, wrapped, sealed, platform, policy_sha256, measurements_sha256, context }   audited `attest.release`
 *
 * Trust split: this process verifies the evidence (signature, certificate
 * chain to the configured roots, at the configured clock) and evaluates the
 * key's release policy; the keyholder issues and spends the nonce, checks
 * the evidence's binding of that nonce and the recipient, and seals. Every
 * refusal spends the nonce and is audited (outcome `denied`, the refusal
 * code and the @keyward/attest reason, a claims summary when the evidence
 * verified); no response but a successful release carries key material.
 */
import { createHash } from 'node:crypto';
import {
  evaluatePolicy, isAttestError, startAkEnrollment, verifyDcapQuote, verifyNitroDocument, verifySnpReport,
  type AttestationClaims, type AttestErrorCode,
} from '@keyward/attest';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { JsonObject } from '../../audit/canonical-json.js';
import type { AuditEventInput } from '../../audit/event.js';
import { evidenceBinding, releaseSealContext, type ReleasePlatform } from '../../keyholder/ops/release.js';
import { isProtocolError, type OpParams, type OpResult } from '../../keyholder/protocol.js';
import type { ClaimsSummary } from '../../keyholder/ops/release-verify.js';
import { ContextSchema, NsParam, b64uString, type App } from '../app.js';
import { attestSettings, type AttestSettingsInput } from '../attest-settings.js';
import { b64u } from '../audit-pipe.js';
import { deviceKeyFor, signatureKeyId, type Principal } from '../auth.js';
import { requireDirectoryDevice } from '../../directory/gate.js';
import { signedRequestOf } from './data.js';
import { ApiError, toHttpError } from '../errors.js';
import { decide } from '../policy.js';
import { checkReleasePolicy, loadReleasePolicy, releasePolicyMetaKey } from '../release-policy.js';
import { keyholderProofHook, proofParamOf, requestHashHex, withKeyholderProof } from '../keyholder-proof.js';
import { guarded, policiesOf, requireKey, requireVersion } from './common.js';

const Params = z.strictObject({ ns: NsParam, name: NsParam });
const Recipient = z.string().min(1).max(4096);
const Hex = z.string().regex(/^(?:[0-9a-f]{2}){1,64}$/, 'must be lower-case hex');
const PcrBank = z.record(z.string().regex(/^(?:[0-9]|[12][0-9]|3[01])$/, 'PCR indices are 0..31'), Hex);

const Evidence = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('nitro'), document: b64uString(16 * 1024) }),
  z.strictObject({
    type: z.literal('tpm'),
    attest: b64uString(1024),
    signature: b64uString(1024),
    pcrs: z.strictObject({ sha1: PcrBank.optional(), sha256: PcrBank.optional(), sha384: PcrBank.optional(), sha512: PcrBank.optional() }),
    /** The secret TPM2_ActivateCredential returned for the nonce's tpm_challenge. */
    activated_credential: b64uString(64),
  }),
  z.strictObject({ type: z.literal('snp'), report: b64uString(1184), vcek: b64uString(4096), intermediates: z.array(b64uString(4096)).min(1).max(4) }),
  z.strictObject({ type: z.literal('sgx'), quote: b64uString(32 * 1024) }),
  z.strictObject({ type: z.literal('tdx'), quote: b64uString(32 * 1024) }),
]);
type EvidenceBody = z.infer<typeof Evidence>;

const PLATFORM_OF: Readonly<Record<EvidenceBody['type'], ReleasePlatform>> = { nitro: 'aws-nitro', tpm: 'tpm2', snp: 'amd-sev-snp', sgx: 'intel-sgx', tdx: 'intel-tdx' };

/** @keyward/attest codes that mean "not well formed" (400); every other verifier code is a rejection (403). */
const MALFORMED_CODES = new Set<AttestErrorCode>(['ATTEST_MALFORMED', 'ATTEST_LIMIT_EXCEEDED', 'ATTEST_NON_CANONICAL', 'ATTEST_UNSUPPORTED', 'ATTEST_INVALID_ARGUMENT']);

const unb64u = (s: string): Uint8Array => {
  const b = Uint8Array.from(Buffer.from(s, 'base64url'));
  if (Buffer.from(b).toString('base64url') !== s) throw new ApiError('KW_INVALID_ARGUMENT', 'binary values must be canonical unpadded base64url');
  return b;
};
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** An AttestError from a verifier, as the API's typed refusal. */
function refusalOf(e: unknown): ApiError {
  if (!isAttestError(e)) throw e;
  if (e.code === 'ATTEST_NONCE_MISMATCH') return new ApiError('KW_ATTEST_BINDING_MISMATCH', 'the evidence does not carry the binding of this nonce and recipient', { reason: e.code });
  if (e.code.startsWith('ATTEST_POLICY_')) return new ApiError('KW_ATTEST_POLICY_DENIED', e.message, { reason: e.code });
  if (MALFORMED_CODES.has(e.code)) return new ApiError('KW_ATTEST_EVIDENCE_INVALID', e.message, { reason: e.code });
  return new ApiError('KW_ATTEST_EVIDENCE_REJECTED', e.message, { reason: e.code });
}

/** The keyholder's summary of the claims it verified, as claims for the API's own policy check (the keyholder checks again). */
function claimsOfSummary(c: ClaimsSummary, now: Date): AttestationClaims {
  return {
    platform: c.platform, debug: c.debug, nonce: undefined, publicKey: undefined, extra: {}, verifiedAt: now,
    measurements: Object.fromEntries(Object.entries(c.measurements).map(([k, v]) => [k, Uint8Array.from(Buffer.from(v, 'hex'))])),
    versions: Object.fromEntries(Object.entries(c.versions).map(([k, v]) => [k, BigInt(v)])),
    issuedAt: c.issued_at === undefined ? undefined : new Date(c.issued_at),
  };
}

const KEYHOLDER_ATTEST_CODES = new Set(['KW_ATTEST_NOT_CONFIGURED', 'KW_ATTEST_EVIDENCE_INVALID', 'KW_ATTEST_EVIDENCE_REJECTED', 'KW_ATTEST_POLICY_DENIED', 'KW_ATTEST_BINDING_MISMATCH']);

/** A keyholder attestation refusal as the API's typed refusal, keeping its reason (`error.reason`); anything else unchanged. */
function apiRefusal(e: unknown): unknown {
  if (isProtocolError(e) && KEYHOLDER_ATTEST_CODES.has(e.code)) {
    return new ApiError(e.code, e.message, { reason: e.details.reason ?? e.details.field ?? 'keyholder', cause: e });
  }
  return e;
}

/** The HTTP evidence as the keyholder protocol's attest-verify evidence. */
function wireEvidence(e: EvidenceBody): OpParams<'attest-verify'>['evidence'] {
  if (e.type !== 'tpm') return e;
  return { type: 'tpm', attest: e.attest, signature: e.signature, pcrs: e.pcrs, activatedCredential: e.activated_credential };
}

export function attestRoutes(app: App, input: AttestSettingsInput = {}): void {
  const { ctx } = app;
  const settings = attestSettings(input);
  keyholderProofHook(app.fastify);

  // --- administration ---------------------------------------------------------

  const PolicyView = z.strictObject({ key: z.string(), policy: z.record(z.string(), z.unknown()).nullable(), policy_sha256: z.string().nullable() });

  app.route({
    method: 'PUT', url: '/v1/keys/:ns/:name/release-policy', summary: 'Set (or clear, null) the release policy of an aes256 key: which attested TEE workloads may receive its data keys', tag: 'keys', auth: 'admin',
    params: Params, body: z.strictObject({ policy: z.unknown() }), response: PolicyView,
  }, ({ params, body, req }) => guarded(app, req, { op: 'keys.update', auditOp: 'keys.release_policy', ns: params.ns, key: params.name }, async ({ event }) => {
    const k = await requireKey(ctx.store, params.ns, params.name);
    if (k.type !== 'aes256') throw new ApiError('KW_KEY_TYPE_MISMATCH', `release policies apply to aes256 keys (data keys are released); ${params.ns}/${params.name} is ${k.type}`);
    const checked = body.policy === null || body.policy === undefined ? null : checkReleasePolicy(body.policy);
    const before = await loadReleasePolicy(ctx.store, params.ns, params.name);
    const details = { ...event.details, policy_sha256: checked?.hash ?? null, from_sha256: before?.hash ?? null, ...(checked ? { policy: checked.document as JsonObject } : {}) };
    return ctx.audit.record({ ...event, outcome: 'allowed', details }, async (tx) => {
      await tx.setMeta(releasePolicyMetaKey(params.ns, params.name), checked?.text ?? '');
      return { result: { key: `${params.ns}/${params.name}`, policy: checked?.document ?? null, policy_sha256: checked?.hash ?? null } };
    });
  }));

  app.route({
    method: 'GET', url: '/v1/keys/:ns/:name/release-policy', summary: 'The release policy of a key (null when none)', tag: 'keys', auth: 'admin',
    params: Params, response: PolicyView,
  }, ({ params, req }) => guarded(app, req, { op: 'keys.read', auditOp: 'keys.read', ns: params.ns, key: params.name }, async ({ event }) => {
    await requireKey(ctx.store, params.ns, params.name);
    const p = await loadReleasePolicy(ctx.store, params.ns, params.name);
    await ctx.audit.record({ ...event, outcome: 'allowed', details: { ...event.details, what: 'release_policy' } });
    return { key: `${params.ns}/${params.name}`, policy: p?.document ?? null, policy_sha256: p?.hash ?? null };
  }));

  // --- workloads --------------------------------------------------------------

  /** The key a release draws from: an aes256 key with a release policy, its latest version enabled. */
  async function releasable(ns: string, name: string) {
    const key = await requireKey(ctx.store, ns, name);
    if (key.type !== 'aes256') throw new ApiError('KW_KEY_TYPE_MISMATCH', `attested release gives data keys of aes256 keys; ${ns}/${name} is ${key.type}`);
    const policy = await loadReleasePolicy(ctx.store, ns, name);
    if (!policy) throw new ApiError('KW_RELEASE_POLICY_MISSING', `${ns}/${name} has no release policy`);
    const version = await requireVersion(ctx.store, ns, name, key.latestVersion);
    if (version.state !== 'enabled' || version.wrapped === null) throw new ApiError('KW_KEY_VERSION_DISABLED', `version ${version.version} of ${ns}/${name} is ${version.state}`);
    return { key, version: version as typeof version & { wrapped: Uint8Array }, policy };
  }

  app.route({
    method: 'POST', url: '/v1/attest/:ns/:name/nonce', summary: 'A single-use nonce for one attested release (and, for TPM evidence, the credential-activation challenge for the AK)', tag: 'attest', auth: 'token',
    params: Params,
    body: z.strictObject({
      ttl_seconds: z.int().min(1).max(600).optional(),
      tpm: z.strictObject({ ek_certificate: b64uString(4096), ek_intermediates: z.array(b64uString(4096)).max(4).optional(), ek_public: b64uString(1024), ak_public: b64uString(1024) }).optional(),
    }),
    response: z.strictObject({
      nonce: z.string(), expires_at: z.string(),
      tpm_challenge: z.strictObject({ credential_blob: z.string(), encrypted_secret: z.string(), tpm2_tools_file: z.string() }).optional(),
    }),
  }, ({ params, body, req }) => guarded(app, req, { op: 'release', auditOp: 'attest.nonce', ns: params.ns, key: params.name }, async ({ event }) => {
    await releasable(params.ns, params.name);
    const ttl = Math.min(body.ttl_seconds ?? settings.nonceTtlSeconds, settings.nonceTtlSeconds);
    let akName: string | undefined;
    if (body.tpm) {
      // Checked here first (typed refusal before a nonce exists); the keyholder enrolls the AK itself with its own roots.
      if (settings.roots.tpm.length === 0) throw new ApiError('KW_ATTEST_NOT_CONFIGURED', 'no TPM manufacturer roots are configured (attest.tpmRoots)');
      try {
        akName = hexOf(startAkEnrollment({
          ekCertificate: unb64u(body.tpm.ek_certificate), ekIntermediates: (body.tpm.ek_intermediates ?? []).map(unb64u),
          roots: settings.roots.tpm, ekPublic: unb64u(body.tpm.ek_public), akPublic: unb64u(body.tpm.ak_public), now: settings.now(),
        }).pending.akName);
      } catch (e) {
        throw refusalOf(e);
      }
    }
    const details = { ...event.details, ...(akName ? { tpm_ak_name: akName } : {}), ttl_seconds: ttl };
    const tpmParams = body.tpm ? { tpm: { ekCertificate: body.tpm.ek_certificate, ...(body.tpm.ek_intermediates ? { ekIntermediates: body.tpm.ek_intermediates } : {}), ekPublic: body.tpm.ek_public, akPublic: body.tpm.ak_public } } : {};
    const n = await ctx.audit.recordOp({ ...event, outcome: 'allowed', details }, async () => ({ result: await ctx.keyholder.call('attest-nonce', { ns: params.ns, key: params.name, ttlSeconds: ttl, ...tpmParams }).catch((e: unknown) => { throw apiRefusal(e); }) }));
    return {
      nonce: n.nonce, expires_at: n.expiresAt,
      ...(n.tpm ? { tpm_challenge: { credential_blob: n.tpm.credentialBlob, encrypted_secret: n.tpm.encryptedSecret, tpm2_tools_file: n.tpm.tpm2ToolsFile } } : {}),
    };
  }));

  /** Verifies `evidence` with the configured roots at the configured instant, expecting the binding of nonce and recipient. */
  function verify(evidence: EvidenceBody, nonce: Uint8Array, recipient: string): AttestationClaims | null {
    const platform = PLATFORM_OF[evidence.type];
    const expected = evidenceBinding(platform, nonce, recipient);
    const now = settings.now();
    switch (evidence.type) {
      case 'nitro': {
        const claims = verifyNitroDocument(unb64u(evidence.document), { roots: settings.roots.nitro, now, expectedNonce: expected.nonce });
        const pk = claims.publicKey;
        if (!pk || Buffer.compare(Buffer.from(pk), Buffer.from(expected.publicKey!)) !== 0) {
          throw new ApiError('KW_ATTEST_BINDING_MISMATCH', 'the document binds another public key than the recipient', { reason: 'public_key' });
        }
        return claims;
      }
      case 'tpm':
        // The AK was enrolled by the keyholder (credential activation answers its challenge): only it can verify the quote.
        return null;
      case 'snp':
        if (settings.roots.amd.length === 0) throw new ApiError('KW_ATTEST_NOT_CONFIGURED', 'no AMD roots are configured');
        return verifySnpReport(unb64u(evidence.report), { vcek: unb64u(evidence.vcek), intermediates: evidence.intermediates.map(unb64u), roots: settings.roots.amd, now, expectedReportData: expected.nonce });
      case 'sgx':
      case 'tdx': {
        const claims = verifyDcapQuote(unb64u(evidence.quote), { roots: settings.roots.intel, now, expectedReportData: expected.nonce });
        if (claims.platform !== platform) throw new ApiError('KW_ATTEST_EVIDENCE_INVALID', `the quote is ${claims.platform} evidence, not ${platform}`, { reason: 'ATTEST_MALFORMED' });
        return claims;
      }
    }
  }

  /** Authenticates and decides `release` on ns/key; a denial is audited. */
  async function authorize(req: FastifyRequest, ns: string, name: string): Promise<{ who: Principal; event: Omit<AuditEventInput, 'outcome'> }> {
    const who = await app.principal(req);
    const event: Omit<AuditEventInput, 'outcome'> = { ns, principal: who.id, auth: 'token', op: 'attest.release', target: { key: name }, request: null, details: { client: { address: req.ip } } };
    if (!decide(who, 'release', `${ns}/${name}`, {}, await policiesOf(ctx.store, ns)).allowed) {
      await ctx.audit.recordFailure({ ...event, outcome: 'denied', code: 'KW_FORBIDDEN' });
      throw new ApiError('KW_FORBIDDEN', `the policy does not grant release on ${ns}/${name} to ${who.id}`);
    }
    return { who, event };
  }

  app.route({
    method: 'POST', url: '/v1/attest/:ns/:name/release', summary: "Release a data key to an attested workload: sealed (HPKE) to the recipient the evidence binds, with the policy and measurements in HPKE info", tag: 'attest', auth: 'token',
    params: Params,
    body: z.strictObject({ nonce: b64uString(32), recipient: Recipient, context: ContextSchema.default({}), evidence: Evidence }),
    response: z.strictObject({
      key: z.string(), version: z.int(), wrapped: z.string(), sealed: z.string(), platform: z.string(),
      policy_sha256: z.string(), measurements_sha256: z.string(), context: z.record(z.string(), z.string()),
    }),
  }, async ({ params, body, req, raw }) => {
    const { who, event } = await authorize(req, params.ns, params.name);
    const platform = PLATFORM_OF[body.evidence.type];
    const refusal = async (e: unknown, extra: JsonObject = {}): Promise<never> => {
      const h = toHttpError(e);
      if (h.code !== 'KW_KEYHOLDER_UNAVAILABLE' && h.code !== 'KW_SEALED') {
        const reason = e instanceof ApiError ? e.reason : isProtocolError(e) ? e.details.reason ?? e.details.field : undefined;
        const outcome = h.status >= 500 ? 'error' : 'denied';
        await ctx.audit.recordFailure({ ...event, outcome, code: h.code, details: { ...event.details, platform, ...(reason ? { reason } : {}), ...extra } });
      }
      throw e;
    };
    let nonce: Uint8Array;
    let state;
    let signed: OpParams<'attest-release'>['request'];
    try {
      // A workload that signs its request (RFC 9421) with a directory device key: the keyholder verifies the signature
      // and decides on its own signed policy. A bearer-token caller is authenticated by the API alone (docs/mfa.md).
      if (req.headers['signature-input'] !== undefined) {
        const device = await deviceKeyFor(ctx.store, who, signatureKeyId(req.headers['signature-input']));
        await requireDirectoryDevice(ctx, who.id, device.keyId);
        const r = signedRequestOf(req, raw);
        signed = { method: r.method, url: r.url, headers: r.headers, body: b64u(r.body), device: { keyId: device.keyId, principal: device.principal, publicKey: b64u(device.publicKey) } };
      }
      nonce = unb64u(body.nonce);
      if (nonce.length !== 32) throw new ApiError('KW_INVALID_ARGUMENT', 'the nonce is 32 bytes');
      state = await releasable(params.ns, params.name);
      // A nonce that is unknown, expired or spent is refused as such before the evidence is looked at.
      await ctx.keyholder.call('attest-nonce-check', { ns: params.ns, key: params.name, nonce: body.nonce, spend: false });
    } catch (e) {
      return refusal(e);
    }
    const { key, version, policy } = state;
    const target = { key: params.name, version: version.version };
    let summary: ClaimsSummary;
    let decision;
    try {
      let apiClaims: AttestationClaims | null;
      try {
        apiClaims = verify(body.evidence, nonce, body.recipient);
      } catch (e) {
        throw e instanceof ApiError ? e : refusalOf(e);
      }
      // The keyholder verifies the evidence itself (its roots, its clock, its own AK enrollment); it spends the nonce on a refusal.
      summary = (await ctx.keyholder.call('attest-verify', { ns: params.ns, key: params.name, nonce: body.nonce, recipient: body.recipient, evidence: wireEvidence(body.evidence) }).catch((e: unknown) => { throw apiRefusal(e); })).claims;
      decision = evaluatePolicy(policy.policy, apiClaims ?? claimsOfSummary(summary, settings.now()), settings.now());
    } catch (e) {
      await ctx.keyholder.call('attest-nonce-check', { ns: params.ns, key: params.name, nonce: body.nonce, spend: true }).catch(() => undefined);
      return refusal(e, { policy_sha256: policy.hash });
    }
    if (!decision.allowed) {
      await ctx.keyholder.call('attest-nonce-check', { ns: params.ns, key: params.name, nonce: body.nonce, spend: true }).catch(() => undefined);
      return refusal(new ApiError('KW_ATTEST_POLICY_DENIED', decision.reason, { reason: decision.code }), { policy_sha256: policy.hash, claims: summary });
    }
    const details = {
      ...event.details, platform, policy_sha256: policy.hash, claims: summary,
      recipient_sha256: createHash('sha256').update(body.recipient).digest('hex'),
      ...(Object.keys(body.context).length > 0 ? { context: body.context } : {}),
    };
    try {
      const r = await ctx.audit.recordOp<OpResult<'attest-release'>>({ ...event, target, outcome: 'allowed', details }, async (ev) => {
        const out = await ctx.keyholder.call('attest-release', {
          event: ev.b64,
          version: { ns: key.ns, key: key.name, version: version.version, type: key.type, wrapped: b64u(version.wrapped) },
          nonce: body.nonce, recipient: body.recipient, platform,
          policy: policy.text, policyHash: policy.hash, context: body.context, ...(signed ? { request: signed } : {}),
          // Keyward-Keyholder-Proof: 1 — a keyholder run apart signs the release, bound to the nonce (api/keyholder-proof.ts).
          ...proofParamOf(req, requestHashHex(req.headers)),
        });
        withKeyholderProof(req, out);
        return { result: out, leaf: out.leaf };
      });
      return {
        key: `${key.ns}/${key.name}`, version: r.ref.version, wrapped: r.wrapped, sealed: r.sealed, platform,
        policy_sha256: policy.hash, measurements_sha256: r.measurementsHash,
        context: releaseSealContext({ nonce, ref: r.ref, platform, policyHash: policy.hash, measurementsHash: r.measurementsHash }, body.context),
      };
    } catch (e) {
      return refusal(apiRefusal(e), { policy_sha256: policy.hash, claims: summary });
    }
  });
}
