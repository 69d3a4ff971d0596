/**
 * `keyward seal`: encrypt a file or stdin for recipients (or one passphrase),
 * as a Keyward envelope, or with --age as an age v1 file.
 */
import { PassphraseRecipient, SCRYPT, age, type PayloadAead, type Recipient } from '@keyward/core';
import { sealFile } from '@keyward/core/node';
import { defineCommand } from '../lib/command.js';
import { EXIT_OK, fail, usageError } from '../lib/errors.js';
import { checkOutputPath, isStdStream, peekInput, withCoreOutput, writeAll, writeFileAtomic } from '../lib/io.js';
import { loadRecipients, loadSigningKey, parseContext } from '../lib/keys.js';
import { printJson, summaryStream } from '../lib/output.js';
import { getPassphrase } from '../lib/passphrase.js';

const AEADS = ['aes-256-gcm', 'chacha20-poly1305'] as const satisfies readonly PayloadAead[];
/** Openers refuse work factors above SCRYPT.defaultMaxLogN by default, so sealing stays within it. */
const WORK_FACTOR = { min: SCRYPT.minLogN, max: SCRYPT.defaultMaxLogN, default: SCRYPT.defaultLogN } as const;

/** What `seal --json` prints. */
export interface SealJson {
  readonly format: 'keyward' | 'age';
  /** The output file, or null for stdout. */
  readonly output: string | null;
  readonly armor: boolean;
  readonly aead: string;
  /** Ordered pairs, as in the header. */
  readonly context: readonly (readonly [string, string])[];
  readonly recipients: readonly { readonly type: string; readonly publicKey: string | null }[];
  readonly signature: { readonly alg: string; readonly keyId: string; readonly verifyingKey: string } | null;
  readonly anonymous: boolean;
}

