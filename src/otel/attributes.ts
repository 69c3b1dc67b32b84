/**
 * Attribute names and values the OpenTelemetry instrumentation writes
 * (messaging and RPC semantic conventions), in one place so the README table
 * and the code cannot drift apart.
 *
 * @module
 */
import type { Attributes } from '@opentelemetry/api';
import type { RPCCallEvent, RPCEndpointInfo, RPCHandleEvent } from '../channel/diagnostics.js';

/**
 * `messaging.system`: Redis Streams is not among the conventions' well-known
 * systems, so it gets its own lowercase name, distinct from ioredis'
 * instrumentation (`db.system` `redis`, one span per command).
 */
export const MESSAGING_SYSTEM = 'redis_streams';
/** `rpc.system`: this library's protocol. */
export const RPC_SYSTEM = 'redis_streams_rpc';

/** Attribute keys. */
export const ATTR = {
  /** `redis_streams` ({@link MESSAGING_SYSTEM}). */
  messagingSystem: 'messaging.system',
  /** The request stream. */
  destination: 'messaging.destination.name',
  /** `send` (caller) or `process` (worker). */
  operationType: 'messaging.operation.type',
  /** `call`, `notify` (caller) or `handle` (worker). */
  operationName: 'messaging.operation.name',
  /** The consumer group (load-balanced workers). */
  consumerGroup: 'messaging.consumer.group.name',
  /** The Redis stream entry id (worker). */
  messageId: 'messaging.message.id',
  /** The call id, shared by both sides (the answer's correlation id). */
  conversationId: 'messaging.message.conversation_id',
  /** UTF-8 bytes of the encoded request. */
  bodySize: 'messaging.message.body.size',
  /** This endpoint's id (its session id on Redis). */
  clientId: 'messaging.client.id',
  /** `redis_streams_rpc` ({@link RPC_SYSTEM}). */
  rpcSystem: 'rpc.system',
  /** The request stream, as the RPC service. */
  rpcService: 'rpc.service',
  /** The dotted method path, e.g. `math.add`. */
  rpcMethod: 'rpc.method',
  /** The error's class name, on failure. */
  errorType: 'error.type',
  /** Not a convention: how the call ended (`ok`, `error`, `timeout`). */
  outcome: 'redis_streams_rpc.outcome',
  /** Not a convention: `call` or `notification`. */
  kind: 'redis_streams_rpc.kind',
} as const;

/** The span name of both sides of a call: `<stream>/<method>`, as RPC's `<service>/<method>`. */
export function spanName(event: RPCEndpointInfo & { method: string }): string {
  return `${event.destination}/${event.method}`;
}

/** Attributes of a caller's span. */
export function callSpanAttributes(event: RPCCallEvent): Attributes {
  return {
    [ATTR.messagingSystem]: MESSAGING_SYSTEM,
    [ATTR.destination]: event.destination,
    [ATTR.operationType]: 'send',
    [ATTR.operationName]: event.notification ? 'notify' : 'call',
    [ATTR.conversationId]: event.id,
    [ATTR.clientId]: event.endpoint,
    [ATTR.rpcSystem]: RPC_SYSTEM,
    [ATTR.rpcService]: event.destination,
    [ATTR.rpcMethod]: event.method,
  };
}

/** Attributes of a worker's span. */
export function handleSpanAttributes(event: RPCHandleEvent): Attributes {
  const attributes: Attributes = {
    [ATTR.messagingSystem]: MESSAGING_SYSTEM,
    [ATTR.destination]: event.destination,
    [ATTR.operationType]: 'process',
    [ATTR.operationName]: 'handle',
    [ATTR.conversationId]: event.id,
    [ATTR.bodySize]: event.bytes,
    [ATTR.clientId]: event.endpoint,
    [ATTR.rpcSystem]: RPC_SYSTEM,
    [ATTR.rpcService]: event.destination,
    [ATTR.rpcMethod]: event.method,
  };
  if (event.group !== undefined) attributes[ATTR.consumerGroup] = event.group;
  if (event.messageId !== undefined) attributes[ATTR.messageId] = event.messageId;
  return attributes;
}

/** Attributes of the duration and count metrics of one call or handler run. */
export function metricAttributes(event: RPCEndpointInfo & { method: string; notification: boolean }, error: Error | undefined, outcome: string): Attributes {
  const attributes: Attributes = {
    [ATTR.rpcSystem]: RPC_SYSTEM,
    [ATTR.rpcMethod]: event.method,
    [ATTR.destination]: event.destination,
    [ATTR.kind]: event.notification ? 'notification' : 'call',
    [ATTR.outcome]: outcome,
  };
  if (event.group !== undefined) attributes[ATTR.consumerGroup] = event.group;
  if (error !== undefined) attributes[ATTR.errorType] = errorType(error);
  return attributes;
}

/** `error.type`: the error's class name (`RPCTimeoutError`, `TypeError`...), low-cardinality. */
export function errorType(error: Error): string {
  return typeof error.name === 'string' && error.name !== '' ? error.name : 'Error';
}
