/**
 * Signed policy on two nodes (docs/mfa.md §Signed policy): node B's
 * keyholder has not yet taken the snapshot node A's keyholder signed for a
 * policy change, so it refuses a request the new policy grants
 * (KW_POLICY_DENIED, before it verifies the signature or spends anything);
 * B's API then syncs its keyholder from the database copy and runs the
 * request once more (api/governance.ts `withGovernance`). Checked for
 * `encrypt` and for `rewrap`: a rewrap whose item 0 the old snapshot grants
 * and item 1 only the new one resumes at item 1 (item 0 is not rewrapped or
 * audited twice, its nonce not replayed); one refused at item 0 runs whole.
 *
 * Two real servers (each with its own keyholder process) on one PostgreSQL
 * database. B's once-a-second governance sync would hide the lag at random,
 * so the test holds B's `governance-sync` calls back until B's keyholder has
 * refused once: only the retry after that refusal can sync it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { HpkeIdentity } from '@keyward/core';
import { parseEvent } from '../../src/audit/event.js';
import { requestHashOf } from '../../src/keyholder/service.js';
import type { RunningServer } from '../../src/server.js';
import { b64u, call, enrollAdmin, newDeviceKeys, newServer, signedCall, unsealAll, type Device } from './helpers.js';

const ADMIN_URL = process.env.KEYWARD_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const DB = `kw_test_${randomBytes(6).toString('hex')}`;

/** The worker policy: datakey on app/data in any context, plus `extra` grants. */
const policy = (extra: object[]) => ({ grants: [{ roles: ['worker'], operations: ['datakey'], keys: ['app/data'] }, ...extra] });
const rewrapFor = (tenant: string) => ({ roles: ['worker'], operations: ['rewrap'], keys: ['app/data'], context: { tenant } });
const ENCRYPT = { roles: ['worker'], operations: ['encrypt'], keys: ['app/data'] };
const OTHER = { roles: ['worker'], operations: ['datakey'], keys: ['app/other'] };

