/**
 * `keyward seal --kms NS/NAME` and `keyward open --kms`: envelopes whose data
 * key the key service provides (the `kms` stanza), through `KmsKeyService`
 * of @keyward/client with the login profile (`keyward login`).
 *
 * The plain `seal` and `open` commands are left as they are: these wrappers
 * take over only when a kms flag is on the command line, and add the kms
 * flags to their help.
 */
import { KmsKeyService, kmsIdentity, serviceKeyIdentities } from '@keyward/client';
import { armor, open as coreOpen } from '@keyward/core';
import type { Command } from '../../lib/command.js';
import { parseArgs, type FlagsSpec } from '../../lib/args.js';
import { EXIT_OK, usageError } from '../../lib/errors.js';
import { StdinClaim, checkOutputPath, isStdStream, peekInput, writeAll, writeFileAtomic, type Io } from '../../lib/io.js';
import { loadIdentities, loadRecipients, parseContext } from '../../lib/keys.js';
import { printJson, summaryStream } from '../../lib/output.js';
import { PROFILE_FLAG, loadProfile, profileDir, type Profile } from '../../lib/profile.js';
import { ADDR_ENV, TOKEN_DETAILS, TOKEN_FLAGS, httpClient, keyRef, readToken, serviceError } from '../../lib/service.js';
import { open } from '../open.js';
import { seal } from '../seal.js';

const SERVICE_FLAGS = { ...PROFILE_FLAG, ...TOKEN_FLAGS } as const satisfies FlagsSpec;

const KMS_SEAL_FLAGS = {
  kms: { type: 'string', value: 'NS/NAME', help: 'have the key service provide the data key under this aes256 key (kms stanza)' },
  recipient: { type: 'string', short: 'r', multiple: true, value: 'RECIPIENT', help: 'also seal to this Keyward recipient' },
  'recipients-file': { type: 'string', short: 'R', multiple: true, value: 'FILE', help: 'also seal to the recipients in FILE' },
  context: { type: 'string', multiple: true, value: 'K=V', help: 'encryption context pair (bound into the kms data key too)' },
  armor: { type: 'boolean', short: 'a', help: 'write ASCII armor' },
  output: { type: 'string', short: 'o', value: 'OUT', help: 'write to OUT; default stdout' },
  json: { type: 'boolean', help: 'print a JSON summary (stdout with -o, else stderr)' },
  help: { type: 'boolean', short: 'h', help: 'show this help and exit' },
  ...SERVICE_FLAGS,
} as const satisfies FlagsSpec;

const KMS_OPEN_FLAGS = {
  kms: { type: 'boolean', help: 'open kms stanzas through the key service with the login profile' },
  'kms-key': { type: 'string', multiple: true, value: 'NS/NAME', help: "open stanzas sealed to the service's x25519/xwing key NS/NAME (keyward seal -r <its recipient>) through the service" },
  identity: { type: 'string', short: 'i', multiple: true, value: 'FILE', help: 'also try the identities in FILE' },
  context: { type: 'string', multiple: true, value: 'K=V', help: 'the encryption context the envelope must carry' },
  'any-context': { type: 'boolean', help: 'accept any encryption context' },
  output: { type: 'string', short: 'o', value: 'OUT', help: 'write the plaintext to OUT, only if everything verifies; default stdout' },
  json: { type: 'boolean', help: 'print what was opened as JSON (stdout with -o, else stderr)' },
  help: { type: 'boolean', short: 'h', help: 'show this help and exit' },
  ...SERVICE_FLAGS,
} as const satisfies FlagsSpec;

