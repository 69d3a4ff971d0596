/**
 * RFC 8785 canonical JSON of the audit module: the RFC's examples and the
 * reference implementation's test data inside the integer-only subset (one
 * test case each), refusals outside it, the strict parser, and a property
 * cross-test against the keyholder's independent canonicalizer.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { canonicalJson, canonicalJsonBytes, MAX_JSON_DEPTH, parseCanonicalJson } from '../../src/audit/canonical-json.js';
import { canonicalJson as keyholderCanonicalJson } from '../../src/keyholder/canonical-json.js';
import { rejectsAudit } from './helpers.js';

const VECTORS: [name: string, input: string, expected: string][] = [
  ['RFC 8785 §3.2.3 sorting example (UTF-16 code units)',
    '{"\\u20ac":"Euro Sign","\\r":"Carriage Return","\\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\\ud83d\\ude00":"Emoji: Grinning Face","\\u0080":"Control","\\u00f6":"Latin Small Letter O With Diaeresis"}',
    '{"\\r":"Carriage Return","1":"One","\u0080":"Control","ö":"Latin Small Letter O With Diaeresis","€":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'],
  ['RFC 8785 §3.2.2 strings and literals (its numbers are outside the subset)',
    '{"string":"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/","literals":[null,true,false]}',
    '{"literals":[null,true,false],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'],
  ['testdata/arrays.json', '[\n 56,\n {\n "d": true,\n "10": null,\n "1": [ ]\n }\n]', '[56,{"1":[],"10":null,"d":true}]'],
  ['testdata/structures.json (56.0 is the integer 56)',
    '{"1":{"f":{"f":"hi","F":5},"\\n":56.0},"10":{},"":"empty","a":{},"111":[{}],"A":{}}',
    '{"":"empty","1":{"\\n":56,"f":{"F":5,"f":"hi"}},"10":{},"111":[{}],"A":{},"a":{}}'],
  ['testdata/french.json (no locale ordering)',
    '{"peach":"This sorting order","péché":"is wrong according to French","pêche":"but canonicalization MUST","sin":"ingnore locale"}',
    '{"peach":"This sorting order","péché":"is wrong according to French","pêche":"but canonicalization MUST","sin":"ingnore locale"}'],
  ['testdata/unicode.json (no normalization)', '{"Unnormalized Unicode":"\\u1e0d\\u0307"}', '{"Unnormalized Unicode":"\u1e0d\u0307"}'],
  ['testdata/weird.json',
    '{"\\u20ac":"Euro Sign","1":"One","\\u0080":"Control\\u007f","\\ud83d\\ude02":"Smiley","\\u00f6":"Latin Small Letter O With Diaeresis","\\ufb33":"Hebrew Letter Dalet With Dagesh","</script>":"Browser Challenge"}',
    '{"1":"One","</script>":"Browser Challenge","\u0080":"Control\u007f","ö":"Latin Small Letter O With Diaeresis","€":"Euro Sign","\ud83d\ude02":"Smiley","\ufb33":"Hebrew Letter Dalet With Dagesh"}'],
  ['testdata/simpleString.json', '  "this is a test string 1235"  ', '"this is a test string 1235"'],
];

void describe('RFC 8785 vectors', () => {
  for (const [name, input, expected] of VECTORS) {
    void test(name, () => {
      assert.equal(canonicalJson(JSON.parse(input)), expected);
      assert.deepEqual(parseCanonicalJson(expected), JSON.parse(input));
    });
  }

  void test('testdata/outhex/simpleString.txt bytes', () => {
    const outhex = '22 74 68 69 73 20 69 73 20 61 20 74 65 73 74 20 73 74 72 69 6E 67 20 31 32 33 35 22';
    assert.equal(Buffer.from(canonicalJsonBytes('this is a test string 1235')).toString('hex'), outhex.replace(/ /g, '').toLowerCase());
  });

  void test('control characters: the short escapes, else \\u00xx lower case (RFC 8785 §3.2.2.2)', () => {
    const short: Record<number, string> = { 8: '\\b', 9: '\\t', 10: '\\n', 12: '\\f', 13: '\\r' };
    for (let c = 0; c < 0x20; c++) assert.equal(canonicalJson(String.fromCharCode(c)), `"${short[c] ?? `\\u${c.toString(16).padStart(4, '0')}`}"`);
    assert.equal(canonicalJson('"\\/\u007f\u2028'), '"\\"\\\\/\u007f\u2028"');
  });

  void test('integers as ECMAScript writes them; -0 is 0', () => {
    assert.equal(canonicalJson([0, -0, 1, -1, 1e15, 9007199254740991, -9007199254740991]), '[0,0,1,-1,1000000000000000,9007199254740991,-9007199254740991]');
  });
});

void describe('outside the subset: refused, never rounded or skipped', () => {
  const bad: [string, unknown][] = [
    ['RFC 8785 §3.2.2 numbers (floats)', JSON.parse('[333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001]')],
    ['a float', { a: 1.5 }],
    ['NaN', NaN],
    ['-Infinity', [-Infinity]],
    ['2^53', 2 ** 53],
    ['undefined member', { a: undefined }],
    ['undefined element', [undefined]],
    ['a sparse array', [1, , 2]], // eslint-disable-line no-sparse-arrays
    ['a bigint', 1n],
    ['a function', () => 1],
    ['a symbol', Symbol('s')],
    ['symbol keys', { [Symbol('s')]: 1 }],
    ['a Date', new Date(0)],
    ['a Uint8Array', new Uint8Array(1)],
    ['a Map', new Map()],
    ['a class instance', new (class X {})()],
    ['a lone surrogate', '\ud800'],
    ['a lone surrogate in a key', { '\udc00': 1 }],
    ['a __proto__ key', JSON.parse('{"__proto__":1}')],
    ['nesting too deep', JSON.parse('['.repeat(MAX_JSON_DEPTH + 1) + ']'.repeat(MAX_JSON_DEPTH + 1))],
  ];
  for (const [name, value] of bad) {
    void test(name, () => rejectsAudit(() => canonicalJson(value), 'KW_INVALID_ARGUMENT'));
  }

  void test('a cycle is refused (depth limit), not a stack overflow', async () => {
    const a: unknown[] = [];
    a.push(a);
    await rejectsAudit(() => canonicalJson(a), 'KW_INVALID_ARGUMENT');
  });

  void test('objects without a prototype are plain', () => {
    const o = Object.create(null) as Record<string, number>;
    o.b = 2;
    o.a = 1;
    assert.equal(canonicalJson(o), '{"a":1,"b":2}');
  });

  void test(`nesting of exactly ${MAX_JSON_DEPTH} levels is fine`, () => {
    const text = '['.repeat(MAX_JSON_DEPTH) + ']'.repeat(MAX_JSON_DEPTH);
    assert.equal(canonicalJson(JSON.parse(text)), text);
  });
});

void describe('parseCanonicalJson accepts exactly the canonical text', () => {
  const notCanonical = [
    ['whitespace', '{ "a":1}'],
    ['unsorted keys', '{"b":1,"a":2}'],
    ['duplicate keys', '{"a":1,"a":1}'],
    ['1.0', '{"a":1.0}'],
    ['exponent', '[1e2]'],
    ['needless escape', '["\\u0041"]'],
    ['escaped slash', '["\\/"]'],
    ['upper-case hex escape', '["\\u001F"]'],
    ['trailing newline', '{"a":1}\n'],
    ['a float', '[0.5]'],
    ['not JSON', '{a:1}'],
    ['a lone surrogate escape', '["\\ud800"]'],
    ['a __proto__ key', '{"__proto__":{}}'],
  ];
  for (const [name, text] of notCanonical) void test(name, () => rejectsAudit(() => parseCanonicalJson(text!), 'KW_AUDIT_MALFORMED'));
});

const jsonValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.string({ unit: 'grapheme' }),
    fc.string({ unit: 'binary' }).filter((s) => s.isWellFormed()),
    fc.maxSafeInteger(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(fc.string({ unit: 'binary' }).filter((k) => k.isWellFormed() && k !== '__proto__'), tie('value'), { maxKeys: 5 }),
  ),
})).value;

void describe('properties', () => {
  void test('agrees with the keyholder canonicalizer, round-trips, and is idempotent', () => {
    fc.assert(
      fc.property(jsonValue, (v) => {
        const text = canonicalJson(v);
        assert.equal(text, keyholderCanonicalJson(v));
        assert.equal(canonicalJson(JSON.parse(text)), text);
        assert.equal(canonicalJson(parseCanonicalJson(text)), text);
      }),
      { numRuns: 500 },
    );
  });

  void test('key order of the input never matters', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string().filter((k) => k !== '__proto__'), fc.integer()), (d) => {
        const reversed = Object.fromEntries(Object.entries(d).reverse());
        assert.equal(canonicalJson(d), canonicalJson(reversed));
      }),
    );
  });
});
