/**
 * The lifecycle scheduler through the real server (real keyholder process,
 * real SQLite): automatic rotation on a key's period, destruction at the
 * scheduled date with a signed receipt, cancel-deletion and rescheduling
 * honoured, nothing done while sealed, overlapping writers add one version.
 * The scheduler's clock is injected (`clock`), so periods of hours and
 * deletion windows of days pass in milliseconds.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { parseVerifierKey } from '@keyward/tlog';
import { parseEvent, type AuditEvent } from '../../src/audit/event.js';
import { verifyReceipt } from '../../src/audit/receipt.js';
import type { RunningServer } from '../../src/server.js';
import { call, enrollAdmin, newServer, snapshot, unsealAll } from './helpers.js';
import type { ShareFile } from '../../src/keyholder/custody.js';

const HOUR = 3600_000;
const DAY = 24 * HOUR;

async function events(s: RunningServer): Promise<AuditEvent[]> {
  const size = await s.store.auditSize();
  return (await s.store.readAuditEvents({ start: 0, end: size })).map((r) => parseEvent(r.event));
}

async function waitFor(what: string, check: () => Promise<boolean>, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

void describe('lifecycle scheduler: rotation by itself (timer)', () => {
  let s: RunningServer;
  let offset = 0;
  before(async () => {
    s = await newServer({ schedulerMs: 100, clock: () => new Date(Date.now() + offset) });
    const init = await s.initialize({ shares: 2, threshold: 2 });
    await unsealAll(s, init.shares);
    const admin = await enrollAdmin(s, init.rootToken);
    const c = await call(s, 'POST', '/v1/keys/app/auto', { token: admin, body: { type: 'aes256', rotation_period_seconds: 3600 } });
    assert.equal(c.status, 201, JSON.stringify(c.body));
    assert.equal(c.body.rotation_period_seconds, 3600);
  });
  after(async () => { await s.close(); });

  void test('a key whose period has passed rotates by itself, once, as the system', async () => {
    await new Promise((r) => setTimeout(r, 400));
    assert.equal((await s.store.getKey('app', 'auto'))!.latestVersion, 1, 'not due yet: nothing happens');
    offset = HOUR + 1000;
    await waitFor('version 2', async () => (await s.store.getKey('app', 'auto'))!.latestVersion === 2);
    // The new version is stamped with the scheduler's clock, so it is not due again at once.
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await s.store.getKey('app', 'auto'))!.latestVersion, 2);
    const v2 = (await s.store.getKeyVersion('app', 'auto', 2))!;
    assert.equal(v2.state, 'enabled');
    assert.ok(v2.wrapped && v2.wrapped.length > 0);
    const rot = (await events(s)).filter((e) => e.op === 'keys.rotate' && e.ns === 'app');
    assert.equal(rot.length, 1);
    assert.deepEqual([rot[0]!.principal, rot[0]!.auth, rot[0]!.outcome, rot[0]!.target], [null, 'none', 'allowed', { key: 'auto', version: 2 }]);
    assert.deepEqual(rot[0]!.details, { actor: 'system', reason: 'rotation_period', rotation_period_seconds: 3600 });
    // A period later it rotates again.
    offset += HOUR + 1000;
    await waitFor('version 3', async () => (await s.store.getKey('app', 'auto'))!.latestVersion === 3);
  });
});

void describe('lifecycle scheduler: scheduled deletion, cancel, sealed, overlap (manual ticks)', () => {
  let s: RunningServer;
  let shares: ShareFile[];
  let admin: string;
  let offset = 0;
  before(async () => {
    s = await newServer({ schedulerMs: 0, clock: () => new Date(Date.now() + offset) });
    const init = await s.initialize({ shares: 2, threshold: 2 });
    shares = init.shares;
    await unsealAll(s, shares);
    admin = await enrollAdmin(s, init.rootToken);
    for (const [name, type] of [['old', 'aes256'], ['keep', 'ed25519'], ['later', 'aes256']] as const) {
      assert.equal((await call(s, 'POST', `/v1/keys/app/${name}`, { token: admin, body: { type } })).status, 201);
      assert.equal((await call(s, 'POST', `/v1/keys/app/${name}/rotate`, { token: admin })).status, 200);
      const sd = await call(s, 'POST', `/v1/keys/app/${name}/versions/1/schedule-deletion`, { token: admin, body: { days: 7 } });
      assert.equal(sd.status, 200, JSON.stringify(sd.body));
    }
  });
  after(async () => { await s.close(); });

  void test('before the date nothing is destroyed; after it the version is destroyed with a signed receipt in the audit log', async () => {
    const blob = (await s.store.getKeyVersion('app', 'old', 1))!.wrapped!;
    // cancel before the date: keep/1 is left alone; later/1 is rescheduled further out.
    assert.equal((await call(s, 'POST', '/v1/keys/app/keep/versions/1/cancel-deletion', { token: admin })).status, 200);
    assert.equal((await call(s, 'POST', '/v1/keys/app/later/versions/1/cancel-deletion', { token: admin })).status, 200);
    assert.equal((await call(s, 'POST', '/v1/keys/app/later/versions/1/schedule-deletion', { token: admin, body: { days: 30 } })).status, 200);

    const early = await s.scheduler.tick();
    assert.deepEqual([early.skipped, early.destroyed, early.rotated], [null, [], []]);
    assert.equal((await s.store.getKeyVersion('app', 'old', 1))!.state, 'scheduled_for_deletion');

    offset = 7 * DAY + 1000;
    const size = await s.store.auditSize();
    const r = await s.scheduler.tick();
    assert.deepEqual(r.destroyed, [{ ns: 'app', key: 'old', version: 1 }]);
    assert.deepEqual(r.failed, []);
    const v = (await s.store.getKeyVersion('app', 'old', 1))!;
    assert.deepEqual([v.state, v.wrapped], ['destroyed', null]);
    assert.ok(v.destroyedAt);
    assert.equal((await s.store.getKeyVersion('app', 'old', 2))!.state, 'enabled', 'the other version is untouched');
    assert.equal((await s.store.getKeyVersion('app', 'keep', 1))!.state, 'disabled', 'a cancelled deletion is not carried out');
    assert.equal((await s.store.getKeyVersion('app', 'later', 1))!.state, 'scheduled_for_deletion', 'a rescheduled deletion waits for its new date');

    const destroyEvents = (await events(s)).slice(size).filter((e) => e.op === 'keys.destroy');
    assert.equal(destroyEvents.length, 1);
    const ev = destroyEvents[0]!;
    assert.deepEqual([ev.principal, ev.auth, ev.outcome, ev.target], [null, 'none', 'allowed', { key: 'old', version: 1 }]);
    assert.equal((ev.details as { actor?: string }).actor, 'system');
    assert.equal((ev.details as { reason?: string }).reason, 'scheduled_deletion');
    const st = await s.keyholder.call('status', {});
    const facts = verifyReceipt(ev, [parseVerifierKey(st.audit.verifierKey!).publicKey]);
    assert.equal(facts.blob_sha256, createHash('sha256').update(blob).digest('hex'), 'the receipt names the erased blob');

    // The same instant again: nothing left to do, nothing written.
    const again = await s.scheduler.tick();
    assert.deepEqual([again.destroyed, again.rotated, again.conflicts], [[], [], 0]);
    // A manual destroy of what the scheduler destroyed is a typed refusal.
    const manual = await call(s, 'POST', '/v1/keys/app/old/versions/1/destroy', { token: admin });
    assert.equal(manual.status, 409);

    offset = 30 * DAY + 1000;
    assert.deepEqual((await s.scheduler.tick()).destroyed, [{ ns: 'app', key: 'later', version: 1 }]);
  });

  void test('sealed: a tick does nothing at all; after unseal it catches up', async () => {
    assert.equal((await call(s, 'POST', '/v1/keys/app/sealed-rot', { token: admin, body: { type: 'aes256', rotation_period_seconds: 3600 } })).status, 201);
    assert.equal((await call(s, 'POST', '/v1/keys/app/sealed-rot/rotate', { token: admin })).status, 200);
    assert.equal((await call(s, 'POST', '/v1/keys/app/sealed-rot/versions/1/schedule-deletion', { token: admin, body: { days: 7 } })).status, 200);
    assert.equal((await call(s, 'POST', '/v1/sys/seal', { token: admin })).status, 200);
    offset += 8 * DAY;
    const before = await snapshot(s, 'app');
    const size = await s.store.auditSize();
    const r = await s.scheduler.tick();
    assert.equal(r.skipped, 'sealed');
    assert.deepEqual([r.rotated, r.destroyed], [[], []]);
    assert.equal(await snapshot(s, 'app'), before, 'no key or version changed');
    assert.equal(await s.store.auditSize(), size, 'no event written');

    await unsealAll(s, shares);
    const after = await s.scheduler.tick();
    assert.equal(after.skipped, null);
    assert.ok(after.rotated.some((a) => a.key === 'sealed-rot' && a.version === 3), JSON.stringify(after));
    assert.ok(after.destroyed.some((a) => a.key === 'sealed-rot' && a.version === 1), JSON.stringify(after));
  });

  void test('overlapping writers: a tick racing manual rotations adds exactly one version per key; a concurrent tick is refused', async () => {
    const names = ['race-a', 'race-b', 'race-c', 'race-d'];
    for (const n of names) assert.equal((await call(s, 'POST', `/v1/keys/app/${n}`, { token: admin, body: { type: 'aes256', rotation_period_seconds: 3600 } })).status, 201);
    offset += 2 * HOUR;
    const size = await s.store.auditSize();
    const [tick, second, ...manual] = await Promise.all([
      s.scheduler.tick(), s.scheduler.tick(),
      ...names.map((n) => call(s, 'POST', `/v1/keys/app/${n}/rotate`, { token: admin })),
    ]);
    assert.equal(second.skipped, 'running', 'one tick at a time per process');
    for (const [i, n] of names.entries()) {
      const k = (await s.store.getKey('app', n))!;
      assert.equal(k.latestVersion, 2, `${n}: exactly one new version`);
      const m = manual[i]!;
      assert.ok(m.status === 200 || m.body.error.code === 'KW_STORE_CONFLICT', JSON.stringify(m.body));
    }
    const rotations = (await events(s)).slice(size).filter((e) => e.op === 'keys.rotate' && e.outcome === 'allowed' && names.includes(e.target.key!));
    assert.equal(rotations.length, names.length, 'one allowed keys.rotate event per key');
    const t = tick;
    assert.equal(t.rotated.filter((a) => names.includes(a.key)).length + manual.filter((m) => m.status === 200).length, names.length);
  });
});

void describe('rotation period: set, clear, bad input', () => {
  let s: RunningServer;
  let admin: string;
  before(async () => {
    s = await newServer({ schedulerMs: 0 });
    const init = await s.initialize({ shares: 2, threshold: 2 });
    await unsealAll(s, init.shares);
    admin = await enrollAdmin(s, init.rootToken);
    assert.equal((await call(s, 'POST', '/v1/keys/app/k', { token: admin, body: { type: 'aes256' } })).status, 201);
  });
  after(async () => { await s.close(); });

  void test('POST …/rotation-period sets and clears it, audited; bad values are typed errors that change nothing', async () => {
    const set = await call(s, 'POST', '/v1/keys/app/k/rotation-period', { token: admin, body: { rotation_period_seconds: 90 * 86400 } });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    assert.equal(set.body.rotation_period_seconds, 90 * 86400);
    assert.equal((await s.store.getKey('app', 'k'))!.rotationPeriodSeconds, 90 * 86400);
    const ev = (await events(s)).filter((e) => e.op === 'keys.update').at(-1)!;
    assert.deepEqual([ev.principal, (ev.details as { rotation_period_seconds: number }).rotation_period_seconds], ['admin', 90 * 86400]);

    const before = await snapshot(s, 'app');
    for (const [body, code] of [
      [{ rotation_period_seconds: 59 }, 'KW_INVALID_ARGUMENT'],
      [{ rotation_period_seconds: 3599 }, 'KW_INVALID_ARGUMENT'],
      [{ rotation_period_seconds: 11 * 365 * 86400 }, 'KW_INVALID_ARGUMENT'],
      [{ rotation_period_seconds: '90d' }, 'KW_INVALID_ARGUMENT'],
      [{ rotation_period_seconds: 1.5e4 + 0.5 }, 'KW_INVALID_ARGUMENT'],
      [{}, 'KW_INVALID_ARGUMENT'],
      [{ rotation_period_seconds: 7200, extra: 1 }, 'KW_INVALID_ARGUMENT'],
    ] as const) {
      const r = await call(s, 'POST', '/v1/keys/app/k/rotation-period', { token: admin, body });
      assert.equal(r.body.error?.code, code, JSON.stringify(body));
    }
    assert.equal((await call(s, 'POST', '/v1/keys/app/nope/rotation-period', { token: admin, body: { rotation_period_seconds: 7200 } })).body.error.code, 'KW_NOT_FOUND');
    assert.equal((await call(s, 'POST', '/v1/keys/app/k/rotation-period', { body: { rotation_period_seconds: 7200 } })).status, 401);
    assert.equal(await snapshot(s, 'app'), before);

    const cleared = await call(s, 'POST', '/v1/keys/app/k/rotation-period', { token: admin, body: { rotation_period_seconds: null } });
    assert.equal(cleared.body.rotation_period_seconds, null);
    assert.equal((await s.store.getKey('app', 'k'))!.rotationPeriodSeconds, null);
  });
});