const KMS_HELP = (verb: 'seal' | 'open') => `
With the key service (kms envelopes):
  keyward ${verb} ${verb === 'seal' ? '--kms NS/NAME [-r RECIPIENT]... [--context K=V]... [--armor] [-o OUT] [IN]' : '--kms | --kms-key NS/NAME [-i FILE]... [--context K=V]... [-o OUT] [IN]'}
    [--profile DIR] [--addr URL] [--token-file FILE]
  ${verb === 'seal'
    ? 'The service provides the data key (POST /v1/data/NS/NAME/datakey, sealed to this\n  device\'s identity); the kms stanza holds the wrapped key. Other recipients get the same key.'
    : 'kms stanzas are opened with POST /v1/data/NS/NAME/unwrap, the data key coming back\n  sealed to this device\'s identity. --kms-key NS/NAME opens x25519/xwing stanzas sealed to\n  the service key NS/NAME (POST /v1/data/NS/NAME/open with the envelope header; the data key\n  comes back sealed to this device, and the header is re-checked here).'}
  Needs "keyward login" first (the profile's signing key signs each request).
  The address is --addr, else $${ADDR_ENV}, else the profile's.${TOKEN_DETAILS.replace(/\n/g, '\n  ')}
`;

function hasKmsFlag(argv: readonly string[], names: readonly string[]): boolean {
  for (const a of argv) {
    if (a === '--') return false;
    if (names.some((n) => a === `--${n}` || a.startsWith(`--${n}=`))) return true;
  }
  return false;
}

/** `--help`/`-h` before any `--`: the combined help (the plain command's, plus the kms part). */
function wantsHelp(argv: readonly string[]): boolean {
  for (const a of argv) {
    if (a === '--') return false;
    if (a === '--help' || a === '-h') return true;
  }
  return false;
}

/** Flags that send seal/open through these wrappers. main.ts's fast path must defer on each of them (usage.test.ts checks). */
export const SERVICE_NAMES = ['kms', 'kms-key', 'profile', 'token-file', 'addr'];

async function kmsService(flags: { profile: string | undefined; addr: string | undefined; 'token-file': string | undefined }, io: Io, stdin: StdinClaim): Promise<{ service: KmsKeyService; profile: Profile }> {
  const profile = await loadProfile(profileDir(flags.profile, io));
  const raw = flags.addr ?? io.env[ADDR_ENV];
  const addrs = raw !== undefined && raw !== '' ? raw.split(',').map((s) => s.trim()).filter((s) => s !== '') : profile.addresses;
  if (addrs.length === 0) usageError(`no key service address: give --addr URL or set ${ADDR_ENV}`);
  const token = await readToken(flags['token-file'], io, stdin);
  const http = httpClient({ addresses: addrs, token, device: { keyId: profile.keyId, signingSeed: profile.signingSeed } });
  profile.signingSeed.fill(0);
  return { service: await KmsKeyService.create({ http, identity: profile.identity }), profile };
}

export const sealWithKms: Command = {
  kind: 'command',
  name: seal.name,
  summary: `${seal.summary}; --kms: data key from the key service`,
  flags: { ...seal.flags, kms: KMS_SEAL_FLAGS.kms, ...SERVICE_FLAGS },
  help: (prefix) => seal.help(prefix) + KMS_HELP('seal'),
  async run(argv, io, prefix) {
    if (wantsHelp(argv)) {
      await writeAll(io.stdout, sealWithKms.help(prefix));
      return EXIT_OK;
    }
    if (!hasKmsFlag(argv, SERVICE_NAMES)) return seal.run(argv, io, prefix);
    const { flags, positionals } = parseArgs(argv, KMS_SEAL_FLAGS, `${prefix}seal`);
    if (flags.help) {
      await writeAll(io.stdout, sealWithKms.help(prefix));
      return EXIT_OK;
    }
    try {
      if (flags.kms === undefined) usageError('--profile, --token-file and --addr apply to seal --kms NS/NAME');
      const ref = keyRef(flags.kms, '--kms');
      if (positionals.length > 1) usageError('seal reads one input; give at most one IN');
      const input = positionals[0];
      const output = isStdStream(flags.output) ? null : flags.output;
      if (output === null && !flags.armor && io.stdout.isTTY) usageError('refusing to write a binary envelope to a terminal: use --armor, or -o FILE');
      const stdin = new StdinClaim();
      if (isStdStream(input)) stdin.claim('the data to seal');
      const context = parseContext(flags.context);
      const recipients = await loadRecipients(flags.recipient, flags['recipients-file'], false, io, stdin);
      if (output !== null) await checkOutputPath(output);
      const { service } = await kmsService(flags, io, stdin);
      const plaintext = await (await peekInput(input, io, 0)).readAll();
      try {
        const env = await service.seal(plaintext, { key: `${ref.ns}/${ref.name}`, recipients: recipients.keyward, context });
        const bytes = flags.armor ? armor(env) : env;
        if (output === null) await writeAll(io.stdout, bytes);
        else await writeFileAtomic(output, bytes);
      } finally {
        service.http.dispose();
      }
      if (flags.json) {
        await printJson(summaryStream(io, output), {
          format: 'keyward', output, armor: flags.armor, kms: `${ref.ns}/${ref.name}`, context,
          recipients: [{ type: 'kms', publicKey: null }, ...recipients.keyward.map((r) => ({ type: r.type, publicKey: r.toString() }))],
        });
      }
      return EXIT_OK;
    } catch (e) {
      throw serviceError(e);
    }
  },
};

