/**
 * `npm run bench:directory`: the KEYTRANS directory (packages/directory) at several sizes.
 *
 * For each size N it builds a log whose prefix tree holds N labels (batched `update`s of
 * `--batch` labels, one log entry per batch, a synthetic clock advancing 1 s per entry), over a
 * compact in-memory DirectoryStore (below), then measures:
 * - searches with proofs per second (builder side: `search` + `encodeSearchResponse`),
 * - encoded SearchResponse sizes (bytes, p50/max), for a first contact (no `last`) and for a
 *   client that already holds the current head (`last` = tree size),
 * - client verification time per search (`DirectoryClient.verifySearch` on the bytes, fresh
 *   client each time: signature check of the head included), µs p50/p99,
 * - update throughput (labels/s) in batches of 1 and 100 on top of the built log (real VRF),
 * - the time to build the log.
 *
 * Keys: the in-memory key holder (`memoryDirectoryKeys`). Searched ("probe") labels always get
 * real ECVRF evaluations. With `--filler=random` (the default for sizes above `--real-max`), the
 * other labels ("filler") get a random 32-byte VRF output and a zero proof instead of an ECVRF
 * evaluation: a VRF output is uniformly distributed, so the prefix tree has the same shape and
 * the searched labels the same proof depths, but the filler's VRF outputs cannot be verified
 * (they are never searched). Everything else (commitments, prefix-tree inserts, log tree,
 * tree-head signatures) is the real builder code.
 *
 * Options: --sizes=10000,100000 (add 1000000: ~13 min idle, 4–5 GB more; 10000000: bulk, ~1 h, 4.6 GB)  --batch=255
 *          --probes=200  --searches=400  --updates=200  --real-max=10000 (sizes ≤ this use real VRF for every label)
 *          --fill=auto|incremental|bulk (auto: bulk above 10⁶; see bulkBuild)
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import {
  DirectoryBuilder,
  DirectoryClient,
  ZERO_HASH,
  encodeSearchResponse,
  logLeafValue,
  memoryDirectoryKeys,
  prefixLeafValue,
  prefixParentValue,
  type AppendBatch,
  type DirectoryKeyHolder,
  type DirectoryStore,
  type LogEntry,
  type PrefixNode,
  type StoredVersion,
} from '@keyward/directory';
import { machine, table } from './lib/harness.js';

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: '10000,100000' },
    batch: { type: 'string', default: '255' },
    probes: { type: 'string', default: '200' },
    searches: { type: 'string', default: '400' },
    updates: { type: 'string', default: '200' },
    'real-max': { type: 'string', default: '10000' },
    fill: { type: 'string', default: 'auto' },
  },
});
const SIZES = args.sizes.split(',').map(Number);
const BATCH = Number(args.batch);
const PROBES = Number(args.probes);
const SEARCHES = Number(args.searches);
const UPDATES = Number(args.updates);
const REAL_MAX = Number(args['real-max']);
/** `incremental`: every label through `update`; `bulk`: a bulk-loaded first entry (below); `auto`: bulk above 10⁶. */
const FILL = args.fill;
if (!['auto', 'incremental', 'bulk'].includes(FILL)) throw new Error('--fill is auto, incremental or bulk');
const isBulk = (size: number): boolean => FILL === 'bulk' || (FILL === 'auto' && size > 1_000_000);

// ---------------------------------------------------------------------------
// A compact in-memory store. MemoryDirectoryStore keys everything by hex strings and keeps one
// object per node, which does not fit 10⁶ labels (~20 prefix nodes each) in memory, and a single
// V8 Map stops at 2²⁴ entries. Here a prefix node is 65 bytes in a growing arena, indexed by
// 16 Maps keyed on the node value as a latin1 string.

