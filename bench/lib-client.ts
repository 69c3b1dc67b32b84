/**
 * Library side, driving process. Roles (from the JSON config in argv[2]):
 * - `seq`: sequential `api.echo(payload)`, each timed;
 * - `inflight`: `api.echo(payload)` with `concurrency` calls in flight;
 * - `notify`: `client.notify().tick(n)` with `concurrency` writes in flight.
 *
 * Run by bench/run.ts: `node --import tsx bench/lib-client.ts '<config json>'`.
 */
import { RedisStreamsIO, RPCChannel } from 'redis-streams-rpc';
import { startTracing } from './tracing.js';
import { runDriving, type DrivingSession } from './child-runtime.js';
import { runInflight, runNotify, runSequential, WarmupTicker, type Call, type Notify } from './drivers.js';
import { signingOf, type BenchApi, type RoleConfig } from './protocol.js';

const MAX_WARM_TICKS = 3000;
const MAX_PRINTED_ERRORS = 5;

function connect(config: RoleConfig): RPCChannel<Record<string, never>, BenchApi> {
  const io = new RedisStreamsIO({
    url: config.url,
    stream: config.stream,
    useConsumerGroup: config.balanced,
    consumerGroup: config.group,
    signing: signingOf(config),
  });
  const client = new RPCChannel<Record<string, never>, BenchApi>(io, {});
  let errors = 0;
  client.on('error', (err: Error) => {
    if (errors++ < MAX_PRINTED_ERRORS) process.stderr.write(`[client] ${err.name}: ${err.message}\n`);
  });
  return client;
}

function echoSession(config: RoleConfig): DrivingSession {
  const client = connect(config);
  const api = client.getAPI();
  const call: Call = (p) => api.echo(p);
  const payload = 'x'.repeat(config.payloadBytes);
  const sequential = config.role === 'seq';
  return {
    warmup: async () => {
      if (sequential) await runSequential(call, payload, config.warmup);
      else await runInflight(call, payload, config.warmup, config.concurrency);
    },
    timed: () => (sequential ? runSequential(call, payload, config.count) : runInflight(call, payload, config.count, config.concurrency)),
    close: () => client.destroy(),
  };
}

function notifySession(config: RoleConfig): DrivingSession {
  const client = connect(config);
  const notifier = client.notify();
  const notify: Notify = (n) => notifier.tick(n);
  let ticker: WarmupTicker | undefined;
  return {
    // Ticks until the parent says go: it waits for every subscriber to see one.
    warmup: () => {
      ticker = new WarmupTicker(notify, MAX_WARM_TICKS);
      return Promise.resolve();
    },
    timed: async () => {
      await ticker?.stop();
      return runNotify(notify, config.count, config.concurrency);
    },
    close: async () => {
      await ticker?.stop().catch(() => undefined);
      await client.destroy();
    },
  };
}

function session(config: RoleConfig): DrivingSession {
  switch (config.role) {
    case 'seq':
    case 'inflight':
      return echoSession(config);
    case 'notify':
      return notifySession(config);
    default:
      throw new Error(`lib-client.ts cannot play role "${config.role}"`);
  }
}

await runDriving((config) => {
  // Before any channel exists, so their counters are observed too.
  const stopTracing = startTracing(config);
  const s = session(config);
  return { ...s, close: () => s.close().finally(stopTracing) };
});
