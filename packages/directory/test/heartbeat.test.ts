/**
 * The log's heartbeat (`DirectoryBuilder.heartbeat`, docs/directory.md §Freshness): an entry that
 * changes no label keeps an idle log's rightmost timestamp within `max_behind`, which a client
 * without a retained head checks — so an honest idle log stays usable, and an old head stays
 * refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DirectoryBuilder, DirectoryClient, MemoryDirectoryStore } from '../src/index.js';
import { throwsCode } from './helpers.js';

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const keys = { signingKey: new Uint8Array(32).fill(7), vrfKey: new Uint8Array(32).fill(9) };

void test('heartbeat entries keep an idle log fresh for new clients; an old head is refused as stale', async () => {
  let t = 1_800_000_000_000;
  const now = () => t;
  const log = await DirectoryBuilder.create(new MemoryDirectoryStore(), keys, { now, maxBehind: 10_000, reasonableMonitoringWindow: 1_000 });
  assert.equal(await log.heartbeat(1_000), null, 'an empty log gets no heartbeat');
  await log.update([{ label: utf8('alice'), value: utf8('alice-key-0') }]);
  const early = new DirectoryClient(log.config, { now });
  early.verifySearch({ label: utf8('alice') }, await log.search({ label: utf8('alice') }));
  const oldAnswer = await log.search({ label: utf8('alice') });

  // Idle for longer than max_behind: a new client refuses the head (its newest entry is too old).
  t += 20_000;
  throwsCode(() => new DirectoryClient(log.config, { now }).verifySearch({ label: utf8('alice') }, oldAnswer), 'KT_BAD_RESPONSE');
  // A heartbeat is due (the newest entry is ≥ 5 s old) and appends one entry; a second is not due.
  assert.equal(await log.heartbeat(5_000), 1);
  assert.equal(await log.heartbeat(5_000), null);
  assert.equal(await log.treeSize(), 2);
  // The same label, the same value: nothing changed but the timestamp; a new client accepts it.
  const fresh = new DirectoryClient(log.config, { now });
  const r = fresh.verifySearch({ label: utf8('alice') }, await log.search({ label: utf8('alice') }));
  assert.equal(r.version, 0);
  assert.deepEqual(r.value, utf8('alice-key-0'));
  assert.equal(fresh.treeSize, 2);
  // A client holding the earlier head moves on consistently; the replayed old answer stays refused.
  early.verifySearch({ label: utf8('alice') }, await log.search({ label: utf8('alice'), last: early.treeSize }));
  assert.equal(early.treeSize, 2);
  throwsCode(() => new DirectoryClient(log.config, { now }).verifySearch({ label: utf8('alice') }, oldAnswer), 'KT_BAD_RESPONSE');
  // Changes still append after heartbeats.
  t += 1_000;
  const u = await log.update([{ label: utf8('alice'), value: utf8('alice-key-1') }]);
  assert.deepEqual(u.versions, [1]);
  assert.equal(fresh.verifySearch({ label: utf8('alice') }, await log.search({ label: utf8('alice'), last: fresh.treeSize })).version, 1);
});
