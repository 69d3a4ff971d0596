/**
 * The builder and the client end to end (Keyward profile): search, update, monitor, rollback and
 * fork refusal, with property tests (fast-check) over random histories, bit flips and split views.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  DirectoryBuilder,
  DirectoryClient,
  MemoryDirectoryStore,
  decodeDirectoryProof,
  encodeDirectoryProof,
  isDirectoryError,
  type DirectoryStore,
} from '../src/index.js';
import { rejectsCode, throwsCode } from './helpers.js';

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const keys = { signingKey: new Uint8Array(32).fill(7), vrfKey: new Uint8Array(32).fill(9) };

function clock(start = 1_800_000_000_000): () => number {
  let t = start;
  return () => (t += 10);
}

async function setup(store: DirectoryStore = new MemoryDirectoryStore(), now = clock()) {
  const log = await DirectoryBuilder.create(store, keys, { now });
  return { log, now, client: () => new DirectoryClient(log.config, { now }) };
}


void describe('DirectoryBuilder + DirectoryClient', () => {
  void test('search for the greatest and a fixed version; absence is a verified KT_NOT_FOUND', async () => {
    const { log, client } = await setup();
    await log.update([{ label: utf8('alice'), value: utf8('alice-key-0') }, { label: utf8('bob'), value: utf8('bob-key-0') }]);
    await log.update([{ label: utf8('alice'), value: utf8('alice-key-1') }]);
    const c = client();
    const r = c.verifySearch({ label: utf8('alice') }, encodeDirectoryProof(await log.search({ label: utf8('alice') }), 1));
    assert.equal(r.version, 1);
    assert.deepEqual(r.value, utf8('alice-key-1'));
    assert.equal(c.treeSize, 2);
    const r0 = c.verifySearch({ label: utf8('alice'), version: 0 }, await log.search({ label: utf8('alice'), version: 0, last: c.treeSize }));
    assert.deepEqual(r0.value, utf8('alice-key-0'));
    const none = encodeDirectoryProof(await log.search({ label: utf8('carol'), last: 2 }), 1);
    throwsCode(() => c.verifySearch({ label: utf8('carol') }, none), 'KT_NOT_FOUND');
    // A fixed version that does not exist yet.
    const res = await log.search({ label: utf8('bob'), version: 1, last: 2 });
    throwsCode(() => c.verifySearch({ label: utf8('bob'), version: 1 }, res), 'KT_NOT_FOUND');
  });

  void test('"same" answers verify against the retained head; growing logs are checked for consistency', async () => {
    const { log, client } = await setup();
    const c = client();
    for (let i = 0; i < 9; i++) {
      await log.update([{ label: utf8(`user${i % 3}`), value: utf8(`v${i}`) }]);
      const res = await log.search({ label: utf8('user0'), last: c.treeSize });
      assert.equal(res.fullTreeHead.type, c.treeSize === i + 1 ? 'same' : 'updated');
      c.verifySearch({ label: utf8('user0') }, res);
      assert.equal(c.treeSize, i + 1);
      const again = await log.search({ label: utf8('user0'), last: c.treeSize });
      assert.equal(again.fullTreeHead.type, 'same');
      c.verifySearch({ label: utf8('user0') }, again);
    }
  });

  void test('an owner verifies its own update, and a wrong value is refused', async () => {
    const { log, client } = await setup();
    const owner = client();
    await log.update([{ label: utf8('dev1'), value: utf8('k0') }]);
    owner.verifyUpdate({ label: utf8('dev1'), value: utf8('k0'), expectedVersion: 0 }, await log.search({ label: utf8('dev1') }));
    await log.update([{ label: utf8('dev1'), value: utf8('k1') }]);
    const before = owner.head;
    const upd = await log.search({ label: utf8('dev1'), last: 1 });
    throwsCode(() => owner.verifyUpdate({ label: utf8('dev1'), value: utf8('other'), expectedVersion: 1 }, upd), 'KT_BAD_RESPONSE');
    assert.equal(owner.head, before, 'a refused answer changes nothing');
  });

  void test('monitoring: unchanged versions verify; a version the owner did not add is reported', async () => {
    const { log, client } = await setup();
    const owner = client();
    await log.update([{ label: utf8('me'), value: utf8('k0') }]);
    const r = owner.verifySearch({ label: utf8('me') }, await log.search({ label: utf8('me') }));
    await log.update([{ label: utf8('someone-else'), value: utf8('x') }]);
    const known = [{ version: 0, commitment: r.commitment! }];
    owner.verifyMonitor({ label: utf8('me'), known, greatestVersion: 0 }, await log.monitor({ label: utf8('me'), versions: [0], greatestVersion: 0, last: owner.treeSize }));
    assert.equal(owner.treeSize, 2);
    // The server adds a key for "me" that the owner did not add.
    await log.update([{ label: utf8('me'), value: utf8('attacker-key') }]);
    const mon = await log.monitor({ label: utf8('me'), versions: [0], greatestVersion: 0, last: 2 });
    throwsCode(() => owner.verifyMonitor({ label: utf8('me'), known, greatestVersion: 0 }, mon), 'KT_UNEXPECTED_VERSION');
    // A contact monitoring a changed commitment is refused.
    const other = client();
    const mon2 = await log.monitor({ label: utf8('me'), versions: [0] });
    throwsCode(() => other.verifyMonitor({ label: utf8('me'), known: [{ version: 0, commitment: new Uint8Array(32).fill(1) }] }, mon2), 'KT_BAD_SIGNATURE');
  });

  void test('rollback to an older head is refused (KT_ROLLBACK)', async () => {
    const { log, client } = await setup();
    await log.update([{ label: utf8('a'), value: utf8('1') }]);
    const old = await log.search({ label: utf8('a') });
    await log.update([{ label: utf8('a'), value: utf8('2') }]);
    const c = client();
    c.verifySearch({ label: utf8('a') }, await log.search({ label: utf8('a') }));
    throwsCode(() => c.verifySearch({ label: utf8('a') }, old), 'KT_ROLLBACK');
    assert.equal(c.treeSize, 2);
  });

  void test('a stale head is refused', async () => {
    let t = 1_800_000_000_000;
    const now = () => t;
    const { log } = await setup(new MemoryDirectoryStore(), now);
    await log.update([{ label: utf8('a'), value: utf8('1') }]);
    const c = new DirectoryClient(log.config, { now: () => t + 60_000 });
    const res = await log.search({ label: utf8('a') });
    throwsCode(() => c.verifySearch({ label: utf8('a') }, res), 'KT_BAD_RESPONSE');
    t += 1;
  });

  void test('store refuses a concurrent append at a stale position (KT_CONFLICT)', async () => {
    const store = new MemoryDirectoryStore();
    const { log } = await setup(store);
    await log.update([{ label: utf8('a'), value: utf8('1') }]);
    await rejectsCode(store.append({ position: 0, entry: { timestamp: 0, prefixTree: new Uint8Array(32) }, logNodes: [], prefixNodes: [], versions: [] }), 'KT_CONFLICT');
  });
});


async function signed(log: DirectoryBuilder): Promise<{ treeSize: number; root: Uint8Array; signature: Uint8Array }> {
  const { treeHead, root } = await log.treeHead();
  return { treeSize: treeHead.treeSize, root, signature: treeHead.signature };
}

/** Replays `history` into a fresh log; each element is one update of label → value. */
async function build(history: readonly (readonly [string, string])[], now = clock()) {
  const s = await setup(new MemoryDirectoryStore(), now);
  for (const [label, value] of history) await s.log.update([{ label: utf8(label), value: utf8(value) }]);
  return s;
}

