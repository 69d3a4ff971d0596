/**
 * Sealed messaging over NATS JetStream (`nats` client).
 *
 * Bound route: `subject` (the subject the message was published to and
 * delivered on) and, with `bindStream`, `stream` (the stream that stored it:
 * the publisher checks the broker's PubAck names it, the consumer reads it
 * from the delivery info). Publisher and consumer must agree on `bindStream`.
 *
 * Consumption uses a JetStream pull consumer: a handled message is acked; a
 * handler that throws makes it `nak` (redelivered; its replay reservation is
 * released); a refused one (not sealed, wrong subject, replay, stale, not
 * addressed to us) is `term`inated — never redelivered. A key service
 * failure while opening `nak`s (the message may be fine).
 *
 * @example
 * const pub = new NatsSealedPublisher(nc, { kms: { service: kms, key: 'app/orders' } });
 * await pub.publish('orders.created', bytes, { contentType: 'application/json' });
 * const sub = await new NatsSealedConsumer(nc, { kms }).consume('ORDERS', 'billing', async (m) => handle(m.body));
 */
import { headers as natsHeaders, type JetStreamClient, type JsMsg, type NatsConnection } from 'nats';
import { IntegrationError, invalid } from '../errors.js';
import type { SealingOptions } from '../sealing.js';
import {
  deliver, MessageOpener, MessageSealer,
  type ConsumeOptions, type MessageHandler, type MessageOpenerOptions, type MessageRoute, type PublishOptions, type SealedPublisher, type SealedSubscription,
} from './contract.js';

export const NATS_TRANSPORT = 'nats';

export interface NatsBindingOptions {
  /** Also bind the stream name (both sides must set it alike). Default false. */
  readonly bindStream?: boolean;
}

/** The route of a NATS message: its subject, and its stream when bound. */
export function natsRoute(subject: string, stream?: string): MessageRoute {
  if (typeof subject !== 'string' || subject.length === 0) throw invalid('a NATS subject is a non-empty string');
  return { transport: NATS_TRANSPORT, pairs: stream === undefined ? [['subject', subject]] : [['stream', stream], ['subject', subject]] };
}

export interface NatsPublishTarget {
  readonly subject: string;
  /** The stream expected to store it (required with `bindStream`). */
  readonly stream?: string;
}

/** Seals on publish to JetStream. */
export class NatsSealedPublisher implements SealedPublisher<string | NatsPublishTarget> {
  readonly #js: JetStreamClient;
  readonly #sealer: MessageSealer;
  readonly #bindStream: boolean;

  constructor(nc: NatsConnection, options: SealingOptions & NatsBindingOptions) {
    if (!nc || typeof nc.jetstream !== 'function') throw invalid('a NatsConnection is required');
    this.#js = nc.jetstream();
    this.#sealer = new MessageSealer(options);
    this.#bindStream = options.bindStream === true;
  }

  async publish(target: string | NatsPublishTarget, body: Uint8Array, options: PublishOptions = {}): Promise<{ id: string; stream: string; seq: number }> {
    const t = typeof target === 'string' ? { subject: target } : target;
    if (this.#bindStream && !t.stream) throw invalid('bindStream: give the stream the message goes to');
    const sealed = await this.#sealer.seal(natsRoute(t.subject, this.#bindStream ? t.stream : undefined), body, options);
    const h = natsHeaders();
    for (const [k, v] of Object.entries(sealed.headers)) h.set(k, v);
    let ack;
    try {
      ack = await this.#js.publish(t.subject, sealed.payload, { headers: h, ...(this.#bindStream ? { expect: { streamName: t.stream! } } : {}) });
    } catch (e) {
      throw new IntegrationError('KW_INT_TRANSPORT_FAILED', `publishing to ${t.subject} failed`, { cause: e });
    }
    return { id: sealed.id, stream: ack.stream, seq: ack.seq };
  }
}

function headersOf(m: JsMsg): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  if (m.headers) for (const k of m.headers.keys()) out[k.toLowerCase()] = m.headers.get(k);
  return out;
}

export interface NatsConsumeOptions extends ConsumeOptions {
  /** Messages buffered by the pull consumer; default 100. */
  readonly maxMessages?: number;
}

/** Opens on consume from a JetStream (durable or named) pull consumer. */
export class NatsSealedConsumer {
  readonly #js: JetStreamClient;
  readonly opener: MessageOpener;
  readonly #bindStream: boolean;

  constructor(nc: NatsConnection, options: MessageOpenerOptions & NatsBindingOptions) {
    if (!nc || typeof nc.jetstream !== 'function') throw invalid('a NatsConnection is required');
    this.#js = nc.jetstream();
    this.opener = new MessageOpener(options);
    this.#bindStream = options.bindStream === true;
  }

  /** The route a delivery proves: the subject it came on (and its stream). */
  routeOf(m: JsMsg): MessageRoute {
    return natsRoute(m.subject, this.#bindStream ? m.info.stream : undefined);
  }

  /** Consumes `consumer` of `stream` until `stop()`. */
  async consume(stream: string, consumer: string, handler: MessageHandler, options: NatsConsumeOptions = {}): Promise<SealedSubscription> {
    let c;
    try {
      c = await this.#js.consumers.get(stream, consumer);
    } catch (e) {
      throw new IntegrationError('KW_INT_TRANSPORT_FAILED', `no consumer ${consumer} on stream ${stream}`, { cause: e });
    }
    const messages = await c.consume({ max_messages: options.maxMessages ?? 100 });
    const stats = { handled: 0, rejected: 0, failed: 0 };
    const loop = (async () => {
      for await (const m of messages) {
        await deliver(this.opener, this.routeOf(m), m.data, headersOf(m), handler, {
          ack: () => m.ack(),
          retry: () => m.nak(),
          drop: () => m.term(),
        }, stats, options.onReject);
      }
    })();
    return {
      stats,
      stop: async () => {
        messages.stop();
        await loop;
      },
    };
  }
}
