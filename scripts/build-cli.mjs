#!/usr/bin/env node
/**
 * Bundles the `keyward` command into packages/cli/dist/bundle/ (run by `npm run build`), which
 * packages/cli/bin/keyward.js runs.
 *
 * Why: Node 20 loads ES modules one file at a time, and the CLI's module graph (core, client,
 * directory, tlog, @noble/*, and the server for `keyward server`) is a few hundred files. One
 * entry module plus a handful of chunks start in about half the time (~0.43 s → ~0.23 s for
 * `keyward status` here), which every script that calls `keyward` in a loop pays per call.
 * Code only some commands need (the server, doctor, seal and open) stays in lazily loaded chunks
 * (esbuild code splitting at each dynamic import()).
 *
 * Everything is bundled from the TypeScript sources, so the process holds one copy of each
 * module (one KeywardError class for the CLI and the server code it runs). Native addons stay
 * external; code that finds files of its package does so by package name or by walking up to
 * its package.json (packages/server/src/keyholder/entry.ts, packages/cli/src/lib/package-dir.ts),
 * never by a path relative to the module, which a bundle moves.
 */
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(ROOT, 'packages/cli/dist/bundle');

rmSync(OUT, { recursive: true, force: true });
await build({
  absWorkingDir: ROOT,
  entryPoints: ['packages/cli/src/main.ts'],
  outdir: OUT,
  bundle: true,
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  conditions: ['source'],
  external: ['pkcs11js', 'better-sqlite3', 'cbor-extract', 'pg-native'],
  legalComments: 'none',
  logLevel: 'error',
  // CommonJS dependencies call require(); an ES module has none of its own.
  banner: { js: "import { createRequire as __kwCreateRequire } from 'node:module'; const require = __kwCreateRequire(import.meta.url);" },
});
