/**
 * OpenTelemetry for redis-streams-rpc: spans and metrics from the library's
 * diagnostics channels (see `DIAGNOSTICS_CHANNELS`), with W3C trace context
 * carried in the request metadata so that the caller's span and the worker's
 * span are one trace.
 *
 * @module
 */
import diagnostics from 'node:diagnostics_channel';
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  context,
  defaultTextMapGetter,
  defaultTextMapSetter,
  diag,
  metrics,
  propagation,
  trace,
  type Meter,
  type MeterProvider,
  type Span,
  type TextMapPropagator,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import { DIAGNOSTICS_CHANNELS, type RPCCallEvent, type RPCChannelEvent, type RPCHandleEvent } from '../channel/diagnostics.js';
import { RPCInvalidArgumentError, type RPCErrorCode } from '../errors.js';
import { ATTR, callSpanAttributes, errorType, handleSpanAttributes, metricAttributes, spanName } from './attributes.js';
import { ChannelObserver, createSideInstruments, type SideInstruments } from './metrics.js';

/** Name of the tracer and meter this instrumentation uses. */
export const INSTRUMENTATION_NAME = 'redis-streams-rpc';

/** Options of {@link instrumentRedisStreamsRpc}. */
export interface RedisStreamsRpcInstrumentationOptions {
  /** Where spans go. @defaultValue the global tracer provider (`trace.getTracerProvider()`) */
  tracerProvider?: TracerProvider;
  /** Where metrics go. @defaultValue the global meter provider (`metrics.getMeterProvider()`) */
  meterProvider?: MeterProvider;
  /** How trace context is written into and read from request metadata. @defaultValue the global propagator (`propagation`) */
  propagator?: TextMapPropagator;
  /** Record spans. @defaultValue true */
  traces?: boolean;
  /** Record metrics. @defaultValue true */
  metrics?: boolean;
}

/** Defaults of {@link RedisStreamsRpcInstrumentationOptions}. */
export const DEFAULT_INSTRUMENTATION_OPTIONS = {
  /** Spans are recorded. */
  traces: true,
  /** Metrics are recorded. */
  metrics: true,
} as const;

/** A running instrumentation; see {@link instrumentRedisStreamsRpc}. */
export interface RedisStreamsRpcInstrumentation {
  /**
   * Unsubscribes from every channel and stops observing counters. Idempotent.
   * Calls and handler runs in flight at that moment are not recorded further
   * (their spans are left unended).
   */
  disable(): void;
}

const TIMEOUT_CODE: RPCErrorCode = 'ERR_RPC_TIMEOUT';
const OPTIONS = new Set(['tracerProvider', 'meterProvider', 'propagator', 'traces', 'metrics']);

/** A call's or a handler run's span and what its metrics need. */
interface Active {
  readonly span: Span | undefined;
}

/**
 * Starts recording OpenTelemetry spans and metrics of every channel in this
 * process: a span per call on the caller (kind CLIENT, PRODUCER for a
 * notification) and per handler run on the worker (SERVER, CONSUMER for a
 * notification), in one trace through the request's metadata; call and
 * handler durations, counts, errors, calls in flight, and the channels'
 * counters. Channels created before this call are traced, but their counters
 * are observed only for channels created after it. Needs the optional peer
 * dependency `@opentelemetry/api` (and an SDK to export anything).
 *
 * @param options - See {@link RedisStreamsRpcInstrumentationOptions}.
 * @returns A handle whose `disable()` stops it.
 * @throws `RPCInvalidArgumentError` (from the main entry) for an unknown or invalid option.
 *
 * @example
 * ```ts
 * import { instrumentRedisStreamsRpc } from 'redis-streams-rpc/otel';
 * const otel = instrumentRedisStreamsRpc(); // global providers and propagator
 * // ... create channels, make calls ...
 * otel.disable();
 * ```
 */
