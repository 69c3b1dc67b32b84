/**
 * Raw ioredis baseline, serving process. Roles (from the JSON config in argv[2]):
 * - `server`: XREAD BLOCK 0 on the request stream, echo each entry to the
 *   reply stream, one pipeline per batch read;
 * - `worker`: the same through XREADGROUP (consumer group), replies and the
 *   XACK of the batch in one pipeline;
 * - `subscriber`: XREAD BLOCK 0 on the notification stream, counting deliveries.
 *
 * Run by bench/run.ts: `node --import tsx bench/raw-server.ts '<config json>'`.
 */
import { Redis } from 'ioredis';
import { DeliveryCounter, reportAsync, runServing, type ServingSession } from './child-runtime.js';
import type { RoleConfig } from './protocol.js';
import { field, ReadLoop, type StreamEntry } from './raw-streams.js';

const READ_COUNT = 100;

function echo(value: unknown): unknown {
  return value;
}

/** Reply to each entry: parse, call, encode, XADD; all in one pipeline. */
function replyPipeline(writer: Redis, replyStream: string, entries: StreamEntry[]): ReturnType<Redis['pipeline']> {
  const pipeline = writer.pipeline();
  for (const entry of entries) {
    const id = field(entry, 'id') ?? '';
    const payload = field(entry, 'payload') ?? 'null';
    pipeline.xadd(replyStream, '*', 'id', id, 'payload', JSON.stringify(echo(JSON.parse(payload))));
  }
  return pipeline;
}

/**
 * Handlers that take `handlerMs` (case f): every entry of a batch runs at
 * once, each answered (with its XACK) as soon as it is done, and the next read
 * starts at once, as a pool of async handlers would.
 */
function serveSlowBatch(writer: Redis, config: RoleConfig, entries: StreamEntry[], acknowledge: boolean): void {
  for (const entry of entries) {
    setTimeout(() => {
      const pipeline = replyPipeline(writer, config.replyStream, [entry]);
      if (acknowledge) pipeline.xack(config.stream, config.group, entry.id);
      pipeline.exec().catch((err: unknown) => reportAsync({ type: 'failed', message: String(err) }));
    }, config.handlerMs);
  }
}

/** Turns the loop's end by error into a `'failed'` report, so the parent stops waiting. */
function watch(loop: ReadLoop): void {
  loop.finished().catch((err: unknown) => reportAsync({ type: 'failed', message: err instanceof Error ? (err.stack ?? err.message) : String(err) }));
}

function session(loop: ReadLoop, others: Redis[], handled: () => number): ServingSession {
  return {
    handled,
    errors: () => 0,
    close: async () => {
      await loop.close();
      await Promise.all(others.map((c) => c.quit()));
    },
  };
}

function serveBroadcast(config: RoleConfig, deadline: number): ServingSession {
  const writer = new Redis(config.url);
  let lastId = '0-0';
  let handled = 0;
  const loop = new ReadLoop(
    new Redis(config.url),
    (c) => c.xread('COUNT', READ_COUNT, 'BLOCK', 0, 'STREAMS', config.stream, lastId),
    async (entries) => {
      lastId = entries[entries.length - 1]?.id ?? lastId;
      handled += entries.length;
      await replyPipeline(writer, config.replyStream, entries).exec();
    },
    deadline,
  );
  watch(loop);
  return session(loop, [writer], () => handled);
}

async function createGroup(connection: Redis, stream: string, group: string): Promise<void> {
  try {
    await connection.xgroup('CREATE', stream, group, '0', 'MKSTREAM');
  } catch (err) {
    // The other worker created it first.
    if (!(err instanceof Error && err.message.startsWith('BUSYGROUP'))) throw err;
  }
}

async function serveGroup(config: RoleConfig, deadline: number): Promise<ServingSession> {
  const writer = new Redis(config.url);
  await createGroup(writer, config.stream, config.group);
  let handled = 0;
  const loop = new ReadLoop(
    new Redis(config.url),
    (c) => c.xreadgroup('GROUP', config.group, config.name, 'COUNT', READ_COUNT, 'BLOCK', 0, 'STREAMS', config.stream, '>'),
    async (entries) => {
      handled += entries.length;
      if (config.handlerMs > 0) return serveSlowBatch(writer, config, entries, true);
      const pipeline = replyPipeline(writer, config.replyStream, entries);
      pipeline.xack(config.stream, config.group, ...entries.map((e) => e.id));
      await pipeline.exec();
    },
    deadline,
  );
  watch(loop);
  return session(loop, [writer], () => handled);
}

function subscribe(config: RoleConfig, deadline: number): ServingSession {
  let lastId = '0-0';
  const counter = new DeliveryCounter(config.count, reportAsync);
  const loop = new ReadLoop(
    new Redis(config.url),
    (c) => c.xread('COUNT', 1000, 'BLOCK', 0, 'STREAMS', config.stream, lastId),
    async (entries) => {
      lastId = entries[entries.length - 1]?.id ?? lastId;
      for (const entry of entries) {
        const n: unknown = JSON.parse(field(entry, 'payload') ?? 'null');
        counter.deliver(typeof n === 'number' ? n : -1);
      }
    },
    deadline,
  );
  watch(loop);
  return session(loop, [], () => counter.handled());
}

await runServing((config) => {
  const deadline = Date.now() + config.timeoutMs;
  switch (config.role) {
    case 'server':
      return serveBroadcast(config, deadline);
    case 'worker':
      return serveGroup(config, deadline);
    case 'subscriber':
      return subscribe(config, deadline);
    default:
      throw new Error(`raw-server.ts cannot play role "${config.role}"`);
  }
});
