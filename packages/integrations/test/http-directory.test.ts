/**
 * Sealed HTTP bodies to the receiving service's directory key (issue #10):
 * `service:billing` enrolls a device in the real key service's public-key
 * directory (its keys made here, on the "device"); the caller resolves the
 * name through the directory with proofs, against the configuration it
 * pinned, and seals to what it got. Only the enrolled device's identity opens;
 * a name nobody enrolled is refused with a typed error, and a service holding another
 * key cannot open.
 */
/* eslint-disable @typescript-eslint/require-await -- fastify route handlers are async by convention */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { HpkeIdentity } from '@keyward/core';
import { Directory, fetchTransport, generateDevice, type DeviceSecrets } from '@keyward/client';
import { isIntegrationError, SealedHttpClient, sealedHttpPlugin } from '../src/index.js';
import { canary, startKeyService, type KeyService } from './helpers.js';

let ks: KeyService;
let directory: Directory;
let device: DeviceSecrets;
const apps: FastifyInstance[] = [];
const seen: unknown[] = [];

async function billing(identity: HpkeIdentity): Promise<string> {
  const app = Fastify({ logger: false });
  await app.register(async (scope) => {
    await scope.register(sealedHttpPlugin, { identities: [identity], audience: 'billing' });
    scope.post('/v1/charges', async (req) => {
      seen.push(req.body);
      return { receipt: `receipt for ${(req.body as { card: string }).card}` };
    });
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  apps.push(app);
  return `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
}

before(async () => {
  ks = await startKeyService({ KEYWARD_DIRECTORY: '1' });
  const pinned = await Directory.configuration(fetchTransport(ks.url));
  directory = await Directory.connect(fetchTransport(ks.url), { pinned });
  device = await generateDevice('billing-1');
  const enroll = await ks.admin('POST', '/v1/directory/enroll-tokens', { name: 'service:billing' });
  assert.equal(enroll.status, 201, JSON.stringify(enroll.body));
  await directory.enroll('service:billing', (enroll.body as { token: string }).token, device);
});
after(async () => {
  for (const a of apps) await a.close();
  await ks?.stop();
});

void test('a request sealed to the directory key of service:billing opens only at its enrolled device', async () => {
  const recipients = await directory.recipients(['service:billing']);
  assert.equal(recipients.length, 1, 'one enrolled device, one key');
  const own = await HpkeIdentity.parse(device.hpke.identity, device.hpke.alg);
  assert.equal(recipients[0]!.toString(), (await own.recipient()).toString(), 'the directory gives the key the device made');

  const url = await billing(own);
  const card = canary('card');
  const client = new SealedHttpClient({ recipient: recipients[0]!, audience: 'billing' });
  const res = await client.fetch(`${url}/v1/charges`, { method: 'POST', json: { card } });
  assert.equal(res.status, 200);
  assert.deepEqual(res.json(), { receipt: `receipt for ${card}` });
  assert.deepEqual(seen.at(-1), { card });

  // A service that holds any other key (say, a copy of billing set up by the middle) cannot open.
  const impostorUrl = await billing(await HpkeIdentity.generate('x25519'));
  await assert.rejects(client.fetch(`${impostorUrl}/v1/charges`, { method: 'POST', json: { card } }), (e: unknown) => {
    assert.ok(isIntegrationError(e), String(e));
    assert.equal(e.code, 'KW_INT_OPEN_FAILED');
    return true;
  });
});

void test('a name nobody enrolled is a typed refusal (its absence proven), so nothing is sealed to it', async () => {
  await assert.rejects(directory.recipients(['service:nobody']), (e: unknown) => {
    assert.equal((e as { code?: string }).code, 'KW_DIR_RECORD_INVALID', String(e));
    return true;
  });
});
