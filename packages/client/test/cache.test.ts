/**
 * The data-key cache on its own: every limit (age with an injected clock,
 * messages, bytes, capacity/LRU), partitioning, zeroing on eviction, one
 * service call for concurrent misses, and a property test that no entry
 * ever serves beyond any limit. Its use by KmsKeyService is in kms.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { ContextPairs, Stanza } from '@keyward/core';
import {
  DATA_KEY_CACHE_DEFAULT_CAPACITY,
  DATA_KEY_CACHE_DEFAULT_MAX_AGE_MS,
  DATA_KEY_CACHE_DEFAULT_MAX_BYTES,
  DATA_KEY_CACHE_DEFAULT_MAX_MESSAGES,
  DATA_KEY_CACHE_MAX_AGE_CEILING_MS,
  DataKeyCache,
  type DataKeyCacheOptions,
  type SealingKeyId,
} from '../src/index.js';

const utf8 = new TextEncoder();

/** A clock the test moves by hand. */
function clock(start = 1000) {
  const c = { t: start, now: () => c.t };
  return c;
}

/** A fake service: numbered keys (byte 0..1 = id, byte 31 = 1, so never all zero), each kept to check zeroing. */
function service(c?: { t: number }, latencyMs = 0) {
  const made: { id: number; key: Uint8Array; createdAt: number }[] = [];
  const create = (): Promise<{ dataKey: Uint8Array; stanza: Stanza }> => {
    const id = made.length + 1;
    const key = new Uint8Array(32);
    key[0] = id & 0xff;
    key[1] = id >> 8;
    key[31] = 1;
    made.push({ id, key, createdAt: c?.t ?? 0 });
    if (c) c.t += latencyMs;
    return Promise.resolve({ dataKey: key, stanza: { type: 'kms', fields: [utf8.encode('ns/k'), Uint8Array.of(0, 0, 0, 1), Uint8Array.of(id & 0xff, id >> 8)] } });
  };
  const unwrapCreate = (): Promise<Uint8Array> => create().then((r) => r.dataKey);
  return { made, create, unwrapCreate, calls: () => made.length };
}

const idOf = (k: Uint8Array): number => k[0]! | (k[1]! << 8);
const zero = (k: Uint8Array): boolean => k.every((b) => b === 0);
const sid = (context: ContextPairs = [['t', 'orders']], keyRef = 'ns/k', partition = 'p'): SealingKeyId => ({ partition, keyRef, context });
const stanzaFor = (n: number): Stanza => ({ type: 'kms', fields: [utf8.encode('ns/k'), Uint8Array.of(0, 0, 0, 1), Uint8Array.of(n)] });

function cache(opts: DataKeyCacheOptions = {}) {
  const c = clock();
  return { c, cache: new DataKeyCache({ now: c.now, ...opts }) };
}

void describe('options', () => {
  void test('documented defaults', () => {
    const k = new DataKeyCache();
    assert.equal(k.maxAgeMs, DATA_KEY_CACHE_DEFAULT_MAX_AGE_MS);
    assert.equal(DATA_KEY_CACHE_DEFAULT_MAX_AGE_MS, 5 * 60_000);
    assert.equal(DATA_KEY_CACHE_MAX_AGE_CEILING_MS, 15 * 60_000);
    assert.equal(k.maxMessages, DATA_KEY_CACHE_DEFAULT_MAX_MESSAGES);
    assert.equal(k.maxBytes, DATA_KEY_CACHE_DEFAULT_MAX_BYTES);
    assert.equal(k.capacity, DATA_KEY_CACHE_DEFAULT_CAPACITY);
  });

  void test('maxAgeMs cannot exceed the 15-minute revocation ceiling; every limit must be a positive integer', () => {
    assert.equal(new DataKeyCache({ maxAgeMs: DATA_KEY_CACHE_MAX_AGE_CEILING_MS }).maxAgeMs, 15 * 60_000);
    for (const bad of [DATA_KEY_CACHE_MAX_AGE_CEILING_MS + 1, 0, -1, 1.5, Infinity, NaN]) {
      assert.throws(() => new DataKeyCache({ maxAgeMs: bad }), RangeError, `maxAgeMs ${bad}`);
    }
    assert.throws(() => new DataKeyCache({ maxMessages: 0 }), RangeError);
    assert.throws(() => new DataKeyCache({ maxMessages: 2 ** 32 + 1 }), RangeError);
    assert.throws(() => new DataKeyCache({ maxBytes: 0 }), RangeError);
    assert.throws(() => new DataKeyCache({ capacity: 0 }), RangeError);
  });

  void test('plaintextBytes must be a non-negative integer', async () => {
    const { cache: k } = cache();
    const s = service();
    await assert.rejects(k.getSealingKey(sid(), -1, s.create), RangeError);
    await assert.rejects(k.getSealingKey(sid(), 1.5, s.create), RangeError);
    assert.equal(s.calls(), 0);
  });
});