export const seal = defineCommand({
  name: 'seal',
  summary: 'encrypt a file or stdin for recipients or a passphrase',
  usage: [
    '-r RECIPIENT... [-R FILE]... [--context K=V]... [--sign FILE] [--armor] [-o OUT] [IN]',
    '--passphrase [--passphrase-file FILE] [--work-factor N] [--armor] [-o OUT] [IN]',
    '--age (-r age1…)... [-R FILE]... [--armor] [-o OUT] [IN]', '--age --passphrase [--passphrase-file FILE] [--work-factor N] [--armor] [-o OUT] [IN]',
  ],
  flags: {
    recipient: { type: 'string', short: 'r', multiple: true, value: 'RECIPIENT', help: 'seal to this recipient (kwx25519…, kwxwing…, kwp256…; age1… with --age; user:NAME, service:NAME, group:NAME from the directory)' },
    directory: { type: 'string', value: 'URL', help: 'key service whose directory resolves user:/service:/group: recipients (default $KEYWARD_ADDR)' },
    device: { type: 'string', value: 'FILE', help: 'device file whose pinned directory configuration to use (keyward directory enroll)' },
    'recipients-file': { type: 'string', short: 'R', multiple: true, value: 'FILE', help: 'seal to every recipient listed in FILE (one per line, # comments)' },
    passphrase: { type: 'boolean', short: 'p', help: 'seal with a passphrase instead (scrypt; must be the only recipient)' },
    'passphrase-file': { type: 'string', value: 'FILE', help: 'read the passphrase from the first line of FILE (/dev/fd/N works); implies --passphrase' },
    'work-factor': { type: 'string', value: 'N', help: `scrypt work factor log2(N), ${WORK_FACTOR.min}..${WORK_FACTOR.max} (default ${WORK_FACTOR.default})` },
    context: { type: 'string', multiple: true, value: 'K=V', help: 'encryption context pair: visible, authenticated, required on open; never secret' },
    sign: { type: 'string', value: 'FILE', help: 'sign the envelope with the signing key in FILE (keyward keygen --signing)' },
    armor: { type: 'boolean', short: 'a', help: 'write ASCII armor (PEM-like text) instead of binary' },
    anonymous: { type: 'boolean', help: 'write no key ids in the stanzas (hides who can open it; opening tries every stanza)' },
    aead: { type: 'string', value: 'AEAD', help: `payload cipher: ${AEADS.join(' (default) or ')}` },
    age: { type: 'boolean', help: 'write an age v1 file (age1… recipients or a passphrase; --armor gives age armor)' },
    output: { type: 'string', short: 'o', value: 'OUT', help: 'write to OUT (written aside, renamed when complete); default stdout' },
    json: { type: 'boolean', help: 'print a JSON summary (on stdout with -o, else on stderr)' },
  },
  details: `
IN defaults to stdin and OUT to stdout ("-" also means them). A binary
envelope is never written to a terminal: use --armor or -o.

The passphrase never comes from the command line. Sources, first match wins:
--passphrase-file, the KEYWARD_PASSPHRASE environment variable, a prompt on
the terminal (asked twice). --passphrase cannot be combined with -r/-R
(error KW_SCRYPT_NOT_ALONE): anyone holding another recipient's key could
otherwise re-seal for a passphrase you use elsewhere.`,
  examples: [
    'keyward seal -r kwx255191… -r kwxwing1… -o report.kw report.pdf',
    'keyward seal -R team.txt --context table=orders --context tenant=acme < row.json > row.kw',
    'keyward seal --passphrase --armor secrets.env > secrets.env.kw.txt',
    'keyward seal --age -r age1… -o notes.age notes.txt',
    'keyward seal -r user:alice -r service:billing -r group:auditors --directory https://kms.example.com -o q3.kw q3.csv',
  ],
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length > 1) usageError('seal reads one input; give at most one IN');
    const input = positionals[0];
    const ageMode = flags.age;
    if (ageMode) {
      for (const f of ['context', 'sign', 'aead', 'anonymous'] as const) {
        const v = flags[f];
        if (v === true || (typeof v === 'string') || (Array.isArray(v) && v.length > 0)) usageError(`--${f} does not apply to age files (--age)`);
      }
    }
    const usePassphrase = flags.passphrase || flags['passphrase-file'] !== undefined;
    const hasRecipients = flags.recipient.length > 0 || flags['recipients-file'].length > 0;
    if (usePassphrase && hasRecipients) {
      fail('KW_SCRYPT_NOT_ALONE', 'a passphrase must be the only recipient: give -r/-R or --passphrase, not both');
    }
    if (!usePassphrase && !hasRecipients) usageError('seal needs recipients (-r, -R) or --passphrase');
    let workFactor: number = WORK_FACTOR.default;
    if (flags['work-factor'] !== undefined) {
      if (!usePassphrase) usageError('--work-factor applies to --passphrase only');
      workFactor = Number(flags['work-factor']);
      if (!/^\d+$/.test(flags['work-factor']) || workFactor < WORK_FACTOR.min || workFactor > WORK_FACTOR.max) {
        usageError(`--work-factor must be an integer from ${WORK_FACTOR.min} to ${WORK_FACTOR.max}`);
      }
    }
    let aead: PayloadAead | undefined;
    if (flags.aead !== undefined) {
      aead = AEADS.find((a) => a === flags.aead);
      if (!aead) usageError(`--aead must be one of ${AEADS.join(', ')}`);
    }
    const output = isStdStream(flags.output) ? null : flags.output;
    if (output === null && !flags.armor && io.stdout.isTTY) {
      usageError('refusing to write a binary envelope to a terminal: use --armor, or -o FILE');
    }
    if (isStdStream(input)) stdin.claim('the data to seal');
    const context = parseContext(flags.context);

    // Directory names (user:…, service:…, group:…) resolve to every current device key, with proofs;
    // any failed proof refuses the whole seal (docs/directory.md §CLI).
    const names = flags.recipient.filter((r) => /^(user|service|group):/.test(r));
    let direct = flags.recipient.filter((r) => !names.includes(r));
    if (names.length > 0) {
      if (ageMode) usageError('directory names are Keyward recipients: not with --age');
      const { resolveDirectoryRecipients } = await import('./server/directory.js');
      direct = [...direct, ...(await resolveDirectoryRecipients(names, flags.directory, io, flags.device))];
    }
    const recipients = await loadRecipients(direct, flags['recipients-file'], ageMode, io, stdin);
    const signer = flags.sign === undefined ? undefined : await loadSigningKey(flags.sign, io, stdin);
    if (output !== null) await checkOutputPath(output);
    const source = await peekInput(input, io, 0);
    const passphrase = usePassphrase ? await getPassphrase(io, { file: flags['passphrase-file'], confirm: true, stdin }) : undefined;

    let summary: SealJson;
    if (ageMode) {
      const target: age.AgeSealTarget = passphrase !== undefined ? { passphrase, workFactor } : { recipients: recipients.age };
      const file = await age.ageSeal(await source.readAll(), target, { armor: flags.armor });
      if (output === null) await writeAll(io.stdout, file);
      else await writeFileAtomic(output, file);
      summary = {
        format: 'age', output, armor: flags.armor, aead: 'chacha20-poly1305', context: [], signature: null, anonymous: false,
        recipients: passphrase !== undefined ? [{ type: 'scrypt', publicKey: null }] : recipients.age.map((r) => ({ type: r.kind, publicKey: r.text })),
      };
    } else {
      const list: Recipient[] = passphrase !== undefined ? [new PassphraseRecipient(passphrase, workFactor)] : recipients.keyward;
      const opts = { recipients: list, context, aead, signer, anonymous: flags.anonymous, armor: flags.armor };
      if (output === null) await sealFile(source.source, io.stdout, opts);
      else await withCoreOutput(output, () => sealFile(source.source, output, opts));
      summary = {
        format: 'keyward', output, armor: flags.armor, aead: aead ?? 'aes-256-gcm', context, anonymous: flags.anonymous,
        recipients: passphrase !== undefined ? [{ type: 'scrypt', publicKey: null }] : recipients.keyward.map((r) => ({ type: r.type, publicKey: r.toString() })),
        signature: signer ? { alg: signer.alg, keyId: Buffer.from(signer.keyId).toString('hex'), verifyingKey: signer.verifyingKey.toString() } : null,
      };
    }
    if (flags.json) await printJson(summaryStream(io, output), summary);
    return EXIT_OK;
  },
});
