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
import { join } from 'node:path';
import { NODE_BUNDLE } from './build-keyholder.mjs';

const OUT = join(NODE_BUNDLE.absWorkingDir, 'packages/cli/dist/bundle');

rmSync(OUT, { recursive: true, force: true });
await build({ ...NODE_BUNDLE, entryPoints: ['packages/cli/src/main.ts'], outdir: OUT, splitting: true });
