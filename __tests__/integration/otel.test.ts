// OpenTelemetry (redis-streams-rpc/otel) over a real redis-server, with the SDK's in-memory exporters:
// the caller's span and the worker's span are one trace (W3C trace context in the request metadata),
// attributes as the README documents them, error spans, and the metrics.
import { SpanKind, SpanStatusCode, context, trace, type Attributes } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { AggregationTemporality, MeterProvider, MetricReader, type DataPoint, type Histogram, type MetricData } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import * as chai from 'chai';
import chaiAsPromised from 'chai-as-promised';
import { expect } from 'chai';
import { RPCChannel, RPCInvalidArgumentError, RPCTimeoutError, RedisStreamsIO, getRequestContext } from '../../src/index.js';
import { instrumentRedisStreamsRpc, type RedisStreamsRpcInstrumentation } from '../../src/otel.js';
import { useRedisTest, waitFor } from '../support/env.js';

chai.use(chaiAsPromised);

interface Api {
  add(a: number, b: number): number;
  fail(message: string): never;
  slow(ms: number): Promise<string>;
  relay(a: number): Promise<number>;
  traceparent(): string | undefined;
  log(line: string): void;
}

/** A reader collected on demand. */
class TestReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

describe('OpenTelemetry instrumentation (redis-streams-rpc/otel)', function () {
  this.timeout(20_000);
  const redis = useRedisTest('otel');
  let exporter: InMemorySpanExporter;
  let reader: TestReader;
  let tracerProvider: BasicTracerProvider;
  let meterProvider: MeterProvider;
  let otel: RedisStreamsRpcInstrumentation;
  const contextManager = new AsyncLocalStorageContextManager();

  before(() => {
    contextManager.enable();
    context.setGlobalContextManager(contextManager);
  });
  after(() => {
    context.disable();
  });
  beforeEach(() => {
    exporter = new InMemorySpanExporter();
    tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    reader = new TestReader();
    meterProvider = new MeterProvider({ readers: [reader] });
    otel = instrumentRedisStreamsRpc({ tracerProvider, meterProvider, propagator: new W3CTraceContextPropagator() });
  });
  afterEach(async () => {
    otel.disable();
    await meterProvider.shutdown();
    await tracerProvider.shutdown();
  });

  /** A load-balanced worker and a caller on one stream. */
  async function pool(timeout = 5000) {
    const group = `${redis.name}:g`;
    const workerIo = new RedisStreamsIO({ url: redis.url, stream: redis.name, useConsumerGroup: true, consumerGroup: group });
    const callerIo = new RedisStreamsIO({ url: redis.url, stream: redis.name, useConsumerGroup: true, consumerGroup: group });
    const caller = redis.track(new RPCChannel<Record<string, never>, Api>(callerIo, { timeout }));
    const remote = caller.getAPI();
    const worker = redis.track(
      new RPCChannel<Api, Record<string, never>>(workerIo, {
        expose: {
          add: (a, b) => a + b,
          fail: (message) => {
            throw new TypeError(message);
          },
          slow: (ms) => new Promise((resolve) => setTimeout(() => resolve('done'), ms)),
          // A call the handler makes belongs to the request's trace.
          relay: async (a) => (await remote.add(a, 1)) * 10,
          traceparent: () => getRequestContext()?.metadata.traceparent,
          log: () => undefined,
        },
      }),
    );
    await workerIo.waitUntilReady();
    await callerIo.waitUntilReady();
    return { caller, worker, remote, workerIo, callerIo, group };
  }

  const spans = (): ReadableSpan[] => exporter.getFinishedSpans();
  const byKind = (kind: SpanKind): ReadableSpan[] => spans().filter((s) => s.kind === kind);

  it('makes the caller span and the worker span one trace, the worker span a child of the caller span', async () => {
    const { remote, callerIo, workerIo, group } = await pool();
    expect(await remote.add(1, 2)).to.equal(3);
    await waitFor(() => spans().length === 2);
    const [client] = byKind(SpanKind.CLIENT);
    const [server] = byKind(SpanKind.SERVER);
    expect(client, 'client span').to.not.equal(undefined);
    expect(server, 'server span').to.not.equal(undefined);
    if (client === undefined || server === undefined) return;
    expect(server.spanContext().traceId).to.equal(client.spanContext().traceId);
    expect(server.parentSpanContext?.spanId).to.equal(client.spanContext().spanId);
    expect(server.parentSpanContext?.isRemote).to.equal(true);
    expect(client.name).to.equal(`${redis.name}/add`);
    expect(server.name).to.equal(`${redis.name}/add`);
    expect(client.status.code).to.equal(SpanStatusCode.UNSET);
    expect(client.attributes).to.include({
      'messaging.system': 'redis_streams',
      'messaging.destination.name': redis.name,
      'messaging.operation.type': 'send',
      'messaging.operation.name': 'call',
      'messaging.client.id': callerIo.id,
      'rpc.system': 'redis_streams_rpc',
      'rpc.service': redis.name,
      'rpc.method': 'add',
    });
    expect(client.attributes['messaging.message.conversation_id']).to.be.a('string');
    expect(client.attributes['messaging.message.body.size']).to.be.a('number').greaterThan(0);
    expect(server.attributes).to.include({
      'messaging.system': 'redis_streams',
      'messaging.destination.name': redis.name,
      'messaging.operation.type': 'process',
      'messaging.consumer.group.name': group,
      'messaging.client.id': workerIo.id,
      'messaging.message.conversation_id': client.attributes['messaging.message.conversation_id'],
      'messaging.message.body.size': client.attributes['messaging.message.body.size'],
      'rpc.method': 'add',
    });
    expect(server.attributes['messaging.message.id']).to.match(/^\d+-\d+$/);
  });

  it('carries W3C trace context in the request metadata, under an active parent span', async () => {
    const { remote } = await pool();
    const parent = tracerProvider.getTracer('test').startSpan('parent');
    const seen = await context.with(trace.setSpan(context.active(), parent), () => remote.traceparent());
    parent.end();
    const [client] = byKind(SpanKind.CLIENT);
    expect(client?.spanContext().traceId).to.equal(parent.spanContext().traceId);
    expect(client?.parentSpanContext?.spanId).to.equal(parent.spanContext().spanId);
    expect(seen).to.equal(`00-${client?.spanContext().traceId}-${client?.spanContext().spanId}-01`);
  });

  it('makes a call made by a handler a child of the handler span', async () => {
    const { remote } = await pool();
    expect(await remote.relay(4)).to.equal(50);
    await waitFor(() => spans().length === 4);
    const clients = byKind(SpanKind.CLIENT);
    const servers = byKind(SpanKind.SERVER);
    const outer = clients.find((s) => s.attributes['rpc.method'] === 'relay');
    const relayServer = servers.find((s) => s.attributes['rpc.method'] === 'relay');
    const inner = clients.find((s) => s.attributes['rpc.method'] === 'add');
    const addServer = servers.find((s) => s.attributes['rpc.method'] === 'add');
    const traceId = outer?.spanContext().traceId;
    expect(new Set(spans().map((s) => s.spanContext().traceId))).to.deep.equal(new Set([traceId]));
    expect(inner?.parentSpanContext?.spanId).to.equal(relayServer?.spanContext().spanId);
    expect(addServer?.parentSpanContext?.spanId).to.equal(inner?.spanContext().spanId);
  });

  it('marks both spans ERROR with error.type and an exception event when the handler throws', async () => {
    const { remote } = await pool();
    await expect(remote.fail('bad input')).to.be.rejectedWith(TypeError, 'bad input');
    await waitFor(() => spans().length === 2);
    for (const span of spans()) {
      expect(span.status).to.deep.equal({ code: SpanStatusCode.ERROR, message: 'bad input' });
      expect(span.attributes['error.type']).to.equal('TypeError');
      expect(span.events.map((e) => e.name)).to.include('exception');
    }
  });

  it('marks a timed-out call ERROR with error.type RPCTimeoutError', async () => {
    const { remote } = await pool(300);
    await expect(remote.slow(1500)).to.be.rejectedWith(RPCTimeoutError);
    const [client] = byKind(SpanKind.CLIENT);
    expect(client?.status.code).to.equal(SpanStatusCode.ERROR);
    expect(client?.attributes['error.type']).to.equal('RPCTimeoutError');
  });

  it('uses PRODUCER and CONSUMER spans for a notification', async () => {
    const { caller } = await pool();
    await caller.notify().log('hello');
    await waitFor(() => spans().length === 2);
    const [producer] = byKind(SpanKind.PRODUCER);
    const [consumer] = byKind(SpanKind.CONSUMER);
    expect(producer?.attributes['messaging.operation.name']).to.equal('notify');
    expect(consumer?.spanContext().traceId).to.equal(producer?.spanContext().traceId);
  });

  it('records durations, calls and errors by method and outcome, in flight, and the channels counters', async () => {
    const { remote } = await pool(300);
    await Promise.all([remote.add(1, 2), remote.add(3, 4)]);
    await expect(remote.fail('x')).to.be.rejected;
    await expect(remote.slow(1500)).to.be.rejectedWith(RPCTimeoutError);
    await waitFor(async () => sumOf(await collect(), 'redis_streams_rpc.server.calls') === 3);
    const metrics = await collect();
    const clientDuration = find(metrics, 'rpc.client.call.duration');
    expect(clientDuration?.descriptor.unit).to.equal('s');
    const okAdd = point<Histogram>(clientDuration, { 'rpc.method': 'add', 'redis_streams_rpc.outcome': 'ok' });
    expect(okAdd?.value.count).to.equal(2);
    expect(point<Histogram>(clientDuration, { 'rpc.method': 'slow', 'redis_streams_rpc.outcome': 'timeout', 'error.type': 'RPCTimeoutError' })?.value.count).to.equal(1);
    expect(point<number>(find(metrics, 'redis_streams_rpc.client.calls'), { 'rpc.method': 'fail', 'redis_streams_rpc.outcome': 'error' })?.value).to.equal(1);
    expect(point<number>(find(metrics, 'redis_streams_rpc.client.errors'), { 'rpc.method': 'fail', 'error.type': 'TypeError' })?.value).to.equal(1);
    expect(point<number>(find(metrics, 'redis_streams_rpc.server.errors'), { 'rpc.method': 'fail' })?.value).to.equal(1);
    expect(find(metrics, 'rpc.server.call.duration')).to.not.equal(undefined);
    // Every call has settled on the caller; the slow handler may still run on the worker.
    expect(sumOf(metrics, 'redis_streams_rpc.client.in_flight')).to.equal(0);
    // Counters from stats(), summed over both channels of the stream.
    expect(sumOf(metrics, 'redis_streams_rpc.messages.sent')).to.be.at.least(7);
    expect(sumOf(metrics, 'redis_streams_rpc.messages.delivered')).to.be.at.least(7);
    expect(sumOf(metrics, 'redis_streams_rpc.messages.acked')).to.be.at.least(3);
    expect(sumOf(metrics, 'redis_streams_rpc.client.timeouts')).to.equal(1);
    expect(find(metrics, 'redis_streams_rpc.messages.dead_lettered')).to.not.equal(undefined);
    expect(point<number>(find(metrics, 'redis_streams_rpc.messages.sent'), { 'messaging.destination.name': redis.name })).to.not.equal(undefined);
  });

  it('records the consumer group lag and pending count as gauges, per stream and group', async () => {
    const group = `${redis.name}:g`;
    // One worker that runs one request at a time, sampling its group every 100 ms.
    const workerIo = new RedisStreamsIO({ url: redis.url, stream: redis.name, useConsumerGroup: true, consumerGroup: group, concurrency: 1, retentionIntervalMs: 100 });
    const worker = redis.track(new RPCChannel<Pick<Api, 'slow'>, Record<string, never>>(workerIo, { expose: { slow: (ms) => new Promise((resolve) => setTimeout(() => resolve('done'), ms)) } }));
    const callerIo = new RedisStreamsIO({ url: redis.url, stream: redis.name, useConsumerGroup: true, consumerGroup: group });
    const caller = redis.track(new RPCChannel<Record<string, never>, Api>(callerIo, { timeout: 10_000 }));
    await workerIo.waitUntilReady();
    const remote = caller.getAPI();
    // Five entries (one call per tick): the worker holds one, four wait undelivered.
    const calls: Promise<string>[] = [];
    for (let i = 0; i < 5; i++) {
      calls.push(remote.slow(1500));
      await new Promise((resolve) => setImmediate(resolve));
    }
    await waitFor(() => worker.gauges().consumerLag === 4, { message: `gauges ${JSON.stringify(worker.gauges())}` });
    expect(worker.gauges()).to.include({ consumerLag: 4, pendingRequests: 1 });
    const metrics = await collect();
    const attrs = { 'messaging.destination.name': redis.name, 'messaging.consumer.group.name': group };
    expect(point<number>(find(metrics, 'redis_streams_rpc.consumer.lag'), attrs)?.value).to.equal(4);
    expect(point<number>(find(metrics, 'redis_streams_rpc.consumer.pending'), attrs)?.value).to.equal(1);
    // A pure caller samples nothing.
    expect(caller.gauges()).to.deep.equal({});
    // Not waited for: destroying the channels rejects them.
    for (const call of calls) call.catch(() => undefined);
  });

  it('records nothing once disabled', async () => {
    const { remote } = await pool();
    otel.disable();
    await remote.add(1, 1);
    expect(spans()).to.have.length(0);
  });

  it('refuses unknown and invalid options', () => {
    expect(() => instrumentRedisStreamsRpc({ tracer: 1 } as never)).to.throw(RPCInvalidArgumentError, /tracer/);
    expect(() => instrumentRedisStreamsRpc({ tracerProvider: {} as never })).to.throw(RPCInvalidArgumentError, /tracerProvider/);
    expect(() => instrumentRedisStreamsRpc({ traces: 'yes' as never })).to.throw(RPCInvalidArgumentError, /traces/);
  });

  async function collect(): Promise<MetricData[]> {
    const { resourceMetrics, errors } = await reader.collect();
    expect(errors).to.deep.equal([]);
    return resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
  }
});

function find(metrics: MetricData[], name: string): MetricData | undefined {
  return metrics.find((m) => m.descriptor.name === name);
}

/** The data point whose attributes include `attrs`. */
function point<T>(metric: MetricData | undefined, attrs: Attributes): DataPoint<T> | undefined {
  const points = (metric?.dataPoints ?? []) as DataPoint<T>[];
  return points.find((p) => Object.entries(attrs).every(([k, v]) => p.attributes[k] === v));
}

function sumOf(metrics: MetricData[], name: string): number {
  return ((find(metrics, name)?.dataPoints ?? []) as DataPoint<number>[]).reduce((n, p) => n + p.value, 0);
}
