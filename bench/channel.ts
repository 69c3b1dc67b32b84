/**
 * The channel's own CPU cost, without Redis: a client and a server channel in
 * one process over the in-memory IO pair, 100 calls of `echo("x")` in flight.
 * Prints CPU µs per call (both channels together), median of 5 rounds of
 * 100,000 calls after a warm-up round. Complements `npm run bench`, whose
 * figures include ioredis, the sockets and Redis.
 *
 * Run: `npm run bench:channel`.
 */
import { createMemoryIoPair, RPCChannel } from 'redis-streams-rpc';

interface Api {
  echo(x: string): string;
}

const ROUNDS = 5;
const CALLS = 100_000;
const IN_FLIGHT = 100;

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

await round(CALLS / 2);
const perCall: number[] = [];
for (let i = 0; i < ROUNDS; i++) perCall.push(await round(CALLS));
perCall.sort((a, b) => a - b);
const median = perCall[Math.floor(ROUNDS / 2)] ?? Number.NaN;
process.stdout.write(`channel CPU per call (client + server, in-memory IO): median ${median.toFixed(2)} µs; rounds ${perCall.map((v) => v.toFixed(2)).join(' ')}\n`);
await client.destroy();
await server.destroy();
