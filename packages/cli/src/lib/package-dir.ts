/**
 * The directory of the @keyward/cli package (package.json, data/), found by
 * walking up from this module, so that it holds from src/, from dist/ and
 * from the one-file bundle in dist/bundle/ that `bin/keyward.js` runs
 * (scripts/build-cli.mjs).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let found: string | undefined;

export function cliPackageDir(): string {
  if (found !== undefined) return found;
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    try {
      if ((JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown }).name === '@keyward/cli') return (found = dir);
    } catch {
      // no (readable) package.json here: look further up
    }
    if (dirname(dir) === dir) throw new Error('the @keyward/cli package directory was not found above this module');
  }
}
