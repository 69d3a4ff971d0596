/**
 * Sealed messaging over RabbitMQ (AMQP 0-9-1, `amqplib`).
 *
 * Bound route: `exchange` and `routing_key` the message was published with
 * (the default exchange is the empty string; its routing key is the queue
 * name). The consumer takes both from the delivery's fields, which the
 * broker sets, never from properties or headers the sender chose.
 *
 * Publishing uses a confirm channel and resolves on the broker's confirm.
 * Consuming acks handled messages, `nack`s with requeue when the handler
 * throws (the replay reservation is released), and `nack`s without requeue
 * (dead-letter if the queue has one, else dropped) when a delivery is refused.
 *
 * @example
 * const pub = new AmqpSealedPublisher(await conn.createConfirmChannel(), { recipients: [billing] });
 * await pub.publish({ exchange: 'orders', routingKey: 'created' }, bytes);
 * const sub = await new AmqpSealedConsumer(await conn.createChannel(), { identities: [billingId] }).consume('billing-orders', handle);
 */
import type { Channel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import { IntegrationError, invalid } from '../errors.js';
import type { SealingOptions } from '../sealing.js';
import {
  deliver, MessageOpener, MessageSealer,
  type ConsumeOptions, type MessageHandler, type MessageOpenerOptions, type MessageRoute, type PublishOptions, type SealedPublisher, type SealedSubscription,
} from './contract.js';

export const AMQP_TRANSPORT = 'amqp';

export interface AmqpTarget {
  /** '' is the default exchange. */
  readonly exchange: string;
  readonly routingKey: string;
}

export function amqpRoute(exchange: string, routingKey: string): MessageRoute {
  if (typeof exchange !== 'string' || typeof routingKey !== 'string') throw invalid('exchange and routing key are strings');
  return { transport: AMQP_TRANSPORT, pairs: [['exchange', exchange], ['routing_key', routingKey]] };
}

/** Seals on publish through a confirm channel. */
export class AmqpSealedPublisher implements SealedPublisher<AmqpTarget> {
  readonly #ch: ConfirmChannel;
  readonly #sealer: MessageSealer;

  constructor(channel: ConfirmChannel, options: SealingOptions) {
    if (!channel || typeof channel.waitForConfirms !== 'function') throw invalid('a ConfirmChannel is required (createConfirmChannel)');
    this.#ch = channel;
    this.#sealer = new MessageSealer(options);
  }

  async publish(target: AmqpTarget, body: Uint8Array, options: PublishOptions = {}): Promise<{ id: string }> {
    const sealed = await this.#sealer.seal(amqpRoute(target.exchange, target.routingKey), body, options);
    const { 'content-type': contentType, ...headers } = sealed.headers;
    try {
      await new Promise<void>((resolve, reject) => {
        this.#ch.publish(target.exchange, target.routingKey, Buffer.from(sealed.payload.buffer, sealed.payload.byteOffset, sealed.payload.byteLength), {
          contentType, headers, persistent: true, mandatory: false,
        }, (err: unknown) => (err ? reject(err instanceof Error ? err : new Error('nacked by the broker')) : resolve()));
      });
    } catch (e) {
      throw new IntegrationError('KW_INT_TRANSPORT_FAILED', `publishing to ${target.exchange}/${target.routingKey} failed`, { cause: e });
    }
    return { id: sealed.id };
  }
}

function headersOf(m: ConsumeMessage): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(m.properties.headers ?? {})) if (typeof v === 'string') out[k.toLowerCase()] = v;
  out['content-type'] = typeof m.properties.contentType === 'string' ? m.properties.contentType : undefined;
  return out;
}

export interface AmqpConsumeOptions extends ConsumeOptions {
  /** Unacknowledged deliveries at once (basic.qos); default 100. */
  readonly prefetch?: number;
}

/** Opens on consume from a queue. Deliveries are handled one at a time, in order. */
export class AmqpSealedConsumer {
  readonly #ch: Channel;
  readonly opener: MessageOpener;

  constructor(channel: Channel, options: MessageOpenerOptions) {
    if (!channel || typeof channel.consume !== 'function') throw invalid('an amqplib Channel is required');
    this.#ch = channel;
    this.opener = new MessageOpener(options);
  }

  routeOf(m: ConsumeMessage): MessageRoute {
    return amqpRoute(m.fields.exchange, m.fields.routingKey);
  }

  async consume(queue: string, handler: MessageHandler, options: AmqpConsumeOptions = {}): Promise<SealedSubscription> {
    const ch = this.#ch;
    const stats = { handled: 0, rejected: 0, failed: 0 };
    let chain: Promise<void> = Promise.resolve();
    try {
      await ch.prefetch(options.prefetch ?? 100);
      const { consumerTag } = await ch.consume(queue, (m) => {
        if (m === null) return; // cancelled by the broker
        chain = chain.then(() => deliver(this.opener, this.routeOf(m), m.content, headersOf(m), handler, {
          ack: () => ch.ack(m),
          retry: () => ch.nack(m, false, true),
          drop: () => ch.nack(m, false, false),
        }, stats, options.onReject)).catch(() => undefined);
      }, { noAck: false });
      return {
        stats,
        stop: async () => {
          await ch.cancel(consumerTag);
          await chain;
        },
      };
    } catch (e) {
      throw new IntegrationError('KW_INT_TRANSPORT_FAILED', `consuming ${queue} failed`, { cause: e });
    }
  }
}
