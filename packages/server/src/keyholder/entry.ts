/**
 * How to start the keyholder process from another package (`keyward
 * keyholder serve`): the Node arguments of its entry point, as
 * `startServer` spawns it (the TypeScript source under tsx in a source
 * checkout, the bundle dist/keyholder.mjs when built), and the directory to run
 * it in.
 *
 * @example
 * const { args, cwd } = keyholderEntry();
 * spawn(process.execPath, [...args, '--listen', 'tcp:0.0.0.0:7300', …], { cwd });
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));

export function keyholderEntry(): { args: string[]; cwd: string } {
  const fromSource = import.meta.url.endsWith('.ts');
  return {
    // Built: dist/keyholder.mjs, the reproducible bundle (scripts/build-keyholder.mjs), as `keyward server` runs it.
    args: fromSource ? ['--conditions=source', '--import', 'tsx', join(HERE, 'process.ts')] : [join(HERE, '..', 'keyholder.mjs')],
    cwd: join(HERE, '..', '..'),
  };
}
