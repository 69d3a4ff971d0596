/* eslint-disable @typescript-eslint/no-explicit-any -- vector files are untyped JSON data, checked field by field by the assertions */
/**
 * from-kt.json, the kinds beyond the trees (trees.test.ts runs `log-tree` and `prefix-tree`):
 * `combined-search` (§6.3, §7.2, §8.2 read from a §12.3 CombinedTreeProof), `owner-update` (§9.1),
 * `prefix-mutation` and `auditor-update` (§15.2). Proofs built by the Rust implementation; `accept`
 * cases must verify, `reject` cases must be refused. One test case each.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DirectoryError,
  ProofReader,
  contactMonitor,
  fixedVersionSearch,
  greatestVersionSearch,
  isDirectoryError,
  readCombinedTreeProofBytes,
  updateProof,
  updateView,
  type LadderKey,
} from '../src/index.js';
import { hex, kt } from './helpers.js';

/** No window is given: these logs are milliseconds old, so a week's window distinguishes only the root. */
const WINDOW = 604_800_000;

const cases = kt('from-kt.json').cases as any[];

function keysOf(list: any[]): (v: number) => LadderKey {
  const m = new Map<number, LadderKey>(list.map((k) => [k.version, { vrfOutput: hex(k.vrf_output), ...(k.commitment ? { commitment: hex(k.commitment) } : {}) }]));
  return (v) => {
    const k = m.get(v);
    if (!k) throw new DirectoryError('KT_BAD_RESPONSE', `no search key for version ${v}`);
    return k;
  };
}

function verifyCombined(c: any): void {
  const proof = readCombinedTreeProofBytes(hex(c.proof));
  const reader = new ProofReader(proof);
  const size: number = c.size;
  for (const p of updateView(BigInt(size))) reader.timestamp(Number(p));
  if (c.kind === 'owner-update') {
    const owner = { starting: c.owner.starting, versionAtStarting: c.owner.version_at_starting ?? -1, upcoming: c.owner.upcoming };
    updateProof({ reasonableMonitoringWindow: WINDOW } as never, size, c.position, c.new_versions, owner, keysOf(c.keys), reader);
  } else if (c.operation === 'greatest-version') {
    const o = greatestVersionSearch(size, WINDOW, c.greatest, keysOf(c.versions), reader);
    assert.equal(o.kind, 'found');
  } else if (c.operation === 'fixed-version') {
    const o = fixedVersionSearch(size, undefined, WINDOW, c.greatest, keysOf(c.versions), reader);
    assert.equal(o.kind, 'found');
  } else {
    contactMonitor(size, WINDOW, c.map, keysOf(c.versions), reader);
  }
  reader.readOwedRoots();
  reader.finish();
  proof.timestamps.forEach((t) => assert.ok(c.timestamps.includes(t)));
}

for (const kind of ['combined-search', 'owner-update']) {
  void describe(`keytrans/from-kt.json: ${kind}`, () => {
    for (const c of cases.filter((x) => x.kind === kind)) {
      void test(`${c.name} (${c.expect})`, () => {
        if (c.expect === 'accept') verifyCombined(c);
        else assert.throws(() => verifyCombined(c), (e: unknown) => isDirectoryError(e), 'must be refused with a DirectoryError');
      });
    }
  });
}
