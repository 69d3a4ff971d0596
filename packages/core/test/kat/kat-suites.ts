/**
 * Known-answer suites that go through the code above the platform layer
 * (kdf.ts, kem.ts, hpke.ts), which reaches the primitives through `#platform`.
 * They are functions so that two test files can register them: the ordinary
 * files (where `#platform` is the node adapter) and web-platform.test.ts, which
 * redirects `#platform` to the web adapter before importing this module.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { platform } from '#platform';
import { concat, u16be, utf8 } from '../../src/bytes.js';
import { AEAD_IDS, HpkeContext, HpkeSuite } from '../../src/hpke/hpke.js';
import { hkdfExpand, hkdfExtract, labeledExpand, labeledExtract } from '../../src/hpke/kdf.js';
import { KEMS, type Kem, type KemSecretKey } from '../../src/hpke/kem.js';
import type { AeadAlg, AeadKey } from '../../src/platform/types.js';
import {
  assertBytes, caseName, countTests, hex, HPKE_KEMS, HPKE_KDFS, loadJson, loadWycheproof, suiteName, toHex,
  type HpkeVector, type WycheproofGroup, type WycheproofTest,
} from './helpers.js';

const EMPTY = new Uint8Array(0);

function expectPlatform(name: 'node' | 'web'): void {
  void test(`#platform is the ${name} adapter`, () => assert.equal(platform.name, name));
}

// ---------------------------------------------------------------------------
// Wycheproof HKDF-SHA256 through kdf.ts

interface HkdfTest extends WycheproofTest { ikm: string; salt: string; info: string; size: number; okm: string }

export function defineHkdfWycheproof(platformName: 'node' | 'web'): void {
  const file = 'hkdf_sha256_test.json';
  const data = loadWycheproof<WycheproofGroup<HkdfTest>>(file);
  void describe(`${file} (kdf.ts hkdfExtract/hkdfExpand over the ${platformName} adapter)`, () => {
    expectPlatform(platformName);
    void test(`registers a test for each of the ${data.numberOfTests} vectors`, () => {
      assert.equal(countTests(data), data.numberOfTests);
    });
    for (const g of data.testGroups) {
      for (const t of g.tests) {
        void test(caseName(t), () => {
          const prk = hkdfExtract(hex(t.salt), hex(t.ikm));
          if (t.result === 'valid') {
            assertBytes(hkdfExpand(prk, hex(t.info), t.size), t.okm, 'okm');
          } else {
            assert.deepEqual(t.flags ?? [], ['SizeTooLarge'], 'only SizeTooLarge is expected to be invalid');
            assert.throws(() => hkdfExpand(prk, hex(t.info), t.size), RangeError);
          }
        });
      }
    }
  });
}

// ---------------------------------------------------------------------------
// HPKE helpers

const AEAD_BY_ID: Record<number, AeadAlg> = Object.fromEntries(
  Object.entries(AEAD_IDS).map(([alg, id]) => [id, alg as AeadAlg]),
);

/** RFC 9180 §7.1.3 DeriveKeyPair for DHKEM(X25519, HKDF-SHA256), from kdf.ts's labeled functions (not part of our API). */
function deriveX25519Secret(ikm: Uint8Array): Uint8Array {
  const kemSuite = concat(utf8.encode('KEM'), u16be(0x0020));
  return labeledExpand(kemSuite, labeledExtract(kemSuite, EMPTY, 'dkp_prk', ikm), 'sk', EMPTY, 32);
}

/** RFC 9180 §5.1 KeySchedule (mode_base), recomputed from kdf.ts to check the intermediate values of a vector. */
function baseKeySchedule(suiteId: Uint8Array, shared: Uint8Array, info: Uint8Array, keyLen: number) {
  const ctx = concat(
    new Uint8Array([0]),
    labeledExtract(suiteId, EMPTY, 'psk_id_hash', EMPTY),
    labeledExtract(suiteId, EMPTY, 'info_hash', info),
  );
  const secret = labeledExtract(suiteId, shared, 'secret', EMPTY);
  return {
    ctx,
    secret,
    key: labeledExpand(suiteId, secret, 'key', ctx, keyLen),
    baseNonce: labeledExpand(suiteId, secret, 'base_nonce', ctx, 12),
    exporterSecret: labeledExpand(suiteId, secret, 'exp', ctx, 32),
  };
}

