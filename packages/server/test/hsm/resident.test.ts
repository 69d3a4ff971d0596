/**
 * HSM-resident key versions (keyholder/hsm-resident.ts) on a private SoftHSM2
 * token, below the server: the marker names exactly the version's HSM key
 * (a swapped marker is KW_WRAPPED_KEY_MISMATCH), data keys wrapped by the
 * HSM's AES-GCM are bound to (ns, key, version, context) like software ones
 * and have their length, software paths never reach a resident version,
 * and after destroy the version is refused (KW_HSM_KEY_MISSING).
 * The end-to-end test through the real server is in wrapped.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Pkcs11Token } from '../../src/hsm/token.js';
import { destroyResident, generateResident, loadResident, residentLabel, residentUnwrap } from '../../src/keyholder/hsm-resident.js';
import { DATAKEY_PURPOSE, datakey, dataKeyAad } from '../../src/keyholder/ops/datakey.js';
import { rewrapDataKeyAny } from '../../src/keyholder/ops/rewrap.js';
import { WRAP_OVERHEAD } from '../../src/keyholder/wrap.js';
import { SOFTHSM_MODULE, softHsm, type SoftHsm } from './softhsm.js';

const INIT = 'abcdef0123456789';
const code = (c: string) => (e: unknown) => (e as { code?: string }).code === c;

void describe('HSM-resident versions (SoftHSM2)', () => {
  let hsm: SoftHsm;
  let token: Pkcs11Token;
  before(async () => {
    hsm = softHsm('keyward-resident');
    token = await Pkcs11Token.open({ module: SOFTHSM_MODULE, tokenLabel: hsm.label, pin: hsm.pin });
  });
  after(() => {
    token.close();
    hsm.cleanup();
  });

  void test('marker binding, AAD binding, software paths refused, destroy', async () => {
    const r1 = { ns: 'app', key: 'k', version: 1, type: 'aes256' } as const;
    const r2 = { ...r1, version: 2 } as const;
    const g1 = await generateResident(token, INIT, r1);
    const g2 = await generateResident(token, INIT, r2);
    assert.equal(Buffer.from(g1.wrapped).toString(), `kwhsm:${residentLabel(INIT, r1)}`);
    await assert.rejects(generateResident(token, INIT, r1), code('KW_HSM_KEY_EXISTS'));
    await assert.rejects(generateResident(token, INIT, { ...r1, key: 'x', type: 'x25519' }), code('KW_INVALID_ARGUMENT'));
    // A marker is accepted only for the version it names.
    await assert.rejects(loadResident(token, INIT, r1, g2.wrapped), code('KW_WRAPPED_KEY_MISMATCH'));
    await assert.rejects(loadResident(token, 'otherinit', r1, g1.wrapped), code('KW_WRAPPED_KEY_MISMATCH'));
    const v1 = await loadResident(token, INIT, r1, g1.wrapped);
    const v2 = await loadResident(token, INIT, r2, g2.wrapped);
    assert.ok(v1.isResident);
    assert.throws(() => v1.secretKey('aes256'), code('KW_KEY_TYPE_MISMATCH'), 'no software path reaches the HSM key');

    const d = await datakey({ version: v1, context: { a: 'b' }, releasePlaintext: true });
    assert.equal(d.wrapped.length, WRAP_OVERHEAD + 32, 'the software length');
    assert.equal(d.wrapped[0], 0x02);
    const back = await residentUnwrap(v1, DATAKEY_PURPOSE, dataKeyAad(r1, { a: 'b' }), d.wrapped);
    assert.deepEqual(back, d.plaintext);
    await assert.rejects(residentUnwrap(v1, DATAKEY_PURPOSE, dataKeyAad(r1, { a: 'c' }), d.wrapped), code('KW_WRAPPED_KEY_MISMATCH'), 'another context');
    await assert.rejects(residentUnwrap(v2, DATAKEY_PURPOSE, dataKeyAad(r2, { a: 'b' }), d.wrapped), code('KW_WRAPPED_KEY_MISMATCH'), 'another version');
    const tampered = Uint8Array.from(d.wrapped);
    tampered[20] = tampered[20]! ^ 1; // the zero padding after the IV
    await assert.rejects(residentUnwrap(v1, DATAKEY_PURPOSE, dataKeyAad(r1, { a: 'b' }), tampered), code('KW_WRAPPED_KEY_MISMATCH'));
    const moved = await rewrapDataKeyAny({ from: v1, to: v2, context: { a: 'b' }, wrapped: d.wrapped });
    assert.deepEqual(await residentUnwrap(v2, DATAKEY_PURPOSE, dataKeyAad(r2, { a: 'b' }), moved.wrapped), d.plaintext);

    // Ed25519: the stored public key must be the HSM pair's.
    const rs = { ns: 'app', key: 's', version: 1, type: 'ed25519' } as const;
    const gs = await generateResident(token, INIT, rs);
    assert.equal(gs.publicKey?.length, 32);
    await assert.rejects(loadResident(token, INIT, rs, gs.wrapped, new Uint8Array(32)), code('KW_WRAPPED_KEY_MISMATCH'));
    await loadResident(token, INIT, rs, gs.wrapped, gs.publicKey);

    // Destroy removes the HSM object (a second destroy goes on); the version is refused afterwards.
    await destroyResident(token, INIT, r1, g1.wrapped);
    await destroyResident(token, INIT, r1, g1.wrapped);
    assert.equal(await token.has('aes', residentLabel(INIT, r1)), false);
    await assert.rejects(loadResident(token, INIT, r1, g1.wrapped), code('KW_HSM_KEY_MISSING'));
    v1.dispose();
    await assert.rejects(datakey({ version: v1 }), code('KW_SEALED'));
  });
});
