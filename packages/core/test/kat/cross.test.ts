/**
 * Cross tests against an independent HPKE implementation (@hpke/core and its KEM/AEAD packages):
 * for DHKEM(X25519), DHKEM(P-256) and X-Wing × AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305,
 * messages sealed by Keyward open with @hpke and vice versa (20 random cases per direction; random
 * info/aad/plaintext of 0–300 bytes from a seeded PRNG: set KAT_SEED to replay a run).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Chacha20Poly1305 } from '@hpke/chacha20poly1305';
import { Aes128Gcm, Aes256Gcm, CipherSuite, DhkemP256HkdfSha256, HkdfSha256 } from '@hpke/core';
import type { AeadInterface, KemInterface } from '@hpke/core';
import { DhkemX25519HkdfSha256 } from '@hpke/dhkem-x25519';
import { XWing } from '@hpke/hybridkem-x-wing';
import { HpkeSuite } from '../../src/hpke/hpke.js';
import { KEMS, type Kem } from '../../src/hpke/kem.js';
import type { AeadAlg } from '../../src/platform/types.js';
import { katSeed, makeRng, toHex } from './helpers.js';

const CASES = 20;
const MAX_LEN = 300;
const seed = katSeed();

const KEM_PAIRS: readonly { name: string; ours: Kem; theirs: () => KemInterface }[] = [
  { name: 'DHKEM(X25519, HKDF-SHA256)', ours: KEMS.x25519, theirs: () => new DhkemX25519HkdfSha256() },
  { name: 'DHKEM(P-256, HKDF-SHA256)', ours: KEMS.p256, theirs: () => new DhkemP256HkdfSha256() },
  { name: 'X-Wing', ours: KEMS.xwing, theirs: () => new XWing() },
];
const AEAD_PAIRS: readonly { alg: AeadAlg; theirs: () => AeadInterface }[] = [
  { alg: 'aes-128-gcm', theirs: () => new Aes128Gcm() },
  { alg: 'aes-256-gcm', theirs: () => new Aes256Gcm() },
  { alg: 'chacha20-poly1305', theirs: () => new Chacha20Poly1305() },
];

const u8 = (b: ArrayBuffer) => new Uint8Array(b);

void describe(`cross tests with @hpke/core (KAT_SEED=${seed})`, () => {
  const rng = makeRng(seed);
  for (const k of KEM_PAIRS) {
    for (const a of AEAD_PAIRS) {
      void describe(`${k.name} × ${a.alg}`, () => {
        const ours = new HpkeSuite(k.ours, a.alg);
        const theirs = new CipherSuite({ kem: k.theirs(), kdf: new HkdfSha256(), aead: a.theirs() });
        const cases = Array.from({ length: CASES }, () => ({
          info: rng.bytes(rng.int(MAX_LEN + 1)),
          aad: rng.bytes(rng.int(MAX_LEN + 1)),
          pt: rng.bytes(rng.int(MAX_LEN + 1)),
        }));
        const label = (i: number, c: (typeof cases)[number]) =>
          `case ${i}: info ${c.info.length} B, aad ${c.aad.length} B, pt ${c.pt.length} B`;

        void test('suite ids agree', () => {
          assert.equal(ours.kem.id, theirs.kem.id);
          assert.equal(ours.kem.encLength, theirs.kem.encSize);
          assert.equal(ours.kem.publicKeyLength, theirs.kem.publicKeySize);
        });

        void describe('Keyward seals → @hpke opens', () => {
          cases.forEach((c, i) => {
            void test(label(i, c), async () => {
              const kp = await theirs.kem.generateKeyPair();
              const pk = await k.ours.importPublic(u8(await theirs.kem.serializePublicKey(kp.publicKey)));
              const { enc, ct } = await ours.seal(pk, c.info, c.aad, c.pt);
              assert.equal(enc.length, k.ours.encLength);
              assert.equal(ct.length, c.pt.length + 16);
              const pt = await theirs.open({ recipientKey: kp, enc, info: c.info }, ct, c.aad);
              assert.equal(toHex(u8(pt)), toHex(c.pt));
            });
          });
        });

        void describe('@hpke seals → Keyward opens', () => {
          cases.forEach((c, i) => {
            void test(label(i, c), async () => {
              const sk = await k.ours.importSecret(k.ours.generateSecret());
              const pk = await theirs.kem.deserializePublicKey(sk.publicKey);
              const { enc, ct } = await theirs.seal({ recipientPublicKey: pk, info: c.info }, c.pt, c.aad);
              const pt = await ours.open(sk, u8(enc), c.info, c.aad, u8(ct));
              assert.ok(pt, 'Keyward refused a message sealed by @hpke');
              assert.equal(toHex(pt), toHex(c.pt));
            });
          });
        });
      });
    }

    void test(`${k.name}: @hpke reads Keyward's secret-key encoding (opens a Keyward message with deserializePrivateKey(sk))`, async () => {
      const theirs = new CipherSuite({ kem: k.theirs(), kdf: new HkdfSha256(), aead: new Aes128Gcm() });
      const skBytes = k.ours.generateSecret();
      const sk = await k.ours.importSecret(skBytes);
      const info = rng.bytes(17), aad = rng.bytes(5), msg = rng.bytes(33);
      const { enc, ct } = await new HpkeSuite(k.ours, 'aes-128-gcm').seal(await k.ours.importPublic(sk.publicKey), info, aad, msg);
      const recipientKey = k.ours === KEMS.xwing
        ? await (theirs.kem as XWing).generateKeyPairDerand(skBytes)
        : { privateKey: await theirs.kem.deserializePrivateKey(skBytes), publicKey: await theirs.kem.deserializePublicKey(sk.publicKey) };
      assert.equal(toHex(u8(await theirs.kem.serializePublicKey(recipientKey.publicKey))), toHex(sk.publicKey));
      assert.equal(toHex(u8(await theirs.open({ recipientKey, enc, info }, ct, aad))), toHex(msg));
    });
  }
});
