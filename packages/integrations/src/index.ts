/**
 * @keyward/integrations — Keyward on the hops a system already has (Node
 * only): sealed messaging (NATS JetStream, RabbitMQ, behind one
 * transport-neutral contract), sealed PostgreSQL columns (context-bound,
 * blind indexes, rotation by rewrap), and sealed HTTP bodies between
 * services (fetch client, fastify plugin). docs/integrations.md is the guide.
 */
export { IntegrationError, isIntegrationError, INTEGRATION_ERROR_CODES, type IntegrationErrorCode } from './errors.js';
export { encodeFrame, decodeFrame, newFrameId, FRAME_VERSION, MAX_FRAME_META_BYTES, type Frame, type FrameMeta } from './frame.js';
export { ReplayGuard, type ReplayGuardOptions, type Reservation } from './replay.js';
export { bindContext, type SealingOptions, type OpeningOptions, type Pairs } from './sealing.js';

export {
  MessageSealer, MessageOpener, messageContext, deliver,
  ENVELOPE_CONTENT_TYPE, KEY_HINT_HEADER, MESSAGE_PURPOSE,
  type MessageRoute, type SealedMessage, type OpenedMessage, type PublishOptions, type SealedPublisher,
  type MessageHandler, type RejectHandler, type ConsumeOptions, type SealedSubscription, type MessageOpenerOptions,
} from './messaging/contract.js';
export { NatsSealedPublisher, NatsSealedConsumer, natsRoute, NATS_TRANSPORT, type NatsBindingOptions, type NatsPublishTarget, type NatsConsumeOptions } from './messaging/nats.js';
export { AmqpSealedPublisher, AmqpSealedConsumer, amqpRoute, AMQP_TRANSPORT, type AmqpTarget, type AmqpConsumeOptions } from './messaging/amqp.js';

export { SealedColumns, readKmsStanza, COLUMN_PURPOSE, type SealedColumnsOptions, type BlindIndexOptions, type ColumnValue } from './pg/columns.js';
export { encodeContainer, decodeContainer, CONTAINER_MAGIC, type Container, type KeyOverride } from './pg/container.js';
export { SealedTable, rewrapColumns, quoteIdent, type Db, type SealedTableOptions, type RewrapOptions, type RewrapStats } from './pg/table.js';

export { SealedHttpClient, type SealedHttpClientOptions, type SealedRequestInit, type SealedResponse } from './http/client.js';
export { sealedHttpPlugin, type SealedHttpServerOptions, type SealedRequestInfo } from './http/fastify.js';
export { REQUEST_HEADER, HTTP_REQUEST_PURPOSE, HTTP_RESPONSE_PURPOSE, requestContext, responseContext } from './http/protocol.js';
