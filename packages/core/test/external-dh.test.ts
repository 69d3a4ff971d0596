/** HpkeIdentity.fromDh: an identity whose private key is a non-extractable WebCrypto key (the console's seal page uses it). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HpkeIdentity, generateIdentity, isKeywardError, open, seal } from '@keyward/core';

const subtle = globalThis.crypto.subtle;

async function webCryptoIdentity(): Promise<{ id: HpkeIdentity; calls: () => number }> {
  const pair = await subtle.generateKey({ name: 'X25519' }, false, ['deriveBits']) as CryptoKeyPair;
  const pub = new Uint8Array(await subtle.exportKey('raw', pair.publicKey));
  let n = 0;
  const id = await HpkeIdentity.fromDh('x25519', pub, async (peer) => {
    n++;
    const pk = await subtle.importKey('raw', peer as BufferSource, { name: 'X25519' }, true, []);
    return new Uint8Array(await subtle.deriveBits({ name: 'X25519', public: pk }, pair.privateKey, 256));
  });
  return { id, calls: () => n };
}

void test('an envelope sealed to a non-extractable WebCrypto X25519 key opens through fromDh', async () => {
  const { id, calls } = await webCryptoIdentity();
  const data = new TextEncoder().encode('sealed to a key the library never sees');
  const env = await seal(data, { recipients: [await id.recipient()] });
  const o = await open(env, { identities: [id] });
  assert.deepEqual(o.plaintext, data);
  assert.equal(calls(), 1);
  assert.throws(() => id.toString(), (e: unknown) => isKeywardError(e, 'KW_UNSUPPORTED'));
});

void test('fromDh refuses envelopes for other keys and survives a dh that throws', async () => {
  const { id } = await webCryptoIdentity();
  const other = await generateIdentity('x25519');
  const env = await seal(new Uint8Array([1, 2, 3]), { recipients: [await other.recipient()] });
  await assert.rejects(open(env, { identities: [id] }), (e: unknown) => isKeywardError(e, 'KW_NO_IDENTITY_MATCHED'));
  const broken = await HpkeIdentity.fromDh('x25519', (await id.recipient()).publicKey, () => Promise.reject(new Error('device gone')));
  const mine = await seal(new Uint8Array([4]), { recipients: [await id.recipient()] });
  await assert.rejects(open(mine, { identities: [broken] }), (e: unknown) => isKeywardError(e, 'KW_STANZA_UNWRAP_FAILED') || isKeywardError(e, 'KW_NO_IDENTITY_MATCHED'));
  assert.throws(() => HpkeIdentity.fromDh('x25519', new Uint8Array(31), () => Promise.resolve(null)), (e: unknown) => isKeywardError(e, 'KW_INVALID_KEY_STRING'));
});
