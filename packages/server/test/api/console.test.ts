/**
 * The web console's server side (api/console.ts, console-session.ts, the
 * cookie path of auth.ts): security headers of the pages, CORS closed,
 * session cookie flags (plain HTTP and TLS), CSRF refusals that change
 * nothing, expiry, sign-out, and the read routes the console uses
 * (routes/inventory.ts). Real server, keyholder and SQLite.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { leafHash, newVerifier, openCheckpoint, verifyInclusion } from '@keyward/tlog';
import { CONSOLE_CSP } from '../../src/api/console.js';
import type { RunningServer } from '../../src/server.js';
import { call, enrollAdmin, newServer, snapshot, unb64u, unsealAll, type Res } from './helpers.js';

const CSP_PARTS = ["default-src 'self'", "script-src 'self'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'", "form-action 'self'"];

interface Session { cookie: string; csrf: string; setCookie: string; body: Record<string, unknown> }

async function raw(s: RunningServer, method: 'GET' | 'POST' | 'DELETE' | 'OPTIONS', url: string, headers: Record<string, string> = {}, body?: unknown) {
  return s.fastify.inject({ method, url, headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers }, ...(body !== undefined ? { payload: JSON.stringify(body) } : {}) });
}

async function signIn(s: RunningServer, token: string, extra: Record<string, unknown> = {}): Promise<Session> {
  const r = await raw(s, 'POST', '/v1/console/session', { 'sec-fetch-site': 'same-origin' }, { token, ...extra });
  assert.equal(r.statusCode, 201, r.body);
  const setCookie = String(r.headers['set-cookie']);
  const cookie = setCookie.split(';')[0]!;
  const body = JSON.parse(r.body) as Record<string, unknown>;
  return { cookie, csrf: body.csrf as string, setCookie, body };
}

/** A call the way the console's page makes it: cookie + CSRF header + same-origin fetch metadata. */
function withSession(sess: Session, over: Record<string, string> = {}): Record<string, string> {
  return { cookie: sess.cookie, 'x-keyward-csrf': sess.csrf, 'sec-fetch-site': 'same-origin', ...over };
}

function assertConsoleHeaders(h: Record<string, unknown>, what: string): void {
  assert.equal(h['content-security-policy'], CONSOLE_CSP, `${what}: CSP`);
  for (const p of CSP_PARTS) assert.ok(String(h['content-security-policy']).split('; ').includes(p), `${what}: CSP has ${p}`);
  assert.doesNotMatch(String(h['content-security-policy']), /unsafe-inline|unsafe-eval|\*/, `${what}: no unsafe sources`);
  assert.equal(h['x-content-type-options'], 'nosniff', `${what}: nosniff`);
  assert.equal(h['referrer-policy'], 'no-referrer', `${what}: referrer policy`);
  assert.equal(h['x-frame-options'], 'DENY', `${what}: X-Frame-Options`);
  assert.equal(h['access-control-allow-origin'], undefined, `${what}: no CORS`);
}

