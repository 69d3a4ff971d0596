/**
 * Encryption context: validation when sealing and opening (empty keys,
 * duplicates, limits, well-formed Unicode), strict parsing of the context in
 * untrusted headers, and the comparison rule.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { concat, u16be, utf8 } from '../../src/bytes.js';
import { LIMITS } from '../../src/format/constants.js';
import { contextMatches, encodeContext, normalizeContext, type ContextInput } from '../../src/format/context.js';
import { parseHeader } from '../../src/format/header.js';
import { open, seal } from '../../src/seal.js';
import { headerOffsets, reencodeHeader } from './craft.js';
import { rejectsWith, testKeys, throwsWith } from './helpers.js';

const keys = await testKeys();
const recipients = [keys.recipients.x25519];
const identities = [keys.identities.x25519];
const pt = utf8.encode('context');

void describe('context validation (seal and open)', () => {
  const invalid: [string, ContextInput][] = [
    ['an empty key (record)', { '': 'v' }],
    ['an empty key (pairs)', [['', 'v']]],
    ['a duplicate key', [['k', '1'], ['k', '2']]],
    ['a duplicate key with equal values', [['k', 'v'], ['k', 'v']]],
    ['a lone high surrogate in a key', [['k\uD800', 'v']]],
    ['a lone low surrogate in a value', [['k', '\uDC00v']]],
    ['reversed surrogates', [['k', '\uDC00\uD800']]],
    ['a non-string value', [['k', 1 as unknown as string]]],
    ['a non-string key', [[Symbol('k') as unknown as string, 'v']]],
  ];
  for (const [what, ctx] of invalid) {
    void test(`rejects ${what}: KW_CONTEXT_INVALID`, async () => {
      throwsWith(() => normalizeContext(ctx), 'KW_CONTEXT_INVALID');
      await rejectsWith(() => seal(pt, { recipients, context: ctx }), 'KW_CONTEXT_INVALID', 'seal');
      const env = await seal(pt, { recipients });
      await rejectsWith(() => open(env, { identities, context: ctx }), 'KW_CONTEXT_INVALID', 'open');
    });
  }

  void test('accepts well-formed Unicode (astral characters, combining marks, NUL) and empty values', async () => {
    const ctx: [string, string][] = [['🔑', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢'], ['e\u0301', ''], ['nul', '\u0000'], ['ключ', 'значение']];
    const env = await seal(pt, { recipients, context: ctx });
    const r = await open(env, { identities, context: ctx });
    assert.deepEqual(r.context, ctx);
    // NFC and NFD spellings are different keys: no normalization of context strings.
    await rejectsWith(() => open(env, { identities, context: ctx.map(([k, v]) => [k.normalize('NFC'), v] as [string, string]) }), 'KW_CONTEXT_MISMATCH');
  });

  void test('a leading U+FEFF is part of a context string: kept by the parser, never equal to the string without it', async () => {
    const ctx: [string, string][] = [['tenant', '\uFEFFacme'], ['\uFEFFk', 'v']];
    const env = await seal(pt, { recipients, context: ctx });
    assert.deepEqual(parseHeader(env).context, ctx);
    assert.deepEqual((await open(env, { identities, context: ctx })).context, ctx);
    await rejectsWith(() => open(env, { identities, context: [['tenant', 'acme'], ['k', 'v']] }), 'KW_CONTEXT_MISMATCH');
    const plain = await seal(pt, { recipients, context: [['tenant', 'acme'], ['k', 'v']] });
    await rejectsWith(() => open(plain, { identities, context: ctx }), 'KW_CONTEXT_MISMATCH');
  });

  void test(`at most ${LIMITS.maxContextPairs} pairs: KW_LIMIT_EXCEEDED beyond`, async () => {
    const pairs = (n: number) => Array.from({ length: n }, (_, i) => [`k${i}`, 'v'] as [string, string]);
    assert.equal(normalizeContext(pairs(LIMITS.maxContextPairs)).length, LIMITS.maxContextPairs);
    throwsWith(() => normalizeContext(pairs(LIMITS.maxContextPairs + 1)), 'KW_LIMIT_EXCEEDED');
    const env = await seal(pt, { recipients, context: pairs(LIMITS.maxContextPairs) });
    assert.equal((await open(env, { identities, context: pairs(LIMITS.maxContextPairs) })).context.length, LIMITS.maxContextPairs);
    await rejectsWith(() => seal(pt, { recipients, context: pairs(LIMITS.maxContextPairs + 1) }), 'KW_LIMIT_EXCEEDED');
  });

  void test(`at most ${LIMITS.maxContextBytes} UTF-8 bytes of keys and values: KW_LIMIT_EXCEEDED beyond`, async () => {
    // 'é' is 2 UTF-8 bytes but 1 UTF-16 unit: the limit counts bytes.
    const exact: [string, string][] = [['k', 'é'.repeat((LIMITS.maxContextBytes - 2) / 2) + 'x']]; // 1 + 2·8191 + 1 bytes
    assert.equal(utf8.encode(exact[0]![0] + exact[0]![1]).length, LIMITS.maxContextBytes);
    normalizeContext(exact);
    const over: [string, string][] = [['k', exact[0]![1] + 'x']];
    throwsWith(() => normalizeContext(over), 'KW_LIMIT_EXCEEDED');
    const overByBytes: [string, string][] = [['k', 'é'.repeat(LIMITS.maxContextBytes / 2)]]; // 8192 units, 16385 bytes with the key
    throwsWith(() => normalizeContext(overByBytes), 'KW_LIMIT_EXCEEDED');
    const env = await seal(pt, { recipients, context: exact });
    assert.deepEqual((await open(env, { identities, context: exact })).context, exact);
  });

  void test('a record keeps its (string-key) insertion order; pairs keep theirs', () => {
    assert.deepEqual(normalizeContext({ b: '1', a: '2' }), [['b', '1'], ['a', '2']]);
    assert.deepEqual(normalizeContext([['b', '1'], ['a', '2']]), [['b', '1'], ['a', '2']]);
    assert.deepEqual(normalizeContext(undefined), []);
  });

  void test('the comparison is exact set equality, independent of order', () => {
    const a: [string, string][] = [['x', '1'], ['y', '2']];
    assert.ok(contextMatches(a, [['y', '2'], ['x', '1']]));
    assert.ok(!contextMatches(a, [['x', '1']]));
    assert.ok(!contextMatches(a, [['x', '1'], ['y', '2'], ['z', '3']]));
    assert.ok(!contextMatches(a, [['x', '1'], ['y', '3']]));
    assert.ok(!contextMatches([], [['x', '1']]));
    assert.ok(contextMatches([], []));
  });

  void test('encodeContext: count ‖ (len ‖ key ‖ len ‖ value)*, UTF-8', () => {
    assert.deepEqual(encodeContext([['a', 'é']]), concat(u16be(1), u16be(1), utf8.encode('a'), u16be(2), utf8.encode('é')));
    assert.deepEqual(encodeContext([]), u16be(0));
  });
});

const base = await seal(pt, { recipients, context: [['key', 'abc']] });

void describe('context in untrusted headers', () => {
  const valueOffset = headerOffsets(base).context + 2 + 2 + 'key'.length + 2;

  const withContextBytes = (bytes: number[]) => {
    const out = base.slice();
    out.set(bytes, valueOffset);
    return out;
  };

  void test('invalid UTF-8 (a stray continuation byte, an overlong form, an encoded surrogate) is KW_MALFORMED_HEADER', () => {
    for (const bytes of [[0x80, 0x62, 0x63], [0xc0, 0xa1, 0x63], [0xed, 0xa0, 0x80]]) {
      throwsWith(() => parseHeader(withContextBytes(bytes)), 'KW_MALFORMED_HEADER', bytes.join(','));
    }
    assert.deepEqual(parseHeader(base).context, [['key', 'abc']]);
  });

  void test('an empty key or a duplicate key in a header is KW_MALFORMED_HEADER', () => {
    throwsWith(() => parseHeader(reencodeHeader(base, (h) => { h.context = [['', 'v']]; })), 'KW_MALFORMED_HEADER');
    throwsWith(() => parseHeader(reencodeHeader(base, (h) => { h.context = [['k', 'v'], ['k', 'w']]; })), 'KW_MALFORMED_HEADER');
  });

  void test('too many pairs or too many bytes in a header is KW_LIMIT_EXCEEDED', () => {
    throwsWith(() => parseHeader(reencodeHeader(base, (h) => {
      h.context = Array.from({ length: LIMITS.maxContextPairs + 1 }, (_, i) => [`k${i}`, ''] as [string, string]);
    })), 'KW_LIMIT_EXCEEDED');
    throwsWith(() => parseHeader(reencodeHeader(base, (h) => { h.context = [['k', 'x'.repeat(LIMITS.maxContextBytes)]]; })), 'KW_LIMIT_EXCEEDED');
  });

  void test('a context length running past the header is KW_MALFORMED_HEADER', () => {
    const out = base.slice();
    out.set(u16be(0xffff), valueOffset - 2);
    throwsWith(() => parseHeader(out), 'KW_MALFORMED_HEADER');
  });
});
