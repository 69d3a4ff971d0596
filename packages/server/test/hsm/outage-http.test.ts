/**
 * The HSM goes away under HTTP load, through a real `keyward server` (HSM-
 * wrapped, audit key and a resident key in the HSM) and its HTTP API: the
 * token directory of SoftHSM2 is moved away while signed data-plane and admin
 * requests run. Every failure is a typed error with a stable code and status
 * (KW_HSM_*, 503; never a 500 or KW_INTERNAL); `/v1/sys/health` and
 * `/metrics` report the HSM unreachable; nothing is corrupted (the SQLite
 * store passes its integrity check, the audit log exported afterwards
 * verifies, every data key handed out still unwraps); when the token
 * returns, operations recover without a restart.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { KeywardHttpClient } from '@keyward/client';
import { softHsm, SOFTHSM_MODULE, type SoftHsm } from './softhsm.js';
import { kw, ok, ServerProcess, until } from './cli-run.js';

let hsm: SoftHsm;
let server: ServerProcess;
let data: string;
const f = { pin: '', admin: '', profile: '' };

function client(): KeywardHttpClient {
  const doc = JSON.parse(readFileSync(join(f.profile, 'profile.json'), 'utf8')) as { key_id: string };
  const keys = JSON.parse(readFileSync(join(f.profile, 'device-keys.json'), 'utf8')) as { signing_seed: string };
  return new KeywardHttpClient({
    addresses: [server.addr], token: readFileSync(f.admin, 'utf8').trim(), allowInsecureHttp: true,
    device: { keyId: doc.key_id, signingSeed: Uint8Array.from(Buffer.from(keys.signing_seed, 'base64url')) },
  });
}
const recipient = () => (JSON.parse(readFileSync(join(f.profile, 'profile.json'), 'utf8')) as { recipient: string }).recipient;

interface Outcome { key: string; loop: string; ok: boolean; code: string | null; status: number | null; wrapped?: string; version?: number }

/** `n` concurrent loops of datakey requests on the given keys (each at most 10/s), until `stop()`. */
function load(c: KeywardHttpClient, keys: string[], n: number): { stop: () => Promise<Outcome[]> } {
  let running = true;
  const out: Outcome[] = [];
  const loops = Array.from({ length: n }, async (_, i) => {
    while (running) {
      const key = keys[i % keys.length]!;
      try {
        const r = await c.data<{ version: number; wrapped: string }>('app', key, 'datakey', { recipient: recipient(), context: { loop: String(i) } });
        out.push({ key, loop: String(i), ok: true, code: null, status: 200, wrapped: r.body.wrapped, version: r.body.version });
      } catch (e) {
        const err = e as { code?: string; status?: number };
        out.push({ key, loop: String(i), ok: false, code: err.code ?? null, status: err.status ?? null });
      }
      // Paced below the server's default per-token rate limit (50/s), which would otherwise answer 429.
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  return { stop: async () => { running = false; await Promise.all(loops); return out; } };
}

async function health(): Promise<{ sealed: boolean; hsm?: { state: string; code: string | null } }> {
  return (await fetch(`${server.addr}/v1/sys/health`)).json() as Promise<{ sealed: boolean; hsm?: { state: string; code: string | null } }>;
}
const metric = async (name: string): Promise<string> => {
  const text = await (await fetch(`${server.addr}/metrics`)).text();
  return [...text.matchAll(new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)$`, 'gm'))].map((m) => `${m[1] ?? ''} ${m[2]}`).join('\n');
};

void describe('the HSM goes away under HTTP load (real keyward server, SoftHSM2)', () => {
  before(async () => {
    hsm = softHsm('kw-outage');
    data = join(hsm.dir, 'data');
    f.pin = join(hsm.dir, 'pin');
    writeFileSync(f.pin, `${hsm.pin}\n`, { mode: 0o600 });
    f.admin = join(hsm.dir, 'admin.token');
    f.profile = join(hsm.dir, 'profile');
    ok(await kw(['init', '--data', data, '--hsm-module', SOFTHSM_MODULE, '--hsm-token', hsm.label, '--hsm-pin-file', f.pin, '--hsm-audit-key', '--shares', '2', '--threshold', '2', '--token-file']));
    server = await ServerProcess.start(['--data', data, '--hsm-pin-file', f.pin, '--hsm-retry-ms', '300']);
    const e = { KEYWARD_ADDR: server.addr, KEYWARD_TOKEN_FILE: f.admin };
    ok(await kw(['token', 'create', '--principal', 'admin', '--kind', 'person', '--admin', '-o', f.admin, '--token-file', join(data, 'initial-admin-token')], e));
    ok(await kw(['keys', 'create', 'app/soft'], e));
    ok(await kw(['keys', 'create', 'app/res', '--hsm-resident'], e));
    ok(await kw(['login', '--profile', f.profile], e));
    writeFileSync(join(hsm.dir, 'policy.json'), JSON.stringify({ grants: [{ principals: ['admin'], operations: ['datakey', 'unwrap'], keys: ['app/*'] }] }));
    ok(await kw(['policy', 'put', 'app/p', '--file', join(hsm.dir, 'policy.json')], e));
  });
  after(async () => {
    await server?.stop();
    hsm.cleanup();
  });

  void test('typed errors over HTTP while the token is away, health and metrics say so, recovery when it returns, nothing corrupted', async () => {
    const c = client();
    assert.equal((await health()).hsm?.state, 'available');
    assert.match(await metric('keyward_hsm_up'), /^ 1$/);
    assert.match(await metric('keyward_hsm_configured'), /^ 1$/);

    // Phase 1: load with the HSM present.
    let l = load(c, ['res', 'soft'], 4);
    await new Promise((r) => setTimeout(r, 1500));
    const present = await l.stop();
    assert.ok(present.length > 4 && present.every((o) => o.ok), `all succeed with the HSM present: ${JSON.stringify(present.find((o) => !o.ok))}`);

    // Phase 2: the token directory goes away mid-load.
    const away = `${hsm.tokenDir}.away`;
    l = load(c, ['res', 'soft'], 4);
    await new Promise((r) => setTimeout(r, 500));
    renameSync(hsm.tokenDir, away);
    let during: Outcome[];
    try {
      await until('health reports the HSM unreachable', async () => (await health()).hsm?.state === 'unavailable', 20_000);
      await new Promise((r) => setTimeout(r, 1500));
      during = await l.stop();
      const h = await health();
      assert.match(h.hsm?.code ?? '', /^KW_HSM_(UNAVAILABLE|TOKEN_MISSING)$/);
      assert.match(await metric('keyward_hsm_up'), /^ 0$/);
      assert.match(await metric('keyward_hsm_errors_total'), /code="KW_HSM_(UNAVAILABLE|TOKEN_MISSING)"\} [1-9]/);
      // keyward doctor against the running server: a critical hsm-unreachable finding with the code, non-zero exit.
      const doc = await kw(['doctor', '--addr', server.addr, '--json']);
      assert.notEqual(doc.code, 0, 'doctor exits non-zero on a critical finding');
      const hsmFinding = (JSON.parse(doc.out) as { findings: { id: string; severity: string; message?: string; details?: { code?: string } }[] }).findings.find((x) => x.id === 'hsm-unreachable');
      assert.equal(hsmFinding?.severity, 'critical');
      assert.match(hsmFinding?.details?.code ?? '', /^KW_HSM_(UNAVAILABLE|TOKEN_MISSING)$/);
      // An admin write that needs the HSM (a resident rotation) is refused, typed.
      const rot = await kw(['keys', 'rotate', 'app/res'], { KEYWARD_ADDR: server.addr, KEYWARD_TOKEN_FILE: f.admin });
      assert.notEqual(rot.code, 0);
      assert.match(rot.err, /error\[KW_HSM_(UNAVAILABLE|TOKEN_MISSING)\]/);
    } finally {
      renameSync(away, hsm.tokenDir);
    }
    const failed = during.filter((o) => !o.ok);
    assert.ok(failed.length > 0, 'resident-key requests failed while the token was away');
    for (const o of failed) {
      assert.match(o.code ?? '', /^KW_HSM_(UNAVAILABLE|TOKEN_MISSING)$/, `typed error, got ${o.code} (${o.status})`);
      assert.equal(o.status, 503);
      assert.equal(o.key, 'res', 'software keys keep working from memory');
    }
    assert.ok(during.some((o) => o.ok && o.key === 'soft'), 'software (HSM-wrapped) keys served throughout');

    // Phase 3: back. Recovers without a restart.
    await until('health reports the HSM available again', async () => (await health()).hsm?.state === 'available', 20_000);
    assert.match(await metric('keyward_hsm_up'), /^ 1$/);
    l = load(c, ['res', 'soft'], 2);
    await new Promise((r) => setTimeout(r, 1000));
    const back = await l.stop();
    assert.ok(back.length > 0 && back.every((o) => o.ok), `all succeed again: ${JSON.stringify(back.find((o) => !o.ok))}`);
    ok(await kw(['keys', 'rotate', 'app/res'], { KEYWARD_ADDR: server.addr, KEYWARD_TOKEN_FILE: f.admin }));
    const doc = JSON.parse((await kw(['doctor', '--addr', server.addr, '--json'])).out) as { findings: { id: string }[] };
    assert.ok(!doc.findings.some((x) => x.id === 'hsm-unreachable'), 'doctor: the HSM is back');

    // Nothing corrupted: every data key handed out unwraps; the audit log verifies; the store is intact.
    const handed = [...present, ...during, ...back].filter((o) => o.ok);
    const sample = [...handed.filter((o) => o.key === 'res').slice(0, 2), ...handed.filter((o) => o.key === 'res').slice(-2), ...handed.filter((o) => o.key === 'soft').slice(-2)];
    for (const o of sample) {
      const u = await c.data<{ sealed: string }>('app', o.key, 'unwrap', { version: o.version, wrapped: o.wrapped, context: { loop: o.loop }, recipient: recipient() });
      assert.ok(u.body.sealed.length > 0, `${o.key} v${o.version} still unwraps`);
    }
    c.dispose();
    await until('a checkpoint after the outage verifies', async () => {
      const exp = join(hsm.dir, 'audit.jsonl');
      ok(await kw(['audit', 'export', '-o', exp, '--token-file', f.admin], { KEYWARD_ADDR: server.addr }));
      const r = await kw(['audit', 'verify', '--export', exp, '--key', join(data, 'audit-verifier-key.txt'), '--json']);
      if (r.code !== 0) return false;
      const v = JSON.parse(r.out) as { ok: boolean; size: number };
      return v.ok;
    }, 90_000);
    assert.equal(execFileSync('sqlite3', [join(data, 'keyward.db'), 'PRAGMA integrity_check;'], { encoding: 'utf8' }).trim(), 'ok');
  });
});
