/**
 * The web console in headless Chromium (Debian's `chromium`, driven by
 * playwright-core) against a real server: sign in with a token, see the key
 * list and a key's versions, open the audit page and see every event's
 * inclusion proof verified in the browser against the signed checkpoint,
 * see health, sign out; then the /console/seal demo: an identity in
 * IndexedDB (WebCrypto non-extractable where the browser has X25519, and the
 * @keyward/core fallback), a file sealed and opened in the page, and opened
 * again after a reload; the directory through two real `keyward witness`
 * processes (k = 2): a seal to a directory identity only on a head k pinned
 * witnesses cosigned, refusals for a tampered cosignature, a head no longer
 * cosigned (a witness down) and a changed witness configuration (the server
 * restarted with other witnesses), and the explicit re-pin. No
 * Content-Security-Policy violation is allowed.
 *
 * Fails, never skips, when Chromium is missing (scripts/install-test-deps.sh
 * installs it). KW_CHROMIUM overrides the binary.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, test } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startServer, type RunningServer } from '../../src/server.js';
import { call, enrollAdmin, newServer, unsealAll } from '../api/helpers.js';
import { newWitnessKey, startWitnessProcess, tempDir, type WitnessProcess } from '../witness/helpers.js';

const CHROMIUM = process.env.KW_CHROMIUM ?? '/usr/bin/chromium';
/** Screenshots (test artifacts; docs/img/console-*.png are copies), as in webauthn.test.ts. */
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

