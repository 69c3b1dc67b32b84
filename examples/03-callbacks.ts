// Callbacks: functions passed as arguments (top level, or inside plain objects and arrays) stay on the
// caller; the callee gets stand-ins that send each invocation back to the caller's inbox.
//
//   node scripts/with-redis.mjs node --import tsx examples/03-callbacks.ts
import { RPCChannel, RPCInvalidArgumentError, RedisStreamsIO } from 'redis-streams-rpc';
import { REDIS_URL, removeStreamKeys, sleep, uniqueStream } from './support.js';

interface ImportHooks {
  onProgress(done: number, total: number): void;
  onWarning(line: number, message: string): void;
}

interface Importer {
  importCsv(file: string, hooks: ImportHooks): Promise<{ imported: number; skipped: number }>;
  countdown(from: number, tick: (n: number) => void): Promise<string>;
}

const stream = uniqueStream('callbacks');
let lateHooks: ImportHooks | undefined;

const importer: Importer = {
  async importCsv(file, hooks) {
    const total = 5;
    let skipped = 0;
    for (let line = 1; line <= total; line++) {
      await sleep(40);
      if (line === 3) {
        skipped++;
        hooks.onWarning(line, `${file}:${line}: missing column "email"`);
      }
      // Fire and forget: a stand-in returns at once, and nothing comes back from the caller.
      hooks.onProgress(line, total);
    }
    lateHooks = hooks;
    return { imported: total - skipped, skipped };
  },
  async countdown(from, tick) {
    for (let n = from; n > 0; n--) {
      tick(n);
      await sleep(30);
    }
    return 'liftoff';
  },
};

// Load-balanced mode: the worker and the caller share a consumer group (here, in one process).
const workerIo = new RedisStreamsIO({ url: REDIS_URL, stream, useConsumerGroup: true });
const worker = new RPCChannel<Importer>(workerIo, { expose: importer });
const clientIo = new RedisStreamsIO({ url: REDIS_URL, stream, useConsumerGroup: true });
const client = new RPCChannel<Record<string, never>, Importer>(clientIo);
const api = client.getAPI();

try {
  console.log('-- callbacks inside an options object');
  const summary = await api.importCsv('users.csv', {
    onProgress: (done, total) => console.log(`  progress ${done}/${total}`),
    onWarning: (line, message) => console.log(`  warning at line ${line}: ${message}`),
  });
  console.log(`  result: ${JSON.stringify(summary)}`);

  console.log('\n-- a top-level callback');
  console.log(`  result: ${await api.countdown(3, (n) => console.log(`  tick ${n}`))}`);

  console.log('\n-- once the call has settled, its callbacks are dead');
  lateHooks?.onProgress(99, 99); // the worker kept a stand-in: calling it now sends nothing
  await sleep(100);
  console.log('  (no "progress 99/99" above: the stand-in was a no-op)');

  console.log('\n-- notifications cannot take callbacks: there is no call for them to belong to');
  try {
    await client.notify().countdown(3, () => undefined);
  } catch (err) {
    if (!(err instanceof RPCInvalidArgumentError)) throw err;
    console.log(`  ${err.name} (code ${err.code}): ${err.message}`);
  }
} finally {
  await Promise.all([client.destroy(), worker.destroy()]);
  await removeStreamKeys(stream);
}
console.log('\nall channels closed');
