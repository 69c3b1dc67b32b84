/**
 * `--tracing` for the library roles: an OpenTelemetry SDK that records every
 * span into an in-memory exporter (emptied every 1,000 spans, so memory stays
 * flat) and every metric into a reader collected only at exit, W3C
 * propagation and an AsyncLocalStorage context manager, with the package's
 * instrumentation on. What tracing costs per call, beside a run without it.
 */
import { context, propagation } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { instrumentRedisStreamsRpc } from 'redis-streams-rpc/otel';
import type { RoleConfig } from './protocol.js';

const RESET_EVERY = 1000;

/** Starts tracing when the role config asks for it; returns what stops it. */
export function startTracing(config: RoleConfig): () => Promise<void> {
  if (config.tracing !== true) return () => Promise.resolve();
  const exporter = new InMemorySpanExporter();
  let spans = 0;
  const processor = new SimpleSpanProcessor(exporter);
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [
      {
        onStart: (span, ctx) => processor.onStart(span, ctx),
        onEnd: (span) => {
          processor.onEnd(span);
          if (++spans % RESET_EVERY === 0) exporter.reset();
        },
        forceFlush: () => processor.forceFlush(),
        shutdown: () => processor.shutdown(),
      },
    ],
  });
  const reader = new PeriodicExportingMetricReader({ exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE), exportIntervalMillis: 10 * 60_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  const otel = instrumentRedisStreamsRpc({ tracerProvider, meterProvider });
  return async () => {
    otel.disable();
    await Promise.all([tracerProvider.shutdown(), meterProvider.shutdown()]);
    context.disable();
  };
}
