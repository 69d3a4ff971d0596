/**
 * MFA and step-up through the real server (real keyholder process, real
 * SQLite; issue #7, docs/mfa.md): enrollment of TOTP (seed sealed by the
 * keyholder) and WebAuthn (software authenticator, packed attestation),
 * enforcement on every sensitive operation (refused with KW_MFA_REQUIRED and
 * nothing changed), a step-up bound to one request (KW_STEP_UP_MISMATCH for
 * another, KW_MFA_REPLAY when reused, KW_STEP_UP_EXPIRED when late), lockout,
 * recovery codes used once, services refused, the bootstrap token expiring,
 * and no secret in the audit log. The MFA clock is injected.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { base32 } from '@scure/base';
import { parseEvent } from '../../src/audit/event.js';
import { totpAt } from '../../src/mfa/totp.js';
import type { RunningServer } from '../../src/server.js';
import { SoftAuthenticator } from '../mfa/soft-authenticator.js';
import { call, enrollAdmin, newServer, snapshot, unsealAll, type Res } from './helpers.js';

const RP = { rpId: 'keyward.test', origins: ['https://keyward.test'] };
/** The MFA clock: real time plus `offset` ms (the keyholder accepts TOTP times within 5 minutes of its own clock). */
let offset = -280_000;
const clock = (): Date => new Date(Date.now() + offset);
/** Moves the MFA clock on by one TOTP step (each code is accepted once per step). */
const nextStep = (): void => { offset += 30_000; };

const codeAt = (seed: string, at = clock()): Promise<string> => totpAt(base32.decode(seed.padEnd(Math.ceil(seed.length / 8) * 8, '=')), at);
const expectError = (r: Res, status: number, code: string, what = ''): void => {
  assert.deepEqual([r.status, r.body?.error?.code], [status, code], `${what}: ${JSON.stringify(r.body)}`);
};

