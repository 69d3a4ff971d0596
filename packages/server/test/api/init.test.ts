/**
 * initDataDir: the one init (CLI `keyward init`, dev mode, `initialize()`).
 * Offline init, then a server on that directory: the keyholder adopts the
 * sys.init event, the shares unseal it, the token works and expires in 24 h.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { HpkeIdentity, KeywardError } from '@keyward/core';
import { INIT_TOKEN_TTL_SECONDS, initDataDir, openCustodianShare, startServer } from '../../src/index.js';
import { armoredShare, call, enrollAdmin } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'kw-init-'));
process.once('exit', () => rmSync(tmp, { recursive: true, force: true }));
const mode = (p: string) => statSync(p).mode & 0o777;

void describe('initDataDir', () => {
  void test('offline init: 0700 dir, 0600 files, share files; a server on it adopts sys.init, unseals, the token works', async () => {
    const dir = join(tmp, 'data');
    const r = await initDataDir(dir, { shares: 3, threshold: 2 });
    assert.equal(mode(dir), 0o700);
    for (const f of ['keyward.db', 'keyholder.json', 'audit-verifier-key.txt']) assert.equal(mode(join(dir, f)), 0o600, f);
    assert.deepEqual(readdirSync(join(dir, 'shares')).sort(), ['share-1.txt', 'share-2.txt', 'share-3.txt']);
    for (const f of r.shareFiles) assert.equal(mode(f.file!), 0o600);
    assert.equal(r.shareRecords.length, 0, 'shares are not kept in memory unless asked');
    assert.match(r.token, /^kw_[A-Za-z0-9_-]{43}$/);
    const ttl = (Date.parse(r.tokenExpiresAt) - Date.now()) / 1000;
    assert.ok(ttl > INIT_TOKEN_TTL_SECONDS - 60 && ttl <= INIT_TOKEN_TTL_SECONDS, `token ttl ${ttl}`);
    assert.equal(INIT_TOKEN_TTL_SECONDS, 86_400);
    assert.equal(readFileSync(join(dir, 'audit-verifier-key.txt'), 'utf8').trim(), r.verifierKey);
    for (const f of readdirSync(dir).filter((n) => n !== 'shares')) assert.ok(!readFileSync(join(dir, f)).includes(r.token), `${f} holds the token`);

    // A second init of the same directory is refused.
    await assert.rejects(initDataDir(dir, { shares: 3, threshold: 2 }), (e: unknown) => e instanceof KeywardError && e.code === 'KW_INVALID_ARGUMENT');

    const s = await startServer({ data: dir, listen: '127.0.0.1:0', logLevel: 'silent', checkpointMs: 100 });
    try {
      const h = await call(s, 'GET', '/v1/sys/health');
      assert.deepEqual([h.body.initialized, h.body.sealed], [true, true]);
      const st = await s.keyholder.call('status', {});
      assert.equal(st.audit.size, 1, 'the keyholder adopted the sys.init event');
      const ev = JSON.parse((await s.store.getAuditEvent(0))!.event) as { op: string; index: number; details: { token_id: string; shares: number; threshold: number } };
      assert.deepEqual([ev.op, ev.index, ev.details.token_id, ev.details.shares, ev.details.threshold], ['sys.init', 0, r.tokenId, 3, 2]);
      const shares = r.shareFiles.slice(1, 3).map((f) => readFileSync(f.file!, 'utf8'));
      let last = null;
      for (const text of shares) last = await call(s, 'POST', '/v1/sys/unseal', { body: { share: await armoredShare(s, text) } });
      assert.equal(last?.body.sealed, false);
      // The init token only enrolls administrators (bootstrap.test.ts has the whole rule); the administrator works.
      assert.equal((await call(s, 'POST', '/v1/keys/app/k', { token: r.token, body: { type: 'aes256' } })).body.error.code, 'KW_BOOTSTRAP_ONLY');
      const admin = await enrollAdmin(s, r.token);
      assert.equal((await call(s, 'POST', '/v1/keys/app/k', { token: admin, body: { type: 'aes256' } })).status, 201);
      // Checkpoints cover the adopted event (the CLI test verifies an export of such a log offline).
      await new Promise((res) => setTimeout(res, 400));
      const cp = await call(s, 'GET', '/v1/audit/checkpoint', { token: admin });
      assert.equal(cp.status, 200, JSON.stringify(cp.body));
      const evs = await call(s, 'GET', '/v1/audit/events?from=0&to=2', { token: admin });
      assert.equal(evs.body.events.length, 2);
    } finally {
      await s.close();
    }
  });

  void test('shares sealed to custodians; recipient count must match; keepSharesInMemory', async () => {
    const ids = [await HpkeIdentity.generate('x25519'), await HpkeIdentity.generate('x25519')];
    const recipients = await Promise.all(ids.map(async (i) => (await i.recipient()).toString()));
    const dir = join(tmp, 'sealed');
    const r = await initDataDir(dir, { shares: 2, threshold: 2, shareRecipients: recipients, tokenToFile: true });
    assert.deepEqual(readdirSync(join(dir, 'shares')).sort(), ['share-1.kw.txt', 'share-2.kw.txt']);
    const armored = readFileSync(join(dir, 'shares', 'share-1.kw.txt'), 'utf8');
    assert.match(armored, /BEGIN KEYWARD ENVELOPE/);
    assert.match(await openCustodianShare(armored, ids[0]!), /^# keyward unseal share 1 of 2/);
    assert.equal(r.tokenFile, join(dir, 'initial-admin-token'));
    assert.equal(mode(r.tokenFile), 0o600);
    assert.equal(readFileSync(r.tokenFile, 'utf8'), `${r.token}\n`);

    await assert.rejects(initDataDir(join(tmp, 'mismatch'), { shares: 3, threshold: 2, shareRecipients: recipients }), (e: unknown) => e instanceof KeywardError && e.code === 'KW_INVALID_ARGUMENT');
    writeFileSync(join(tmp, 'a-file'), 'x');
    await assert.rejects(initDataDir(join(tmp, 'a-file', 'sub'), { shares: 2, threshold: 2 }), (e: unknown) => e instanceof KeywardError && e.code === 'KW_IO');

    const mem = await initDataDir(join(tmp, 'mem'), { shares: 2, threshold: 2, keepSharesInMemory: true });
    assert.equal(mem.shareRecords.length, 2);
    assert.deepEqual(mem.shareFiles.map((f) => f.file), [null, null]);
  });
});
