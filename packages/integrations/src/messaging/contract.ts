/**
 * The transport-neutral contract of sealed messaging: seal on publish, open
 * on consume. An adapter (NATS JetStream, RabbitMQ here; Kafka or SQS
 * tomorrow) only moves bytes and says where a delivery came from; sealing,
 * binding and replay checks live here, once.
 *
 * ## What travels
 *
 * - payload: a Keyward envelope of a sealed frame `{ id, ts, meta, body }`
 *   (frame.ts); `meta.ct` is the body's content type — inside, not visible.
 * - headers: only `content-type: application/vnd.keyward.envelope` and, when
 *   sealed through the key service, `keyward-key: ns/name` (a routing hint the
 *   envelope header shows anyway). Nothing derived from the plaintext.
 *
 * ## What is bound (encryption context, visible and authenticated)
 *
 * `integration=message/v1`, `transport=<name>`, then the adapter's route
 * pairs (NATS: `subject`, and `stream` when bound; AMQP: `exchange`,
 * `routing_key`), then the application's pairs. The consumer rebuilds the
 * route from the broker's delivery metadata (the subject it was delivered
 * on), never from headers, so a message re-published elsewhere fails to open
 * with `KW_INT_CONTEXT_MISMATCH`.
 */
import type { Pairs, SealingOptions, OpeningOptions } from '../sealing.js';
import { bindContext, checkOpening, checkSealing, openWith, sealWith } from '../sealing.js';
import { decodeFrame, encodeFrame } from '../frame.js';
import { IntegrationError, invalid } from '../errors.js';
import { ReplayGuard, type Reservation, type ReplayGuardOptions } from '../replay.js';

/** The content type of every sealed payload (on the wire, in a header). */
export const ENVELOPE_CONTENT_TYPE = 'application/vnd.keyward.envelope';
/** Header naming the key service key (`ns/name`) of a kms-sealed message. */
export const KEY_HINT_HEADER = 'keyward-key';
export const MESSAGE_PURPOSE = 'message/v1';

/** Where a message goes (publish) or came from (consume), as bound in the context. */
export interface MessageRoute {
  /** The transport's name: `nats`, `amqp`, … */
  readonly transport: string;
  /** The transport's routing pairs, in a fixed order. */
  readonly pairs: Pairs;
}

/** A sealed message, ready for any transport. */
export interface SealedMessage {
  readonly payload: Uint8Array;
  /** Only what routing needs (see the module comment). */
  readonly headers: Readonly<Record<string, string>>;
  /** The sealed id (also inside the envelope). Not sent in the clear. */
  readonly id: string;
  readonly ts: number;
}

/** A message that opened, passed the binding and the replay checks. */
export interface OpenedMessage {
  readonly id: string;
  readonly ts: number;
  readonly body: Uint8Array;
  /** The body's content type as sealed by the sender, if it gave one. */
  readonly contentType: string | undefined;
  readonly route: MessageRoute;
  /** The signer's key id when the message was signed and verified. */
  readonly signer: string | undefined;
}

export interface PublishOptions {
  /** The body's content type, sealed inside the frame. */
  readonly contentType?: string;
}

/** Any adapter's publish side. */
export interface SealedPublisher<Target> {
  /** Seals `body` for `target` and publishes it; resolves once the broker accepted it. */
  publish(target: Target, body: Uint8Array, options?: PublishOptions): Promise<{ readonly id: string }>;
}

/** What a consumer does with each opened message; a throw means "not handled" (redelivered). */
export type MessageHandler = (message: OpenedMessage) => Promise<void> | void;
/** Called for every delivery that is refused (not sealed, wrong destination, replay, stale…); it is then dropped. */
export type RejectHandler = (error: IntegrationError, route: MessageRoute) => void;

export interface ConsumeOptions {
  readonly onReject?: RejectHandler;
}

/** A running consumption. */
export interface SealedSubscription {
  /** Stops consuming (messages in flight finish first). */
  stop(): Promise<void>;
  readonly stats: { readonly handled: number; readonly rejected: number; readonly failed: number };
}

/** Seals messages for routes. One per publisher; stateless apart from the key service cache. */
export class MessageSealer {
  readonly #o: SealingOptions;

