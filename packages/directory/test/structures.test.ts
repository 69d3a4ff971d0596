/**
 * commitment.json (§11.6), tree-head.json (§11.2–§11.4), requests.json (§11.5, §13):
 * every case reproduced byte for byte, one test case per vector.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ed25519 } from '@noble/curves/ed25519.js';
import {
  commit,
  decodeConfiguration,
  encodeAuditorTreeHead,
  encodeAuditorTreeHeadTbs,
  encodeCommitmentValue,
  encodeConfiguration,
  encodeContactMonitorRequest,
  encodeFullTreeHead,
  encodeLabelValue,
  encodeOwnerInitRequest,
  encodeOwnerMonitorRequest,
  encodeSearchRequest,
  encodeTreeHead,
  encodeTreeHeadTbs,
  encodeUpdateInfo,
  encodeUpdateRequest,
  encodeUpdateTbs,
  verifyCommitment,
  verifyTreeHead,
} from '../src/index.js';
import { Writer } from '../src/bytes.js';
import { writeBinaryLadderStep } from '../src/structs.js';
import { readFileSync } from 'node:fs';
import { VECTORS, configOf, hex, kt, throwsCode, toHex } from './helpers.js';

void describe('keytrans/commitment.json (§11.6)', () => {
  const file = kt('commitment.json');
  for (const c of file.cases) {
    void test(c.name, () => {
      const label = hex(c.input.label);
      const update = { value: hex(c.input.update.value) };
      if (c.expect.error === true) {
        throwsCode(() => verifyCommitment(hex(c.input.commitment), hex(c.input.opening), label, c.input.version, update), 'KT_BAD_COMMITMENT');
        return;
      }
      assert.equal(toHex(encodeCommitmentValue(hex(c.input.opening), label, c.input.version, update)), c.expect.commitment_value);
      assert.equal(toHex(commit(hex(c.input.opening), label, c.input.version, update)), c.expect.commitment);
      verifyCommitment(hex(c.expect.commitment), hex(c.input.opening), label, c.input.version, update);
    });
  }
});

void describe('keytrans/tree-head.json (§11.2–§11.4)', () => {
  const file = kt('tree-head.json');
  for (const c of file.cases) {
    void test(c.name, () => {
      const config = configOf(c.input);
      const root = hex(c.input.root);
      assert.equal(toHex(encodeConfiguration(config)), c.expect.configuration);
      assert.deepEqual(decodeConfiguration(hex(c.expect.configuration)), config);
      assert.equal(toHex(encodeTreeHeadTbs(config, c.input.tree_size, root)), c.expect.tree_head_tbs);
      const head = { treeSize: c.input.tree_size, signature: hex(c.expect.signature) };
      assert.equal(toHex(encodeTreeHead(head)), c.expect.tree_head);
      verifyTreeHead(config, head, root);
      assert.equal(toHex(encodeFullTreeHead({ type: 'same' }, config.mode)), c.expect.full_tree_head_same);
      if (config.mode === 3) {
        const ath = hex(c.expect.auditor_tree_head);
        const sig = ath.slice(18);
        const auditor = { timestamp: c.input.auditor_timestamp, treeSize: c.input.tree_size, signature: sig };
        assert.equal(toHex(encodeAuditorTreeHead(auditor)), c.expect.auditor_tree_head);
        const atbs = encodeAuditorTreeHeadTbs(config, c.input.auditor_timestamp, c.input.tree_size, root);
        assert.equal(toHex(atbs), c.expect.auditor_tree_head_tbs);
        assert.ok(ed25519.verify(sig, atbs, hex(c.input.auditor_public_key)), 'auditor signature verifies');
        assert.equal(toHex(encodeFullTreeHead({ type: 'updated', treeHead: head, auditorTreeHead: auditor }, 3)), c.expect.full_tree_head_updated);
      } else {
        assert.equal(toHex(encodeFullTreeHead({ type: 'updated', treeHead: head }, config.mode)), c.expect.full_tree_head_updated);
      }
      // The same signature over another root or size must not verify.
      throwsCode(() => verifyTreeHead(config, { ...head, treeSize: head.treeSize + 1 }, root), 'KT_BAD_SIGNATURE');
    });
  }
});

void describe('keytrans/requests.json (§11.5, §13.1–§13.5)', () => {
  const file = kt('requests.json');
  const opt = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
  for (const c of file.cases) {
    void test(c.name, () => {
      const i = c.input;
      const label = i.label ? hex(i.label) : new Uint8Array(0);
      const last = opt(i.last);
      let got: Uint8Array;
      switch (i.kind) {
        case 'search-request':
          got = encodeSearchRequest({ label, ...(last !== undefined ? { last } : {}), ...(opt(i.version) !== undefined ? { version: i.version } : {}) });
          break;
        case 'binary-ladder-step':
          got = writeBinaryLadderStep(new Writer(), { proof: hex(i.proof), ...(i.commitment ? { commitment: hex(i.commitment) } : {}) }).finish();
          break;
        case 'monitor-map-entry': {
          // JSON.parse rounds integers above 2^53; read this one from the file text as a bigint.
          const raw = /"position":\s*(\d+)/.exec(readFileSync(new URL('keytrans/requests.json', VECTORS), 'utf8'))![1]!;
          got = new Writer().u64(BigInt(raw)).u32(i.version).finish();
          break;
        }
          break;
        case 'contact-monitor-request':
          got = encodeContactMonitorRequest({ label, entries: i.entries, ...(last !== undefined ? { last } : {}) });
          break;
        case 'owner-init-request':
          got = encodeOwnerInitRequest({ label, start: i.start, ...(last !== undefined ? { last } : {}) });
          break;
        case 'owner-monitor-request':
          got = encodeOwnerMonitorRequest({
            label,
            entries: i.entries,
            start: i.start,
            ...(last !== undefined ? { last } : {}),
            ...(opt(i.greatest_version) !== undefined ? { greatestVersion: i.greatest_version } : {}),
          });
          break;
        case 'label-value':
          got = encodeLabelValue(hex(i.value));
          break;
        case 'update-info':
          got = encodeUpdateInfo(hex(i.opening), i.mode, i.signature ? hex(i.signature) : undefined);
          break;
        case 'update-request':
          got = encodeUpdateRequest({
            label,
            values: (i.values as string[]).map(hex),
            ...(last !== undefined ? { last } : {}),
            ...(opt(i.greatest_version) !== undefined ? { greatestVersion: i.greatest_version } : {}),
          });
          break;
        case 'update-tbs':
          got = encodeUpdateTbs(decodeConfiguration(hex(i.configuration)), label, i.version, hex(i.value));
          break;
        default:
          throw new Error(`unknown kind ${i.kind}`);
      }
      assert.equal(toHex(got), c.expect.encoding);
    });
  }
});
