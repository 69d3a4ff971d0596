/**
 * Attestation-gated key release end to end (issue #8; docs/tee.md §Release flow):
 * a real server (real keyholder process, real SQLite), a real software TPM
 * (swtpm) whose quote carries the server's nonce bound to the workload's
 * HPKE key, synthetic Nitro documents signed by a test P-384 chain (a
 * test-only trust root in the server config), and the real AWS Nitro
 * documents of shared/vectors/nitro at the instant their README gives
 * (injected clock). Every refusal is typed, carries no key material, and is
 * audited; the positive path gives a key the workload opens and that equals
 * what the key service unwraps.
 */
import assert from 'node:assert/strict';
import { X509Certificate, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { HpkeIdentity, open } from '@keyward/core';
import { releaseContext } from '../../src/keyholder/ops/caller.js';
import { evidenceBinding } from '../../src/keyholder/ops/release.js';
import { isProtocolError } from '../../src/keyholder/protocol.js';
import { releasePolicyMetaKey } from '../../src/api/release-policy.js';
import { buildEvent } from '../../src/audit/event.js';
import { requestHashOf } from '../../src/keyholder/service.js';
import type { RunningServer } from '../../src/server.js';
import { cbor, coseSign1, makeCert, type Enc, type TestCert } from '../../../attest/test/helpers.js';
import { SoftTpm } from '../../../attest/test/swtpm.js';
import { b64u, call, enrollAdmin, newDeviceKeys, newServer, signedCall, unb64u, unsealAll, type Device, type Res } from './helpers.js';

const SELECTION = 'sha256:0,1,2,3,7,16';
const INDICES = [0, 1, 2, 3, 7, 16];
const NITRO_VECTORS = new URL('../../../../../shared/vectors/nitro/', import.meta.url);
const CAPE_PROD_VALID_AT = new Date('2022-09-15T17:44:24Z');
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const pcr384 = (n: number): Uint8Array => new Uint8Array(createHash('sha384').update(`pcr${n}`).digest());

void describe('attested key release (TPM 2.0 via swtpm, Nitro format)', () => {
  let s: RunningServer;
  let tpm: SoftTpm;
  let ak: { ctx: string; public: Uint8Array };
  let root: string;
  let token: string;
  let device: Device;
  let alice: HpkeIdentity;
  let recipient: string;
  let bobRecipient: string;
  let clockAt: Date | null = null;
  let nitroRoot: TestCert;
  let nitroLeaf: TestCert;
  let nitroInter: TestCert;
  let rogueLeaf: TestCert;
  let rogueRoot: TestCert;
  let rogueInter: TestCert;
  let tpmPolicyHash: string;
  const refusals: { code: string; reason?: string }[] = [];

  before(async () => {
    tpm = await SoftTpm.start();
    nitroRoot = makeCert({ subject: '/CN=test nitro root', alg: 'p384', ca: true });
    nitroInter = makeCert({ subject: '/CN=test nitro intermediate', alg: 'p384', ca: true, issuer: nitroRoot });
    nitroLeaf = makeCert({ subject: '/CN=test enclave', alg: 'p384', ca: false, issuer: nitroInter });
    rogueRoot = makeCert({ subject: '/CN=test nitro root', alg: 'p384', ca: true });
    rogueInter = makeCert({ subject: '/CN=test nitro intermediate', alg: 'p384', ca: true, issuer: rogueRoot });
    rogueLeaf = makeCert({ subject: '/CN=test enclave', alg: 'p384', ca: false, issuer: rogueInter });
    const awsRoot = readFileSync(new URL('aws-nitro-root-g1.pem', NITRO_VECTORS), 'utf8');
    s = await newServer({
      attest: { tpmRoots: [tpm.manufacturerCa().root], nitroRoots: [nitroRoot.certPem, awsRoot], clock: () => clockAt ?? new Date() },
    });
    const init = await s.initialize({ shares: 3, threshold: 2 });
    assert.equal((await unsealAll(s, init.shares.slice(0, 2))).body.sealed, false);
    root = await enrollAdmin(s, init.rootToken);
    for (const name of ['tpm-key', 'tpm-strict', 'nitro-key', 'no-policy']) {
      const c = await call(s, 'POST', `/v1/keys/app/${name}`, { token: root, body: { type: 'aes256' } });
      assert.equal(c.status, 201, JSON.stringify(c.body));
    }
    const t = await call(s, 'POST', '/v1/tokens', { token: root, body: { principal: 'enclave-svc', ns: 'app', roles: ['workload'] } });
    token = t.body.token;
    const keys = newDeviceKeys();
    const sk = await call(s, 'POST', '/v1/auth/signing-keys', { token, body: { alg: 'ed25519', public_key: b64u(keys.publicKey) } });
    device = { keyId: sk.body.key_id, ...keys };
    const p = await call(s, 'PUT', '/v1/policies/app/workload', { token: root, body: { grants: [{ roles: ['workload'], operations: ['release', 'unwrap'], keys: ['app/*'] }] } });
    assert.equal(p.status, 200, JSON.stringify(p.body));
    alice = await HpkeIdentity.generate('x25519');
    recipient = (await alice.recipient()).toString();
    bobRecipient = (await (await HpkeIdentity.generate('x25519')).recipient()).toString();
    ak = tpm.createAk('ak-release', 'ecdsa');

    const pcrs = tpm.pcrRead('sha256', INDICES);
    const set = await call(s, 'PUT', '/v1/keys/app/tpm-key/release-policy', {
      token: root, body: { policy: { platforms: ['tpm2'], measurements: { 'sha256:PCR0': hex(pcrs[0]!), 'sha256:PCR16': hex(pcrs[16]!) }, allowDebug: false } },
    });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    tpmPolicyHash = set.body.policy_sha256;
    const strict = await call(s, 'PUT', '/v1/keys/app/tpm-strict/release-policy', { token: root, body: { policy: { platforms: ['tpm2'], measurements: { 'sha256:PCR16': 'ff'.repeat(32) } } } });
    assert.equal(strict.status, 200, JSON.stringify(strict.body));
    const nitro = await call(s, 'PUT', '/v1/keys/app/nitro-key/release-policy', { token: root, body: { policy: { platforms: ['aws-nitro'], measurements: { PCR8: hex(pcr384(8)) }, maxAgeSeconds: 300 } } });
    assert.equal(nitro.status, 200, JSON.stringify(nitro.body));
  });
  after(async () => {
    await s?.close();
    tpm?.stop();
  });

  /** A refusal: the typed code (and reason), nothing else in the body. */
  function refused(r: Res, status: number, code: string, reason?: string): void {
    assert.equal(r.status, status, JSON.stringify(r.body));
    assert.equal(r.body.error.code, code, JSON.stringify(r.body));
    if (reason !== undefined) assert.equal(r.body.error.reason, reason, JSON.stringify(r.body));
    assert.deepEqual(Object.keys(r.body).sort(), ['error']);
    assert.ok(!/sealed|wrapped/.test(JSON.stringify(r.body)), 'no key material in a refusal');
    refusals.push({ code, ...(reason !== undefined ? { reason } : {}) });
  }

  const tpmMaterial = () => {
    const issuerDer = new Uint8Array(new X509Certificate(tpm.manufacturerCa().issuer).raw);
    return { ek_certificate: b64u(tpm.ekCertificate()), ek_intermediates: [b64u(issuerDer)], ek_public: b64u(tpm.ekPublic()), ak_public: b64u(ak.public) };
  };

  /** Nonce (with AK enrollment), credential activation and a real quote whose extraData binds the nonce and `boundTo`. */
  async function tpmEvidence(key: string, boundTo: string, tag: string, ttl?: number) {
    const n = await call(s, 'POST', `/v1/attest/app/${key}/nonce`, { token, body: { tpm: tpmMaterial(), ...(ttl ? { ttl_seconds: ttl } : {}) } });
    assert.equal(n.status, 200, JSON.stringify(n.body));
    const nonce = unb64u(n.body.nonce);
    assert.equal(nonce.length, 32);
    const secret = tpm.activate(ak.ctx, unb64u(n.body.tpm_challenge.tpm2_tools_file));
    const q = tpm.quote(ak.ctx, SELECTION, evidenceBinding('tpm2', nonce, boundTo).nonce, tag);
    const values = tpm.pcrRead('sha256', INDICES);
    const evidence = {
      type: 'tpm', attest: b64u(q.attest), signature: b64u(q.signature), activated_credential: b64u(secret),
      pcrs: { sha256: Object.fromEntries(Object.entries(values).map(([i, v]) => [i, hex(v)])) },
    };
    return { nonce: n.body.nonce as string, evidence };
  }

  const release = (key: string, body: unknown) => call(s, 'POST', `/v1/attest/app/${key}/release`, { token, body });

  let replay: { nonce: string; evidence: unknown } | undefined;

  void test('a workload with a valid TPM quote gets a data key it opens, equal to what the key service unwraps', async () => {
    const ev = await tpmEvidence('tpm-key', recipient, 'q-ok');
    const r = await release('tpm-key', { nonce: ev.nonce, recipient, context: { job: 'batch-7' }, evidence: ev.evidence });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.platform, 'tpm2');
    assert.equal(r.body.policy_sha256, tpmPolicyHash);
    assert.equal(r.body.context.kw_policy, tpmPolicyHash);
    assert.equal(r.body.context.kw_measurements, r.body.measurements_sha256);
    assert.equal(r.body.context.kw_attest_nonce, hex(unb64u(ev.nonce)));
    const dk = (await open(unb64u(r.body.sealed), { identities: [alice], context: r.body.context })).plaintext;
    assert.equal(dk.length, 32);
    // The policy hash and measurements are bound (HPKE info): another policy hash does not open.
    await assert.rejects(open(unb64u(r.body.sealed), { identities: [alice], context: { ...r.body.context, kw_policy: '00'.repeat(32) } }));
    // The wrapped form is an ordinary kms data key: unwrap gives the same key.
    const uw = await signedCall(s, token, device, '/v1/data/app/tpm-key/unwrap', { version: r.body.version, wrapped: r.body.wrapped, context: { job: 'batch-7' }, recipient });
    assert.equal(uw.status, 200, JSON.stringify(uw.body));
    const viaUnwrap = (await open(unb64u(uw.body.sealed), { identities: [alice], context: releaseContext(requestHashOf(uw.sig), { ns: 'app', key: 'tpm-key', version: r.body.version }, { job: 'batch-7' }) })).plaintext;
    assert.deepEqual(viaUnwrap, dk);
    replay = ev;
  });

  void test('a replayed nonce is refused (KW_ATTEST_NONCE_USED)', async () => {
    assert.ok(replay);
    refused(await release('tpm-key', { nonce: replay.nonce, recipient, evidence: replay.evidence }), 409, 'KW_ATTEST_NONCE_USED');
  });

  void test('non-matching measurements are refused (KW_ATTEST_POLICY_DENIED / ATTEST_POLICY_MEASUREMENT_MISMATCH), and the nonce is spent', async () => {
    const ev = await tpmEvidence('tpm-strict', recipient, 'q-strict');
    refused(await release('tpm-strict', { nonce: ev.nonce, recipient, evidence: ev.evidence }), 403, 'KW_ATTEST_POLICY_DENIED', 'ATTEST_POLICY_MEASUREMENT_MISMATCH');
    refused(await release('tpm-strict', { nonce: ev.nonce, recipient, evidence: ev.evidence }), 409, 'KW_ATTEST_NONCE_USED');
  });

  void test('a required measurement the quote does not cover is refused (ATTEST_POLICY_MEASUREMENT_MISSING)', async () => {
    const set = await call(s, 'PUT', '/v1/keys/app/tpm-strict/release-policy', { token: root, body: { policy: { platforms: ['tpm2'], measurements: { 'sha256:PCR23': '00'.repeat(32) } } } });
    assert.equal(set.status, 200);
    const ev = await tpmEvidence('tpm-strict', recipient, 'q-missing');
    refused(await release('tpm-strict', { nonce: ev.nonce, recipient, evidence: ev.evidence }), 403, 'KW_ATTEST_POLICY_DENIED', 'ATTEST_POLICY_MEASUREMENT_MISSING');
  });

  void test('an expired nonce is refused (KW_ATTEST_NONCE_EXPIRED)', async () => {
    const ev = await tpmEvidence('tpm-key', recipient, 'q-exp', 1);
    await new Promise((r) => setTimeout(r, 1200));
    refused(await release('tpm-key', { nonce: ev.nonce, recipient, evidence: ev.evidence }), 410, 'KW_ATTEST_NONCE_EXPIRED');
  });

  void test('evidence made for another public key is refused (KW_ATTEST_BINDING_MISMATCH)', async () => {
    const ev = await tpmEvidence('tpm-key', bobRecipient, 'q-bob');
    refused(await release('tpm-key', { nonce: ev.nonce, recipient, evidence: ev.evidence }), 403, 'KW_ATTEST_BINDING_MISMATCH', 'ATTEST_NONCE_MISMATCH');
  });

  void test('a nonce of another key, and an unknown nonce, are refused (KW_ATTEST_NONCE_UNKNOWN)', async () => {
    const ev = await tpmEvidence('tpm-key', recipient, 'q-other');
    refused(await release('nitro-key', { nonce: ev.nonce, recipient, evidence: { type: 'nitro', document: b64u(new Uint8Array(8)) } }), 403, 'KW_ATTEST_NONCE_UNKNOWN');
    refused(await release('tpm-key', { nonce: b64u(new Uint8Array(32).fill(9)), recipient, evidence: ev.evidence }), 403, 'KW_ATTEST_NONCE_UNKNOWN');
  });

  // --- Nitro format: synthetic documents under a test-only root -----------------

  const nitroDoc = (nonce: Uint8Array, boundTo: string, opts: { leaf?: TestCert; chain?: TestCert[]; debug?: boolean } = {}): string => {
    const chain = opts.chain ?? [nitroRoot, nitroInter];
    const pcrs = new Map<number, Enc>([0, 1, 2, 3, 4, 8].map((i) => [i, opts.debug && i <= 2 ? new Uint8Array(48) : pcr384(i)]));
    const m = new Map<string, Enc>([
      ['module_id', 'i-test-enc0'], ['digest', 'SHA384'], ['timestamp', Date.now()], ['pcrs', pcrs],
      ['certificate', (opts.leaf ?? nitroLeaf).der], ['cabundle', chain.map((c) => c.der)],
      ['public_key', new TextEncoder().encode(boundTo)], ['user_data', null], ['nonce', nonce],
    ]);
    return b64u(coseSign1(cbor(m), (opts.leaf ?? nitroLeaf).keyPem));
  };
  const nitroNonce = async (): Promise<string> => {
    const n = await call(s, 'POST', '/v1/attest/app/nitro-key/nonce', { token, body: {} });
    assert.equal(n.status, 200, JSON.stringify(n.body));
    assert.equal(n.body.tpm_challenge, undefined);
    return n.body.nonce as string;
  };

  void test('a synthetic Nitro document under the configured test root releases a key that opens', async () => {
    const nonce = await nitroNonce();
    const r = await release('nitro-key', { nonce, recipient, evidence: { type: 'nitro', document: nitroDoc(unb64u(nonce), recipient) } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.platform, 'aws-nitro');
    assert.equal((await open(unb64u(r.body.sealed), { identities: [alice], context: r.body.context })).plaintext.length, 32);
  });

  void test('debug evidence is refused (ATTEST_POLICY_DEBUG)', async () => {
    const nonce = await nitroNonce();
    refused(await release('nitro-key', { nonce, recipient, evidence: { type: 'nitro', document: nitroDoc(unb64u(nonce), recipient, { debug: true }) } }), 403, 'KW_ATTEST_POLICY_DENIED', 'ATTEST_POLICY_DEBUG');
  });

  void test('a Nitro document binding another public key is refused', async () => {
    const nonce = await nitroNonce();
    refused(await release('nitro-key', { nonce, recipient, evidence: { type: 'nitro', document: nitroDoc(unb64u(nonce), bobRecipient) } }), 403, 'KW_ATTEST_BINDING_MISMATCH', 'public_key');
  });

  void test('evidence signed under an untrusted root is refused (ATTEST_UNTRUSTED_ROOT)', async () => {
    const nonce = await nitroNonce();
    const doc = nitroDoc(unb64u(nonce), recipient, { leaf: rogueLeaf, chain: [rogueRoot, rogueInter] });
    refused(await release('nitro-key', { nonce, recipient, evidence: { type: 'nitro', document: doc } }), 403, 'KW_ATTEST_EVIDENCE_REJECTED', 'ATTEST_UNTRUSTED_ROOT');
  });

  void test('the real AWS Nitro document verifies to the pinned root at its instant, then fails on its own nonce; at today it is expired', async () => {
    const doc = b64u(readFileSync(new URL('cape-prod-2022-09-15.cbor', NITRO_VECTORS)));
    const nonce = await nitroNonce();
    clockAt = CAPE_PROD_VALID_AT;
    try {
      refused(await release('nitro-key', { nonce, recipient, evidence: { type: 'nitro', document: doc } }), 403, 'KW_ATTEST_BINDING_MISMATCH', 'ATTEST_NONCE_MISMATCH');
    } finally {
      clockAt = null;
    }
    const nonce2 = await nitroNonce();
    refused(await release('nitro-key', { nonce: nonce2, recipient, evidence: { type: 'nitro', document: doc } }), 403, 'KW_ATTEST_EVIDENCE_REJECTED', 'ATTEST_CERT_EXPIRED');
  });

  // --- trust split: the keyholder does not take the API's word -------------------

  void test('a compromised API that skips its own checks releases nothing: the keyholder verifies the evidence and evaluates the policy itself', async () => {
    const kh = s.keyholder;
    const v = (await s.store.listKeyVersions('app', 'nitro-key')).at(-1)!;
    const version = { ns: 'app', key: 'nitro-key', version: v.version, type: 'aes256' as const, wrapped: b64u(v.wrapped!) };
    const policy = (await s.store.getMeta(releasePolicyMetaKey('app', 'nitro-key')))!;
    const policyHash = createHash('sha256').update(policy).digest('hex');
    const event = async (): Promise<string> => {
      const st = await kh.call('status', {});
      const { bytes } = buildEvent({ ns: 'app', principal: 'enclave-svc', auth: 'token', op: 'attest.release', target: { key: 'nitro-key', version: v.version }, outcome: 'allowed' }, { index: st.audit.appended, time: new Date(), prev: '0'.repeat(64) });
      return b64u(bytes);
    };
    const rejectsKh = async (p: Promise<unknown>, code: string, reason: string) => {
      await assert.rejects(p, (e: unknown) => {
        assert.ok(isProtocolError(e), String(e));
        assert.equal(e.code, code, e.message);
        assert.equal(e.details.reason, reason, e.message);
        return true;
      });
    };
    const appended = (await kh.call('status', {})).audit.appended;
    const release = async (nonce: string, over: { policy?: string } = {}) => kh.call('attest-release', { event: await event(), version, nonce, recipient, platform: 'aws-nitro', policy: over.policy ?? policy, policyHash, context: {} });

    // 1. No evidence at all: the API says "verified", the keyholder never verified anything for this nonce.
    const n1 = (await kh.call('attest-nonce', { ns: 'app', key: 'nitro-key' })).nonce;
    await rejectsKh(release(n1), 'KW_ATTEST_EVIDENCE_REJECTED', 'not_verified');
    // 2. Debug evidence the keyholder verified, released with the API's policy check skipped: the keyholder's own policy check refuses it.
    const n2 = (await kh.call('attest-nonce', { ns: 'app', key: 'nitro-key' })).nonce;
    const verified = await kh.call('attest-verify', { ns: 'app', key: 'nitro-key', nonce: n2, recipient, evidence: { type: 'nitro', document: nitroDoc(unb64u(n2), recipient, { debug: true }) } });
    assert.equal(verified.claims.debug, true);
    await rejectsKh(release(n2), 'KW_ATTEST_POLICY_DENIED', 'ATTEST_POLICY_DEBUG');
    // 3. A policy that is not the one whose hash is bound into the release.
    const n3 = (await kh.call('attest-nonce', { ns: 'app', key: 'nitro-key' })).nonce;
    await kh.call('attest-verify', { ns: 'app', key: 'nitro-key', nonce: n3, recipient, evidence: { type: 'nitro', document: nitroDoc(unb64u(n3), recipient) } });
    await rejectsKh(release(n3, { policy: '{"platforms":["aws-nitro"]}' }), 'KW_ATTEST_POLICY_DENIED', 'ATTEST_INVALID_POLICY');
    // 4. Evidence under a root the keyholder does not trust, and a TPM quote for an AK the keyholder never enrolled; each spends the nonce.
    const n4 = (await kh.call('attest-nonce', { ns: 'app', key: 'nitro-key' })).nonce;
    await rejectsKh(kh.call('attest-verify', { ns: 'app', key: 'nitro-key', nonce: n4, recipient, evidence: { type: 'nitro', document: nitroDoc(unb64u(n4), recipient, { leaf: rogueLeaf, chain: [rogueRoot, rogueInter] }) } }), 'KW_ATTEST_EVIDENCE_REJECTED', 'ATTEST_UNTRUSTED_ROOT');
    await assert.rejects(release(n4), (e: unknown) => isProtocolError(e, 'KW_ATTEST_NONCE_USED'));
    const n5 = (await kh.call('attest-nonce', { ns: 'app', key: 'nitro-key' })).nonce;
    const fakeTpm = { type: 'tpm' as const, attest: b64u(new Uint8Array(64).fill(1)), signature: b64u(new Uint8Array(64).fill(2)), pcrs: { sha256: { '16': '00'.repeat(32) } }, activatedCredential: b64u(new Uint8Array(32).fill(3)) };
    await rejectsKh(kh.call('attest-verify', { ns: 'app', key: 'nitro-key', nonce: n5, recipient, evidence: fakeTpm }), 'KW_ATTEST_EVIDENCE_REJECTED', 'ATTEST_AK_NOT_ENROLLED');
    // Nothing was released, nothing appended.
    assert.equal((await kh.call('status', {})).audit.appended, appended);
  });

  // --- signed release: the keyholder decides on its signed policy ------------------

  void test('a signed release (RFC 9421, device key): the granted workload gets the key; a grant only in a database row is refused by the keyholder (KW_POLICY_DENIED)', async () => {
    // A second workload whose role is in the signed snapshot (set through the API) but whose grant is not:
    // it is written straight into the database, where the API reads it and the keyholder does not.
    const t = await call(s, 'POST', '/v1/tokens', { token: root, body: { principal: 'rogue-svc', ns: 'app', roles: ['rogue'] } });
    assert.equal(t.status, 201, JSON.stringify(t.body));
    const rogueKeys = newDeviceKeys();
    const sk = await call(s, 'POST', '/v1/auth/signing-keys', { token: t.body.token, body: { alg: 'ed25519', public_key: b64u(rogueKeys.publicKey) } });
    assert.equal(sk.status, 201, JSON.stringify(sk.body));
    const rogue: Device = { keyId: sk.body.key_id, ...rogueKeys };
    const db = new Database(join(s.dataDir, 'keyward.db'));
    try {
      db.prepare('INSERT INTO policies (id, ns, version, document, created) VALUES (?, ?, 1, ?, ?)')
        .run('rogue', 'app', JSON.stringify({ grants: [{ roles: ['rogue'], operations: ['release'], keys: ['app/nitro-key'] }] }), Date.now());
    } finally {
      db.close();
    }
    await new Promise((r) => setTimeout(r, 1100)); // past the API's 1 s read cache: the API now reads the row

    // The granted workload signs its release: the keyholder binds the signed nonce, recipient and context, and its snapshot grants it.
    const nonce = await nitroNonce();
    const context = { job: 'signed-1' };
    const ok = await signedCall(s, token, device, '/v1/attest/app/nitro-key/release', { nonce, recipient, context, evidence: { type: 'nitro', document: nitroDoc(unb64u(nonce), recipient) } });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.context.job, 'signed-1');
    assert.equal((await open(unb64u(ok.body.sealed), { identities: [alice], context: ok.body.context })).plaintext.length, 32);

    // The rogue workload: the API grants it (the row) — it gets a nonce — but the keyholder refuses the signed release.
    const n = await call(s, 'POST', '/v1/attest/app/nitro-key/nonce', { token: t.body.token, body: {} });
    assert.equal(n.status, 200, `the API decides on the database row: ${JSON.stringify(n.body)}`);
    const from = await s.store.auditSize();
    const r = await signedCall(s, t.body.token, rogue, '/v1/attest/app/nitro-key/release', { nonce: n.body.nonce, recipient, context, evidence: { type: 'nitro', document: nitroDoc(unb64u(n.body.nonce), recipient) } });
    refused(r, 403, 'KW_POLICY_DENIED');
    assert.match(r.body.error.message, /signed policy in force .* does not grant release on app\/nitro-key to rogue-svc/);
    // The keyholder released nothing and appended no release; the API's audited refusal is the one event since.
    const events = (await s.store.readAuditEvents({ start: from, end: await s.store.auditSize() })).map((e) => JSON.parse(e.event) as { op: string; outcome: string; principal: string; code: string | null });
    assert.deepEqual(events.map((e) => [e.op, e.outcome, e.principal, e.code]), [['attest.release', 'denied', 'rogue-svc', 'KW_POLICY_DENIED']]);
    // The nonce was spent by the keyholder's refusal: one nonce answers one release attempt.
    refused(await signedCall(s, t.body.token, rogue, '/v1/attest/app/nitro-key/release', { nonce: n.body.nonce, recipient, context, evidence: { type: 'nitro', document: nitroDoc(unb64u(n.body.nonce), recipient) } }), 409, 'KW_ATTEST_NONCE_USED');
  });

  // --- policies and audit ----------------------------------------------------------

  void test('release policies: typed errors for bad ones (nothing stored), required before any nonce, admin-only, audited', async () => {
    const before = await call(s, 'GET', '/v1/keys/app/tpm-key/release-policy', { token: root });
    assert.equal(before.status, 200);
    assert.equal(before.body.policy_sha256, tpmPolicyHash);
    for (const policy of [{ platforms: [] }, { platforms: ['sgx-v0'] }, { platforms: ['tpm2'], measurements: { 'sha256:PCR0': 'XYZ' } }, { platforms: ['tpm2'], extra: 1 }, { platforms: ['tpm2'], maxAgeSeconds: -1 }]) {
      const r = await call(s, 'PUT', '/v1/keys/app/tpm-key/release-policy', { token: root, body: { policy } });
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.equal(r.body.error.code, 'KW_RELEASE_POLICY_INVALID');
      assert.equal(r.body.error.reason, 'ATTEST_INVALID_POLICY');
    }
    assert.equal((await call(s, 'GET', '/v1/keys/app/tpm-key/release-policy', { token: root })).body.policy_sha256, tpmPolicyHash);
    const none = await call(s, 'POST', '/v1/attest/app/no-policy/nonce', { token, body: {} });
    assert.equal(none.status, 409);
    assert.equal(none.body.error.code, 'KW_RELEASE_POLICY_MISSING');
    const notAdmin = await call(s, 'PUT', '/v1/keys/app/no-policy/release-policy', { token, body: { policy: { platforms: ['tpm2'] } } });
    assert.equal(notAdmin.status, 403);
    const noGrant = await call(s, 'POST', '/v1/attest/app/tpm-key/nonce', { token: root, body: {} });
    assert.equal(noGrant.status, 403, 'admins get no data-plane release without a grant');
  });

  void test('OpenAPI documents the release routes and the error reason', async () => {
    const r = await call(s, 'GET', '/v1/openapi.json');
    for (const p of ['/v1/attest/{ns}/{name}/nonce', '/v1/attest/{ns}/{name}/release', '/v1/keys/{ns}/{name}/release-policy']) assert.ok(r.body.paths[p], `missing ${p}`);
    const err = r.body.paths['/v1/attest/{ns}/{name}/release'].post.responses.default.content['application/json'].schema.properties.error;
    assert.ok(err.properties.reason);
    assert.ok(err.properties.code.enum.includes('KW_ATTEST_POLICY_DENIED'));
  });

  void test('every release and refusal is in the audit log, with a claims summary and never key material', async () => {
    const size = await s.store.auditSize();
    const events = (await s.store.readAuditEvents({ start: 0, end: size })).map((r) => r.event);
    const parsed = events.map((e) => JSON.parse(e) as { op: string; outcome: string; code: string | null; details: { reason?: string; claims?: { measurements: Record<string, string> }; policy_sha256?: string } });
    const releases = parsed.filter((e) => e.op === 'attest.release');
    const allowed = releases.filter((e) => e.outcome === 'allowed');
    assert.equal(allowed.length, 3, 'TPM, Nitro, signed Nitro');
    assert.ok(allowed[0]!.details.claims!.measurements['sha256:PCR16']);
    assert.equal(allowed[0]!.details.policy_sha256, tpmPolicyHash);
    for (const r of refusals) {
      assert.ok(releases.some((e) => e.outcome === 'denied' && e.code === r.code && (r.reason === undefined || e.details.reason === r.reason)), `no audit event for ${r.code} ${r.reason ?? ''}`);
    }
    assert.ok(parsed.some((e) => e.op === 'keys.release_policy'));
    assert.ok(parsed.some((e) => e.op === 'attest.nonce'));
    for (const e of events.filter((x) => x.includes('attest.'))) assert.ok(!/"(sealed|wrapped|activated_credential)"/.test(e));
  });
});