void describe('web console: pages, sessions and CSRF', { timeout: 120_000 }, () => {
  let s: RunningServer;
  let admin: string;
  let clockMs = Date.now();

  before(async () => {
    s = await newServer({ clock: () => new Date(clockMs), schedulerMs: 0 });
    const init = await s.initialize({ shares: 3, threshold: 2 });
    await unsealAll(s, init.shares.slice(0, 2));
    admin = await enrollAdmin(s, init.rootToken);
    const r = await call(s, 'POST', '/v1/keys/default/orders', { token: admin, body: { type: 'aes256', rotation_period_seconds: 3600 } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  });
  after(async () => { await s.close(); });

  void it('serves the pages and assets with a strict CSP, nosniff, no-referrer, no framing and no CORS', async () => {
    for (const url of ['/console', '/console/', '/console/keys', '/console/audit', '/console/health', '/console/directory']) {
      const r = await raw(s, 'GET', url);
      assert.equal(r.statusCode, 200, url);
      assert.match(String(r.headers['content-type']), /^text\/html/);
      assert.match(r.body, /<title>Keyward console<\/title>/);
      assert.doesNotMatch(r.body, /<script>(?!<)|<script(?![^>]*\bsrc=)[^>]*>|style="/, `${url}: no inline script or style`);
      assert.equal(r.headers['cache-control'], 'no-store');
      assertConsoleHeaders(r.headers, url);
    }
    const seal = await raw(s, 'GET', '/console/seal');
    assert.equal(seal.statusCode, 200);
    assert.match(seal.body, /Seal in the browser/);
    assertConsoleHeaders(seal.headers, '/console/seal');
    const script = /src="(\/console\/assets\/[^"]+\.js)"/.exec(seal.body)![1]!;
    const js = await raw(s, 'GET', script);
    assert.equal(js.statusCode, 200);
    assert.match(String(js.headers['content-type']), /^text\/javascript/);
    assert.match(String(js.headers['cache-control']), /immutable/);
    assertConsoleHeaders(js.headers, script);
    const missing = await raw(s, 'GET', '/console/nope.js');
    assert.equal(missing.statusCode, 404);
    assertConsoleHeaders(missing.headers, '404');
    const traversal = await raw(s, 'GET', '/console/%2e%2e/%2e%2e/package.json');
    assert.equal(traversal.statusCode, 404);
  });

  void it('keeps CORS closed: no Access-Control-Allow-Origin on preflights or answers to another origin', async () => {
    const pre = await raw(s, 'OPTIONS', '/v1/keys/default', { origin: 'https://evil.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'x-keyward-csrf' });
    assert.equal(pre.headers['access-control-allow-origin'], undefined);
    assert.equal(pre.headers['access-control-allow-headers'], undefined);
    for (const url of ['/v1/sys/health', '/v1/console/session', '/console/']) {
      const r = await raw(s, 'GET', url, { origin: 'https://evil.example' });
      assert.equal(r.headers['access-control-allow-origin'], undefined, url);
      assert.equal(r.headers['access-control-allow-credentials'], undefined, url);
    }
  });

  void it('signs in with a token: HttpOnly SameSite=Strict cookie (not Secure on plain HTTP), CSRF proof in the body, the token not echoed', async () => {
    const sess = await signIn(s, admin);
    assert.match(sess.setCookie, /^keyward_session=kw_[A-Za-z0-9_-]{43}; /);
    for (const flag of ['HttpOnly', 'SameSite=Strict', 'Path=/']) assert.ok(sess.setCookie.split('; ').includes(flag), flag);
    assert.match(sess.setCookie, /Max-Age=(\d+)/);
    assert.ok(!sess.setCookie.includes('Secure'));
    assert.ok(!sess.setCookie.includes('Domain'));
    assert.equal(sess.body.principal, 'admin');
    assert.equal(sess.body.admin, true);
    assert.match(String(sess.body.session_id), /^ses_/);
    assert.match(sess.csrf, /^[A-Za-z0-9_-]{43}$/);
    assert.ok(!JSON.stringify(sess.body).includes(admin), 'the token is not echoed');
    assert.ok(!JSON.stringify(sess.body).includes(sess.cookie.split('=')[1]!), 'the session secret is only in the cookie');
    const me = await raw(s, 'GET', '/v1/console/session', { cookie: sess.cookie, 'sec-fetch-site': 'same-origin' });
    assert.equal(me.statusCode, 200);
    assert.equal(JSON.parse(me.body).csrf, sess.csrf);
  });

  void it('refuses sign-in from another site, with a bad token, or with a session secret', async () => {
    const cross = await raw(s, 'POST', '/v1/console/session', { 'sec-fetch-site': 'cross-site' }, { token: admin });
    assert.equal(cross.statusCode, 403);
    assert.equal(JSON.parse(cross.body).error.code, 'KW_CSRF_REJECTED');
    assert.equal(cross.headers['set-cookie'], undefined);
    const origin = await raw(s, 'POST', '/v1/console/session', { origin: 'https://evil.example' }, { token: admin });
    assert.equal(JSON.parse(origin.body).error.code, 'KW_CSRF_REJECTED');
    const bad = await raw(s, 'POST', '/v1/console/session', {}, { token: 'kw_' + 'A'.repeat(43) });
    assert.equal(bad.statusCode, 401);
    assert.equal(JSON.parse(bad.body).error.code, 'KW_UNAUTHENTICATED');
    const form = await s.fastify.inject({ method: 'POST', url: '/v1/console/session', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `token=${admin}` });
    assert.equal(form.statusCode, 415, 'a cross-site HTML form cannot post the sign-in');
    const sess = await signIn(s, admin);
    const again = await raw(s, 'POST', '/v1/console/session', {}, { token: sess.cookie.split('=')[1] });
    assert.equal(again.statusCode, 401, 'a session secret does not open another session');
  });

  void it('accepts the cookie on the API only with the CSRF proof; a refused state change changes nothing', async () => {
    const sess = await signIn(s, admin);
    const ok = await raw(s, 'GET', '/v1/keys/default', withSession(sess));
    assert.equal(ok.statusCode, 200, ok.body);
    assert.deepEqual(JSON.parse(ok.body).keys.map((k: { name: string }) => k.name), ['orders']);

    const before = await snapshot(s, 'default');
    const auditBefore = await s.store.auditSize();
    const attempts: [string, Record<string, string>][] = [
      ['no CSRF header', { cookie: sess.cookie, 'sec-fetch-site': 'same-origin' }],
      ['wrong CSRF header', withSession(sess, { 'x-keyward-csrf': 'A'.repeat(43) })],
      ['another session\'s proof', withSession(sess, { 'x-keyward-csrf': (await signIn(s, admin)).csrf })],
      ['cross-site fetch', withSession(sess, { 'sec-fetch-site': 'cross-site' })],
      ['same-site (not same-origin) fetch', withSession(sess, { 'sec-fetch-site': 'same-site' })],
      ['another Origin', withSession(sess, { origin: 'https://evil.example' })],
    ];
    for (const [what, headers] of attempts) {
      for (const [method, url, body] of [
        ['POST', '/v1/keys/default/stolen', { type: 'aes256' }], ['POST', '/v1/keys/default/orders/rotate', undefined],
        ['POST', '/v1/keys/default/orders/versions/1/disable', {}], ['DELETE', '/v1/console/session', undefined],
      ] as const) {
        const r = await raw(s, method, url, headers, body);
        assert.equal(r.statusCode, 403, `${what}: ${method} ${url} → ${r.body}`);
        assert.equal(JSON.parse(r.body).error.code, 'KW_CSRF_REJECTED', what);
      }
      const read = await raw(s, 'GET', '/v1/keys/default', headers);
      assert.equal(read.statusCode, 403, `${what}: reads need the proof too`);
    }
    assert.equal(await snapshot(s, 'default'), before, 'nothing changed');
    // Sessions opened above are audited (sessions.create); the refusals wrote nothing.
    const events = (await s.store.readAuditEvents({ start: auditBefore, end: await s.store.auditSize() })).map((e) => JSON.parse(e.event) as { op: string });
    assert.deepEqual(events.map((e) => e.op).filter((op) => op !== 'sessions.create' && op !== 'audit.summary'), []);
    const still = await raw(s, 'GET', '/v1/console/session', { cookie: sess.cookie });
    assert.equal(still.statusCode, 200, 'the session survived the refused sign-out');

    const created = await raw(s, 'POST', '/v1/keys/default/made-in-console', withSession(sess), { type: 'aes256' });
    assert.equal(created.statusCode, 201, created.body);
  });

  void it('keeps tokens and sessions apart: a session secret is no bearer token, a bearer token no session cookie', async () => {
    const sess = await signIn(s, admin);
    const secret = sess.cookie.split('=')[1]!;
    const asBearer = await call(s, 'GET', '/v1/keys/default', { token: secret });
    assert.equal(asBearer.status, 401);
    const tokenAsCookie = await raw(s, 'GET', '/v1/keys/default', { cookie: `keyward_session=${admin}`, 'x-keyward-csrf': 'x'.repeat(43) });
    assert.equal(tokenAsCookie.statusCode, 403, 'wrong proof first');
    const { csrfProof } = await import('../../src/api/console-session.js');
    const tokenAsCookie2 = await raw(s, 'GET', '/v1/keys/default', { cookie: `keyward_session=${admin}`, 'x-keyward-csrf': csrfProof(admin) });
    assert.equal(tokenAsCookie2.statusCode, 401, 'a bearer token in the cookie is not a session');
  });

  void it('signs out: the session is revoked, the cookie cleared, and the cookie no longer works', async () => {
    const sess = await signIn(s, admin);
    const out = await raw(s, 'DELETE', '/v1/console/session', withSession(sess));
    assert.equal(out.statusCode, 200, out.body);
    assert.match(String(out.headers['set-cookie']), /keyward_session=; Path=\/; Max-Age=0; HttpOnly; SameSite=Strict/);
    const me = await raw(s, 'GET', '/v1/console/session', { cookie: sess.cookie });
    assert.equal(me.statusCode, 401);
    const api = await raw(s, 'GET', '/v1/keys/default', withSession(sess));
    assert.equal(api.statusCode, 401);
    const row = await s.store.getToken(String(sess.body.session_id));
    assert.ok(row?.revokedAt, 'the session row is revoked');
    const ops = (await s.store.readAuditEvents({ start: 0, end: await s.store.auditSize() })).map((e) => e.event);
    assert.ok(ops.some((e) => e.includes('"op":"sessions.revoke"')));
    assert.ok(!ops.some((e) => e.includes(sess.cookie.split('=')[1]!)), 'the session secret is never in the log');
  });

  void it('expires: a session lives at most its ttl, and dies with the token that opened it', async () => {
    const short = await signIn(s, admin, { ttl_seconds: 1 });
    assert.match(short.setCookie, /Max-Age=1;/);
    assert.equal((await raw(s, 'GET', '/v1/keys/default', withSession(short))).statusCode, 200);
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal((await raw(s, 'GET', '/v1/console/session', { cookie: short.cookie })).statusCode, 401);
    const expired = await raw(s, 'GET', '/v1/keys/default', withSession(short));
    assert.equal(expired.statusCode, 401);
    assert.equal(JSON.parse(expired.body).error.code, 'KW_UNAUTHENTICATED');

    const t = await call(s, 'POST', '/v1/tokens', { token: admin, body: { principal: 'ops', kind: 'person', admin: true, ttl_seconds: 3600 } });
    const sess = await signIn(s, t.body.token as string, { ttl_seconds: 12 * 3600 });
    assert.ok(Date.parse(String(sess.body.expires_at)) <= Date.parse(t.body.expires_at as string), 'never outlives its token');
    assert.equal((await raw(s, 'GET', '/v1/keys/default', withSession(sess))).statusCode, 200);
    assert.equal((await call(s, 'DELETE', `/v1/tokens/${t.body.id as string}`, { token: admin })).status, 200);
    assert.equal((await raw(s, 'GET', '/v1/keys/default', withSession(sess))).statusCode, 401, 'revoking the token ends its sessions');
  });

  void it('answers the console\'s reads: namespaces, overdue rotations, the log key that verifies the checkpoint', async () => {
    const sess = await signIn(s, admin);
    const ns = JSON.parse((await raw(s, 'GET', '/v1/namespaces', withSession(sess))).body) as { namespaces: { name: string }[] };
    assert.ok(ns.namespaces.some((n) => n.name === 'default'));
    const none = JSON.parse((await raw(s, 'GET', '/v1/rotation/overdue', withSession(sess))).body) as { keys: unknown[] };
    assert.deepEqual(none.keys, []);
    clockMs += 2 * 3600_000;
    const due = JSON.parse((await raw(s, 'GET', '/v1/rotation/overdue', withSession(sess))).body) as { keys: { ns: string; name: string; rotation_period_seconds: number }[] };
    assert.deepEqual(due.keys.map((k) => `${k.ns}/${k.name}`), ['default/orders']);
    assert.equal(due.keys[0]!.rotation_period_seconds, 3600);

    const vk = await call(s, 'GET', '/v1/audit/verifier-key');
    assert.equal(vk.status, 200);
    await new Promise((r) => setTimeout(r, 400)); // a checkpoint covers the events above
    const cp = await raw(s, 'GET', '/v1/audit/checkpoint', withSession(sess));
    const { checkpoint } = openCheckpoint(JSON.parse(cp.body).note as string, [newVerifier(vk.body.verifier_key as string)], { origin: vk.body.origin as string });
    const ev = JSON.parse((await raw(s, 'GET', `/v1/audit/events?from=0&to=1`, withSession(sess))).body) as { events: { event: string }[] };
    const proof = JSON.parse((await raw(s, 'GET', `/v1/audit/proof/inclusion?index=0&size=${checkpoint.size}`, withSession(sess))).body) as { hashes: string[] };
    verifyInclusion(leafHash(new TextEncoder().encode(ev.events[0]!.event)), 0, checkpoint.size, proof.hashes.map(unb64u), checkpoint.root);

    const doc = (await call(s, 'GET', '/v1/openapi.json')).body as { paths: Record<string, Record<string, unknown>> };
    for (const p of ['/v1/console/session', '/v1/namespaces', '/v1/rotation/overdue', '/v1/audit/verifier-key']) assert.ok(doc.paths[p], `${p} in OpenAPI`);
    assert.ok(doc.paths['/v1/console/session']!.post && doc.paths['/v1/console/session']!.delete);
  });
});

void describe('web console over TLS', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'kw-console-tls-'));
  let s: RunningServer;
  let ca: string;
  before(async () => {
    const cert = join(dir, 'c.crt');
    const key = join(dir, 'c.key');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
    ca = readFileSync(cert, 'utf8');
    s = await newServer({ tlsCert: cert, tlsKey: key, dev: true });
  });
  after(async () => { await s.close(); rmSync(dir, { recursive: true, force: true }); });

  void it('sets the __Host- cookie with Secure, HttpOnly and SameSite=Strict', async () => {
    const body = JSON.stringify({ token: s.rootToken });
    const r = await new Promise<Res & { setCookie: string }>((resolve, reject) => {
      const req = request(`${s.url}/v1/console/session`, { ca, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => { text += c; });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text), setCookie: String(res.headers['set-cookie']) }));
      });
      req.once('error', reject);
      req.end(body);
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.match(r.setCookie, /^__Host-keyward_session=kw_[A-Za-z0-9_-]{43}; Path=\/; Max-Age=\d+; HttpOnly; SameSite=Strict; Secure$/);
  });
});
