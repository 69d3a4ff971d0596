/** The sealed frame codec and the replay guard's window semantics (unit, no services). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeFrame, encodeFrame, isIntegrationError, ReplayGuard, type IntegrationErrorCode } from '../src/index.js';

const code = (c: IntegrationErrorCode) => (e: unknown) => {
  assert.ok(isIntegrationError(e), `expected IntegrationError ${c}, got ${String(e)}`);
  assert.equal(e.code, c, e.message);
  return true;
};

void describe('sealed frame', () => {
  void test('round trip: id, ts, meta and body survive; the layout is as documented', () => {
    const body = new TextEncoder().encode('hello');
    const f = encodeFrame({ body, meta: { ct: 'text/plain' }, ts: 1_700_000_000_123 });
    assert.match(f.id, /^[0-9a-f]{32}$/);
    assert.equal(f.bytes[0], 1);
    assert.equal(Buffer.from(f.bytes.subarray(1, 17)).toString('hex'), f.id);
    assert.equal(Buffer.from(f.bytes).readBigUInt64BE(17), 1_700_000_000_123n);
    const d = decodeFrame(f.bytes);
    assert.deepEqual([d.id, d.ts, { ...d.meta }, Buffer.from(d.body).toString()], [f.id, 1_700_000_000_123, { ct: 'text/plain' }, 'hello']);
    assert.notEqual(encodeFrame({ body }).id, encodeFrame({ body }).id, 'ids are fresh');
  });

  void test('malformed frames are KW_INT_MALFORMED_FRAME', () => {
    const good = encodeFrame({ body: new Uint8Array(3), meta: { ct: 'x' } }).bytes;
    assert.throws(() => decodeFrame(good.subarray(0, 10)), code('KW_INT_MALFORMED_FRAME'));
    const v2 = good.slice(); v2[0] = 2;
    assert.throws(() => decodeFrame(v2), code('KW_INT_MALFORMED_FRAME'));
    const longMeta = good.slice(); longMeta[25] = 0xff; longMeta[26] = 0xff;
    assert.throws(() => decodeFrame(longMeta), code('KW_INT_MALFORMED_FRAME'));
    const badJson = encodeFrame({ body: new Uint8Array(0), meta: { a: 'b' } }).bytes; badJson[27] = 0x5b; // '[' instead of '{'
    assert.throws(() => decodeFrame(badJson), code('KW_INT_MALFORMED_FRAME'));
    assert.throws(() => encodeFrame({ body: new Uint8Array(0), id: 'nothex' }), code('KW_INT_INVALID_ARGUMENT'));
  });
});

void describe('replay guard', () => {
  const clock = (t0: number) => { let t = t0; return { now: () => t, set: (x: number) => { t = x; } }; };

  void test('inside the window: first accepted, the same id again is KW_INT_REPLAY', () => {
    const c = clock(1_000_000);
    const g = new ReplayGuard({ windowMs: 60_000, now: c.now });
    g.accept('a', 1_000_000);
    assert.throws(() => g.accept('a', 1_000_000), code('KW_INT_REPLAY'));
    c.set(1_059_000);
    assert.throws(() => g.accept('a', 1_000_000), code('KW_INT_REPLAY'), 'still remembered at the edge of the window');
    g.accept('b', 1_000_000);
  });

  void test('outside the window: stale and future timestamps are refused whatever the id', () => {
    const c = clock(10_000_000);
    const g = new ReplayGuard({ windowMs: 60_000, maxFutureSkewMs: 5_000, now: c.now });
    assert.throws(() => g.accept('old', 10_000_000 - 60_001), code('KW_INT_STALE'));
    g.accept('edge', 10_000_000 - 60_000);
    assert.throws(() => g.accept('future', 10_000_000 + 5_001), code('KW_INT_FUTURE'));
    g.accept('soon', 10_000_000 + 5_000);
    // Once the window has passed, the replay is refused as stale (and the id is forgotten).
    c.set(10_000_000 + 5_000 + 60_001);
    assert.throws(() => g.accept('soon', 10_000_000 + 5_000), code('KW_INT_STALE'));
  });

  void test('bounded memory: ids leave with their bucket once the window passes', () => {
    const c = clock(0);
    const g = new ReplayGuard({ windowMs: 16_000, buckets: 16, now: c.now });
    for (let t = 0; t < 100_000; t += 100) {
      c.set(t);
      g.accept(`id-${t}`, t);
      assert.ok(g.size <= 16_000 / 100 + 1000 / 100 + 1, `size ${g.size} at t=${t}`);
    }
    assert.ok(g.size > 100, 'ids inside the window are kept');
    c.set(1_000_000);
    g.accept('late', 1_000_000);
    assert.equal(g.size, 1);
  });

  void test('full guard fails closed with KW_INT_REPLAY_GUARD_FULL', () => {
    const c = clock(0);
    const g = new ReplayGuard({ windowMs: 1000, maxEntries: 3, now: c.now });
    g.accept('1', 0); g.accept('2', 0); g.accept('3', 0);
    assert.throws(() => g.accept('4', 0), code('KW_INT_REPLAY_GUARD_FULL'));
    c.set(2000);
    g.accept('4', 2000);
  });

  void test('reservations: in flight counts as seen; release lets a redelivery through; commit does not', () => {
    const g = new ReplayGuard({ now: () => 5000 });
    const r = g.reserve('m', 5000);
    assert.throws(() => g.reserve('m', 5000), code('KW_INT_REPLAY'), 'a concurrent duplicate');
    r.release();
    const r2 = g.reserve('m', 5000);
    r2.commit();
    r2.release(); // no effect once settled
    assert.throws(() => g.reserve('m', 5000), code('KW_INT_REPLAY'));
  });
});
