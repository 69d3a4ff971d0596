/**
 * The strict CBOR decoder: RFC 8949 Appendix A examples it accepts, the
 * non-preferred and indefinite encodings it refuses, limits, and properties:
 * preferred encodings round-trip, and arbitrary bytes only ever produce a
 * value or an AttestError.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeCbor, type CborValue } from '../src/cbor.js';
import { AttestError } from '../src/index.js';
import { cbor, hex, throwsAttest, type Enc } from './helpers.js';

const LIMITS = { maxBytes: 4096, maxDepth: 8, maxItems: 64 };
const dec = (h: string): CborValue => decodeCbor(hex(h), LIMITS);

void test('RFC 8949 Appendix A examples in preferred encoding decode', () => {
  assert.equal(dec('00'), 0);
  assert.equal(dec('17'), 23);
  assert.equal(dec('1818'), 24);
  assert.equal(dec('1903e8'), 1000);
  assert.equal(dec('1a000f4240'), 1000000);
  assert.equal(dec('1b000000e8d4a51000'), 1000000000000);
  assert.equal(dec('20'), -1);
  assert.equal(dec('3903e7'), -1000);
  assert.deepEqual(dec('4401020304'), Uint8Array.of(1, 2, 3, 4));
  assert.equal(dec('6449455446'), 'IETF');
  assert.equal(dec('62c3bc'), 'ü');
  assert.deepEqual(dec('83010203'), [1, 2, 3]);
  assert.deepEqual(dec('a201020304'), new Map([[1, 2], [3, 4]]));
  assert.equal(dec('f4'), false);
  assert.equal(dec('f5'), true);
  assert.equal(dec('f6'), null);
});

void test('non-preferred and indefinite encodings are NON_CANONICAL', () => {
  for (const h of ['1800', '1817', '190017', '1900ff', '1a0000ffff', '1b00000000ffffffff', '3800', '5800', '780161', '9800', 'b800', '5f4101ff', '7f6161ff', '9fff', 'bfff', 'ff']) {
    throwsAttest(() => dec(h), 'ATTEST_NON_CANONICAL');
  }
});

void test('other types, bad UTF-8, duplicate keys, bad keys and trailing bytes are MALFORMED', () => {
  for (const h of ['c0', 'd818', 'f7', 'f0', 'f93c00', 'fa47c35000', 'fb3ff199999999999a', '1c', '62c328', 'a201020103', 'a1f600', 'a1400100', '0000', '42', '8201', 'a1']) {
    throwsAttest(() => dec(h), 'ATTEST_MALFORMED');
  }
});

void test('limits: bytes, depth, items, integers beyond 2^53', () => {
  throwsAttest(() => decodeCbor(new Uint8Array(4097), LIMITS), 'ATTEST_LIMIT_EXCEEDED');
  throwsAttest(() => dec('81'.repeat(9) + '00'), 'ATTEST_LIMIT_EXCEEDED');
  dec('81'.repeat(8) + '00');
  throwsAttest(() => dec('9841' + '00'.repeat(65)), 'ATTEST_LIMIT_EXCEEDED');
  throwsAttest(() => dec('1b0020000000000000'), 'ATTEST_LIMIT_EXCEEDED');
  throwsAttest(() => dec('5b0000000100000000'), 'ATTEST_MALFORMED'); // declared length beyond the input
});

const arbValue: fc.Arbitrary<Enc> = fc.letrec<{ v: Enc }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
    fc.string(),
    fc.uint8Array({ maxLength: 40 }),
    fc.constantFrom(true, false, null),
    fc.array(tie('v'), { maxLength: 4 }),
    fc.uniqueArray(fc.tuple(fc.oneof(fc.integer({ min: -100, max: 100 }), fc.string({ maxLength: 4 })), tie('v')), { maxLength: 4, selector: (e) => e[0] }).map((es) => new Map(es)),
  ),
})).v;

void test('property: preferred encodings round-trip', () => {
  fc.assert(
    fc.property(arbValue, (v) => {
      const bytes = cbor(v);
      assert.deepEqual(decodeCbor(bytes, { maxBytes: 1 << 20, maxDepth: 64, maxItems: 64 }), v);
    }),
    { numRuns: 500 },
  );
});

void test('property: arbitrary bytes decode or throw an AttestError, nothing else', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
      try {
        decodeCbor(b, LIMITS);
      } catch (e) {
        return e instanceof AttestError;
      }
      return true;
    }),
    { numRuns: 2000 },
  );
});
