/* eslint-disable @typescript-eslint/no-explicit-any -- vector files are untyped JSON data, checked field by field by the assertions */
/**
 * Cipher suite 1, KT_128_SHA256_P256: RFC 9381 ECVRF-P256-SHA256 (TAI B.1 and SSWU B.2,
 * rfc9381-vrf/ecvrf-p256-sha256.json), the KEYTRANS VRF over it (p256-suite-branch/vrf-p256.json)
 * and its ECDSA P-256 tree heads (p256-suite-branch/tree-head-p256.json). One test case each.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { p256 } from '@noble/curves/nist.js';
import {
  KT_128_SHA256_P256,
  decodeConfiguration,
  ecvrfP256ProofToHash,
  ecvrfP256Prove,
  ecvrfP256PublicKey,
  ecvrfP256Verify,
  encodeAuditorTreeHead,
  encodeAuditorTreeHeadTbs,
  encodeConfiguration,
  encodeFullTreeHead,
  encodeTreeHead,
  encodeTreeHeadTbs,
  encodeVrfInput,
  signTreeHead,
  verifyTreeHead,
  vrfP256Evaluate,
  vrfP256Verify,
  type Configuration,
  type EcvrfP256Suite,
} from '../src/index.js';
import { hex, readVector, throwsCode, toHex } from './helpers.js';

const rfc = readVector<any>('rfc9381-vrf/ecvrf-p256-sha256.json');

void describe('rfc9381-vrf/ecvrf-p256-sha256.json (RFC 9381 B.1, B.2)', () => {
  for (const [suite, s] of Object.entries(rfc.suites) as [EcvrfP256Suite, any][]) {
    for (const e of s.examples) {
      void test(`${suite} example ${e.example}`, () => {
        assert.equal(toHex(ecvrfP256PublicKey(hex(e.SK))), e.PK);
        const pi = ecvrfP256Prove(suite, hex(e.SK), hex(e.alpha));
        assert.equal(toHex(pi), e.pi);
        assert.equal(toHex(ecvrfP256Verify(suite, hex(e.PK), hex(e.alpha), pi)), e.beta);
        assert.equal(toHex(ecvrfP256ProofToHash(suite, pi)), e.beta);
        // Another alpha, another suite, a flipped bit in c or s, s ≥ q: refused.
        throwsCode(() => ecvrfP256Verify(suite, hex(e.PK), new Uint8Array([1, 2, 3]), pi), 'KT_BAD_VRF_PROOF');
        throwsCode(() => ecvrfP256Verify(suite === 'ECVRF-P256-SHA256-TAI' ? 'ECVRF-P256-SHA256-SSWU' : 'ECVRF-P256-SHA256-TAI', hex(e.PK), hex(e.alpha), pi), 'KT_BAD_VRF_PROOF');
        for (const at of [1, 40, 60, 80]) {
          const bad = pi.slice();
          bad[at]! ^= 0x01;
          throwsCode(() => ecvrfP256Verify(suite, hex(e.PK), hex(e.alpha), bad), 'KT_BAD_VRF_PROOF');
        }
        const big = pi.slice();
        big.fill(0xff, 49);
        throwsCode(() => ecvrfP256Verify(suite, hex(e.PK), hex(e.alpha), big), 'KT_BAD_VRF_PROOF');
      });
    }
  }
  void test('malformed keys and proofs are refused', () => {
    const e = rfc.suites['ECVRF-P256-SHA256-TAI'].examples[0];
    const pi = hex(e.pi);
    throwsCode(() => ecvrfP256Verify('ECVRF-P256-SHA256-TAI', new Uint8Array(33), hex(e.alpha), pi), 'KT_BAD_VRF_PROOF');
    throwsCode(() => ecvrfP256Verify('ECVRF-P256-SHA256-TAI', hex(e.PK), hex(e.alpha), pi.slice(0, 80)), 'KT_BAD_VRF_PROOF');
    throwsCode(() => ecvrfP256PublicKey(new Uint8Array(32)), 'KT_INVALID_ARGUMENT');
  });
});

void describe('keytrans/p256-suite-branch/vrf-p256.json (§11.7, suite 1)', () => {
  for (const c of readVector<any>('keytrans/p256-suite-branch/vrf-p256.json').cases) {
    void test(c.name, () => {
      const i = c.input;
      const label = hex(i.label);
      if (c.expect.error !== undefined) {
        throwsCode(() => vrfP256Verify(hex(i.public_key), label, i.version, hex(i.proof)), 'KT_BAD_VRF_PROOF');
        return;
      }
      assert.equal(toHex(encodeVrfInput(label, i.version)), c.expect.vrf_input);
      assert.equal(toHex(ecvrfP256PublicKey(hex(i.private_key))), i.public_key);
      const { output, proof } = vrfP256Evaluate(hex(i.private_key), label, i.version);
      assert.equal(toHex(proof), c.expect.proof);
      assert.equal(toHex(output), c.expect.output);
      assert.equal(toHex(vrfP256Verify(hex(i.public_key), label, i.version, hex(c.expect.proof))), c.expect.output);
    });
  }
});

function p256Config(i: any): Configuration {
  return {
    cipherSuite: KT_128_SHA256_P256,
    mode: i.mode,
    signaturePublicKey: hex(i.signature_public_key),
    vrfPublicKey: hex(i.vrf_public_key),
    ...(i.leaf_public_key ? { leafPublicKey: hex(i.leaf_public_key) } : {}),
    ...(i.mode === 3 ? { auditor: { maxAuditorLag: i.max_auditor_lag, auditorStartPos: i.auditor_start_pos, auditorPublicKey: hex(i.auditor_public_key) } } : {}),
    maxAhead: i.max_ahead,
    maxBehind: i.max_behind,
    reasonableMonitoringWindow: i.reasonable_monitoring_window,
  };
}

void describe('keytrans/p256-suite-branch/tree-head-p256.json (§11.2–§11.4, suite 1)', () => {
  for (const c of readVector<any>('keytrans/p256-suite-branch/tree-head-p256.json').cases) {
    void test(c.name, () => {
      const i = c.input;
      const config = p256Config(i);
      const root = hex(i.root);
      assert.equal(toHex(encodeConfiguration(config)), c.expect.configuration);
      assert.deepEqual(decodeConfiguration(hex(c.expect.configuration)), config);
      assert.equal(toHex(encodeTreeHeadTbs(config, i.tree_size, root)), c.expect.tree_head_tbs);
      const head = { treeSize: i.tree_size, signature: hex(c.expect.signature) };
      assert.equal(toHex(encodeTreeHead(head)), c.expect.tree_head);
      verifyTreeHead(config, head, root);
      assert.equal(toHex(encodeFullTreeHead({ type: 'same' }, config.mode)), c.expect.full_tree_head_same);
      if (config.mode === 3) {
        const ath = hex(c.expect.auditor_tree_head);
        const auditor = { timestamp: i.auditor_timestamp, treeSize: i.tree_size, signature: ath.slice(18) };
        assert.equal(toHex(encodeAuditorTreeHead(auditor)), c.expect.auditor_tree_head);
        const atbs = encodeAuditorTreeHeadTbs(config, i.auditor_timestamp, i.tree_size, root);
        assert.equal(toHex(atbs), c.expect.auditor_tree_head_tbs);
        assert.ok(p256.verify(auditor.signature, atbs, hex(i.auditor_public_key), { lowS: false, format: 'compact' }), 'auditor signature verifies');
        assert.equal(toHex(encodeFullTreeHead({ type: 'updated', treeHead: head, auditorTreeHead: auditor }, 3)), c.expect.full_tree_head_updated);
      } else {
        assert.equal(toHex(encodeFullTreeHead({ type: 'updated', treeHead: head }, config.mode)), c.expect.full_tree_head_updated);
      }
      throwsCode(() => verifyTreeHead(config, { ...head, treeSize: head.treeSize + 1 }, root), 'KT_BAD_SIGNATURE');
      throwsCode(() => verifyTreeHead({ ...config, cipherSuite: 2 }, head, root), 'KT_BAD_SIGNATURE');
    });
  }
  void test('a suite-1 log signs heads that verify (ECDSA P-256, low s)', () => {
    const sk = new Uint8Array(32).fill(3);
    const config = p256Config({ mode: 1, signature_public_key: toHex(p256.getPublicKey(sk, false)), vrf_public_key: toHex(ecvrfP256PublicKey(sk)), max_ahead: 1, max_behind: 1, reasonable_monitoring_window: 1 });
    const head = signTreeHead(config, sk, 5, new Uint8Array(32).fill(9));
    verifyTreeHead(config, head, new Uint8Array(32).fill(9));
    throwsCode(() => verifyTreeHead(config, head, new Uint8Array(32)), 'KT_BAD_SIGNATURE');
  });
});
