/**
 * `keyward inspect`: show an envelope's header without opening it. Nothing
 * shown is authenticated: the header is untrusted until `open` succeeds.
 */
import { age, inspect as describe, type EnvelopeDescription } from '@keyward/core';
import { defineCommand } from '../lib/command.js';
import { describeAgeFile, type AgeDescription } from '../lib/age-file.js';
import { EXIT_OK, fail, usageError } from '../lib/errors.js';
import { isStdStream, peekInput, writeAll } from '../lib/io.js';
import { printJson, quoted } from '../lib/output.js';

export const inspect = defineCommand({
  name: 'inspect',
  summary: "show an envelope's (or age file's) header without decrypting anything",
  usage: ['[--json] [IN]'],
  flags: {
    json: { type: 'boolean', help: 'print the header as JSON (the inspect() object of @keyward/core)' },
  },
  details: `
Reads a Keyward envelope (binary or armored) or an age file from IN or stdin.
Nothing shown is authenticated: a header can say anything until "keyward open"
verifies it. Context strings are shown quoted, with control characters escaped.

--json prints core's inspect() object for Keyward envelopes:
  { format, version, aead, chunkSize, context, signature: { alg, keyId } | null,
    stanzas: [{ type, keyId, fieldLengths }], headerLength, payloadLength,
    chunkCount, plaintextLength }
and for age files:
  { format: "age", version, armored, stanzas: [{ type }], postQuantum,
    headerLength, payloadLength, chunkCount, plaintextLength }`,
  examples: ['keyward inspect report.kw', 'keyward inspect --json < row.kw | jq .context'],
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length > 1) usageError('inspect reads one input; give at most one IN');
    if (isStdStream(positionals[0])) stdin.claim('the envelope');
    const bytes = await (await peekInput(positionals[0], io, 0)).readAll();
    let description: EnvelopeDescription | AgeDescription;
    if (age.isAgeFile(bytes)) {
      const d = describeAgeFile(bytes);
      if (!d) fail('KW_AGE_MALFORMED', 'the age header is incomplete or malformed');
      description = d;
    } else {
      description = describe(bytes);
    }
    if (flags.json) await printJson(io.stdout, description);
    else await writeAll(io.stdout, description.format === 'age' ? ageText(description) : keywardText(description));
    return EXIT_OK;
  },
});

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

function table(rows: readonly (readonly [string, string | readonly string[]])[]): string {
  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  const out: string[] = [];
  for (const [k, v] of rows) {
    const values = typeof v === 'string' ? [v] : v.length ? v : ['(none)'];
    values.forEach((line, i) => out.push(`${(i === 0 ? k : '').padEnd(width)}${line}`));
  }
  return out.join('\n') + '\n';
}

function keywardText(d: EnvelopeDescription): string {
  const typeWidth = Math.max(0, ...d.stanzas.map((s) => s.type.length)) + 2;
  return table([
    ['format', `keyward v${d.version}`],
    ['aead', d.aead],
    ['chunk size', `${d.chunkSize} bytes`],
    ['context', d.context.map(([k, v]) => `${quoted(k)} = ${quoted(v)}`)],
    ['signature', d.signature ? `${d.signature.alg}, key id ${d.signature.keyId}` : 'none (unsigned)'],
    ['stanzas', [plural(d.stanzas.length, 'stanza'), ...d.stanzas.map((s) => `  ${s.type.padEnd(typeWidth)}${s.keyId ? `key id ${s.keyId}` : s.type === 'scrypt' ? 'passphrase' : 'anonymous'}`)]],
    ['header', `${d.headerLength} bytes`],
    ['payload', `${d.payloadLength} bytes in ${plural(d.chunkCount, 'chunk')} (${d.plaintextLength} bytes of plaintext)`],
    ['note', 'nothing above is authenticated until "keyward open" succeeds'],
  ]);
}

function ageText(d: AgeDescription): string {
  return table([
    ['format', `age (${d.version})${d.armored ? ', armored' : ''}`],
    ['stanzas', [plural(d.stanzas.length, 'stanza'), ...d.stanzas.map((s) => `  ${quoted(s.type)}`)]],
    ['post-quantum', d.postQuantum ? 'yes' : 'no'],
    ['header', `${d.headerLength} bytes`],
    ['payload', `${d.payloadLength} bytes in ${plural(d.chunkCount, 'chunk')} (${d.plaintextLength} bytes of plaintext)`],
  ]);
}