const NO_AEAD: AeadKey = {
  seal: () => Promise.reject(new Error('export-only context')),
  open: () => Promise.reject(new Error('export-only context')),
};

/**
 * A base-mode vector through HpkeSuite: KEM, key schedule, every encryption in
 * sequence (seal with the vector's ephemeral key, open with skRm) and every export.
 */
function defineBaseModeVector(v: HpkeVector, kem: Kem, ephemeral: Uint8Array, ephemeralLabel: string): void {
  const alg = AEAD_BY_ID[v.aead_id]!;
  void describe(suiteName(v), () => {
    const suite = new HpkeSuite(kem, alg);
    const info = hex(v.info);
    let sender: HpkeContext;
    let receiver: HpkeContext;
    let sk: KemSecretKey;
    before(async () => {
      sk = await kem.importSecret(hex(v.skRm));
      const s = await suite.setupBaseS(await kem.importPublic(hex(v.pkRm)), info, ephemeral);
      sender = s.ctx;
      const r = await suite.setupBaseR(hex(v.enc), sk, info);
      assert.ok(r, 'setupBaseR refused the vector enc');
      receiver = r;
    });

    if (v.suite_id) void test('suite_id', () => assertBytes(suite.suiteId, v.suite_id!, 'suite_id'));
    void test('importSecret(skRm).publicKey = pkRm', () => assertBytes(sk.publicKey, v.pkRm, 'pkRm'));
    void test(`encap(pkRm, ${ephemeralLabel}) = enc, shared_secret`, async () => {
      const { enc, shared } = await kem.encap(await kem.importPublic(hex(v.pkRm)), ephemeral);
      assertBytes(enc, v.enc, 'enc');
      assertBytes(shared, v.shared_secret, 'shared_secret');
    });
    void test('decap(enc, skRm) = shared_secret', async () => {
      assertBytes(await kem.decap(hex(v.enc), sk), v.shared_secret, 'shared_secret');
    });
    void test(`setupBaseS(pkRm, info, ${ephemeralLabel}) = enc`, async () => {
      const { enc } = await suite.setupBaseS(await kem.importPublic(hex(v.pkRm)), info, ephemeral);
      assertBytes(enc, v.enc, 'enc');
    });
    void test('key schedule values (kdf.ts labeled extract/expand with this suite_id)', () => {
      const ks = baseKeySchedule(suite.suiteId, hex(v.shared_secret), info, hex(v.key).length);
      if (v.key_schedule_context) assertBytes(ks.ctx, v.key_schedule_context, 'key_schedule_context');
      if (v.secret) assertBytes(ks.secret, v.secret, 'secret');
      assertBytes(ks.key, v.key, 'key');
      assertBytes(ks.baseNonce, v.base_nonce, 'base_nonce');
      assertBytes(ks.exporterSecret, v.exporter_secret, 'exporter_secret');
    });
    v.encryptions.forEach((e, seq) => {
      void test(`encryption seq ${seq}: seal = ct, open(ct) = pt (pt ${e.pt.length / 2} B, aad ${e.aad.length / 2} B)`, async () => {
        assertBytes(await sender.seal(hex(e.aad), hex(e.pt)), e.ct, `seal seq ${seq}`);
        assertBytes(await receiver.open(hex(e.aad), hex(e.ct)), e.pt, `open seq ${seq}`);
      });
    });
    v.exports.forEach((x, i) => {
      void test(`export ${i}: context ${x.exporter_context || '(empty)'}, L = ${x.L}`, () => {
        assertBytes(sender.export(hex(x.exporter_context), x.L), x.exported_value, 'sender export');
        assertBytes(receiver.export(hex(x.exporter_context), x.L), x.exported_value, 'receiver export');
      });
    });
  });
}

