import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { markRecoveryCodeUsed, matchRecoveryCode, newRecoveryCodes, normalizeRecoveryCode } from '../../src/mfa/recovery.js';

void test('ten distinct 80-bit codes; the stored form holds none of them', () => {
  const { codes, stored } = newRecoveryCodes();
  assert.equal(codes.length, 10);
  assert.equal(new Set(codes).size, 10);
  for (const c of codes) assert.match(c, /^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$/);
  const json = JSON.stringify(stored);
  for (const c of codes) {
    assert.equal(json.includes(c), false);
    assert.equal(json.includes(normalizeRecoveryCode(c)!), false);
  }
  assert.deepEqual(stored.used, Array(10).fill(false));
});

void test('each code matches its own slot, once; typing variants are accepted', () => {
  const { codes, stored } = newRecoveryCodes();
  let s = stored;
  codes.forEach((c, i) => {
    const sloppy = c.toLowerCase().replace(/-/g, ' ').replace(/1/g, 'l').replace(/0/g, 'o');
    assert.equal(matchRecoveryCode(s, sloppy), i);
    s = markRecoveryCodeUsed(s, i);
    assert.equal(matchRecoveryCode(s, c), -1, 'a used code never matches again');
  });
});

void test('codes of another set, altered codes and garbage match nothing', () => {
  const a = newRecoveryCodes();
  const b = newRecoveryCodes();
  for (const c of b.codes) assert.equal(matchRecoveryCode(a.stored, c), -1);
  fc.assert(fc.property(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 0, max: 15 }), (i, pos) => {
    const n = normalizeRecoveryCode(a.codes[i]!)!;
    const replacement = n[pos] === 'Z' ? 'Y' : 'Z';
    const altered = n.slice(0, pos) + replacement + n.slice(pos + 1);
    return matchRecoveryCode(a.stored, altered) === -1;
  }));
  for (const junk of ['', 'ABCD', 'UUUU-UUUU-UUUU-UUUU', `${a.codes[0]}0`]) assert.equal(matchRecoveryCode(a.stored, junk), -1, junk);
});