export function instrumentRedisStreamsRpc(options: RedisStreamsRpcInstrumentationOptions = {}): RedisStreamsRpcInstrumentation {
  const o = resolveOptions(options);
  const tracer = o.traces ? (o.tracerProvider ?? trace.getTracerProvider()).getTracer(INSTRUMENTATION_NAME) : undefined;
  const meter = o.metrics ? (o.meterProvider ?? metrics.getMeterProvider()).getMeter(INSTRUMENTATION_NAME) : undefined;
  const recorder = new Recorder(tracer, meter, o.propagator ?? propagation);
  const subscriptions: [string, (message: unknown) => void][] = [
    [DIAGNOSTICS_CHANNELS.callStart, (m) => recorder.callStart(m as RPCCallEvent)],
    [DIAGNOSTICS_CHANNELS.callWritten, (m) => recorder.callWritten(m as RPCCallEvent)],
    [DIAGNOSTICS_CHANNELS.callSettle, (m) => recorder.callSettle(m as RPCCallEvent)],
    [DIAGNOSTICS_CHANNELS.handleStart, (m) => recorder.handleStart(m as RPCHandleEvent)],
    [DIAGNOSTICS_CHANNELS.handleEnd, (m) => recorder.handleEnd(m as RPCHandleEvent)],
    [DIAGNOSTICS_CHANNELS.channelOpen, (m) => recorder.channelOpen(m as RPCChannelEvent)],
    [DIAGNOSTICS_CHANNELS.channelClose, (m) => recorder.channelClose(m as RPCChannelEvent)],
  ];
  // A subscriber that throws becomes an uncaught exception (diagnostics_channel): never let one out.
  const guarded = subscriptions.map(([name, fn]): [string, (message: unknown) => void] => [name, guard(fn)]);
  for (const [name, fn] of guarded) diagnostics.subscribe(name, fn);
  let enabled = true;
  return {
    disable(): void {
      if (!enabled) return;
      enabled = false;
      for (const [name, fn] of guarded) diagnostics.unsubscribe(name, fn);
      recorder.stop();
    },
  };
}

function guard(fn: (message: unknown) => void): (message: unknown) => void {
  return (message) => {
    try {
      fn(message);
    } catch (err) {
      diag.error('redis-streams-rpc instrumentation failed', err);
    }
  };
}

function resolveOptions(options: RedisStreamsRpcInstrumentationOptions): Required<Pick<RedisStreamsRpcInstrumentationOptions, 'traces' | 'metrics'>> & RedisStreamsRpcInstrumentationOptions {
  if (typeof options !== 'object' || options === null) throw new RPCInvalidArgumentError('options', `expected an options object, got ${String(options)}`);
  for (const key of Object.keys(options)) {
    if (!OPTIONS.has(key)) throw new RPCInvalidArgumentError(key, `unknown option of instrumentRedisStreamsRpc(); known options are ${[...OPTIONS].join(', ')}`);
  }
  const { tracerProvider, meterProvider, propagator } = options;
  if (tracerProvider !== undefined && typeof tracerProvider?.getTracer !== 'function') throw new RPCInvalidArgumentError('tracerProvider', 'expected a TracerProvider (an object with getTracer)');
  if (meterProvider !== undefined && typeof meterProvider?.getMeter !== 'function') throw new RPCInvalidArgumentError('meterProvider', 'expected a MeterProvider (an object with getMeter)');
  if (propagator !== undefined && (typeof propagator?.inject !== 'function' || typeof propagator.extract !== 'function')) {
    throw new RPCInvalidArgumentError('propagator', 'expected a TextMapPropagator (an object with inject and extract)');
  }
  for (const flag of ['traces', 'metrics'] as const) {
    if (options[flag] !== undefined && typeof options[flag] !== 'boolean') throw new RPCInvalidArgumentError(flag, `expected a boolean, got ${String(options[flag])}`);
  }
  return { ...options, traces: options.traces ?? DEFAULT_INSTRUMENTATION_OPTIONS.traces, metrics: options.metrics ?? DEFAULT_INSTRUMENTATION_OPTIONS.metrics };
}

