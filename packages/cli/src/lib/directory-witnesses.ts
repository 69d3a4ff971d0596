/**
 * The directory's witnesses for the CLI's directory clients (`keyward
 * directory …`, `seal -r user:…`; docs/witness.md §The directory): a JSON file
 * named by `KEYWARD_DIRECTORY_WITNESSES`,
 *
 *     { "log_key": "keyward.local/directory-heads/…+…+…", "k": 2,
 *       "witnesses": [{ "name": "w1.example", "key": "w1.example+…+…" }, …],
 *       "max_age_seconds": 86400 }
 *
 * (`log_key`: the head log's verifier key, `GET /v1/directory/witnessed`'s
 * `log_key`; `witnesses`: each witness's cosignature verifier key;
 * `max_age_seconds`: how old the k-th freshest cosignature may be, default one
 * day). With it, every directory answer is accepted only with k fresh cosignatures.
 */
import { readFile } from 'node:fs/promises';
import { KeywardError } from '@keyward/core';
import { DirectoryWitnessCheck, type DirectoryWitnessConfig } from '@keyward/client';
import type { Io } from './io.js';

export const DIRECTORY_WITNESSES_ENV = 'KEYWARD_DIRECTORY_WITNESSES';

/**
 * The witness configuration from `KEYWARD_DIRECTORY_WITNESSES`, or undefined when unset.
 * Throws `KW_INVALID_ARGUMENT` for a malformed file, `KW_IO` for an unreadable one.
 */
export async function directoryWitnesses(io: Pick<Io, 'env'>): Promise<DirectoryWitnessConfig | undefined> {
  const file = io.env[DIRECTORY_WITNESSES_ENV];
  if (file === undefined || file === '') return undefined;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new KeywardError('KW_IO', `cannot read ${DIRECTORY_WITNESSES_ENV} file '${file}': ${(e as NodeJS.ErrnoException).code ?? 'error'}`, { cause: e });
  }
  try {
    const j = JSON.parse(text) as { log_key?: unknown; k?: unknown; witnesses?: unknown; max_age_seconds?: unknown };
    if (typeof j.log_key !== 'string' || !Array.isArray(j.witnesses) || (j.k !== undefined && typeof j.k !== 'number') || (j.max_age_seconds !== undefined && typeof j.max_age_seconds !== 'number')) {
      throw new Error('needs log_key (string), witnesses ([{ name, key }]) and optionally k (number) and max_age_seconds (number)');
    }
    const cfg: DirectoryWitnessConfig = {
      logKey: j.log_key, witnesses: j.witnesses as DirectoryWitnessConfig['witnesses'],
      ...(j.k !== undefined ? { k: j.k } : {}), ...(j.max_age_seconds !== undefined ? { maxAgeSeconds: j.max_age_seconds } : {}),
    };
    new DirectoryWitnessCheck(cfg); // validates keys, names and k
    return cfg;
  } catch (e) {
    throw new KeywardError('KW_INVALID_ARGUMENT', `${DIRECTORY_WITNESSES_ENV} file '${file}': ${(e as Error).message}`, { cause: e });
  }
}
