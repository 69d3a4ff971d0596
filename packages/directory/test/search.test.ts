/**
 * search.json (§6.3, §7.1–§7.2, §12.3, §13.1): responses served by katie's live log, verified by
 * the client with the draft's algorithms, one test case per vector.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeSearchResponse, encodeSearchResponse, ibstFrontier, isDirectoryError, toHex, verifySearchResponse } from '../src/index.js';
import { hex, kt, logConfig, valueAt } from './helpers.js';

void describe('keytrans/search.json (§6.3, §7.2, §12.3, §13.1)', () => {
  for (const c of kt('search.json').cases) {
    void test(c.name, () => {
      const i = c.input;
      if (c.expect.error !== undefined) {
        // The log refused to answer (§7.2: the target version has expired); there is no response to verify.
        assert.equal(c.expect.response, undefined);
        assert.match(c.expect.error, /expired/);
        return;
      }
      const config = logConfig(i);
      const request = { label: hex(i.label), ...(i.version !== undefined ? { version: i.version } : {}) };
      const bytes = hex(c.expect.response);
      const res = decodeSearchResponse(bytes, config.mode, i.version !== undefined);
      assert.equal(toHex(encodeSearchResponse(res, config.mode)), c.expect.response, 'encoding round-trips');
      assert.deepEqual(res.search.timestamps, c.expect.timestamps);
      // A client that advertised `last` retained the timestamps of that view's frontier, but the
      // vector does not carry its retained subtree heads: check everything but the final root.
      const last: number | undefined = i.last;
      const retained = last === undefined ? undefined : { timestamps: new Map(ibstFrontier(BigInt(last)).map((p) => [Number(p), i.entry_timestamps[Number(p)]] as const)) };
      const r = verifySearchResponse(config, request, bytes, { ...(last !== undefined ? { last } : {}), ...(retained ? { retained } : {}) }, last !== undefined);
      assert.equal(r.treeSize, c.expect.tree_size);
      if (last === undefined) assert.ok(r.root);
      for (const [p, t] of r.timestamps) assert.equal(t, i.entry_timestamps[p], `timestamp of entry ${p}`);
      const want = valueAt(i, i.label, r.version);
      if (want === undefined) {
        assert.equal(r.found, false, 'a version the log never had is proven absent');
        return;
      }
      assert.equal(r.found, true);
      if (i.version === undefined) assert.equal(r.version, c.expect.version);
      assert.equal(toHex(r.value!), want);
    });
  }
});

void describe('search.json: any single-bit flip of a served response is refused', () => {
  const file = kt('search.json');
  for (const name of ['greatest-version-first-search', 'fixed-version-first', 'label-does-not-exist']) {
    const c = file.cases.find((x) => x.name === name)!;
    void test(name, () => {
      const i = c.input;
      const config = logConfig(i);
      const request = { label: hex(i.label), ...(i.version !== undefined ? { version: i.version } : {}) };
      const bytes = hex(c.expect.response);
      fc.assert(
        fc.property(fc.integer({ min: 0, max: bytes.length * 8 - 1 }), (bit) => {
          const bad = bytes.slice();
          bad[bit >> 3]! ^= 1 << (bit & 7);
          assert.throws(() => verifySearchResponse(config, request, bad), (e: unknown) => isDirectoryError(e), `bit ${bit} accepted`);
        }),
        { numRuns: 60 },
      );
    });
  }
});
