// Load-balanced mode (XREADGROUP): 3 worker processes share a consumer group, each request reaches one
// of them. One worker is killed (SIGKILL) in the middle of a job; after claimIdleMs another worker takes
// the job over and the caller still gets its answer: delivery is at-least-once.
//
//   node scripts/with-redis.mjs node --import tsx examples/02-worker-pool.ts
import { RPCChannel, RedisStreamsIO } from 'redis-streams-rpc';
import { REDIS_URL, removeStreamKeys, sleep, startWorkers, uniqueStream } from './support.js';
import type { WorkerAPI } from './worker-api.js';

const CLAIM_IDLE_MS = 1000; // short for the example; the default is 30000
const started = Date.now();
const elapsed = (): string => `${String(Date.now() - started).padStart(5)} ms`;
const stream = uniqueStream('pool');

// Each job takes 4 steps of 200 ms. Workers renew the lease on jobs they hold every claimIdleMs/3,
// so a slow job is never taken from a live worker; a dead worker stops renewing.
const workers = await startWorkers(3, stream, { CLAIM_IDLE_MS: String(CLAIM_IDLE_MS), STEP_MS: '200' });
console.log(`${elapsed()}  workers ${workers.pids.join(', ')} ready on "${stream}"`);

const io = new RedisStreamsIO({ url: REDIS_URL, stream, useConsumerGroup: true });
const client = new RPCChannel<Record<string, never>, WorkerAPI>(io, { timeout: 10_000 });
client.on('error', (err) => console.error(`client error: ${err.name}: ${err.message}`));
const api = client.getAPI();

let victim: number | undefined;
let killed: Promise<void> | undefined;
const servedBy = new Map<number, string[]>();

try {
  const images = ['a.png', 'b.png', 'c.png', 'd.png', 'e.png', 'f.png'];
  // Jobs submitted 50 ms apart: each wakes the worker that has waited longest, so they rotate over
  // the pool. (A burst written all at once goes mostly to whichever worker reads first.)
  await Promise.all(images.map(async (name, i) => {
    await sleep(50 * i);
    const { result, pid } = await api.jobs.resize({ name, width: 800 }, (percent, from) => {
      console.log(`${elapsed()}  ${name} ${String(percent).padStart(3)}% on worker ${from}`);
      if (victim === undefined && percent === 50) {
        victim = from;
        console.log(`${elapsed()}  SIGKILL worker ${from} while it holds ${name}`);
        killed = workers.kill(from);
      }
    });
    console.log(`${elapsed()}  ${result.name} done by worker ${pid}`);
    servedBy.set(pid, [...(servedBy.get(pid) ?? []), result.name]);
  }));
} finally {
  await client.destroy();
  await killed;
  await workers.stop(); // the survivors
  await removeStreamKeys(stream);
}

console.log('\nsummary');
for (const [pid, names] of servedBy) console.log(`  worker ${pid}: ${names.join(', ')}`);
console.log(`  worker ${victim} was killed; its jobs were taken over after claimIdleMs (${CLAIM_IDLE_MS} ms)`);
const { calls, received, timeouts } = client.stats();
console.log(`  client: ${calls} calls, ${received} messages received (answers and progress), ${timeouts} timeouts`);
