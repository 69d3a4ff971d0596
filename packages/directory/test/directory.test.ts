/**
 * The builder and the client end to end, on the draft's algorithms (§6.3/§7.2 search, §8.2 contact
 * monitoring, §8.3 owner init/monitoring, §12.3 proofs): search, update, monitor, rollback and
 * fork refusal, with property tests (fast-check) over random histories, bit flips and split views.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  DirectoryBuilder,
  DirectoryClient,
  MemoryDirectoryStore,
  decodeSearchResponse,
  encodeMonitorResponse,
  encodeOwnerInitResponse,
  encodeSearchResponse,
  encodeUpdateResponse,
  isDirectoryError,
  type DirectoryParams,
  type DirectoryStore,
} from '../src/index.js';
import { rejectsCode, throwsCode } from './helpers.js';

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const keys = { signingKey: new Uint8Array(32).fill(7), vrfKey: new Uint8Array(32).fill(9) };

function clock(start = 1_800_000_000_000): () => number {
  let t = start;
  return () => (t += 10);
}

/** A monitoring window of 45 ms against a 10 ms clock tick: a mix of distinguished and plain entries. */
async function setup(store: DirectoryStore = new MemoryDirectoryStore(), now = clock(), params: DirectoryParams = { reasonableMonitoringWindow: 45 }) {
  const log = await DirectoryBuilder.create(store, keys, { now, ...params });
  return { log, now, client: () => new DirectoryClient(log.config, { now }) };
}