export const openWithKms: Command = {
  kind: 'command',
  name: open.name,
  summary: `${open.summary}; --kms: through the key service`,
  flags: { ...open.flags, kms: KMS_OPEN_FLAGS.kms, 'kms-key': KMS_OPEN_FLAGS['kms-key'], ...SERVICE_FLAGS },
  help: (prefix) => open.help(prefix) + KMS_HELP('open'),
  async run(argv, io, prefix) {
    if (wantsHelp(argv)) {
      await writeAll(io.stdout, openWithKms.help(prefix));
      return EXIT_OK;
    }
    if (!hasKmsFlag(argv, SERVICE_NAMES)) return open.run(argv, io, prefix);
    const { flags, positionals } = parseArgs(argv, KMS_OPEN_FLAGS, `${prefix}open`);
    if (flags.help) {
      await writeAll(io.stdout, openWithKms.help(prefix));
      return EXIT_OK;
    }
    try {
      if (!flags.kms && flags['kms-key'].length === 0) usageError('--profile, --token-file and --addr apply to open --kms or --kms-key');
      const serviceKeys = flags['kms-key'].map((k) => keyRef(k, '--kms-key'));
      if (positionals.length > 1) usageError('open reads one input; give at most one IN');
      if (flags['any-context'] && flags.context.length > 0) usageError('--context and --any-context contradict each other');
      const input = positionals[0];
      const output = isStdStream(flags.output) ? null : flags.output;
      const stdin = new StdinClaim();
      if (isStdStream(input)) stdin.claim('the envelope');
      const context = parseContext(flags.context);
      const ids = await loadIdentities(flags.identity, io, stdin);
      if (output !== null) await checkOutputPath(output);
      const { service } = await kmsService(flags, io, stdin);
      const envelope = await (await peekInput(input, io, 0)).readAll();
      let result;
      try {
        const serviceIds = [];
        for (const k of serviceKeys) serviceIds.push(...serviceKeyIdentities(service, `${k.ns}/${k.name}`, envelope));
        result = await coreOpen(envelope, { identities: [...(flags.kms ? [kmsIdentity(service)] : []), ...serviceIds, ...ids.keyward], context, anyContext: flags['any-context'] });
      } finally {
        service.http.dispose();
      }
      if (output === null) await writeAll(io.stdout, result.plaintext);
      else await writeFileAtomic(output, result.plaintext);
      if (flags.json) {
        await printJson(summaryStream(io, output), { format: 'keyward', output, aead: result.aead, context: result.context, signature: result.signature, openedBy: result.openedBy });
      }
      return EXIT_OK;
    } catch (e) {
      throw serviceError(e);
    }
  },
};