const SHARDS = 16;
class ArenaStore implements DirectoryStore {
  private readonly entries: LogEntry[] = [];
  private readonly logNodes = new Map<string, Uint8Array>();
  private readonly index: Map<string, number>[] = Array.from({ length: SHARDS }, () => new Map());
  private arena = new Uint8Array(1 << 24);
  private used = 0;
  private readonly versions = new Map<string, StoredVersion[]>();
  nodes = 0;

  private static key(v: Uint8Array): string {
    return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('latin1');
  }

  treeSize(): Promise<number> {
    return Promise.resolve(this.entries.length);
  }

  logEntry(position: number): Promise<LogEntry | undefined> {
    return Promise.resolve(this.entries[position]);
  }

  logNode(start: number, len: number): Promise<Uint8Array | undefined> {
    return Promise.resolve(this.logNodes.get(`${start}/${len}`));
  }

  prefixNode(value: Uint8Array): Promise<PrefixNode | undefined> {
    const at = this.index[value[0]! % SHARDS]!.get(ArenaStore.key(value));
    if (at === undefined) return Promise.resolve(undefined);
    const a = this.arena.subarray(at + 1, at + 33);
    const b = this.arena.subarray(at + 33, at + 65);
    return Promise.resolve(this.arena[at] === 0 ? { type: 'leaf', vrfOutput: a, commitment: b } : { type: 'parent', left: a, right: b });
  }

  versionCount(label: Uint8Array): Promise<number> {
    return Promise.resolve(this.versions.get(ArenaStore.key(label))?.length ?? 0);
  }

  labelVersion(label: Uint8Array, version: number): Promise<StoredVersion | undefined> {
    return Promise.resolve(this.versions.get(ArenaStore.key(label))?.[version]);
  }

  /** Stores one prefix node under its value (the bulk load writes the first entry's tree here). */
  putPrefixNode(v: Uint8Array, type: 'leaf' | 'parent', a: Uint8Array, b: Uint8Array): void {
    const shard = this.index[v[0]! % SHARDS]!;
    const k = ArenaStore.key(v);
    if (shard.has(k)) return;
    if (this.used + 65 > this.arena.length) {
      const bigger = new Uint8Array(Math.min(this.arena.length * 2, 2 ** 32 - 1));
      if (bigger.length < this.used + 65) throw new Error('prefix arena full (4 GiB)');
      bigger.set(this.arena);
      this.arena = bigger;
    }
    this.arena[this.used] = type === 'leaf' ? 0 : 1;
    this.arena.set(a, this.used + 1);
    this.arena.set(b, this.used + 33);
    shard.set(k, this.used);
    this.used += 65;
    this.nodes++;
  }

  append(batch: AppendBatch): Promise<void> {
    if (batch.position !== this.entries.length) return Promise.reject(new Error('append out of order'));
    this.entries.push(batch.entry);
    for (const n of batch.logNodes) this.logNodes.set(`${n.start}/${n.len}`, n.value);
    for (const [v, n] of batch.prefixNodes) {
      if (n.type === 'leaf') this.putPrefixNode(v, 'leaf', n.vrfOutput, n.commitment);
      else this.putPrefixNode(v, 'parent', n.left, n.right);
    }
    for (const v of batch.versions) {
      const k = ArenaStore.key(v.label);
      const list = this.versions.get(k) ?? [];
      // Filler labels are never searched: keep their record only as a version count.
      list[v.version] = isFiller(v.label) ? FILLER_RECORD : v.record;
      this.versions.set(k, list);
    }
    return Promise.resolve();
  }
}

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const FILLER_PREFIX = utf8('filler:');
const isFiller = (label: Uint8Array): boolean => label.length > FILLER_PREFIX.length && FILLER_PREFIX.every((b, i) => label[i] === b);
const EMPTY = new Uint8Array(0);
const FILLER_RECORD: StoredVersion = { value: EMPTY, opening: EMPTY, vrfOutput: EMPTY, vrfProof: EMPTY, commitment: EMPTY, position: -1 };

