/**
 * A compromised API process talking to the real keyholder: it may send
 * anything. It cannot swap wrapped blobs between keys or versions, replay a
 * signed request, alter what the caller signed, redirect a data key to its
 * own recipient, or run an operation without (the right) audit event; and
 * every refusal leaves the audit frontier untouched.
 *
 * Signatures are the real RFC 9421 profile of @keyward/client (signRequest /
 * verifyRequest), not a stub.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { HttpSigRequestVerifier } from '../../src/keyholder/service.js';
import {
  EventLog, b64u, generate, identity, makeInit, newDevice, openReleased, ref, rejectsCode, signedRequest, startKeyholder, unb64u, unsealWith, utf8,
  type Running, type Stored, type WireSignedRequest,
} from './helpers.js';

void describe('a compromised API cannot make the keyholder misbehave', () => {
  let kh: Running;
  const log = new EventLog();
  const device = newDevice();
  let alice: Awaited<ReturnType<typeof identity>>;
  let mallory: Awaited<ReturnType<typeof identity>>;
  let orders1: Stored;
  let orders2: Stored;
  let invoices1: Stored;
  let wrappedOrders: string;
  const context = { tenant: '42' };

  /** An unwrap the API relays for alice (event made for the next index). */
  const unwrapCall = (o: { version?: Stored; wrapped?: string; recipient?: string; request: WireSignedRequest; ctx?: Record<string, string>; event?: string }) =>
    kh.client.call('unwrap', {
      event: o.event ?? b64u(log.make({ op: 'data.unwrap', target: { key: (o.version ?? orders1).key, version: (o.version ?? orders1).version } })),
      version: o.version ?? orders1,
      context: o.ctx ?? context,
      wrapped: o.wrapped ?? wrappedOrders,
      recipient: o.recipient ?? alice.recipient,
      request: o.request,
    });
  const unwrapBody = () => ({ key: 'billing/orders', recipient: alice.recipient, context, wrapped: wrappedOrders });

  const appended = async () => (await kh.client.call('status', {})).audit.appended;

  before(async () => {
    const init = await makeInit(3, 2);
    [kh, alice, mallory] = await Promise.all([startKeyholder(), identity(), identity()]);
    await kh.client.call('init-state', { state: init.state });
    await unsealWith(kh.client, init.shares.slice(1, 3));
    orders1 = await generate(kh.client, log, ref());
    orders2 = await generate(kh.client, log, ref({ version: 2 }));
    invoices1 = await generate(kh.client, log, ref({ key: 'invoices' }));
    const s = signedRequest(device, { key: 'billing/orders', recipient: alice.recipient, context });
    const event = log.make({ op: 'data.datakey', target: { key: 'orders', version: 1 } });
    wrappedOrders = (await kh.client.call('datakey', { event: b64u(event), version: orders1, context, recipient: alice.recipient, request: s.request })).wrapped;
    log.commit(event);
  });
  after(async () => { await kh.stop(); });

  void test('wrapped key versions cannot be swapped between keys, versions or types', async () => {
    const before = await appended();
    const s = () => signedRequest(device, unwrapBody()).request;
    // invoices' blob presented as orders v1
    await rejectsCode(() => unwrapCall({ version: { ...orders1, wrapped: invoices1.wrapped }, request: s() }), 'KW_WRAPPED_KEY_MISMATCH');
    // orders v1's blob presented as orders v2
    await rejectsCode(() => unwrapCall({ version: { ...orders2, wrapped: orders1.wrapped }, request: s() }), 'KW_WRAPPED_KEY_MISMATCH');
    // an aes256 blob presented as an hmac key
    await rejectsCode(() => kh.client.call('mac', { event: b64u(log.make({ op: 'data.mac', target: { key: 'orders', version: 1 } })), version: { ...orders1, type: 'hmac-sha256' }, message: '' }), 'KW_WRAPPED_KEY_MISMATCH');
    assert.equal(await appended(), before, 'refused operations append nothing');
  });

  void test('wrapped data keys cannot be moved to another key, version or context', async () => {
    const before = await appended();
    const body = (over: Record<string, unknown> = {}) => signedRequest(device, { recipient: alice.recipient, ...over }).request;
    await rejectsCode(() => unwrapCall({ version: invoices1, request: body() }), 'KW_WRAPPED_KEY_MISMATCH');
    await rejectsCode(() => unwrapCall({ version: orders2, request: body() }), 'KW_WRAPPED_KEY_MISMATCH');
    await rejectsCode(() => unwrapCall({ ctx: { tenant: '43' }, request: body() }), 'KW_WRAPPED_KEY_MISMATCH');
    await rejectsCode(() => kh.client.call('rewrap', { event: b64u(log.make({ op: 'data.rewrap', target: { key: 'orders' } })), from: orders1, to: invoices1, context, wrapped: wrappedOrders }), 'KW_INVALID_ARGUMENT');
    assert.equal(await appended(), before);
  });

  void test('the data key goes only to the recipient named in the signed body', async () => {
    const before = await appended();
    const signed = signedRequest(device, unwrapBody());
    // The API substitutes its own recipient: refused before the signature (and its nonce) is even checked.
    await rejectsCode(() => unwrapCall({ recipient: mallory.recipient, request: signed.request }), 'KW_REQUEST_MISMATCH', 'recipient');
    // The API also edits the body to name its recipient: the body digest no longer matches the signature.
    const forgedBody = { ...unwrapBody(), recipient: mallory.recipient };
    await rejectsCode(() => unwrapCall({ recipient: mallory.recipient, request: { ...signed.request, body: b64u(utf8(JSON.stringify(forgedBody))) } }), 'KW_REQUEST_UNAUTHENTICATED');
    // ... and recomputes Content-Digest: the signature (which covers it) fails.
    const { contentDigest } = await import('@keyward/client');
    const headers = { ...signed.request.headers, 'Content-Digest': contentDigest(utf8(JSON.stringify(forgedBody))) };
    await rejectsCode(() => unwrapCall({ recipient: mallory.recipient, request: { ...signed.request, headers, body: b64u(utf8(JSON.stringify(forgedBody))) } }), 'KW_REQUEST_UNAUTHENTICATED');
    // ... or signs with its own key but relays alice's device record: the signature does not verify under alice's key.
    const api = newDevice('device-alice', 'alice');
    const own = signedRequest(api, { ...unwrapBody(), recipient: mallory.recipient });
    await rejectsCode(() => unwrapCall({ recipient: mallory.recipient, request: { ...own.request, device: signed.request.device } }), 'KW_REQUEST_UNAUTHENTICATED');
    assert.equal(await appended(), before);

    // The untouched request still works (the refused attempts did not spend its nonce) and opens only for alice.
    const event = log.make({ op: 'data.unwrap', target: { key: 'orders', version: 1 } });
    const r = await unwrapCall({ request: signed.request, event: b64u(event) });
    log.commit(event);
    const dk = await openReleased(r.sealed, alice.id, signed.hash, ref(), context);
    assert.equal(dk.length, 32);
    await assert.rejects(() => openReleased(r.sealed, mallory.id, signed.hash, ref(), context));
  });

  void test('a signed request is used once: a replay is refused', async () => {
    const signed = signedRequest(device, unwrapBody());
    const event = log.make({ op: 'data.unwrap', target: { key: 'orders', version: 1 } });
    await unwrapCall({ request: signed.request, event: b64u(event) });
    log.commit(event);
    const before = await appended();
    await rejectsCode(() => unwrapCall({ request: signed.request }), 'KW_REQUEST_REPLAYED');
    // Also as another op (the nonce is per device key, whatever the op).
    await rejectsCode(() => kh.client.call('datakey', { event: b64u(log.make({ op: 'data.datakey', target: { key: 'orders', version: 1 } })), version: orders1, context, recipient: alice.recipient, request: signed.request }), 'KW_REQUEST_REPLAYED');
    assert.equal(await appended(), before);
  });

  void test('any change to what the caller signed is refused', async () => {
    const before = await appended();
    const signed = signedRequest(device, { ...unwrapBody(), version: 1 });
    const body = (over: Record<string, unknown>) => b64u(utf8(JSON.stringify({ ...unwrapBody(), version: 1, ...over })));
    // The body says one key / version / context / blob, the API asks for another (checked before the nonce is spent).
    await rejectsCode(() => unwrapCall({ version: orders2, request: signed.request }), 'KW_REQUEST_MISMATCH', 'version');
    await rejectsCode(() => unwrapCall({ ctx: { tenant: '43' }, request: signed.request }), 'KW_REQUEST_MISMATCH', 'context');
    await rejectsCode(() => unwrapCall({ version: invoices1, request: signed.request }), 'KW_REQUEST_MISMATCH', 'key');
    await rejectsCode(() => unwrapCall({ wrapped: b64u(new Uint8Array(81)), request: signed.request }), 'KW_REQUEST_MISMATCH', 'wrapped');
    // Altered body, method, target, or a stripped signature.
    await rejectsCode(() => unwrapCall({ request: { ...signed.request, body: body({ extra: 1 }) } }), 'KW_REQUEST_UNAUTHENTICATED');
    await rejectsCode(() => unwrapCall({ request: { ...signed.request, method: 'PUT' } }), 'KW_REQUEST_UNAUTHENTICATED');
    await rejectsCode(() => unwrapCall({ request: { ...signed.request, url: 'https://kms.test/v1/ns/billing/keys/invoices:unwrap' } }), 'KW_REQUEST_UNAUTHENTICATED');
    const { Signature: _s, ...unsigned } = signed.request.headers as Record<string, string>;
    await rejectsCode(() => unwrapCall({ request: { ...signed.request, headers: unsigned } }), 'KW_REQUEST_UNAUTHENTICATED');
    // Too old (outside the keyholder's time window).
    const stale = signedRequest(device, unwrapBody(), { created: Math.floor(Date.now() / 1000) - 3600 });
    await rejectsCode(() => unwrapCall({ request: stale.request }), 'KW_REQUEST_UNAUTHENTICATED');
    // Not JSON, or without a recipient: nothing to check the recipient against.
    await rejectsCode(() => unwrapCall({ request: { ...signed.request, body: b64u(utf8('recipient=x')) } }), 'KW_REQUEST_MISMATCH', 'body');
    await rejectsCode(() => unwrapCall({ request: signedRequest(device, { key: 'billing/orders' }).request }), 'KW_REQUEST_MISMATCH', 'recipient');
    assert.equal(await appended(), before);
    // The original, untouched, still verifies.
    const event = log.make({ op: 'data.unwrap', target: { key: 'orders', version: 1 } });
    await unwrapCall({ request: signed.request, event: b64u(event) });
    log.commit(event);
  });

  void test('no operation without its own event', async () => {
    const before = await appended();
    const req = () => signedRequest(device, unwrapBody()).request;
    const make = (over: Parameters<EventLog['make']>[0]) => b64u(log.make(over));
    const base = { op: 'data.unwrap', target: { key: 'orders', version: 1 } };
    // Missing, empty, non-canonical, not an object.
    await rejectsCode(() => kh.client.call('unwrap', { version: orders1, context, wrapped: wrappedOrders, recipient: alice.recipient, request: req() } as never), 'KW_INVALID_ARGUMENT');
    await rejectsCode(() => unwrapCall({ request: req(), event: '' }), 'KW_INVALID_ARGUMENT');
    const canonical = new TextDecoder().decode(log.make(base));
    await rejectsCode(() => unwrapCall({ request: req(), event: b64u(utf8(` ${canonical}`)) }), 'KW_INVALID_ARGUMENT', 'event');
    await rejectsCode(() => unwrapCall({ request: req(), event: b64u(utf8('[1,2]')) }), 'KW_INVALID_ARGUMENT', 'event');
    // Another operation's event, a denial, another namespace, key or version.
    await rejectsCode(() => unwrapCall({ request: req(), event: make({ ...base, op: 'data.datakey' }) }), 'KW_INVALID_ARGUMENT', 'event.op');
    await rejectsCode(() => unwrapCall({ request: req(), event: make({ ...base, outcome: 'denied' }) }), 'KW_INVALID_ARGUMENT', 'event.outcome');
    await rejectsCode(() => unwrapCall({ request: req(), event: make({ ...base, ns: 'payroll' }) }), 'KW_INVALID_ARGUMENT', 'event.ns');
    await rejectsCode(() => unwrapCall({ request: req(), event: make({ ...base, target: { key: 'invoices', version: 1 } }) }), 'KW_INVALID_ARGUMENT', 'event.target');
    await rejectsCode(() => unwrapCall({ request: req(), event: make({ ...base, target: { key: 'orders', version: 2 } }) }), 'KW_INVALID_ARGUMENT', 'event.target');
    // An event numbered for another position in the log.
    await rejectsCode(() => unwrapCall({ request: req(), event: make({ ...base, index: log.next + 1 }) }), 'KW_AUDIT_CONFLICT', 'event.index');
    assert.equal(await appended(), before);
  });

  void test('nothing the protocol does not name can be asked for: no plaintext release, no unknown fields', async () => {
    const s = signedRequest(device, { recipient: alice.recipient });
    await rejectsCode(() => kh.client.call('datakey', {
      event: b64u(log.make({ op: 'data.datakey', target: { key: 'orders', version: 1 } })),
      version: orders1, recipient: alice.recipient, request: s.request, releasePlaintext: true,
    } as never), 'KW_INVALID_ARGUMENT');
    // An API that asks for the data key sealed to a signing key, or to garbage.
    const s2 = signedRequest(device, { recipient: 'kwed25519xyz' });
    await rejectsCode(() => kh.client.call('datakey', {
      event: b64u(log.make({ op: 'data.datakey', target: { key: 'orders', version: 1 } })),
      version: orders1, recipient: 'kwed25519xyz', request: s2.request,
    }), 'KW_INVALID_ARGUMENT');
    assert.equal(unb64u(wrappedOrders).length, 81);
  });
});

