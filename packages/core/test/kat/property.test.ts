/**
 * Property tests (fast-check) of HPKE base mode through HpkeSuite, for every KEM × AEAD:
 * seal/open round trip; any single-bit flip of enc or ct makes open return null (never throw);
 * plus two regression properties (info buffers reused in place; P-256 secret-key sampling).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { platform } from '#platform';
import { HpkeSuite } from '../../src/hpke/hpke.js';
import { KEMS, type Kem, type KemPublicKey, type KemSecretKey } from '../../src/hpke/kem.js';
import type { AeadAlg } from '../../src/platform/types.js';
import { hex, toHex } from './helpers.js';

const KEM_LIST: readonly Kem[] = [KEMS.x25519, KEMS.p256, KEMS.xwing];
const AEADS: readonly AeadAlg[] = ['aes-128-gcm', 'aes-256-gcm', 'chacha20-poly1305'];
const bytes = (max: number) => fc.uint8Array({ minLength: 0, maxLength: max });
/** X-Wing decapsulation is ~100x slower than the DH KEMs: fewer runs keep the file fast. */
const runs = (kem: Kem, n: number) => ({ numRuns: kem === KEMS.xwing ? Math.ceil(n / 3) : n });

async function keyPair(kem: Kem): Promise<{ pk: KemPublicKey; sk: KemSecretKey }> {
  const sk = await kem.importSecret(kem.generateSecret());
  return { sk, pk: await kem.importPublic(sk.publicKey) };
}

/** A bit index in [0, bits): the ends always, plus uniformly random ones. */
const bitIndex = (bits: number) => fc.oneof(fc.constantFrom(0, 7, bits - 1), fc.integer({ min: 0, max: bits - 1 }));

function flip(b: Uint8Array, bit: number): Uint8Array {
  const out = b.slice();
  out[bit >>> 3]! ^= 1 << (bit & 7);
  return out;
}

for (const kem of KEM_LIST) {
  void describe(`HPKE base mode, KEM ${kem.name}`, () => {
    for (const alg of AEADS) {
      const suite = new HpkeSuite(kem, alg);

      void test(`${alg}: open(seal(pt)) = pt for any info, aad, pt (0–300 B)`, async () => {
        const { pk, sk } = await keyPair(kem);
        await fc.assert(fc.asyncProperty(bytes(300), bytes(300), bytes(300), async (info, aad, pt) => {
          const { enc, ct } = await suite.seal(pk, info, aad, pt);
          assert.equal(enc.length, kem.encLength);
          assert.equal(ct.length, pt.length + 16);
          const out = await suite.open(sk, enc, info, aad, ct);
          assert.ok(out);
          assert.equal(toHex(out), toHex(pt));
        }), runs(kem, 60));
      });

      void test(`${alg}: a single-bit flip anywhere in enc makes open return null`, async () => {
        const { pk, sk } = await keyPair(kem);
        const info = hex('01'), aad = hex('02');
        const { enc, ct } = await suite.seal(pk, info, aad, hex('48656c6c6f'));
        await fc.assert(fc.asyncProperty(bitIndex(enc.length * 8), async (bit) => {
          assert.equal(await suite.open(sk, flip(enc, bit), info, aad, ct), null, `bit ${bit}`);
        }), runs(kem, 60));
      });

      void test(`${alg}: a single-bit flip anywhere in ct makes open return null`, async () => {
        const { pk, sk } = await keyPair(kem);
        await fc.assert(fc.asyncProperty(bytes(64), bytes(64), bytes(300), fc.nat(), async (info, aad, pt, r) => {
          const { enc, ct } = await suite.seal(pk, info, aad, pt);
          const bit = r % (ct.length * 8);
          assert.equal(await suite.open(sk, enc, info, aad, flip(ct, bit)), null, `bit ${bit} of ${ct.length * 8}`);
        }), runs(kem, 60));
      });
    }

    if (kem !== KEMS.xwing) {
      void test(`every single-bit flip of enc (${kem.encLength * 8} bits, exhaustive) makes open return null`, async () => {
        const suite = new HpkeSuite(kem, 'aes-128-gcm');
        const { pk, sk } = await keyPair(kem);
        const { enc, ct } = await suite.seal(pk, hex(''), hex(''), hex('00'));
        for (let bit = 0; bit < enc.length * 8; bit++) {
          assert.equal(await suite.open(sk, flip(enc, bit), hex(''), hex(''), ct), null, `bit ${bit}`);
        }
      });
    }
  });
}

void describe('regressions', () => {
  void test('an info buffer mutated in place between operations is re-hashed (no stale info_hash)', async () => {
    // Callers may reuse one buffer for the context info of successive envelopes; the key schedule must
    // follow its current content, or a message sealed under info A would open under info B.
    const suite = new HpkeSuite(KEMS.x25519, 'aes-128-gcm');
    const { pk, sk } = await keyPair(KEMS.x25519);
    await fc.assert(fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.nat(), async (info, r) => {
      const original = info.slice();
      const { enc, ct } = await suite.seal(pk, info, hex(''), hex('2a'));
      info[r % info.length]! ^= 1 << (r & 7);
      assert.equal(await suite.open(sk, enc, info, hex(''), ct), null, 'opened under a different info');
      const sealedAfter = await suite.seal(pk, info, hex(''), hex('2b'));
      const fresh = new HpkeSuite(KEMS.x25519, 'aes-128-gcm');
      assert.ok(await fresh.open(sk, sealedAfter.enc, info.slice(), hex(''), sealedAfter.ct), 'sealed under a stale info');
      assert.ok(await suite.open(sk, enc, original, hex(''), ct));
    }), { numRuns: 50 });
  });

  void test('KEMS.p256.generateSecret never returns a scalar >= n (or 0), whatever the random bytes', async (t) => {
    const N = 'ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551';
    // Out of range candidates first; the sampler must skip all of them and return the last, valid one.
    const candidates = [
      'ffffffff01000000000000000000000000000000000000000000000000000000', // > n, first byte 0xff
      N, // = n
      'ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
      '0000000000000000000000000000000000000000000000000000000000000000',
      'ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632550', // n - 1: valid
    ];
    let calls = 0;
    // Mocked on the adapter object kem.ts uses (#platform); t.mock restores it when the test ends.
    t.mock.method(platform, 'randomBytes', (n: number) => {
      assert.equal(n, 32);
      return hex(candidates[Math.min(calls++, candidates.length - 1)]!);
    });
    const sk = KEMS.p256.generateSecret();
    t.mock.restoreAll();
    assert.equal(toHex(sk), candidates[4]);
    assert.equal(calls, 5);
    await KEMS.p256.importSecret(sk); // in range: imports
  });
});
