// Broadcast mode (XREAD) with several peers on one stream, and signalDestroy() in both modes,
// against a real redis-server.
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { RPCChannel, RedisStreamsIO, type RedisStreamsIOOptions } from '../../src/index.js';
import { deleteKeys, redisUrl, sleep, uniqueName, waitFor } from '../support/env.js';

interface PeerApi {
  whoami(): string;
}

type Peer = { io: RedisStreamsIO; channel: RPCChannel<PeerApi, PeerApi> };

let url = '';
let name = '';
const channels: Peer['channel'][] = [];
const unexpected: Error[] = [];

/** A channel on the test stream; it serves `whoami` when `label` is given, else it is a pure caller. */
function peer(label?: string, onCall?: () => void, options: Partial<RedisStreamsIOOptions> = {}): Peer {
  const io = new RedisStreamsIO({ url, stream: name, ...options });
  const expose =
    label === undefined
      ? undefined
      : {
          whoami: () => {
            onCall?.();
            return label;
          },
        };
  const channel = new RPCChannel<PeerApi, PeerApi>(io, { timeout: 5_000, ...(expose ? { expose } : {}) });
  channel.on('error', (e) => unexpected.push(e));
  channels.push(channel);
  return { io, channel };
}

describe('RedisStreamsIO broadcast', () => {
  beforeEach(() => {
    url = redisUrl();
    name = uniqueName('bcast');
  });

  afterEach(async () => {
    await Promise.all(channels.splice(0).map((c) => c.destroy()));
    await deleteKeys(url, `*${name}*`);
    expect(unexpected.splice(0), 'unexpected "error" events').to.deep.equal([]);
  });

  describe('several peers on one stream', () => {
    it('delivers every request to every other peer, never to its sender; first answer wins, late ones are duplicates', async () => {
      const runs = { a: 0, b: 0, c: 0 };
      const peers = (['a', 'b', 'c'] as const).map((label) => peer(label, () => runs[label]++));
      await Promise.all(peers.map((p) => p.io.waitUntilReady()));
      const [a, b, c] = peers as [Peer, Peer, Peer];

      const first = await a.channel.getAPI().whoami();
      expect(['b', 'c']).to.include(first);
      await waitFor(() => a.channel.stats().duplicates === 1, { message: 'the second answer never arrived' });
      expect(runs).to.deep.equal({ a: 0, b: 1, c: 1 });

      expect(['a', 'c']).to.include(await b.channel.getAPI().whoami());
      expect(['a', 'b']).to.include(await c.channel.getAPI().whoami());
      await waitFor(() => b.channel.stats().duplicates === 1 && c.channel.stats().duplicates === 1);
      expect(runs).to.deep.equal({ a: 2, b: 2, c: 2 });
      await sleep(200); // nothing more may trickle in
      expect(peers.map((p) => p.channel.stats().duplicates)).to.deep.equal([1, 1, 1]);
      expect(peers.map((p) => p.channel.stats().handled)).to.deep.equal([2, 2, 2]);
      console.log(`      runs per peer: ${JSON.stringify(runs)}, duplicates per caller: [1, 1, 1]`);
    });

    it('a pure caller (nothing exposed) gets answers but never answers or runs anything', async () => {
      const runs = { a: 0, b: 0 };
      const a = peer('a', () => runs.a++);
      const b = peer('b', () => runs.b++);
      const caller = peer();
      await Promise.all([a.io.waitUntilReady(), b.io.waitUntilReady(), caller.io.waitUntilReady()]);

      expect(['a', 'b']).to.include(await caller.channel.getAPI().whoami());
      await waitFor(() => caller.channel.stats().duplicates === 1);
      expect(await a.channel.getAPI().whoami()).to.equal('b');
      await sleep(300); // the pure caller would answer "method not found" by now if it answered at all
      expect(a.channel.stats().duplicates, 'a got an answer from the pure caller').to.equal(0);
      expect(caller.channel.stats().handled).to.equal(0);
      expect(caller.io.stats().sent, 'the caller wrote only its own request').to.equal(1);
      expect(caller.io.stats().received, 'the caller received only the two answers').to.equal(2);
      expect(runs).to.deep.equal({ a: 1, b: 2 });
    });

    it('a server that exposes its API after start-up sees requests at once, not after blockTimeout', async function () {
      this.timeout(10_000);
      const late = peer(undefined, undefined, { blockTimeout: 60_000 });
      await late.io.waitUntilReady();
      late.channel.expose({ whoami: () => 'late' });
      const caller = peer();
      await caller.io.waitUntilReady();
      // Regression: serving used to wait for the inbox reader's blocking XREAD (blockTimeout, 60 s
      // here) to return; requests now have a reader of their own, started by expose().
      expect(await caller.channel.getAPI({ timeout: 3_000 }).whoami()).to.equal('late');
    });
  });

  describe('RedisStreamsIO signalDestroy()', () => {
    it('broadcast: other serving peers emit "peer-destroyed" with the session id and everyone keeps working', async () => {
      const a = peer('a');
      const b = peer('b');
      const caller = peer();
      const other = peer();
      const events: Record<string, string[]> = { a: [], b: [], caller: [], other: [] };
      for (const [key, p] of Object.entries({ a, b, caller, other })) p.channel.on('peer-destroyed', (id) => events[key]?.push(id));
      await Promise.all([a, b, caller, other].map((p) => p.io.waitUntilReady()));

      await caller.channel.signalDestroy();
      const callerId = caller.io.getSessionId();
      await waitFor(() => events.a?.length === 1 && events.b?.length === 1, { message: 'peer-destroyed not emitted' });
      expect(events.a).to.deep.equal([callerId]);
      expect(events.b).to.deep.equal([callerId]);

      await a.channel.signalDestroy();
      await waitFor(() => events.b?.length === 2);
      expect(events.b).to.deep.equal([callerId, a.io.getSessionId()]);
      expect(events.a, 'a peer never hears its own bye').to.deep.equal([callerId]);

      // Nobody was destroyed: the announcing caller, the announcing server and a bystander all still work.
      expect(['a', 'b']).to.include(await caller.channel.getAPI().whoami());
      expect(['a', 'b']).to.include(await other.channel.getAPI().whoami());
      expect(await a.channel.getAPI().whoami()).to.equal('b');
      expect(await b.channel.getAPI().whoami()).to.equal('a');
      // Every endpoint reads the control stream: the caller hears a's bye too (never its own).
      await waitFor(() => events.caller?.length === 1 && events.other?.length === 2);
      expect(events.caller).to.deep.equal([a.io.getSessionId()]);
      expect(events.other).to.deep.equal([callerId, a.io.getSessionId()]);
    });

    it('load-balanced: one worker of the group emits "peer-destroyed", acks the bye, and calls keep working', async () => {
      const worker = peer('worker', undefined, { useConsumerGroup: true });
      const caller = peer(undefined, undefined, { useConsumerGroup: true });
      const seen: string[] = [];
      worker.channel.on('peer-destroyed', (id) => seen.push(id));
      await Promise.all([worker.io.waitUntilReady(), caller.io.waitUntilReady()]);

      await caller.channel.signalDestroy();
      await waitFor(() => seen.length === 1, { message: 'peer-destroyed not emitted by the worker' });
      expect(seen).to.deep.equal([caller.io.getSessionId()]);
      expect(await caller.channel.getAPI().whoami()).to.equal('worker');

      const raw = new Redis(url);
      try {
        await waitFor(async () => ((await raw.xpending(name, worker.io.getConsumerGroup())) as [number])[0] === 0, {
          message: 'the bye entry or the request stayed pending',
        });
      } finally {
        await raw.quit();
      }
    });
  });
});
