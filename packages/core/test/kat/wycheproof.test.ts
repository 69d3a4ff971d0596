/**
 * Project Wycheproof vectors for the primitives Keyward calls, against BOTH
 * platform adapters (node.ts and web.ts are imported directly, so both are
 * always tested whatever `#platform` resolves to): AES-GCM, ChaCha20-Poly1305,
 * X25519, Ed25519 verify. HKDF-SHA256 runs through kdf.ts (see kat-suites.ts;
 * web-platform.test.ts runs the same HKDF cases with kdf.ts over web.ts).
 * ML-KEM is in mlkem.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { platform as nodePlatform } from '../../src/platform/node.js';
import type { AeadAlg, Platform } from '../../src/platform/types.js';
import { platform as webPlatform } from '../../src/platform/web.js';
import {
  assertBytes, caseName, countTests, flagsOf, hex, loadWycheproof, refused,
  type WycheproofGroup, type WycheproofTest,
} from './helpers.js';
import { defineHkdfWycheproof } from './kat-suites.js';

const PLATFORMS: readonly Platform[] = [nodePlatform, webPlatform];

// ---------------------------------------------------------------------------
// AEADs

interface AeadTest extends WycheproofTest { key: string; iv: string; aad: string; msg: string; ct: string; tag: string }
interface AeadGroup extends WycheproofGroup<AeadTest> { ivSize: number; keySize: number; tagSize: number }

/** Keyward's AEADs: 96-bit nonces, 128-bit tags; AES keys of 128 or 256 bits, ChaCha20 keys of 256 bits. */
function aesAlg(keySize: number): AeadAlg | null {
  return keySize === 128 ? 'aes-128-gcm' : keySize === 256 ? 'aes-256-gcm' : null;
}

function defineAeadFile(file: string, algFor: (g: AeadGroup) => AeadAlg | null): void {
  const data = loadWycheproof<AeadGroup>(file);
  void describe(file, () => {
    void test(`registers a test for each of the ${data.numberOfTests} vectors`, () => {
      assert.equal(countTests(data), data.numberOfTests);
    });
    for (const p of PLATFORMS) {
      void describe(`${p.name} adapter`, () => {
        for (const g of data.testGroups) {
          const alg = algFor(g);
          for (const t of g.tests) {
            const key = hex(t.key), iv = hex(t.iv), aad = hex(t.aad), msg = hex(t.msg);
            const sealed = hex(t.ct + t.tag);
            if (g.tagSize !== 128) {
              // Not present in the current files; kept so a new tag size cannot pass unnoticed.
              void test(caseName(t, `— ${g.tagSize}-bit tag: our AeadKey only produces/accepts 128-bit tags, so a truncated tag must not open`), async () => {
                const k = await p.aead(alg ?? 'aes-256-gcm', key);
                assert.ok(await refused(() => k.open(iv, hex(t.ct + t.tag), aad)));
              });
              continue;
            }
            if (alg === null) {
              // e.g. AES-192: AeadAlg has no such algorithm, and neither AES alg takes a 24-byte key.
              void test(caseName(t, `— ${g.keySize}-bit key: not a Keyward AEAD key size, aead() must reject it`), async () => {
                for (const a of ['aes-128-gcm', 'aes-256-gcm', 'chacha20-poly1305'] as const) {
                  await assert.rejects(async () => p.aead(a, key), `${a} accepted a ${g.keySize}-bit key`);
                }
              });
              continue;
            }
            if (g.ivSize !== 96) {
              // Keyward's AEAD nonces are always 96-bit (HPKE Nn = 12); both adapters refuse any other size.
              void test(caseName(t, `— ${g.ivSize}-bit IV must be refused`), async () => {
                const k = await p.aead(alg, key);
                await assert.rejects(async () => k.seal(iv, msg, aad), 'seal accepted the IV');
                assert.ok(await refused(() => k.open(iv, sealed, aad)), 'open accepted the IV');
              });
              continue;
            }
            void test(caseName(t), async () => {
              const k = await p.aead(alg, key);
              if (t.result === 'valid') {
                assertBytes(await k.seal(iv, msg, aad), t.ct + t.tag, 'seal');
                assertBytes(await k.open(iv, sealed, aad), t.msg, 'open');
              } else {
                // A bad tag or modified ciphertext: open returns null and does not throw (AeadKey contract).
                assert.equal(await k.open(iv, sealed, aad), null, 'open must return null');
              }
            });
          }
        }
      });
    }
  });
}

defineAeadFile('aes_gcm_test.json', (g) => aesAlg(g.keySize));
defineAeadFile('chacha20_poly1305_test.json', (g) => (g.keySize === 256 ? 'chacha20-poly1305' : null));

