/**
 * Instrumentation seams: `node:diagnostics_channel` channels published at the
 * few places where a call starts, is written and settles (calling side) and
 * where a request's handler starts and ends (serving side). Nothing is built
 * or published while nobody subscribes: each site checks `hasSubscribers`
 * first, so the hot path is unchanged when instrumentation is off. The
 * OpenTelemetry entry point (`redis-streams-rpc/otel`) subscribes here; any
 * other tool can too.
 *
 * One event object per call (and one per handler run) is published to every
 * phase of it, so a subscriber can keep its own state for the call in a
 * `WeakMap` keyed by the event.
 *
 * @module
 */
import diagnostics from 'node:diagnostics_channel';
import type { IoGauges, IoInterface } from '../io/io-interface.js';
import type { Metadata } from '../protocol/envelope.js';
import type { RPCStats } from './rpc-channel.js';

/** Names of the channels this library publishes on (`diagnostics_channel.subscribe(name, fn)`). */
export const DIAGNOSTICS_CHANNELS = {
  /** A call or notification is about to be encoded and written: {@link RPCCallEvent}. Subscribers may fill `carrier`. */
  callStart: 'redis-streams-rpc:call:start',
  /** Its request was written to the transport (Redis: the XADD returned): {@link RPCCallEvent} with `bytes`. */
  callWritten: 'redis-streams-rpc:call:written',
  /** The call settled (answer, error, timeout, close; a notification: written or failed): {@link RPCCallEvent} with `durationMs` and `error`. */
  callSettle: 'redis-streams-rpc:call:settle',
  /** A request's handler is about to run (or the request failed before it could): {@link RPCHandleEvent}. Subscribers may set `scope`. */
  handleStart: 'redis-streams-rpc:handle:start',
  /** The handler's outcome is known (its answer is being written): {@link RPCHandleEvent} with `durationMs` and `error`. */
  handleEnd: 'redis-streams-rpc:handle:end',
  /** A channel was created: {@link RPCChannelEvent} (its `stats()` can be observed until it closes). */
  channelOpen: 'redis-streams-rpc:channel:open',
  /** A channel was destroyed: the {@link RPCChannelEvent} published when it opened. */
  channelClose: 'redis-streams-rpc:channel:close',
} as const;

/** Where a call or a handler run took place: plain data from the channel's transport. */
export interface RPCEndpointInfo {
  /** This endpoint's id (Redis: its session id). */
  readonly endpoint: string;
  /** The transport's name (Redis: the request stream). */
  readonly destination: string;
  /** The consumer group this endpoint serves in, when the transport is load-balanced. */
  readonly group: string | undefined;
  /** Whether each request reaches one worker of a pool (Redis: consumer group mode). */
  readonly loadBalanced: boolean;
}

/** One call or notification, as published on the `call:*` channels. */
export interface RPCCallEvent extends RPCEndpointInfo {
  /** The call id (unique per caller; the answer's correlation id). */
  readonly id: string;
  /** The dotted method path, e.g. `math.add`. */
  readonly method: string;
  /** A notification: no answer is expected. */
  readonly notification: boolean;
  /** The call's timeout (a notification's deadline), in milliseconds. */
  readonly timeoutMs: number;
  /** The metadata of the proxy (`getAPI({ metadata })`); empty when none. */
  readonly metadata: Metadata;
  /**
   * Filled by `call:start` subscribers (trace context: `traceparent`,
   * `tracestate`): these entries travel in the request's metadata, over the
   * proxy's entries of the same name. The request is refused locally if they
   * break the metadata limits (reported on `'error'`, sent without them).
   */
  readonly carrier: Record<string, string>;
  /** `performance.now()` when the call started. */
  readonly startedAt: number;
  /** UTF-8 size of the encoded request, once encoded (`call:written` and later). */
  readonly bytes: number | undefined;
  /** Milliseconds from start to settle (`call:settle`). */
  readonly durationMs: number | undefined;
  /** Why the call failed (`call:settle`); undefined when it succeeded. */
  readonly error: Error | undefined;
}

/** One request served, as published on the `handle:*` channels. */
export interface RPCHandleEvent extends RPCEndpointInfo {
  /** The call id. */
  readonly id: string;
  /** The dotted method path. */
  readonly method: string;
  /** A notification: no answer is written. */
  readonly notification: boolean;
  /** The caller's endpoint id, when the transport knows it. */
  readonly caller: string | undefined;
  /** The transport's id of the message (Redis: the stream entry id). */
  readonly messageId: string | undefined;
  /** When the caller stops waiting, in epoch milliseconds. */
  readonly deadline: number;
  /** The caller's metadata (trace context travels here). */
  readonly metadata: Metadata;
  /** UTF-8 size of the request as received. */
  readonly bytes: number;
  /** `performance.now()` when the handler started. */
  readonly startedAt: number;
  /**
   * Set by a `handle:start` subscriber to run the handler inside a scope of
   * its own, e.g. `(run) => context.with(ctx, run)` so that spans and calls
   * the handler makes belong to the request's trace. Called once, synchronously.
   */
  scope: (<T>(run: () => T) => T) | undefined;
  /** Milliseconds the handler ran (`handle:end`). */
  readonly durationMs: number | undefined;
  /** What the handler threw or rejected with, or why the request could not run (`handle:end`). */
  readonly error: Error | undefined;
}

