/**
 * Turning command-line key arguments and key files into core objects.
 *
 * Key files hold one key per line; blank lines and `#` comments are ignored
 * (the format `keyward keygen` and `age-keygen` write). Errors name the file
 * and line, never the key itself: a secret key string must not reach a
 * terminal, a log or a CI transcript because of a typo.
 */
import {
  KeywardError, age, classifyKeyString, isKeywardError, parseIdentity, parseRecipient, parseSigningKey, parseVerifyingKey,
  type HpkeIdentity, type HpkeRecipient, type SigningKey, type VerifyingKey,
} from '@keyward/core';
import { fail, usageError, withoutEcho } from './errors.js';
import { readTextFile, type Io, type StdinClaim } from './io.js';

type KeyKind = ReturnType<typeof classifyKeyString>;

/** A meaningful line of a key file with its 1-based line number. */
interface KeyLine { readonly text: string; readonly line: number }

function keyLines(text: string): KeyLine[] {
  const out: KeyLine[] = [];
  text.split('\n').forEach((raw, i) => {
    const t = raw.trim();
    if (t !== '' && !t.startsWith('#')) out.push({ text: t, line: i + 1 });
  });
  return out;
}

const DESCRIBE: Record<KeyKind, string> = {
  recipient: 'a Keyward recipient (public key)',
  identity: 'a Keyward identity (secret key)',
  'verifying-key': "a signer's verifying key",
  'signing-key': 'a signing (secret) key',
  'age-recipient': 'an age recipient',
  'age-identity': 'an age identity (secret key)',
  unknown: 'not a Keyward or age key',
};

/** Shows at most the start of a public string; secrets are never shown. */
const preview = (s: string) => JSON.stringify(s.length > 20 ? s.slice(0, 20) + '…' : s);

export interface Recipients {
  readonly keyward: HpkeRecipient[];
  readonly age: age.AgeRecipient[];
}

/**
 * Recipients from `-r` values and `-R` files. In age mode only `age1…`
 * recipients are accepted, otherwise only Keyward ones.
 */
export async function loadRecipients(values: readonly string[], files: readonly string[], ageMode: boolean, io: Io, stdin: StdinClaim): Promise<Recipients> {
  const out: Recipients = { keyward: [], age: [] };
  const add = async (text: string, where: string, showable: boolean): Promise<void> => {
    const kind = classifyKeyString(text);
    if (kind === 'recipient' && !ageMode) out.keyward.push(await prefixed(where, () => parseRecipient(text)));
    else if (kind === 'age-recipient' && ageMode) out.age.push(await prefixed(where, () => age.parseAgeRecipient(text)));
    else if (kind === 'recipient' || kind === 'age-recipient') {
      fail('KW_INVALID_KEY_STRING', `${where} is ${DESCRIBE[kind]}; ${ageMode ? 'age files (--age) take age1… recipients' : 'age recipients need --age'}`);
    } else if (kind === 'unknown' && showable) {
      fail('KW_INVALID_KEY_STRING', `${where} (${preview(text)}) is not ${ageMode ? 'an age' : 'a Keyward'} recipient`);
    } else {
      const hint = kind === 'identity' || kind === 'age-identity' ? ' (print its recipient with "keyward keygen -y FILE")' : '';
      fail('KW_INVALID_KEY_STRING', `${where} is ${DESCRIBE[kind]}, not a recipient${hint}`);
    }
  };
  for (const [i, v] of values.entries()) await add(v.trim(), `-r value #${i + 1}`, !looksSecret(v));
  for (const f of files) {
    for (const { text, line } of keyLines(await readTextFile(f, io, stdin, 'a recipients file'))) await add(text, `'${f}' line ${line}`, false);
  }
  return out;
}

/** Adds where a core error came from (core messages about public strings are safe to show). */
async function prefixed<T>(where: string, f: () => T | Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (isKeywardError(e)) throw new KeywardError(e.code, `${where}: ${e.message}`);
    throw e;
  }
}

const looksSecret = (s: string) => /secret/i.test(s);

export interface Identities {
  readonly keyward: HpkeIdentity[];
  readonly age: age.AgeIdentity[];
}

