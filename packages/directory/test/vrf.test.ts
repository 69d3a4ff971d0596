/**
 * RFC 9381 ECVRF-EDWARDS25519-SHA512 (TAI and ELL2), Appendix B.3 / B.4, one test per
 * example; the KEYTRANS VRF wrapper (vrf.json, §11.7); negative cases.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ecvrfProofToHash, ecvrfProve, ecvrfPublicKey, ecvrfVerify, encodeVrfInput, vrfEvaluate, vrfVerify, type EcvrfSuite } from '../src/index.js';
import { hex, kt, readVector, throwsCode, toHex } from './helpers.js';

interface RfcExample {
  example: number;
  SK: string;
  PK: string;
  alpha: string;
  H: string;
  pi: string;
  beta: string;
}
const rfc = readVector<{ suites: Record<EcvrfSuite, { examples: RfcExample[] }> }>('rfc9381-vrf/ecvrf-edwards25519-sha512.json');

for (const [suite, { examples }] of Object.entries(rfc.suites) as [EcvrfSuite, { examples: RfcExample[] }][]) {
  void describe(`RFC 9381 ${suite}`, () => {
    assert.equal(examples.length, 3);
    for (const ex of examples) {
      void test(`Example ${ex.example}: PK, pi and beta reproduced; verify accepts`, () => {
        const sk = hex(ex.SK);
        const alpha = hex(ex.alpha);
        assert.equal(toHex(ecvrfPublicKey(sk)), ex.PK);
        const pi = ecvrfProve(suite, sk, alpha);
        assert.equal(toHex(pi), ex.pi);
        assert.equal(toHex(ecvrfProofToHash(suite, pi)), ex.beta);
        assert.equal(toHex(ecvrfVerify(suite, hex(ex.PK), alpha, hex(ex.pi))), ex.beta);
      });
      void test(`Example ${ex.example}: every single-bit flip of pi is rejected`, () => {
        const pi = hex(ex.pi);
        for (let bit = 0; bit < pi.length * 8; bit += 7) {
          const bad = pi.slice();
          bad[bit >> 3]! ^= 1 << (bit & 7);
          throwsCode(() => ecvrfVerify(suite, hex(ex.PK), hex(ex.alpha), bad), 'KT_BAD_VRF_PROOF');
        }
      });
    }
  });
}

void describe('ECVRF negative cases', () => {
  const suite: EcvrfSuite = 'ECVRF-EDWARDS25519-SHA512-TAI';
  const ex = rfc.suites[suite].examples[1]!;
  const other = rfc.suites[suite].examples[2]!;
  void test('wrong public key → KT_BAD_VRF_PROOF', () => {
    throwsCode(() => ecvrfVerify(suite, hex(other.PK), hex(ex.alpha), hex(ex.pi)), 'KT_BAD_VRF_PROOF');
  });
  void test('wrong alpha → KT_BAD_VRF_PROOF', () => {
    throwsCode(() => ecvrfVerify(suite, hex(ex.PK), hex(other.alpha), hex(ex.pi)), 'KT_BAD_VRF_PROOF');
  });
  void test('TAI proof checked as ELL2 → KT_BAD_VRF_PROOF', () => {
    throwsCode(() => ecvrfVerify('ECVRF-EDWARDS25519-SHA512-ELL2', hex(ex.PK), hex(ex.alpha), hex(ex.pi)), 'KT_BAD_VRF_PROOF');
  });
  void test('non-canonical scalar s + q → KT_BAD_VRF_PROOF', () => {
    const pi = hex(ex.pi);
    const q = 2n ** 252n + 27742317777372353535851937790883648493n;
    let s = 0n;
    for (let i = 79; i >= 48; i--) s = (s << 8n) | BigInt(pi[i]!);
    s += q;
    for (let i = 48; i < 80; i++) {
      pi[i] = Number(s & 0xffn);
      s >>= 8n;
    }
    throwsCode(() => ecvrfVerify(suite, hex(ex.PK), hex(ex.alpha), pi), 'KT_BAD_VRF_PROOF');
  });
  void test('non-canonical Gamma encoding (y ≥ p) → KT_BAD_VRF_PROOF', () => {
    const pi = hex(ex.pi);
    pi.set(hex('edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f'), 0); // y = p
    throwsCode(() => ecvrfVerify(suite, hex(ex.PK), hex(ex.alpha), pi), 'KT_BAD_VRF_PROOF');
  });
  void test('low-order public key (identity) → KT_BAD_VRF_PROOF', () => {
    const identity = hex('0100000000000000000000000000000000000000000000000000000000000000');
    throwsCode(() => ecvrfVerify(suite, identity, hex(ex.alpha), hex(ex.pi)), 'KT_BAD_VRF_PROOF');
  });
  void test('non-canonical public key → KT_BAD_VRF_PROOF', () => {
    throwsCode(() => ecvrfVerify(suite, hex('edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f'), hex(ex.alpha), hex(ex.pi)), 'KT_BAD_VRF_PROOF');
  });
  void test('truncated proof → KT_BAD_VRF_PROOF', () => {
    throwsCode(() => ecvrfVerify(suite, hex(ex.PK), hex(ex.alpha), hex(ex.pi).slice(0, 79)), 'KT_BAD_VRF_PROOF');
  });
});

void describe('keytrans/vrf.json (§11.7, KT_128_SHA256_Ed25519)', () => {
  const file = kt('vrf.json');
  assert.equal(file.cipher_suite, 2);
  for (const c of file.cases) {
    void test(c.name, () => {
      const label = hex(c.input.label);
      if (c.expect.error === true) {
        throwsCode(() => vrfVerify(hex(c.input.public_key), label, c.input.version, hex(c.input.proof)), 'KT_BAD_VRF_PROOF');
        return;
      }
      assert.equal(toHex(encodeVrfInput(label, c.input.version)), c.expect.vrf_input);
      const { output, proof } = vrfEvaluate(hex(c.input.private_key), label, c.input.version);
      assert.equal(toHex(proof), c.expect.proof);
      assert.equal(toHex(output), c.expect.output);
      assert.equal(toHex(vrfVerify(hex(c.input.public_key), label, c.input.version, hex(c.expect.proof))), c.expect.output);
    });
  }
});
