/**
 * `keyward open`: decrypt a Keyward envelope or an age file (detected from
 * its first bytes, binary or armored) with identities or a passphrase.
 */
import { age, type OpenOptions } from '@keyward/core';
import { openFile } from '@keyward/core/node';
import { defineCommand } from '../lib/command.js';
import { describeAgeFile } from '../lib/age-file.js';
import { EXIT_OK, fail, usageError } from '../lib/errors.js';
import { checkOutputPath, isStdStream, peekInput, withCoreOutput, writeAll, writeFileAtomic } from '../lib/io.js';
import { loadIdentities, loadVerifyingKeys, parseContext } from '../lib/keys.js';
import { printJson, summaryStream } from '../lib/output.js';
import { LazyPassphraseIdentity, getPassphrase } from '../lib/passphrase.js';

/** What `open --json` prints: the EnvelopeInfo of core, plus the format and output. */
export interface OpenJson {
  readonly format: 'keyward' | 'age';
  readonly output: string | null;
  readonly aead: string;
  /** Ordered pairs, as in the header. */
  readonly context: readonly (readonly [string, string])[];
  readonly signature: { readonly alg: string; readonly keyId: string; readonly verified: boolean } | null;
  /** The stanza type that opened the file (null for age files opened by an identity). */
  readonly openedBy: string | null;
}

export const open = defineCommand({
  name: 'open',
  summary: 'decrypt a Keyward envelope or an age file',
  usage: [
    '[-i IDENTITY_FILE]... [--verify SIGNER]... [--context K=V]... [--any-context] [-o OUT] [IN]',
    '[--passphrase-file FILE] [-o OUT] [IN]',
  ],
  flags: {
    identity: { type: 'string', short: 'i', multiple: true, value: 'FILE', help: 'try the identities in FILE (Keyward and age secret keys, one per line)' },
    'passphrase-file': { type: 'string', value: 'FILE', help: 'for passphrase-sealed input: the first line of FILE (/dev/fd/N works)' },
    verify: { type: 'string', multiple: true, value: 'SIGNER', help: 'require a valid signature by SIGNER (a kwed25519… key, or a file of them)' },
    context: { type: 'string', multiple: true, value: 'K=V', help: 'the encryption context the envelope must carry (all pairs, exactly)' },
    'any-context': { type: 'boolean', help: 'accept any encryption context (skip the check)' },
    output: { type: 'string', short: 'o', value: 'OUT', help: 'write the plaintext to OUT, only if everything verifies; default stdout' },
    json: { type: 'boolean', help: 'print what was opened as JSON (on stdout with -o, else on stderr)' },
  },
  details: `
Opening fails closed. With -o, OUT appears (atomically) only after the header,
every chunk and the signature verified; on failure nothing is created. On
stdout, plaintext is released chunk by chunk as each chunk authenticates (like
age), so a later failure (truncation, bad signature) still exits 1: discard
the output then, or use -o.

The envelope's encryption context must equal the --context pairs (none given
means "the envelope has none"); --any-context skips the check. --verify
refuses unsigned envelopes (KW_SIGNATURE_MISSING) and other signers
(KW_SIGNER_UNKNOWN).

A passphrase is asked for only when the input is passphrase-sealed:
--passphrase-file, else KEYWARD_PASSPHRASE, else a prompt on the terminal.
age files (binary or armored) open with age identities from -i files or a
passphrase; they carry no context and no signature.`,
  examples: [
    'keyward open -i alice.key -o report.pdf report.kw',
    'keyward open -i alice.key --context table=orders --context tenant=acme < row.kw',
    'keyward open -i alice.key --verify kwed255191… -o build.tar build.tar.kw',
    'keyward open -i age-key.txt notes.age',
  ],
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length > 1) usageError('open reads one input; give at most one IN');
    if (flags['any-context'] && flags.context.length > 0) usageError('--context and --any-context contradict each other');
    const input = positionals[0];
    const output = isStdStream(flags.output) ? null : flags.output;
    if (isStdStream(input)) stdin.claim('the envelope');
    const context = parseContext(flags.context);
    const identities = await loadIdentities(flags.identity, io, stdin);
    const verify = await loadVerifyingKeys(flags.verify, io, stdin);
    if (output !== null) await checkOutputPath(output);
    const passphrase = () => getPassphrase(io, { file: flags['passphrase-file'], confirm: false, stdin });

    const source = await peekInput(input, io);
    let info: OpenJson;
    if (age.isAgeFile(source.head)) {
      if (verify.length > 0) fail('KW_SIGNATURE_MISSING', 'this is an age file; age files are not signed');
      if (context.length > 0) fail('KW_CONTEXT_MISMATCH', 'this is an age file; age files carry no encryption context');
      const file = await source.readAll();
      const scrypt = describeAgeFile(file)?.stanzas.some((s) => s.type === 'scrypt') ?? false;
      if (!scrypt && identities.age.length === 0) {
        fail('KW_NO_IDENTITY_MATCHED', 'this is an age file: give an age identity file (AGE-SECRET-KEY-…) with -i');
      }
      const plaintext = await age.ageOpen(file, { identities: identities.age, ...(scrypt ? { passphrase: await passphrase() } : {}) });
      if (output === null) await writeAll(io.stdout, plaintext);
      else await writeFileAtomic(output, plaintext);
      info = { format: 'age', output, aead: 'chacha20-poly1305', context: [], signature: null, openedBy: scrypt ? 'scrypt' : null };
    } else {
      const opts: OpenOptions = {
        identities: [...identities.keyward, new LazyPassphraseIdentity(passphrase)],
        context,
        anyContext: flags['any-context'],
        ...(verify.length > 0 ? { verify } : {}),
      };
      // A path output is written aside and renamed by core only after everything verified;
      // path to path, large files are decrypted on worker threads.
      const result = output === null
        ? await openFile(source.source, io.stdout, opts)
        : await withCoreOutput(output, () => openFile(source.source, output, opts));
      info = { format: 'keyward', output, aead: result.aead, context: result.context, signature: result.signature, openedBy: result.openedBy };
    }
    if (flags.json) await printJson(summaryStream(io, output), info);
    return EXIT_OK;
  },
});
