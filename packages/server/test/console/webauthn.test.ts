/**
 * The console's second factor in headless Chromium with a virtual WebAuthn
 * authenticator (Chrome DevTools Protocol `WebAuthn` domain: real
 * attestation and assertion objects, verified by the server's
 * @simplewebauthn code): a person signs in with a token, enrolls a security
 * key on the Security page, signs out, signs in again — token, then the
 * authenticator over the sign-in challenge — and schedules the deletion of a
 * key version with a step-up whose request (shown in the page) hashes to the
 * challenge the authenticator signs, exactly as the API computes it. Also:
 * the API side of the two-step sign-in (no cookie before the factor, a bad
 * answer refused and counted), a cancelled step-up changing nothing, and the
 * keys page in a 360 px window.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { base32 } from '@scure/base';
import { generate as totpCode } from 'otplib';
import { chromium, type Browser, type BrowserContext, type CDPSession, type Page } from 'playwright-core';
import { canonicalJsonBytes } from '../../src/audit/canonical-json.js';
import type { RunningServer } from '../../src/server.js';
import { generateWitnessKey, startWitness, type RunningWitness } from '../../src/witness/server.js';
import { call, enrollAdmin, newServer, unsealAll } from '../api/helpers.js';

const CHROMIUM = process.env.KW_CHROMIUM ?? '/usr/bin/chromium';
/** Screenshots of the main pages (test artifacts; docs/img/console-*.png are copies). */
const SHOTS = process.env.KW_TEST_ARTIFACTS ?? join(tmpdir(), 'keyward-console-screens');
mkdirSync(SHOTS, { recursive: true });
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-dev-shm-usage'];

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