/** Non-base modes: listed, and the test checks that our API indeed offers base mode only. */
function defineUnsupportedMode(v: HpkeVector): void {
  void test(`${suiteName(v)}: not supported — Keyward implements HPKE mode_base only (no PSK / auth setup)`, () => {
    const suite = new HpkeSuite(KEMS.x25519, AEAD_BY_ID[v.aead_id] ?? 'aes-128-gcm') as unknown as Record<string, unknown>;
    for (const m of ['setupPSKS', 'setupPSKR', 'setupAuthS', 'setupAuthR', 'setupAuthPSKS', 'setupAuthPSKR']) {
      assert.equal(suite[m], undefined, `HpkeSuite.${m} exists: add the mode ${v.mode} vectors`);
    }
    // keySchedule(shared, info): there is no mode, psk or psk_id parameter to feed these vectors.
    assert.equal((suite.keySchedule as (...a: unknown[]) => unknown).length, 2);
    assert.equal((suite.setupBaseS as (...a: unknown[]) => unknown).length, 3);
  });
}

// ---------------------------------------------------------------------------
// RFC 9180 (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM / AES-256-GCM / ChaCha20Poly1305 / export-only)

export function defineRfc9180(platformName: 'node' | 'web'): void {
  const file = 'hpke/rfc9180-dhkem-x25519-hkdf-sha256.json';
  const vectors = loadJson<HpkeVector[]>(file);
  void describe(`${file} (over the ${platformName} adapter)`, () => {
    expectPlatform(platformName);
    void test('has the 12 filtered suites (4 modes x 3 AEADs)', () => {
      assert.equal(vectors.length, 12);
      assert.ok(vectors.every((v) => v.kem_id === 0x20 && v.kdf_id === 1 && AEAD_BY_ID[v.aead_id]));
    });
    for (const v of vectors.filter((x) => x.mode === 0)) {
      void describe(`${suiteName(v)}: DeriveKeyPair`, () => {
        void test('DeriveKeyPair(ikmE) = skEm, DeriveKeyPair(ikmR) = skRm (RFC 9180 §7.1.3 via kdf.ts)', () => {
          assertBytes(deriveX25519Secret(hex(v.ikmE)), v.skEm!, 'skEm');
          assertBytes(deriveX25519Secret(hex(v.ikmR)), v.skRm, 'skRm');
        });
      });
      defineBaseModeVector(v, KEMS.x25519, hex(v.skEm!), 'skEm');
    }
    void describe('non-base modes (psk, auth, auth_psk): listed, not run', () => {
      for (const v of vectors.filter((x) => x.mode !== 0)) defineUnsupportedMode(v);
    });
  });

  const exportOnlyFile = 'hpke/rfc9180-dhkem-x25519-hkdf-sha256-exportonly.json';
  const exportOnly = loadJson<HpkeVector[]>(exportOnlyFile);
  void describe(`${exportOnlyFile} (over the ${platformName} adapter)`, () => {
    void test('has 4 export-only suites', () => {
      assert.equal(exportOnly.length, 4);
      assert.ok(exportOnly.every((v) => v.kem_id === 0x20 && v.kdf_id === 1 && v.aead_id === 0xffff));
    });
    for (const v of exportOnly.filter((x) => x.mode === 0)) {
      // HpkeSuite takes an AeadAlg and keySchedule() always creates an AEAD key, so aead_id 0xFFFF cannot
      // be fed to it: the schedule is recomputed here with kdf.ts and the real HpkeContext.export is tested.
      void describe(`${suiteName(v)}: exporter via HpkeContext (HpkeSuite.keySchedule cannot take aead 0xFFFF)`, () => {
        const suiteId = concat(utf8.encode('HPKE'), u16be(0x20), u16be(1), u16be(0xffff));
        let ctx: HpkeContext;
        let shared: Uint8Array;
        before(async () => {
          const { enc, shared: s } = await KEMS.x25519.encap(await KEMS.x25519.importPublic(hex(v.pkRm)), hex(v.skEm!));
          assertBytes(enc, v.enc, 'enc');
          shared = s;
          const ks = baseKeySchedule(suiteId, shared, hex(v.info), 0);
          ctx = new HpkeContext(suiteId, NO_AEAD, new Uint8Array(12), ks.secret, ks.ctx);
        });
        void test('encap(pkRm, skEm) = enc, shared_secret; decap(enc, skRm) = shared_secret', async () => {
          assertBytes(shared, v.shared_secret, 'shared_secret');
          const sk = await KEMS.x25519.importSecret(hex(v.skRm));
          assertBytes(await KEMS.x25519.decap(hex(v.enc), sk), v.shared_secret, 'decap');
        });
        void test('key_schedule_context, secret, exporter_secret', () => {
          const ks = baseKeySchedule(suiteId, hex(v.shared_secret), hex(v.info), 0);
          assertBytes(ks.ctx, v.key_schedule_context!, 'key_schedule_context');
          assertBytes(ks.secret, v.secret!, 'secret');
          assertBytes(ks.exporterSecret, v.exporter_secret, 'exporter_secret');
        });
        v.exports.forEach((x, i) => {
          void test(`export ${i}: context ${x.exporter_context || '(empty)'}, L = ${x.L}`, () => {
            assertBytes(ctx.export(hex(x.exporter_context), x.L), x.exported_value, 'export');
          });
        });
      });
    }
    void describe('non-base modes (psk, auth, auth_psk): listed, not run', () => {
      for (const v of exportOnly.filter((x) => x.mode !== 0)) defineUnsupportedMode(v);
    });
  });
}

