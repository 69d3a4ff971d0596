/**
 * Passphrases never come from argv (other users can read it in `ps`). Sources,
 * first match wins:
 *   1. `--passphrase-file FILE`: its first line (`/dev/fd/N` reads a descriptor, `-` stdin);
 *   2. the `KEYWARD_PASSPHRASE` environment variable (ignored when empty);
 *   3. a prompt on the controlling terminal (asked twice when sealing).
 * With none of these, a KW_INVALID_ARGUMENT error says how to give one.
 */
import { PassphraseIdentity, type Identity, type Stanza, type StanzaContext } from '@keyward/core';
import { usageError } from './errors.js';
import { readFirstLine, type Io, type StdinClaim } from './io.js';

export const PASSPHRASE_ENV = 'KEYWARD_PASSPHRASE';

export interface PassphraseOptions {
  /** `--passphrase-file`, when given. */
  readonly file: string | undefined;
  /** Ask twice on the terminal (sealing). */
  readonly confirm: boolean;
  readonly stdin: StdinClaim;
}

export async function getPassphrase(io: Io, opts: PassphraseOptions): Promise<string> {
  if (opts.file !== undefined) {
    if (opts.file === '-') opts.stdin.claim('the passphrase file');
    const line = await readFirstLine(opts.file, io);
    if (line === '') usageError(`the first line of the passphrase file '${opts.file}' is empty`);
    return line;
  }
  const env = io.env[PASSPHRASE_ENV];
  if (env !== undefined && env !== '') return env;
  const first = await io.prompt('Enter passphrase: ');
  if (first === null) {
    usageError(`a passphrase is needed and there is no terminal to ask on: use --passphrase-file FILE or set ${PASSPHRASE_ENV}`);
  }
  if (first === '') usageError('the passphrase is empty');
  if (opts.confirm) {
    const second = await io.prompt('Confirm passphrase: ');
    if (second !== first) usageError('the passphrases do not match');
  }
  return first;
}

/**
 * Opens `scrypt` stanzas, asking for the passphrase only when the envelope
 * actually has one (so `keyward open -i key.txt` never prompts needlessly).
 */
export class LazyPassphraseIdentity implements Identity {
  readonly type = 'scrypt';
  private inner: Promise<PassphraseIdentity> | null = null;
  constructor(private readonly get: () => Promise<string>) {}

  unwrap(stanza: Stanza, ctx: StanzaContext): Promise<Uint8Array | null> {
    this.inner ??= this.get().then((p) => new PassphraseIdentity(p));
    return this.inner.then((id) => id.unwrap(stanza, ctx));
  }
}
