/**
 * The command-line schema and its parser. Each command declares its flags as
 * a `FlagsSpec`; the parsed values are typed from that declaration, and the
 * same declaration renders the `--help` text, so flags, types and help cannot
 * drift apart.
 *
 * Syntax (getopt-like, as age and most Unix tools read it):
 *   --name value   --name=value   -n value   -nvalue   -abc (boolean cluster)
 *   `--` ends the flags; a lone `-` is a positional (stdin/stdout).
 * A string flag always takes the next word as its value, even one starting
 * with `-` (so `-o -` means stdout). Unknown flags, a missing value, a value
 * given to a boolean flag and a repeated single-value flag are usage errors.
 * A command whose operands are random identifiers (base64url may begin with
 * `-`) passes `operand`: a word matching it is an operand wherever it stands,
 * so `keyward approvals show -2Xb…` needs no `--`.
 */
import { usageError } from './errors.js';

/** One flag of a command. */
export interface FlagSpec {
  readonly type: 'boolean' | 'string';
  /** One-letter alias, without the dash. */
  readonly short?: string;
  /** String flags only: may be repeated; values are kept in order. */
  readonly multiple?: boolean;
  /** Placeholder of the value in the help text, e.g. `FILE`. */
  readonly value?: string;
  readonly help: string;
}

/** The flags of a command, keyed by long name (without `--`). */
export type FlagsSpec = Readonly<Record<string, FlagSpec>>;

type ValueOf<F extends FlagSpec> = F['type'] extends 'boolean' ? boolean : F['multiple'] extends true ? string[] : string | undefined;

/** The parsed values: booleans default to false, repeatable flags to [], others to undefined. */
export type FlagValues<S extends FlagsSpec> = { -readonly [K in keyof S]: ValueOf<S[K]> };

export interface ParsedArgs<S extends FlagsSpec> {
  readonly flags: FlagValues<S>;
  readonly positionals: string[];
}

/** Parses `argv` against `spec`; `command` names the command in error messages. */
export function parseArgs<S extends FlagsSpec>(argv: readonly string[], spec: S, command: string, operand?: RegExp): ParsedArgs<S> {
  const values: Record<string, boolean | string | string[] | undefined> = {};
  for (const [name, f] of Object.entries(spec)) values[name] = f.type === 'boolean' ? false : f.multiple ? [] : undefined;
  const byShort = new Map<string, string>();
  for (const [name, f] of Object.entries(spec)) if (f.short) byShort.set(f.short, name);
  const positionals: string[] = [];
  const bad = (msg: string): never => usageError(`${msg} (see "keyward ${command} --help")`);

  const set = (name: string, f: FlagSpec, value: string | undefined, shown: string): void => {
    if (f.type === 'boolean') {
      if (value !== undefined) bad(`option ${shown} takes no value`);
      values[name] = true;
      return;
    }
    if (value === undefined) return bad(`option ${shown} needs a value`);
    if (f.multiple) (values[name] as string[]).push(value);
    else if (values[name] !== undefined) bad(`option ${shown} was given more than once`);
    else values[name] = value;
  };

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (operand?.test(arg)) {
      positionals.push(arg);
    } else if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      const f = Object.hasOwn(spec, name) ? spec[name] : undefined;
      if (!f) return bad(`unknown option "--${printable(name)}"${suggest(name, Object.keys(spec))}`);
      let value = eq < 0 ? undefined : arg.slice(eq + 1);
      if (f.type === 'string' && value === undefined) value = i + 1 < argv.length ? argv[++i] : undefined;
      set(name, f, value, `--${name}`);
    } else if (arg.startsWith('-') && arg.length > 1) {
      for (let j = 1; j < arg.length; j++) {
        const ch = arg[j]!;
        const name = byShort.get(ch);
        if (name === undefined) return bad(`unknown option "-${printable(ch)}"`);
        const f = spec[name]!;
        if (f.type === 'boolean') {
          set(name, f, undefined, `-${ch}`);
          continue;
        }
        const rest = arg.slice(j + 1);
        set(name, f, rest !== '' ? rest : i + 1 < argv.length ? argv[++i] : undefined, `-${ch}`);
        break;
      }
    } else {
      positionals.push(arg);
    }
  }
  return { flags: values as FlagValues<S>, positionals };
}

/** Control characters in user input are shown escaped, never sent raw to the terminal. */
function printable(s: string): string {
  const t = s.length > 40 ? s.slice(0, 40) + '…' : s;
  return JSON.stringify(t).slice(1, -1);
}

/** " (did you mean --x?)" for a near miss (edit distance ≤ 2), else "". */
function suggest(name: string, names: readonly string[]): string {
  let best: string | null = null;
  let bestD = 3;
  for (const n of names) {
    const d = distance(name, n);
    if (d < bestD) [best, bestD] = [n, d];
  }
  return best === null ? '' : `; did you mean "--${best}"?`;
}

function distance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}
