/**
 * How tests start Keyward's own programs as child processes. The test
 * command (scripts/test.sh) builds dist/ just before it runs the tests and
 * sets KEYWARD_RUN_BUILT=1: children then run the built JavaScript, as users
 * run it, in about half the CPU time of the TypeScript sources under tsx.
 * Without it (one test file run after an edit, no build) they run the sources.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { keyholderEntry } from '../src/keyholder/entry.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
/** True when children run the built code (dist/). */
export const RUN_BUILT = process.env.KEYWARD_RUN_BUILT === '1';
/** Node arguments that load TypeScript sources. */
export const TSX_ARGS = ['--conditions=source', '--import', 'tsx'];

/** Node arguments that run the keyholder process (its own arguments follow). */
export const KEYHOLDER_ARGS: readonly string[] = keyholderEntry(RUN_BUILT ? 'dist' : 'source').args;

/** Node arguments that run `keyward` (its arguments follow). */
export const CLI_ARGS: readonly string[] = RUN_BUILT
  ? [join(REPO, 'packages/cli/bin/keyward.js')]
  : [...TSX_ARGS, join(REPO, 'packages/server/test/hsm/kw-cli.mjs')];

/** Node arguments that run test/server-runner.mjs (its arguments follow). */
export const SERVER_RUNNER_ARGS: readonly string[] = [...(RUN_BUILT ? [] : TSX_ARGS), join(REPO, 'packages/server/test/server-runner.mjs')];
