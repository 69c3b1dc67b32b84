/**
 * What instrumentation costs the channel, without Redis: a client and a
 * server channel in one process over the in-memory IO pair, 100 calls of
 * `echo("x")` in flight (as bench/channel.ts), in rounds that alternate
 * between modes inside one process so that machine noise hits each alike:
 *
 * - `off`: nobody subscribes to the diagnostics channels (the default);
 * - `seams`: a no-op subscriber on every channel (the seams' own cost);
 * - `tracing`: `instrumentRedisStreamsRpc()` with an OpenTelemetry SDK
 *   (BasicTracerProvider, SimpleSpanProcessor into an InMemorySpanExporter
 *   emptied every round, W3C propagation, AsyncLocalStorage context, a
 *   MeterProvider with an in-memory reader);
 * - `spans`: the same with `metrics: false`; `metrics`: with `traces: false`.
 *
 * Prints CPU µs per call (both channels together): median of `--rounds`
 * rounds of `--calls` calls per mode, after a warm-up round of each.
 *
 * Run: `npm run build && node --import tsx bench/instrumentation.ts [--rounds 7] [--calls 50000] [--modes off,seams,tracing]`.
 */
import diagnostics from 'node:diagnostics_channel';
import { parseArgs } from 'node:util';
import { createMemoryIoPair, RPCChannel } from 'redis-streams-rpc';

interface Api {
  echo(x: string): string;
}

type Mode = 'off' | 'seams' | 'tracing' | 'spans' | 'metrics';

const IN_FLIGHT = 100;
/** Channel names as literals: the script also runs against builds that predate the seams. */
const CHANNELS = ['call:start', 'call:written', 'call:settle', 'handle:start', 'handle:end', 'channel:open', 'channel:close'].map((n) => `redis-streams-rpc:${n}`);

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '7' }, calls: { type: 'string', default: '50000' }, modes: { type: 'string', default: 'off,seams,tracing' } },
});
const rounds = Number(values.rounds);
const calls = Number(values.calls);
const modes = values.modes.split(',').map((m) => m.trim()) as Mode[];

const noop = (): void => undefined;
let tracing: { enable(mode: Mode): void; disable(): void; reset(): void } | undefined;

async function setUpTracing(): Promise<typeof tracing> {
  const [{ instrumentRedisStreamsRpc }, api, core, hooks, traceBase, metrics] = await Promise.all([
    import('redis-streams-rpc/otel'),
    import('@opentelemetry/api'),
    import('@opentelemetry/core'),
    import('@opentelemetry/context-async-hooks'),
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/sdk-metrics'),
  ]);
  const exporter = new traceBase.InMemorySpanExporter();
  const tracerProvider = new traceBase.BasicTracerProvider({ spanProcessors: [new traceBase.SimpleSpanProcessor(exporter)] });
  const reader = new metrics.PeriodicExportingMetricReader({ exporter: new metrics.InMemoryMetricExporter(metrics.AggregationTemporality.CUMULATIVE), exportIntervalMillis: 60_000 });
  const meterProvider = new metrics.MeterProvider({ readers: [reader] });
  // Enabled only during the tracing rounds: its AsyncLocalStorage slows every promise of the process.
  const contextManager = new hooks.AsyncLocalStorageContextManager();
  api.context.setGlobalContextManager(contextManager);
  api.propagation.setGlobalPropagator(new core.W3CTraceContextPropagator());
  let handle: { disable(): void } | undefined;
  return {
    enable: (mode) => {
      contextManager.enable();
      handle = instrumentRedisStreamsRpc({ tracerProvider, meterProvider, traces: mode !== 'metrics', metrics: mode !== 'spans' });
    },
    disable: () => {
      handle?.disable();
      contextManager.disable();
    },
    reset: () => exporter.reset(),
  };
}

function enable(mode: Mode): void {
  if (mode === 'seams') for (const name of CHANNELS) diagnostics.subscribe(name, noop);
  if (mode === 'tracing' || mode === 'spans' || mode === 'metrics') tracing?.enable(mode);
}

function disable(mode: Mode): void {
  if (mode === 'seams') for (const name of CHANNELS) diagnostics.unsubscribe(name, noop);
  if (mode === 'tracing' || mode === 'spans' || mode === 'metrics') {
    tracing?.disable();
    tracing?.reset();
  }
}

const [clientIo, serverIo] = createMemoryIoPair();
const server = new RPCChannel<Api, Record<string, never>>(serverIo, { expose: { echo: (x: string) => x } });
const client = new RPCChannel<Record<string, never>, Api>(clientIo);
const api = client.getAPI();

/** CPU µs per call of `total` calls, `IN_FLIGHT` at a time. */
async function round(total: number): Promise<number> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < total) {
      next++;
      if ((await api.echo('x')) !== 'x') throw new Error('echo returned something else');
    }
  };
  const before = process.cpuUsage();
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
  const used = process.cpuUsage(before);
  return (used.user + used.system) / total;
}

if (modes.some((m) => m === 'tracing' || m === 'spans' || m === 'metrics')) tracing = await setUpTracing();
const results = new Map<Mode, number[]>(modes.map((m) => [m, []]));
for (const mode of modes) {
  enable(mode);
  await round(calls / 2);
  disable(mode);
}
for (let i = 0; i < rounds; i++) {
  for (const mode of modes) {
    enable(mode);
    results.get(mode)?.push(await round(calls));
    disable(mode);
  }
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
for (const [mode, perCall] of results) {
  process.stdout.write(`${mode.padEnd(8)} median ${median(perCall).toFixed(2)} µs/call (client + server); rounds ${perCall.map((v) => v.toFixed(2)).join(' ')}\n`);
}
await client.destroy();
await server.destroy();