void describe('limits', () => {
  void test('age: served until created + maxAgeMs, then a new key; the old one is zeroed', async () => {
    const { c, cache: k } = cache({ maxAgeMs: 1000 });
    const s = service(c);
    const a = await k.getSealingKey(sid(), 10, s.create);
    c.t += 999;
    assert.equal(idOf((await k.getSealingKey(sid(), 10, s.create)).dataKey), idOf(a.dataKey));
    c.t += 1; // exactly maxAgeMs: no longer served
    const b = await k.getSealingKey(sid(), 10, s.create);
    assert.notEqual(idOf(b.dataKey), idOf(a.dataKey));
    assert.ok(zero(s.made[0]!.key), 'the expired key is zeroed');
    assert.equal(s.calls(), 2);
  });

  void test('age counts from the start of the service call (its latency is spent)', async () => {
    const { c, cache: k } = cache({ maxAgeMs: 1000 });
    const s = service(c, 600); // the service takes 600 ms
    await k.getSealingKey(sid(), 1, s.create);
    c.t += 399; // 999 ms after the call started
    await k.getSealingKey(sid(), 1, s.create);
    assert.equal(s.calls(), 1);
    c.t += 1;
    await k.getSealingKey(sid(), 1, s.create);
    assert.equal(s.calls(), 2);
  });

  void test('age: a key that expired while the service answered is used once and never cached', async () => {
    const { c, cache: k } = cache({ maxAgeMs: 100 });
    const s = service(c, 150);
    const a = await k.getSealingKey(sid(), 1, s.create);
    assert.equal(idOf(a.dataKey), 1);
    assert.equal(k.stats().sealing.size, 0);
    assert.ok(zero(s.made[0]!.key));
  });

  void test('expired entries are swept (and zeroed) by any later call, of either table', async () => {
    const { c, cache: k } = cache({ maxAgeMs: 100 });
    const s = service();
    await k.getSealingKey(sid(), 1, s.create);
    await k.getUnwrappedKey({ partition: 'p', stanza: stanzaFor(1), context: [] }, s.unwrapCreate);
    c.t += 100;
    assert.equal(k.sweep(), 2);
    assert.ok(s.made.every((m) => zero(m.key)));
    assert.deepEqual([k.stats().sealing.size, k.stats().unwrap.size], [0, 0]);
  });

  void test('a clock that goes back expires entries (never extends them)', async () => {
    const { c, cache: k } = cache({ maxAgeMs: 1000 });
    const s = service();
    await k.getSealingKey(sid(), 1, s.create);
    c.t -= 1;
    await k.getSealingKey(sid(), 1, s.create);
    assert.equal(s.calls(), 2);
  });

  void test('messages: at most maxMessages envelopes per key; the exhausted key is zeroed at its last use', async () => {
    const { cache: k } = cache({ maxMessages: 3 });
    const s = service();
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(idOf((await k.getSealingKey(sid(), 1, s.create)).dataKey));
    assert.deepEqual(ids, [1, 1, 1]);
    assert.ok(zero(s.made[0]!.key), 'zeroed right after its third use');
    assert.equal(k.stats().sealing.size, 0);
    assert.equal(idOf((await k.getSealingKey(sid(), 1, s.create)).dataKey), 2);
  });

  void test('bytes: the sum of plaintext sizes per key stays ≤ maxBytes', async () => {
    const { cache: k } = cache({ maxBytes: 100 });
    const s = service();
    const use = async (n: number) => idOf((await k.getSealingKey(sid(), n, s.create)).dataKey);
    assert.equal(await use(40), 1);
    assert.equal(await use(40), 1); // 80
    assert.equal(await use(40), 2); // 120 > 100: a new key (the old one is zeroed)
    assert.ok(zero(s.made[0]!.key));
    assert.equal(await use(60), 2); // exactly 100
    assert.ok(zero(s.made[1]!.key), 'full: zeroed at once');
    assert.equal(await use(0), 3);
  });

  void test('bytes: a message larger than maxBytes gets a fresh key, never cached, and leaves the entry alone', async () => {
    const { cache: k } = cache({ maxBytes: 100 });
    const s = service();
    assert.equal(idOf((await k.getSealingKey(sid(), 10, s.create)).dataKey), 1);
    const big = await k.getSealingKey(sid(), 101, s.create);
    assert.equal(idOf(big.dataKey), 2);
    assert.ok(zero(s.made[1]!.key), 'the cache keeps no copy of it');
    assert.equal(idOf((await k.getSealingKey(sid(), 10, s.create)).dataKey), 1);
  });

  void test('capacity: least recently used is evicted first, and zeroed', async () => {
    const { cache: k } = cache({ capacity: 2 });
    const s = service();
    const A = sid([['t', 'a']]);
    const B = sid([['t', 'b']]);
    const C = sid([['t', 'c']]);
    await k.getSealingKey(A, 1, s.create); // key 1
    await k.getSealingKey(B, 1, s.create); // key 2
    await k.getSealingKey(A, 1, s.create); // A used last
    await k.getSealingKey(C, 1, s.create); // key 3 evicts B
    assert.ok(zero(s.made[1]!.key));
    assert.ok(!zero(s.made[0]!.key) && !zero(s.made[2]!.key));
    assert.equal(idOf((await k.getSealingKey(A, 1, s.create)).dataKey), 1);
    assert.equal(idOf((await k.getSealingKey(B, 1, s.create)).dataKey), 4);
    assert.equal(k.stats().sealing.size, 2);
  });

  void test('the unwrap table: messages and age limits, null answers are not cached', async () => {
    const { c, cache: k } = cache({ maxMessages: 2, maxAgeMs: 1000 });
    const s = service();
    const id = { partition: 'p', stanza: stanzaFor(7), context: [['t', 'x']] as ContextPairs };
    assert.equal(idOf((await k.getUnwrappedKey(id, s.unwrapCreate))!), 1);
    assert.equal(idOf((await k.getUnwrappedKey(id, s.unwrapCreate))!), 1);
    assert.ok(zero(s.made[0]!.key));
    assert.equal(idOf((await k.getUnwrappedKey(id, s.unwrapCreate))!), 2);
    c.t += 1000;
    assert.equal(idOf((await k.getUnwrappedKey(id, s.unwrapCreate))!), 3);

    let asked = 0;
    const none = () => { asked++; return Promise.resolve(null); };
    const other = { ...id, stanza: stanzaFor(8) };
    assert.equal(await k.getUnwrappedKey(other, none), null);
    assert.equal(await k.getUnwrappedKey(other, none), null);
    assert.equal(asked, 2, 'a refusal is asked again (access may have been granted since)');
  });
});

