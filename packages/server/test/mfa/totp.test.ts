/**
 * TOTP: every RFC 6238 Appendix B vector (one test case each) through our
 * wrapper at a fixed clock, then the rules a second factor needs: one
 * acceptance per time step, one step of drift back, none forward.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { newTotpSecret, totpAt, verifyTotp } from '../../src/mfa/totp.js';

const VECTORS = new URL('../../../../../shared/vectors/totp/rfc6238-appendix-b.json', import.meta.url);
interface Vectors {
  keys: Record<string, { hex: string }>;
  cases: { time: number; T: number; algorithm: 'SHA1' | 'SHA256' | 'SHA512'; totp: string }[];
}
const v = JSON.parse(readFileSync(VECTORS, 'utf8')) as Vectors;

void describe('RFC 6238 Appendix B', () => {
  for (const c of v.cases) {
    void test(`${c.algorithm} at t=${c.time} → ${c.totp}`, async () => {
      const secret = new Uint8Array(Buffer.from(v.keys[c.algorithm]!.hex, 'hex'));
      const algorithm = c.algorithm.toLowerCase() as 'sha1' | 'sha256' | 'sha512';
      const now = new Date(c.time * 1000);
      const params = { digits: 8, period: 30, algorithm } as const;
      assert.equal(await totpAt(secret, now, params), c.totp);
      assert.deepEqual(await verifyTotp({ secret, code: c.totp, now, lastTimeStep: null, params }), { ok: true, timeStep: c.T });
      const wrong = c.totp.slice(0, 7) + String((Number(c.totp[7]) + 1) % 10);
      assert.deepEqual(await verifyTotp({ secret, code: wrong, now, lastTimeStep: null, params }), { ok: false, reason: 'wrong' });
    });
  }
});

void describe('second-factor rules', () => {
  const { secret } = newTotpSecret();
  const t0 = new Date(1_800_000_000_000); // a step boundary: 1_800_000_000 / 30 is whole
  const step = (n: number) => new Date(t0.getTime() + n * 30_000);

  void test('a code is accepted once per time step (RFC 6238 §5.2)', async () => {
    const code = await totpAt(secret, t0);
    const first = await verifyTotp({ secret, code, now: t0, lastTimeStep: null });
    assert.equal(first.ok, true);
    const ts = (first as { timeStep: number }).timeStep;
    assert.deepEqual(await verifyTotp({ secret, code, now: t0, lastTimeStep: ts }), { ok: false, reason: 'replay' });
    // a later step's code is fine after that
    const next = await totpAt(secret, step(1));
    assert.deepEqual(await verifyTotp({ secret, code: next, now: step(1), lastTimeStep: ts }), { ok: true, timeStep: ts + 1 });
  });

  void test('the previous step is accepted (drift), two steps back and the next step are not', async () => {
    const prev = await totpAt(secret, step(-1));
    assert.equal((await verifyTotp({ secret, code: prev, now: t0, lastTimeStep: null })).ok, true);
    const old = await totpAt(secret, step(-2));
    if (old !== (await totpAt(secret, t0)) && old !== prev) {
      assert.deepEqual(await verifyTotp({ secret, code: old, now: t0, lastTimeStep: null }), { ok: false, reason: 'wrong' });
    }
    const future = await totpAt(secret, step(1));
    if (future !== (await totpAt(secret, t0)) && future !== prev) {
      assert.deepEqual(await verifyTotp({ secret, code: future, now: t0, lastTimeStep: null }), { ok: false, reason: 'wrong' });
    }
  });

  void test('an older step cannot be replayed after a newer one was accepted', async () => {
    const now = step(10);
    const current = await totpAt(secret, now);
    const r = await verifyTotp({ secret, code: current, now, lastTimeStep: null });
    assert.equal(r.ok, true);
    const prev = await totpAt(secret, step(9));
    if (prev !== current) {
      assert.deepEqual(await verifyTotp({ secret, code: prev, now, lastTimeStep: (r as { timeStep: number }).timeStep }), { ok: false, reason: 'replay' });
    }
  });

  void test('malformed codes are refused before any HMAC', async () => {
    for (const code of ['', '12345', '1234567', '12345a', ' 123456', '１２３４５６']) {
      assert.deepEqual(await verifyTotp({ secret, code, now: t0, lastTimeStep: null }), { ok: false, reason: 'malformed' }, code);
    }
  });

  void test('enrollment: 160-bit seed, base32 and an otpauth URI naming issuer and account', () => {
    const e = newTotpSecret();
    assert.equal(e.secret.length, 20);
    assert.match(e.base32, /^[A-Z2-7]{32}$/);
    const uri = new URL(e.uri('Keyward', 'alice@example.com'));
    assert.equal(uri.protocol, 'otpauth:');
    assert.equal(uri.searchParams.get('secret'), e.base32);
    assert.notDeepEqual(newTotpSecret().secret, e.secret);
  });
});
