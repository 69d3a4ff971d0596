/**
 * `keyward keygen`: new identity (decryption key) or signing key, written
 * like age-keygen writes its files; `-y` prints the public side of a key file.
 */
import { SigningKey, age, classifyKeyString, generateIdentity, parseIdentity, parseSigningKey, type KemType } from '@keyward/core';
import { defineCommand } from '../lib/command.js';
import { EXIT_OK, fail, usageError, withoutEcho } from '../lib/errors.js';
import { checkOutputPath, isStdStream, readTextFile, writeAll, writeFileAtomic } from '../lib/io.js';
import { printJson } from '../lib/output.js';

const KEM_TYPES = ['x25519', 'xwing', 'p256'] as const satisfies readonly KemType[];

/** What `--json` prints for a generated key (`secretKey` only when no `-o` file is written). */
export interface KeygenJson {
  readonly kind: 'identity' | 'signing-key' | 'age-identity';
  readonly type: string;
  readonly publicKey: string;
  readonly secretKey?: string;
  readonly file: string | null;
  readonly created: string;
}

/** One entry of what `keygen -y --json` prints. */
export interface PublicKeyJson {
  readonly kind: 'recipient' | 'verifying-key' | 'age-recipient';
  readonly type: string;
  readonly publicKey: string;
}

interface NewKey { kind: KeygenJson['kind']; type: string; secret: string; publicKey: string }

export const keygen = defineCommand({
  name: 'keygen',
  summary: 'generate an identity or signing key; -y prints the public key of a key file',
  usage: ['[--type x25519|xwing|p256 | --pq] [-o FILE] [--json]', '--signing [--pq] [-o FILE] [--json]', '--age [--pq] [-o FILE] [--json]', '-y [-o FILE] [--json] [FILE]'],
  flags: {
    type: { type: 'string', value: 'TYPE', help: 'identity type: x25519 (default), xwing (post-quantum hybrid) or p256' },
    pq: { type: 'boolean', help: 'post-quantum: same as --type xwing; with --signing, Ed25519 + ML-DSA-65; with --age, age1pq' },
    signing: { type: 'boolean', help: 'make an Ed25519 signing key (for seal --sign); prints its verifying key' },
    age: { type: 'boolean', help: 'make an age identity (AGE-SECRET-KEY-1…), for seal --age' },
    output: { type: 'string', short: 'o', value: 'FILE', help: 'write the secret key to FILE (mode 0600; never overwrites)' },
    public: { type: 'boolean', short: 'y', help: 'print the public keys of the secret keys in FILE (or stdin)' },
    json: { type: 'boolean', help: 'print a JSON object instead of text' },
  },
  details: `
The key file has age-keygen's layout: "# created: <date>", "# public key: <key>",
then the secret key. With -o, the public key (recipient or verifying key) is
printed on stdout; without -o, the key file goes to stdout and the public key
to stderr as "Public key: …".

With --json, stdout gets one JSON object: { kind, type, publicKey, file,
created }, plus secretKey when no -o file is written. keygen -y --json prints
{ keys: [{ kind, type, publicKey }] }.`,
  examples: [
    'keyward keygen -o alice.key              # prints kwx25519…',
    'keyward keygen --pq -o alice-pq.key',
    'keyward keygen --signing -o signer.key   # prints kwed25519…',
    'keyward keygen -y alice.key > alice.pub',
  ],
  async run({ flags, positionals }, { io, stdin }) {
    if (flags.public) {
      if (flags.type !== undefined || flags.pq || flags.signing || flags.age) usageError('-y takes no --type, --pq, --signing or --age');
      if (positionals.length > 1) usageError('keygen -y reads one key file');
      return printPublicKeys(positionals[0] ?? '-', flags.output, flags.json);
    }
    if (positionals.length > 0) usageError(`unexpected argument; keygen writes to -o FILE (or stdout)`);
    const key = await generate(flags);
    const created = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    const file = `# created: ${created}\n# public key: ${key.publicKey}\n${key.secret}\n`;
    const out = isStdStream(flags.output) ? null : flags.output;
    if (out !== null) {
      await checkOutputPath(out);
      await writeFileAtomic(out, file, { exclusive: true });
    }
    if (flags.json) {
      const json: KeygenJson = { kind: key.kind, type: key.type, publicKey: key.publicKey, ...(out === null ? { secretKey: key.secret } : {}), file: out, created };
      await printJson(io.stdout, json);
    } else if (out !== null) {
      await writeAll(io.stdout, key.publicKey + '\n');
    } else {
      await writeAll(io.stdout, file);
      await writeAll(io.stderr, `Public key: ${key.publicKey}\n`);
    }
    return EXIT_OK;

    async function printPublicKeys(input: string, output: string | undefined, json: boolean): Promise<number> {
      const keys = await publicKeysOf(await readTextFile(input, io, stdin, 'the key file'), input === '-' ? 'standard input' : `'${input}'`);
      const text = keys.map((k) => k.publicKey + '\n').join('');
      if (!isStdStream(output)) {
        await checkOutputPath(output);
        await writeFileAtomic(output, text);
        if (json) await printJson(io.stdout, { keys });
      } else if (json) {
        await printJson(io.stdout, { keys });
      } else {
        await writeAll(io.stdout, text);
      }
      return EXIT_OK;
    }
  },
});