void describe('HttpSigRequestVerifier (in process)', () => {
  const device = newDevice();
  const record = { keyId: device.keyId, principal: device.principal, publicKey: device.publicKey };
  const relay = (s: ReturnType<typeof signedRequest>) => ({ ...s.request, body: unb64u(s.request.body) });

  void test('verifies, binds the request hash, and refuses a replay', async () => {
    const v = new HttpSigRequestVerifier();
    const s = signedRequest(device, { recipient: 'kwx25519…' });
    const caller = await v.verify(relay(s), record);
    assert.equal(caller.keyId, device.keyId);
    assert.equal(caller.principal, 'alice');
    assert.deepEqual(caller.requestHash, s.hash);
    await rejectsCode(() => v.verify(relay(s), record), 'KW_REQUEST_REPLAYED');
  });

  void test('a request signed before the keyholder started is refused (the old process may have seen its nonce)', async () => {
    const now = Math.floor(Date.now() / 1000);
    const s = signedRequest(device, { recipient: 'kwx25519…' }, { created: now - 10 });
    await rejectsCode(() => new HttpSigRequestVerifier({ startedAt: now - 5 }).verify(relay(s), record), 'KW_REQUEST_UNAUTHENTICATED');
    const fresh = new HttpSigRequestVerifier({ startedAt: now - 20 });
    assert.equal((await fresh.verify(relay(s), record)).created, now - 10);
  });
});