void describe('signed policy on two nodes: a lagging keyholder is synced and the request retried', () => {
  let pgAdmin: pg.Client;
  let a: RunningServer;
  let b: RunningServer;
  let admin: string;
  let svc: string;
  let device: Device;
  const wrapped: Record<string, string> = {};
  /** While true, node B's keyholder takes no snapshot from the database (see the module comment). */
  let lagging = false;
  /** Data-plane ops B's keyholder refused on its signed policy. */
  const refused: string[] = [];
  /** When set, B's keyholder takes this snapshot right after a refusal: B's 1 s sync timer landing in that window. */
  let syncOnRefusal: { snapshot: string; signature: string } | null = null;
  let recipient = '';

  const head = async (s: RunningServer) => (await s.keyholder.call('governance-head', {})).hash;
  /** A adopts `doc` as the worker policy while B's keyholder is held at its current snapshot; B's API then reads the new row. */
  async function changeOnA(doc: object): Promise<void> {
    lagging = true;
    refused.length = 0;
    const before = await head(b);
    const r = await call(a, 'PUT', '/v1/policies/app/worker', { token: admin, body: doc });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.notEqual(await head(a), before);
    await new Promise((res) => setTimeout(res, 1500)); // past B's 1 s read cache: B's API reads the new row
    assert.equal(await head(b), before, 'B\'s keyholder still holds the older snapshot');
  }

  before(async () => {
    pgAdmin = new pg.Client({ connectionString: ADMIN_URL });
    await pgAdmin.connect();
    await pgAdmin.query(`CREATE DATABASE ${DB}`);
    const u = new URL(ADMIN_URL);
    u.pathname = `/${DB}`;
    a = await newServer({ schedulerMs: 0, store: u.toString() });
    const init = await a.initialize({ shares: 2, threshold: 2 });
    await unsealAll(a, init.shares);
    admin = await enrollAdmin(a, init.rootToken, 'admin');
    for (const key of ['data', 'other']) assert.equal((await call(a, 'POST', `/v1/keys/app/${key}`, { token: admin, body: { type: 'aes256' } })).status, 201);
    const t = await call(a, 'POST', '/v1/tokens', { token: admin, body: { principal: 'svc', ns: 'app', roles: ['worker'] } });
    assert.equal(t.status, 201, JSON.stringify(t.body));
    svc = t.body.token as string;
    const keys = newDeviceKeys();
    const sk = await call(a, 'POST', '/v1/auth/signing-keys', { token: svc, body: { alg: 'ed25519', public_key: b64u(keys.publicKey) } });
    device = { keyId: sk.body.key_id as string, ...keys };
    assert.equal((await call(a, 'PUT', '/v1/policies/app/worker', { token: admin, body: policy([rewrapFor('a')]) })).status, 200);
    recipient = (await (await HpkeIdentity.generate('x25519')).recipient()).toString();
    for (const tenant of ['a', 'b', 'c']) {
      const dk = await signedCall(a, svc, device, '/v1/data/app/data/datakey', { recipient, context: { tenant } });
      assert.equal(dk.status, 200, JSON.stringify(dk.body));
      wrapped[tenant] = dk.body.wrapped as string;
    }
    // Node B: its own keyholder process, with a copy of A's keyholder.json (nodes join with it), on the same database.
    const bDir = mkdtempSync(join(tmpdir(), 'kw-node-b-'));
    writeFileSync(join(bDir, 'keyholder.json'), readFileSync(join(a.dataDir, 'keyholder.json')), { mode: 0o600 });
    b = await newServer({ schedulerMs: 0, store: u.toString(), data: bDir });
    await unsealAll(b, init.shares);
    assert.equal(await head(b), await head(a), 'B starts with the snapshot in force');
    const kh = b.keyholder as unknown as { call: (op: string, p: unknown, o?: unknown) => Promise<unknown> };
    const real = kh.call.bind(kh);
    kh.call = async (op, p, o) => {
      if (op === 'governance-sync' && lagging) throw new Error('held back by the test: B lags');
      try {
        return await real(op, p, o);
      } catch (e) {
        if ((e as { code?: unknown }).code === 'KW_POLICY_DENIED') {
          refused.push(op);
          lagging = false; // from now on B may sync, as the retry does
          if (syncOnRefusal) await real('governance-sync', syncOnRefusal);
        }
        throw e;
      }
    };
  });
  after(async () => {
    await b?.close();
    await a?.close();
    await pgAdmin.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
    await pgAdmin.end();
  });

  /** The `data.rewrap` events of one signed request: outcome and item index, in log order. */
  async function rewrapEvents(sig: Record<string, string>): Promise<string[]> {
    const hash = Buffer.from(requestHashOf(sig)).toString('hex');
    const all = (await a.store.readAuditEvents({ start: 0, end: await a.store.auditSize() })).map((r) => parseEvent(r.event));
    return all.filter((e) => e.op === 'data.rewrap' && e.request === hash).map((e) => `${e.outcome}${typeof e.details.item === 'number' ? `:${e.details.item}` : ''}${e.code ? `:${e.code}` : ''}`);
  }

  void test('encrypt: refused once by the lagging keyholder, served after the sync', async () => {
    await changeOnA(policy([rewrapFor('a'), ENCRYPT]));
    const r = await signedCall(b, svc, device, '/v1/data/app/data/encrypt', { plaintext: b64u(new TextEncoder().encode('hi')), context: {} });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(refused, ['encrypt'], 'the first attempt was refused by B\'s keyholder on its older snapshot');
    assert.equal(await head(b), await head(a), 'B\'s keyholder took A\'s snapshot');
  });

  void test('rewrap refused at item 1: synced, resumed at item 1 (item 0 neither redone nor replayed)', async () => {
    await changeOnA(policy([rewrapFor('a'), ENCRYPT, rewrapFor('b')]));
    const body = { items: [{ version: 1, wrapped: wrapped.a, context: { tenant: 'a' } }, { version: 1, wrapped: wrapped.b, context: { tenant: 'b' } }] };
    const r = await signedCall(b, svc, device, '/v1/data/app/data/rewrap', body);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.items.length, 2);
    assert.deepEqual(refused, ['rewrap'], 'item 1 was refused once by B\'s keyholder on its older snapshot');
    assert.equal(await head(b), await head(a));
    // Item 0 once, the refused attempt at item 1, then item 1.
    assert.deepEqual(await rewrapEvents(r.sig), ['allowed:0', 'error:KW_POLICY_DENIED', 'allowed:1']);
    // The rewrapped keys are ordinary wrapped data keys of app/data: a second rewrap (a fresh request) takes them.
    const again = await signedCall(b, svc, device, '/v1/data/app/data/rewrap', { items: [{ version: r.body.items[0].version, wrapped: r.body.items[0].wrapped, context: { tenant: 'a' } }, { version: r.body.items[1].version, wrapped: r.body.items[1].wrapped, context: { tenant: 'b' } }] });
    assert.equal(again.status, 200, JSON.stringify(again.body));
  });

  void test('rewrap refused at item 0: synced and run whole, its nonce not spent by the refusal', async () => {
    await changeOnA(policy([rewrapFor('a'), ENCRYPT, rewrapFor('b'), rewrapFor('c')]));
    const r = await signedCall(b, svc, device, '/v1/data/app/data/rewrap', { items: [{ version: 1, wrapped: wrapped.c, context: { tenant: 'c' } }] });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(refused, ['rewrap']);
    assert.deepEqual(await rewrapEvents(r.sig), ['error:KW_POLICY_DENIED', 'allowed:0']);
    // The same signed request again is a replay: its nonce was spent by the run that succeeded.
    const replay = await call(b, 'POST', '/v1/data/app/data/rewrap', { token: svc, raw: JSON.stringify({ items: [{ version: 1, wrapped: wrapped.c, context: { tenant: 'c' } }] }), headers: { host: 'kms.test', ...r.sig } });
    assert.equal(replay.body.error?.code, 'KW_REQUEST_REPLAYED', JSON.stringify(replay.body));
  });

  void test('a sync landing between the refusal and the retry (B\'s 1 s timer) still leads to the retry', async () => {
    await changeOnA(policy([rewrapFor('a'), ENCRYPT, rewrapFor('b'), rewrapFor('c'), OTHER]));
    const row = (await a.store.latestGovernanceSnapshot())!;
    syncOnRefusal = { snapshot: row.snapshot, signature: row.signature };
    try {
      const r = await signedCall(b, svc, device, '/v1/data/app/other/datakey', { recipient, context: {} });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.deepEqual(refused, ['datakey'], 'refused once on the older snapshot, then served under the newer one');
    } finally {
      syncOnRefusal = null;
    }
  });
});
