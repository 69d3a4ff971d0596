/**
 * TPM 2.0 quotes and AK enrollment against a real software TPM (swtpm):
 * the EK certificate chains to swtpm's private localca root (standing in for
 * the manufacturer), our MakeCredential is activated by the real
 * `tpm2_activatecredential`, real quotes verify (and `tpm2_checkquote`
 * agrees), and every tampering the issue lists is refused with its code.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { EnrolledAk, finishAkEnrollment, startAkEnrollment, verifyTpmQuote } from '../src/index.js';
import { SoftTpm, type AkKind } from './swtpm.js';
import { flip, throwsAttest } from './helpers.js';

const SELECTION = 'sha256:0,1,2,3,7,16';
const INDICES = [0, 1, 2, 3, 7, 16];


let tpm: SoftTpm;
let other: SoftTpm; // a second TPM with its own manufacturer CA

before(async () => {
  tpm = await SoftTpm.start();
  other = await SoftTpm.start();
});
after(() => {
  tpm?.stop();
  other?.stop();
});

function enroll(t: SoftTpm, akName: string, kind: AkKind): { ak: EnrolledAk; ctx: string; pem: string } {
  const created = t.createAk(akName, kind);
  const { root, issuer } = t.manufacturerCa();
  const { challenge, pending } = startAkEnrollment({ ekCertificate: t.ekCertificate(), ekIntermediates: [issuer], roots: [root], ekPublic: t.ekPublic(), akPublic: created.public, now: new Date() });
  const secret = t.activate(created.ctx, challenge.tpm2ToolsFile);
  return { ak: finishAkEnrollment(pending, secret), ctx: created.ctx, pem: created.pem };
}

void describe('TPM 2.0 quotes from swtpm', () => {
  for (const kind of ['ecdsa', 'rsassa', 'rsapss'] as const) {
    const reference = kind === 'rsapss' ? 'openssl dgst' : 'tpm2_checkquote';
    void test(`a real ${kind} quote verifies, and ${reference} agrees`, () => {
      const { ak, ctx, pem } = enroll(tpm, `ak-${kind}`, kind);
      const nonce = randomBytes(16);
      const q = tpm.quote(ctx, SELECTION, nonce, `q-${kind}`, kind);
      if (kind === 'rsapss') {
        assert.ok(tpm.opensslVerifyPss(pem, q), 'openssl rejected the PSS signature');
        assert.ok(!tpm.opensslVerifyPss(pem, { ...q, signature: flip(q.signature, 20) }), 'openssl accepted a flipped PSS signature');
      } else {
        assert.ok(tpm.checkquote(pem, q, nonce), 'tpm2_checkquote rejected the quote');
      }
      const pcrs = { sha256: tpm.pcrRead('sha256', INDICES) };
      const claims = verifyTpmQuote({ ak, attest: q.attest, signature: q.signature, pcrs, expectedNonce: nonce, now: new Date() });
      assert.equal(claims.platform, 'tpm2');
      assert.deepEqual(Object.keys(claims.measurements).sort(), INDICES.map((i) => `sha256:PCR${i}`).sort());
      assert.deepEqual(claims.measurements['sha256:PCR16'], pcrs.sha256[16]);
      assert.deepEqual(claims.nonce, new Uint8Array(nonce));
      assert.equal(claims.debug, false);
      assert.equal(typeof claims.versions['tpm.firmware'], 'bigint');
      assert.ok(Math.abs(claims.verifiedAt.getTime() - Date.now()) < 60_000);
    });
  }

  void test('a quote fails after a further PCR extend (old PCR values no longer match; new values vs old quote neither)', () => {
    const { ak, ctx, pem } = enroll(tpm, 'ak-extend', 'ecdsa');
    const nonce = randomBytes(16);
    const before = tpm.pcrRead('sha256', INDICES);
    const q = tpm.quote(ctx, SELECTION, nonce, 'q-extend');
    verifyTpmQuote({ ak, attest: q.attest, signature: q.signature, pcrs: { sha256: before }, expectedNonce: nonce, now: new Date() });
    tpm.extend(16, randomBytes(32).toString('hex'));
    const afterExtend = tpm.pcrRead('sha256', INDICES);
    assert.notDeepEqual(afterExtend[16], before[16]);
    // the old quote against the current PCR values
    throwsAttest(() => verifyTpmQuote({ ak, attest: q.attest, signature: q.signature, pcrs: { sha256: afterExtend }, expectedNonce: nonce, now: new Date() }), 'ATTEST_PCR_MISMATCH');
    // a fresh quote against the values the verifier expected before the extend
    const nonce2 = randomBytes(16);
    const q2 = tpm.quote(ctx, SELECTION, nonce2, 'q-extend2');
    throwsAttest(() => verifyTpmQuote({ ak, attest: q2.attest, signature: q2.signature, pcrs: { sha256: before }, expectedNonce: nonce2, now: new Date() }), 'ATTEST_PCR_MISMATCH');
    assert.ok(!tpm.checkquote(pem, { ...q2, pcrFile: q.pcrFile }, nonce2), 'tpm2_checkquote should reject the new quote with the old PCR file too');
    verifyTpmQuote({ ak, attest: q2.attest, signature: q2.signature, pcrs: { sha256: afterExtend }, expectedNonce: nonce2, now: new Date() });
  });

  void test('a quote fails with a wrong nonce (and tpm2_checkquote agrees)', () => {
    const { ak, ctx, pem } = enroll(tpm, 'ak-nonce', 'ecdsa');
    const nonce = randomBytes(16);
    const q = tpm.quote(ctx, SELECTION, nonce, 'q-nonce');
    const wrong = flip(nonce, 0);
    assert.ok(!tpm.checkquote(pem, q, wrong));
    throwsAttest(() => verifyTpmQuote({ ak, attest: q.attest, signature: q.signature, pcrs: { sha256: tpm.pcrRead('sha256', INDICES) }, expectedNonce: wrong, now: new Date() }), 'ATTEST_NONCE_MISMATCH');
  });

  void test('a missing quoted PCR value, a flipped quote byte or signature byte are refused', () => {
    const { ak, ctx } = enroll(tpm, 'ak-tamper', 'rsassa');
    const nonce = randomBytes(16);
    const q = tpm.quote(ctx, SELECTION, nonce, 'q-tamper');
    const pcrs = tpm.pcrRead('sha256', INDICES);
    const { 7: _dropped, ...without7 } = pcrs;
    throwsAttest(() => verifyTpmQuote({ ak, attest: q.attest, signature: q.signature, pcrs: { sha256: without7 }, expectedNonce: nonce, now: new Date() }), 'ATTEST_PCR_MISMATCH');
    throwsAttest(() => verifyTpmQuote({ ak, attest: flip(q.attest, q.attest.length - 1), signature: q.signature, pcrs: { sha256: pcrs }, expectedNonce: nonce, now: new Date() }), 'ATTEST_BAD_SIGNATURE');
    throwsAttest(() => verifyTpmQuote({ ak, attest: q.attest, signature: flip(q.signature, q.signature.length - 1), pcrs: { sha256: pcrs }, expectedNonce: nonce, now: new Date() }), 'ATTEST_BAD_SIGNATURE');
    throwsAttest(() => verifyTpmQuote({ ak, attest: flip(q.attest, 0), signature: q.signature, pcrs: { sha256: pcrs }, expectedNonce: nonce, now: new Date() }), 'ATTEST_MALFORMED');
    throwsAttest(() => verifyTpmQuote({ ak, attest: q.attest.subarray(0, 40), signature: q.signature, pcrs: { sha256: pcrs }, expectedNonce: nonce, now: new Date() }), 'ATTEST_MALFORMED');
  });

  void test('a quote by an AK of another TPM does not verify with the enrolled AK', () => {
    const { ak } = enroll(tpm, 'ak-mine', 'ecdsa');
    const foreign = other.createAk('ak-foreign', 'ecdsa');
    const nonce = randomBytes(16);
    const q = other.quote(foreign.ctx, SELECTION, nonce, 'q-foreign');
    throwsAttest(() => verifyTpmQuote({ ak, attest: q.attest, signature: q.signature, pcrs: { sha256: other.pcrRead('sha256', INDICES) }, expectedNonce: nonce, now: new Date() }), 'ATTEST_BAD_SIGNATURE');
  });
});

void describe('AK enrollment (EK certificate chain + credential activation)', () => {
  void test('an AK that was not activated against the EK is refused', () => {
    // The attacker's AK lives in another TPM; the verifier seals the credential to *this* TPM's EK.
    const foreign = other.createAk('ak-unbound', 'ecdsa');
    const { root, issuer } = tpm.manufacturerCa();
    const { challenge, pending } = startAkEnrollment({ ekCertificate: tpm.ekCertificate(), ekIntermediates: [issuer], roots: [root], ekPublic: tpm.ekPublic(), akPublic: foreign.public, now: new Date() });
    // The TPM that holds the EK refuses: the credential is bound to the foreign AK's Name, not its own AK's.
    const local = tpm.createAk('ak-local', 'ecdsa');
    assert.throws(() => tpm.activate(local.ctx, challenge.tpm2ToolsFile), /tpm2_activatecredential/);
    // The TPM that holds the AK cannot decrypt a seed sealed to another EK.
    assert.throws(() => other.activate(foreign.ctx, challenge.tpm2ToolsFile), /tpm2_activatecredential/);
    // Whatever the attester answers, enrollment fails, and no EnrolledAk exists to verify quotes with.
    throwsAttest(() => finishAkEnrollment(pending, randomBytes(32)), 'ATTEST_ACTIVATION_FAILED');
    const q = other.quote(foreign.ctx, SELECTION, randomBytes(8), 'q-unbound');
    const forged = Object.create(EnrolledAk.prototype) as EnrolledAk;
    throwsAttest(() => verifyTpmQuote({ ak: forged, attest: q.attest, signature: q.signature, pcrs: {}, expectedNonce: randomBytes(8), now: new Date() }), 'ATTEST_AK_NOT_ENROLLED');
  });

  void test('our MakeCredential is activated by the real TPM, and the answer must be exactly the sealed secret', () => {
    const created = tpm.createAk('ak-act', 'rsassa');
    const { root, issuer } = tpm.manufacturerCa();
    const { challenge, pending } = startAkEnrollment({ ekCertificate: tpm.ekCertificate(), ekIntermediates: [issuer], roots: [root], ekPublic: tpm.ekPublic(), akPublic: created.public, now: new Date() });
    const secret = tpm.activate(created.ctx, challenge.tpm2ToolsFile);
    assert.equal(secret.length, 32);
    throwsAttest(() => finishAkEnrollment(pending, flip(secret, 5)), 'ATTEST_ACTIVATION_FAILED');
    assert.ok(EnrolledAk.isEnrolled(finishAkEnrollment(pending, secret)));
  });

  void test('an EK certificate from another root is refused', () => {
    const created = tpm.createAk('ak-root', 'ecdsa');
    const mine = tpm.manufacturerCa();
    const theirs = other.manufacturerCa();
    // this TPM's EK certificate, but only the other TPM's manufacturer root is trusted
    throwsAttest(() => startAkEnrollment({ ekCertificate: tpm.ekCertificate(), ekIntermediates: [mine.issuer], roots: [theirs.root], ekPublic: tpm.ekPublic(), akPublic: created.public, now: new Date() }), 'ATTEST_UNTRUSTED_ROOT');
    // the other TPM's EK certificate and chain, with this TPM's root trusted
    throwsAttest(() => startAkEnrollment({ ekCertificate: other.ekCertificate(), ekIntermediates: [theirs.issuer], roots: [mine.root], ekPublic: other.ekPublic(), akPublic: created.public, now: new Date() }), 'ATTEST_UNTRUSTED_ROOT');
    // a chain spliced across roots: our EK certificate with their intermediate
    throwsAttest(() => startAkEnrollment({ ekCertificate: tpm.ekCertificate(), ekIntermediates: [theirs.issuer], roots: [theirs.root], ekPublic: tpm.ekPublic(), akPublic: created.public, now: new Date() }), 'ATTEST_CHAIN_INVALID');
  });

  void test("an EK certificate that is not the EK's key, and a non-AK key, are refused", () => {
    const created = tpm.createAk('ak-bind', 'ecdsa');
    const { root, issuer } = tpm.manufacturerCa();
    throwsAttest(() => startAkEnrollment({ ekCertificate: tpm.ekCertificate(), ekIntermediates: [issuer], roots: [root], ekPublic: other.ekPublic(), akPublic: created.public, now: new Date() }), 'ATTEST_KEY_BINDING');
    // the EK itself is a restricted *decryption* key: not an AK
    throwsAttest(() => startAkEnrollment({ ekCertificate: tpm.ekCertificate(), ekIntermediates: [issuer], roots: [root], ekPublic: tpm.ekPublic(), akPublic: tpm.ekPublic(), now: new Date() }), 'ATTEST_AK_ATTRIBUTES');
  });
});