/** A channel's life, as published on `channel:open` and `channel:close`. */
export interface RPCChannelEvent extends RPCEndpointInfo {
  /** The channel's counters (see `RPCChannel.stats()`); valid until `channel:close`. */
  stats(): RPCStats;
  /** The IO's gauges (see `RPCChannel.gauges()`). */
  gauges(): IoGauges;
}

/** The mutable form the publishers fill in. */
export type Writable<T> = { -readonly [K in keyof T]: T[K] };

/** The channels, created once. */
export const callStartChannel = diagnostics.channel(DIAGNOSTICS_CHANNELS.callStart);
export const callWrittenChannel = diagnostics.channel(DIAGNOSTICS_CHANNELS.callWritten);
export const callSettleChannel = diagnostics.channel(DIAGNOSTICS_CHANNELS.callSettle);
export const handleStartChannel = diagnostics.channel(DIAGNOSTICS_CHANNELS.handleStart);
export const handleEndChannel = diagnostics.channel(DIAGNOSTICS_CHANNELS.handleEnd);
export const channelOpenChannel = diagnostics.channel(DIAGNOSTICS_CHANNELS.channelOpen);
export const channelCloseChannel = diagnostics.channel(DIAGNOSTICS_CHANNELS.channelClose);

/** Whether anyone subscribes to a phase of calls: only then is an event built. */
export function callsObserved(): boolean {
  return callStartChannel.hasSubscribers || callWrittenChannel.hasSubscribers || callSettleChannel.hasSubscribers;
}

/** Whether anyone subscribes to a phase of handler runs. */
export function handlingObserved(): boolean {
  return handleStartChannel.hasSubscribers || handleEndChannel.hasSubscribers;
}

/** What the events say about an IO. */
export function endpointInfo(io: IoInterface): RPCEndpointInfo {
  return { endpoint: io.id, destination: io.name, group: io.consumerGroup, loadBalanced: io.capabilities.loadBalanced };
}

/** Starts a call's event and publishes `call:start` (the caller checked {@link callsObserved}). */
export function startCallEvent(where: RPCEndpointInfo, id: string, method: string, notification: boolean, timeoutMs: number, metadata: Metadata): RPCCallEvent {
  // Literals, not spreads: V8 copies a spread object member by member here (microseconds a call).
  const event: RPCCallEvent = {
    endpoint: where.endpoint,
    destination: where.destination,
    group: where.group,
    loadBalanced: where.loadBalanced,
    id,
    method,
    notification,
    timeoutMs,
    metadata,
    carrier: {},
    startedAt: performance.now(),
    bytes: undefined,
    durationMs: undefined,
    error: undefined,
  };
  if (callStartChannel.hasSubscribers) callStartChannel.publish(event);
  return event;
}

/** Publishes `call:written`. */
export function callWritten(event: RPCCallEvent): void {
  if (callWrittenChannel.hasSubscribers) callWrittenChannel.publish(event);
}

/** Settles a call's event and publishes `call:settle` once. */
export function settleCallEvent(event: RPCCallEvent, error: Error | undefined): void {
  const e = event as Writable<RPCCallEvent>;
  if (e.durationMs !== undefined) return;
  e.durationMs = performance.now() - e.startedAt;
  e.error = error;
  if (callSettleChannel.hasSubscribers) callSettleChannel.publish(event);
}

/** Starts a handler run's event and publishes `handle:start` (the caller checked {@link handlingObserved}). */
export function startHandleEvent(
  where: RPCEndpointInfo,
  request: { id: string; method: string; notification: boolean; caller: string | undefined; messageId: string | undefined; deadline: number; metadata: Metadata; data: string },
): RPCHandleEvent {
  const event: RPCHandleEvent = {
    endpoint: where.endpoint,
    destination: where.destination,
    group: where.group,
    loadBalanced: where.loadBalanced,
    id: request.id,
    method: request.method,
    notification: request.notification,
    caller: request.caller,
    messageId: request.messageId,
    deadline: request.deadline,
    metadata: request.metadata,
    bytes: Buffer.byteLength(request.data, 'utf8'),
    startedAt: performance.now(),
    scope: undefined,
    durationMs: undefined,
    error: undefined,
  };
  if (handleStartChannel.hasSubscribers) handleStartChannel.publish(event);
  return event;
}

/** Ends a handler run's event and publishes `handle:end` once. */
export function endHandleEvent(event: RPCHandleEvent, error: Error | undefined): void {
  const e = event as Writable<RPCHandleEvent>;
  if (e.durationMs !== undefined) return;
  e.durationMs = performance.now() - e.startedAt;
  e.error = error;
  if (handleEndChannel.hasSubscribers) handleEndChannel.publish(event);
}