void describe('DirectoryBuilder + DirectoryClient', () => {
  void test('search for the greatest and a fixed version; absence is a verified KT_NOT_FOUND', async () => {
    const { log, client } = await setup();
    await log.update([{ label: utf8('alice'), value: utf8('alice-key-0') }, { label: utf8('bob'), value: utf8('bob-key-0') }]);
    await log.update([{ label: utf8('alice'), value: utf8('alice-key-1') }]);
    const c = client();
    const bytes = encodeSearchResponse(await log.search({ label: utf8('alice') }), 1);
    assert.equal(decodeSearchResponse(bytes, 1, false).version, 1);
    const r = c.verifySearch({ label: utf8('alice') }, bytes);
    assert.equal(r.version, 1);
    assert.deepEqual(r.value, utf8('alice-key-1'));
    assert.equal(c.treeSize, 2);
    assert.deepEqual(c.labelState(utf8('alice'))!.monitoring, [{ position: r.position, version: 1 }]);
    const r0 = c.verifySearch({ label: utf8('alice'), version: 0 }, await log.search({ label: utf8('alice'), version: 0, last: c.treeSize }));
    assert.deepEqual(r0.value, utf8('alice-key-0'));
    const none = encodeSearchResponse(await log.search({ label: utf8('carol'), last: 2 }), 1);
    throwsCode(() => c.verifySearch({ label: utf8('carol') }, none), 'KT_NOT_FOUND');
    // A fixed version that does not exist yet.
    const res = await log.search({ label: utf8('bob'), version: 1, last: 2 });
    throwsCode(() => c.verifySearch({ label: utf8('bob'), version: 1 }, res), 'KT_NOT_FOUND');
    // The builder refuses a `last` beyond its log, and an empty log.
    await rejectsCode(log.search({ label: utf8('bob'), last: 3 }), 'KT_INVALID_ARGUMENT');
    await rejectsCode((await setup()).log.search({ label: utf8('bob') }), 'KT_NOT_FOUND');
  });

  void test('"same" and growing answers verify against the retained frontier, prefix roots and subtree heads', async () => {
    const { log, client } = await setup();
    const c = client();
    const fresh = client();
    for (let i = 0; i < 26; i++) {
      await log.update([{ label: utf8(`user${i % 3}`), value: utf8(`v${i}`) }]);
      if (i % 3 === 2 && i > 12) continue; // let the log grow by more than one entry at times
      const label = utf8(`user${i % 2}`);
      const res = await log.search({ label, last: c.treeSize });
      assert.equal(res.fullTreeHead.type, 'updated');
      const r = c.verifySearch({ label }, encodeSearchResponse(res, 1));
      assert.equal(c.treeSize, i + 1);
      assert.deepEqual(c.head!.frontier.map((f) => f.position), frontierOf(i + 1));
      // A fixed-version search over the same view: the log answers `same`.
      const again = await log.search({ label, version: r.version, last: c.treeSize });
      assert.equal(again.fullTreeHead.type, 'same');
      assert.deepEqual(c.verifySearch({ label, version: r.version }, again).value, r.value);
    }
    // A client that never advertised a size verifies the same log from scratch.
    assert.deepEqual(fresh.verifySearch({ label: utf8('user2') }, await log.search({ label: utf8('user2') })).value, utf8('v23'));
  });

  void test('an owner verifies its own update, and a wrong value is refused without changing state', async () => {
    const { log, client } = await setup();
    const owner = client();
    const u0 = await log.update([{ label: utf8('dev1'), value: utf8('k0') }]);
    owner.verifyUpdate({ label: utf8('dev1'), value: utf8('k0'), expectedVersion: 0, position: u0.position }, await log.search({ label: utf8('dev1') }));
    await log.update([{ label: utf8('dev1'), value: utf8('k1') }]);
    const before = owner.head;
    const labels = owner.labels;
    const upd = await log.search({ label: utf8('dev1'), last: 1 });
    throwsCode(() => owner.verifyUpdate({ label: utf8('dev1'), value: utf8('other'), expectedVersion: 1 }, upd), 'KT_BAD_RESPONSE');
    throwsCode(() => owner.verifyUpdate({ label: utf8('dev0'), value: utf8('k0') }, upd), 'KT_BAD_VRF_PROOF');
    assert.equal(owner.head, before, 'a refused answer changes nothing');
    assert.deepEqual(owner.labels, labels);
  });

  void test('contact monitoring re-proves looked-up versions and moves the map up the tree', async () => {
    const { log, client } = await setup();
    const c = client();
    await log.update([{ label: utf8('bob'), value: utf8('b0') }]);
    for (let i = 0; i < 3; i++) await log.update([{ label: utf8(`pad${i}`), value: utf8('x') }]);
    c.verifySearch({ label: utf8('bob') }, await log.search({ label: utf8('bob') }));
    const first = c.labelState(utf8('bob'))!.monitoring;
    for (let round = 0; round < 12; round++) {
      await log.update([{ label: utf8(round % 4 === 3 ? 'bob' : `pad${round}`), value: utf8(`r${round}`) }]);
      const res = await log.contactMonitor(c.contactMonitorRequest(utf8('bob')));
      c.verifyContactMonitor(utf8('bob'), encodeMonitorResponse(res, 1));
      for (const m of c.labelState(utf8('bob'))!.monitoring) assert.ok(m.position >= first[0]!.position);
    }
    assert.equal(c.treeSize, 16);
    // A monitoring map naming a version the log does not hold there is refused by the log.
    await rejectsCode(log.contactMonitor({ label: utf8('bob'), entries: [{ position: 0, version: 3 }] }), 'KT_INVALID_ARGUMENT');
    await rejectsCode(log.contactMonitor({ label: utf8('bob'), entries: [{ position: 99, version: 0 }] }), 'KT_INVALID_ARGUMENT');
    throwsCode(() => c.contactMonitorRequest(utf8('nobody')), 'KT_INVALID_ARGUMENT');
  });

  void test('owner monitoring: the owner\'s own versions verify; a version it did not add is KT_UNEXPECTED_VERSION', async () => {
    const { log, client } = await setup();
    const owner = client();
    const me = utf8('me');
    await log.update([{ label: me, value: utf8('k0') }]);
    for (let i = 0; i < 5; i++) await log.update([{ label: utf8(`other${i}`), value: utf8('x') }]);
    owner.verifySearch({ label: me }, await log.search({ label: me }));
    const init = owner.ownerInitRequest(me);
    const initRes = await log.ownerInit(init);
    assert.deepEqual(owner.verifyOwnerInit(init, encodeOwnerInitResponse(initRes, 1)).greatestVersions, [0]);
    for (let i = 0; i < 10; i++) {
      if (i % 4 === 1) {
        const u = await log.update([{ label: me, value: utf8(`k${i}`) }]);
        owner.verifyUpdate({ label: me, value: utf8(`k${i}`), position: u.position }, await log.search({ label: me, last: owner.treeSize }));
      } else await log.update([{ label: utf8(`pad${i}`), value: utf8('x') }]);
      owner.verifyOwnerMonitor(me, encodeMonitorResponse(await log.ownerMonitor(owner.ownerMonitorRequest(me)), 1));
    }
    // The server adds a key for "me" that the owner did not add.
    await log.update([{ label: me, value: utf8('attacker-key') }]);
    for (let i = 0; i < 6; i++) await log.update([{ label: utf8(`late${i}`), value: utf8('x') }]);
    const before = owner.head;
    const mon = await log.ownerMonitor(owner.ownerMonitorRequest(me));
    throwsCode(() => owner.verifyOwnerMonitor(me, mon), 'KT_UNEXPECTED_VERSION');
    assert.equal(owner.head, before);
    throwsCode(() => owner.ownerMonitorRequest(utf8('not-mine')), 'KT_INVALID_ARGUMENT');
  });

  void test('owner init on a label with no versions, then its first version', async () => {
    const { log, client } = await setup();
    const owner = client();
    const me = utf8('newcomer');
    await log.update([{ label: utf8('x'), value: utf8('1') }]);
    throwsCode(() => owner.ownerInitRequest(me), 'KT_INVALID_ARGUMENT');
    owner.verifySearch({ label: utf8('x') }, await log.search({ label: utf8('x') }));
    for (let i = 0; i < 4; i++) await log.update([{ label: utf8(`pad${i}`), value: utf8('x') }]);
    const init = owner.ownerInitRequest(me);
    assert.deepEqual(owner.verifyOwnerInit(init, await log.ownerInit(init)).greatestVersions, []);
    const u = await log.update([{ label: me, value: utf8('first') }]);
    owner.verifyUpdate({ label: me, value: utf8('first'), expectedVersion: 0, position: u.position }, await log.search({ label: me, last: owner.treeSize }));
    for (let i = 0; i < 6; i++) {
      await log.update([{ label: utf8(`more${i}`), value: utf8('x') }]);
      owner.verifyOwnerMonitor(me, await log.ownerMonitor(owner.ownerMonitorRequest(me)));
    }
    await rejectsCode(log.ownerInit({ label: me, start: 99 }), 'KT_INVALID_ARGUMENT');
  });

  void test('§9.1 update responses: the owner verifies each of its updates; a wrong value, a flipped bit or a stale owner state is refused', async () => {
    const { log, client } = await setup();
    const owner = client();
    const me = utf8('updater');
    for (let i = 0; i < 3; i++) await log.update([{ label: utf8(`seed${i}`), value: utf8('x') }]);
    owner.verifySearch({ label: utf8('seed0') }, await log.search({ label: utf8('seed0') }));
    const init = owner.ownerInitRequest(me);
    owner.verifyOwnerInit(init, await log.ownerInit(init));
    let expected = 0;
    for (let round = 0; round < 8; round++) {
      const values = Array.from({ length: (round % 3) + 1 }, (_, k) => utf8(`key-${round}-${k}`));
      const u = await log.update(values.map((value) => ({ label: me, value })));
      for (let k = 0; k < round % 2; k++) await log.update([{ label: utf8(`other${round}-${k}`), value: utf8('y') }]);
      const res = await log.updateResponse({ label: me, position: u.position, count: values.length, owner: owner.ownerState(me), ...(owner.treeSize ? { last: owner.treeSize } : {}) });
      const bytes = encodeUpdateResponse(res, 1);
      if (round === 4) {
        const before = { head: owner.head, labels: owner.labels };
        throwsCode(() => owner.verifyUpdateResponse({ label: me, values: [utf8('not-mine'), ...values.slice(1)] }, bytes), 'KT_BAD_RESPONSE');
        const fork = (): DirectoryClient => new DirectoryClient(log.config, { now: () => 1_800_000_000_000 + 10_000, head: owner.head!, labels: owner.labels });
        const honest = fork();
        const want = { result: honest.verifyUpdateResponse({ label: me, values }, bytes), head: honest.head, labels: honest.labels };
        let unnoticed = 0;
        const stride = Math.ceil((bytes.length * 8) / 40) | 1;
        for (let bit = 5; bit < bytes.length * 8; bit += stride) {
          const bad = bytes.slice();
          bad[bit >> 3]! ^= 1 << (bit & 7);
          const c = fork();
          try {
            const got = c.verifyUpdateResponse({ label: me, values }, bad);
            // Only a carried commitment no lookup used may flip unnoticed, and then nothing changes.
            assert.deepEqual({ result: got, head: c.head, labels: c.labels }, want, `bit ${bit}`);
            unnoticed++;
          } catch (e) {
            assert.ok(isDirectoryError(e), `bit ${bit}: ${String(e)}`);
          }
        }
        assert.ok(unnoticed * 5 < (bytes.length * 8) / stride, `${unnoticed} flips unnoticed`);
        assert.deepEqual({ head: owner.head, labels: owner.labels }, before);
      }
      const r = owner.verifyUpdateResponse({ label: me, values }, bytes);
      assert.deepEqual(r.versions, values.map((_, k) => expected + k));
      assert.equal(r.position, u.position);
      expected += values.length;
      owner.verifyOwnerMonitor(me, await log.ownerMonitor(owner.ownerMonitorRequest(me)));
    }
    // A log that added a version behind the owner's back cannot answer the owner's next update.
    await log.update([{ label: me, value: utf8('rogue') }]);
    const u = await log.update([{ label: me, value: utf8('mine') }]);
    await rejectsCode(log.updateResponse({ label: me, position: u.position, count: 1, owner: owner.ownerState(me), last: owner.treeSize! }), 'KT_INVALID_ARGUMENT');
    throwsCode(() => owner.verifyOwnerMonitor(me, undefined as never), 'KT_MALFORMED');
  });

  void test('§7.1 expiry: the log refuses an expired version, and newer ones still verify', async () => {
    const { log, client } = await setup(new MemoryDirectoryStore(), clock(), { reasonableMonitoringWindow: 45, maximumLifetime: 120 });
    const c = client();
    await log.update([{ label: utf8('old'), value: utf8('v0') }]);
    for (let i = 0; i < 20; i++) await log.update([{ label: utf8(i % 5 === 4 ? 'old' : `pad${i}`), value: utf8(`v${i}`) }]);
    await rejectsCode(log.search({ label: utf8('old'), version: 0 }), 'KT_NOT_FOUND');
    const g = c.verifySearch({ label: utf8('old') }, await log.search({ label: utf8('old') }));
    assert.equal(g.version, 4);
    assert.deepEqual(c.verifySearch({ label: utf8('old'), version: 4 }, await log.search({ label: utf8('old'), version: 4, last: c.treeSize })).value, utf8('v19'));
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
    assert.equal(c.head, undefined);
    t += 1;
  });

  void test('store refuses a concurrent append at a stale position (KT_CONFLICT)', async () => {
    const store = new MemoryDirectoryStore();
    const { log } = await setup(store);
    await log.update([{ label: utf8('a'), value: utf8('1') }]);
    await rejectsCode(store.append({ position: 0, entry: { timestamp: 0, prefixTree: new Uint8Array(32) }, logNodes: [], prefixNodes: [], versions: [] }), 'KT_CONFLICT');
  });
});

