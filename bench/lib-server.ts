/**
 * Library side, serving process. Roles (from the JSON config in argv[2]):
 * - `server`: an RPCChannel exposing echo/tick on a broadcast RedisStreamsIO;
 * - `worker`: the same in a consumer group (load-balanced pool);
 * - `subscriber`: the same API on a broadcast IO, counting tick notifications.
 *
 * Run by bench/run.ts: `node --import tsx bench/lib-server.ts '<config json>'`.
 */
import { RedisStreamsIO, RPCChannel } from 'redis-streams-rpc';
import { startTracing } from './tracing.js';
import { DeliveryCounter, reportAsync, runServing, type ServingSession } from './child-runtime.js';
import { signingOf, type BenchApi, type RoleConfig } from './protocol.js';

/** Bounds the inbound queue so a slow server pushes back instead of growing. */
const MAX_QUEUE_SIZE = 1000;
/** Background errors printed to stderr (the parent shows them on failure); the rest are only counted. */
const MAX_PRINTED_ERRORS = 5;

function serve(config: RoleConfig): ServingSession {
  const counter = new DeliveryCounter(config.role === 'subscriber' ? config.count : 0, reportAsync);
  let handled = 0;
  let errors = 0;
  const io = new RedisStreamsIO({
    url: config.url,
    stream: config.stream,
    useConsumerGroup: config.role === 'worker',
    consumerGroup: config.group,
    consumerName: config.name,
    maxQueueSize: MAX_QUEUE_SIZE,
    signing: signingOf(config),
  });
  const channel = new RPCChannel<BenchApi, Record<string, never>>(io, {
    expose: {
      echo: (x: string): string | Promise<string> => {
        handled++;
        return config.handlerMs > 0 ? new Promise((resolve) => setTimeout(() => resolve(x), config.handlerMs)) : x;
      },
      tick: (n: number): void => counter.deliver(n),
    },
  });
  channel.on('error', (err: Error) => {
    if (errors++ < MAX_PRINTED_ERRORS) process.stderr.write(`[${config.name}] ${err.name}: ${err.message}\n`);
  });
  return {
    handled: () => handled + counter.handled(),
    errors: () => errors,
    close: () => channel.destroy(),
  };
}

await runServing((config) => {
  switch (config.role) {
    case 'server':
    case 'worker':
    case 'subscriber': {
      // Before the channel exists, so its counters are observed too.
      const stopTracing = startTracing(config);
      const s = serve(config);
      return { ...s, close: () => s.close().finally(stopTracing) };
    }
    default:
      throw new Error(`lib-server.ts cannot play role "${config.role}"`);
  }
});
