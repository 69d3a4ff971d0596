/* eslint-disable @typescript-eslint/no-explicit-any -- vector files are untyped JSON data, checked field by field by the assertions */
/**
 * The draft's integer algorithms, one test case per vector: ibst.json (§4.1, App. A),
 * binary-ladder.json (§5, App. B), ladder-interpretation.json (§6.2), update-view.json (§4.2),
 * distinguished.json (§6.1).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  baseBinaryLadder,
  ibstFrontier,
  ibstLeft,
  ibstRight,
  ibstRoot,
  interpretSearchLadder,
  isDirectoryError,
  monitoringBinaryLadder,
  previousRightmostDistinguished,
  rightmostDistinguished,
  searchBinaryLadder,
  updateView,
} from '../src/index.js';
import { VECTORS, kt } from './helpers.js';

/** ibst.json holds uint64 values beyond 2^53: read every integer as a bigint. */
function bigJson(name: string): any {
  const text = readFileSync(new URL(`keytrans/${name}`, VECTORS), 'utf8').replace(/([:[,]\s*)(\d+)(?=\s*[,\]}])/g, '$1"$2"');
  return JSON.parse(text);
}
const refused = (fn: () => unknown): string => {
  try {
    return String(fn());
  } catch (e) {
    assert.ok(isDirectoryError(e, 'KT_INVALID_ARGUMENT'), String(e));
    return 'refused';
  }
};

void describe('keytrans/ibst.json (§4.1, Appendix A)', () => {
  for (const c of bigJson('ibst.json').cases) {
    void test(c.name, () => {
      const size = BigInt(c.input.size);
      assert.equal(ibstRoot(size), BigInt(c.expect.root));
      assert.deepEqual(ibstFrontier(size), (c.expect.frontier as string[]).map(BigInt));
      for (const n of c.expect.nodes) {
        const x = BigInt(n.index);
        assert.equal(refused(() => ibstLeft(x)), n.left === null ? 'refused' : String(n.left), `left(${x})`);
        assert.equal(refused(() => ibstRight(x, size)), n.right === null ? 'refused' : String(n.right), `right(${x})`);
      }
    });
  }
});

void describe('keytrans/binary-ladder.json (§5, Appendix B)', () => {
  for (const c of kt('binary-ladder.json').cases) {
    void test(c.name, () => {
      const i = c.input;
      const got =
        i.kind === 'base'
          ? baseBinaryLadder(i.greatest)
          : i.kind === 'search'
            ? searchBinaryLadder(i.target, i.greatest, i.left_inclusion, i.right_non_inclusion)
            : monitoringBinaryLadder(i.target, i.left_inclusion);
      assert.deepEqual(got, c.expect.versions);
    });
  }
  void test('the greatest version 2^32-1 cannot be proven (a rung beyond uint32 is refused)', () => {
    assert.throws(() => baseBinaryLadder(0xffffffff), (e: unknown) => isDirectoryError(e, 'KT_INVALID_ARGUMENT'));
    assert.equal(Math.max(...baseBinaryLadder(0xfffffffe)), 0xffffffff);
  });
});

void describe('keytrans/ladder-interpretation.json (§6.2)', () => {
  for (const c of kt('ladder-interpretation.json').cases) {
    void test(c.name, () => {
      const i = c.input;
      assert.deepEqual(searchBinaryLadder(i.target, i.greatest), i.ladder, 'the ladder an honest log answers');
      assert.equal(interpretSearchLadder(i.ladder, i.results, i.target), c.expect.verdict);
    });
  }
});

void describe('keytrans/update-view.json (§4.2)', () => {
  for (const c of kt('update-view.json').cases) {
    void test(c.name, () => {
      const size = BigInt(c.input.size);
      const adv = c.input.advertised === undefined ? undefined : BigInt(c.input.advertised);
      const got = updateView(size, adv).map(Number);
      assert.deepEqual(got, c.expect.entries);
      if (adv === undefined) assert.deepEqual(ibstFrontier(size).map(Number), c.expect.frontier);
      else assert.equal(got.length === 0 && adv < size, c.expect.right_edge_unchecked);
    });
  }
});

void describe('keytrans/distinguished.json (§6.1)', () => {
  for (const c of kt('distinguished.json').cases) {
    void test(c.name, () => {
      const { size, window, timestamps } = c.input;
      const run = (fn: typeof rightmostDistinguished) => {
        const asked: number[] = [];
        const value = fn(size, window, (p) => {
          if (!asked.includes(p)) asked.push(p);
          return (timestamps as number[])[p]!;
        });
        return { value, asked };
      };
      const r = run(rightmostDistinguished);
      const p = run(previousRightmostDistinguished);
      assert.equal(r.value, c.expect.rightmost);
      assert.equal(p.value, c.expect.previous_rightmost);
      assert.deepEqual(r.asked, c.expect.requested_rightmost);
      assert.deepEqual(p.asked, c.expect.requested_previous);
      assert.deepEqual([...new Set([...r.asked, ...p.asked])].sort((a, b) => a - b), c.expect.requested);
    });
  }
});
