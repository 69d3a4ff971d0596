/**
 * @keyward/core in a real browser: esbuild bundles src/index.ts for the browser
 * (`#platform` → src/platform/web.ts, no Node built-in allowed), headless
 * Chromium (Debian's `chromium`, driven by playwright-core) loads it from a
 * local server, and envelopes cross between the page (web platform) and this
 * process (Node platform) in both directions. The page-side code is harness.ts.
 *
 * Fails, never skips, when Chromium is missing (CI installs it:
 * scripts/install-test-deps.sh). Set KW_CHROMIUM to use another binary.
 */
import { after, before, describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Metafile, type Plugin } from 'esbuild';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { Decrypter } from 'age-encryption';
import {
  PassphraseRecipient, SigningKey, age, armor, generateIdentity, isArmored, open, parseIdentity, parseVerifyingKey, seal,
  type KemType,
} from '@keyward/core';
import { platform as nodePlatform } from '#platform';
import type { Harness } from './harness.js';

const CHROMIUM = process.env.KW_CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--no-first-run', '--disable-quic', '--disable-sync', '--disable-dev-shm-usage',
];
const KEMS: readonly KemType[] = ['x25519', 'xwing', 'p256'];
const CONTEXT = { table: 'orders', tenant: 'zürich-東京', column: 'card' };

const coreDir = fileURLToPath(new URL('../../', import.meta.url));
const coreEntry = join(coreDir, 'src/index.ts');
const harnessEntry = fileURLToPath(new URL('./harness.ts', import.meta.url));

const fromB64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));
const sha256Hex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Fails the build on any Node built-in (`node:*` or bare, e.g. `crypto`), with the importer named. */
const noNodeBuiltins: Plugin = {
  name: 'no-node-builtins',
  setup(b) {
    const bare = builtinModules.filter((m) => !m.startsWith('_')).map((m) => m.replace(/[/\\^$.*+?()[\]{}|]/g, '\\$&'));
    const filter = new RegExp(`^(node:.*|(${bare.join('|')})(/.*)?)$`);
    b.onResolve({ filter }, (a) => ({ errors: [{ text: `Node built-in "${a.path}" imported by ${a.importer} would break the browser build` }] }));
  },
};

interface Bundle { files: Map<string, string>; metafile: Metafile; ms: number }

async function bundle(): Promise<Bundle> {
  const t0 = performance.now();
  const result = await build({
    entryPoints: { core: coreEntry, harness: harnessEntry },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    conditions: ['source', 'browser'],
    // The harness imports the package by name; the page's import map points it at core.js.
    external: ['@keyward/core'],
    plugins: [noNodeBuiltins],
    outdir: join(coreDir, '.browser-test-out'), // never written (write: false)
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  const files = new Map(result.outputFiles.map((f) => [`/${f.path.split('/').pop()!}`, f.text]));
  return { files, metafile: result.metafile, ms: performance.now() - t0 };
}

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>keyward core in the browser</title>
<script type="importmap">{ "imports": { "@keyward/core": "/core.js" } }</script>
<script type="module" src="/harness.js"></script>
`;

function serve(files: Map<string, string>): Promise<{ server: Server; origin: string }> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    const body = path === '/' ? PAGE : files.get(path);
    if (body === undefined) { res.writeHead(404).end(); return; }
    res.writeHead(200, {
      'content-type': path === '/' ? 'text/html; charset=utf-8' : 'text/javascript; charset=utf-8',
      'cache-control': 'no-store',
    }).end(body);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const addr = server.address();
      if (addr === null || typeof addr === 'string') { reject(new Error('no server address')); return; }
      resolve({ server, origin: `http://127.0.0.1:${addr.port}` });
    });
  });
}

