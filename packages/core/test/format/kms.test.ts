/**
 * The `kms` extension point of core, with a key-service client that keeps its
 * key in memory. The real client and server are tested end to end in
 * packages/client and packages/server; this pins what core itself promises.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { webcrypto } from 'node:crypto';
import {
  KmsIdentity, KmsRecipient, generateIdentity, isKeywardError, open, seal,
  type KmsClient, type Stanza, type StanzaContext,
} from '../../src/index.js';

function memoryKms(name = 'ns/orders'): KmsClient & { calls: string[] } {
  const stored = new Map<string, Uint8Array>();
  const calls: string[] = [];
  return {
    calls,
    generateDataKey(keyRef: string, ctx: StanzaContext) {
      calls.push(`generate ${keyRef} ${ctx.context.map(([k, v]) => `${k}=${v}`).join(',')}`);
      const dataKey = webcrypto.getRandomValues(new Uint8Array(32));
      const id = webcrypto.getRandomValues(new Uint8Array(8));
      stored.set(Buffer.from(id).toString('hex'), dataKey.slice());
      const stanza: Stanza = { type: 'kms', fields: [new TextEncoder().encode(keyRef), new Uint8Array([0, 0, 0, 1]), id] };
      return Promise.resolve({ dataKey, stanza });
    },
    unwrap(stanza: Stanza) {
      calls.push('unwrap');
      if (new TextDecoder().decode(stanza.fields[0]) !== name) return Promise.resolve(null);
      return Promise.resolve(stored.get(Buffer.from(stanza.fields[2]!).toString('hex'))?.slice() ?? null);
    },
  };
}

const data = new TextEncoder().encode('sealed through a key service');

void test('a kms recipient provides the data key; the other recipients wrap that same key', async () => {
  const kms = memoryKms();
  const alice = await generateIdentity();
  const env = await seal(data, { recipients: [new KmsRecipient(kms, 'ns/orders'), await alice.recipient()], context: { t: 'x' } });
  assert.deepEqual(kms.calls, ['generate ns/orders t=x']);
  assert.deepEqual((await open(env, { identities: [new KmsIdentity(kms)], context: { t: 'x' } })).plaintext, data);
  assert.deepEqual((await open(env, { identities: [alice], context: { t: 'x' } })).plaintext, data);
});

void test('two data-key providers in one envelope are refused', async () => {
  const kms = memoryKms();
  await assert.rejects(seal(data, { recipients: [new KmsRecipient(kms, 'ns/a'), new KmsRecipient(kms, 'ns/b')] }),
    (e) => isKeywardError(e, 'KW_INVALID_ARGUMENT'));
});

void test('a kms recipient never wraps a data key made elsewhere', () => {
  assert.throws(() => new KmsRecipient(memoryKms(), 'ns/a').wrap(), (e) => isKeywardError(e, 'KW_INVALID_ARGUMENT'));
});

void test('an envelope only the key service can open says so without a key-service identity', async () => {
  const env = await seal(data, { recipients: [new KmsRecipient(memoryKms(), 'ns/orders')] });
  await assert.rejects(open(env, { identities: [await generateIdentity()] }), (e) => isKeywardError(e, 'KW_KMS_UNAVAILABLE'));
});

void test('a kms stanza that does not name its key is refused when sealing', async () => {
  const bad: KmsClient = {
    generateDataKey: () => Promise.resolve({ dataKey: new Uint8Array(32), stanza: { type: 'kms', fields: [new Uint8Array(0), new Uint8Array(4), new Uint8Array(8)] } }),
    unwrap: () => Promise.resolve(null),
  };
  await assert.rejects(seal(data, { recipients: [new KmsRecipient(bad, '')], anonymous: true }), (e) => isKeywardError(e, 'KW_INVALID_ARGUMENT'));
});
