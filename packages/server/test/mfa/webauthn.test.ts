/**
 * WebAuthn enrollment and step-up with a software authenticator producing
 * real attestation objects (`none` and `packed`) and assertions: a step-up
 * made for one request authorises that request only.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isMfaError, type MfaErrorCode } from '../../src/mfa/errors.js';
import { requestHash, type SensitiveRequest } from '../../src/mfa/request-hash.js';
import { registrationOptions, stepUpOptions, verifyRegistration, verifyStepUp, type RelyingParty } from '../../src/mfa/webauthn.js';
import { SoftAuthenticator } from './soft-authenticator.js';

const rp: RelyingParty = { id: 'keyward.example', name: 'Keyward', origins: ['https://keyward.example'] };
const destroy3: SensitiveRequest = {
  method: 'POST', path: '/v1/keys/billing/orders/versions/3/destroy', namespace: 'billing', key: 'orders', version: 3, body: null, expiresAt: 1_900_000_000,
};
const destroy4: SensitiveRequest = { ...destroy3, path: '/v1/keys/billing/orders/versions/4/destroy', version: 4 };

async function rejectsMfa(p: Promise<unknown>, code: MfaErrorCode): Promise<void> {
  await assert.rejects(p, (e) => isMfaError(e, code) || assert.fail(`expected ${code}, got ${String(e)}`));
}

async function enrolled(fmt: 'none' | 'packed') {
  const auth = new SoftAuthenticator(rp.id, rp.origins[0]!);
  const options = await registrationOptions(rp, { id: 'principal-alice', name: 'alice' }, []);
  const cred = await verifyRegistration(rp, auth.register(options.challenge, fmt), options.challenge);
  return { auth, cred };
}

void describe('registration', () => {
  for (const fmt of ['none', 'packed'] as const) {
    void test(`a ${fmt} attestation enrolls a credential`, async () => {
      const { auth, cred } = await enrolled(fmt);
      assert.equal(cred.id, auth.id);
      assert.equal(cred.fmt, fmt);
      assert.equal(cred.counter, 0);
    });
  }

  void test('a registration for another challenge or origin is refused', async () => {
    const auth = new SoftAuthenticator(rp.id, rp.origins[0]!);
    const options = await registrationOptions(rp, { id: 'p', name: 'p' }, []);
    const other = await registrationOptions(rp, { id: 'p', name: 'p' }, []);
    await rejectsMfa(verifyRegistration(rp, auth.register(other.challenge), options.challenge), 'KW_MFA_INVALID');
    const phishing = new SoftAuthenticator(rp.id, 'https://keyward.example.evil');
    await rejectsMfa(verifyRegistration(rp, phishing.register(options.challenge), options.challenge), 'KW_MFA_INVALID');
  });

  void test('an authenticator without user verification cannot enroll', async () => {
    const auth = new SoftAuthenticator(rp.id, rp.origins[0]!, false);
    const options = await registrationOptions(rp, { id: 'p', name: 'p' }, []);
    await rejectsMfa(verifyRegistration(rp, auth.register(options.challenge), options.challenge), 'KW_MFA_INVALID');
  });
});

void describe('step-up bound to the request', () => {
  void test('the challenge is the request hash; the assertion verifies for that request', async () => {
    const { auth, cred } = await enrolled('packed');
    const hash = requestHash(destroy3);
    const options = stepUpOptions(rp, [cred], hash);
    assert.equal(options.challenge, Buffer.from(hash).toString('base64url'));
    assert.equal(options.userVerification, 'required');
    const { newCounter } = await verifyStepUp(rp, auth.assert(options.challenge), cred, hash);
    assert.equal(newCounter, 1);
  });

  void test('an assertion for one request does not authorise another', async () => {
    const { auth, cred } = await enrolled('none');
    const forV3 = auth.assert(stepUpOptions(rp, [cred], requestHash(destroy3)).challenge);
    await rejectsMfa(verifyStepUp(rp, forV3, cred, requestHash(destroy4)), 'KW_STEP_UP_MISMATCH');
    // the expiry is part of the request too
    await rejectsMfa(verifyStepUp(rp, forV3, cred, requestHash({ ...destroy3, expiresAt: destroy3.expiresAt + 60 })), 'KW_STEP_UP_MISMATCH');
  });

  void test('a replayed assertion (counter not advancing) is refused', async () => {
    const { auth, cred } = await enrolled('none');
    const hash = requestHash(destroy3);
    const challenge = stepUpOptions(rp, [cred], hash).challenge;
    const first = auth.assert(challenge);
    const { newCounter } = await verifyStepUp(rp, first, cred, hash);
    const stored = { ...cred, counter: newCounter };
    await rejectsMfa(verifyStepUp(rp, first, stored, hash), 'KW_MFA_REPLAY');
  });

  void test('a tampered signature, a foreign origin or another credential is refused', async () => {
    const { auth, cred } = await enrolled('none');
    const hash = requestHash(destroy3);
    const challenge = Buffer.from(hash).toString('base64url');
    const good = auth.assert(challenge);
    const sig = Buffer.from(good.response.signature, 'base64url');
    sig[sig.length - 1]! ^= 1;
    await rejectsMfa(verifyStepUp(rp, { ...good, response: { ...good.response, signature: sig.toString('base64url') } }, cred, hash), 'KW_MFA_INVALID');
    await rejectsMfa(verifyStepUp(rp, auth.assert(challenge, { origin: 'https://evil.example' }), cred, hash), 'KW_MFA_INVALID');
    const { auth: other } = await enrolled('none');
    await rejectsMfa(verifyStepUp(rp, other.assert(challenge), cred, hash), 'KW_MFA_INVALID');
  });
});