/** The frontier of a log of `size` entries (root, then right children). */
function frontierOf(size: number): number[] {
  const out: number[] = [];
  let lo = 0;
  const hi = size;
  for (;;) {
    let root = 1;
    while (root * 2 <= hi - lo) root *= 2;
    out.push(lo + root - 1);
    if (lo + root === hi) return out;
    lo += root;
  }
}

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
  void test('random histories: every search (greatest and fixed) and every monitor verifies', async () => {
    await fc.assert(
      fc.asyncProperty(historyArb, fc.array(fc.integer({ min: 1, max: 12 }), { maxLength: 3 }), fc.constantFrom(0, 25, 45, 604_800_000), async (history, checkpoints, window) => {
        const now = clock();
        const { log } = await setup(new MemoryDirectoryStore(), now, { reasonableMonitoringWindow: window });
        const c = new DirectoryClient(log.config, { now });
        const values = new Map<string, string[]>();
        for (let i = 0; i < history.length; i++) {
          const [label, value] = history[i]!;
          await log.update([{ label: utf8(label), value: utf8(value) }]);
          values.set(label, [...(values.get(label) ?? []), value]);
          if (!checkpoints.includes(i + 1) && i !== history.length - 1) continue;
          for (const l of ['alice', 'bob', 'carol', 'dave']) {
            const res = encodeSearchResponse(await log.search({ label: utf8(l), last: c.treeSize }), 1);
            const want = values.get(l);
            if (!want) {
              throwsCode(() => c.verifySearch({ label: utf8(l) }, res), 'KT_NOT_FOUND');
              continue;
            }
            const r = c.verifySearch({ label: utf8(l) }, res);
            assert.equal(r.version, want.length - 1);
            assert.deepEqual(r.value, utf8(want.at(-1)!));
            const v = (i * 7) % want.length;
            const fixed = c.verifySearch({ label: utf8(l), version: v }, await log.search({ label: utf8(l), version: v, last: c.treeSize }));
            assert.deepEqual(fixed.value, utf8(want[v]!));
            c.verifyContactMonitor(utf8(l), await log.contactMonitor(c.contactMonitorRequest(utf8(l))));
          }
        }
        assert.equal(c.treeSize, history.length);
      }),
      { numRuns: 10 },
    );
  });

  void test('any single-bit flip in an encoded search, monitor or owner answer is rejected', async () => {
    const now = clock();
    const { log } = await setup(new MemoryDirectoryStore(), now);
    const additions: { version: number; position: number }[] = [];
    for (let i = 0; i < 6; i++) {
      const u = await log.update([{ label: utf8(i % 2 ? 'alice' : 'bob'), value: utf8(`key-${i}`) }]);
      if (i % 2) additions.push({ version: u.versions[0]!, position: u.position });
    }
    const base = new DirectoryClient(log.config, { now });
    base.verifySearch({ label: utf8('alice') }, await log.search({ label: utf8('alice') }));
    const init = { ...base.ownerInitRequest(utf8('alice')), additions };
    base.verifyOwnerInit(init, await log.ownerInit(init));
    const u = await log.update([{ label: utf8('alice'), value: utf8('key-6') }]);
    base.verifyUpdate({ label: utf8('alice'), value: utf8('key-6'), position: u.position }, await log.search({ label: utf8('alice'), last: base.treeSize }));
    await log.update([{ label: utf8('carol'), value: utf8('key-7') }]);
    await log.update([{ label: utf8('carol'), value: utf8('key-8') }]);
    const clone = (): DirectoryClient => new DirectoryClient(log.config, { now, head: base.head!, labels: base.labels });
    const search = encodeSearchResponse(await log.search({ label: utf8('alice'), last: base.treeSize }), 1);
    const fixed = encodeSearchResponse(await log.search({ label: utf8('alice'), version: 1, last: base.treeSize }), 1);
    const contact = encodeMonitorResponse(await log.contactMonitor(base.contactMonitorRequest(utf8('alice'))), 1);
    const owner = encodeMonitorResponse(await log.ownerMonitor(base.ownerMonitorRequest(utf8('alice'))), 1);
    const reinit = { ...base.ownerInitRequest(utf8('alice')), additions };
    const initBytes = encodeOwnerInitResponse(await log.ownerInit(reinit), 1);
    const cases = [
      ['search', search, (c: DirectoryClient, b: Uint8Array) => c.verifySearch({ label: utf8('alice') }, b)],
      ['fixed', fixed, (c: DirectoryClient, b: Uint8Array) => c.verifySearch({ label: utf8('alice'), version: 1 }, b)],
      ['contact', contact, (c: DirectoryClient, b: Uint8Array) => c.verifyContactMonitor(utf8('alice'), b)],
      ['owner', owner, (c: DirectoryClient, b: Uint8Array) => c.verifyOwnerMonitor(utf8('alice'), b)],
      ['init', initBytes, (c: DirectoryClient, b: Uint8Array) => c.verifyOwnerInit(reinit, b)],
    ] as const;
    for (const [name, bytes, verify] of cases) {
      const honest = clone();
      const want = { result: verify(honest, bytes) as unknown, head: honest.head, labels: honest.labels }; // the unmodified answer verifies
      let unnoticed = 0;
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 0, max: bytes.length * 8 - 1 }), (bit) => {
          const bad = bytes.slice();
          bad[bit >> 3]! ^= 1 << (bit & 7);
          const c = clone();
          let accepted: unknown;
          try {
            accepted = verify(c, bad);
          } catch (e) {
            assert.ok(isDirectoryError(e) && e.code !== 'KT_INVALID_ARGUMENT', `${name}: bit ${bit}: ${String(e)}`);
            assert.equal(c.head, base.head, 'a refused answer leaves the client state unchanged');
            assert.deepEqual(c.labels, base.labels);
            return Promise.resolve();
          }
          // Only bytes the answer does not authenticate and the client does not keep (a carried
          // commitment of a version no lookup used) may flip unnoticed: then nothing changes.
          assert.deepEqual(accepted, want.result, `${name}: bit ${bit} flipped changed the result`);
          assert.deepEqual(c.head, want.head, `${name}: bit ${bit} flipped changed the head`);
          assert.deepEqual(c.labels, want.labels, `${name}: bit ${bit} flipped changed the label state`);
          unnoticed++;
          return Promise.resolve();
        }),
        { numRuns: 60 },
      );
      assert.ok(unnoticed < 10, `${name}: ${unnoticed} of 60 flips went unnoticed`);
    }
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
      { numRuns: 10 },
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
    // The other branch's proof, evaluated over this client's retained frontier and heads, cannot
    // reach a root the log signed: refused (KT_FORK when it recomputes a retained head).
    assert.throws(
      () => c.verifySearch({ label: utf8('z') }, res),
      (e: unknown) => isDirectoryError(e, 'KT_FORK') || isDirectoryError(e, 'KT_BAD_SIGNATURE') || isDirectoryError(e, 'KT_BAD_RESPONSE'),
    );
    assert.equal(c.head, before);
    // Comparing the signed heads themselves names it a fork.
    const proof = await b.log.consistency(c.treeSize!, 4);
    const head = await signed(b.log);
    throwsCode(() => c.checkHead(head, proof), 'KT_FORK');
  });
});