const historyArb = fc.array(fc.tuple(fc.constantFrom('alice', 'bob', 'carol', 'dave'), fc.string({ maxLength: 8 })), { minLength: 1, maxLength: 12 });

void describe('properties (fast-check)', () => {
  void test('random histories: every search verifies and returns the latest value of every label', async () => {
    await fc.assert(
      fc.asyncProperty(historyArb, fc.array(fc.integer({ min: 1, max: 12 }), { maxLength: 3 }), async (history, checkpoints) => {
        const now = clock();
        const { log } = await setup(new MemoryDirectoryStore(), now);
        const c = new DirectoryClient(log.config, { now });
        const latest = new Map<string, { version: number; value: string }>();
        for (let i = 0; i < history.length; i++) {
          const [label, value] = history[i]!;
          await log.update([{ label: utf8(label), value: utf8(value) }]);
          latest.set(label, { version: (latest.get(label)?.version ?? -1) + 1, value });
          if (checkpoints.includes(i + 1) || i === history.length - 1) {
            for (const l of ['alice', 'bob', 'carol', 'dave']) {
              const res = encodeDirectoryProof(await log.search({ label: utf8(l), last: c.treeSize }), 1);
              const want = latest.get(l);
              if (!want) {
                throwsCode(() => c.verifySearch({ label: utf8(l) }, res), 'KT_NOT_FOUND');
                continue;
              }
              const r = c.verifySearch({ label: utf8(l) }, res);
              assert.equal(r.version, want.version);
              assert.deepEqual(r.value, utf8(want.value));
            }
          }
        }
        assert.equal(c.treeSize, history.length);
      }),
      { numRuns: 15 },
    );
  });

  void test('any single-bit flip in an encoded search or monitor answer is rejected', async () => {
    const now = clock();
    const { log } = await setup(new MemoryDirectoryStore(), now);
    for (let i = 0; i < 6; i++) await log.update([{ label: utf8(i % 2 ? 'alice' : 'bob'), value: utf8(`key-${i}`) }]);
    const base = new DirectoryClient(log.config, { now });
    base.verifySearch({ label: utf8('bob') }, await log.search({ label: utf8('bob') }));
    await log.update([{ label: utf8('alice'), value: utf8('key-6') }]);
    const search = encodeDirectoryProof(await log.search({ label: utf8('alice'), last: base.treeSize }), 1);
    const found = new DirectoryClient(log.config, { now, head: base.head! }).verifySearch({ label: utf8('alice') }, search);
    const mon = encodeDirectoryProof(await log.monitor({ label: utf8('alice'), versions: [0, 1], greatestVersion: found.version, last: base.treeSize }), 1);
    const r0 = new DirectoryClient(log.config, { now }).verifySearch({ label: utf8('alice'), version: 0 }, await log.search({ label: utf8('alice'), version: 0 }));
    const r1 = new DirectoryClient(log.config, { now }).verifySearch({ label: utf8('alice'), version: 1 }, await log.search({ label: utf8('alice'), version: 1 }));
    const known = [
      { version: 0, commitment: r0.commitment! },
      { version: 1, commitment: r1.commitment! },
    ];
    new DirectoryClient(log.config, { now, head: base.head! }).verifyMonitor({ label: utf8('alice'), known, greatestVersion: found.version }, mon);
    for (const [name, bytes, verify] of [
      ['search', search, (c: DirectoryClient, b: Uint8Array) => c.verifySearch({ label: utf8('alice') }, b)],
      ['monitor', mon, (c: DirectoryClient, b: Uint8Array) => c.verifyMonitor({ label: utf8('alice'), known, greatestVersion: found.version }, b)],
    ] as const) {
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 0, max: bytes.length * 8 - 1 }), (bit) => {
          const bad = bytes.slice();
          bad[bit >> 3]! ^= 1 << (bit & 7);
          const c = new DirectoryClient(log.config, { now, head: base.head! });
          assert.throws(
            () => verify(c, bad),
            (e: unknown) => isDirectoryError(e) && e.code !== 'KT_INVALID_ARGUMENT',
            `${name}: bit ${bit} flipped was accepted`,
          );
          assert.equal(c.head, base.head, 'a refused answer leaves the client state unchanged');
          return Promise.resolve();
        }),
        { numRuns: 250 },
      );
    }
    assert.ok(decodeDirectoryProof(search, 1));
  });

  void test('split view: two values for one label-version shown to two clients is detected when they compare heads', async () => {
    await fc.assert(
      fc.asyncProperty(historyArb, fc.nat(4), fc.nat(3), async (history, extraA, extraB) => {
        // The server keeps two logs with the same keys and the same past, then shows
        // "mallory" with a different value to each client.
        const a = await build(history);
        const b = await build(history);
        await a.log.update([{ label: utf8('mallory'), value: utf8('key-for-alice') }]);
        await b.log.update([{ label: utf8('mallory'), value: utf8('key-for-bob') }]);
        for (let i = 0; i < extraA; i++) await a.log.update([{ label: utf8('pad'), value: utf8(`a${i}`) }]);
        for (let i = 0; i < extraB; i++) await b.log.update([{ label: utf8('pad'), value: utf8(`b${i}`) }]);
        const alice = new DirectoryClient(a.log.config, { now: a.now });
        const bob = new DirectoryClient(b.log.config, { now: b.now });
        const va = alice.verifySearch({ label: utf8('mallory'), version: 0 }, await a.log.search({ label: utf8('mallory'), version: 0 }));
        const vb = bob.verifySearch({ label: utf8('mallory'), version: 0 }, await b.log.search({ label: utf8('mallory'), version: 0 }));
        assert.notDeepEqual(va.value, vb.value, 'each client individually accepted its view');
        // Gossip: the holder of the smaller head checks the larger, with a consistency proof the
        // server must produce (from either branch — neither can be consistent).
        const [small, large, largeLog, smallLog] =
          alice.treeSize! <= bob.treeSize! ? [alice, bob, b.log, a.log] : [bob, alice, a.log, b.log];
        const other = large.signedHead();
        if (other.treeSize === small.treeSize) {
          throwsCode(() => small.checkHead(other), 'KT_FORK');
        } else {
          for (const from of [largeLog, smallLog]) {
            const size = await from.treeSize();
            if (size < other.treeSize) continue;
            const proof = await from.consistency(small.treeSize!, other.treeSize);
            throwsCode(() => small.checkHead(other, proof), 'KT_FORK');
          }
        }
        // And an honest, consistent head is accepted.
        small.checkHead(small.signedHead());
      }),
      { numRuns: 15 },
    );
  });

  void test('a client that saw one branch refuses the other branch', async () => {
    const a = await build([['x', '1'], ['y', '2']]);
    const b = await build([['x', '1'], ['y', '2']]);
    await a.log.update([{ label: utf8('z'), value: utf8('A') }]);
    await b.log.update([{ label: utf8('z'), value: utf8('B') }]);
    await b.log.update([{ label: utf8('w'), value: utf8('B') }]);
    const c = new DirectoryClient(a.log.config, { now: a.now });
    c.verifySearch({ label: utf8('z') }, await a.log.search({ label: utf8('z') }));
    const res = await b.log.search({ label: utf8('z'), last: c.treeSize });
    const before = c.head;
    // The other branch's proof, evaluated over this client's retained heads, cannot reach a root
    // the log signed: refused as a signature failure (or KT_FORK when it recomputes a retained head).
    assert.throws(
      () => c.verifySearch({ label: utf8('z') }, res),
      (e: unknown) => isDirectoryError(e, 'KT_FORK') || isDirectoryError(e, 'KT_BAD_SIGNATURE'),
    );
    assert.equal(c.head, before);
    // Comparing the signed heads themselves names it a fork.
    const proof = await b.log.consistency(c.treeSize!, 4);
    const head = await signed(b.log);
    throwsCode(() => c.checkHead(head, proof), 'KT_FORK');
  });
});
