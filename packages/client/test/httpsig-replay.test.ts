/** MemoryReplayCache: once per nonce and key, forgotten only after expiry, bounded, fail-closed. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { MemoryReplayCache } from '../src/index.js';

const ctx = (now: number, expiresAt: number, keyId = 'k') => ({ keyId, expiresAt, now });

void describe('MemoryReplayCache', () => {
  void test('a nonce is accepted once, then refused until it expires', () => {
    const c = new MemoryReplayCache();
    assert.equal(c.seen('n', ctx(100, 400)), false);
    assert.equal(c.seen('n', ctx(200, 500)), true);
    assert.equal(c.seen('n', ctx(400, 700)), true); // still within its window at 400
    assert.equal(c.seen('n', ctx(401, 701)), false); // forgotten after 400
  });

  void test('nonces are scoped per keyId', () => {
    const c = new MemoryReplayCache();
    assert.equal(c.seen('n', ctx(1, 10, 'a')), false);
    assert.equal(c.seen('n', ctx(1, 10, 'b')), false);
    assert.equal(c.seen('n', ctx(1, 10, 'a')), true);
  });

  void test('keys cannot collide through separators', () => {
    const c = new MemoryReplayCache();
    assert.equal(c.seen('b', ctx(1, 10, 'a,')), false);
    assert.equal(c.seen(',b', ctx(1, 10, 'a')), false);
    assert.equal(c.seen('"b', ctx(1, 10, 'a"')), false);
  });

  void test('when full of live nonces it refuses (fails closed) rather than forget one', () => {
    const c = new MemoryReplayCache({ maxEntries: 2 });
    assert.equal(c.seen('a', ctx(1, 100)), false);
    assert.equal(c.seen('b', ctx(1, 50)), false);
    assert.equal(c.seen('c', ctx(2, 100)), true);
    assert.equal(c.size, 2);
    // Once one expires there is room again, and the expired one is accepted anew.
    assert.equal(c.seen('c', ctx(51, 100)), false);
    assert.equal(c.seen('a', ctx(51, 100)), true);
  });

  void test('bad options are refused', () => {
    for (const maxEntries of [0, -1, 1.5, Number.NaN]) assert.throws(() => new MemoryReplayCache({ maxEntries }), TypeError);
  });

  void test('property: agrees with a naive model under random traffic', () => {
    const op = fc.record({
      nonce: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'),
      keyId: fc.constantFrom('k1', 'k2'),
      advance: fc.integer({ min: 0, max: 40 }),
      ttl: fc.integer({ min: 0, max: 100 }),
    });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), fc.integer({ min: 1, max: 8 }), (ops, maxEntries) => {
        const c = new MemoryReplayCache({ maxEntries });
        const model = new Map<string, number>();
        let now = 0;
        for (const o of ops) {
          now += o.advance;
          for (const [k, exp] of model) if (exp < now) model.delete(k);
          const k = JSON.stringify([o.keyId, o.nonce]);
          const expected = model.has(k) || model.size >= maxEntries;
          if (!expected) model.set(k, now + o.ttl);
          assert.equal(c.seen(o.nonce, { keyId: o.keyId, expiresAt: now + o.ttl, now }), expected);
          assert.equal(c.size, model.size);
        }
      }),
      { numRuns: 300 },
    );
  });
});
