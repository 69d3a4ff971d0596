/**
 * Unauthenticated failures become periodic audit.summary events (never one
 * event per failure), and admin reads of the log are audited as audit.read
 * events, coalesced per reader and interval. The interval is shortened to
 * 1 s for the test (the server's auditSummaryMs).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { HpkeIdentity } from '@keyward/core';
import { REDACTED_RE } from '../../src/audit/redact.js';
import type { RunningServer } from '../../src/server.js';
import { b64u, call, enrollAdmin, newDeviceKeys, newServer, signedCall, unsealAll } from './helpers.js';

type Count = { reason: string; bucket: string | null; count: number };
type Ev = { index: number; op: string; auth: string; principal: string | null; outcome: string; code: string | null; details: Record<string, unknown>; hmac_key_version: number | null };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

void describe('unauthenticated failures are summarised; reads of the log are audited', () => {
  let s: RunningServer;
  let root: string;
  let svc: string;

  const events = async (from: number) => (await s.store.readAuditEvents({ start: from, end: await s.store.auditSize() })).map((r) => JSON.parse(r.event) as Ev);
  /** Waits until the summaries written since `from` account for `total` failures. */
  const summariesFor = async (from: number, total: number): Promise<Ev[]> => {
    for (let i = 0; i < 100; i++) {
      const sums = (await events(from)).filter((e) => e.op === 'audit.summary');
      if (sums.reduce((n, e) => n + (e.details.total as number), 0) >= total) return sums;
      await sleep(100);
    }
    throw new Error(`no summaries for ${total} failures`);
  };

  before(async () => {
    s = await newServer({ auditSummaryMs: 1000 });
    const init = await s.initialize({ shares: 3, threshold: 2 });
    await unsealAll(s, init.shares.slice(0, 2));
    root = await enrollAdmin(s, init.rootToken);
    // A token (its id is redacted under the sys audit key, which is so created now).
    const t = await call(s, 'POST', '/v1/tokens', { token: root, body: { principal: 'svc', ns: 'app', roles: ['app'] } });
    svc = t.body.token;
  });
  after(async () => { await s.close(); });

  void test('2,000 bad-token requests: a few audit.summary events whose counts add up to 2,000', async () => {
    const start = await s.store.auditSize();
    const bad = `kw_${'A'.repeat(43)}`;
    const statuses = new Map<number, number>();
    const headersOf = (n: number): Record<string, string> => (n % 4 === 0 ? {} : n % 4 === 1 ? { authorization: 'Basic abc' } : { authorization: `Bearer ${bad}` });
    // One of each kind first, within the per-address burst; then the flood, concurrently.
    for (let n = 0; n < 4; n++) {
      const r = await call(s, 'GET', '/v1/keys/app', { headers: headersOf(n) });
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    }
    for (let i = 4; i < 2000; i += 166) {
      const batch = Array.from({ length: Math.min(166, 2000 - i) }, (_, j) => call(s, 'GET', '/v1/keys/app', { headers: headersOf(i + j) }));
      for (const r of await Promise.all(batch)) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    }
    assert.equal([...statuses.values()].reduce((a, b) => a + b, 0), 2000);
    assert.deepEqual([...statuses.keys()].sort(), [401, 429]);

    const sums = await summariesFor(start, 2000);
    const written = await events(start);
    assert.ok(written.every((e) => e.op === 'audit.summary'), `only summaries were written: ${written.map((e) => e.op).join(', ')}`);
    assert.ok(written.length <= 4, `${written.length} events for 2,000 failures`);
    let total = 0;
    const reasons = new Map<string, number>();
    for (const e of sums) {
      assert.deepEqual([e.auth, e.principal, e.outcome, e.code], ['none', null, 'denied', 'KW_UNAUTHENTICATED']);
      const counts = e.details.counts as Count[];
      assert.equal(counts.reduce((n, c) => n + c.count, 0) + (e.details.folded as number), e.details.total);
      total += e.details.total as number;
      for (const c of counts) {
        reasons.set(c.reason, (reasons.get(c.reason) ?? 0) + c.count);
        assert.match(c.bucket!, REDACTED_RE, 'client networks only as markers');
      }
      assert.equal(e.hmac_key_version, 1);
    }
    assert.equal(total, 2000);
    assert.equal([...reasons.values()].reduce((a, b) => a + b, 0), 2000);
    assert.equal(reasons.get('rate_limited'), statuses.get(429));
    for (const r of ['token_missing', 'token_malformed', 'token_unknown']) assert.ok(reasons.has(r), `reason ${r}: ${[...reasons.keys()].join(', ')}`);
    for (const e of written) assert.ok(!JSON.stringify(e).includes('127.0.0'), 'no client address in the clear');
  });

  void test('an unknown device key (valid token) is summarised, not logged per request', async () => {
    assert.equal((await call(s, 'POST', '/v1/keys/app/k', { token: root, body: { type: 'aes256' } })).status, 201);
    assert.equal((await call(s, 'PUT', '/v1/policies/app/p', { token: root, body: { grants: [{ roles: ['app'], operations: ['datakey'], keys: ['app/k'] }] } })).status, 200);
    const recipient = (await (await HpkeIdentity.generate('x25519')).recipient()).toString();
    await sleep(1100); // let the previous window close
    const start = await s.store.auditSize();
    const ghost = { keyId: 'dk_unknown', ...newDeviceKeys() };
    for (let i = 0; i < 3; i++) {
      const r = await signedCall(s, svc, ghost, '/v1/data/app/k/datakey', { recipient, context: {} });
      assert.equal(r.status, 401);
      assert.equal(r.body.error.code, 'KW_UNAUTHENTICATED');
    }
    assert.ok(!(await events(start)).some((e) => e.op === 'data.datakey'), 'no per-request event');
    const sums = await summariesFor(start, 3);
    const counts = sums.flatMap((e) => e.details.counts as Count[]);
    assert.equal(counts.filter((c) => c.reason === 'device_key_unknown').reduce((n, c) => n + c.count, 0), 3);
    // A registered key still works (the summary path changed nothing else).
    const keys = newDeviceKeys();
    const sk = await call(s, 'POST', '/v1/auth/signing-keys', { token: svc, body: { alg: 'ed25519', public_key: b64u(keys.publicKey) } });
    const ok = await signedCall(s, svc, { keyId: sk.body.key_id, ...keys }, '/v1/data/app/k/datakey', { recipient, context: {} });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
  });

  void test('admin reads: the first of a window is written before the answer, the rest coalesced into one event', async () => {
    await sleep(1100);
    const start = await s.store.auditSize();
    const first = await call(s, 'GET', '/v1/audit/events?from=0&to=5', { token: root });
    assert.equal(first.status, 200);
    const immediate = await events(start);
    assert.equal(immediate.length, 1, 'written before the answer');
    assert.deepEqual([immediate[0]!.op, immediate[0]!.principal, immediate[0]!.outcome], ['audit.read', 'admin', 'allowed']);
    assert.deepEqual(immediate[0]!.details, { kind: 'events', from: 0, to: 5 });

    const size = await s.store.auditSize();
    const reads = [];
    for (let i = 0; i < 10; i++) {
      reads.push(call(s, 'GET', `/v1/audit/events?from=${i}&to=${i + 2}`, { token: root }));
      reads.push(call(s, 'GET', `/v1/audit/proof/inclusion?index=${i}&size=${size}`, { token: root }));
      reads.push(call(s, 'GET', `/v1/audit/proof/consistency?from=${i + 1}&to=${size}`, { token: root }));
    }
    for (const r of await Promise.all(reads)) assert.equal(r.status, 200, JSON.stringify(r.body));
    await sleep(2200);
    const all = (await events(start)).filter((e) => e.op === 'audit.read');
    assert.ok(all.length >= 2 && all.length <= 4, `${all.length} audit.read events for 31 reads`);
    const counted = all.reduce((n, e) => n + ((e.details.coalesced as number | undefined) ?? 1), 0);
    assert.equal(counted, 31, 'every read is accounted for');
    const coalesced = all.filter((e) => e.details.coalesced !== undefined);
    const kinds = coalesced.reduce<Record<string, number>>((acc, e) => {
      for (const [k, n] of Object.entries(e.details.kinds as Record<string, number>)) acc[k] = (acc[k] ?? 0) + n;
      return acc;
    }, {});
    const immediateKinds = all.filter((e) => e.details.coalesced === undefined).map((e) => e.details.kind as string);
    for (const k of immediateKinds) kinds[k] = (kinds[k] ?? 0) + 1;
    assert.deepEqual(kinds, { consistency: 10, events: 11, inclusion: 10 });
  });

  void test('checkpoint polls are not written; a non-admin read is refused and audited', async () => {
    await sleep(1100);
    const start = await s.store.auditSize();
    for (let i = 0; i < 10; i++) assert.equal((await call(s, 'GET', '/v1/audit/checkpoint', { token: root })).status, 200);
    assert.equal(await s.store.auditSize(), start);
    const denied = await call(s, 'GET', '/v1/audit/events?from=0&to=1', { token: svc });
    assert.equal(denied.status, 403);
    const evs = await events(start);
    assert.equal(evs.length, 1);
    assert.deepEqual([evs[0]!.op, evs[0]!.principal, evs[0]!.outcome, evs[0]!.code], ['audit.read', 'svc', 'denied', 'KW_FORBIDDEN']);
  });

  void test('while sealed, failures are still summarised, grouped by reason with no address at all', async () => {
    assert.equal((await call(s, 'POST', '/v1/sys/seal', { token: root })).status, 200);
    await sleep(1100);
    const start = await s.store.auditSize();
    for (let i = 0; i < 5; i++) assert.equal((await call(s, 'GET', '/v1/keys/app', { headers: {} })).status >= 400, true);
    const sums = await summariesFor(start, 5);
    for (const e of sums) {
      assert.equal(e.hmac_key_version, null);
      for (const c of e.details.counts as Count[]) assert.equal(c.bucket, null);
    }
  });
});
