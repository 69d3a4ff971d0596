/**
 * The console's in-browser audit checks (src/lib/audit-verify.ts), run in
 * Node on a log built here with @keyward/tlog: a genuine event verifies; an
 * edited event, a proof for another position, a forged root or a checkpoint
 * signed by another key does not; events past the checkpoint are pending.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generateSignerKey, inclusionProof, leafHash, newSigner, rootFromLeaves, signCheckpoint } from '@keyward/tlog';
import { checkInclusion, verifyCheckpoint, type InclusionProof } from '../src/lib/audit-verify.js';
import { parseMetrics, sum } from '../src/lib/metrics.js';

const b64u = (b: Uint8Array) => Buffer.from(b).toString('base64url');
const ORIGIN = 'keyward.test/audit/console';
const events = Array.from({ length: 7 }, (_, i) => JSON.stringify({ index: i, op: i % 2 ? 'keys.read' : 'keys.create', principal: 'admin' }));
const leaves = events.map((e) => leafHash(new TextEncoder().encode(e)));
const keys = generateSignerKey(ORIGIN);
const note = signCheckpoint(newSigner(keys.signerKey), { origin: ORIGIN, size: 6, root: rootFromLeaves(leaves.slice(0, 6)) });
const proof = (i: number, size = 6): InclusionProof => ({ index: i, size, leaf_hash: b64u(leaves[i]!), hashes: inclusionProof(i, leaves.slice(0, size), size).map(b64u) });

void test('a signed checkpoint verifies with the log key, and not with another', () => {
  const cp = verifyCheckpoint(note, keys.verifierKey);
  assert.equal(cp.size, 6);
  assert.equal(cp.origin, ORIGIN);
  assert.throws(() => verifyCheckpoint(note, generateSignerKey(ORIGIN).verifierKey));
  assert.throws(() => verifyCheckpoint(note.replace('\n6\n', '\n5\n'), keys.verifierKey));
});

for (let i = 0; i < 6; i++) {
  void test(`event ${i}: genuine verifies, edited does not`, () => {
    const cp = verifyCheckpoint(note, keys.verifierKey);
    assert.deepEqual(checkInclusion(cp, i, events[i]!, proof(i)), { status: 'verified' });
    const edited = events[i]!.replace('"admin"', '"mallory"');
    assert.equal(checkInclusion(cp, i, edited, proof(i)).status, 'unverified');
    // Even with a proof whose leaf hash is the edited event's: the path no longer leads to the signed root.
    const forged = { ...proof(i), leaf_hash: b64u(leafHash(new TextEncoder().encode(edited))) };
    assert.equal(checkInclusion(cp, i, edited, forged).status, 'unverified');
  });
}

void test('wrong position, wrong size, malformed proofs and events past the checkpoint', () => {
  const cp = verifyCheckpoint(note, keys.verifierKey);
  assert.equal(checkInclusion(cp, 2, events[2]!, proof(3)).status, 'unverified');
  assert.equal(checkInclusion(cp, 2, events[2]!, proof(2, 5)).status, 'unverified');
  assert.equal(checkInclusion(cp, 2, events[2]!, { ...proof(2), hashes: ['not base64url!'] }).status, 'unverified');
  assert.equal(checkInclusion(cp, 2, events[2]!, { ...proof(2), hashes: proof(2).hashes.slice(1) }).status, 'unverified');
  assert.equal(checkInclusion(cp, 2, events[2]!, null).status, 'unverified');
  assert.equal(checkInclusion(cp, 6, events[6]!, null).status, 'pending');
});

void test('metrics: Prometheus text sums by name and label', () => {
  const m = parseMetrics([
    '# HELP keyward_http_requests_total x', '# TYPE keyward_http_requests_total counter',
    'keyward_http_requests_total{route="/v1/sys/health",method="GET",status="200"} 3',
    'keyward_http_requests_total{route="/v1/keys/:ns",method="GET",status="503"} 2',
    'keyward_sealed 0', 'garbage line',
  ].join('\n'));
  assert.equal(sum(m, 'keyward_http_requests_total'), 5);
  assert.equal(sum(m, 'keyward_http_requests_total', (l) => (l.status ?? '').startsWith('5')), 2);
  assert.equal(sum(m, 'keyward_sealed'), 0);
});