void test('Chromium is installed', () => {
  assert.ok(existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM}: apt-get install -y chromium, or set KW_CHROMIUM`);
});

void describe('web console in headless Chromium', { timeout: 120_000 }, () => {
  let s: RunningServer;
  let admin: string;
  let shares: Awaited<ReturnType<RunningServer['initialize']>>['shares'];
  /** The directory's (and the audit log's) witnesses: real `keyward witness` processes, k = 2. */
  const witnesses: { name: string; port: number; keyFile: string; vkey: string; proc?: WitnessProcess }[] = [];
  /** The witness processes start in the background while the first tests run; the directory tests wait for them. */
  let witnessesUp: Promise<unknown> = Promise.resolve();
  let browser: Browser | undefined;
  let context: BrowserContext | undefined;
  let page: Page;
  const problems: string[] = [];

  before(async () => {
    // Two witnesses: their keys and ports now; they start once the server has made the logs' keys (init).
    // Until they listen, the server's cosigning rounds fail (and are retried every 200 ms).
    const keyDir = tempDir('kw-console-witness-');
    for (const name of ['w1.console.test', 'w2.console.test']) witnesses.push({ name, port: await freePort(), ...await newWitnessKey(name, keyDir) });
    s = await newServer({
      checkpointMs: 200, directory: { enabled: true },
      witnesses: witnesses.map((w) => ({ name: w.name, url: `http://127.0.0.1:${w.port}`, key: w.vkey })), witnessesK: 2, witnessMs: 200,
    });
    const init = await s.initialize({ shares: 3, threshold: 2 });
    shares = init.shares;
    await unsealAll(s, init.shares.slice(0, 2));
    const logKeys = [(await call(s, 'GET', '/v1/audit/verifier-key')).body.verifier_key as string, (await call(s, 'GET', '/v1/directory/config')).body.head_log_key as string];
    witnessesUp = Promise.all(witnesses.map(async (w) => { w.proc = await startWitnessProcess({ name: w.name, logKeys, keyFile: w.keyFile, vkey: w.vkey, port: w.port }); }));
    witnessesUp.catch(() => undefined); // awaited (and failing) in the directory tests
    admin = await enrollAdmin(s, init.rootToken);
    for (const [url, body] of [
      ['/v1/keys/default/orders', { type: 'aes256', rotation_period_seconds: 90 * 86400 }],
      ['/v1/keys/default/orders/rotate', undefined],
      ['/v1/keys/billing/invoices', { type: 'ed25519' }],
    ] as const) {
      const r = await call(s, 'POST', url, { token: admin, ...(body ? { body } : {}) });
      assert.ok(r.status === 200 || r.status === 201, `${url}: ${JSON.stringify(r.body)}`);
    }
    await new Promise((r) => setTimeout(r, 400)); // the keyholder signs a checkpoint over these
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
    context = await browser.newContext({ viewport: { width: 1100, height: 900 }, acceptDownloads: true });
    // Nothing may leave the server under test.
    const origin = new URL(s.url).origin;
    await context.route((u) => u.origin !== origin && u.protocol !== 'blob:', (route) => { problems.push(`blocked ${route.request().url()}`); return route.abort(); });
    page = await context.newPage();
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      // A 401 is how the page learns it is not signed in (and the test's own check after sign-out).
      if (/status of 401/.test(m.text())) return;
      if (m.type() === 'error' || /Content Security Policy|Refused to/.test(m.text())) problems.push(`console: ${m.text()}`);
    });
  });

  after(async () => {
    await context?.close();
    await browser?.close();
    await s?.close();
    await witnessesUp.catch(() => undefined);
    for (const w of witnesses) await w.proc?.stop();
  });

  /** What the page pinned in IndexedDB (keyward-console / pins / directory). */
  const readPin = () => page.evaluate(() => new Promise<{ configuration: string; witnesses: { logKey: string; k: number; witnesses: { name: string; key: string }[] } | null } | undefined>((resolve, reject) => {
    const r = indexedDB.open('keyward-console');
    r.onerror = () => reject(r.error ?? new Error('IndexedDB unavailable'));
    r.onsuccess = () => {
      const g = r.result.transaction('pins').objectStore('pins').get('directory');
      g.onsuccess = () => { resolve(g.result); r.result.close(); };
      g.onerror = () => reject(g.error ?? new Error('IndexedDB read failed'));
    };
  }));
  /** Waits until k witnesses cosigned the directory's current head (the publisher runs every 200 ms). */
  const witnessedNow = async () => {
    await witnessesUp;
    for (let i = 0; i < 100; i++) {
      const w = await call(s, 'GET', '/v1/directory/witnessed');
      if (w.status === 200 && w.body.tree_size === await s.store.ktTreeSize()) return w.body as { tree_size: number; cosigned: string[] };
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail('the directory head was not cosigned');
  };

  void it('signs in, lists keys with versions, verifies audit events in the browser, shows health, signs out', async () => {
    await page.goto(`${s.url}/console/`);
    await page.getByLabel('Access token').fill(admin);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const orders = page.locator('#keys-table tr[data-key="default/orders"]');
    await orders.waitFor({ timeout: 15_000 });
    assert.match(await orders.innerText(), /aes256[\s\S]*v2[\s\S]*every 90d/);
    assert.equal(await page.locator('#keys-table tr[data-key="billing/invoices"]').count(), 1);
    // The token went once to the server: not in storage, and the session cookie is invisible to script.
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie);
    assert.ok(!stored.includes(admin) && !stored.includes('keyward_session'), stored);
    assert.equal(await page.getByLabel('Access token').count(), 0);

    // Filter, then a key's versions.
    await page.getByLabel('Search').fill('invoices');
    assert.equal(await page.locator('#keys-table tbody tr[data-key]').count(), 1);
    await page.getByLabel('Search').fill('');
    await orders.getByRole('button', { name: 'Versions' }).click();
    const versions = page.locator('table.versions');
    await versions.waitFor();
    assert.match(await versions.innerText(), /v2[\s\S]*enabled[\s\S]*v1[\s\S]*enabled/);
    // Disable, then enable v1 again (not sensitive: no step-up), through the same API routes as the CLI.
    await versions.getByRole('button', { name: 'Disable v1' }).click();
    await page.locator('table.versions tr[data-version="1"][data-state="disabled"]').waitFor({ timeout: 10_000 });
    assert.equal((await call(s, 'GET', '/v1/keys/default/orders', { token: admin })).body.versions[0].state, 'disabled');
    await page.locator('table.versions').getByRole('button', { name: 'Enable v1' }).click();
    await page.locator('table.versions tr[data-version="1"][data-state="enabled"]').waitFor({ timeout: 10_000 });
    assert.equal((await call(s, 'GET', '/v1/keys/default/orders', { token: admin })).body.versions[0].state, 'enabled');

    // Audit: the checkpoint signature and every shown event's inclusion proof, checked by the page.
    await page.getByRole('link', { name: 'Audit' }).click();
    await page.locator('#audit-checkpoint .mark-ok').waitFor({ timeout: 15_000 });
    assert.match(await page.locator('#audit-checkpoint').innerText(), /signature verified in this browser/);
    await page.waitForFunction(() => {
      const rows = Array.from(document.querySelectorAll('#audit-table tr[data-index]'));
      return rows.length > 0 && rows.every((r) => (r as HTMLElement).dataset.verdict !== 'checking');
    }, undefined, { timeout: 20_000 });
    const verdicts = await page.locator('#audit-table tr[data-index]').evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.verdict));
    assert.ok(verdicts.length >= 5, `events shown: ${verdicts.length}`);
    assert.deepEqual([...new Set(verdicts)], ['verified']);
    assert.equal(await page.locator('#audit-table .mark-ok', { hasText: 'verified' }).count(), verdicts.length);
    await page.getByLabel('Operation').selectOption('keys.rotate');
    const ops = await page.locator('#audit-table tr[data-index] td:nth-child(3)').allInnerTexts();
    assert.ok(ops.length >= 1 && ops.every((o) => o === 'keys.rotate'), ops.join(','));

    // Health.
    await page.getByRole('link', { name: 'Health' }).click();
    await page.locator('#health-sealed', { hasText: 'unsealed' }).waitFor({ timeout: 10_000 });
    assert.match(await page.locator('#health-hsm').innerText(), /not configured/);
    // Node list (GET /v1/sys/nodes): this node's heartbeat row, not stale.
    const nodeRow = page.locator('#health-nodes tbody tr[data-stale="false"]');
    await nodeRow.first().waitFor({ timeout: 10_000 });
    assert.match(await nodeRow.first().locator('td').nth(4).innerText(), /up/);
    // Requests by route (from /metrics, second poll after 5 s): the page's own /v1/sys requests, with a rate and p50/p99.
    const sysRow = page.locator('#health-routes tr[data-family="/v1/sys"]');
    await sysRow.waitFor({ timeout: 12_000 });
    const [rate, p50, p99] = await sysRow.locator('td').allInnerTexts();
    assert.ok(Number(rate) > 0, rate);
    assert.match(p50 ?? '', /^\d+\.\d ms$/);
    assert.match(p99 ?? '', /^\d+\.\d ms$/);

    // Keyboard: the skip link is the first stop and leads to the content.
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Skip to content');

    // Sign out: back to the form; the session is gone on the server too.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Access token').waitFor();
    const after = await page.evaluate(async () => (await fetch('/v1/console/session')).status);
    assert.equal(after, 401);
    assert.deepEqual(problems, []);
  });

  void it('seals and opens a file in the page, with the identity kept in IndexedDB (WebCrypto key, and the core fallback)', async () => {
    const data = randomBytes(150_000);
    const want = createHash('sha256').update(data).digest('hex');
    const sealAndOpen = async () => {
      await page.locator('#plain-file').setInputFiles({ name: 'report.bin', mimeType: 'application/octet-stream', buffer: data });
      await page.getByRole('button', { name: 'Seal', exact: true }).click();
      assert.equal(await page.locator('#plain-sha256').innerText({ timeout: 15_000 }), want);
      await page.getByRole('button', { name: 'Open the envelope just sealed' }).click();
      assert.equal(await page.locator('#opened-sha256').innerText({ timeout: 15_000 }), want);
    };

    // The page shows the identity already stored (if any) before a click's new
    // one is ready: wait until the recipient string changes, not just for the text.
    const generate = async () => {
      const before = await page.locator('#own-recipient').inputValue();
      await page.getByRole('button', { name: 'Generate a new identity' }).click();
      await page.waitForFunction((prev) => {
        const now = document.querySelector<HTMLInputElement>('#own-recipient')?.value ?? '';
        return now !== '' && now !== prev;
      }, before, { timeout: 10_000 });
    };

    for (const [query, expected] of [['', null], ['?keys=core', 'core-x25519-wrapped']] as const) {
      await page.goto(`${s.url}/console/seal${query}`);
      await page.locator('main[data-ready="true"]').waitFor();
      await generate();
      const storage = await page.locator('#key-storage').getAttribute('data-storage', { timeout: 10_000 });
      const hasX25519 = await page.evaluate(async () => { try { await crypto.subtle.generateKey({ name: 'X25519' }, false, ['deriveBits']); return true; } catch { return false; } });
      assert.equal(storage, expected ?? (hasX25519 ? 'webcrypto-x25519' : 'core-x25519-wrapped'));
      assert.match(await page.getByLabel('Your recipient string').inputValue(), /^kwx25519/);
      await sealAndOpen();
    }

    // A WebCrypto-held identity survives a reload, and opens an envelope chosen as a file.
    await page.goto(`${s.url}/console/seal`);
    await page.locator('main[data-ready="true"]').waitFor();
    await generate();
    await page.locator('#plain-file').setInputFiles({ name: 'note.txt', mimeType: 'text/plain', buffer: data });
    await page.getByRole('button', { name: 'Seal', exact: true }).click();
    await page.locator('#plain-sha256').waitFor();
    // The download link (a blob: URL; the CSP keeps fetch() to the server's origin).
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#seal-result a[download]').click()]);
    assert.equal(download.suggestedFilename(), 'note.txt.kw');
    const envelope = readFileSync(await download.path());
    assert.equal(envelope.subarray(0, 4).toString('latin1'), 'KWRD');
    const recipient = await page.getByLabel('Your recipient string').inputValue();
    await page.reload();
    await page.locator('main[data-ready="true"]').waitFor();
    assert.equal(await page.getByLabel('Your recipient string').inputValue(), recipient);
    await page.locator('#envelope-file').setInputFiles({ name: 'note.txt.kw', mimeType: 'application/octet-stream', buffer: envelope });
    assert.equal(await page.locator('#opened-sha256').innerText({ timeout: 15_000 }), want);
    assert.deepEqual(problems, []);
  });

  void it('publishes the browser in the directory and seals to the directory identity, with proofs checked in the page', async () => {
    // The operator's part: a one-time enrollment token for user:erin.
    const et = await call(s, 'POST', '/v1/directory/enroll-tokens', { token: admin, body: { name: 'user:erin' } });
    assert.equal(et.status, 201, JSON.stringify(et.body));
    // A non-empty log (a search of an empty one is a 404 the client expects, but the page would log it).
    assert.equal((await call(s, 'PUT', '/v1/directory/groups/group:finance', { token: admin, body: { members: [] } })).status, 200);
    // Cosigned by both witnesses before the page looks (a head never cosigned is a 503 the page would log).
    assert.deepEqual((await witnessedNow()).cosigned, ['w1.console.test', 'w2.console.test']);
    await page.goto(`${s.url}/console/seal`);
    // Nothing pinned yet: the page says so (from IndexedDB, no request).
    await page.locator('#pin[data-state="none"]').waitFor({ timeout: 10_000 });
    await page.locator('main[data-ready="true"]').waitFor();
    // A new identity (made with its directory device keys): wait until the page shows it.
    const previous = await page.getByLabel('Your recipient string').inputValue();
    await page.getByRole('button', { name: 'Generate a new identity' }).click();
    await page.waitForFunction((prev) => {
      const now = document.querySelector<HTMLInputElement>('#own-recipient')?.value ?? '';
      return now !== '' && now !== prev;
    }, previous, { timeout: 10_000 });
    const own = await page.getByLabel('Your recipient string').inputValue();
    await page.getByLabel('Directory identity').fill('user:erin');
    await page.getByLabel('Enrollment token').fill(et.body.token as string);
    await page.getByRole('button', { name: 'Publish this browser' }).click();
    await page.locator('#enrolled', { hasText: 'device browser of user:erin' }).waitFor({ timeout: 15_000 });
    assert.equal(await page.getByLabel('Enrollment token').inputValue(), '');
    // The server holds the browser's public keys only: the device's HPKE key is the page's recipient.
    const erin = await call(s, 'GET', '/v1/directory/identities/user:erin', { token: admin });
    assert.deepEqual(erin.body.devices.map((d: { id: string }) => d.id), ['browser']);
    const { HpkeRecipient } = await import('@keyward/core');
    const pub = Buffer.from(erin.body.devices[0].hpke.key as string, 'base64url');
    assert.equal((await HpkeRecipient.fromPublicKey('x25519', new Uint8Array(pub))).toString(), own);

    // Seal to user:erin: resolved in the page with KEYTRANS proofs, then opened with the browser's key.
    const data = randomBytes(40_000);
    const want = createHash('sha256').update(data).digest('hex');
    const sealTo = async (recipient: string) => {
      await page.getByLabel('Recipient', { exact: true }).fill(recipient);
      await page.locator('#plain-file').setInputFiles({ name: 'for-erin.bin', mimeType: 'application/octet-stream', buffer: data });
      await page.getByRole('button', { name: 'Seal', exact: true }).click();
    };
    await sealTo('user:erin');
    assert.equal(await page.locator('#plain-sha256').innerText({ timeout: 15_000 }), want);
    assert.match(await page.locator('#seal-result').innerText(), /proofs verified in this browser[\s\S]*user:erin: device browser \(x25519\)/);
    // The head those proofs were checked against is cosigned by both pinned witnesses, and fresh.
    const check = page.locator('#seal-result #witness-check[data-verified="true"]');
    assert.equal(Number(await check.getAttribute('data-size')), await s.store.ktTreeSize());
    assert.match(await check.innerText(), /cosigned by 2 of the 2 pinned witnesses \(2 required\), the 2nd freshest cosignature \d+ s old \(at most 24 h\)/);
    assert.deepEqual(await check.locator('#cosigners li').evaluateAll((li) => li.map((l) => (l as HTMLElement).dataset.witness).sort()), ['w1.console.test', 'w2.console.test']);
    await page.getByRole('button', { name: 'Open the envelope just sealed' }).click();
    assert.equal(await page.locator('#opened-sha256').innerText({ timeout: 15_000 }), want);
    // Pinned in this browser on first use (IndexedDB; public values): the log configuration and the witnesses.
    const config = (await call(s, 'GET', '/v1/directory/config')).body;
    const pin = await readPin();
    assert.equal(pin?.configuration, config.configuration);
    assert.deepEqual(pin?.witnesses, { logKey: config.head_log_key, k: 2, witnesses: witnesses.map((w) => ({ name: w.name, key: w.vkey })) });
    assert.equal(await page.locator('#pinned-witnesses').getAttribute('data-k'), '2');
    await page.screenshot({ path: join(SHOTS, 'console-seal-directory.png'), fullPage: true });

    // Refused: an identity that is not in the directory (proven absent), and a tampered search proof.
    await sealTo('user:nobody');
    await page.locator('#seal-result [role="alert"]', { hasText: 'KW_DIR_RECORD_INVALID' }).waitFor({ timeout: 15_000 });
    assert.equal(await page.locator('#plain-sha256').count(), 0);
    await page.route('**/v1/directory/search', async (route) => {
      const r = await route.fetch();
      const body = await r.json() as { name: string; response: string };
      const bytes = Buffer.from(body.response, 'base64url');
      bytes[bytes.length - 40]! ^= 0x01; // inside the proven value / its commitment opening
      await route.fulfill({ response: r, json: { ...body, response: bytes.toString('base64url') } });
    });
    await page.reload();
    await page.locator('main[data-ready="true"]').waitFor();
    await sealTo('user:erin');
    const refused = page.locator('#seal-result [role="alert"]');
    await refused.waitFor({ timeout: 15_000 });
    assert.match(await refused.innerText(), /\((KT|KW_DIR)_[A-Z_]+\)/);
    assert.equal(await page.locator('#plain-sha256').count(), 0);
    await page.unroute('**/v1/directory/search');

    // The fallback identity (?keys=core: seeds under a non-extractable AES key) enrolls and opens too.
    const ft = await call(s, 'POST', '/v1/directory/enroll-tokens', { token: admin, body: { name: 'user:frank' } });
    await page.goto(`${s.url}/console/seal?keys=core`);
    await page.locator('main[data-ready="true"]').waitFor();
    const before = await page.getByLabel('Your recipient string').inputValue();
    await page.getByRole('button', { name: 'Generate a new identity' }).click();
    await page.locator('#key-storage[data-storage="core-x25519-wrapped"]').waitFor({ timeout: 10_000 });
    assert.notEqual(await page.getByLabel('Your recipient string').inputValue(), before);
    await page.getByLabel('Directory identity').fill('user:frank');
    await page.getByLabel('Enrollment token').fill(ft.body.token as string);
    await page.getByRole('button', { name: 'Publish this browser' }).click();
    await page.locator('#enrolled', { hasText: 'device browser of user:frank' }).waitFor({ timeout: 15_000 });
    await sealTo('user:frank');
    assert.equal(await page.locator('#plain-sha256').innerText({ timeout: 15_000 }), want);
    await page.getByRole('button', { name: 'Open the envelope just sealed' }).click();
    assert.equal(await page.locator('#opened-sha256').innerText({ timeout: 15_000 }), want);
    assert.deepEqual(problems, []);
  });

  void it('refuses a head the pinned witnesses did not cosign, on the seal page and the Directory page, and flags a changed witness configuration until re-pinned', async () => {
    const data = randomBytes(1000);
    const sealToErin = async () => {
      await page.goto(`${s.url}/console/seal`);
      await page.locator('main[data-ready="true"]').waitFor();
      await page.getByLabel('Recipient', { exact: true }).fill('user:erin');
      await page.locator('#plain-file').setInputFiles({ name: 'x.bin', mimeType: 'application/octet-stream', buffer: data });
      await page.getByRole('button', { name: 'Seal', exact: true }).click();
    };
    /** The seal is refused with `code` shown to the user, and nothing is sealed. */
    const sealRefused = async (code: string) => {
      await sealToErin();
      await page.locator('#seal-result [role="alert"]', { hasText: `(${code})` }).waitFor({ timeout: 15_000 });
      assert.equal(await page.locator('#plain-sha256').count(), 0);
    };
    /** The Directory page's verdict on the current head (signed in through the form once, then by the session cookie). */
    const directoryVerdict = async () => {
      await page.goto(`${s.url}/console/directory`);
      const form = page.getByLabel('Access token');
      const verdict = page.locator('#dir-verify:not([data-verified="checking"])');
      await form.or(verdict).first().waitFor({ timeout: 15_000 });
      if (await form.count() > 0) {
        await form.fill(admin);
        await page.getByRole('button', { name: 'Sign in' }).click();
      }
      await verdict.waitFor({ timeout: 15_000 });
      return { verified: await verdict.getAttribute('data-verified'), code: await verdict.getAttribute('data-code'), text: await verdict.innerText() };
    };

    // Witnesses up: the Directory page verifies the current head in the browser, cosigned by both.
    await witnessedNow();
    const ok = await directoryVerdict();
    assert.equal(ok.verified, 'true', ok.text);
    assert.match(ok.text, /signature verified against the log configuration pinned in this browser[\s\S]*cosigned by 2 of the 2 pinned witnesses \(2 required\)/);
    assert.deepEqual(await page.locator('#dir-verify #cosigners li').evaluateAll((li) => li.map((l) => (l as HTMLElement).dataset.witness).sort()), ['w1.console.test', 'w2.console.test']);

    // A tampered cosignature in the stored witnessed head (w2's signature bytes): k = 2 is not reached.
    const row = (await s.store.getMeta('directory.witnessed'))!;
    const stored = JSON.parse(row) as { note: string };
    const lines = stored.note.split('\n');
    const i = lines.findIndex((l) => l.startsWith('— w2.console.test '));
    assert.ok(i > 0, stored.note);
    const at = lines[i]!.length - 20;
    lines[i] = lines[i]!.slice(0, at) + (lines[i]![at] === 'A' ? 'B' : 'A') + lines[i]!.slice(at + 1);
    await s.store.setMeta('directory.witnessed', JSON.stringify({ ...stored, note: lines.join('\n') }));
    try {
      await sealRefused('TLOG_BAD_SIGNATURE');
      const bad = await directoryVerdict();
      assert.deepEqual([bad.verified, bad.code], ['false', 'TLOG_BAD_SIGNATURE'], bad.text);
    } finally {
      await s.store.setMeta('directory.witnessed', row);
    }

    // A witness down (k = 2 of 2 cannot be reached) and a newer head: it cannot be checked against a cosigned head.
    await witnesses[1]!.proc!.stop();
    const cosigned = await s.store.ktTreeSize();
    assert.equal((await call(s, 'PUT', '/v1/directory/groups/group:audit', { token: admin, body: { members: [] } })).status, 200);
    assert.ok(await s.store.ktTreeSize() > cosigned);
    await sealRefused('TLOG_NOT_ENOUGH_COSIGNATURES');
    assert.match(await page.locator('#seal-result [role="alert"]').innerText(), new RegExp(`newest witnessed directory head has size ${cosigned}`));
    const down = await directoryVerdict();
    assert.deepEqual([down.verified, down.code], ['false', 'TLOG_NOT_ENOUGH_COSIGNATURES'], down.text);

    // The server's witness configuration changes (restarted on the same address with w1 only, k = 1):
    // the pinned one is k = 2 of w1 and w2, so the page refuses and shows both until the user pins again.
    const port = new URL(s.url).port;
    const dataDir = s.dataDir;
    await s.close();
    s = await startServer({
      data: dataDir, listen: `127.0.0.1:${port}`, logLevel: 'silent', checkpointMs: 200, directory: { enabled: true },
      witnesses: [{ name: witnesses[0]!.name, url: `http://127.0.0.1:${witnesses[0]!.port}`, key: witnesses[0]!.vkey }], witnessesK: 1, witnessMs: 200,
    });
    await unsealAll(s, shares.slice(0, 2));
    await witnessedNow();
    const changed = await directoryVerdict();
    assert.deepEqual([changed.verified, changed.code], ['false', 'KW_CLIENT_WITNESSES_CHANGED'], changed.text);
    await sealRefused('KW_CLIENT_WITNESSES_CHANGED');
    const pinPanel = page.locator('#pin[data-state="changed"][data-code="KW_CLIENT_WITNESSES_CHANGED"]');
    assert.deepEqual(await pinPanel.locator('#pin-changes li').allInnerTexts(), ['k: 2 → 1', 'witness removed: w2.console.test']);
    assert.equal(await pinPanel.locator('#pinned-witnesses').getAttribute('data-k'), '2');
    assert.equal(await pinPanel.locator('#presented-witnesses').getAttribute('data-k'), '1');
    assert.equal((await readPin())?.witnesses?.k, 2, 'nothing is re-pinned without the user');
    await page.screenshot({ path: join(SHOTS, 'console-seal-witnesses-changed.png'), fullPage: true });
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1), 'no horizontal scrolling');
    // Re-pinned explicitly: the seal goes through, on a head cosigned by the one witness now pinned.
    await page.getByRole('button', { name: 'Pin what this server presents now' }).click();
    await page.locator('#pin[data-state="repinned"]').waitFor({ timeout: 10_000 });
    assert.deepEqual((await readPin())?.witnesses, { logKey: (await call(s, 'GET', '/v1/directory/config')).body.head_log_key, k: 1, witnesses: [{ name: witnesses[0]!.name, key: witnesses[0]!.vkey }] });
    await page.getByRole('button', { name: 'Seal', exact: true }).click();
    await page.locator('#plain-sha256').waitFor({ timeout: 15_000 });
    const check = page.locator('#seal-result #witness-check[data-verified="true"]');
    assert.match(await check.innerText(), /cosigned by 1 of the 1 pinned witnesses \(1 required\)/);
    assert.deepEqual(await check.locator('#cosigners li').evaluateAll((li) => li.map((l) => (l as HTMLElement).dataset.witness)), ['w1.console.test']);
    assert.equal((await directoryVerdict()).verified, 'true');
    assert.deepEqual(problems, []);
  });
});
