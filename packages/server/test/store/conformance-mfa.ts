/**
 * The MFA part of the store conformance suite (issue #7), run by
 * `exerciseStore` for every backend: second factors, lockout counters and
 * step-up records — including the compare-and-set rules that make one TOTP
 * step, one recovery code and one step-up usable once, inside transactions too.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isStoreError, type StoreErrorCode } from '../../src/store/errors.js';
import type { Store } from '../../src/store/types.js';

const T0 = new Date('2030-01-01T00:00:00.000Z');
const at = (s: number): Date => new Date(T0.getTime() + s * 1000);
const sid = (c: string): string => c.repeat(43);

async function expectCode(p: Promise<unknown>, code: StoreErrorCode): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isStoreError(e), `expected a StoreError ${code}, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return true;
  });
}

async function seed(s: Store): Promise<void> {
  await s.createNamespace({ name: 'acme', created: T0 });
  await s.createPrincipal({ id: 'alice', ns: 'acme', kind: 'person', name: 'alice', roles: [], created: T0 });
  await s.createPrincipal({ id: 'bob', ns: 'acme', kind: 'person', name: 'bob', roles: [], created: T0 });
}

export function exerciseMfaStore(name: string, open: () => Promise<Store>): void {
  const test = (title: string, fn: (s: Store) => Promise<void>): void => {
    void it(title, async () => {
      const s = await open();
      try {
        await seed(s);
        await fn(s);
      } finally {
        await s.close();
      }
    });
  };

  void describe(`store conformance: ${name}: MFA`, () => {
    test('factors: add, get, list (oldest first), activate, remove', async (s) => {
      const totp = await s.addMfaFactor({ id: 'f1', principal: 'alice', kind: 'totp', name: 'phone', state: 'pending', secret: new Uint8Array(81).fill(7), data: { digits: 6 }, created: at(1) });
      assert.deepEqual({ ...totp, secret: [...totp.secret!].length }, {
        id: 'f1', principal: 'alice', kind: 'totp', name: 'phone', state: 'pending', secret: 81, data: { digits: 6 }, lastStep: null, counter: null, created: at(1), lastUsed: null,
      });
      await s.addMfaFactor({ id: 'f0', principal: 'alice', kind: 'recovery', name: 'recovery codes', state: 'active', secret: null, data: { salt: 'aa', hashes: ['bb'], used: [false] }, created: at(0) });
      await s.addMfaFactor({ id: 'f2', principal: 'bob', kind: 'webauthn', name: 'key', state: 'active', secret: new Uint8Array(77).fill(1), data: { credential: 'c' }, counter: 0, created: at(2) });
      assert.deepEqual((await s.listMfaFactors('alice')).map((f) => f.id), ['f0', 'f1']);
      assert.deepEqual(await s.listMfaFactors('nobody'), []);
      assert.equal(await s.getMfaFactor('nope'), null);
      const active = await s.updateMfaFactor('f1', { state: 'active', lastStep: 100, lastUsed: at(3) });
      assert.equal(active.state, 'active');
      assert.equal(active.lastStep, 100);
      assert.deepEqual(active.lastUsed, at(3));
      const removed = await s.removeMfaFactor('f1');
      assert.equal(removed.id, 'f1');
      assert.equal(await s.getMfaFactor('f1'), null);
      await expectCode(s.removeMfaFactor('f1'), 'KW_STORE_NOT_FOUND');
    });

    test('factors: bad input, unknown principal, duplicate id', async (s) => {
      await expectCode(s.addMfaFactor({ id: 'f1', principal: 'carol', kind: 'totp', name: 'x', state: 'pending', secret: new Uint8Array(1), data: {}, created: T0 }), 'KW_STORE_NOT_FOUND');
      await expectCode(s.addMfaFactor({ id: 'f1', principal: 'alice', kind: 'totp', name: 'x', state: 'pending', secret: null, data: {}, created: T0 }), 'KW_STORE_INVALID_ARGUMENT');
      await expectCode(s.addMfaFactor({ id: 'f1', principal: 'alice', kind: 'recovery', name: 'x', state: 'active', secret: new Uint8Array(1), data: {}, created: T0 }), 'KW_STORE_INVALID_ARGUMENT');
      await expectCode(s.addMfaFactor({ id: 'f1', principal: 'alice', kind: 'sms' as never, name: 'x', state: 'active', secret: null, data: {}, created: T0 }), 'KW_STORE_INVALID_ARGUMENT');
      // A WebAuthn registration in progress has no public key yet; an active one must.
      await expectCode(s.addMfaFactor({ id: 'w1', principal: 'alice', kind: 'webauthn', name: 'k', state: 'active', secret: null, data: {}, created: T0 }), 'KW_STORE_INVALID_ARGUMENT');
      await s.addMfaFactor({ id: 'w1', principal: 'alice', kind: 'webauthn', name: 'k', state: 'pending', secret: null, data: { challenge: 'c' }, created: T0 });
      const reg = await s.updateMfaFactor('w1', { state: 'active', secret: new Uint8Array(77).fill(2), counter: 0, data: { credentialId: 'x' } }, { data: { challenge: 'c' } });
      assert.deepEqual([reg.state, reg.secret?.length, reg.counter], ['active', 77, 0]);
      await s.addMfaFactor({ id: 'f1', principal: 'alice', kind: 'totp', name: 'x', state: 'pending', secret: new Uint8Array(1), data: {}, created: T0 });
      await expectCode(s.addMfaFactor({ id: 'f1', principal: 'bob', kind: 'totp', name: 'x', state: 'pending', secret: new Uint8Array(1), data: {}, created: T0 }), 'KW_STORE_CONFLICT');
      await expectCode(s.updateMfaFactor('f1', {}), 'KW_STORE_INVALID_ARGUMENT');
      await expectCode(s.updateMfaFactor('zz', { lastStep: 1 }), 'KW_STORE_NOT_FOUND');
    });

    test('factors: compare-and-set — a TOTP step and a recovery code are used once', async (s) => {
      await s.addMfaFactor({ id: 't', principal: 'alice', kind: 'totp', name: 'x', state: 'active', secret: new Uint8Array(1), data: {}, created: T0 });
      await s.updateMfaFactor('t', { lastStep: 10 }, { lastStep: null });
      await expectCode(s.updateMfaFactor('t', { lastStep: 11 }, { lastStep: null }), 'KW_STORE_CONFLICT');
      await expectCode(s.updateMfaFactor('t', { lastStep: 10 }), 'KW_STORE_CONFLICT'); // never backwards or equal
      assert.equal((await s.getMfaFactor('t'))!.lastStep, 10);
      const codes = { salt: '00', hashes: ['aa', 'bb'], used: [false, false] };
      await s.addMfaFactor({ id: 'r', principal: 'alice', kind: 'recovery', name: 'codes', state: 'active', secret: null, data: codes, created: T0 });
      await s.updateMfaFactor('r', { data: { ...codes, used: [true, false] } }, { data: codes });
      await expectCode(s.updateMfaFactor('r', { data: { ...codes, used: [true, false] } }, { data: codes }), 'KW_STORE_CONFLICT');
      await s.addMfaFactor({ id: 'w', principal: 'alice', kind: 'webauthn', name: 'k', state: 'active', secret: new Uint8Array(3), data: {}, counter: 0, created: T0 });
      await s.updateMfaFactor('w', { counter: 5 }, { counter: 0 });
      await expectCode(s.updateMfaFactor('w', { counter: 6 }, { counter: 0 }), 'KW_STORE_CONFLICT');
    });

    test('lockout counters: set, read back, replace', async (s) => {
      assert.equal(await s.getMfaLockout('alice'), null);
      await s.setMfaLockout({ principal: 'alice', failures: 3, lockedUntil: null, updated: at(1) });
      assert.deepEqual(await s.getMfaLockout('alice'), { principal: 'alice', failures: 3, lockedUntil: null, updated: at(1) });
      await s.setMfaLockout({ principal: 'alice', failures: 5, lockedUntil: at(900), updated: at(2) });
      assert.deepEqual(await s.getMfaLockout('alice'), { principal: 'alice', failures: 5, lockedUntil: at(900), updated: at(2) });
      await expectCode(s.setMfaLockout({ principal: 'carol', failures: 1, lockedUntil: null, updated: at(1) }), 'KW_STORE_NOT_FOUND');
    });

    test('step-ups: create, verify once, consume once; never changed after', async (s) => {
      const id = sid('A');
      const row = await s.createStepUp({ id, principal: 'alice', request: '{"v":1}', created: at(0), expiresAt: at(300) });
      assert.deepEqual(row, { id, principal: 'alice', request: '{"v":1}', created: at(0), expiresAt: at(300), verifiedAt: null, factor: null, consumedAt: null });
      await expectCode(s.createStepUp({ id, principal: 'bob', request: '{}', created: at(0), expiresAt: at(300) }), 'KW_STORE_CONFLICT');
      await expectCode(s.consumeStepUp(id, at(2)), 'KW_STORE_CONFLICT'); // not verified
      const v = await s.markStepUpVerified(id, { factor: 'f1', at: at(1) });
      assert.deepEqual([v.verifiedAt, v.factor], [at(1), 'f1']);
      await expectCode(s.markStepUpVerified(id, { factor: 'f2', at: at(1) }), 'KW_STORE_CONFLICT');
      const c = await s.consumeStepUp(id, at(2));
      assert.deepEqual(c.consumedAt, at(2));
      await expectCode(s.consumeStepUp(id, at(3)), 'KW_STORE_CONFLICT');
      assert.equal(await s.getStepUp(sid('B')), null);
      await expectCode(s.consumeStepUp(sid('B'), at(3)), 'KW_STORE_NOT_FOUND');
      await expectCode(s.getStepUp('short'), 'KW_STORE_INVALID_ARGUMENT');
      await expectCode(s.createStepUp({ id: sid('C'), principal: 'alice', request: '{}', created: at(5), expiresAt: at(5) }), 'KW_STORE_INVALID_ARGUMENT');
      await expectCode(s.createStepUp({ id: sid('C'), principal: 'carol', request: '{}', created: at(5), expiresAt: at(6) }), 'KW_STORE_NOT_FOUND');
    });

    test('step-ups: consumed inside a transaction that rolls back stay unconsumed; two consumers, one wins', async (s) => {
      const id = sid('D');
      await s.createStepUp({ id, principal: 'alice', request: '{}', created: at(0), expiresAt: at(300) });
      await s.markStepUpVerified(id, { factor: 'f', at: at(1) });
      await assert.rejects(s.transaction(async (tx) => {
        await tx.consumeStepUp(id, at(2));
        throw new Error('the operation failed');
      }), /the operation failed/);
      assert.equal((await s.getStepUp(id))!.consumedAt, null);
      const results = await Promise.allSettled([0, 1, 2].map((i) => s.transaction((tx) => tx.consumeStepUp(id, at(3 + i)))));
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
      for (const r of results) if (r.status === 'rejected') assert.ok(isStoreError(r.reason, 'KW_STORE_CONFLICT'));
    });
  });
}
