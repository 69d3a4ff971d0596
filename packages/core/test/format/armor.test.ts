/**
 * Armor strictness: exactly one text form per envelope — padded standard
 * base64, 64 columns, LF line endings, BEGIN/END lines, nothing around them.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ARMOR_BEGIN, ARMOR_END, armor, dearmor, isArmored, toBinary } from '../../src/armor.js';
import { utf8 } from '../../src/bytes.js';
import { inspect } from '../../src/inspect.js';
import { open, seal } from '../../src/seal.js';
import { rejectsWith, testKeys, throwsWith } from './helpers.js';

const keys = await testKeys();
const bytes = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 37 + 11) & 0xff);
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

void describe('armor', () => {
  void test('round trip for every length modulo 3 and around the 48-byte (64-column) line boundary', () => {
    for (let n = 1; n <= 200; n++) {
      const a = armor(bytes(n));
      assert.ok(a.startsWith(ARMOR_BEGIN + '\n') && a.endsWith('\n' + ARMOR_END + '\n'), `framing, ${n} bytes`);
      const lines = a.split('\n').slice(1, -2);
      lines.forEach((l, i) => assert.ok(i === lines.length - 1 ? l.length >= 1 && l.length <= 64 : l.length === 64, `line ${i} of ${n} bytes`));
      assert.deepEqual(dearmor(a), bytes(n));
      assert.deepEqual(dearmor(utf8.encode(a)), bytes(n));
    }
  });

  void test('the form without the single final newline is accepted (and nothing else is optional)', () => {
    const a = armor(bytes(10));
    assert.deepEqual(dearmor(a.slice(0, -1)), bytes(10));
  });

  const env = bytes(100); // 100 bytes: 2 lines, the last with one '=' of padding
  const good = armor(env);
  const lines = good.split('\n');
  const mutate = (f: (ls: string[]) => string[]) => f([...lines]).join('\n');
  const lastBody = lines.length - 3;

  const bad: [string, string][] = [
    ['CRLF line endings', good.replaceAll('\n', '\r\n')],
    ['a CR before the final newline only', good.slice(0, -1) + '\r\n'],
    ['two final newlines', good + '\n'],
    ['text before the BEGIN line', 'hello\n' + good],
    ['a blank line before the BEGIN line', '\n' + good],
    ['text after the END line', good + 'trailer\n'],
    ['a space after the BEGIN line', mutate((ls) => { ls[0] += ' '; return ls; })],
    ['a lowercase BEGIN line', good.replace(ARMOR_BEGIN, ARMOR_BEGIN.toLowerCase())],
    ['an age BEGIN line', good.replace(ARMOR_BEGIN, '-----BEGIN AGE ENCRYPTED FILE-----')],
    ['a missing END line', lines.slice(0, -2).join('\n') + '\n'],
    ['a short line before the last', mutate((ls) => [ls[0]!, ls[1]!.slice(0, 63), ls[1]!.slice(63) + ls[2]!, ...ls.slice(3)])],
    ['a 65-column line', mutate((ls) => [ls[0]!, ls[1]! + ls[2]![0]!, ls[2]!.slice(1), ...ls.slice(3)])],
    ['an empty line in the body', mutate((ls) => [ls[0]!, ls[1]!, '', ...ls.slice(2)])],
    ['an empty body', `${ARMOR_BEGIN}\n${ARMOR_END}\n`],
    ['an empty last line', mutate((ls) => [...ls.slice(0, lastBody + 1), '', ...ls.slice(lastBody + 1)])],
    ['trailing whitespace on a line', mutate((ls) => { ls[1] += ' '; return ls; })],
    ['a tab in the body', mutate((ls) => { ls[1] = ls[1]!.slice(0, 10) + '\t' + ls[1]!.slice(11); return ls; })],
    ['base64url characters', mutate((ls) => { ls[1] = '-_' + ls[1]!.slice(2); return ls; })],
    ['missing padding', mutate((ls) => { ls[lastBody] = ls[lastBody]!.replace(/=+$/, ''); return ls; })],
    ['padding in the middle', mutate((ls) => { ls[1] = ls[1]!.slice(0, 4) + '====' + ls[1]!.slice(8); return ls; })],
    ['non-canonical padding bits', mutate((ls) => {
      const l = ls[lastBody]!;
      const i = l.indexOf('=') - 1;
      ls[lastBody] = l.slice(0, i) + ALPHABET[ALPHABET.indexOf(l[i]!) ^ 1]! + l.slice(i + 1);
      return ls;
    })],
    ['a non-ASCII character', mutate((ls) => { ls[1] = 'é' + ls[1]!.slice(1); return ls; })],
  ];
  for (const [what, text] of bad) {
    void test(`rejects ${what}: KW_ARMOR_INVALID`, () => {
      assert.notEqual(text, good);
      throwsWith(() => dearmor(text), 'KW_ARMOR_INVALID', what);
    });
  }

  void test('open() and inspect() accept armored text and armored bytes; invalid armor is KW_ARMOR_INVALID there too', async () => {
    const pt = utf8.encode('armored');
    const e = await seal(pt, { recipients: [keys.recipients.x25519] });
    const a = armor(e);
    assert.ok(isArmored(a) && isArmored(utf8.encode(a)) && !isArmored(e));
    assert.deepEqual(toBinary(a), e);
    assert.deepEqual((await open(a, { identities: [keys.identities.x25519] })).plaintext, pt);
    assert.deepEqual((await open(utf8.encode(a), { identities: [keys.identities.x25519] })).plaintext, pt);
    assert.equal(inspect(a).headerLength, inspect(e).headerLength);
    await rejectsWith(() => open(a.replaceAll('\n', '\r\n'), { identities: [keys.identities.x25519] }), 'KW_ARMOR_INVALID');
    await rejectsWith(() => open(utf8.encode(a.replaceAll('\n', '\r\n')), { identities: [keys.identities.x25519] }), 'KW_ARMOR_INVALID');
    throwsWith(() => inspect(a + 'x'), 'KW_ARMOR_INVALID');
  });

  void test('armored bytes that are not valid UTF-8 are rejected', () => {
    const a = utf8.encode(armor(bytes(10)));
    a[ARMOR_BEGIN.length + 3] = 0xff;
    throwsWith(() => dearmor(a), 'KW_ARMOR_INVALID');
  });
});
