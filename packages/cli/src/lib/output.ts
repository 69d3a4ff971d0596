/** Machine-readable output: one pretty-printed JSON document per command, ending in a newline. */
import { writeAll, type Io } from './io.js';

export function printJson(w: NodeJS.WritableStream, value: unknown): Promise<void> {
  return writeAll(w, JSON.stringify(value, null, 2) + '\n');
}

/** A string shown on a terminal: quoted, with control characters escaped (headers are untrusted). */
export const quoted = (s: string): string => JSON.stringify(s);

/** JSON summaries of seal/open go to stdout, unless stdout carries the data (then stderr). */
export const summaryStream = (io: Io, output: string | null): NodeJS.WritableStream => (output === null ? io.stderr : io.stdout);