// Its own test, so a missing browser shows up as a plain failure (the suite below then fails in `before`).
void test('Chromium is installed', () => {
  assert.ok(existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM}: install it (apt-get install -y chromium) or set KW_CHROMIUM`);
});

void describe('@keyward/core in headless Chromium', { timeout: 60_000 }, () => {
  let built: Bundle;
  let server: Server | undefined;
  let browser: Browser | undefined;
  let context: BrowserContext | undefined;
  let page: Page;
  const pageErrors: string[] = [];
  const timings: Record<string, number> = {};

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM}: install it (apt-get install -y chromium) or set KW_CHROMIUM`);
    built = await bundle();
    timings.bundle = built.ms;
    const served = await serve(built.files);
    server = served.server;

    const t0 = performance.now();
    // Playwright gives the browser a fresh temporary profile and removes it on close.
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
    context = await browser.newContext();
    page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
    page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(`console: ${m.text()}`); });
    // Nothing may leave 127.0.0.1.
    await context.route((url) => url.hostname !== '127.0.0.1', (route) => {
      pageErrors.push(`blocked request to ${route.request().url()}`);
      return route.abort();
    });
    await page.goto(served.origin + '/');
    try {
      await page.waitForFunction(() => typeof window.harness === 'object', undefined, { timeout: 15_000 });
    } catch (e) {
      throw new Error(`the bundle did not load in the page: ${pageErrors.join('; ') || String(e)}`);
    }
    timings.launch = performance.now() - t0;
  });

  after(async () => {
    await context?.close();
    await browser?.close();
    await new Promise<void>((resolve) => { if (server) server.close(() => resolve()); else resolve(); });
    if (pageErrors.length) console.error(pageErrors.join('\n'));
    console.log(`timings (ms): ${JSON.stringify(Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, Math.round(v)])))}`);
  });

  void it('bundles core for the browser: web platform, no Node built-ins', () => {
    const out = Object.entries(built.metafile.outputs).find(([p]) => p.endsWith('/core.js'));
    assert.ok(out, 'core.js output missing');
    const inputs = Object.keys(out[1].inputs);
    assert.ok(inputs.some((p) => p.endsWith('src/platform/web.ts')), 'platform/web.ts is not in the bundle');
    assert.ok(!inputs.some((p) => p.endsWith('src/platform/node.ts')), 'platform/node.ts leaked into the bundle');
    assert.ok(!inputs.some((p) => p.includes('/src/node/')), 'src/node/ leaked into the bundle');
    // Every import of the bundle was resolved into it (harness.js alone imports @keyward/core).
    assert.deepEqual(out[1].imports.filter((i) => i.external), []);
    assert.doesNotMatch(built.files.get('/core.js')!, /\bfrom\s*["']node:|\bimport\(\s*["']node:/);
    // The Node side of the comparisons really runs on the Node adapter.
    assert.equal(nodePlatform.name, 'node');
  });

  void it('runs in a secure context with WebCrypto and without Node globals', async () => {
    const env = await page.evaluate(() => window.harness.environment());
    assert.equal(env.secureContext, true);
    assert.equal(env.subtle, true);
    assert.equal(env.hasProcess, false);
    assert.equal(env.hasBuffer, false);
    assert.match(env.userAgent, /Chrom/);
  });

  void it('sealed in the browser (x25519, xwing, p256 + a Node recipient, signed, context) opens in Node', async () => {
    const t0 = performance.now();
    const nodeId = await generateIdentity('x25519');
    const args: Parameters<Harness['sealForNode']> = [(await nodeId.recipient()).toString(), 200_000, CONTEXT];
    const r = await page.evaluate((a) => window.harness.sealForNode(...a), args);
    const envelope = fromB64(r.envelope);
    const plaintext = fromB64(r.plaintext);
    assert.equal(plaintext.length, 200_000);
    assert.deepEqual(r.selfOpened, [...KEMS]);
    const verify = [parseVerifyingKey(r.verifyingKey)];

    const identities = [...await Promise.all(r.identities.map(async (i) => {
      const id = await parseIdentity(i.secret);
      assert.equal(id.type, i.type);
      // Key strings derived in Node agree with the page's.
      assert.equal((await id.recipient()).toString(), i.recipient);
      return id;
    })), nodeId];
    assert.deepEqual(identities.map((i) => i.type), [...KEMS, 'x25519']);
    for (const id of identities) {
      const o = await open(envelope, { identities: [id], context: CONTEXT, verify });
      assert.deepEqual(o.plaintext, plaintext, `plaintext differs when opened with ${id.type}`);
      assert.equal(o.openedBy, id.type);
      assert.equal(o.aead, 'aes-256-gcm');
      assert.deepEqual(o.context, Object.entries(CONTEXT));
      assert.deepEqual(o.signature && { alg: o.signature.alg, verified: o.signature.verified }, { alg: 'ed25519', verified: true });
    }
    await assert.rejects(open(envelope, { identities: [nodeId], context: { table: 'other' }, verify }), { code: 'KW_CONTEXT_MISMATCH' });
    timings.browserToNode = performance.now() - t0;
  });

  void it('sealed in Node (x25519, xwing, p256; passphrase; chacha20-poly1305, ed25519-mldsa65, armor) opens in the browser', async () => {
    const t0 = performance.now();
    const ids = await Promise.all(KEMS.map((t) => generateIdentity(t)));
    const signer = await SigningKey.generate('ed25519-mldsa65');
    const plaintext = new Uint8Array(randomBytes(150_000));
    const digest = sha256Hex(plaintext);
    const common = { aead: 'chacha20-poly1305', signer, context: CONTEXT } as const;
    const byKey = armor(await seal(plaintext, { ...common, recipients: await Promise.all(ids.map((i) => i.recipient())) }));
    // NFC "café" sealed, NFD "café" typed in the browser: both normalise to the same bytes.
    const byPassphrase = armor(await seal(plaintext, { ...common, recipients: [new PassphraseRecipient('café ✓ keyward', 10)] }));
    assert.ok(isArmored(byKey) && isArmored(byPassphrase));
    const base = { verifyingKey: signer.verifyingKey.toString(), context: CONTEXT };

    const cases = [
      { args: { ...base, envelope: byKey, identities: ids.map((i) => i.toString()) }, openedBy: [...KEMS] },
      { args: { ...base, envelope: byPassphrase, passphrase: 'cafe\u0301 ✓ keyward' }, openedBy: ['scrypt'] },
    ];
    for (const c of cases) {
      const r = await page.evaluate((a) => window.harness.openFromNode(a), c.args);
      assert.deepEqual(r.opened.map((o) => o.openedBy), c.openedBy);
      for (const o of r.opened) {
        assert.equal(o.sha256, digest, `plaintext differs when opened in the browser by ${o.openedBy}`);
        assert.equal(o.length, plaintext.length);
        assert.equal(o.aead, 'chacha20-poly1305');
        assert.deepEqual(o.context, Object.entries(CONTEXT));
        assert.equal(o.signature?.alg, 'ed25519-mldsa65');
        assert.equal(o.signature?.verified, true);
      }
      assert.equal(r.wrongSigner, 'KW_SIGNER_UNKNOWN');
      assert.equal(r.wrongContext, 'KW_CONTEXT_MISMATCH');
    }
    timings.nodeToBrowser = performance.now() - t0;
  });

  void it('stream API in the browser: 300 KB round trip, tamper detection', async () => {
    const t0 = performance.now();
    const r = await page.evaluate((n) => window.harness.streamRoundTrip(n), 300_000);
    assert.equal(r.equal, true, 'stream round trip changed the plaintext');
    assert.equal(r.openedBy, 'xwing');
    assert.ok(r.envelopeLength > 300_000);
    assert.deepEqual(r.tampered, { pipe: 'KW_PAYLOAD_AUTH_FAILED', done: 'KW_PAYLOAD_AUTH_FAILED', open: 'KW_PAYLOAD_AUTH_FAILED' });
    // The stream-sealed envelope is an ordinary envelope for Node.
    const o = await open(fromB64(r.envelope), { identities: [await parseIdentity(r.identity)] });
    assert.equal(sha256Hex(o.plaintext), r.plaintextSha256);
    timings.stream = performance.now() - t0;
  });

  void it('age v1 in the browser: round trips, opened in Node by core and by typage, and the reverse', async (t) => {
    const t0 = performance.now();
    const hasAge = await page.evaluate(() => typeof window.kw.age?.ageSeal === 'function' && typeof window.kw.age.ageOpen === 'function');
    if (!hasAge) { t.skip('core does not export age.ageSeal / age.ageOpen'); return; }

    const nodeId = age.generateAgeIdentity('mlkem768x25519');
    const nodePlain = new Uint8Array(randomBytes(100_000));
    const nodeFile = await age.ageSeal(nodePlain, { recipients: [nodeId.recipient()] }, { armor: true });
    const fromNode = { file: Buffer.from(nodeFile).toString('base64'), identity: nodeId.text, plaintextSha256: sha256Hex(nodePlain) };

    const r = await page.evaluate((a) => window.harness.ageRoundTrip(...a), [150_000, fromNode] as Parameters<Harness['ageRoundTrip']>);
    assert.deepEqual(r.roundTrips, {
      x25519: true, 'x25519 armored': true, mlkem768x25519: true, 'mlkem768x25519 armored': true, scrypt: true,
    });
    assert.equal(r.fromNodeSha256, fromNode.plaintextSha256, 'the browser opened a different plaintext than Node sealed');

    const plaintext = fromB64(r.plaintext);
    for (const f of r.files) {
      const file = fromB64(f.file);
      const opts = f.identity !== undefined ? { identities: [age.parseAgeIdentity(f.identity)] } : { passphrase: f.passphrase! };
      assert.deepEqual(await age.ageOpen(file, opts), plaintext, `Node core could not open the browser's ${f.kind} age file`);
      // An independent implementation (typage) agrees.
      const d = new Decrypter();
      if (f.identity !== undefined) d.addIdentity(f.identity); else d.addPassphrase(f.passphrase!);
      assert.deepEqual(await d.decrypt(file), plaintext, `typage could not open the browser's ${f.kind} age file`);
    }
    timings.age = performance.now() - t0;
  });

  void it('the page reported no errors', () => {
    assert.deepEqual(pageErrors, []);
  });
});