/** Turns the channel events into spans and measurements. */
class Recorder {
  private readonly calls = new WeakMap<RPCCallEvent, Active>();
  private readonly runs = new WeakMap<RPCHandleEvent, Active>();
  private readonly client: SideInstruments | undefined;
  private readonly server: SideInstruments | undefined;
  private readonly observer: ChannelObserver | undefined;

  constructor(
    private readonly tracer: Tracer | undefined,
    meter: Meter | undefined,
    private readonly propagator: TextMapPropagator,
  ) {
    this.client = meter === undefined ? undefined : createSideInstruments(meter, 'client');
    this.server = meter === undefined ? undefined : createSideInstruments(meter, 'server');
    this.observer = meter === undefined ? undefined : new ChannelObserver(meter);
  }

  callStart(event: RPCCallEvent): void {
    let span: Span | undefined;
    if (this.tracer !== undefined) {
      const parent = context.active();
      span = this.tracer.startSpan(spanName(event), { kind: event.notification ? SpanKind.PRODUCER : SpanKind.CLIENT, attributes: callSpanAttributes(event) }, parent);
      this.propagator.inject(trace.setSpan(parent, span), event.carrier, defaultTextMapSetter);
    }
    this.calls.set(event, { span });
    this.client?.inFlight.add(1, event.method, event.destination);
  }

  callWritten(event: RPCCallEvent): void {
    const active = this.calls.get(event);
    if (active?.span !== undefined && event.bytes !== undefined) active.span.setAttribute(ATTR.bodySize, event.bytes);
  }

  callSettle(event: RPCCallEvent): void {
    const active = this.calls.get(event);
    if (active === undefined) return;
    this.calls.delete(event);
    const { error } = event;
    // By code, not instanceof: the main entry may be loaded as the other module format (CJS beside ESM).
    const outcome = error === undefined ? 'ok' : (error as { code?: unknown }).code === TIMEOUT_CODE ? 'timeout' : 'error';
    if (active.span !== undefined) endSpan(active.span, error, event.bytes);
    this.record(this.client, event, error, outcome);
  }

  handleStart(event: RPCHandleEvent): void {
    let span: Span | undefined;
    if (this.tracer !== undefined) {
      const parent = this.propagator.extract(ROOT_CONTEXT, event.metadata, defaultTextMapGetter);
      span = this.tracer.startSpan(spanName(event), { kind: event.notification ? SpanKind.CONSUMER : SpanKind.SERVER, attributes: handleSpanAttributes(event) }, parent);
      const scope = trace.setSpan(parent, span);
      event.scope = (run) => context.with(scope, run);
    }
    this.runs.set(event, { span });
    this.server?.inFlight.add(1, event.method, event.destination);
  }

  handleEnd(event: RPCHandleEvent): void {
    const active = this.runs.get(event);
    if (active === undefined) return;
    this.runs.delete(event);
    const { error } = event;
    if (active.span !== undefined) endSpan(active.span, error, undefined);
    this.record(this.server, event, error, error === undefined ? 'ok' : 'error');
  }

  channelOpen(event: RPCChannelEvent): void {
    this.observer?.add(event);
  }

  channelClose(event: RPCChannelEvent): void {
    this.observer?.remove(event);
  }

  stop(): void {
    this.observer?.stop();
  }

  private record(side: SideInstruments | undefined, event: RPCCallEvent | RPCHandleEvent, error: Error | undefined, outcome: string): void {
    if (side === undefined) return;
    const attributes = metricAttributes(event, error, outcome);
    side.duration.record((event.durationMs ?? 0) / 1000, attributes);
    side.calls.add(1, attributes);
    if (error !== undefined) side.errors.add(1, attributes);
    side.inFlight.add(-1, event.method, event.destination);
  }
}

function endSpan(span: Span, error: Error | undefined, bytes: number | undefined): void {
  if (bytes !== undefined) span.setAttribute(ATTR.bodySize, bytes);
  if (error !== undefined) {
    span.setAttribute(ATTR.errorType, errorType(error));
    span.recordException(error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
  }
  span.end();
}