async function generate(flags: { type: string | undefined; pq: boolean; signing: boolean; age: boolean }): Promise<NewKey> {
  if (flags.signing && flags.age) usageError('--signing and --age do not combine (age has no signatures)');
  if (flags.signing || flags.age) {
    if (flags.type !== undefined) usageError(`--type selects a Keyward identity type; it does not combine with --${flags.signing ? 'signing' : 'age'}`);
    if (flags.signing) {
      const k = await SigningKey.generate(flags.pq ? 'ed25519-mldsa65' : 'ed25519');
      return { kind: 'signing-key', type: k.alg, secret: k.toString(), publicKey: k.verifyingKey.toString() };
    }
    const id = age.generateAgeIdentity(flags.pq ? 'mlkem768x25519' : 'x25519');
    return { kind: 'age-identity', type: id.kind, secret: id.text, publicKey: id.recipient().text };
  }
  let type: KemType = flags.pq ? 'xwing' : 'x25519';
  if (flags.type !== undefined) {
    const t = KEM_TYPES.find((k) => k === flags.type);
    if (!t) usageError(`--type must be one of ${KEM_TYPES.join(', ')}`);
    if (flags.pq && t !== 'xwing') usageError(`--pq means --type xwing; it contradicts --type ${t}`);
    type = t;
  }
  const id = await generateIdentity(type);
  return { kind: 'identity', type, secret: id.toString(), publicKey: (await id.recipient()).toString() };
}

/** The public side of every secret key in a key file, in file order. */
async function publicKeysOf(text: string, name: string): Promise<PublicKeyJson[]> {
  const out: PublicKeyJson[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const t = lines[i]!.trim();
    if (t === '' || t.startsWith('#')) continue;
    const where = `${name} line ${i + 1}`;
    const kind = classifyKeyString(t);
    if (kind === 'identity') {
      const id = await withoutEcho(() => parseIdentity(t), `${where}: invalid Keyward identity (bad checksum or length)`);
      out.push({ kind: 'recipient', type: id.type, publicKey: (await id.recipient()).toString() });
    } else if (kind === 'signing-key') {
      const k = await withoutEcho(() => parseSigningKey(t), `${where}: invalid signing key (bad checksum or length)`);
      out.push({ kind: 'verifying-key', type: k.alg, publicKey: k.verifyingKey.toString() });
    } else if (kind === 'age-identity') {
      const id = await withoutEcho(() => age.parseAgeIdentity(t), `${where}: invalid or unsupported age identity`);
      out.push({ kind: 'age-recipient', type: id.kind, publicKey: id.recipient().text });
    } else if (kind === 'recipient' || kind === 'verifying-key' || kind === 'age-recipient') {
      fail('KW_INVALID_KEY_STRING', `${where} is already a public key`);
    } else {
      fail('KW_INVALID_KEY_STRING', `${where} is not a Keyward or age secret key`);
    }
  }
  if (out.length === 0) fail('KW_INVALID_KEY_STRING', `${name} holds no secret key`);
  return out;
}