void describe('console second factor (virtual WebAuthn authenticator)', { timeout: 90_000 }, () => {
  let s: RunningServer;
  let token: string;
  let base: string;
  let browser: Browser | undefined;
  let context: BrowserContext | undefined;
  let page: Page;
  let cdp: CDPSession;
  let authenticatorId = '';
  let witness: RunningWitness | undefined;
  const approverTokens: Record<string, string> = {};
  const problems: string[] = [];

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM}: apt-get install -y chromium, or set KW_CHROMIUM`);
    // WebAuthn needs a secure context and an RP id that is a host name: http://localhost:<port> is one.
    const port = await freePort();
    base = `http://localhost:${port}`;
    // One witness (in-process) for the audit log and the directory's head log: its port and key are
    // fixed now, it starts once the server has made the logs' keys (init).
    const wport = await freePort();
    const wkey = generateWitnessKey('w1.console.test');
    s = await newServer({
      listen: `127.0.0.1:${port}`, mfa: { rpId: 'localhost', origins: [base] }, directory: { enabled: true },
      witnesses: [{ name: 'w1.console.test', url: `http://127.0.0.1:${wport}`, key: wkey.verifierKey }], witnessesK: 1, witnessMs: 200,
    });
    const init = await s.initialize({ shares: 3, threshold: 2 });
    await unsealAll(s, init.shares.slice(0, 2));
    const auditKey = (await call(s, 'GET', '/v1/audit/verifier-key')).body.verifier_key as string;
    const headLogKey = (await call(s, 'GET', '/v1/directory/config')).body.head_log_key as string;
    witness = await startWitness({
      listen: `127.0.0.1:${wport}`, signerKey: wkey.signerKey, stateDir: mkdtempSync(join(tmpdir(), 'kw-console-witness-')),
      logs: [{ key: auditKey }, { key: headLogKey }], logStream: new Writable({ write: (_c, _e, cb) => cb() }),
    });
    token = await enrollAdmin(s, init.rootToken, 'alice');
    for (const url of ['/v1/keys/default/orders', '/v1/keys/default/orders/rotate']) {
      const r = await call(s, 'POST', url, { token, ...(url.endsWith('rotate') ? {} : { body: { type: 'aes256' } }) });
      assert.ok(r.status === 200 || r.status === 201, `${url}: ${JSON.stringify(r.body)}`);
    }
    // Two approvers (role "approver") and a quorum of both for destroying a key version; set before any factor
    // exists, i.e. before step-up is enforced (the tokens and roles are sensitive requests).
    for (const who of ['bob', 'carol']) {
      const t = await call(s, 'POST', '/v1/tokens', { token, body: { principal: who, kind: 'person', admin: true } });
      assert.equal(t.status, 201, JSON.stringify(t.body));
      approverTokens[who] = t.body.token as string;
      const r = await call(s, 'PUT', `/v1/principals/${who}/roles`, { token, body: { roles: ['approver'] } });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    }
    // The directory: an identity (created with its enrollment token) and a group.
    const et = await call(s, 'POST', '/v1/directory/enroll-tokens', { token, body: { name: 'user:dana' } });
    assert.equal(et.status, 201, JSON.stringify(et.body));
    const g = await call(s, 'PUT', '/v1/directory/groups/group:ops', { token, body: { members: ['user:dana'] } });
    assert.equal(g.status, 200, JSON.stringify(g.body));
    const q = await call(s, 'PUT', '/v1/quorum/keys.destroy', { token, body: { role: 'approver', threshold: 2 } });
    assert.equal(q.status, 200, JSON.stringify(q.body));
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
    context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    await context.route((u) => u.origin !== base, (route) => { problems.push(`blocked ${route.request().url()}`); return route.abort(); });
    page = await context.newPage();
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      // 401: not signed in yet; 403: the step-up probe of a person without a factor (KW_MFA_REQUIRED).
      if (/status of 40[13]/.test(m.text())) return;
      if (m.type() === 'error' || /Content Security Policy|Refused to/.test(m.text())) problems.push(`console: ${m.text()}`);
    });
    cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    ({ authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
    }));
  });

  after(async () => {
    await context?.close();
    await browser?.close();
    await s?.close();
    await witness?.close();
  });

  const signIn = async () => {
    await page.getByLabel('Access token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
  };
  /** Signs out whoever is signed in, then signs in as alice: token, then her security key. */
  const signInAsAlice = async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Access token').waitFor();
    await signIn();
    const dialog = page.getByRole('dialog', { name: 'Second factor' });
    await dialog.waitFor({ timeout: 10_000 });
    await dialog.getByRole('button', { name: 'Use security key' }).click();
    await page.getByRole('button', { name: 'Sign out' }).waitFor({ timeout: 15_000 });
  };

  void it('enrolls a security key, then signs in with token + WebAuthn, and steps up for a sensitive action', async () => {
    await page.goto(`${base}/console/security`);
    await signIn(); // no factor yet: the token alone
    await page.getByRole('heading', { name: 'Security', exact: true }).waitFor({ timeout: 15_000 });
    await page.locator('#security-status', { hasText: 'No active second factor' }).waitFor({ timeout: 10_000 });
    await page.getByLabel('Name', { exact: true }).fill('test key');
    await page.getByRole('button', { name: 'Add security key' }).click();
    await page.locator('#factor-list li[data-state="active"]', { hasText: 'test key' }).waitFor({ timeout: 15_000 });
    const factors = await call(s, 'GET', '/v1/mfa/factors', { token });
    assert.deepEqual(factors.body.factors.map((f: { kind: string; state: string }) => [f.kind, f.state]), [['webauthn', 'active']]);
    const creds = (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials;
    assert.equal(creds.length, 1);

    // Sign out; signing in now takes the token, then the authenticator over the one-time challenge.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Access token').waitFor();
    await signIn();
    const dialog = page.getByRole('dialog', { name: 'Second factor' });
    await dialog.waitFor({ timeout: 10_000 });
    const shown = JSON.parse(await page.locator('#factor-request').innerText()) as Record<string, unknown>;
    assert.equal(shown.v, 'keyward/v1 console-signin');
    assert.equal(shown.principal, 'alice');
    const hash = await page.locator('#factor-hash').innerText();
    await page.screenshot({ path: join(SHOTS, 'console-signin-webauthn.png') });
    assert.equal(createHash('sha256').update(canonicalJsonBytes(shown)).digest('base64url'), hash);
    // No session exists yet: the cookie comes only with the factor.
    assert.equal((await page.evaluate(async () => (await fetch('/v1/console/session')).status)), 401);
    await dialog.getByRole('button', { name: 'Use security key' }).click();
    await page.getByRole('heading', { name: 'Security', exact: true }).waitFor({ timeout: 15_000 });
    assert.equal((await page.evaluate(async () => (await fetch('/v1/console/session')).status)), 200);
    const signCount = (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials[0]!.signCount;
    assert.ok(signCount >= 1, `sign count ${signCount}`);

    // A sensitive action from the keys page: schedule v1's deletion, with a step-up bound to that exact request.
    await page.getByRole('link', { name: 'Keys' }).click();
    const orders = page.locator('#keys-table tr[data-key="default/orders"]');
    await orders.getByRole('button', { name: 'Versions' }).click();
    const v1 = page.locator('table.versions tr[data-version="1"]');
    await v1.waitFor({ timeout: 10_000 });

    // Cancelled: nothing changes.
    await v1.getByRole('button', { name: 'Schedule deletion of v1 in 7 days' }).click();
    const confirm = page.getByRole('dialog', { name: 'Confirm this request' });
    await confirm.waitFor();
    await confirm.getByRole('button', { name: 'Cancel' }).click();
    await page.locator('.action-result', { hasText: 'cancelled' }).waitFor();
    assert.equal((await call(s, 'GET', '/v1/keys/default/orders', { token })).body.versions[0].state, 'enabled');

    await v1.getByRole('button', { name: 'Schedule deletion of v1 in 7 days' }).click();
    await confirm.waitFor();
    const request = JSON.parse(await page.locator('#factor-request').innerText()) as Record<string, unknown>;
    assert.equal(request.v, 'keyward/v1 request');
    assert.equal(request.method, 'POST');
    assert.equal(request.path, '/v1/keys/default/orders/versions/1/schedule-deletion');
    assert.deepEqual(request.body, { days: 7 });
    const stepUpId = await page.locator('#factor-hash').innerText();
    await page.screenshot({ path: join(SHOTS, 'console-step-up.png') });
    assert.equal(createHash('sha256').update(canonicalJsonBytes(request)).digest('base64url'), stepUpId);
    await confirm.getByRole('button', { name: 'Confirm with security key' }).click();
    await page.locator('table.versions tr[data-version="1"][data-state="scheduled_for_deletion"]').waitFor({ timeout: 15_000 });
    const key = await call(s, 'GET', '/v1/keys/default/orders', { token });
    assert.equal(key.body.versions.find((v: { version: number }) => v.version === 1).state, 'scheduled_for_deletion');
    // The operation's audit event carries the hash of the request the page showed.
    const events = (await call(s, 'GET', '/v1/audit/events?from=0&to=1000', { token })).body.events as { event: string }[];
    const scheduled = events.map((e) => JSON.parse(e.event) as { op: string; outcome: string; request?: string }).filter((e) => e.op === 'keys.schedule_deletion' && e.outcome === 'allowed');
    assert.deepEqual(scheduled.map((e) => e.request), [Buffer.from(stepUpId, 'base64url').toString('hex')]);
    // And the sign-in names the factor that confirmed it.
    assert.ok(events.some((e) => /"op":"sessions.create"/.test(e.event) && /"second_factor":\{"factor":"mfa_/.test(e.event)));

    // Rotation (not sensitive) from the same place.
    await page.getByRole('button', { name: 'Rotate orders' }).click();
    await page.locator('table.versions tr[data-version="3"][data-state="enabled"]').waitFor({ timeout: 10_000 });

    // Usage over time (inline SVG from the audit log): create, rotate, schedule-deletion and rotate of this key.
    await page.locator('#usage-default-orders svg.chart rect.bar').first().waitFor({ state: 'attached', timeout: 10_000 });
    await page.waitForFunction(() => Array.from(document.querySelectorAll('#usage-default-orders rect.bar'))
      .reduce((a, r) => a + Number(r.getAttribute('data-count')), 0) >= 4, undefined, { timeout: 10_000 });
    assert.match(await page.locator('#usage-default-orders svg title').first().textContent() ?? '', /\d+ events/);
    await page.screenshot({ path: join(SHOTS, 'console-keys.png'), fullPage: true });

    // A narrow window: nothing needs horizontal scrolling.
    await page.setViewportSize({ width: 360, height: 800 });
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1));

    // Directory: the log head, its cosigned checkpoint and the witness, and the group with its member (still 360 px wide).
    // The witness cosigns the current head within a few publisher rounds.
    let dw: { body: { head: { tree_size: number }; witnessed: { tree_size: number } | null } } | undefined;
    for (let i = 0; i < 50; i++) {
      dw = await call(s, 'GET', '/v1/directory/witnesses', { token });
      if (dw.body.witnessed?.tree_size === dw.body.head.tree_size) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const headSize = dw!.body.head.tree_size;
    assert.equal(dw!.body.witnessed?.tree_size, headSize, JSON.stringify(dw!.body));
    await page.getByRole('link', { name: 'Directory' }).click();
    await page.locator('#dir-table tr[data-name="group:ops"]', { hasText: 'user:dana' }).waitFor({ timeout: 10_000 });
    assert.match(await page.locator('#dir-head').innerText(), /Tree size\s+[1-9]/);
    await page.locator('#dir-head', { hasText: 'Newest entry' }).waitFor({ timeout: 10_000 });
    const cosigned = page.locator(`#dir-cosigned[data-size="${headSize}"]`);
    await cosigned.waitFor({ timeout: 10_000 });
    assert.match(await cosigned.innerText(), new RegExp(`current head cosigned — size ${headSize}, by w1\\.console\\.test`));
    // The checkpoint shown is the head log's signed note, with the witness's cosignature line.
    assert.match(await page.locator('#dir-witnessed pre.note').innerText(), new RegExp(`^keyward\\.local/directory-heads/[0-9a-f]+\\n${headSize}\\n[\\s\\S]*— w1\\.console\\.test `));
    // The current head verified in the browser against the witness pinned on opening the page.
    const verified = page.locator(`#dir-verify[data-verified="true"][data-size="${headSize}"]`);
    await verified.waitFor({ timeout: 10_000 });
    assert.deepEqual(await verified.locator('#cosigners li').evaluateAll((li) => li.map((l) => (l as HTMLElement).dataset.witness)), ['w1.console.test']);
    const wrow = page.locator('#dir-witnesses tr[data-witness="w1.console.test"]');
    assert.equal(await wrow.getAttribute('data-ok'), 'true');
    assert.match(await wrow.innerText(), /cosigning/);
    await page.screenshot({ path: join(SHOTS, 'console-directory-narrow.png'), fullPage: true });
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1));
    assert.deepEqual(problems, []);
  });

  void it('asks for, approves (two people), executes and cancels quorum requests from the console', async () => {
    await page.setViewportSize({ width: 1100, height: 900 });
    // Destroying v1 (scheduled for deletion above) needs a step-up and a quorum: the keys page offers to ask for approval.
    await page.getByRole('link', { name: 'Keys' }).click();
    await page.locator('#keys-table tr[data-key="default/orders"]').getByRole('button', { name: 'Versions' }).click();
    const v1 = page.locator('table.versions tr[data-version="1"][data-state="scheduled_for_deletion"]');
    await v1.getByRole('button', { name: 'Destroy v1 now' }).click();
    const confirm = page.getByRole('dialog', { name: 'Confirm this request' });
    await confirm.waitFor({ timeout: 10_000 });
    assert.equal(JSON.parse(await page.locator('#factor-request').innerText()).path, '/v1/keys/default/orders/versions/1/destroy');
    await confirm.getByRole('button', { name: 'Confirm with security key' }).click();
    await page.locator('.action-result', { hasText: 'KW_QUORUM_REQUIRED' }).waitFor({ timeout: 10_000 });
    await page.getByRole('button', { name: 'Ask for approval' }).click();
    const asked = page.locator('.action-result[data-approval]');
    await asked.waitFor({ timeout: 10_000 });
    const id = (await asked.getAttribute('data-approval'))!;
    const created = await call(s, 'GET', `/v1/approvals/${id}`, { token });
    assert.equal(created.body.requester, 'alice');
    assert.equal(created.body.state, 'pending');
    assert.equal(created.body.request.path, '/v1/keys/default/orders/versions/1/destroy');
    assert.equal((await call(s, 'GET', '/v1/keys/default/orders', { token })).body.versions[0].state, 'scheduled_for_deletion');
    for (const [i, who] of ['bob', 'carol'].entries()) {
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByLabel('Access token').fill(approverTokens[who]!);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('link', { name: 'Security' }).click();
      await page.getByLabel('Also enroll it as my approval key').check();
      await page.getByRole('button', { name: 'Add security key' }).click();
      // Enrolling the approval key is a governance change: a step-up with the key just added.
      const stepUp = page.getByRole('dialog', { name: 'Confirm this request' });
      await stepUp.waitFor({ timeout: 15_000 });
      assert.equal(JSON.parse(await page.locator('#factor-request').innerText()).path.startsWith(`/v1/approvers/${who}/keys/`), true);
      await stepUp.getByRole('button', { name: 'Confirm with security key' }).click();
      await page.locator('#security-status', { hasText: 'It is also your approval key' }).waitFor({ timeout: 15_000 });

      await page.getByRole('link', { name: 'Approvals' }).click();
      const item = page.locator(`section.approval[data-id="${id}"]`);
      await item.waitFor({ timeout: 10_000 });
      assert.match(await item.locator('pre.request').innerText(), /"path": "\/v1\/keys\/default\/orders\/versions\/1\/destroy"/);
      await item.getByRole('button', { name: 'Approve' }).click();
      const dialog = page.getByRole('dialog', { name: 'Approve this request' });
      await dialog.waitFor();
      assert.equal(await page.locator('#factor-hash').innerText(), id);
      assert.match(await dialog.innerText(), new RegExp(`keyward/v1 approval\\\\napprove\\\\n${id}`));
      await dialog.getByRole('button', { name: 'Sign approval with security key' }).click();
      await page.locator('#approvals-status', { hasText: 'Approved' }).waitFor({ timeout: 15_000 });
      if (i === 1) await page.screenshot({ path: join(SHOTS, 'console-approvals.png'), fullPage: true });
      const tally = (await call(s, 'GET', `/v1/approvals/${id}`, { token })).body.tally[0] as { approved_by: string[]; satisfied: boolean };
      assert.deepEqual([...tally.approved_by].sort(), ['bob', 'carol'].slice(0, i + 1));
      assert.equal(tally.satisfied, i === 1);
    }

    // The requester executes it from the inbox: the same request again, with Keyward-Approval and a step-up.
    await signInAsAlice();
    await page.getByRole('link', { name: 'Approvals' }).click();
    const mine = page.locator(`section.approval[data-id="${id}"][data-satisfied="true"]`);
    await mine.waitFor({ timeout: 10_000 });
    await mine.getByRole('button', { name: 'Execute' }).click();
    await confirm.waitFor({ timeout: 10_000 });
    assert.equal(JSON.parse(await page.locator('#factor-request').innerText()).path, '/v1/keys/default/orders/versions/1/destroy');
    await confirm.getByRole('button', { name: 'Confirm with security key' }).click();
    await page.locator('#approvals-status', { hasText: 'Executed keys.destroy' }).waitFor({ timeout: 15_000 });
    assert.equal((await call(s, 'GET', '/v1/keys/default/orders', { token })).body.versions[0].state, 'destroyed');
    assert.equal((await call(s, 'GET', `/v1/approvals/${id}`, { token })).body.state, 'executed');

    // A request withdrawn by its requester: closed, can no longer execute.
    const other = await call(s, 'POST', '/v1/approvals', { token, body: { method: 'POST', path: '/v1/keys/default/orders/versions/2/destroy' } });
    assert.equal(other.status, 201, JSON.stringify(other.body));
    await page.getByRole('link', { name: 'Keys' }).click();
    await page.getByRole('link', { name: 'Approvals' }).click();
    const withdrawn = page.locator(`section.approval[data-id="${other.body.id as string}"]`);
    await withdrawn.getByRole('button', { name: 'Cancel request' }).click();
    await page.locator('#approvals-status', { hasText: 'Cancelled keys.destroy' }).waitFor({ timeout: 10_000 });
    assert.equal(await withdrawn.count(), 0);
    assert.equal((await call(s, 'GET', `/v1/approvals/${other.body.id as string}`, { token })).body.state, 'denied');
    const again = await call(s, 'POST', `/v1/approvals/${other.body.id as string}/cancel`, { token, body: {} });
    assert.equal(again.body.error.code, 'KW_APPROVAL_CLOSED');
    const cancelEvents = ((await call(s, 'GET', '/v1/audit/events?from=0&to=1000', { token })).body.events as { event: string }[])
      .map((e) => JSON.parse(e.event) as { op: string; principal: string; outcome: string }).filter((e) => e.op === 'approvals.cancel');
    assert.deepEqual(cancelEvents.map((e) => [e.principal, e.outcome]), [['alice', 'allowed'], ['alice', 'denied']]);
    assert.deepEqual(problems, []);
  });

  void it('enrolls an authenticator app (TOTP) on the Security page and makes recovery codes', async () => {
    await page.getByRole('link', { name: 'Security' }).click();
    await page.getByRole('button', { name: 'Add authenticator app' }).click();
    // Alice has a security key: adding a factor is a step-up.
    const confirm = page.getByRole('dialog', { name: 'Confirm this request' });
    await confirm.waitFor({ timeout: 10_000 });
    assert.equal(JSON.parse(await page.locator('#factor-request').innerText()).path, '/v1/mfa/totp');
    await confirm.getByRole('button', { name: 'Confirm with security key' }).click();
    const secret = await page.locator('#totp-secret').innerText({ timeout: 10_000 });
    assert.match(await page.locator('#totp-uri').innerText(), new RegExp(`^otpauth://totp/.*secret=${secret}`));
    const pending = page.locator('#factor-list li[data-state="pending"]', { hasText: 'authenticator app' });
    await pending.waitFor({ timeout: 10_000 });
    // A wrong code is refused; the app's code (computed here with otplib from the shown seed) activates it.
    const seed = base32.decode(secret.padEnd(Math.ceil(secret.length / 8) * 8, '='));
    const now = Math.floor(Date.now() / 1000);
    const good = await totpCode({ secret: seed, epoch: now, digits: 6, period: 30, algorithm: 'sha1' });
    await page.getByLabel('Code from the app').fill(good === '000000' ? '111111' : '000000');
    await page.getByRole('button', { name: 'Activate' }).click();
    await page.locator('#totp-result', { hasText: 'KW_MFA_INVALID' }).waitFor({ timeout: 10_000 });
    await page.getByLabel('Code from the app').fill(await totpCode({ secret: seed, epoch: Math.floor(Date.now() / 1000), digits: 6, period: 30, algorithm: 'sha1' }));
    await page.getByRole('button', { name: 'Activate' }).click();
    await page.locator('#security-status', { hasText: 'Authenticator app activated' }).waitFor({ timeout: 10_000 });
    const factors = (await call(s, 'GET', '/v1/mfa/factors', { token })).body.factors as { kind: string; state: string }[];
    assert.deepEqual(factors.map((f) => [f.kind, f.state]).sort(), [['totp', 'active'], ['webauthn', 'active']]);

    // Recovery codes: a step-up (the dialog now offers the app's code too), shown once.
    await page.getByRole('button', { name: 'Make recovery codes' }).click();
    await confirm.waitFor({ timeout: 10_000 });
    assert.equal(await page.locator('#factor-code').count(), 1);
    await confirm.getByRole('button', { name: 'Confirm with security key' }).click();
    await page.locator('#recovery-list li').first().waitFor({ timeout: 10_000 });
    assert.ok(await page.locator('#recovery-list li').count() >= 8);
    assert.ok((await call(s, 'GET', '/v1/mfa/factors', { token })).body.factors.some((f: { kind: string }) => f.kind === 'recovery'));
    assert.deepEqual(problems, []);
  });

  void it('API: no cookie before the second factor; a wrong answer or another token is refused', async () => {
    const first = await s.fastify.inject({ method: 'POST', url: '/v1/console/session', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ token }) });
    assert.equal(first.statusCode, 200);
    assert.equal(first.headers['set-cookie'], undefined);
    const ch = JSON.parse(first.body).second_factor as { id: string; webauthn: { challenge: string } };
    assert.equal(ch.webauthn.challenge, ch.id);
    const answer = async (body: unknown, tok = token) => s.fastify.inject({ method: 'POST', url: '/v1/console/session', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ token: tok, second_factor: body }) });
    // A forged assertion for this challenge.
    const bad = await answer({ id: ch.id, webauthn: { id: 'nope', rawId: 'nope', type: 'public-key', response: { clientDataJSON: 'e30', authenticatorData: 'AA', signature: 'AA' }, clientExtensionResults: {} } });
    assert.equal(bad.statusCode, 401);
    assert.equal(JSON.parse(bad.body).error.code, 'KW_MFA_INVALID');
    assert.equal(bad.headers['set-cookie'], undefined);
    // Another token of the same person cannot answer this token's challenge.
    const other = await call(s, 'POST', '/v1/tokens', { token, body: { principal: 'alice' } });
    const stolen = await answer({ id: ch.id, code: '123456' }, other.body.token as string);
    assert.equal(JSON.parse(stolen.body).error.code, 'KW_MFA_REQUIRED');
    // Both halves of a session.create answer: exactly one of webauthn / code.
    assert.equal((await answer({ id: ch.id })).statusCode, 400);
    const lock = await s.store.getMfaLockout('alice');
    assert.equal(lock?.failures, 1);
    // The routes the console added: in the OpenAPI document; only the requester withdraws a request.
    const doc = (await call(s, 'GET', '/v1/openapi.json')).body as { paths: Record<string, Record<string, { tags: string[] }>> };
    assert.deepEqual(doc.paths['/v1/directory/witnesses']?.get?.tags, ['directory']);
    assert.deepEqual(doc.paths['/v1/approvals/{id}/cancel']?.post?.tags, ['approvals']);
    const req = await call(s, 'POST', '/v1/approvals', { token, body: { method: 'POST', path: '/v1/keys/default/orders/versions/3/destroy' } });
    assert.equal(req.status, 201, JSON.stringify(req.body));
    const foreign = await call(s, 'POST', `/v1/approvals/${req.body.id as string}/cancel`, { token: approverTokens.bob!, body: {} });
    assert.equal(foreign.body.error.code, 'KW_FORBIDDEN');
    assert.equal((await call(s, 'GET', `/v1/approvals/${req.body.id as string}`, { token })).body.state, 'pending');
  });

});
