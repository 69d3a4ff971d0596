/**
 * The witness's durable state: per log origin, the latest checkpoint it
 * cosigned (size, root, the note it cosigned, when). One JSON file,
 * `witness-state.json` in the state directory, replaced atomically
 * (temporary file, fsync, rename, fsync of the directory) before the witness
 * answers; a file that does not parse stops the witness (it must never start
 * over from zero: that would let a log roll it back).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { KeywardError } from '@keyward/core';
import { z } from 'zod';

export const WITNESS_STATE_FILE = 'witness-state.json';

const B64_32 = z.string().regex(/^[A-Za-z0-9+/]{43}=$/);
const LogState = z.strictObject({
  size: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
  root: B64_32,
  note: z.string().max(1 << 20),
  updated: z.string(),
});
const StateSchema = z.strictObject({
  keyward_witness_state: z.literal(1),
  logs: z.record(z.string().min(1).max(1024), LogState),
});

export type WitnessLogRecord = z.infer<typeof LogState>;
type StateData = z.infer<typeof StateSchema>;

/** The state file of one witness. Reads are from memory; `put` persists before it resolves. */
export class WitnessStateFile {
  readonly path: string;
  #data: StateData;

  private constructor(path: string, data: StateData) {
    this.path = path;
    this.#data = data;
  }

  /** Opens (or creates, empty) the state in `dir`. A malformed file is KW_INVALID_ARGUMENT: never silently reset. */
  static open(dir: string): WitnessStateFile {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const path = join(dir, WITNESS_STATE_FILE);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new WitnessStateFile(path, { keyward_witness_state: 1, logs: {} });
      throw new KeywardError('KW_IO', `cannot read the witness state ${path}`, { cause: e });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      throw new KeywardError('KW_INVALID_ARGUMENT', `the witness state ${path} is not JSON: restore it from a backup (never delete it: the witness would accept a rolled-back log)`, { cause: e });
    }
    const r = StateSchema.safeParse(parsed);
    if (!r.success) throw new KeywardError('KW_INVALID_ARGUMENT', `the witness state ${path} is malformed (${r.error.issues[0]?.message ?? 'rejected'}): restore it from a backup`);
    return new WitnessStateFile(path, r.data);
  }

  get(origin: string): WitnessLogRecord | null {
    return Object.hasOwn(this.#data.logs, origin) ? this.#data.logs[origin]! : null;
  }

  origins(): string[] {
    return Object.keys(this.#data.logs);
  }

  /** Records `rec` for `origin` durably. Refuses (KW_INVALID_ARGUMENT) a smaller size than recorded: the state never rolls back. */
  async put(origin: string, rec: WitnessLogRecord): Promise<void> {
    const prev = this.get(origin);
    if (prev !== null && rec.size < prev.size) throw new KeywardError('KW_INVALID_ARGUMENT', `refusing to roll the witness state of ${origin} back from ${prev.size} to ${rec.size}`);
    const next: StateData = { keyward_witness_state: 1, logs: { ...this.#data.logs, [origin]: LogState.parse(rec) } };
    await writeAtomically(this.path, `${JSON.stringify(next, null, 2)}\n`);
    this.#data = next;
  }
}

async function writeAtomically(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(text, 'utf8');
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw new KeywardError('KW_IO', `writing the witness state ${path} failed`, { cause: e });
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw new KeywardError('KW_IO', `writing the witness state ${path} failed`, { cause: e });
  }
  const dh = await open(dirname(path), 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}
