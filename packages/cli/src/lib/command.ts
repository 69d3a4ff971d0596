/**
 * What a command is: a name, a flag schema, help text and a `run`. Commands
 * live one per file in `src/commands/` and are listed in one table
 * (`src/commands/index.ts`); groups (`keyward keys rotate`, …) nest the same
 * shape, so server commands slot in without touching the dispatcher.
 */
import { parseArgs, type FlagsSpec, type ParsedArgs } from './args.js';
import { EXIT_OK } from './errors.js';
import { StdinClaim, writeAll, type Io } from './io.js';

/** Per-run state handed to a command. */
export interface RunContext {
  readonly io: Io;
  /** Standard input feeds at most one thing per run. */
  readonly stdin: StdinClaim;
}

const HELP_FLAG = { help: { type: 'boolean', short: 'h', help: 'show this help and exit' } } as const satisfies FlagsSpec;

export interface CommandDef<S extends FlagsSpec> {
  readonly name: string;
  readonly summary: string;
  /** Usage lines, each without the leading `keyward <name>`. */
  readonly usage: readonly string[];
  readonly flags: S;
  /** Paragraphs shown after the options. */
  readonly details?: string;
  readonly examples?: readonly string[];
  /** Operands that may begin with `-` (random base64url ids): matching words are never read as options. */
  readonly operand?: RegExp;
  run(args: ParsedArgs<S & typeof HELP_FLAG>, ctx: RunContext): Promise<number>;
}

export interface Command {
  readonly kind: 'command';
  readonly name: string;
  readonly summary: string;
  /** The flag schema, `--help` included. */
  readonly flags: FlagsSpec;
  help(prefix: string): string;
  run(argv: readonly string[], io: Io, prefix: string): Promise<number>;
}

export interface CommandGroup {
  readonly kind: 'group';
  readonly name: string;
  readonly summary: string;
  readonly entries: readonly Entry[];
}

export type Entry = Command | CommandGroup;

/** Declares a command; `--help`/`-h` is added to its flags. */
export function defineCommand<S extends FlagsSpec>(def: CommandDef<S>): Command {
  const flags: S & typeof HELP_FLAG = { ...def.flags, ...HELP_FLAG };
  return {
    kind: 'command',
    name: def.name,
    summary: def.summary,
    flags,
    help: (prefix) => renderHelp(def, flags, prefix),
    async run(argv, io, prefix) {
      const args = parseArgs(argv, flags, `${prefix}${def.name}`, def.operand);
      if (args.flags.help) {
        await writeAll(io.stdout, renderHelp(def, flags, prefix));
        return EXIT_OK;
      }
      return def.run(args, { io, stdin: new StdinClaim() });
    },
  };
}

/** Declares a group of subcommands (`keyward keys …`). */
export function defineGroup(name: string, summary: string, entries: readonly Entry[]): CommandGroup {
  return { kind: 'group', name, summary, entries };
}

function renderHelp<S extends FlagsSpec>(def: CommandDef<S>, flags: FlagsSpec, prefix: string): string {
  const full = `keyward ${prefix}${def.name}`;
  const lines = [`${full} — ${def.summary}`, '', 'Usage:', ...def.usage.map((u) => `  ${full} ${u}`.trimEnd()), '', 'Options:'];
  const rows = Object.entries(flags).map(([name, f]) => {
    const left = `${f.short ? `-${f.short}, ` : '    '}--${name}${f.type === 'string' ? ` ${f.value ?? 'VALUE'}` : ''}`;
    return [left, f.help + (f.multiple ? ' (repeatable)' : '')] as const;
  });
  const width = Math.min(34, Math.max(...rows.map(([l]) => l.length)) + 2);
  for (const [l, r] of rows) lines.push(l.length + 2 > width ? `  ${l}\n  ${' '.repeat(width)}${r}` : `  ${l.padEnd(width)}${r}`);
  if (def.details) lines.push('', ...def.details.trim().split('\n'));
  if (def.examples?.length) lines.push('', 'Examples:', ...def.examples.map((e) => `  ${e}`));
  return lines.join('\n') + '\n';
}

/** The help of a group: its entries and their summaries. */
export function groupHelp(title: string, usage: string, entries: readonly Entry[], footer: string): string {
  const width = Math.max(...entries.map((e) => e.name.length)) + 2;
  return [
    title, '', 'Usage:', `  ${usage}`, '', 'Commands:',
    ...entries.map((e) => `  ${e.name.padEnd(width)}${e.summary}`),
    '', footer,
  ].join('\n') + '\n';
}