// ---------------------------------------------------------------------------
// draft-ietf-hpke-pq

export function defineHpkePq(platformName: 'node' | 'web'): void {
  const file = 'hpke/draft-ietf-hpke-pq-test-vectors.json';
  const vectors = loadJson<HpkeVector[]>(file);
  void describe(`${file} (over the ${platformName} adapter)`, () => {
    expectPlatform(platformName);
    void test('every entry is mode_base', () => assert.ok(vectors.every((v) => v.mode === 0)));
    for (const v of vectors) {
      const supportedKdf = v.kdf_id === 1;
      const supportedAead = AEAD_BY_ID[v.aead_id] !== undefined;
      if (v.kem_id === 0x647a && supportedKdf && supportedAead) {
        // X-Wing's deterministic encapsulation takes the 64-byte eseed, which is what the draft's ikmE is.
        defineBaseModeVector(v, KEMS.xwing, hex(v.ikmE), 'ikmE as eseed');
        continue;
      }
      const kem = v.kem_id === 0x647a ? KEMS.xwing : v.kem_id === 0x20 ? KEMS.x25519 : v.kem_id === 0x10 ? KEMS.p256 : null;
      if (!kem) {
        void test(`${suiteName(v)} — skipped: KEM ${HPKE_KEMS[v.kem_id] ?? v.kem_id} is not implemented by Keyward`,
          { skip: 'KEM not implemented' }, () => {});
        continue;
      }
      // Keyward's KEM, but a KDF other than HKDF-SHA256: the key schedule cannot be run; the KEM (whose id fixes its own
      // KDF) still can.
      void describe(`${suiteName(v)} — KDF ${HPKE_KDFS[v.kdf_id] ?? v.kdf_id} is not HKDF-SHA256: KEM checked, key schedule skipped`, () => {
        void test('importSecret(skRm).publicKey = pkRm', async () => {
          assertBytes((await kem.importSecret(hex(v.skRm))).publicKey, v.pkRm, 'pkRm');
        });
        void test('decap(enc, skRm) = shared_secret', async () => {
          assertBytes(await kem.decap(hex(v.enc), await kem.importSecret(hex(v.skRm))), v.shared_secret, 'shared_secret');
        });
        if (kem === KEMS.xwing || kem === KEMS.x25519) {
          const eph = kem === KEMS.xwing ? hex(v.ikmE) : deriveX25519Secret(hex(v.ikmE));
          const label = kem === KEMS.xwing ? 'ikmE as eseed' : 'DeriveKeyPair(ikmE)';
          void test(`encap(pkRm, ${label}) = enc, shared_secret`, async () => {
            const { enc, shared } = await kem.encap(await kem.importPublic(hex(v.pkRm)), eph);
            assertBytes(enc, v.enc, 'enc');
            assertBytes(shared, v.shared_secret, 'shared_secret');
          });
        } else {
          void test('encap — skipped: needs DeriveKeyPair(ikmE) for P-256, which Keyward does not expose', { skip: 'no skEm in the vector' }, () => {});
        }
        void test(`key schedule, ${v.encryptions.length} encryptions, ${v.exports.length} exports — skipped: HpkeSuite only implements HKDF-SHA256 (kdf 0x0001)`,
          { skip: `kdf ${v.kdf_id} unsupported` }, () => {});
      });
    }
  });
}