void describe('MFA and step-up through the server', () => {
  let s: RunningServer;
  let boot: string;
  let alice: string;
  let bob: string;
  let svc: string;
  let aliceSeed: string;
  let aliceTotp: string;
  let bobKey: SoftAuthenticator;
  const secrets: string[] = [];

  /** Requests a step-up for `method path body` as `token`. */
  async function stepUp(token: string, method: 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<Res> {
    return call(s, 'POST', '/v1/mfa/step-up', { token, body: { method, path, ...(body !== undefined ? { body } : {}) } });
  }
  /** A step-up for the request, verified with alice's next TOTP code; its id. */
  async function aliceStepUp(method: 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<string> {
    nextStep();
    const r = await stepUp(alice, method, path, body);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const code = await codeAt(aliceSeed);
    secrets.push(code);
    const v = await call(s, 'POST', `/v1/mfa/step-up/${r.body.id}/verify`, { token: alice, body: { code } });
    assert.equal(v.status, 200, JSON.stringify(v.body));
    return r.body.id as string;
  }
  /** A step-up for the request, verified with bob's security key (WebAuthn assertion over the request hash). */
  async function bobStepUp(method: 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<string> {
    const r = await stepUp(bob, method, path, body);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.webauthn.challenge, r.body.id, 'the WebAuthn challenge is the request hash');
    const v = await call(s, 'POST', `/v1/mfa/step-up/${r.body.id}/verify`, { token: bob, body: { webauthn: bobKey.assert(r.body.webauthn.challenge) } });
    assert.equal(v.status, 200, JSON.stringify(v.body));
    return r.body.id as string;
  }
  const withStepUp = (id: string) => ({ 'keyward-step-up': id });
  const stateOf = async () => JSON.stringify({
    keys: await snapshot(s, 'app'), principals: await s.store.listPrincipals('default'),
    tokens: (await s.store.listTokens('alice')).length + (await s.store.listTokens('svc')).length + (await s.store.listTokens('carol')).length,
    factors: await s.store.listMfaFactors('alice'),
    governance: (await s.keyholder.call('governance-head', {})).hash,
    approvals: (await s.store.listApprovalRequests()).length,
  });

  before(async () => {
    s = await newServer({ schedulerMs: 0, mfa: { ...RP, clock, stepUpTtlSeconds: 30, maxFailures: 3, lockoutSeconds: 30 } });
    const init = await s.initialize({ shares: 2, threshold: 2 });
    boot = init.rootToken;
    await unsealAll(s, init.shares);
    alice = await enrollAdmin(s, boot, 'alice');
    bob = await enrollAdmin(s, boot, 'bob');
    // Before any factor is active nothing is enforced: a service admin token, a key with three versions, v1 scheduled for deletion.
    const t = await call(s, 'POST', '/v1/tokens', { token: alice, body: { principal: 'svc', kind: 'service', admin: true } });
    assert.equal(t.status, 201, JSON.stringify(t.body));
    svc = t.body.token;
    assert.equal((await call(s, 'POST', '/v1/keys/app/k', { token: alice, body: { type: 'aes256' } })).status, 201);
    for (let i = 0; i < 2; i++) assert.equal((await call(s, 'POST', '/v1/keys/app/k/rotate', { token: alice })).status, 200);
    assert.equal((await call(s, 'POST', '/v1/keys/app/k/versions/1/schedule-deletion', { token: alice, body: { days: 7 } })).status, 200);
  });
  after(async () => { await s.close(); });

  void test('the bootstrap token enrolls alice\'s TOTP (seed shown once, sealed at rest); the first code activates it and expires the bootstrap token', async () => {
    const e = await call(s, 'POST', '/v1/mfa/totp', { token: boot, body: { principal: 'alice', name: 'phone' } });
    assert.equal(e.status, 201, JSON.stringify(e.body));
    assert.match(e.body.secret_base32, /^[A-Z2-7]{32}$/);
    assert.match(e.body.otpauth_uri, /^otpauth:\/\/totp\/.*secret=/);
    aliceSeed = e.body.secret_base32;
    aliceTotp = e.body.id;
    secrets.push(aliceSeed);
    const stored = await s.store.getMfaFactor(aliceTotp);
    assert.equal(stored!.state, 'pending');
    assert.ok(!Buffer.from(stored!.secret!).includes(Buffer.from(base32.decode(aliceSeed + '===='.slice(0, (8 - (aliceSeed.length % 8)) % 8)))), 'the seed is not stored in the clear');
    // The bootstrap token cannot enroll factors for a service or for itself.
    expectError(await call(s, 'POST', '/v1/mfa/totp', { token: boot, body: { principal: 'svc' } }), 403, 'KW_BOOTSTRAP_ONLY', 'service');
    expectError(await call(s, 'POST', '/v1/mfa/totp', { token: boot, body: {} }), 403, 'KW_BOOTSTRAP_ONLY', 'no target');
    // A wrong code does not activate.
    const code = await codeAt(aliceSeed);
    const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, '0');
    expectError(await call(s, 'POST', `/v1/mfa/totp/${aliceTotp}/activate`, { token: boot, body: { code: wrong, principal: 'alice' } }), 401, 'KW_MFA_INVALID', 'wrong code');
    const a = await call(s, 'POST', `/v1/mfa/totp/${aliceTotp}/activate`, { token: boot, body: { code, principal: 'alice' } });
    assert.equal(a.status, 200, JSON.stringify(a.body));
    assert.equal(a.body.state, 'active');
    secrets.push(code);
    // Enforcement started; the bootstrap token expired.
    expectError(await call(s, 'POST', '/v1/tokens', { token: boot, body: { principal: 'carol', kind: 'person', admin: true } }), 403, 'KW_BOOTSTRAP_ONLY', 'bootstrap after enforcement');
    expectError(await call(s, 'GET', '/v1/principals', { token: boot }), 403, 'KW_BOOTSTRAP_ONLY', 'bootstrap read after enforcement');
  });

  void test('every sensitive operation without a step-up: KW_MFA_REQUIRED (403), audited, nothing changed; a service is refused too', async () => {
    const before = await stateOf();
    const from = await s.store.auditSize();
    const attempts: [string, 'POST' | 'PUT' | 'DELETE', string, unknown?][] = [
      ['destroy', 'POST', '/v1/keys/app/k/versions/1/destroy'],
      ['schedule deletion', 'POST', '/v1/keys/app/k/versions/2/schedule-deletion', { days: 7 }],
      ['policy change', 'PUT', '/v1/policies/app/p', { grants: [{ principals: ['svc'], operations: ['datakey'], keys: ['app/*'] }] }],
      ['admin token', 'POST', '/v1/tokens', { principal: 'carol', kind: 'person', admin: true }],
      ['role change', 'PUT', '/v1/principals/svc/roles', { roles: ['ops'] }],
      ['remove a factor', 'DELETE', `/v1/mfa/factors/${aliceTotp}`],
      ['add a factor', 'POST', '/v1/mfa/totp', { name: 'second phone' }],
      ['recovery codes', 'POST', '/v1/mfa/recovery-codes', {}],
      ['roles through a token', 'POST', '/v1/tokens', { principal: 'svc', roles: ['ops'] }],
      ['quorum rule', 'PUT', '/v1/quorum/keys.destroy', { role: 'ops', threshold: 1 }],
      ['quorum rule removed', 'DELETE', '/v1/quorum/keys.destroy'],
      ['approval key', 'PUT', '/v1/approvers/alice/keys/k1', { kind: 'ed25519', public_key: 'A'.repeat(43) }],
      ['approval key removed', 'DELETE', '/v1/approvers/alice/keys/k1'],
      ['unseal-share rotation (rekey)', 'POST', '/v1/sys/rekey', { shares: 2, threshold: 2, recipients: ['kwx25519-a', 'kwx25519-b'] }],
    ];
    for (const [what, method, url, body] of attempts) {
      expectError(await call(s, method, url, { token: alice, ...(body !== undefined ? { body } : {}) }), 403, 'KW_MFA_REQUIRED', what);
      // A malformed or unknown step-up id is no better.
      expectError(await call(s, method, url, { token: alice, headers: withStepUp('A'.repeat(43)), ...(body !== undefined ? { body } : {}) }), 403, 'KW_MFA_REQUIRED', `${what} (unknown id)`);
    }
    for (const [what, method, url, body] of attempts.slice(0, 5)) {
      expectError(await call(s, method, url, { token: svc, ...(body !== undefined ? { body } : {}) }), 403, 'KW_MFA_REQUIRED', `service: ${what}`);
    }
    expectError(await stepUp(svc, 'POST', '/v1/keys/app/k/versions/1/destroy'), 403, 'KW_MFA_REQUIRED', 'a service cannot step up');
    assert.equal(await stateOf(), before, 'nothing changed');
    const events = (await s.store.readAuditEvents({ start: from, end: await s.store.auditSize() })).map((r) => parseEvent(r.event));
    assert.ok(events.filter((e) => e.code === 'KW_MFA_REQUIRED').length >= attempts.length * 2 + 5, 'every refusal is audited');
    // Operations that are not sensitive need no step-up.
    assert.equal((await call(s, 'POST', '/v1/keys/app/k/versions/3/disable', { token: alice })).status, 200);
    assert.equal((await call(s, 'POST', '/v1/keys/app/k/versions/3/enable', { token: alice })).status, 200);
    assert.equal((await stepUp(alice, 'POST', '/v1/keys/app/k/versions/3/disable')).body.error.code, 'KW_INVALID_ARGUMENT');
  });

  void test('a step-up authorises exactly its request, once: another request is KW_STEP_UP_MISMATCH, reuse KW_MFA_REPLAY', async () => {
    const id = await aliceStepUp('POST', '/v1/keys/app/k/versions/1/destroy');
    const before = await stateOf();
    // Another version, another operation, another body: refused, nothing changed, the step-up still unused.
    expectError(await call(s, 'POST', '/v1/keys/app/k/versions/2/destroy', { token: alice, headers: withStepUp(id) }), 403, 'KW_STEP_UP_MISMATCH', 'other version');
    expectError(await call(s, 'POST', '/v1/keys/app/k/versions/1/schedule-deletion', { token: alice, headers: withStepUp(id), body: { days: 7 } }), 403, 'KW_STEP_UP_MISMATCH', 'other op');
    expectError(await call(s, 'PUT', '/v1/policies/app/p', { token: alice, headers: withStepUp(id), body: { grants: [] } }), 403, 'KW_STEP_UP_MISMATCH', 'policy');
    // Someone else's step-up is not theirs to use.
    expectError(await call(s, 'POST', '/v1/keys/app/k/versions/1/destroy', { token: bob, headers: withStepUp(id) }), 403, 'KW_MFA_REQUIRED', 'bob with alice\'s step-up');
    assert.equal(await stateOf(), before);
    const ok = await call(s, 'POST', '/v1/keys/app/k/versions/1/destroy', { token: alice, headers: withStepUp(id) });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.state, 'destroyed');
    // The destroy event names the request hash the factor was bound to.
    const size = await s.store.auditSize();
    const events = (await s.store.readAuditEvents({ start: Math.max(0, size - 10), end: size })).map((r) => parseEvent(r.event));
    assert.ok(events.some((e) => e.op === 'keys.destroy' && e.outcome === 'allowed' && e.request === Buffer.from(id, 'base64url').toString('hex')));
    expectError(await call(s, 'POST', '/v1/keys/app/k/versions/1/destroy', { token: alice, headers: withStepUp(id) }), 409, 'KW_MFA_REPLAY', 'reused');
    assert.equal((await s.store.getStepUp(id))!.consumedAt !== null, true);
    // A body that differs in one value is another request.
    const sched = await aliceStepUp('POST', '/v1/keys/app/k/versions/2/schedule-deletion', { days: 7 });
    expectError(await call(s, 'POST', '/v1/keys/app/k/versions/2/schedule-deletion', { token: alice, headers: withStepUp(sched), body: { days: 8 } }), 403, 'KW_STEP_UP_MISMATCH', 'other body');
    const r = await call(s, 'POST', '/v1/keys/app/k/versions/2/schedule-deletion', { token: alice, headers: withStepUp(sched), body: { days: 7 } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.state, 'scheduled_for_deletion');
  });

  void test('a TOTP code is accepted once per time step; an unverified step-up authorises nothing', async () => {
    nextStep();
    const a = await stepUp(alice, 'PUT', '/v1/principals/svc/roles', { roles: ['ops'] });
    expectError(await call(s, 'PUT', '/v1/principals/svc/roles', { token: alice, headers: withStepUp(a.body.id), body: { roles: ['ops'] } }), 403, 'KW_MFA_REQUIRED', 'unverified');
    const code = await codeAt(aliceSeed);
    assert.equal((await call(s, 'POST', `/v1/mfa/step-up/${a.body.id}/verify`, { token: alice, body: { code } })).status, 200);
    const b = await stepUp(alice, 'PUT', '/v1/principals/svc/roles', { roles: ['ops', 'audit'] });
    expectError(await call(s, 'POST', `/v1/mfa/step-up/${b.body.id}/verify`, { token: alice, body: { code } }), 409, 'KW_MFA_REPLAY', 'same code, same step');
    expectError(await call(s, 'POST', `/v1/mfa/step-up/${a.body.id}/verify`, { token: alice, body: { code } }), 409, 'KW_MFA_REPLAY', 'verified twice');
    const r = await call(s, 'PUT', '/v1/principals/svc/roles', { token: alice, headers: withStepUp(a.body.id), body: { roles: ['ops'] } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.roles, ['ops']);
  });

  void test('an expired step-up fails, verified or not: KW_STEP_UP_EXPIRED, nothing changed', async () => {
    const doc = { grants: [{ principals: ['svc'], operations: ['datakey'], keys: ['app/*'] }] };
    const id = await aliceStepUp('PUT', '/v1/policies/app/p', doc);
    const late = await stepUp(alice, 'PUT', '/v1/policies/app/q', doc);
    offset += 31_000; // past the 30 s lifetime
    const before = await stateOf();
    expectError(await call(s, 'PUT', '/v1/policies/app/p', { token: alice, headers: withStepUp(id), body: doc }), 410, 'KW_STEP_UP_EXPIRED', 'verified, late');
    nextStep();
    expectError(await call(s, 'POST', `/v1/mfa/step-up/${late.body.id}/verify`, { token: alice, body: { code: await codeAt(aliceSeed) } }), 410, 'KW_STEP_UP_EXPIRED', 'verify late');
    assert.equal(await stateOf(), before);
    assert.equal(await s.store.getPolicy('p'), null);
  });

  void test('WebAuthn over HTTP: bob enrolls a security key (packed attestation) and steps up with an assertion whose challenge is the request hash', async () => {
    bobKey = new SoftAuthenticator(RP.rpId, RP.origins[0]!);
    const o = await call(s, 'POST', '/v1/mfa/webauthn/options', { token: bob, body: { name: 'yubikey' } });
    assert.equal(o.status, 201, JSON.stringify(o.body));
    // A registration for another challenge is refused.
    expectError(await call(s, 'POST', `/v1/mfa/webauthn/${o.body.id}`, { token: bob, body: { response: bobKey.register('x'.repeat(43), 'packed') } }), 401, 'KW_MFA_INVALID', 'wrong challenge');
    const reg = await call(s, 'POST', `/v1/mfa/webauthn/${o.body.id}`, { token: bob, body: { response: bobKey.register(o.body.options.challenge, 'packed') } });
    assert.equal(reg.status, 200, JSON.stringify(reg.body));
    assert.equal(reg.body.state, 'active');
    const doc = { grants: [{ principals: ['svc'], operations: ['datakey'], keys: ['app/*'] }] };
    const id = await bobStepUp('PUT', '/v1/policies/app/p', doc);
    const r = await call(s, 'PUT', '/v1/policies/app/p', { token: bob, headers: withStepUp(id), body: doc });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    // An assertion made for one step-up does not verify another.
    const a = await stepUp(bob, 'POST', '/v1/keys/app/k/versions/2/destroy');
    const b = await stepUp(bob, 'POST', '/v1/keys/app/k/versions/3/schedule-deletion', { days: 9 });
    expectError(await call(s, 'POST', `/v1/mfa/step-up/${b.body.id}/verify`, { token: bob, body: { webauthn: bobKey.assert(a.body.webauthn.challenge) } }), 403, 'KW_STEP_UP_MISMATCH', 'assertion for another request');
    const ok = await call(s, 'POST', `/v1/mfa/step-up/${a.body.id}/verify`, { token: bob, body: { webauthn: bobKey.assert(a.body.webauthn.challenge) } });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    const d = await call(s, 'POST', '/v1/keys/app/k/versions/2/destroy', { token: bob, headers: withStepUp(a.body.id) });
    assert.equal(d.body.state, 'destroyed', JSON.stringify(d.body));
  });

  void test('lockout: after 3 failures in a row the factors lock (KW_MFA_LOCKED), even for a good answer, until the lock ends', async () => {
    const r = await stepUp(bob, 'PUT', '/v1/principals/svc/roles', { roles: [] });
    const good = () => bobKey.assert(r.body.webauthn.challenge);
    const bad = () => {
      const a = good();
      const sig = Buffer.from(a.response.signature, 'base64url');
      sig[sig.length - 1]! ^= 1;
      return { ...a, response: { ...a.response, signature: sig.toString('base64url') } };
    };
    const from = await s.store.auditSize();
    expectError(await call(s, 'POST', `/v1/mfa/step-up/${r.body.id}/verify`, { token: bob, body: { webauthn: bad() } }), 401, 'KW_MFA_INVALID', '1');
    expectError(await call(s, 'POST', `/v1/mfa/step-up/${r.body.id}/verify`, { token: bob, body: { webauthn: bad() } }), 401, 'KW_MFA_INVALID', '2');
    expectError(await call(s, 'POST', `/v1/mfa/step-up/${r.body.id}/verify`, { token: bob, body: { webauthn: bad() } }), 429, 'KW_MFA_LOCKED', '3');
    expectError(await call(s, 'POST', `/v1/mfa/step-up/${r.body.id}/verify`, { token: bob, body: { webauthn: good() } }), 429, 'KW_MFA_LOCKED', 'good while locked');
    const events = (await s.store.readAuditEvents({ start: from, end: await s.store.auditSize() })).map((x) => parseEvent(x.event));
    assert.equal(events.filter((e) => e.op === 'mfa.step_up_verify' && e.outcome === 'denied').length, 4, 'every failure is audited');
    offset += 31_000; // the lock (30 s) ends — and so does this step-up
    const again = await bobStepUp('PUT', '/v1/principals/svc/roles', { roles: [] });
    assert.equal((await call(s, 'PUT', '/v1/principals/svc/roles', { token: bob, headers: withStepUp(again), body: { roles: [] } })).status, 200);
    assert.deepEqual(await s.store.getMfaLockout('bob').then((l) => [l!.failures, l!.lockedUntil]), [0, null]);
  });

  void test('recovery codes: made once behind a step-up, each one verifies one step-up and is then spent', async () => {
    const gen = await aliceStepUp('POST', '/v1/mfa/recovery-codes', {});
    const r = await call(s, 'POST', '/v1/mfa/recovery-codes', { token: alice, headers: withStepUp(gen), body: {} });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.codes.length, 10);
    secrets.push(...(r.body.codes as string[]));
    const code = r.body.codes[0] as string;
    const a = await stepUp(alice, 'POST', '/v1/tokens', { principal: 'carol', kind: 'person', admin: true });
    assert.equal((await call(s, 'POST', `/v1/mfa/step-up/${a.body.id}/verify`, { token: alice, body: { recovery_code: code.toLowerCase() } })).status, 200);
    const t = await call(s, 'POST', '/v1/tokens', { token: alice, headers: withStepUp(a.body.id), body: { principal: 'carol', kind: 'person', admin: true } });
    assert.equal(t.status, 201, JSON.stringify(t.body));
    const b = await stepUp(alice, 'POST', '/v1/tokens', { principal: 'dave', kind: 'person', admin: true });
    expectError(await call(s, 'POST', `/v1/mfa/step-up/${b.body.id}/verify`, { token: alice, body: { recovery_code: code } }), 401, 'KW_MFA_INVALID', 'spent code');
    const list = await call(s, 'GET', '/v1/mfa/factors', { token: alice });
    assert.equal(list.body.factors.find((f: { kind: string }) => f.kind === 'recovery').remaining, 9);
    assert.ok(!JSON.stringify(list.body).includes(aliceSeed));
  });

  void test('removing a factor needs a step-up; the audit log holds no seed, code or recovery code', async () => {
    const e = await aliceStepUp('POST', '/v1/mfa/totp', { name: 'spare' });
    const spare = await call(s, 'POST', '/v1/mfa/totp', { token: alice, headers: withStepUp(e), body: { name: 'spare' } });
    assert.equal(spare.status, 201, JSON.stringify(spare.body));
    secrets.push(spare.body.secret_base32);
    const del = await aliceStepUp('DELETE', `/v1/mfa/factors/${spare.body.id}`);
    const r = await call(s, 'DELETE', `/v1/mfa/factors/${spare.body.id}`, { token: alice, headers: withStepUp(del) });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(await s.store.getMfaFactor(spare.body.id), null);
    const all = (await s.store.readAuditEvents({ start: 0, end: await s.store.auditSize() })).map((x) => x.event).join('\n');
    for (const secret of secrets) assert.ok(!all.includes(secret) && !all.includes(secret.replace(/-/g, '')), 'a secret reached the audit log');
    for (const op of ['mfa.enroll', 'mfa.activate', 'mfa.step_up', 'mfa.step_up_verify', 'mfa.remove', 'mfa.recovery_codes']) assert.ok(all.includes(`"op":"${op}"`), `${op} audited`);
  });
});
