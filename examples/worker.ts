// One worker process of a load-balanced pool. Started by support.ts (fork), configured by the
// environment: REDIS_URL, STREAM, and optionally CONCURRENCY, CLAIM_IDLE_MS and STEP_MS.
// Tells its parent 'ready' over IPC; drains on 'stop', SIGTERM/SIGINT, or when the parent goes away:
// running calls finish (up to 5 s), the rest is handed back to the other workers at once.
import { RPCChannel, RedisStreamsIO } from 'redis-streams-rpc';
import { createWorkerApi, type WorkerAPI } from './worker-api.js';

const io = new RedisStreamsIO({
  url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  stream: process.env.STREAM ?? 'examples:pool',
  useConsumerGroup: true,
  // At most 4 requests at once per worker: a burst of 12 from one caller spreads 4/4/4 over 3 workers.
  concurrency: Number(process.env.CONCURRENCY ?? 4),
  // Default 10 s: a dead worker's calls are taken over well within the callers' 30 s timeout.
  ...(process.env.CLAIM_IDLE_MS === undefined ? {} : { claimIdleMs: Number(process.env.CLAIM_IDLE_MS) }),
});
const channel = new RPCChannel<WorkerAPI>(io, { expose: createWorkerApi(Number(process.env.STEP_MS ?? 100)) });
channel.on('error', (err) => console.error(`[worker ${process.pid}] ${err.name}: ${err.message}`));
io.on('reclaimed', ({ ids }) => console.log(`[worker ${process.pid}] took over ${ids.length} request(s) of a stopped worker`));

let stopping: Promise<void> | undefined;
function stop(): Promise<void> {
  stopping ??= channel.drain({ graceMs: 5000 }).then(() => {
    process.off('message', onMessage);
    if (process.connected) process.disconnect();
  });
  return stopping;
}
function onMessage(message: unknown): void {
  if (message === 'stop') void stop();
}

process.on('message', onMessage);
process.once('disconnect', () => void stop());
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());

await io.waitUntilReady();
process.send?.('ready');
