/**
 * redis-streams-rpc: typed, bidirectional RPC over Redis Streams.
 *
 * @packageDocumentation
 */
export { RPCChannel, DEFAULT_CHANNEL_OPTIONS } from './channel/rpc-channel.js';
export type { RPCChannelOptions, RPCChannelEvents, RPCStats, RemoteStacksOption } from './channel/rpc-channel.js';
export { getRequestContext } from './channel/request-context.js';
export type { RequestContext } from './channel/request-context.js';
export { DIAGNOSTICS_CHANNELS } from './channel/diagnostics.js';
export type { RPCCallEvent, RPCHandleEvent, RPCChannelEvent, RPCEndpointInfo } from './channel/diagnostics.js';
export type { RemoteAPI, NotifyAPI, RemoteMethod, NotifyMethod, CallOptions, AnyFunction } from './channel/types.js';

export { emptyIoStats } from './io/io-interface.js';
export type {
  IoInterface,
  IoInboundMessage,
  IoOutboundMessage,
  IoReceipt,
  IoUndeliverable,
  IoLane,
  IoCapabilities,
  IoStats,
  IoGauges,
  IoEvents,
  EventMap,
} from './io/io-interface.js';
export { DEFAULT_DRAIN_GRACE_MS } from './io/drain.js';
export type { DrainOptions } from './io/drain.js';
export { defaultLogger } from './io/typed-emitter.js';
export type { Logger } from './io/typed-emitter.js';

export { MemoryIO, createMemoryIoPair, DEFAULT_MEMORY_IO_OPTIONS } from './memory/memory-io.js';
export type { MemoryIOOptions } from './memory/memory-io.js';

export { superjsonSerializer, jsonSerializer } from './protocol/serializer.js';
export type { Serializer, SerializationOption } from './protocol/serializer.js';
export { PROTOCOL_VERSION, MessageKind } from './protocol/envelope.js';
export type { MessageKindTag, Metadata, ProtocolVersion } from './protocol/envelope.js';

export {
  RPCError,
  RPCTimeoutError,
  RPCChannelClosedError,
  RPCMethodNotFoundError,
  RPCProtocolError,
  RPCDeliveryError,
  RPCInvalidArgumentError,
  RPCQueueOverflowError,
  RPCSerializationError,
  RPCPayloadTooLargeError,
  RPCSignatureError,
  RedisStreamsConnectionError,
  RedisStreamsPermissionError,
  RedisStreamsDestroyedError,
  RedisStreamsNotFoundError,
  RedisStreamsModeMismatchError,
} from './errors.js';
export type { RPCErrorCode, RPCErrorOptions, RPCSignatureProblem, RedisStreamsServeMode } from './errors.js';

export { RedisStreamsIO } from './redis/redis-streams-io.js';
export type { RedisStreamsIOEvents, StreamInfo, StreamEntry } from './redis/redis-streams-io.js';
export { DEFAULT_REDIS_STREAMS_OPTIONS, MAX_WRITE_BATCH } from './redis/options.js';
export type { RedisStreamsIOOptions } from './redis/options.js';
export { DEFAULT_SIGNING_OPTIONS, MIN_SECRET_BYTES, MAX_REMEMBERED_SIGNATURES } from './redis/signing.js';
export type { SigningOptions } from './redis/signing.js';

export { StreamInspector, inspect, redriveDeadLetters } from './redis/inspect/inspector.js';
export { DEFAULT_INSPECTOR_OPTIONS } from './redis/inspect/options.js';
export type { StreamInspectorOptions } from './redis/inspect/options.js';
export type { PendingQuery } from './redis/inspect/status.js';
export type { DeadLetterQuery, DeadLetterSelection } from './redis/inspect/dead-letters.js';
export type { TailOptions } from './redis/inspect/tail.js';
export type {
  StreamStatus,
  RequestStreamStatus,
  GroupStatus,
  ConsumerStatus,
  InboxStatus,
  DeadLetterSummary,
  PendingEntry,
  InspectedRequest,
  UndecodableMessage,
  DeadLetter,
  DeadLetterDetail,
  RedriveResult,
  RedrivenRequest,
  TrimResult,
  TailEvent,
} from './redis/inspect/types.js';
