/**
 * The failure summarizer: a flood of unauthenticated failures becomes a
 * handful of `audit.summary` events, in bounded memory, with addresses only
 * as HMACs of their network.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildEvent, GENESIS_PREV } from '../../src/audit/event.js';
import { localHmacKey, REDACTED_RE } from '../../src/audit/redact.js';
import { addressBucket, FailureSummarizer } from '../../src/audit/summary.js';
import { rejectsAudit } from './helpers.js';

const KEY = localHmacKey(1, new Uint8Array(32).fill(1));

void describe('addressBucket', () => {
  const cases: [string | null, string | null][] = [
    ['203.0.113.77', '203.0.113.0/24'],
    ['10.1.2.3', '10.1.2.0/24'],
    ['2001:db8:1:2::5', '2001:db8:1::/48'],
    ['2001:0db8:0001:ffff:0:0:0:1', '2001:db8:1::/48'],
    ['::1', '0:0:0::/48'],
    ['fe80::1%eth0', 'fe80:0:0::/48'],
    ['::ffff:198.51.100.7', '198.51.100.0/24'],
    ['not an address', null],
    ['', null],
    [null, null],
  ];
  for (const [addr, bucket] of cases) void test(`${String(addr)} → ${String(bucket)}`, () => assert.equal(addressBucket(addr), bucket));
});

void describe('FailureSummarizer', () => {
  void test('10^5 failures from many addresses over 5 minutes → at most 6 summaries, bounded memory, counts add up', async () => {
    let now = Date.UTC(2025, 0, 1);
    const s = new FailureSummarizer({ intervalMs: 60_000, maxBuckets: 64, hmacKey: KEY, now: () => now });
    const reasons = ['token_unknown', 'token_expired', 'bad_signature', 'no_credentials'];
    const events = [];
    let maxBuckets = 0;
    for (let i = 0; i < 100_000; i++) {
      now += 3; // 300 s in all
      s.record(reasons[i % 4]!, `198.${(i * 7) % 256}.${(i * 13) % 256}.${i % 256}`);
      maxBuckets = Math.max(maxBuckets, s.bucketCount);
      if (i % 1000 === 0) {
        const e = await s.take();
        if (e) events.push(e);
      }
    }
    const last = await s.take({ force: true });
    if (last) events.push(last);
    assert.ok(events.length <= 6, `${events.length} summary events`);
    assert.ok(maxBuckets <= 64, `${maxBuckets} buckets held`);
    let total = 0;
    for (const e of events) {
      const d = e.details as { total: number; folded: number; counts: { reason: string; bucket: string | null; count: number }[] };
      assert.equal(d.counts.reduce((a, c) => a + c.count, 0) + d.folded, d.total);
      assert.ok(d.counts.length <= 64);
      for (const c of d.counts) assert.match(c.bucket!, REDACTED_RE);
      total += d.total;
      assert.equal(e.op, 'audit.summary');
      assert.equal(e.hmac_key_version, 1);
      buildEvent(e, { index: 0, time: new Date(now), prev: GENESIS_PREV }); // a valid event under the size limit
    }
    assert.equal(total, 100_000);
  });

  void test('at most one summary per interval, none when nothing happened', async () => {
    let now = 0;
    const s = new FailureSummarizer({ intervalMs: 1000, hmacKey: KEY, now: () => now });
    assert.equal(await s.take(), null);
    s.record('token_unknown', '10.0.0.1');
    assert.equal(await s.take(), null, 'interval not elapsed');
    now = 1000;
    assert.ok(await s.take());
    s.record('token_unknown', '10.0.0.1');
    now = 1500;
    assert.equal(await s.take(), null);
    now = 2000;
    const e = await s.take();
    assert.deepEqual((e!.details as { window: unknown }).window, { start: '1970-01-01T00:00:01.000Z', end: '1970-01-01T00:00:02.000Z' });
    now = 10_000;
    assert.equal(await s.take(), null, 'nothing counted');
  });

  void test('one address counted under its network; the raw address is never written', async () => {
    let now = 0;
    const s = new FailureSummarizer({ intervalMs: 1000, hmacKey: KEY, now: () => now });
    s.record('bad_signature', '203.0.113.9');
    s.record('bad_signature', '203.0.113.200');
    now = 1000;
    const e = (await s.take())!;
    const d = e.details as { counts: { reason: string; bucket: string; count: number }[] };
    assert.equal(d.counts.length, 1);
    assert.equal(d.counts[0]!.count, 2);
    const text = new TextDecoder().decode(buildEvent(e, { index: 0, time: new Date(0), prev: GENESIS_PREV }).bytes);
    for (const raw of ['203.0.113', '203.0.113.9', '203.0.113.0/24']) assert.ok(!text.includes(raw));
  });

  void test('without an HMAC key no address is recorded: counts by reason only', async () => {
    let now = 0;
    const s = new FailureSummarizer({ intervalMs: 1000, now: () => now });
    s.record('token_unknown', '10.0.0.1');
    s.record('token_unknown', '10.9.9.9');
    s.record('not a reason!', '10.0.0.1');
    now = 1000;
    const e = (await s.take())!;
    assert.equal(e.hmac_key_version, null);
    assert.deepEqual((e.details as { counts: unknown }).counts, [
      { reason: 'token_unknown', bucket: null, count: 2 },
      { reason: 'invalid_reason', bucket: null, count: 1 },
    ]);
  });

  void test('the table is full → new pairs are folded; known pairs still count', async () => {
    let now = 0;
    const s = new FailureSummarizer({ intervalMs: 1000, maxBuckets: 2, hmacKey: KEY, now: () => now });
    s.record('a', '10.0.1.1');
    s.record('a', '10.0.2.1');
    s.record('a', '10.0.3.1');
    s.record('a', '10.0.1.2');
    assert.equal(s.bucketCount, 2);
    now = 1000;
    const d = (await s.take())!.details as { total: number; folded: number; counts: { count: number }[] };
    assert.equal(d.total, 4);
    assert.equal(d.folded, 1);
    assert.deepEqual(d.counts.map((c) => c.count), [2, 1]);
  });

  void test('a failing HMAC (keyholder unavailable) keeps the counts for the next try', async () => {
    let now = 0;
    let fail = true;
    const flaky = { version: 1, hmac: (m: Uint8Array) => (fail ? Promise.reject(new Error('keyholder unavailable')) : KEY.hmac(m)) };
    const s = new FailureSummarizer({ intervalMs: 1000, hmacKey: flaky, now: () => now });
    s.record('a', '10.0.0.1');
    now = 1000;
    await assert.rejects(() => s.take());
    assert.equal(s.pending, 1);
    s.record('a', '10.0.0.1');
    fail = false;
    const d = (await s.take())!.details as { total: number };
    assert.equal(d.total, 2);
  });

  void test('bad options are refused', async () => {
    await rejectsAudit(() => new FailureSummarizer({ intervalMs: 10 }), 'KW_INVALID_ARGUMENT');
    await rejectsAudit(() => new FailureSummarizer({ maxBuckets: 100_000 }), 'KW_INVALID_ARGUMENT');
  });
});
