/**
 * datakey / unwrap / rewrap: the data key comes back only sealed to the
 * caller's own recipient, bound to the request hash, key, version and
 * context; wrapped blobs are bound to their key, version and context;
 * rewrap moves blobs between versions of one key without releasing anything.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HpkeIdentity, open, type ContextInput } from '@keyward/core';
import { generateVersion, loadVersion, type KeyVersion } from '../../src/keyholder/keys.js';
import type { VersionRef } from '../../src/keyholder/schemas.js';
import { releaseContext } from '../../src/keyholder/ops/caller.js';
import { datakey } from '../../src/keyholder/ops/datakey.js';
import { rewrapDataKey } from '../../src/keyholder/ops/rewrap.js';
import { unwrapDataKey } from '../../src/keyholder/ops/unwrap.js';
import { flipped, randomBytes, ref, rejectsCore, rejectsKh } from './helpers.js';

const mk = randomBytes(32);
async function version(r: VersionRef): Promise<KeyVersion> {
  return loadVersion(mk, r, (await generateVersion(mk, r)).wrapped);
}
const v1 = await version(ref({ version: 1 }));
const v2 = await version(ref({ version: 2 }));
const otherKey = await version(ref({ key: 'invoices', version: 1 }));
const alice = await HpkeIdentity.generate('x25519');
const aliceR = (await alice.recipient()).toString();
const mallory = await HpkeIdentity.generate('x25519');
const context = { table: 'orders', tenant: '42' };

async function openFor(sealed: Uint8Array, id: HpkeIdentity, ctx: ContextInput): Promise<Uint8Array> {
  return (await open(sealed, { identities: [id], context: ctx })).plaintext;
}

void describe('datakey → unwrap', () => {
  void test('the data key sealed by datakey, the plaintext, and the one unwrap releases are the same key', async () => {
    const h1 = randomBytes(32);
    const dk = await datakey({ version: v1, context, recipient: aliceR, requestHash: h1, releasePlaintext: true });
    assert.deepEqual(dk.ref, v1.ref);
    assert.equal(dk.wrapped.length, 32 + 49);
    assert.equal(dk.plaintext?.length, 32);
    assert.deepEqual(await openFor(dk.sealed!, alice, releaseContext(h1, v1.ref, context)), dk.plaintext);
    const h2 = randomBytes(32);
    const u = await unwrapDataKey({ version: v1, context, wrapped: dk.wrapped, recipient: aliceR, requestHash: h2 });
    assert.deepEqual(await openFor(u.sealed, alice, releaseContext(h2, v1.ref, context)), dk.plaintext);
  });

  void test('an xwing caller gets the key sealed to xwing', async () => {
    const bob = await HpkeIdentity.generate('xwing');
    const h = randomBytes(32);
    const dk = await datakey({ version: v1, context, recipient: (await bob.recipient()).toString(), requestHash: h, releasePlaintext: true });
    assert.deepEqual(await openFor(dk.sealed!, bob, releaseContext(h, v1.ref, context)), dk.plaintext);
  });

  void test('no plaintext unless released; no sealed key without a recipient', async () => {
    const a = await datakey({ version: v1, context, recipient: aliceR, requestHash: randomBytes(32) });
    assert.ok(a.sealed && !('plaintext' in a));
    const b = await datakey({ version: v1, context });
    assert.ok(!('sealed' in b) && !('plaintext' in b));
    const c = await datakey({ version: v1 });
    assert.ok(c.wrapped.length > 0);
  });

  void test('the release context is exactly { kw_request, kw_key, kw_version, ...context }', () => {
    const h = new Uint8Array(32).fill(0xab);
    assert.deepEqual(releaseContext(h, v2.ref, context), { kw_request: 'ab'.repeat(32), kw_key: 'billing/orders', kw_version: '2', table: 'orders', tenant: '42' });
  });
});

void describe('the sealed data key opens only for its caller and its exact context', () => {
  const h = randomBytes(32);
  const sealedP = datakey({ version: v1, context, recipient: aliceR, requestHash: h });
  const good = releaseContext(h, v1.ref, context);

  void test("another identity (mallory's) cannot open it", async () => {
    await rejectsCore(async () => openFor((await sealedP).sealed!, mallory, good), 'KW_NO_IDENTITY_MATCHED');
  });

  const wrong: [string, Record<string, string>][] = [
    ['another request hash', { ...good, kw_request: '00'.repeat(32) }],
    ['another key', { ...good, kw_key: 'billing/invoices' }],
    ['another version', { ...good, kw_version: '2' }],
    ['another context value', { ...good, tenant: '43' }],
    ['a context pair missing', { kw_request: good.kw_request!, kw_key: good.kw_key!, kw_version: '1', table: 'orders' }],
    ['an extra context pair', { ...good, extra: 'x' }],
    ['only the caller context', context],
  ];
  for (const [name, ctx] of wrong) {
    void test(name, async () => { await rejectsCore(async () => openFor((await sealedP).sealed!, alice, ctx), 'KW_CONTEXT_MISMATCH'); });
  }

  void test('a tampered sealed key does not open', async () => {
    const s = (await sealedP).sealed!;
    await assert.rejects(() => openFor(flipped(s, s.length - 1), alice, good));
  });
});

void describe('unwrap refuses blobs that are not for this key, version and context', () => {
  const h = randomBytes(32);
  const dkP = datakey({ version: v1, context });
  const cases: [string, () => Promise<{ version: KeyVersion; context: Record<string, string>; wrapped: Uint8Array }>][] = [
    ['another context value', async () => ({ version: v1, context: { ...context, tenant: '43' }, wrapped: (await dkP).wrapped })],
    ['no context', async () => ({ version: v1, context: {}, wrapped: (await dkP).wrapped })],
    ['another version of the key', async () => ({ version: v2, context, wrapped: (await dkP).wrapped })],
    ['another key', async () => ({ version: otherKey, context, wrapped: (await dkP).wrapped })],
    ['a flipped byte', async () => ({ version: v1, context, wrapped: flipped((await dkP).wrapped, 40) })],
    ['a truncated blob', async () => ({ version: v1, context, wrapped: (await dkP).wrapped.subarray(1) })],
    ['81 zero bytes', () => Promise.resolve({ version: v1, context, wrapped: new Uint8Array(81) })],
  ];
  for (const [name, make] of cases) {
    void test(name, async () => {
      const p = await make();
      await rejectsKh(() => unwrapDataKey({ ...p, recipient: aliceR, requestHash: h }), 'KW_WRAPPED_KEY_MISMATCH');
    });
  }
});

void describe('rewrap', () => {
  void test('moves a blob from v1 to v2; afterwards v1 is not needed', async () => {
    const v1Local = await version(ref({ version: 1, key: 'rotating' }));
    const v2Local = await version(ref({ version: 2, key: 'rotating' }));
    const dk = await datakey({ version: v1Local, context, releasePlaintext: true });
    const moved = rewrapDataKey({ from: v1Local, to: v2Local, context, wrapped: dk.wrapped });
    assert.deepEqual(moved.ref, v2Local.ref);
    assert.notDeepEqual(moved.wrapped, dk.wrapped);
    await rejectsKh(() => unwrapDataKey({ version: v1Local, context, wrapped: moved.wrapped, recipient: aliceR, requestHash: randomBytes(32) }), 'KW_WRAPPED_KEY_MISMATCH');
    v1Local.dispose(); // v1 retired
    const h = randomBytes(32);
    const u = await unwrapDataKey({ version: v2Local, context, wrapped: moved.wrapped, recipient: aliceR, requestHash: h });
    assert.deepEqual(await openFor(u.sealed, alice, releaseContext(h, v2Local.ref, context)), dk.plaintext);
  });

  void test('refuses to move a blob to another key', async () => {
    const dk = await datakey({ version: v1, context });
    await rejectsKh(() => rewrapDataKey({ from: v1, to: otherKey, context, wrapped: dk.wrapped }), 'KW_INVALID_ARGUMENT');
  });

  void test('refuses a blob with another context or from another version', async () => {
    const dk = await datakey({ version: v1, context });
    await rejectsKh(() => rewrapDataKey({ from: v1, to: v2, context: { table: 'x' }, wrapped: dk.wrapped }), 'KW_WRAPPED_KEY_MISMATCH');
    await rejectsKh(() => rewrapDataKey({ from: v2, to: v1, context, wrapped: dk.wrapped }), 'KW_WRAPPED_KEY_MISMATCH');
  });

  void test('both versions must be aes256', async () => {
    const ed = await version(ref({ type: 'ed25519', version: 3 }));
    const dk = await datakey({ version: v1, context });
    await rejectsKh(() => rewrapDataKey({ from: v1, to: ed, context, wrapped: dk.wrapped }), 'KW_KEY_TYPE_MISMATCH');
  });
});

void describe('datakey / unwrap argument checks: nothing is generated or released', () => {
  const p256 = HpkeIdentity.generate('p256').then(async (i) => (await i.recipient()).toString());
  const cases: [string, () => Promise<unknown>][] = [
    ['a reserved kw_ context key', () => datakey({ version: v1, context: { kw_request: 'x' } })],
    ['a reserved KW_ context key (any case)', () => datakey({ version: v1, context: { KW_key: 'x' } })],
    ['a non-string context value', () => datakey({ version: v1, context: { n: 1 } as never })],
    ['a "__proto__" context key', () => datakey({ version: v1, context: JSON.parse('{"__proto__":"x"}') as Record<string, string> })],
    ['an empty context key', () => datakey({ version: v1, context: { '': 'x' } })],
    ['too many context pairs', () => datakey({ version: v1, context: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v'])) })],
    ['a context over 4 KiB', () => datakey({ version: v1, context: { big: 'x'.repeat(4096) } })],
    ['a recipient without a request hash', () => datakey({ version: v1, context, recipient: aliceR })],
    ['a 16-byte request hash', () => datakey({ version: v1, context, recipient: aliceR, requestHash: randomBytes(16) })],
    ['a malformed recipient', () => datakey({ version: v1, context, recipient: 'kwx25519xyz', requestHash: randomBytes(32) })],
    ['a p256 recipient', async () => datakey({ version: v1, context, recipient: await p256, requestHash: randomBytes(32) })],
    ['unwrap without a recipient', async () => unwrapDataKey({ version: v1, context, wrapped: (await datakey({ version: v1, context })).wrapped, recipient: undefined as never, requestHash: randomBytes(32) })],
  ];
  for (const [name, fn] of cases) void test(name, async () => { await rejectsKh(fn, 'KW_INVALID_ARGUMENT'); });

  void test('datakey under a non-aes256 version is KW_KEY_TYPE_MISMATCH', async () => {
    const hm = await version(ref({ type: 'hmac-sha256' }));
    await rejectsKh(() => datakey({ version: hm, context }), 'KW_KEY_TYPE_MISMATCH');
  });
});
