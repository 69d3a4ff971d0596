/**
 * Fan-out on worker threads (src/node/fanout.ts, offload.ts): the stanza
 * function against RFC 9180's vectors, and whole envelopes sealed with the
 * pool running, opened by every recipient with the ordinary code.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { generateIdentity, inspect, open, seal, type HpkeIdentity, type HpkeRecipient } from '../../src/index.js';
import { parseHeader } from '../../src/format/header.js';
import { sealX25519Stanzas } from '../../src/node/fanout.js';
import { OFFLOAD_MIN_STANZAS, OFFLOAD_START_STANZAS, stanzaOffload } from '../../src/node/offload.js';
import { WorkerPool, sharedPool } from '../../src/node/pool.js';
import { concat, toHex, u16be, utf8 } from '../../src/bytes.js';
import { labeledExtract } from '../../src/hpke/kdf.js';
import { assertBytes, hex, loadJson } from '../kat/helpers.js';

interface Vector {
  mode: number; kem_id: number; kdf_id: number; aead_id: number;
  info: string; skEm: string; pkRm: string; enc: string; key_schedule_context: string;
  encryptions: { aad: string; pt: string; ct: string }[];
}

void describe('sealX25519Stanzas (the worker side of a fan-out)', () => {
  const vectors = loadJson<Vector[]>('hpke/rfc9180-dhkem-x25519-hkdf-sha256.json')
    .filter((v) => v.mode === 0 && v.kem_id === 0x20 && v.kdf_id === 1 && v.aead_id === 2);

  void test('RFC 9180 base mode, DHKEM(X25519), HKDF-SHA256, AES-256-GCM: enc and the first ciphertext', () => {
    assert.ok(vectors.length > 0);
    for (const v of vectors) {
      const suiteId = concat(utf8.encode('HPKE'), u16be(0x20), u16be(1), u16be(2));
      const ksContext = concat(new Uint8Array([0]), labeledExtract(suiteId, new Uint8Array(0), 'psk_id_hash', new Uint8Array(0)),
        labeledExtract(suiteId, new Uint8Array(0), 'info_hash', hex(v.info)));
      assertBytes(ksContext, v.key_schedule_context, 'key_schedule_context');
      const e = v.encryptions[0]!;
      // Two stanzas to the same key with the same ephemeral: both must equal the vector.
      const out = sealX25519Stanzas(crypto, {
        kemSuiteId: concat(utf8.encode('KEM'), u16be(0x20)), suiteId, ksContext,
        aad: hex(e.aad), plaintext: hex(e.pt),
        publicKeys: concat(hex(v.pkRm), hex(v.pkRm)), ephemeralSecrets: concat(hex(v.skEm), hex(v.skEm)),
      }, new Map());
      const ctLen = hex(e.pt).length + 16;
      assertBytes(out.encs.subarray(0, 32), v.enc, 'enc');
      assertBytes(out.encs.subarray(32), v.enc, 'enc (second)');
      assertBytes(out.cts.subarray(0, ctLen), e.ct, 'ct');
      assertBytes(out.cts.subarray(ctLen), e.ct, 'ct (second)');
    }
  });

  void test('fresh randomness: every stanza has its own enc', () => {
    const pk = crypto.generateKeyPairSync('x25519').publicKey.export({ format: 'jwk' }).x!;
    const pkR = new Uint8Array(Buffer.from(pk, 'base64url'));
    const out = sealX25519Stanzas(crypto, {
      kemSuiteId: new Uint8Array(5), suiteId: new Uint8Array(10), ksContext: new Uint8Array(65),
      aad: new Uint8Array(32), plaintext: new Uint8Array(32), publicKeys: concat(pkR, pkR, pkR),
    }, new Map());
    const encs = new Set([0, 1, 2].map((i) => toHex(out.encs.subarray(32 * i, 32 * i + 32))));
    assert.equal(encs.size, 3);
  });
});

void describe('seal to many recipients with the worker pool', () => {
  const N = 40;
  let ids: HpkeIdentity[] = [];
  let rcps: HpkeRecipient[] = [];

  void test('policy: not below the minimum, not while the pool is stopped (which a large fan-out starts)', async () => {
    await sharedPool.stop();
    assert.equal(stanzaOffload.wants(OFFLOAD_MIN_STANZAS - 1), false);
    assert.equal(stanzaOffload.wants(OFFLOAD_START_STANZAS - 1), false);
    assert.equal(sharedPool.running, 0, 'fewer than OFFLOAD_START_STANZAS does not start the pool');
    assert.equal(stanzaOffload.wants(OFFLOAD_START_STANZAS), false, 'this call does not wait for the pool');
    assert.ok(sharedPool.running > 0, 'OFFLOAD_START_STANZAS starts the pool');
    assert.ok(await sharedPool.start(sharedPool.running));
    assert.equal(stanzaOffload.wants(OFFLOAD_MIN_STANZAS - 1), false);
    assert.equal(stanzaOffload.wants(OFFLOAD_MIN_STANZAS), true);
  });

  void test('every recipient opens; stanzas in recipient order, each with its own enc; anonymous too', async () => {
    ids = await Promise.all(Array.from({ length: N }, () => generateIdentity('x25519')));
    rcps = await Promise.all(ids.map((i) => i.recipient()));
    assert.ok(await sharedPool.start(Math.max(1, sharedPool.running)));
    const pt = crypto.randomBytes(3000);
    const runStanzas = sharedPool.runStanzas.bind(sharedPool);
    let batches = 0;
    sharedPool.runStanzas = (job) => { batches++; return runStanzas(job); };
    for (const anonymous of [false, true]) {
      batches = 0;
      const env = await seal(pt, { recipients: rcps, context: { app: 'fanout' }, anonymous });
      assert.ok(batches > 0, 'the pool is running: workers computed some stanzas');
      const header = parseHeader(env);
      assert.equal(header.stanzas.length, N);
      const encs = new Set(header.stanzas.map((s) => toHex(s.fields[1]!)));
      assert.equal(encs.size, N, 'a fresh encapsulation per stanza');
      header.stanzas.forEach((s, i) => {
        assert.equal(s.type, 'x25519');
        assert.deepEqual([...s.fields[0]!], anonymous ? [] : [...rcps[i]!.keyId], `stanza ${i} names recipient ${i}`);
      });
      for (const i of anonymous ? [0, N - 1] : ids.keys()) {
        const r = await open(env, { identities: [ids[i]!], context: { app: 'fanout' }, maxAnonymousTrials: N });
        assert.deepEqual(Buffer.from(r.plaintext), pt, `recipient ${i}`);
      }
      assert.equal(inspect(env).stanzas.length, N);
    }
    sharedPool.runStanzas = runStanzas;
  });

  void test('a tampered stanza (the first: a worker batch) fails for its recipient; the header MAC for the others', async () => {
    const env = await seal(new Uint8Array([1, 2, 3]), { recipients: rcps });
    const ct = parseHeader(env).stanzas[0]!.fields[2]!;
    const bad = env.slice();
    const at = ct.byteOffset - env.byteOffset;
    bad[at] = bad[at]! ^ 1;
    await assert.rejects(open(bad, { identities: [ids[0]!] }), { code: 'KW_STANZA_UNWRAP_FAILED' });
    await assert.rejects(open(bad, { identities: [ids[N - 1]!] }), { code: 'KW_HEADER_MAC_MISMATCH' });
  });

  void test('a failing worker batch fails the seal with KW_INTERNAL, and nothing is left pending', async () => {
    const runStanzas = sharedPool.runStanzas.bind(sharedPool);
    sharedPool.runStanzas = (job) => runStanzas({ ...job, publicKeys: new Uint8Array(job.publicKeys.length) }); // all-zero keys: invalid
    try {
      await assert.rejects(seal(new Uint8Array(1), { recipients: rcps }), { code: 'KW_INTERNAL' });
    } finally {
      sharedPool.runStanzas = runStanzas;
    }
    await sharedPool.stop();
  });
});

void describe('the worker pool stopped under work', () => {
  const pk = crypto.generateKeyPairSync('x25519').publicKey.export({ format: 'jwk' }).x!;
  const pkR = new Uint8Array(Buffer.from(pk, 'base64url'));
  /** A batch long enough (4000 stanzas, tens of ms) that stop() lands before it ends. */
  const bigJob = () => ({
    kemSuiteId: new Uint8Array(5), suiteId: new Uint8Array(10), ksContext: new Uint8Array(65),
    aad: new Uint8Array(32), plaintext: new Uint8Array(32), publicKeys: concat(...Array.from({ length: 4000 }, () => pkR)),
  });

  void test('stop() fails the batches its workers had not finished (KW_INTERNAL), never leaves them waiting', async () => {
    const pool = new WorkerPool();
    assert.ok(await pool.start(1));
    const pending = pool.runStanzas(bigJob());
    await pool.stop();
    await assert.rejects(pending, { code: 'KW_INTERNAL' });
    assert.equal(pool.running, 0);
  });

  void test('a start cut short by stop() does not stop the workers started after it', async () => {
    const pool = new WorkerPool();
    const first = pool.start(1); // still starting when stopped: its workers exit before they are ready
    const stopping = pool.stop();
    const second = pool.start(1); // a new generation, made before the first one's failure is known
    assert.equal(await first, false);
    await stopping;
    assert.ok(await second, 'the new generation starts');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(pool.running, 1, 'the first start\'s failure did not stop the new generation');
    const r = await pool.runStanzas({ ...bigJob(), publicKeys: pkR });
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.encs.length, 32);
    await pool.stop();
  });
});
