/**
 * @keyward/tlog in a real browser, since the web console verifies proofs
 * there: esbuild bundles src/index.ts for the browser (any Node built-in fails
 * the build), headless Chromium (playwright-core) runs it on a blank page with
 * all network blocked, and the page verifies the vectors and reports error
 * codes. Results must equal those computed in Node.
 *
 * Fails, never skips, when Chromium is missing (CI installs it). Set
 * KW_CHROMIUM to use another binary.
 */
import { after, before, describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { chromium, type Browser, type Page } from 'playwright-core';
import * as node from '../src/index.js';
import { hex, readVector, toHex, type CosignatureVector, type SignedNoteCase } from './helpers.js';

type Tlog = typeof node;
declare global {
  interface Window {
    tlog: Tlog;
  }
}

const CHROMIUM = process.env.KW_CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-dev-shm-usage'];
const entry = fileURLToPath(new URL('../src/index.ts', import.meta.url));

/** Fails the build on any Node built-in (`node:*` or bare, e.g. `crypto`). */
const noNodeBuiltins: Plugin = {
  name: 'no-node-builtins',
  setup(b) {
    const bare = builtinModules.filter((m) => !m.startsWith('_')).map((m) => m.replace(/[/\\^$.*+?()[\]{}|]/g, '\\$&'));
    const filter = new RegExp(`^(node:.*|(${bare.join('|')})(/.*)?)$`);
    b.onResolve({ filter }, (a) => ({ errors: [{ text: `Node built-in "${a.path}" imported by ${a.importer} would break the browser build` }] }));
  },
};

interface Tree {
  leaf_hashes: string[];
  inclusion: { leaf_index: number; tree_size: number; leaf_hash: string; root: string; proof: string[] }[];
  consistency: { size1: number; size2: number; root1: string; root2: string; proof: string[] }[];
}

void test('Chromium is installed', () => {
  assert.ok(existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM}: install it (apt-get install -y chromium) or set KW_CHROMIUM`);
});

void describe('@keyward/tlog in headless Chromium', { timeout: 60_000 }, () => {
  let browser: Browser | undefined;
  let page: Page;
  const pageErrors: string[] = [];

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM}`);
    const out = await build({
      entryPoints: [entry],
      bundle: true,
      format: 'iife',
      globalName: 'tlog',
      platform: 'browser',
      target: 'es2022',
      conditions: ['source', 'browser'],
      plugins: [noNodeBuiltins],
      write: false,
      logLevel: 'silent',
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
    const context = await browser.newContext();
    await context.route(() => true, (route) => {
      pageErrors.push(`blocked request to ${route.request().url()}`);
      return route.abort();
    });
    page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
    await page.setContent('<!doctype html><meta charset="utf-8"><title>tlog</title>');
    // tsx compiles this file with esbuild's keepNames, so functions passed to
    // page.evaluate refer to its `__name` helper: give the page an identity one.
    await page.addScriptTag({ content: 'var __name = (f) => f;' });
    await page.addScriptTag({ content: out.outputFiles[0]!.text });
    await page.waitForFunction(() => typeof window.tlog === 'object');
  });

  after(async () => {
    await browser?.close();
    assert.deepEqual(pageErrors, []);
  });

  void it('verifies every RFC 6962 inclusion and consistency proof of the 8-leaf tree', async () => {
    const tree = readVector<Tree>('merkle/rfc6962-8-leaves.json');
    const result = await page.evaluate((t: Tree) => {
      const { verifyInclusion, verifyConsistency, inclusionProof, consistencyProof } = window.tlog;
      const h = (s: string) => Uint8Array.from(s.match(/../g) ?? [], (x) => parseInt(x, 16));
      const x = (b: Uint8Array) => Array.from(b, (v) => v.toString(16).padStart(2, '0')).join('');
      const leaves = t.leaf_hashes.map(h);
      let ok = 0;
      for (const c of t.inclusion) {
        verifyInclusion(h(c.leaf_hash), c.leaf_index, c.tree_size, c.proof.map(h), h(c.root));
        if (inclusionProof(c.leaf_index, leaves, c.tree_size).map(x).join() === c.proof.join()) ok++;
      }
      for (const c of t.consistency) {
        verifyConsistency(c.size1, c.size2, h(c.root1), h(c.root2), c.proof.map(h));
        if (consistencyProof(c.size1, c.size2, leaves).map(x).join() === c.proof.join()) ok++;
      }
      return ok;
    }, tree);
    assert.equal(result, tree.inclusion.length + tree.consistency.length);
  });

  void it('reports failures as TlogError codes', async () => {
    const codes = await page.evaluate(() => {
      const { verifyInclusion, verifyConsistency, parseNote, leafHash } = window.tlog;
      const l = leafHash(new Uint8Array([1]));
      const code = (f: () => void) => {
        try {
          f();
          return 'none';
        } catch (e) {
          return (e as { name: string; code: string }).name + ':' + (e as { code: string }).code;
        }
      };
      return [
        code(() => verifyInclusion(l, 0, 2, [l], l)),
        code(() => verifyInclusion(l.subarray(1), 0, 1, [], l)),
        code(() => verifyConsistency(1, 1, l, leafHash(new Uint8Array([2])), [])),
        code(() => parseNote(new Uint8Array([0x61, 0xff, 0x0a, 0x0a]))),
      ];
    });
    assert.deepEqual(codes, ['TlogError:TLOG_BAD_PROOF', 'TlogError:TLOG_INVALID_ARGUMENT', 'TlogError:TLOG_INCONSISTENT', 'TlogError:TLOG_MALFORMED_NOTE']);
  });

  void it('opens the sum.golang.org checkpoint and the constructed cosignature', async () => {
    const multisig = readVector<{ cases: SignedNoteCase[] }>('checkpoint/signed-notes.json').cases.find((c) => c.name === 'sum-golang-org-checkpoint-multisig')!;
    const cos = readVector<CosignatureVector>('checkpoint/cosignature-v1-constructed.json');
    const r = await page.evaluate(
      ([m, c]) => {
        const { openCheckpoint, newVerifier, requireCosignatures, newCosignatureVerifier, addSignatures, newCosigner } = window.tlog;
        const opened = openCheckpoint(m.note, m.verifier_keys!.map(newVerifier), { origin: 'go.sum database tree' });
        const cosigned = requireCosignatures(c.cosigned_note, [newCosignatureVerifier(c.vkey_type04_cosignature)], 1);
        const logOnly = c.cosigned_note.split('\n').filter((l) => !l.startsWith('\u2014 Wit1 ')).join('\n');
        const again = addSignatures(logOnly, [newCosigner(c.construction.cosigner_private_key, { now: () => c.timestamp })]);
        return { size: opened.checkpoint.size, verified: opened.verified.length, ignored: opened.unverified.length, ts: cosigned.cosignatures[0]!.timestamp, same: again === c.cosigned_note };
      },
      [multisig, cos] as const,
    );
    assert.deepEqual(r, { size: 6476701, verified: 4, ignored: 2, ts: cos.timestamp, same: true });
  });

  void it('builds the same frontier and signs the same note as Node', async () => {
    const seedHex = '07'.repeat(32);
    const leavesHex = Array.from({ length: 37 }, (_, i) => toHex(node.leafHash(new TextEncoder().encode(`e${i}`))));
    const inPage = await page.evaluate(
      ([ls, sh]) => {
        const { Frontier, signCheckpoint, ed25519Signer } = window.tlog;
        const h = (s: string) => Uint8Array.from(s.match(/../g) ?? [], (x) => parseInt(x, 16));
        const f = Frontier.fromLeaves(ls.map(h));
        const note = signCheckpoint(ed25519Signer('example.com/audit', h(sh)), { origin: 'example.com/audit', size: f.size, root: f.root() });
        return { bytes: Array.from(f.toBytes()), note };
      },
      [leavesHex, seedHex] as const,
    );
    const f = node.Frontier.fromLeaves(leavesHex.map(hex));
    assert.deepEqual(inPage.bytes, Array.from(f.toBytes()));
    assert.equal(inPage.note, node.signCheckpoint(node.ed25519Signer('example.com/audit', hex(seedHex)), { origin: 'example.com/audit', size: f.size, root: f.root() }));
  });
});