/** The in-memory key holder, with random VRF outputs for filler labels when `synthetic`. */
function keyHolder(synthetic: boolean): DirectoryKeyHolder {
  const real = memoryDirectoryKeys({ signingKey: randomBytes(32), vrfKey: randomBytes(32) });
  if (!synthetic) return real;
  const zeroProof = new Uint8Array(80);
  return {
    signaturePublicKey: real.signaturePublicKey,
    vrfPublicKey: real.vrfPublicKey,
    vrfProve: (label, version) => (isFiller(label) ? Promise.resolve({ output: new Uint8Array(randomBytes(32)), proof: zeroProof }) : real.vrfProve(label, version)),
    signTreeHead: (tbs, head) => real.signTreeHead(tbs, head),
  };
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

const fmt = (n: number, d = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

interface Row {
  size: number;
  synthetic: boolean;
  /** Labels in the bulk-loaded first entry (`--fill=bulk`), else undefined. */
  bulk: number | undefined;
  entries: number;
  prefixNodes: number;
  buildS: number;
  heapMiB: number;
  searchPerS: number;
  firstP50: number;
  firstMax: number;
  warmP50: number;
  warmMax: number;
  verifyP50: number;
  verifyP99: number;
  /** CPU time (process.cpuUsage, all threads) per search and per verification: less sensitive to a busy machine than wall time. */
  searchCpuMs: number;
  verifyCpuP50: number;
  update1: number;
  update100: number;
}

/**
 * `--fill=bulk`: the log a `size`-label incremental build would have (ceil(size / batch) entries,
 * one a second), but built cheaply. Entry 0 holds G = size − (entries − 1) filler labels,
 * bulk-loaded: G random search keys, sorted, and the prefix tree built bottom-up from them (the
 * same canonical trie repeated inserts give; each node hashed once) with random commitments,
 * written straight into the store. Every later entry is one real `update` of one label: a probe
 * (real VRF) at evenly spread positions, else one more filler label. So the latest tree holds
 * `size` labels and the log has the incremental build's length, but it takes 2·G hashes instead
 * of ~13·size stored copy-on-write nodes; the cost is that an old entry's tree already holds
 * ~G labels where an incremental build's would hold fewer (prefix proofs at old entries are up
 * to one level deeper: the bulk numbers err on the large side).
 */
async function bulkBuild(store: ArenaStore, log: DirectoryBuilder, size: number, now: () => number, probes: Uint8Array[]): Promise<number> {
  const entries = Math.ceil(size / BATCH);
  const g = size - (entries - 1);
  // Search keys: 8 sorted random high bytes (a BigUint64Array sorts natively) ‖ 24 random bytes.
  const high = new BigUint64Array(g);
  for (let i = 0; i < g; i += 1 << 16) {
    const n = Math.min(1 << 16, g - i);
    high.set(new BigUint64Array(randomBytes(n * 8).buffer, 0, n), i);
  }
  high.sort();
  const keys = new Uint8Array(g * 32);
  const dv = new DataView(keys.buffer);
  for (let i = 0; i < g; i += 1 << 16) keys.set(randomBytes(Math.min(1 << 16, g - i) * 32), i * 32);
  for (let i = 0; i < g; i++) dv.setBigUint64(i * 32, high[i]!, false);
  const bit = (i: number, depth: number): number => (keys[i * 32 + (depth >> 3)]! >> (7 - (depth & 7))) & 1;
  const build = (lo: number, hi: number, depth: number): Uint8Array => {
    if (hi === lo) return ZERO_HASH;
    if (hi - lo === 1) {
      const vrfOutput = keys.subarray(lo * 32, lo * 32 + 32);
      const commitment = new Uint8Array(randomBytes(32));
      const v = prefixLeafValue({ vrfOutput, commitment });
      store.putPrefixNode(v, 'leaf', vrfOutput, commitment);
      return v;
    }
    // First key in [lo, hi) with this bit set (the keys are sorted and share the bits above).
    let a = lo;
    let b = hi;
    while (a < b) {
      const m = (a + b) >>> 1;
      if (bit(m, depth) === 1) b = m;
      else a = m + 1;
    }
    const left = build(lo, a, depth + 1);
    const right = build(a, hi, depth + 1);
    const v = prefixParentValue(left, right);
    store.putPrefixNode(v, 'parent', left, right);
    return v;
  };
  const t0 = performance.now();
  const root = build(0, g, 0);
  const entry = { timestamp: now(), prefixTree: root };
  await store.append({ position: 0, entry, logNodes: [{ start: 0, len: 1, value: logLeafValue(entry) }], prefixNodes: [], versions: [] });
  process.stderr.write(`  ${size}: bulk entry of ${g} labels, ${store.nodes} nodes, ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
  const probeEvery = Math.max(1, Math.floor((entries - 1) / PROBES));
  let last = performance.now();
  for (let e = 1; e < entries; e++) {
    const probe = (e - 1) % probeEvery === 0 && probes.length < PROBES;
    const label = utf8(probe ? `user-${e}@example.com` : `filler:${e}`);
    if (probe) probes.push(label);
    await log.update([{ label, value: randomBytes(32) }]);
    if (performance.now() - last > 15_000) {
      last = performance.now();
      process.stderr.write(`  ${size}: ${e} / ${entries} entries, ${((last - t0) / 1000).toFixed(0)} s\n`);
    }
  }
  return g;
}

async function runSize(size: number): Promise<Row> {
  const synthetic = size > REAL_MAX || isBulk(size);
  const store = new ArenaStore();
  let t = 1_800_000_000_000;
  const now = (): number => (t += 1000);
  const log = await DirectoryBuilder.create(store, keyHolder(synthetic), { now, maxBehind: 86_400_000 });
  const clientNow = (): number => t;
  const probes: Uint8Array[] = [];
  // Probes are spread evenly through the build (one every size/PROBES labels).
  const probeEvery = Math.max(1, Math.floor(size / PROBES));
  const start = performance.now();
  let done = 0;
  let lastReport = start;
  let bulk: number | undefined;
  if (isBulk(size)) {
    bulk = await bulkBuild(store, log, size, now, probes);
    done = size;
  }
  while (done < size) {
    const n = Math.min(BATCH, size - done);
    const changes = [];
    for (let i = 0; i < n; i++) {
      const idx = done + i;
      const probe = idx % probeEvery === 0 && probes.length < PROBES;
      const label = utf8(probe || !synthetic ? `user-${idx}@example.com` : `filler:${idx}`);
      if (probe) probes.push(label);
      changes.push({ label, value: randomBytes(32) });
    }
    await log.update(changes);
    done += n;
    if (performance.now() - lastReport > 15_000) {
      lastReport = performance.now();
      process.stderr.write(`  ${size}: ${done} labels, ${((lastReport - start) / 1000).toFixed(0)} s\n`);
    }
  }
  const buildS = (performance.now() - start) / 1000;
  if (synthetic && probes.length === 0) throw new Error('no probe labels');
  const entries = await log.treeSize();

  // Searches with proofs (builder side), cycling through the probes, a third of them for a label
  // with no versions (absence proofs).
  const queries = Array.from({ length: SEARCHES }, (_, i) => (i % 3 === 2 ? utf8(`absent-${i}@example.com`) : probes[i % probes.length]!));
  const firstSizes: number[] = [];
  const encoded: Uint8Array[] = [];
  const s0 = performance.now();
  const sc0 = process.cpuUsage();
  for (const label of queries) {
    const bytes = encodeSearchResponse(await log.search({ label }), 1);
    encoded.push(bytes);
    firstSizes.push(bytes.length);
  }
  const searchPerS = SEARCHES / ((performance.now() - s0) / 1000);
  const sc = process.cpuUsage(sc0);
  const searchCpuMs = (sc.user + sc.system) / 1000 / SEARCHES;
  const warmSizes: number[] = [];
  for (const label of queries.slice(0, 100)) warmSizes.push(encodeSearchResponse(await log.search({ label, last: entries }), 1).length);

  // Client verification of the first-contact answers (fresh client: verifies the signed head).
  const verify: number[] = [];
  const verifyCpu: number[] = [];
  for (let i = 0; i < queries.length; i++) {
    const client = new DirectoryClient(log.config, { now: clientNow });
    const v0 = performance.now();
    const vc0 = process.cpuUsage();
    try {
      client.verifySearch({ label: queries[i]! }, encoded[i]!);
    } catch (e) {
      // An absent label verifies as KT_NOT_FOUND (the absence proof checked); anything else is a bug.
      if ((e as { code?: string }).code !== 'KT_NOT_FOUND' || i % 3 !== 2) throw e;
    }
    verify.push((performance.now() - v0) * 1000);
    const vc = process.cpuUsage(vc0);
    verifyCpu.push(vc.user + vc.system);
  }

  // Update throughput on top of the built log (new labels, real VRF).
  const upd = async (batch: number): Promise<number> => {
    const batches = Math.max(1, Math.floor(UPDATES / batch));
    const u0 = performance.now();
    for (let b = 0; b < batches; b++) {
      await log.update(Array.from({ length: batch }, (_, i) => ({ label: utf8(`new-${batch}-${b}-${i}@example.com`), value: randomBytes(32) })));
    }
    return (batches * batch) / ((performance.now() - u0) / 1000);
  };
  const update1 = await upd(1);
  const update100 = await upd(100);
  return {
    size, synthetic, bulk, entries, prefixNodes: store.nodes, buildS, heapMiB: process.memoryUsage().rss / 2 ** 20,
    searchPerS, firstP50: pct(firstSizes, 50), firstMax: Math.max(...firstSizes), warmP50: pct(warmSizes, 50), warmMax: Math.max(...warmSizes),
    verifyP50: pct(verify, 50), verifyP99: pct(verify, 99), searchCpuMs, verifyCpuP50: pct(verifyCpu, 50), update1, update100,
  };
}

async function main(): Promise<void> {
  const m = machine();
  process.stdout.write(`directory bench: ${m.cores} × ${m.cpu}, ${m.ramGiB} GiB, node ${m.node}, load ${m.loadavg.join(' ')}, ${new Date().toISOString()}\n`);
  process.stdout.write(`batch ${BATCH} labels per log entry, ${PROBES} probe labels, ${SEARCHES} searches (1/3 absent labels), ${UPDATES} labels per update measurement\n\n`);
  const rows: Row[] = [];
  for (const size of SIZES) {
    const r = await runSize(size);
    rows.push(r);
    process.stderr.write(`  done ${size}: ${JSON.stringify(r)}\n`);
  }
  process.stdout.write(`${table(
    ['labels', 'VRF of filler', 'log entries', 'prefix nodes', 'build (s)', 'RSS (MiB)', 'searches/s', 'search CPU ms', 'proof B p50/max (first contact)', 'proof B p50/max (head known)', 'verify µs p50/p99', 'verify CPU µs p50', 'update labels/s (batch 1)', 'update labels/s (batch 100)'],
    rows.map((r) => [
      fmt(r.size), r.synthetic ? (r.bulk === undefined ? 'random' : `random, ${fmt(r.bulk)} bulk-loaded`) : 'real', fmt(r.entries), fmt(r.prefixNodes), fmt(r.buildS, 1), fmt(r.heapMiB), fmt(r.searchPerS), fmt(r.searchCpuMs, 1),
      `${fmt(r.firstP50)} / ${fmt(r.firstMax)}`, `${fmt(r.warmP50)} / ${fmt(r.warmMax)}`, `${fmt(r.verifyP50)} / ${fmt(r.verifyP99)}`, fmt(r.verifyCpuP50), fmt(r.update1), fmt(r.update100),
    ]),
  )}\n`);
  process.stdout.write(`load after: ${machine().loadavg.join(' ')}\n`);
}

await main();
