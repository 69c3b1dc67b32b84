// Issue "A pool that works by default", two lanes: answers and callback invocations for an
// endpoint's own calls never wait behind requests queued before them, and a full request lane
// never drops or blocks them. Real redis-server; the IO is read directly, without a channel.
import { expect } from 'chai';
import { RedisStreamsIO, type IoInboundMessage } from '../../src/index.js';
import { useRedisTest, waitFor } from '../support/env.js';

describe('RedisStreamsIO inbound lanes', function () {
  this.timeout(20_000);
  const t = useRedisTest('lanes');

  for (const mode of ['broadcast', 'load-balanced'] as const) {
    it(`${mode}: with its request lane full (maxQueueSize 4, 10 requests written), an answer is still taken and read first`, async () => {
      const useConsumerGroup = mode === 'load-balanced';
      const server = t.track(new RedisStreamsIO({ url: t.url, stream: t.name, useConsumerGroup, maxQueueSize: 4 }));
      server.acceptRequests();
      await server.waitUntilReady();
      const peer = t.track(new RedisStreamsIO({ url: t.url, stream: t.name, useConsumerGroup }));
      await peer.waitUntilReady();
      // One entry each (one write per tick).
      for (let i = 0; i < 10; i++) await peer.write({ data: `request ${i}` });
      await waitFor(() => server.stats().received >= 4, { message: 'the server did not take 4 requests' });
      await peer.write({ data: 'answer', target: server.id });
      // The inbox reader has a lane of its own: the answer is taken although 4 requests wait unread.
      await waitFor(() => server.stats().received >= 5, { timeoutMs: 5000, message: 'the answer waited behind the queued requests' });
      const first = (await server.read()) as IoInboundMessage;
      expect(first).to.include({ data: 'answer', lane: 'reply' });
      const rest: string[] = [];
      while (rest.length < 10) {
        const request = (await server.read()) as IoInboundMessage;
        rest.push(request.data);
        // Load-balanced: settling a request releases its credit, so the worker reads the next.
        if (request.receipt !== undefined) await server.ack(request.receipt);
      }
      expect(rest).to.deep.equal(Array.from({ length: 10 }, (_, i) => `request ${i}`));
      expect(server.stats().dropped).to.equal(0);
    });
  }
});