// ---------------------------------------------------------------------------
// X25519 through DhGroup.importPublic + importSecret + dh

interface XdhTest extends WycheproofTest { public: string; private: string; shared: string }
interface XdhGroup extends WycheproofGroup<XdhTest> { curve: string }

/**
 * What Keyward does for each Wycheproof X25519 flag. `compute`: RFC 7748 behaviour, the shared secret
 * must match. `reject`: Keyward refuses the result (importPublic or dh returns null), because the DH
 * output is all-zero (RFC 9180 §7.1.4 / RFC 7748 §6.1 check). Unknown flags fail the test.
 */
const X25519_FLAG_POLICY: Record<string, 'compute' | 'reject'> = {
  Normal: 'compute',
  Ktv: 'compute',
  EdgeCaseMultiplication: 'compute',
  EdgeCasePrivateKey: 'compute',
  EdgeCaseShared: 'compute',
  SpecialPublicKey: 'compute',
  Twist: 'compute', // RFC 7748 accepts twist points; the output is still a 32-byte value
  NonCanonicalPublic: 'compute', // RFC 7748 §5: u >= 2^255-19 is reduced (and bit 255 masked)
  SmallPublicKey: 'compute', // only ever with LowOrderPublic/ZeroSharedSecret below, which decide
  LowOrderPublic: 'reject', // every low-order point in the file yields the all-zero output
  ZeroSharedSecret: 'reject',
};

{
  const file = 'x25519_test.json';
  const data = loadWycheproof<XdhGroup>(file);
  void describe(file, () => {
    void test(`registers a test for each of the ${data.numberOfTests} vectors`, () => {
      assert.equal(countTests(data), data.numberOfTests);
      assert.ok(data.testGroups.every((g) => g.curve === 'curve25519'));
    });
    for (const p of PLATFORMS) {
      void describe(`${p.name} adapter`, () => {
        for (const g of data.testGroups) {
          for (const t of g.tests) {
            void test(caseName(t), async () => {
              const unknown = flagsOf(t).filter((f) => !(f in X25519_FLAG_POLICY));
              assert.deepEqual(unknown, [], 'flag without a Keyward policy');
              const expect = flagsOf(t).some((f) => X25519_FLAG_POLICY[f] === 'reject') ? 'reject' : 'compute';
              // Sanity of the mapping against the data: we reject exactly the all-zero outputs.
              assert.equal(expect === 'reject', /^(00)+$/.test(t.shared), 'policy disagrees with the vector');
              if (t.result === 'valid') assert.equal(expect, 'compute', 'a valid vector must be computed');
              assert.notEqual(t.result, 'invalid', 'x25519_test.json has no invalid vectors; add a policy');

              const sk = await p.x25519.importSecret(hex(t.private));
              const pk = await p.x25519.importPublic(hex(t.public));
              if (expect === 'compute') {
                assert.ok(pk, 'importPublic refused a public key that RFC 7748 accepts');
                assertBytes(await p.x25519.dh(sk, pk), t.shared, 'shared secret');
              } else {
                const out = pk === null ? null : await p.x25519.dh(sk, pk);
                assert.equal(out, null, 'all-zero X25519 output must be refused (null)');
              }
            });
          }
        }
      });
    }
  });
}

// ---------------------------------------------------------------------------
// Ed25519 verify

interface EddsaTest extends WycheproofTest { msg: string; sig: string }
interface EddsaGroup extends WycheproofGroup<EddsaTest> { publicKey: { curve: string; pk: string } }

{
  const file = 'ed25519_test.json';
  const data = loadWycheproof<EddsaGroup>(file);
  void describe(file, () => {
    void test(`registers a test for each of the ${data.numberOfTests} vectors`, () => {
      assert.equal(countTests(data), data.numberOfTests);
      assert.ok(data.testGroups.every((g) => g.publicKey.curve === 'edwards25519'));
    });
    for (const p of PLATFORMS) {
      void describe(`${p.name} adapter`, () => {
        for (const g of data.testGroups) {
          const pk = hex(g.publicKey.pk);
          for (const t of g.tests) {
            void test(caseName(t), async () => {
              assert.notEqual(t.result, 'acceptable', 'ed25519_test.json has no acceptable vectors; add a policy');
              assert.equal(await p.ed25519.verify(pk, hex(t.msg), hex(t.sig)), t.result === 'valid');
            });
          }
        }
      });
    }
  });
}

// ---------------------------------------------------------------------------
// HKDF-SHA256 through kdf.ts (whose HMAC comes from #platform: the node adapter in this process)

defineHkdfWycheproof(nodePlatform.name);