void describe('partitioning', () => {
  void test('a different context, key reference or partition gets its own key', async () => {
    const { cache: k } = cache();
    const s = service();
    const ids = [];
    for (const id of [sid([['t', 'a']]), sid([['t', 'b']]), sid([['t', 'a'], ['u', '1']]), sid([]), sid([['t', 'a']], 'ns/other'), sid([['t', 'a']], 'ns/k', 'q')]) {
      ids.push(idOf((await k.getSealingKey(id, 1, s.create)).dataKey));
    }
    assert.deepEqual(ids, [1, 2, 3, 4, 5, 6]);
    assert.equal(idOf((await k.getSealingKey(sid([['t', 'a']]), 1, s.create)).dataKey), 1);
  });

  void test('the same pairs in another order are another partition (the header binds the exact order)', async () => {
    const { cache: k } = cache();
    const s = service();
    const ab = await k.getSealingKey(sid([['a', '1'], ['b', '2']]), 1, s.create);
    const ba = await k.getSealingKey(sid([['b', '2'], ['a', '1']]), 1, s.create);
    assert.notEqual(idOf(ab.dataKey), idOf(ba.dataKey));
    const u1 = await k.getUnwrappedKey({ partition: 'p', stanza: stanzaFor(1), context: [['a', '1'], ['b', '2']] }, s.unwrapCreate);
    const u2 = await k.getUnwrappedKey({ partition: 'p', stanza: stanzaFor(1), context: [['b', '2'], ['a', '1']] }, s.unwrapCreate);
    assert.notEqual(idOf(u1!), idOf(u2!));
  });

  void test('encodings cannot collide: pairs are not concatenated text', async () => {
    const { cache: k } = cache();
    const s = service();
    const a = await k.getSealingKey(sid([['a', 'b\u0000c']]), 1, s.create);
    const b = await k.getSealingKey(sid([['a', 'b'], ['\u0000c', '']]), 1, s.create);
    const c = await k.getSealingKey(sid([['a', 'b']], 'ns/k', 'p","x'), 1, s.create);
    assert.equal(new Set([a, b, c].map((x) => idOf(x.dataKey))).size, 3);
  });

  void test('unwrap entries are keyed by every byte of the stanza and by the context', async () => {
    const { cache: k } = cache();
    const s = service();
    const base = stanzaFor(1);
    const variants: Stanza[] = [
      base,
      { ...base, fields: [base.fields[0]!, Uint8Array.of(0, 0, 0, 2), base.fields[2]!] },
      { ...base, fields: [utf8.encode('ns/j'), base.fields[1]!, base.fields[2]!] },
      { ...base, fields: [base.fields[0]!, base.fields[1]!, Uint8Array.of(1, 0)] },
    ];
    const got = [];
    for (const st of variants) got.push(idOf((await k.getUnwrappedKey({ partition: 'p', stanza: st, context: [] }, s.unwrapCreate))!));
    got.push(idOf((await k.getUnwrappedKey({ partition: 'p', stanza: base, context: [['t', 'x']] }, s.unwrapCreate))!));
    assert.deepEqual(got, [1, 2, 3, 4, 5]);
  });
});

