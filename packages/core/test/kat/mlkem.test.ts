/**
 * Wycheproof ML-KEM-512/768/1024 (FIPS 203) against @noble/post-quantum/ml-kem.js, the implementation
 * behind X-Wing in kem.ts. Resolved from packages/core, i.e. the package's own dependency (0.7.1),
 * not the older copy at the repository root.
 *
 * - keygen_seed: KeyGen from the 64-byte d||z seed gives ek and the expanded dk.
 * - encaps: deterministic Encaps(ek, m) gives c and K; invalid encapsulation keys (wrong length,
 *   coefficients not reduced mod q: FIPS 203 §7.2 input check) must throw.
 * - test (decaps from seed): KeyGen(seed) gives ek, Decaps(c) gives K, including implicit rejection
 *   (random / bit-flipped ciphertexts are `valid` with the rejection key); wrong seed or ciphertext
 *   lengths must throw.
 * - semi_expanded_decaps: Decaps with the expanded dk; wrong lengths and a dk whose H(ek) or embedded
 *   ek is corrupted (FIPS 203 §7.3 input check) must throw.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ml_kem1024, ml_kem512, ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { assertBytes, caseName, countTests, flagsOf, hex, loadWycheproof, type WycheproofGroup, type WycheproofTest } from './helpers.js';

type MlKem = typeof ml_kem768;
const PARAMS: readonly [string, MlKem][] = [['512', ml_kem512], ['768', ml_kem768], ['1024', ml_kem1024]];

interface KeygenTest extends WycheproofTest { seed: string; ek: string; dk: string }
interface EncapsTest extends WycheproofTest { ek: string; m: string; c: string; K: string }
interface DecapsTest extends WycheproofTest { seed: string; ek?: string; c: string; K: string }
interface SemiExpandedTest extends WycheproofTest { dk: string; ek: string; c: string; K?: string }
type Group<T extends WycheproofTest> = WycheproofGroup<T> & { parameterSet: string };

/** Flags whose vectors must be refused; all other flags mark edge cases that must still succeed. */
const REFUSE_FLAGS = new Set(['ModulusOverflow', 'IncorrectCiphertextLength', 'IncorrectDecapsulationKeyLength', 'InvalidDecapsulationKey']);
const KNOWN_FLAGS = new Set([...REFUSE_FLAGS, 'Strcmp', 'MalleableCiphertext']);

function checkFlags(t: WycheproofTest): void {
  assert.deepEqual(flagsOf(t).filter((f) => !KNOWN_FLAGS.has(f)), [], 'flag without a policy');
  if (flagsOf(t).some((f) => REFUSE_FLAGS.has(f))) assert.equal(t.result, 'invalid', 'flag says refuse');
  assert.notEqual(t.result, 'acceptable', 'no acceptable ML-KEM vectors expected; add a policy');
}

function defineFile<T extends WycheproofTest>(file: string, param: string, run: (kem: MlKem, t: T) => void): void {
  const data = loadWycheproof<Group<T>>(file);
  const kem = PARAMS.find(([p]) => p === param)![1];
  void describe(file, () => {
    void test(`registers a test for each of the ${data.numberOfTests} vectors, all ML-KEM-${param}`, () => {
      assert.equal(countTests(data), data.numberOfTests);
      assert.ok(data.testGroups.every((g) => g.parameterSet === `ML-KEM-${param}`));
    });
    for (const g of data.testGroups) {
      for (const t of g.tests) {
        void test(caseName(t), () => {
          checkFlags(t);
          run(kem, t);
        });
      }
    }
  });
}

void test('@noble/post-quantum resolves to packages/core/node_modules (0.7.1), not the root copy', () => {
  const url = import.meta.resolve('@noble/post-quantum/ml-kem.js');
  assert.match(url, /\/packages\/core\/node_modules\/@noble\/post-quantum\/ml-kem\.js$/);
});

for (const [param] of PARAMS) {
  void describe(`ML-KEM-${param}`, () => {
    defineFile<KeygenTest>(`mlkem_${param}_keygen_seed_test.json`, param, (kem, t) => {
      assert.equal(t.result, 'valid');
      const { publicKey, secretKey } = kem.keygen(hex(t.seed));
      assertBytes(publicKey, t.ek, 'ek');
      assertBytes(secretKey, t.dk, 'dk');
    });

    defineFile<EncapsTest>(`mlkem_${param}_encaps_test.json`, param, (kem, t) => {
      if (t.result === 'valid') {
        const { cipherText, sharedSecret } = kem.encapsulate(hex(t.ek), hex(t.m));
        assertBytes(cipherText, t.c, 'c');
        assertBytes(sharedSecret, t.K, 'K');
      } else {
        assert.throws(() => kem.encapsulate(hex(t.ek), hex(t.m)), 'invalid encapsulation key accepted');
      }
    });

    defineFile<DecapsTest>(`mlkem_${param}_test.json`, param, (kem, t) => {
      if (t.result === 'valid') {
        const { publicKey, secretKey } = kem.keygen(hex(t.seed));
        if (t.ek) assertBytes(publicKey, t.ek, 'ek');
        assertBytes(kem.decapsulate(hex(t.c), secretKey), t.K, 'K');
      } else {
        // Either the seed has the wrong length (keygen must throw) or the ciphertext has (decapsulate must throw).
        assert.throws(() => {
          const { secretKey } = kem.keygen(hex(t.seed));
          kem.decapsulate(hex(t.c), secretKey);
        });
      }
    });

    defineFile<SemiExpandedTest>(`mlkem_${param}_semi_expanded_decaps_test.json`, param, (kem, t) => {
      if (t.result === 'valid') {
        assertBytes(kem.decapsulate(hex(t.c), hex(t.dk)), t.K!, 'K');
      } else {
        assert.throws(() => kem.decapsulate(hex(t.c), hex(t.dk)));
      }
    });
  });
}
