/**
 * Quorum tallies, case by case as the MFA issue lists them: replay for
 * another request, double approval, self-approval, expiry, impossible
 * quorums, non-members, and WebAuthn approvals with a software authenticator.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, test } from 'node:test';
import { isMfaError } from '../../src/mfa/errors.js';
import { approvalChallenge, approvalMessage, checkQuorumRule, tallyApprovals, type Approval, type Approver, type Decision } from '../../src/mfa/quorum.js';
import { requestHash, type SensitiveRequest } from '../../src/mfa/request-hash.js';
import { registrationOptions, verifyRegistration, type RelyingParty } from '../../src/mfa/webauthn.js';
import { SoftAuthenticator } from './soft-authenticator.js';

const rp: RelyingParty = { id: 'keyward.example', name: 'Keyward', origins: ['https://keyward.example'] };
const req: SensitiveRequest = { method: 'POST', path: '/v1/keys/billing/orders/versions/3/destroy', namespace: 'billing', key: 'orders', version: 3, body: null, expiresAt: 1_900_000_000 };
const hash = requestHash(req);
const otherHash = requestHash({ ...req, version: 4 });
const now = new Date((req.expiresAt - 60) * 1000);
const rule = { role: 'key-admins', threshold: 2 };

function edMember() {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const raw = new Uint8Array(Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url'));
  return {
    approver: { ed25519: new Map([['k1', raw]]), credentials: [] } as Approver,
    approve: (name: string, h: Uint8Array, decision: Decision = 'approve'): Approval =>
      ({ approver: name, decision, kind: 'ed25519', keyId: 'k1', signature: sign(null, approvalMessage(h, decision), privateKey).toString('base64url') }),
  };
}

const alice = edMember(), bob = edMember(), carol = edMember(), mallory = edMember();
const members = new Map([['alice', alice.approver], ['bob', bob.approver], ['carol', carol.approver]]);
const pending = { hash, requester: 'alice', expiresAt: req.expiresAt };
const tally = (approvals: Approval[], at = now) => tallyApprovals({ request: pending, rule, members, approvals, now: at, rp });

void describe('quorum of 2 of key-admins, requested by alice', () => {
  void test('two distinct other members approve → satisfied', async () => {
    const t = await tally([bob.approve('bob', hash), carol.approve('carol', hash)]);
    assert.equal(t.satisfied, true);
    assert.deepEqual([...t.approvedBy].sort(), ['bob', 'carol']);
  });

  void test("the requester's own approval does not count", async () => {
    const t = await tally([alice.approve('alice', hash), bob.approve('bob', hash)]);
    assert.equal(t.satisfied, false);
    assert.deepEqual(t.rejected, [{ approver: 'alice', code: 'KW_APPROVAL_SELF' }]);
  });

  void test('an approver approving twice counts once', async () => {
    const t = await tally([bob.approve('bob', hash), bob.approve('bob', hash)]);
    assert.equal(t.satisfied, false);
    assert.deepEqual(t.approvedBy, ['bob']);
  });

  void test('an approval of another request does not count (replay)', async () => {
    const t = await tally([bob.approve('bob', hash), { ...carol.approve('carol', otherHash) }]);
    assert.equal(t.satisfied, false);
    assert.deepEqual(t.rejected, [{ approver: 'carol', code: 'KW_APPROVAL_INVALID' }]);
  });

  void test("a signature turned from deny into approve does not verify", async () => {
    const deny = carol.approve('carol', hash, 'deny');
    const t = await tally([bob.approve('bob', hash), { ...deny, decision: 'approve' }]);
    assert.equal(t.satisfied, false);
    assert.deepEqual(t.rejected, [{ approver: 'carol', code: 'KW_APPROVAL_INVALID' }]);
  });

  void test("someone else's key, or a non-member, does not count", async () => {
    const forged = { ...mallory.approve('carol', hash) };
    const t = await tally([bob.approve('bob', hash), forged, mallory.approve('mallory', hash)]);
    assert.equal(t.satisfied, false);
    assert.deepEqual(t.rejected, [{ approver: 'carol', code: 'KW_APPROVAL_INVALID' }, { approver: 'mallory', code: 'KW_APPROVAL_NOT_MEMBER' }]);
  });

  void test('one verified denial ends the request', async () => {
    const t = await tally([bob.approve('bob', hash), carol.approve('carol', hash), carol.approve('carol', hash, 'deny')]);
    assert.equal(t.denied, true);
    assert.equal(t.satisfied, false);
  });

  void test('an expired request cannot be tallied (so cannot execute)', async () => {
    await assert.rejects(tally([bob.approve('bob', hash), carol.approve('carol', hash)], new Date((req.expiresAt + 1) * 1000)),
      (e) => isMfaError(e, 'KW_STEP_UP_EXPIRED'));
  });
});

void test('a quorum of 0, or larger than the role, is refused at write time', () => {
  for (const threshold of [0, -1, 1.5, 4]) assert.throws(() => checkQuorumRule({ role: 'key-admins', threshold }, 3), (e) => isMfaError(e, 'KW_QUORUM_INVALID'));
  checkQuorumRule({ role: 'key-admins', threshold: 3 }, 3);
  checkQuorumRule({ role: 'key-admins', threshold: 1 }, 3);
});

void test('WebAuthn approvals: the challenge binds request and decision; counters are returned', async () => {
  const dave = new SoftAuthenticator(rp.id, rp.origins[0]!);
  const options = await registrationOptions(rp, { id: 'dave', name: 'dave' }, []);
  const cred = await verifyRegistration(rp, dave.register(options.challenge, 'packed'), options.challenge);
  const team = new Map([...members, ['dave', { ed25519: new Map(), credentials: [cred] }]]);
  const b64 = (h: Uint8Array) => Buffer.from(h).toString('base64url');
  const good: Approval = { approver: 'dave', decision: 'approve', kind: 'webauthn', response: dave.assert(b64(approvalChallenge(hash, 'approve'))) };
  const t = await tallyApprovals({ request: pending, rule, members: team, approvals: [bob.approve('bob', hash), good], now, rp });
  assert.equal(t.satisfied, true);
  assert.equal(t.counters.get(cred.id), 1);
  const wrongRequest: Approval = { approver: 'dave', decision: 'approve', kind: 'webauthn', response: dave.assert(b64(approvalChallenge(otherHash, 'approve'))) };
  const t2 = await tallyApprovals({ request: pending, rule, members: team, approvals: [bob.approve('bob', hash), wrongRequest], now, rp });
  assert.equal(t2.satisfied, false);
  assert.deepEqual(t2.rejected, [{ approver: 'dave', code: 'KW_APPROVAL_INVALID' }]);
});