void describe('key handling', () => {
  void test('callers get copies: wiping one (as core does after sealing) leaves the cached key intact', async () => {
    const { cache: k } = cache();
    const s = service();
    const a = await k.getSealingKey(sid(), 1, s.create);
    a.dataKey.fill(0);
    a.stanza.fields[2]!.fill(9);
    const b = await k.getSealingKey(sid(), 1, s.create);
    assert.equal(idOf(b.dataKey), 1);
    assert.deepEqual(b.stanza.fields[2], Uint8Array.of(1, 0));
    assert.notEqual(b.dataKey, s.made[0]!.key);
  });

  void test('clear() zeroes every entry of both tables', async () => {
    const { cache: k } = cache();
    const s = service();
    await k.getSealingKey(sid(), 1, s.create);
    await k.getSealingKey(sid([]), 1, s.create);
    await k.getUnwrappedKey({ partition: 'p', stanza: stanzaFor(1), context: [] }, s.unwrapCreate);
    k.clear();
    assert.ok(s.made.every((m) => zero(m.key)));
    assert.deepEqual(k.stats().sealing.size + k.stats().unwrap.size, 0);
  });

  void test('concurrent misses of one entry make one service call; a failure is shared, not retried N times', async () => {
    const { cache: k } = cache();
    const s = service();
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    const slow = async () => { await gate; return s.create(); };
    const all = Promise.all(Array.from({ length: 5 }, () => k.getSealingKey(sid(), 1, slow)));
    release();
    const got = await all;
    assert.equal(s.calls(), 1);
    assert.deepEqual(got.map((g) => idOf(g.dataKey)), [1, 1, 1, 1, 1]);
    assert.equal(k.stats().sealing.hits, 4);

    let calls = 0;
    const failing = async () => { calls++; await Promise.resolve(); throw new Error('service down'); };
    const results = await Promise.allSettled(Array.from({ length: 3 }, () => k.getSealingKey(sid([]), 1, failing)));
    assert.equal(calls, 1);
    assert.ok(results.every((r) => r.status === 'rejected' && (r.reason as Error).message === 'service down'));
    // The next call asks again.
    await assert.rejects(k.getSealingKey(sid([]), 1, failing));
    assert.equal(calls, 2);
  });

  void test('waiters beyond an entry\'s remaining room get their own key', async () => {
    const { cache: k } = cache({ maxMessages: 2 });
    const s = service();
    const got = await Promise.all(Array.from({ length: 5 }, () => k.getSealingKey(sid(), 1, s.create)));
    const counts = new Map<number, number>();
    for (const g of got) counts.set(idOf(g.dataKey), (counts.get(idOf(g.dataKey)) ?? 0) + 1);
    assert.ok([...counts.values()].every((n) => n <= 2), JSON.stringify([...counts]));
  });
});

