/**
 * shared/vectors/merkle/transparency-dev-testdata/: transparency-dev/merkle's
 * golden proof files (inclusion and consistency; accept and reject cases). Each
 * file is one test case checking `wantErr`.
 *
 * One documented deviation: `consistency/additional/sizes-are-equal-one-and-proof-is-empty.json`
 * has equal 12-byte "roots" and expects acceptance (upstream compares the
 * roots without checking their length). Our verifiers require 32-byte hashes
 * everywhere (SOURCES.md: "a verifier must also insist on 32-byte hashes"), so
 * we reject it with TLOG_INVALID_ARGUMENT, and the test asserts exactly that.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { verifyConsistency, verifyInclusion } from '../src/index.js';
import { b64, listJson, readVector, throwsTlog } from './helpers.js';

const DIR = 'merkle/transparency-dev-testdata/';

/** Files whose expected outcome we deliberately differ from, with the code we throw instead. */
const DEVIATIONS: Record<string, { code: 'TLOG_INVALID_ARGUMENT'; why: string }> = {
  'consistency/additional/sizes-are-equal-one-and-proof-is-empty.json': {
    code: 'TLOG_INVALID_ARGUMENT',
    why: 'roots are 12 bytes; hashes must be 32 bytes',
  },
};

interface InclusionFile { leafIdx: number; treeSize: number; root: string; leafHash: string; proof: string[] | null; desc: string; wantErr: boolean }
interface ConsistencyFile { size1: number; size2: number; root1: string; root2: string; proof: string[] | null; desc: string; wantErr: boolean }

const files = listJson(DIR);

void test('transparency-dev testdata: all 196 files are present', () => {
  assert.equal(files.filter((f) => f.startsWith('inclusion/')).length, 98);
  assert.equal(files.filter((f) => f.startsWith('consistency/')).length, 98);
});

for (const file of files) {
  const deviation = DEVIATIONS[file];
  if (file.startsWith('inclusion/')) {
    const c = readVector<InclusionFile>(DIR + file);
    const run = (): void => verifyInclusion(b64(c.leafHash), c.leafIdx, c.treeSize, (c.proof ?? []).map(b64), b64(c.root));
    void test(`transparency-dev inclusion ${file}: ${c.desc} → ${c.wantErr ? 'reject' : 'accept'}`, () => {
      if (c.wantErr) throwsTlog(run);
      else run();
    });
  } else {
    const c = readVector<ConsistencyFile>(DIR + file);
    const run = (): void => verifyConsistency(c.size1, c.size2, b64(c.root1), b64(c.root2), (c.proof ?? []).map(b64));
    if (deviation) {
      void test(`transparency-dev consistency ${file}: ${c.desc} → upstream accepts; we reject (${deviation.why})`, () => {
        assert.equal(c.wantErr, false, 'the deviation list is stale');
        throwsTlog(run, deviation.code);
      });
      continue;
    }
    void test(`transparency-dev consistency ${file}: ${c.desc} → ${c.wantErr ? 'reject' : 'accept'}`, () => {
      if (c.wantErr) throwsTlog(run);
      else run();
    });
  }
}