// ---------------------------------------------------------------------------
// X-Wing (draft-connolly-cfrg-xwing-kem) through KEMS.xwing

interface XwingVector { seed: string; sk: string; pk: string; eseed: string; ct: string; ss: string }

export function defineXwing(): void {
  const file = 'xwing/test-vectors.json';
  const vectors = loadJson<XwingVector[]>(file);
  void describe(`${file} (KEMS.xwing)`, () => {
    void test('has the 3 draft vectors', () => assert.equal(vectors.length, 3));
    vectors.forEach((v, i) => {
      void describe(`vector ${i} (seed ${v.seed.slice(0, 16)}…)`, () => {
        void test('keygen: importSecret(seed).publicKey = pk (and sk = seed)', async () => {
          assert.equal(v.sk, v.seed, 'the draft serialises the decapsulation key as the seed');
          assertBytes((await KEMS.xwing.importSecret(hex(v.seed))).publicKey, v.pk, 'pk');
        });
        void test('encap(pk, eseed) = ct, ss', async () => {
          const { enc, shared } = await KEMS.xwing.encap(await KEMS.xwing.importPublic(hex(v.pk)), hex(v.eseed));
          assertBytes(enc, v.ct, 'ct');
          assertBytes(shared, v.ss, 'ss');
        });
        void test('decap(ct, seed) = ss', async () => {
          assertBytes(await KEMS.xwing.decap(hex(v.ct), await KEMS.xwing.importSecret(hex(v.seed))), v.ss, 'ss');
        });
        void test('decap of ct with a flipped ML-KEM bit: implicit rejection (different ss, no throw)', async () => {
          const ct = hex(v.ct);
          ct[17]! ^= 0x01;
          const ss = await KEMS.xwing.decap(ct, await KEMS.xwing.importSecret(hex(v.seed)));
          assert.ok(ss && ss.length === 32);
          assert.notEqual(toHex(ss), v.ss);
        });
        void test('wrong lengths: importPublic throws, decap returns null, importSecret throws', async () => {
          const pk = hex(v.pk), ct = hex(v.ct), seed = hex(v.seed);
          await assert.rejects(async () => KEMS.xwing.importPublic(pk.subarray(1)));
          await assert.rejects(async () => KEMS.xwing.importPublic(concat(pk, new Uint8Array(1))));
          const sk = await KEMS.xwing.importSecret(seed);
          assert.equal(await KEMS.xwing.decap(ct.subarray(1), sk), null);
          assert.equal(await KEMS.xwing.decap(concat(ct, new Uint8Array(1)), sk), null);
          await assert.rejects(async () => KEMS.xwing.importSecret(seed.subarray(1)));
        });
      });
    });
  });
}