type Op =
  | { readonly op: 'tick'; readonly ms: number }
  | { readonly op: 'seal'; readonly p: number; readonly bytes: number }
  | { readonly op: 'open'; readonly p: number };

void describe('property', () => {
  void test('no entry ever serves beyond its age, message, byte or capacity limit, and every key not cached is zeroed', async () => {
    const config = fc.record({
      maxAgeMs: fc.integer({ min: 1, max: 1000 }),
      maxMessages: fc.integer({ min: 1, max: 5 }),
      maxBytes: fc.integer({ min: 1, max: 1000 }),
      capacity: fc.integer({ min: 1, max: 3 }),
      latency: fc.integer({ min: 0, max: 300 }),
    });
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ op: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 700 }) }),
      fc.record({ op: fc.constant('seal' as const), p: fc.integer({ min: 0, max: 3 }), bytes: fc.integer({ min: 0, max: 1200 }) }),
      fc.record({ op: fc.constant('open' as const), p: fc.integer({ min: 0, max: 3 }) }),
    );
    await fc.assert(
      fc.asyncProperty(config, fc.array(op, { maxLength: 60 }), async (cfg, ops) => {
        const c = clock(0);
        const k = new DataKeyCache({ ...cfg, now: c.now });
        const s = service(c, cfg.latency);
        const uses = new Map<number, { n: number; bytes: number }>();
        const contexts: ContextPairs[] = [[], [['t', 'a']], [['t', 'b']], [['u', '1'], ['t', 'a']]];
        for (const o of ops) {
          if (o.op === 'tick') {
            c.t += o.ms;
            continue;
          }
          const before = s.calls();
          const key = o.op === 'seal'
            ? (await k.getSealingKey(sid(contexts[o.p]), o.bytes, s.create)).dataKey
            : (await k.getUnwrappedKey({ partition: 'p', stanza: stanzaFor(o.p), context: contexts[o.p]! }, s.unwrapCreate))!;
          const id = idOf(key);
          const made = s.made[id - 1]!;
          const fresh = id > before; // made by this very call
          const u = uses.get(id) ?? { n: 0, bytes: 0 };
          u.n++;
          if (o.op === 'seal') u.bytes += o.bytes;
          uses.set(id, u);
          assert.ok(u.n <= cfg.maxMessages, `key ${id} served ${u.n} > ${cfg.maxMessages} messages`);
          if (!fresh) {
            assert.ok(c.t >= made.createdAt && c.t - made.createdAt < cfg.maxAgeMs, `key ${id} served at age ${c.t - made.createdAt} ≥ ${cfg.maxAgeMs}`);
            assert.ok(u.bytes <= cfg.maxBytes, `key ${id} served ${u.bytes} > ${cfg.maxBytes} bytes`);
          } else if (o.op === 'seal' && o.bytes <= cfg.maxBytes) {
            assert.ok(u.bytes <= cfg.maxBytes);
          }
          const st = k.stats();
          assert.ok(st.sealing.size <= cfg.capacity && st.unwrap.size <= cfg.capacity, 'capacity');
          const live = s.made.filter((m) => !zero(m.key)).length;
          assert.equal(live, st.sealing.size + st.unwrap.size, 'every key the cache does not hold is zeroed');
        }
      }),
      { numRuns: 300 },
    );
  });
});
