// Broadcast mode (the default, XREAD): every peer on the stream sees every notification and request.
// One publisher and two subscribers in one process.
//
//   node scripts/with-redis.mjs node --import tsx examples/01-broadcast.ts
import { RPCChannel, RedisStreamsIO } from 'redis-streams-rpc';
import { REDIS_URL, removeStreamKeys, sleep, uniqueStream } from './support.js';

/** What each subscriber exposes. */
interface Subscriber {
  priceChanged(symbol: string, price: number): void;
  whoIsThere(): string;
}

const stream = uniqueStream('broadcast');
const seen: string[] = [];

function subscriber(name: string): { io: RedisStreamsIO; channel: RPCChannel<Subscriber> } {
  const io = new RedisStreamsIO({ url: REDIS_URL, stream });
  const channel = new RPCChannel<Subscriber>(io, {
    expose: {
      priceChanged: (symbol, price) => void seen.push(`${name} got priceChanged(${symbol}, ${price})`),
      whoIsThere: () => name,
    },
  });
  channel.on('peer-destroyed', (peerId) => void seen.push(`${name} got peer-destroyed from ${peerId}`));
  return { io, channel };
}

const a = subscriber('subscriber A');
const b = subscriber('subscriber B');
// Like any subscription, a peer only sees what is written after it is ready.
await Promise.all([a.io.waitUntilReady(), b.io.waitUntilReady()]);

const publisherIo = new RedisStreamsIO({ url: REDIS_URL, stream });
const publisher = new RPCChannel<Record<string, never>, Subscriber>(publisherIo);
const duplicates: string[] = [];
publisher.on('duplicate', ({ id }) => void duplicates.push(id));

/** Waits (at most 2 s) until `n` lines have been recorded, then prints and clears them. */
async function flush(n: number): Promise<void> {
  for (let waited = 0; seen.length < n && waited < 2000; waited += 10) await sleep(10);
  for (const line of seen.splice(0).sort()) console.log(`  ${line}`);
}

try {
  console.log(`stream "${stream}": 2 subscribers ready, publisher session ${publisherIo.getSessionId()}`);

  console.log('\n-- notify(): no answer expected; resolves once written, every subscriber runs it');
  await publisher.notify().priceChanged('ACME', 101.5);
  await publisher.notify().priceChanged('INITECH', 7.25);
  await flush(4);

  console.log('\n-- a request: every subscriber runs it and answers; the first answer settles the call');
  console.log(`  whoIsThere() = "${await publisher.getAPI().whoIsThere()}"`);
  for (let waited = 0; duplicates.length < 1 && waited < 2000; waited += 10) await sleep(10);
  console.log(`  the other answer was ignored: duplicates ${publisher.stats().duplicates}`);

  console.log('\n-- signalDestroy(): peers are told this endpoint is going away (nothing is destroyed)');
  await publisher.signalDestroy();
  await flush(2);
} finally {
  await Promise.all([publisher.destroy(), a.channel.destroy(), b.channel.destroy()]);
  await removeStreamKeys(stream);
}
console.log('\nall channels closed');
