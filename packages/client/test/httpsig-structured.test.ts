/**
 * The strict structured-field subset (RFC 8941) used by the signature fields:
 * accepted forms, refused forms, limits, and parse/serialize round trips.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { HttpSigError } from '../src/index.js';
import {
  parseDictionary,
  parseSignatureField,
  parseSignatureInput,
  serializeDictionary,
  serializeSignatureParams,
  SF_LIMITS,
  type BareItem,
  type Dictionary,
  type InnerList,
  type Item,
} from '../src/httpsig/structured.js';

const malformed = (e: unknown): boolean => e instanceof HttpSigError && e.code === 'HTTPSIG_MALFORMED';

void describe('parseDictionary accepts', () => {
  void test('integers, strings, byte sequences, inner lists and parameters, keeping order', () => {
    const d = parseDictionary(' a=1, b="x\\"y\\\\z";p=-5, c=:AQID:, d=("a" 2 :AA==:);q="r"  ');
    assert.deepEqual(d, [
      ['a', { kind: 'item', value: 1, params: [] }],
      ['b', { kind: 'item', value: 'x"y\\z', params: [['p', -5]] }],
      ['c', { kind: 'item', value: Uint8Array.from([1, 2, 3]), params: [] }],
      ['d', { kind: 'list', items: [
        { kind: 'item', value: 'a', params: [] },
        { kind: 'item', value: 2, params: [] },
        { kind: 'item', value: new Uint8Array(1), params: [] },
      ], params: [['q', 'r']] }],
    ]);
  });

  void test('OWS around commas, SP inside inner lists and before parameter keys', () => {
    assert.equal(parseDictionary('a=1,\tb=2 ,c=3').length, 3);
    assert.deepEqual(parseDictionary('a=(  "x"   "y"  );  p=1')[0]![1], {
      kind: 'list', items: [{ kind: 'item', value: 'x', params: [] }, { kind: 'item', value: 'y', params: [] }], params: [['p', 1]],
    });
  });

  void test('an empty field is an empty dictionary; empty inner list and empty bytes are values', () => {
    assert.deepEqual(parseDictionary(''), []);
    assert.deepEqual(parseDictionary('   '), []);
    assert.deepEqual(parseDictionary('a=()')[0]![1], { kind: 'list', items: [], params: [] });
    assert.deepEqual(parseDictionary('a=::')[0]![1], { kind: 'item', value: new Uint8Array(0), params: [] });
  });

  void test('the largest integers', () => {
    assert.equal((parseDictionary('a=999999999999999')[0]![1] as Item).value, 999_999_999_999_999);
    assert.equal((parseDictionary('a=-999999999999999')[0]![1] as Item).value, -999_999_999_999_999);
  });
});

void describe('parseDictionary refuses', () => {
  const cases: Array<[string, string]> = [
    ['a bare key (boolean)', 'a'],
    ['a boolean value', 'a=?1'],
    ['a boolean parameter', 'a=1;p'],
    ['a token', 'a=tok'],
    ['a decimal', 'a=1.5'],
    ['a date', 'a=@1659578233'],
    ['a display string', 'a=%"x"'],
    ['a 16-digit integer', 'a=1000000000000000'],
    ['a leading zero', 'a=01'],
    ['minus zero', 'a=-0'],
    ['a lone minus', 'a=-'],
    ['an uppercase key', 'A=1'],
    ['a key starting with a digit', '1a=1'],
    ['a duplicate key', 'a=1, a=2'],
    ['a duplicate parameter', 'a=1;p=1;p=2'],
    ['a trailing comma', 'a=1,'],
    ['a missing comma', 'a=1 b=2'],
    ['a leading comma', ',a=1'],
    ['an unterminated string', 'a="x'],
    ['a bad escape', 'a="\\n"'],
    ['a tab in a string', 'a="\t"'],
    ['non-ASCII', 'a="é"'],
    ['a control character', 'a=1\n'],
    ['an unterminated inner list', 'a=("x"'],
    ['items not separated by SP', 'a=("x""y")'],
    ['a tab inside an inner list', 'a=("x"\t"y")'],
    ['nested inner lists', 'a=(("x"))'],
    ['an unterminated byte sequence', 'a=:AQID'],
    ['base64 without padding', 'a=:AQ:'],
    ['base64 with non-zero pad bits', 'a=:AR==:'],
    ['base64url alphabet', 'a=:-_8=:'],
    ['whitespace in a byte sequence', 'a=:AQ ID:'],
    ['a space before =', 'a =1'],
    ['a space after =', 'a= 1'],
  ];
  for (const [name, field] of cases) {
    void test(name, () => assert.throws(() => parseDictionary(field), malformed));
  }

  void test('limits: field length, members, items, parameters, key, string and byte lengths', () => {
    assert.throws(() => parseDictionary('a=' + '1'.repeat(SF_LIMITS.fieldLength)), malformed);
    assert.throws(() => parseDictionary(Array.from({ length: SF_LIMITS.dictionaryMembers + 1 }, (_, i) => `k${i}=1`).join(',')), malformed);
    assert.throws(() => parseDictionary(`a=(${'1 '.repeat(SF_LIMITS.innerListItems + 1)})`), malformed);
    assert.throws(() => parseDictionary('a=1' + Array.from({ length: SF_LIMITS.parameters + 1 }, (_, i) => `;p${i}=1`).join('')), malformed);
    assert.throws(() => parseDictionary('k'.repeat(SF_LIMITS.keyLength + 1) + '=1'), malformed);
    assert.throws(() => parseDictionary(`a="${'x'.repeat(SF_LIMITS.stringLength + 1)}"`), malformed);
    assert.throws(() => parseDictionary(`a=:${'AAAA'.repeat(SF_LIMITS.byteSequenceLength / 4 + 1)}:`), malformed);
    // Exactly at the limits is fine.
    parseDictionary(Array.from({ length: SF_LIMITS.dictionaryMembers }, (_, i) => `k${i}=1`).join(','));
    parseDictionary(`a="${'x'.repeat(SF_LIMITS.stringLength)}"`);
  });
});

void describe('signature fields', () => {
  void test('Signature-Input: components and typed parameters; re-serialization is canonical', () => {
    const [m] = parseSignatureInput('sig1=( "@method"  "content-digest" );created=1;expires=2;nonce="n";keyid="k";alg="ed25519";tag="t"');
    assert.deepEqual(m!.components, ['@method', 'content-digest']);
    assert.deepEqual(m!.params, { created: 1, expires: 2, nonce: 'n', keyid: 'k', alg: 'ed25519', tag: 't' });
    assert.equal(m!.serialized, '("@method" "content-digest");created=1;expires=2;nonce="n";keyid="k";alg="ed25519";tag="t"');
  });

  void test('Signature-Input keeps the received parameter order in @signature-params', () => {
    const [m] = parseSignatureInput('s=("@method");keyid="k";created=5');
    assert.equal(m!.serialized, '("@method");keyid="k";created=5');
  });

  void test('Signature-Input refuses wrong shapes and types', () => {
    for (const bad of ['s="x"', 's=(1)', 's=(:AA==:)', 's=("x";p=1)', 's=();created="1"', 's=();nonce=1', 's=();keyid=:AA==:', 's=();other="x"', 's=();alg=1']) {
      assert.throws(() => parseSignatureInput(bad), malformed, bad);
    }
  });

  void test('Signature: byte sequences only, no parameters', () => {
    assert.deepEqual(parseSignatureField('a=:AQ==:, b=::'), [
      { label: 'a', signature: Uint8Array.from([1]) },
      { label: 'b', signature: new Uint8Array(0) },
    ]);
    for (const bad of ['a=1', 'a="x"', 'a=(:AQ==:)', 'a=:AQ==:;p=1']) assert.throws(() => parseSignatureField(bad), malformed, bad);
  });

  void test('serializeSignatureParams writes parameters in a fixed order and refuses unserializable values', () => {
    assert.equal(
      serializeSignatureParams(['@path'], { tag: 't', alg: 'ed25519', keyid: 'k', nonce: 'n', expires: 9, created: 1 }),
      '("@path");created=1;expires=9;nonce="n";keyid="k";alg="ed25519";tag="t"',
    );
    assert.throws(() => serializeSignatureParams(['@path'], { keyid: 'a\nb' }), TypeError);
    assert.throws(() => serializeSignatureParams(['@path'], { created: 1.5 }), TypeError);
  });
});

// --- properties --------------------------------------------------------------

const key = fc.stringMatching(/^[a-z*][a-z0-9_.*-]{0,10}$/);
const sfString = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 40 });
const bareItem: fc.Arbitrary<BareItem> = fc.oneof(
  fc.integer({ min: -999_999_999_999_999, max: 999_999_999_999_999 }),
  sfString,
  fc.uint8Array({ maxLength: 64 }),
);
const params = fc.uniqueArray(fc.tuple(key, bareItem), { selector: ([k]) => k, maxLength: 4 });
const item: fc.Arbitrary<Item> = fc.record({ kind: fc.constant('item' as const), value: bareItem, params }, { noNullPrototype: true });
const innerList: fc.Arbitrary<InnerList> = fc.record(
  { kind: fc.constant('list' as const), items: fc.array(item, { maxLength: 6 }), params },
  { noNullPrototype: true },
);
const dictionary: fc.Arbitrary<Dictionary> = fc.uniqueArray(fc.tuple(key, fc.oneof(item, innerList)), { selector: ([k]) => k, maxLength: 6 });

void describe('properties', () => {
  void test('parse ∘ serialize is the identity on the accepted subset', () => {
    fc.assert(
      fc.property(dictionary, (d) => {
        assert.deepEqual(parseDictionary(serializeDictionary(d)), d);
      }),
      { numRuns: 500 },
    );
  });

  void test('serialize ∘ parse is the identity on canonical text', () => {
    fc.assert(
      fc.property(dictionary, (d) => {
        const text = serializeDictionary(d);
        assert.equal(serializeDictionary(parseDictionary(text)), text);
      }),
      { numRuns: 300 },
    );
  });

  void test('arbitrary text only ever throws HTTPSIG_MALFORMED', () => {
    const alphabet = fc.constantFrom(...'abz09*-_.=,;:()" \t\\?@%/+AZ\n\u00e9'.split(''));
    const text = fc.oneof(fc.string({ maxLength: 60 }), fc.string({ unit: alphabet, maxLength: 60 }));
    fc.assert(
      fc.property(text, (t) => {
        for (const parse of [parseDictionary, parseSignatureInput, parseSignatureField]) {
          try {
            parse(t);
          } catch (e) {
            if (!malformed(e)) throw e;
          }
        }
      }),
      { numRuns: 3000 },
    );
  });
});