/** Identities from `-i` files: Keyward identities and age identities may be mixed. */
export async function loadIdentities(files: readonly string[], io: Io, stdin: StdinClaim): Promise<Identities> {
  const out: Identities = { keyward: [], age: [] };
  for (const f of files) {
    const lines = keyLines(await readTextFile(f, io, stdin, 'an identity file'));
    if (lines.length === 0) fail('KW_INVALID_KEY_STRING', `the identity file '${f}' holds no key`);
    for (const { text, line } of lines) {
      const where = `'${f}' line ${line}`;
      const kind = classifyKeyString(text);
      if (kind === 'identity') out.keyward.push(await withoutEcho(() => parseIdentity(text), `${where}: invalid Keyward identity (bad checksum or length)`));
      else if (kind === 'age-identity') out.age.push(await withoutEcho(() => age.parseAgeIdentity(text), `${where}: invalid or unsupported age identity`));
      else if (kind === 'signing-key') fail('KW_INVALID_KEY_STRING', `${where} is a signing key; identity files hold decryption keys (sign with "keyward seal --sign FILE")`);
      else fail('KW_INVALID_KEY_STRING', `${where} is ${DESCRIBE[kind]}, not an identity`);
    }
  }
  return out;
}

/** The one signing key of a `--sign` file. */
export async function loadSigningKey(file: string, io: Io, stdin: StdinClaim): Promise<SigningKey> {
  const lines = keyLines(await readTextFile(file, io, stdin, 'the signing key file'));
  let key: SigningKey | null = null;
  for (const { text, line } of lines) {
    const where = `'${file}' line ${line}`;
    const kind = classifyKeyString(text);
    if (kind !== 'signing-key') fail('KW_INVALID_KEY_STRING', `${where} is ${DESCRIBE[kind]}; --sign needs a file with one signing key (keyward keygen --signing)`);
    if (key) fail('KW_INVALID_KEY_STRING', `'${file}' holds more than one signing key`);
    key = await withoutEcho(() => parseSigningKey(text), `${where}: invalid signing key (bad checksum or length)`);
  }
  if (!key) fail('KW_INVALID_KEY_STRING', `'${file}' holds no signing key`);
  return key;
}

/** `--verify` values: a verifying key string (`kwed25519…`), or a file holding such keys. */
export async function loadVerifyingKeys(values: readonly string[], io: Io, stdin: StdinClaim): Promise<VerifyingKey[]> {
  const out: VerifyingKey[] = [];
  for (const v of values) {
    const kind = classifyKeyString(v);
    if (kind === 'verifying-key') {
      out.push(await prefixed('--verify', () => parseVerifyingKey(v.trim())));
      continue;
    }
    if (kind !== 'unknown' && !v.includes('/')) {
      fail('KW_INVALID_KEY_STRING', `a --verify value is ${DESCRIBE[kind]}; --verify takes a verifying key (kwed25519…) or a file holding one`);
    }
    let text: string;
    try {
      text = await readTextFile(v, io, stdin, 'a verifying key file');
    } catch (e) {
      if (isKeywardError(e, 'KW_IO')) {
        usageError(`--verify ${looksSecret(v) ? 'value' : preview(v)} is neither a verifying key (kwed25519…) nor a readable file`);
      }
      throw e;
    }
    const lines = keyLines(text);
    if (lines.length === 0) fail('KW_INVALID_KEY_STRING', `the verifying key file '${v}' holds no key`);
    for (const { text: t, line } of lines) {
      const where = `'${v}' line ${line}`;
      const k = classifyKeyString(t);
      if (k === 'signing-key') fail('KW_INVALID_KEY_STRING', `${where} is a signing (secret) key; give its verifying key instead ("keyward keygen -y '${v}'")`);
      if (k !== 'verifying-key') fail('KW_INVALID_KEY_STRING', `${where} is ${DESCRIBE[k]}, not a verifying key`);
      out.push(await prefixed(where, () => parseVerifyingKey(t)));
    }
  }
  return out;
}

/** `--context KEY=VALUE` values, in order. */
export function parseContext(values: readonly string[]): [string, string][] {
  return values.map((v) => {
    const eq = v.indexOf('=');
    if (eq < 0) usageError(`--context ${preview(v)} is not KEY=VALUE`);
    return [v.slice(0, eq), v.slice(eq + 1)] as [string, string];
  });
}
