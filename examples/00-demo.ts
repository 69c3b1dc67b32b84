// `npm run demo`: a pool of 3 worker processes behind one consumer group, and a typed client here.
//
//   node scripts/with-redis.mjs node --import tsx examples/00-demo.ts
import { RPCChannel, RPCTimeoutError, RedisStreamsIO } from 'redis-streams-rpc';
import { REDIS_URL, removeStreamKeys, sleep, startWorkers, uniqueStream } from './support.js';
import type { WorkerAPI } from './worker-api.js';

const started = Date.now();
const stream = uniqueStream('demo');
const servedBy = new Map<number, number>();
const count = (pid: number): void => void servedBy.set(pid, (servedBy.get(pid) ?? 0) + 1);

console.log(`redis ${REDIS_URL}, stream "${stream}"`);
const workers = await startWorkers(3, stream);
console.log(`3 worker processes ready: pids ${workers.pids.join(', ')}\n`);

// A pure caller: it exposes nothing, so it never reads the request stream, only its own reply inbox.
const io = new RedisStreamsIO({ url: REDIS_URL, stream, useConsumerGroup: true });
const client = new RPCChannel<Record<string, never>, WorkerAPI>(io, { timeout: 5000 });
client.on('error', (err) => console.error(`client error: ${err.name}: ${err.message}`));
const api = client.getAPI();

try {
  console.log('-- 12 x math.add, one after another: each request wakes the worker that has waited longest');
  for (let i = 0; i < 12; i++) {
    const { result, pid } = await api.math.add(i, i * 10); // typed: Promise<Served<number>>
    count(pid);
    console.log(`  ${`math.add(${i}, ${i * 10}) = ${result}`.padEnd(36)}worker ${pid}`);
  }

  console.log('\n-- 12 x text.reverse, all at once (one stream entry): a worker takes at most concurrency (4), the rest is re-queued for the others');
  const words = ['redis', 'streams', 'rpc', 'typed', 'worker', 'pool'];
  const reversed = await Promise.all(Array.from({ length: 12 }, async (_, i) => {
    const word = words[i % words.length] ?? '';
    const { result, pid } = await api.text.reverse(word);
    count(pid);
    return `${`text.reverse("${word}") = "${result}"`.padEnd(36)}worker ${pid}`;
  }));
  for (const line of reversed) console.log(`  ${line}`);

  console.log('\n-- 3 x jobs.resize (slow), progress reported through a callback');
  const images = ['cat.png', 'dog.png', 'owl.png'];
  const resized = await Promise.all(images.map(async (name) => {
    const { result, pid } = await api.jobs.resize({ name, width: 1024 }, (percent, from) => {
      console.log(`  ${name} ${String(percent).padStart(3)}%  (worker ${from})`);
    });
    count(pid);
    return `${result.name} -> width ${result.width}, finished ${result.finishedAt.toISOString()} by worker ${pid}`;
  }));
  for (const line of resized) console.log(`  done: ${line}`);

  console.log('\n-- a remote error arrives intact');
  try {
    await api.jobs.charge(250);
  } catch (err) {
    const e = err as Error & { code?: string; limit?: number };
    console.log(`  ${e.name} (code ${e.code}, limit ${e.limit}): ${e.message}`);
    console.log(`  cause: ${String(e.cause)}`);
  }

  console.log('\n-- a per-call timeout');
  try {
    await client.getAPI({ timeout: 150 }).jobs.sleep(400);
  } catch (err) {
    if (!(err instanceof RPCTimeoutError)) throw err;
    console.log(`  ${err.name} (code ${err.code}, method ${err.method}, ${err.timeoutMs} ms): ${err.message}`);
  }
  // The worker still finishes that request; its late answer is ignored and counted as a duplicate.
  const late = new Promise<boolean>((resolve) => client.once('duplicate', () => resolve(true)));
  if (await Promise.race([late, sleep(2000).then(() => false)])) console.log('  its late answer arrived and was ignored (counted in stats().duplicates)');
} finally {
  await client.destroy();
  await workers.stop();
  await removeStreamKeys(stream);
}

const stats = client.stats();
console.log('\n-- summary');
console.log(`  calls ${stats.calls}, timeouts ${stats.timeouts}, duplicates ${stats.duplicates}, elapsed ${Date.now() - started} ms`);
for (const [pid, n] of servedBy) console.log(`  worker ${pid} served ${n} successful call(s)`);
console.log('  all workers exited, client closed');
