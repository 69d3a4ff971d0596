/* eslint-disable @typescript-eslint/no-explicit-any -- vector files are untyped JSON data, checked field by field by the assertions */
/**
 * monitor.json (§8.2, §8.3, §12.3.4–§12.3.6, §13.2–§13.4): contact monitoring, owner
 * initialization and owner monitoring responses from katie's live log, verified by the client,
 * one test case per vector.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ProofReader,
  answerSize,
  contactMonitor,
  decodeMonitorResponse,
  decodeOwnerInitResponse,
  encodeMonitorResponse,
  encodeOwnerInitResponse,
  finishCombinedProof,
  ibstFrontier,
  ownerInit,
  ownerMonitor,
  searchBinaryLadder,
  toHex,
  updateView,
  vrfVerify,
  type LadderKey,
} from '../src/index.js';
import { hex, kt, logConfig } from './helpers.js';

void describe('keytrans/monitor.json (§8.2, §8.3, §13.2–§13.4)', () => {
  for (const c of kt('monitor.json').cases) {
    void test(`${c.input.operation}: ${c.name}`, () => {
      const i = c.input;
      const config = logConfig(i);
      const label = hex(i.label);
      const known = new Map<number, LadderKey>(
        (i.known_versions as any[]).map((k) => [k.version, { vrfOutput: hex(k.vrf_output), ...(k.commitment ? { commitment: hex(k.commitment) } : {}) }]),
      );
      const bytes = hex(c.expect.response);
      const last: number | undefined = i.last;
      const retained = last === undefined ? undefined : { timestamps: new Map(ibstFrontier(BigInt(last)).map((p) => [Number(p), i.entry_timestamps[Number(p)]] as const)) };
      const isInit = i.operation === 'owner-init';
      const res = isInit ? decodeOwnerInitResponse(bytes, config.mode) : decodeMonitorResponse(bytes, config.mode);
      assert.equal(toHex(isInit ? encodeOwnerInitResponse(res as any, config.mode) : encodeMonitorResponse(res, config.mode)), c.expect.response);
      const size = answerSize(res.fullTreeHead, last);
      assert.equal(size, c.expect.tree_size);
      const reader = new ProofReader(res.proof, retained);
      for (const p of updateView(BigInt(size), last === undefined ? undefined : BigInt(last))) reader.timestamp(Number(p));
      let keys = (v: number): LadderKey => known.get(v) ?? assert.fail(`no key for version ${v}`);
      if (isInit) {
        const init = res as ReturnType<typeof decodeOwnerInitResponse>;
        assert.deepEqual(init.greatestVersions, c.expect.greatest_versions);
        // binary_ladder: one step per version looked up, ascending, with a commitment for each version that exists.
        const versions = [...new Set(init.greatestVersions.flatMap((g) => searchBinaryLadder(g, g)))].sort((a, b) => a - b);
        const steps = new Map<number, LadderKey>();
        init.binaryLadder.forEach((s, k) => {
          const v = versions[k]!;
          steps.set(v, { vrfOutput: vrfVerify(config.vrfPublicKey, label, v, s.proof), ...(s.commitment ? { commitment: s.commitment } : {}) });
        });
        keys = (v) => steps.get(v) ?? assert.fail(`no ladder step for version ${v}`);
        assert.deepEqual(ownerInit(size, config.maximumLifetime, i.start, init.greatestVersions, keys, reader), [3]);
      } else {
        const map = contactMonitor(size, config.reasonableMonitoringWindow, i.entries, keys, reader);
        for (const p of map) assert.ok(p.position >= i.entries.find((e: any) => e.version === p.version).position, 'monitoring moves up the tree');
        if (i.operation === 'owner-monitor') {
          // The owner's own state: version v of the label went into log entry v.
          ownerMonitor(size, config.reasonableMonitoringWindow, i.start, (p) => Math.min(p, i.greatest_version), keys, reader);
        }
      }
      const root = finishCombinedProof(config, size, res.fullTreeHead, reader, {}, last !== undefined);
      if (last === undefined) assert.ok(root);
    });
  }
});
