// One worker process of a load-balanced pool. Started by support.ts (fork), configured by the
// environment: REDIS_URL, STREAM, and optionally CLAIM_IDLE_MS and STEP_MS.
// Tells its parent 'ready' over IPC; shuts down on 'stop', SIGTERM/SIGINT, or when the parent goes away.
import { RPCChannel, RedisStreamsIO } from 'redis-streams-rpc';
import { createWorkerApi, type WorkerAPI } from './worker-api.js';

const io = new RedisStreamsIO({
  url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  stream: process.env.STREAM ?? 'examples:pool',
  useConsumerGroup: true,
  claimIdleMs: Number(process.env.CLAIM_IDLE_MS ?? 30_000),
});
const channel = new RPCChannel<WorkerAPI>(io, { expose: createWorkerApi(Number(process.env.STEP_MS ?? 100)) });
channel.on('error', (err) => console.error(`[worker ${process.pid}] ${err.name}: ${err.message}`));
io.on('reclaimed', ({ ids }) => console.log(`[worker ${process.pid}] took over ${ids.length} request(s) of a stopped worker`));

let stopping: Promise<void> | undefined;
function stop(): Promise<void> {
  stopping ??= channel.destroy().then(() => {
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