  constructor(options: SealingOptions) {
    this.#o = checkSealing(options, 'message sealer');
  }

  async seal(route: MessageRoute, body: Uint8Array, options: PublishOptions = {}): Promise<SealedMessage> {
    if (!(body instanceof Uint8Array)) throw invalid('the message body must be a Uint8Array');
    const frame = encodeFrame({ body, ...(options.contentType !== undefined ? { meta: { ct: options.contentType } } : {}) });
    const payload = await sealWith(this.#o, frame.bytes, messageContext(route, this.#o.context), 'message');
    frame.bytes.fill(0);
    const headers: Record<string, string> = { 'content-type': ENVELOPE_CONTENT_TYPE };
    if (this.#o.kms) headers[KEY_HINT_HEADER] = this.#o.kms.key;
    return { payload, headers, id: frame.id, ts: frame.ts };
  }
}

export interface MessageOpenerOptions extends OpeningOptions {
  /** The replay guard (shared by every consumer of this opener), or options for a new one. */
  readonly replay?: ReplayGuard | ReplayGuardOptions;
}

/** Opens messages delivered on routes, with replay protection. */
export class MessageOpener {
  readonly #o: OpeningOptions;
  readonly replay: ReplayGuard;

  constructor(options: MessageOpenerOptions) {
    this.#o = checkOpening(options, 'message opener');
    this.replay = options.replay instanceof ReplayGuard ? options.replay : new ReplayGuard(options.replay);
  }

  /**
   * Opens `payload` delivered on `route`: envelope (bound to the route), frame,
   * then the replay check, which reserves the id. The caller commits the
   * reservation once the message is handled, or releases it for a redelivery.
   */
  async open(route: MessageRoute, payload: Uint8Array, headers?: Readonly<Record<string, string | undefined>>): Promise<{ message: OpenedMessage; reservation: Reservation }> {
    const ct = headers?.['content-type'];
    if (ct !== undefined && ct !== ENVELOPE_CONTENT_TYPE) throw new IntegrationError('KW_INT_NOT_SEALED', `the message content type is ${JSON.stringify(ct)}, not a sealed envelope`);
    const opened = await openWith(this.#o, payload, messageContext(route, this.#o.context), 'the message');
    const frame = decodeFrame(opened.plaintext);
    const reservation = this.replay.reserve(frame.id, frame.ts);
    return {
      message: {
        id: frame.id, ts: frame.ts, body: frame.body, contentType: frame.meta.ct, route,
        signer: opened.signature?.verified ? opened.signature.keyId : undefined,
      },
      reservation,
    };
  }
}

/** The encryption context of a message on `route` (module comment). */
export function messageContext(route: MessageRoute, extra: OpeningOptions['context']): Pairs {
  if (!route || typeof route.transport !== 'string' || route.transport.length === 0) throw invalid('a route names its transport');
  return bindContext([['integration', MESSAGE_PURPOSE], ['transport', route.transport], ...route.pairs], extra);
}

/**
 * The consume loop every adapter shares: open, check, hand over, then
 * acknowledge (handled), redeliver (handler threw) or drop (refused).
 */
export async function deliver(
  opener: MessageOpener,
  route: MessageRoute,
  payload: Uint8Array,
  headers: Readonly<Record<string, string | undefined>>,
  handler: MessageHandler,
  acts: { ack(): void | Promise<void>; retry(): void | Promise<void>; drop(): void | Promise<void> },
  stats: { handled: number; rejected: number; failed: number },
  onReject: RejectHandler | undefined,
): Promise<void> {
  let opened;
  try {
    opened = await opener.open(route, payload, headers);
  } catch (e) {
    if (e instanceof IntegrationError && e.code !== 'KW_INT_KEY_SERVICE_FAILED') {
      stats.rejected++;
      onReject?.(e, route);
      await acts.drop();
      return;
    }
    // The key service or something unexpected failed: the message may be fine; let the broker redeliver.
    stats.failed++;
    if (e instanceof IntegrationError) onReject?.(e, route);
    await acts.retry();
    return;
  }
  try {
    await handler(opened.message);
  } catch {
    opened.reservation.release();
    stats.failed++;
    await acts.retry();
    return;
  }
  opened.reservation.commit();
  stats.handled++;
  await acts.ack();
}
