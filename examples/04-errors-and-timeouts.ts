// What failures look like to a caller: each is an Error with a stable `code`; library errors keep
// their class (instanceof works), application errors keep name, message, code, own fields and cause.
//
//   node scripts/with-redis.mjs node --import tsx examples/04-errors-and-timeouts.ts
import {
  RPCChannel,
  RPCChannelClosedError,
  RPCError,
  RPCMethodNotFoundError,
  RPCTimeoutError,
  RedisStreamsConnectionError,
  RedisStreamsIO,
  type RemoteAPI,
} from 'redis-streams-rpc';
import { REDIS_URL, removeStreamKeys, uniqueStream } from './support.js';
import { createWorkerApi, type WorkerAPI } from './worker-api.js';

/** The caller's view is newer than the worker: `reports.monthly` is not deployed yet. */
type ClientView = WorkerAPI & { reports: { monthly(year: number): string } };

const stream = uniqueStream('errors');
const workerIo = new RedisStreamsIO({ url: REDIS_URL, stream, useConsumerGroup: true });
const worker = new RPCChannel<WorkerAPI>(workerIo, { expose: createWorkerApi() });
const clientIo = new RedisStreamsIO({ url: REDIS_URL, stream, useConsumerGroup: true });
const client = new RPCChannel<Record<string, never>, ClientView>(clientIo, { timeout: 5000 });
const api = client.getAPI();

function show(err: unknown): void {
  const e = err as Error & { code?: string };
  console.log(`  ${e.name} (code ${e.code}): ${e.message}`);
}

try {
  console.log('-- an application error thrown by the worker');
  try {
    await api.jobs.charge(250);
  } catch (err) {
    const e = err as Error & { code?: string; limit?: number };
    show(e);
    console.log(`  own field limit = ${e.limit}; cause: ${String(e.cause)} (instanceof RangeError: ${e.cause instanceof RangeError})`);
  }

  console.log('\n-- a method the worker does not expose');
  await api.reports.monthly(2026).catch((err: unknown) => {
    if (!(err instanceof RPCMethodNotFoundError)) throw err;
    show(err);
  });
  // Inherited Object.prototype members are never callable, whatever the caller's types say.
  await (api as unknown as RemoteAPI<{ hasOwnProperty(key: string): boolean }>).hasOwnProperty('math').catch(show);

  console.log('\n-- a per-call timeout: getAPI({ timeout }) overrides the channel default (5000 ms here)');
  try {
    await client.getAPI({ timeout: 100 }).jobs.sleep(300);
  } catch (err) {
    if (!(err instanceof RPCTimeoutError)) throw err;
    show(err);
    const callSite = err.stack?.split('\n').find((line) => line.includes('04-errors-and-timeouts'));
    console.log(`  err.method = ${err.method}, err.timeoutMs = ${err.timeoutMs}; the stack is the caller's:`);
    console.log(`  ${callSite?.trim()}`);
  }

  console.log('\n-- destroy() rejects the calls still pending');
  const pending = api.jobs.sleep(300).then(
    () => undefined,
    (err: unknown) => err, // handled before destroy() rejects it
  );
  await client.destroy();
  const closed = await pending;
  if (!(closed instanceof RPCChannelClosedError)) throw new Error('expected RPCChannelClosedError');
  show(closed);
} finally {
  await Promise.all([client.destroy(), worker.destroy()]);
  await removeStreamKeys(stream);
}

console.log('\n-- Redis unreachable: a call fails with RedisStreamsConnectionError, the cause is the ioredis error');
// ioredis options: maxRetriesPerRequest bounds how long a write waits for a connection (the library
// default is 3); disconnectTimeout (ioredis default 2000 ms) is how long ioredis keeps a timer after
// closing a socket that never connected, which would hold this process open that long.
const downIo = new RedisStreamsIO({
  url: 'redis://127.0.0.1:1',
  stream,
  redisOptions: { maxRetriesPerRequest: 1, disconnectTimeout: 100 },
});
const down = new RPCChannel<Record<string, never>, WorkerAPI>(downIo, { timeout: 2000 });
// Background failures (here: the lost connections) arrive once per outage on 'error'.
down.on('error', (err) => console.log(`  'error' event: ${err.name}: ${err.message}`));
try {
  await down.getAPI().math.add(1, 2);
} catch (err) {
  if (!(err instanceof RedisStreamsConnectionError)) throw err;
  show(err);
  console.log(`  instanceof RPCError: ${err instanceof RPCError}; cause: ${(err.cause as Error).message}`);
} finally {
  await down.destroy();
}
console.log('\nall channels closed');
