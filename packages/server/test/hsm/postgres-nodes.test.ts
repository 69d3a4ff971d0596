/**
 * HSM-wrapped mode with several nodes (docs/operations/adding-a-node.md):
 * two real `keyward server` processes on one PostgreSQL database, sharing one
 * SoftHSM2 token (same module, label and PIN; SoftHSM2's file store is safe
 * for several processes). Node A is initialised with the HSM (audit key in
 * the HSM too); node B gets a copy of A's keyholder.json. Both unseal
 * themselves from the HSM with no shares; an envelope sealed through A opens
 * through B; an HSM-resident key created on A serves data keys on B, and B's
 * rotation of it is used by A; the combined audit log verifies.
 *
 * KW_TEST_PG_URL overrides the PostgreSQL server (default 127.0.0.1:5432, postgres, trust).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { KeywardHttpClient } from '@keyward/client';
import { SOFTHSM_MODULE, softHsm, type SoftHsm } from './softhsm.js';
import { kw, ok, ServerProcess, until } from './cli-run.js';

const ADMIN_URL = process.env.KW_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const DB = `kw_hsm_nodes_${randomBytes(6).toString('hex')}`;
const STORE = (() => { const u = new URL(ADMIN_URL); u.pathname = `/${DB}`; return u.toString(); })();

let hsm: SoftHsm;
const nodes: { a: ServerProcess | null; b: ServerProcess | null } = { a: null, b: null };
const f = { pin: '', admin: '', profile: '', a: '', b: '' };

async function admin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  try { await c.query(sql); } finally { await c.end(); }
}

function client(addr: string): KeywardHttpClient {
  const doc = JSON.parse(readFileSync(join(f.profile, 'profile.json'), 'utf8')) as { key_id: string };
  const keys = JSON.parse(readFileSync(join(f.profile, 'device-keys.json'), 'utf8')) as { signing_seed: string };
  return new KeywardHttpClient({
    addresses: [addr], token: readFileSync(f.admin, 'utf8').trim(), allowInsecureHttp: true,
    device: { keyId: doc.key_id, signingSeed: Uint8Array.from(Buffer.from(keys.signing_seed, 'base64url')) },
  });
}
const recipient = () => (JSON.parse(readFileSync(join(f.profile, 'profile.json'), 'utf8')) as { recipient: string }).recipient;
const health = async (addr: string) => (await fetch(`${addr}/v1/sys/health`)).json() as Promise<{ sealed: boolean; hsm?: { state: string } }>;

void describe('two PostgreSQL nodes sharing one SoftHSM2 token', () => {
  before(async () => {
    await admin(`CREATE DATABASE ${DB}`);
    hsm = softHsm('kw-nodes');
    f.pin = join(hsm.dir, 'pin');
    writeFileSync(f.pin, `${hsm.pin}\n`, { mode: 0o600 });
    f.admin = join(hsm.dir, 'admin.token');
    f.profile = join(hsm.dir, 'profile');
    f.a = join(hsm.dir, 'node-a');
    f.b = join(hsm.dir, 'node-b');
  });
  after(async () => {
    await nodes.a?.stop();
    await nodes.b?.stop();
    hsm.cleanup();
    await admin(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  });

  void test('both nodes auto-unseal from the shared token; keys made on one are usable on the other', async () => {
    ok(await kw(['init', '--data', f.a, '--store', STORE, '--hsm-module', SOFTHSM_MODULE, '--hsm-token', hsm.label, '--hsm-pin-file', f.pin, '--hsm-audit-key', '--shares', '2', '--threshold', '2', '--token-file']));
    // adding-a-node.md §1: a copy of keyholder.json, nothing else.
    mkdirSync(f.b, { mode: 0o700 });
    copyFileSync(join(f.a, 'keyholder.json'), join(f.b, 'keyholder.json'));
    [nodes.a, nodes.b] = await Promise.all([
      ServerProcess.start(['--data', f.a, '--store', STORE, '--hsm-pin-file', f.pin]),
      ServerProcess.start(['--data', f.b, '--store', STORE], { KEYWARD_HSM_PIN_FILE: f.pin }),
    ]);
    const [a, b] = [nodes.a.addr, nodes.b.addr];
    for (const addr of [a, b]) {
      const h = await health(addr);
      assert.equal(h.sealed, false, `${addr} unsealed itself`);
      assert.equal(h.hsm?.state, 'available');
    }
    const ea = { KEYWARD_ADDR: a, KEYWARD_TOKEN_FILE: f.admin };
    const eb = { KEYWARD_ADDR: b, KEYWARD_TOKEN_FILE: f.admin };
    ok(await kw(['token', 'create', '--principal', 'admin', '--kind', 'person', '--admin', '-o', f.admin, '--token-file', join(f.a, 'initial-admin-token')], ea));
    ok(await kw(['keys', 'create', 'app/kms'], ea));
    ok(await kw(['keys', 'create', 'app/res', '--hsm-resident'], ea));
    ok(await kw(['login', '--profile', f.profile], ea));
    writeFileSync(join(hsm.dir, 'policy.json'), JSON.stringify({ grants: [{ principals: ['admin'], operations: ['datakey', 'unwrap'], keys: ['app/*'] }] }));
    ok(await kw(['policy', 'put', 'app/p', '--file', join(hsm.dir, 'policy.json')], ea));

    // An envelope sealed through A opens through B.
    writeFileSync(join(hsm.dir, 'plain.txt'), 'sealed on node A\n');
    ok(await kw(['seal', '--kms', 'app/kms', '--profile', f.profile, '-o', join(hsm.dir, 'a.kw'), join(hsm.dir, 'plain.txt')], ea));
    assert.equal(ok(await kw(['open', '--kms', '--profile', f.profile, join(hsm.dir, 'a.kw')], eb)).out, 'sealed on node A\n');

    // The HSM-resident key: made on A, data key on B unwraps on A; rotated on B, used by A.
    const ca = client(a);
    const cb = client(b);
    try {
      const dk = await cb.data<{ version: number; wrapped: string }>('app', 'res', 'datakey', { recipient: recipient(), context: { n: 'b' } });
      assert.equal(dk.body.version, 1);
      const u = await ca.data<{ sealed: string }>('app', 'res', 'unwrap', { version: 1, wrapped: dk.body.wrapped, context: { n: 'b' }, recipient: recipient() });
      assert.ok(u.body.sealed.length > 0);
      ok(await kw(['keys', 'rotate', 'app/res'], eb));
      await until('node A uses version 2', async () => (await ca.data<{ version: number }>('app', 'res', 'datakey', { recipient: recipient(), context: {} })).body.version === 2, 10_000);
      const dk2 = await ca.data<{ version: number; wrapped: string }>('app', 'res', 'datakey', { recipient: recipient(), context: { n: 'a' } });
      assert.ok((await cb.data<{ sealed: string }>('app', 'res', 'unwrap', { version: 2, wrapped: dk2.body.wrapped, context: { n: 'a' }, recipient: recipient() })).body.sealed.length > 0);
    } finally {
      ca.dispose();
      cb.dispose();
    }

    // The combined log verifies (checkpoints signed by the HSM audit key, from either node).
    const exp = join(hsm.dir, 'audit.jsonl');
    await until('the combined log verifies', async () => {
      ok(await kw(['audit', 'export', '-o', exp], eb));
      return (await kw(['audit', 'verify', '--export', exp, '--key', join(f.a, 'audit-verifier-key.txt')])).code === 0;
    }, 90_000);
  });
});
