/**
 * How to start the keyholder process, for `startServer` and for `keyward
 * keyholder serve`: the Node arguments of its entry point and the directory
 * to run it in. Built, it is `dist/keyholder.mjs`, the reproducible one-file
 * bundle of scripts/build-keyholder.mjs (what docs/tee.md measures); in a
 * source checkout, `mode: 'source'` runs the TypeScript under tsx.
 *
 * The package is found by its name, not relative to this module, so this
 * holds wherever the server's code runs from: src/, dist/, or bundled into
 * the `keyward` CLI (scripts/build-cli.mjs).
 *
 * @example
 * const { args, cwd } = keyholderEntry();
 * spawn(process.execPath, [...args, '--listen', 'tcp:0.0.0.0:7300', …], { cwd });
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** The directory of the installed @keyward/server package (package.json, dist/, src/ in a checkout). */
export function serverPackageDir(): string {
  return dirname(createRequire(import.meta.url).resolve('@keyward/server/package.json'));
}

/**
 * The default: from source the keyholder runs under tsx, unless KEYWARD_RUN_BUILT=1 (the test
 * command, which builds dist/ just before it runs: a built keyholder starts in a fraction of the
 * CPU time); built code runs the bundle.
 */
export function defaultKeyholderMode(): 'dist' | 'source' {
  return import.meta.url.endsWith('.ts') && process.env.KEYWARD_RUN_BUILT !== '1' ? 'source' : 'dist';
}

export function keyholderEntry(mode: 'dist' | 'source' = defaultKeyholderMode()): { args: string[]; cwd: string } {
  const dir = serverPackageDir();
  return {
    args: mode === 'source' ? ['--conditions=source', '--import', 'tsx', join(dir, 'src', 'keyholder', 'process.ts')] : [join(dir, 'dist', 'keyholder.mjs')],
    cwd: dir,
  };
}
