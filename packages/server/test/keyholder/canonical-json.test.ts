/**
 * RFC 8785 canonical JSON: the test data of the reference implementation
 * (cyberphone/json-canonicalization testdata/, each file its own case) and the
 * RFC's own examples, as far as they stay inside the integer-only subset; the
 * parts outside it (floats, huge numbers) must be refused, not rounded.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { canonicalJson, canonicalJsonBytes, MAX_DEPTH } from '../../src/keyholder/canonical-json.js';
import { rejectsKh } from './helpers.js';

const VECTORS: [name: string, input: string, expected: string][] = [
  ['testdata/structures.json',
    '{\n  "1": {"f": {"f": "hi","F": 5} ,"\\n": 56.0},\n  "10": { },\n  "": "empty",\n  "a": { },\n  "111": [ { } ],\n  "A": { }\n}',
    '{"":"empty","1":{"\\n":56,"f":{"F":5,"f":"hi"}},"10":{},"111":[{}],"A":{},"a":{}}'],
  ['testdata/arrays.json',
    '[\n  56,\n  {\n    "d": true,\n    "10": null,\n    "1": [ ]\n  }\n]',
    '[56,{"1":[],"10":null,"d":true}]'],
  ['testdata/french.json',
    '{\n  "peach": "This sorting order",\n  "péché": "is wrong according to French",\n  "pêche": "but canonicalization MUST",\n  "sin":   "ingnore locale"\n}\n',
    '{"peach":"This sorting order","péché":"is wrong according to French","pêche":"but canonicalization MUST","sin":"ingnore locale"}'],
  ['testdata/unicode.json (no normalization)',
    '{\n  "Unnormalized Unicode":"\\u1e0d\\u0307"\n}\n',
    '{"Unnormalized Unicode":"\u1e0d\u0307"}'],
  ['testdata/weird.json (sorting by UTF-16 code units)',
    '{\n  "\\u20ac": "Euro Sign",\n  "1": "One",\n  "\\u0080": "Control\\u007f",\n  "\\ud83d\\ude02": "Smiley",\n  "\\u00f6": "Latin Small Letter O With Diaeresis",\n  "\\ufb33": "Hebrew Letter Dalet With Dagesh",\n  "</script>": "Browser Challenge"\n}\n',
    '{"1":"One","</script>":"Browser Challenge","\u0080":"Control\u007f","ö":"Latin Small Letter O With Diaeresis","€":"Euro Sign","\ud83d\ude02":"Smiley","\ufb33":"Hebrew Letter Dalet With Dagesh"}'],
  ['testdata/simpleString.json',
    '    "this is a test string 1235"',
    '"this is a test string 1235"'],
  ['RFC 8785 §3.2.3 sorting example',
    '{\n  "\\u20ac": "Euro Sign",\n  "\\r": "Carriage Return",\n  "\\ufb33": "Hebrew Letter Dalet With Dagesh",\n  "1": "One",\n  "\\ud83d\\ude00": "Emoji: Grinning Face",\n  "\\u0080": "Control",\n  "\\u00f6": "Latin Small Letter O With Diaeresis"\n}',
    '{"\\r":"Carriage Return","1":"One","\u0080":"Control","ö":"Latin Small Letter O With Diaeresis","€":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'],
  ['RFC 8785 §3.2.2 string and literals (numbers omitted)',
    '{\n  "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",\n  "literals": [null, true, false]\n}',
    '{"literals":[null,true,false],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'],
];

void describe('RFC 8785 vectors', () => {
  for (const [name, input, expected] of VECTORS) {
    void test(name, () => {
      assert.equal(canonicalJson(JSON.parse(input)), expected);
    });
  }

  void test('simpleString.json output bytes (testdata/outhex)', () => {
    const hex = '22 74 68 69 73 20 69 73 20 61 20 74 65 73 74 20 73 74 72 69 6E 67 20 31 32 33 35 22';
    assert.equal(Buffer.from(canonicalJsonBytes('this is a test string 1235')).toString('hex'), hex.replace(/ /g, '').toLowerCase());
  });

  void test('every control character is escaped as RFC 8785 §3.2.2.2 says', () => {
    const short: Record<number, string> = { 8: '\\b', 9: '\\t', 10: '\\n', 12: '\\f', 13: '\\r' };
    for (let c = 0; c < 0x20; c++) {
      assert.equal(canonicalJson(String.fromCharCode(c)), `"${short[c] ?? `\\u${c.toString(16).padStart(4, '0')}`}"`);
    }
    assert.equal(canonicalJson('"\\/\u007f\u2028'), '"\\"\\\\/\u007f\u2028"');
  });

  void test('integers as ECMAScript writes them', () => {
    assert.equal(canonicalJson([0, -0, 1, -1, 9007199254740991, -9007199254740991, 1000000]), '[0,0,1,-1,9007199254740991,-9007199254740991,1000000]');
  });
});

void describe('outside the subset: refused, never rounded or skipped', () => {
  const bad: [string, unknown][] = [
    ['RFC 8785 §3.2.2 numbers (floats)', JSON.parse('[333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001]')],
    ['a float', { a: 1.5 }],
    ['NaN', NaN],
    ['Infinity', [Infinity]],
    ['an unsafe integer', 2 ** 53],
    ['undefined in an object', { a: undefined }],
    ['undefined in an array', [undefined]],
    ['a sparse array', [1, , 2]], // eslint-disable-line no-sparse-arrays
    ['a bigint', 1n],
    ['a function', { f: () => 1 }],
    ['a symbol', Symbol('s')],
    ['symbol keys', { [Symbol('s')]: 1 }],
    ['a Date', new Date(0)],
    ['a Map', new Map()],
    ['a Uint8Array', new Uint8Array(2)],
    ['a class instance', new (class X { a = 1; })()],
    ['a lone surrogate in a value', '\ud800'],
    ['a lone surrogate in a key', { '\udc00': 1 }],
  ];
  for (const [name, v] of bad) {
    void test(name, async () => { await rejectsKh(() => canonicalJson(v), 'KW_INVALID_ARGUMENT'); });
  }

  void test(`nesting deeper than ${MAX_DEPTH}, and cycles`, async () => {
    let deep: unknown = 1;
    for (let i = 0; i < MAX_DEPTH; i++) deep = [deep];
    canonicalJson(deep);
    await rejectsKh(() => canonicalJson([deep]), 'KW_INVALID_ARGUMENT');
    const cyc: Record<string, unknown> = {};
    cyc.self = cyc;
    await rejectsKh(() => canonicalJson(cyc), 'KW_INVALID_ARGUMENT');
  });

  void test('a null-prototype object is a plain object', () => {
    const o = Object.create(null) as Record<string, number>;
    o.b = 2; o.a = 1;
    assert.equal(canonicalJson(o), '{"a":1,"b":2}');
  });
});

void describe('properties', () => {
  const json = fc.letrec((tie) => ({
    value: fc.oneof(
      { depthSize: 'small' },
      fc.string({ unit: 'grapheme' }), fc.maxSafeInteger(), fc.boolean(), fc.constant(null),
      fc.array(tie('value'), { maxLength: 5 }),
      fc.dictionary(fc.string({ unit: 'grapheme' }), tie('value'), { maxKeys: 5 }),
    ),
  })).value;

  void test('parses back to the same value, is idempotent, and ignores key order', () => {
    fc.assert(fc.property(json, (v) => {
      const c = canonicalJson(v);
      assert.deepEqual(JSON.parse(c), JSON.parse(JSON.stringify(v)));
      assert.equal(canonicalJson(JSON.parse(c)), c);
      const reversed = JSON.parse(c, (_k, x: unknown) => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).reverse()) : x));
      assert.equal(canonicalJson(reversed), c);
    }), { numRuns: 300, seed: 0x4b575244 });
  });
});
