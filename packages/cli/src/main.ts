/**
 * Entry point of the `keyward` command: global flags, dispatch through the
 * command table, and the one place where failures become exit codes.
 *
 *   0  success
 *   1  failure (error[CODE] on stderr)
 *   2  usage error (error[KW_INVALID_ARGUMENT])
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { groupHelp, type Command, type Entry } from './lib/command.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, exitCodeOf, formatError, isBrokenPipe, toKeywardError, usageError } from './lib/errors.js';
import { processIo, writeAll, type Io } from './lib/io.js';
import { cliPackageDir } from './lib/package-dir.js';

export type { Io } from './lib/io.js';

/**
 * The command table (`commands/index.ts`) is loaded on demand: it imports every
 * command, the key service's with zod and the client among them, which took
 * most of a `keyward seal` start-up (~150 of ~230 ms of module loading here).
 */
async function commandTable(): Promise<readonly Entry[]> {
  return (await import('./commands/index.js')).COMMANDS;
}

/** Flags that `seal`/`open` hand to the key-service wrappers (SERVICE_NAMES in commands/server/kms.ts; `--kms` also covers `--kms-key`). */
const FULL_TABLE_FLAGS = ['--kms', '--profile', '--token-file', '--addr'];

/**
 * The hot path: `keyward seal|open` without a key-service flag and without help
 * runs exactly the plain command (as the kms wrappers do in that case), so
 * only its module is loaded. Anything else goes through the table.
 */
export async function plainSealOrOpen(argv: readonly string[]): Promise<Command | null> {
  const [first, ...rest] = argv;
  if (first !== 'seal' && first !== 'open') return null;
  for (const a of rest) {
    if (a === '--') break;
    if (a === '--help' || a === '-h' || FULL_TABLE_FLAGS.some((f) => a === f || a.startsWith(`${f}=`) || a.startsWith(`${f}-`))) return null;
  }
  return first === 'seal' ? (await import('./commands/seal.js')).seal : (await import('./commands/open.js')).open;
}

/** The package version, read from its package.json. */
export function version(): string {
  const pkg = JSON.parse(readFileSync(join(cliPackageDir(), 'package.json'), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}

const FOOTER = 'Run "keyward COMMAND --help" for the options of a command. Documentation: docs/cli.md';

/**
 * Runs `keyward` with `argv` (without the node and script paths) and
 * resolves to the exit code. Never throws.
 *
 * @example
 * process.exitCode = await main(process.argv.slice(2));
 */
export async function main(argv: readonly string[], io: Io = processIo()): Promise<number> {
  try {
    const plain = await plainSealOrOpen(argv);
    if (plain) return await plain.run(argv.slice(1), io, '');
    return await dispatch(await commandTable(), argv, io, '');
  } catch (e) {
    const err = toKeywardError(e);
    // The reader of stdout went away (`| head`): stop quietly, as tools killed by SIGPIPE do.
    if (isBrokenPipe(err)) return EXIT_FAILURE;
    try {
      await writeAll(io.stderr, formatError(err));
    } catch {
      // stderr is gone; the exit code still tells.
    }
    return exitCodeOf(err);
  }
}

async function dispatch(entries: readonly Entry[], argv: readonly string[], io: Io, prefix: string): Promise<number> {
  const [first, ...rest] = argv;
  const help = () => groupHelp(
    prefix === '' ? `keyward ${version()} — end-to-end encryption: seal data for recipients, open it, sign it` : `keyward ${prefix.trim()}`,
    `keyward ${prefix}COMMAND [options]`,
    entries,
    FOOTER,
  );
  if (first === undefined) {
    await writeAll(io.stderr, help());
    return EXIT_USAGE;
  }
  if (first === '--help' || first === '-h' || (first === 'help' && rest.length === 0)) {
    await writeAll(io.stdout, help());
    return EXIT_OK;
  }
  if (prefix === '' && first === '--version') {
    if (rest.length > 0) usageError('--version takes no arguments');
    await writeAll(io.stdout, `keyward ${version()}\n`);
    return EXIT_OK;
  }
  if (first === 'help') return dispatch(entries, [...rest, '--help'], io, prefix);
  const entry = entries.find((e) => e.name === first);
  if (!entry) {
    const what = first.startsWith('-') ? `unknown option "${first}"` : `unknown command "${first}"`;
    usageError(`${what}; commands: ${entries.map((e) => e.name).join(', ')} (see "keyward ${prefix}--help")`);
  }
  if (entry.kind === 'group') return dispatch(entry.entries, rest, io, `${prefix}${entry.name} `);
  return entry.run(rest, io, prefix);
}
