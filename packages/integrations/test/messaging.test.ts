/**
 * The sealing contract of sealed messaging, on the real brokers of this
 * machine: NATS JetStream (a fresh stream per run) and RabbitMQ (fresh
 * exchange and queues per run). Both adapters pass the same contract:
 * the consumer opens with its HPKE identity or through the key service
 * (real key service process, data-key cache), a message re-published to
 * another subject/routing key does not open, a replayed one is refused, a
 * stale one is refused, a plaintext one is refused, and another party's
 * identity cannot open.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { HpkeIdentity } from '@keyward/core';
import amqp from 'amqplib';
import { connect, headers as natsHeaders, type NatsConnection } from 'nats';
import {
  AmqpSealedConsumer, AmqpSealedPublisher, MessageSealer, NatsSealedConsumer, NatsSealedPublisher,
  ENVELOPE_CONTENT_TYPE, amqpRoute, natsRoute,
  type IntegrationError, type IntegrationErrorCode, type MessageRoute, type OpenedMessage, type SealedSubscription,
} from '../src/index.js';
import { AMQP_URL, NATS_URL, canary, enrollPrincipal, findCanaries, runId, startKeyService, utf8, type KeyService, type ServicePrincipal } from './helpers.js';

/** Collects what a consumer handled and refused. */
function collector() {
  const handled: OpenedMessage[] = [];
  const rejected: { code: IntegrationErrorCode; route: MessageRoute }[] = [];
  const waiters: (() => void)[] = [];
  const poke = () => { for (const w of waiters.splice(0)) w(); };
  return {
    handled, rejected,
    handler: (m: OpenedMessage) => { handled.push(m); poke(); },
    onReject: (e: IntegrationError, route: MessageRoute) => { rejected.push({ code: e.code, route }); poke(); },
    async until(pred: () => boolean, what: string, ms = 10_000) {
      const end = Date.now() + ms;
      while (!pred()) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}; handled=${handled.length} rejected=${JSON.stringify(rejected.map((r) => r.code))}`);
        await new Promise<void>((r) => { waiters.push(r); setTimeout(r, 50); });
      }
    },
  };
}

let ks: KeyService;
let producer: ServicePrincipal;
let consumer: ServicePrincipal;
let outsider: ServicePrincipal;
let billing: HpkeIdentity;
let mallory: HpkeIdentity;

before(async () => {
  ks = await startKeyService();
  for (const name of ['msgs', 'other']) await ks.admin('POST', `/v1/keys/app/${name}`, { type: 'aes256' });
  producer = await enrollPrincipal(ks, 'producer', 'app', ['datakey'], ['app/msgs']);
  consumer = await enrollPrincipal(ks, 'consumer', 'app', ['unwrap'], ['app/msgs']);
  outsider = await enrollPrincipal(ks, 'outsider', 'app', ['unwrap'], ['app/other']);
  billing = await HpkeIdentity.generate('x25519');
  mallory = await HpkeIdentity.generate('x25519');
});
after(async () => { await ks?.stop(); });

void describe('NATS JetStream', () => {
  let nc: NatsConnection;
  const stream = `KWT_${runId()}`.toUpperCase();
  const subj = (s: string) => `${stream.toLowerCase()}.${s}`;

  before(async () => {
    nc = await connect({ servers: NATS_URL });
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: stream, subjects: [`${stream.toLowerCase()}.>`] });
  });
  after(async () => {
    const jsm = await nc.jetstreamManager();
    await jsm.streams.delete(stream).catch(() => undefined);
    await nc.drain();
  });

  async function consumerOn(filter: string, name: string) {
    const jsm = await nc.jetstreamManager();
    await jsm.consumers.add(stream, { durable_name: name, ack_policy: 'explicit' as never, filter_subject: filter, ack_wait: 2_000_000_000 });
    return name;
  }

  void test('HPKE recipient: the consumer opens; body, id, ts, content type arrive; the stored message is ciphertext', async () => {
    const secret = canary('nats-hpke');
    const pub = new NatsSealedPublisher(nc, { recipients: [await billing.recipient()] });
    const sent = await pub.publish(subj('orders.created'), utf8(JSON.stringify({ secret })), { contentType: 'application/json' });
    const c = collector();
    const sub = await new NatsSealedConsumer(nc, { identities: [billing] }).consume(stream, await consumerOn(subj('orders.created'), 'hpke'), c.handler, { onReject: c.onReject });
    await c.until(() => c.handled.length === 1, 'the message');
    await sub.stop();
    const m = c.handled[0]!;
    assert.equal(m.id, sent.id);
    assert.equal(m.contentType, 'application/json');
    assert.deepEqual(JSON.parse(Buffer.from(m.body).toString()), { secret });
    assert.ok(Math.abs(m.ts - Date.now()) < 10_000);
    assert.deepEqual(m.route, natsRoute(subj('orders.created')));

    // What the broker stored: headers carry only the content type; the payload does not contain the canary.
    const jsm = await nc.jetstreamManager();
    const stored = await jsm.streams.getMessage(stream, { seq: sent.seq });
    assert.deepEqual(stored.header.keys().sort(), ['content-type']);
    assert.equal(stored.header.get('content-type'), ENVELOPE_CONTENT_TYPE);
    assert.deepEqual(findCanaries(stored.data, [secret]), []);
    assert.equal(Buffer.from(stored.data.subarray(0, 4)).toString(), 'KWRD');
  });

  void test('re-published raw to another subject: refused (KW_INT_CONTEXT_MISMATCH), never handled', async () => {
    const pub = new NatsSealedPublisher(nc, { recipients: [await billing.recipient()] });
    const sent = await pub.publish(subj('payments.in'), utf8('pay 10'));
    const jsm = await nc.jetstreamManager();
    const stored = await jsm.streams.getMessage(stream, { seq: sent.seq });
    // An attacker with broker access copies the stored bytes and headers to another subject.
    const h = natsHeaders();
    h.set('content-type', ENVELOPE_CONTENT_TYPE);
    await nc.jetstream().publish(subj('payments.out'), stored.data, { headers: h });
    const c = collector();
    const sub = await new NatsSealedConsumer(nc, { identities: [billing] }).consume(stream, await consumerOn(subj('payments.out'), 'moved'), c.handler, { onReject: c.onReject });
    await c.until(() => c.rejected.length === 1, 'the refusal');
    await sub.stop();
    assert.equal(c.handled.length, 0);
    assert.equal(c.rejected[0]!.code, 'KW_INT_CONTEXT_MISMATCH');
  });

  void test('replayed (same bytes again on the same subject), plaintext, and not-for-me messages are refused with stable codes', async () => {
    const pub = new NatsSealedPublisher(nc, { recipients: [await billing.recipient()] });
    const sent = await pub.publish(subj('replay.x'), utf8('once'));
    const jsm = await nc.jetstreamManager();
    const stored = await jsm.streams.getMessage(stream, { seq: sent.seq });
    const h = natsHeaders();
    h.set('content-type', ENVELOPE_CONTENT_TYPE);
    await nc.jetstream().publish(subj('replay.x'), stored.data, { headers: h }); // the replay
    await nc.jetstream().publish(subj('replay.x'), utf8('plaintext sneaking in')); // not sealed
    await new NatsSealedPublisher(nc, { recipients: [await mallory.recipient()] }).publish(subj('replay.x'), utf8('for mallory'));
    const c = collector();
    const sub = await new NatsSealedConsumer(nc, { identities: [billing] }).consume(stream, await consumerOn(subj('replay.x'), 'replay'), c.handler, { onReject: c.onReject });
    await c.until(() => c.handled.length + c.rejected.length === 4, 'four deliveries');
    await sub.stop();
    assert.deepEqual(c.handled.map((m) => Buffer.from(m.body).toString()), ['once']);
    assert.deepEqual(c.rejected.map((r) => r.code), ['KW_INT_REPLAY', 'KW_INT_NOT_SEALED', 'KW_INT_OPEN_FAILED']);
    assert.equal(sub.stats.handled, 1);
    assert.equal(sub.stats.rejected, 3);
  });

  void test('stale: a message older than the window is refused; a handler failure redelivers (not a replay)', async () => {
    const pub = new NatsSealedPublisher(nc, { recipients: [await billing.recipient()] });
    await pub.publish(subj('slow.x'), utf8('old news'));
    await new Promise((r) => setTimeout(r, 300));
    const c = collector();
    const sub = await new NatsSealedConsumer(nc, { identities: [billing], replay: { windowMs: 100, maxFutureSkewMs: 0 } })
      .consume(stream, await consumerOn(subj('slow.x'), 'stale'), c.handler, { onReject: c.onReject });
    await c.until(() => c.rejected.length === 1, 'the stale refusal');
    await sub.stop();
    assert.equal(c.rejected[0]!.code, 'KW_INT_STALE');

    await pub.publish(subj('flaky.x'), utf8('try again'));
    let attempts = 0;
    const c2 = collector();
    const sub2 = await new NatsSealedConsumer(nc, { identities: [billing] }).consume(stream, await consumerOn(subj('flaky.x'), 'flaky'), (m) => {
      attempts++;
      if (attempts === 1) throw new Error('transient');
      c2.handler(m);
    }, { onReject: c2.onReject });
    await c2.until(() => c2.handled.length === 1, 'the redelivery');
    await sub2.stop();
    assert.equal(attempts, 2);
    assert.deepEqual(c2.rejected, []);
  });

  void test('through the key service: kms stanza; the cache keeps the service off the hot path; only a principal granted the key opens', async () => {
    const secrets = Array.from({ length: 20 }, (_, i) => canary(`nats-kms-${i}`));
    const pub = new NatsSealedPublisher(nc, { kms: { service: producer.kms, key: 'app/msgs' } });
    for (const s of secrets) await pub.publish(subj('kms.events'), utf8(s));
    assert.equal(producer.cache.stats().sealing.misses, 1, 'one datakey call for 20 messages of one subject');
    assert.equal(producer.cache.stats().sealing.hits, 19);

    const c = collector();
    const sub = await new NatsSealedConsumer(nc, { kms: consumer.kms }).consume(stream, await consumerOn(subj('kms.events'), 'kms'), c.handler, { onReject: c.onReject });
    await c.until(() => c.handled.length === 20, 'twenty messages');
    await sub.stop();
    assert.deepEqual(c.handled.map((m) => Buffer.from(m.body).toString()), secrets);
    assert.equal(consumer.cache.stats().unwrap.misses, 1, 'one unwrap call for 20 messages sharing a stanza');

    // A principal without a grant on app/msgs: the service says 403, the stanza is "not for me".
    const c2 = collector();
    const sub2 = await new NatsSealedConsumer(nc, { kms: outsider.kms }).consume(stream, await consumerOn(subj('kms.events'), 'outsider'), c2.handler, { onReject: c2.onReject });
    await c2.until(() => c2.rejected.length === 20, 'twenty refusals');
    await sub2.stop();
    assert.equal(c2.handled.length, 0);
    assert.ok(c2.rejected.every((r) => r.code === 'KW_INT_OPEN_FAILED'), JSON.stringify(c2.rejected.map((r) => r.code)));

    // The headers name the key (a routing hint), nothing else.
    const jsm = await nc.jetstreamManager();
    const info = await jsm.streams.info(stream);
    const last = await jsm.streams.getMessage(stream, { seq: info.state.last_seq });
    assert.deepEqual(last.header.keys().sort(), ['content-type', 'keyward-key']);
    assert.equal(last.header.get('keyward-key'), 'app/msgs');
  });
});

void describe('RabbitMQ (the same contract)', () => {
  let conn: amqp.ChannelModel;
  let pubCh: amqp.ConfirmChannel;
  let ch: amqp.Channel;
  const id = runId();
  const exchange = `kwt.${id}`;
  const subs: SealedSubscription[] = [];

  before(async () => {
    conn = await amqp.connect(AMQP_URL);
    pubCh = await conn.createConfirmChannel();
    ch = await conn.createChannel();
    await ch.assertExchange(exchange, 'topic', { durable: false, autoDelete: false });
  });
  after(async () => {
    for (const s of subs) await s.stop().catch(() => undefined);
    await ch.deleteExchange(exchange).catch(() => undefined);
    await conn.close();
  });

  async function queue(pattern: string): Promise<string> {
    const q = `kwt.${id}.${pattern}`;
    await ch.assertQueue(q, { exclusive: false, autoDelete: false, durable: false, arguments: { 'x-expires': 600_000 } });
    await ch.bindQueue(q, exchange, pattern);
    return q;
  }

  void test('HPKE and kms: opened by the intended consumer; content is ciphertext on the broker', async () => {
    const a = canary('amqp-hpke');
    const b = canary('amqp-kms');
    const q = await queue('orders.*');
    await new AmqpSealedPublisher(pubCh, { recipients: [await billing.recipient()] }).publish({ exchange, routingKey: 'orders.created' }, utf8(a), { contentType: 'text/plain' });
    await new AmqpSealedPublisher(pubCh, { kms: { service: producer.kms, key: 'app/msgs' } }).publish({ exchange, routingKey: 'orders.created' }, utf8(b));
    // Peek at what the broker holds, raw, then put it back.
    const peek = [await ch.get(q, { noAck: false }), await ch.get(q, { noAck: false })];
    for (const m of peek) {
      assert.ok(m);
      assert.equal(m.properties.contentType, ENVELOPE_CONTENT_TYPE);
      assert.deepEqual(findCanaries(m.content, [a, b]), []);
      assert.deepEqual(findCanaries(JSON.stringify(m.properties), [a, b]), []);
    }
    ch.nackAll(true);
    const c = collector();
    const sub = await new AmqpSealedConsumer(ch, { identities: [billing], kms: consumer.kms }).consume(q, c.handler, { onReject: c.onReject });
    subs.push(sub);
    await c.until(() => c.handled.length === 2, 'two messages');
    assert.deepEqual(c.handled.map((m) => Buffer.from(m.body).toString()).sort(), [a, b].sort());
    assert.deepEqual(c.handled[0]!.route, amqpRoute(exchange, 'orders.created'));
  });

  void test('re-published to another routing key, replayed, plaintext, not for me: refused with the same codes', async () => {
    const q = await queue('moves.*');
    const route = amqpRoute(exchange, 'moves.a');
    const sealed = await new MessageSealer({ recipients: [await billing.recipient()] }).seal(route, utf8('move me'));
    const props = { contentType: ENVELOPE_CONTENT_TYPE };
    const send = (rk: string, payload: Uint8Array, p: object = props) => { pubCh.publish(exchange, rk, Buffer.from(payload), p); };
    send('moves.a', sealed.payload);
    send('moves.b', sealed.payload); // moved to another routing key
    send('moves.a', sealed.payload); // replayed
    send('moves.a', utf8('plain'), {}); // not sealed
    send('moves.a', (await new MessageSealer({ recipients: [await mallory.recipient()] }).seal(route, utf8('x'))).payload);
    await pubCh.waitForConfirms();
    const c = collector();
    const sub = await new AmqpSealedConsumer(ch, { identities: [billing] }).consume(q, c.handler, { onReject: c.onReject });
    subs.push(sub);
    await c.until(() => c.handled.length + c.rejected.length === 5, 'five deliveries');
    assert.deepEqual(c.handled.map((m) => Buffer.from(m.body).toString()), ['move me']);
    assert.deepEqual(c.rejected.map((r) => r.code), ['KW_INT_CONTEXT_MISMATCH', 'KW_INT_REPLAY', 'KW_INT_NOT_SEALED', 'KW_INT_OPEN_FAILED']);
    const q2 = await ch.checkQueue(q);
    assert.equal(q2.messageCount, 0, 'refused messages are not requeued');
  });

  void test('a message sealed for NATS does not open from RabbitMQ (the transport is bound)', async () => {
    const q = await queue('cross.*');
    const forNats = await new MessageSealer({ recipients: [await billing.recipient()] }).seal(natsRoute('cross.a'), utf8('nats only'));
    pubCh.publish(exchange, 'cross.a', Buffer.from(forNats.payload), { contentType: ENVELOPE_CONTENT_TYPE });
    await pubCh.waitForConfirms();
    const c = collector();
    subs.push(await new AmqpSealedConsumer(ch, { identities: [billing] }).consume(q, c.handler, { onReject: c.onReject }));
    await c.until(() => c.rejected.length === 1, 'the refusal');
    assert.equal(c.rejected[0]!.code, 'KW_INT_CONTEXT_MISMATCH');
  });
});
