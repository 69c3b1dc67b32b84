// A caller that calls at once, before its IO has finished setting up (its reply inbox may not exist
// yet): no request may reach a worker before the inbox its answer goes to exists.
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { RPCChannel, RedisStreamsIO } from '../../src/index.js';
import { deleteKeys, redisUrl, uniqueName } from '../support/env.js';

interface Api {
  echo(n: number): number;
}

async function waitForMarker(seen: string[][]): Promise<void> {
  for (let i = 0; i < 200 && !seen.some((a) => a[1] === 'startup-marker'); i++) await new Promise((resolve) => setTimeout(resolve, 5));
}

describe('RedisStreamsIO calls made right after construction', function () {
  this.timeout(30_000);
  let url = '';
  let name = '';
  const channels: RPCChannel<object, object>[] = [];

  beforeEach(() => {
    url = redisUrl();
    name = uniqueName('startup');
  });

  afterEach(async () => {
    await Promise.all(channels.splice(0).map((c) => c.destroy()));
    await deleteKeys(url, `*${name}*`);
  });

  for (const mode of ['broadcast', 'load-balanced'] as const) {
    const useConsumerGroup = mode === 'load-balanced';

    it(`${mode}: 20 fresh callers, each calling 16 times in the tick it was created, get every answer`, async () => {
      const serverIo = new RedisStreamsIO({ url, stream: name, useConsumerGroup });
      channels.push(new RPCChannel<Api, Record<string, never>>(serverIo, { expose: { echo: (n: number) => n } }) as RPCChannel<object, object>);
      await serverIo.waitUntilReady();
      const outcomes = await Promise.all(
        Array.from({ length: 20 }, async (_, c) => {
          const client = new RPCChannel<Record<string, never>, Api>(new RedisStreamsIO({ url, stream: name, useConsumerGroup }), { timeout: 5000 });
          channels.push(client as RPCChannel<object, object>);
          const api = client.getAPI();
          const results = await Promise.allSettled(Array.from({ length: 16 }, (_, i) => api.echo(c * 100 + i)));
          return results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).name));
        }),
      );
      expect(outcomes).to.deep.equal(Array.from({ length: 20 }, (_, c) => Array.from({ length: 16 }, (_, i) => c * 100 + i)));
    });
    it(`${mode}: calls made before the IO is set up are held until its inbox${useConsumerGroup ? ' and the group exist' : ' exists'} (MONITOR order)`, async () => {
      const serverIo = new RedisStreamsIO({ url, stream: name, useConsumerGroup });
      channels.push(new RPCChannel<Api, Record<string, never>>(serverIo, { expose: { echo: (n: number) => n } }) as RPCChannel<object, object>);
      await serverIo.waitUntilReady();
      const base = new Redis(url);
      const monitor = await base.monitor();
      const seen: string[][] = [];
      monitor.on('monitor', (_time: string, args: string[]) => seen.push(args));
      try {
        // MONITOR starts reporting once its reply is in; a PING through it marks that point.
        const marker = new Redis(url);
        await marker.ping('startup-marker');
        await waitForMarker(seen);
        await marker.quit();
        const clientIo = new RedisStreamsIO({ url, stream: name, useConsumerGroup });
        const client = new RPCChannel<Record<string, never>, Api>(clientIo, { timeout: 5000 });
        channels.push(client as RPCChannel<object, object>);
        const api = client.getAPI();
        expect(await Promise.all([api.echo(1), api.echo(2), api.echo(3)])).to.deep.equal([1, 2, 3]);
        const sid = clientIo.getSessionId();
        const isXadd = (a: string[]): boolean => a[0]?.toLowerCase() === 'xadd';
        const inboxCreated = seen.findIndex((a) => isXadd(a) && a[1] === `{${name}}:inbox:${sid}`);
        const firstRequest = seen.findIndex((a) => isXadd(a) && a[1] === name && a.includes(sid));
        expect(inboxCreated, 'inbox XADD seen').to.be.greaterThan(-1);
        expect(firstRequest, 'request XADD seen').to.be.greaterThan(-1);
        expect(inboxCreated, 'the inbox is created before the first request is written').to.be.lessThan(firstRequest);
        if (useConsumerGroup) {
          // The server created the group before MONITOR started: any XGROUP CREATE seen is the caller's.
          const groupCreated = seen.findIndex((a) => a[0]?.toLowerCase() === 'xgroup' && a[1]?.toLowerCase() === 'create' && a[2] === name);
          expect(groupCreated, "the caller's XGROUP CREATE comes before its first request").to.be.greaterThan(-1).and.lessThan(firstRequest);
        }
      } finally {
        monitor.disconnect();
        await base.quit();
      }
    });

    it(`${mode}: 10 fresh callers, each calling 16 times 30 ms after it was created, get every answer`, async () => {
      for (const worker of ['w1', 'w2']) {
        const io = new RedisStreamsIO({ url, stream: name, useConsumerGroup, consumerName: worker });
        channels.push(new RPCChannel<Api, Record<string, never>>(io, { expose: { echo: (n: number) => n } }) as RPCChannel<object, object>);
        await io.waitUntilReady();
      }
      for (let c = 0; c < 10; c++) {
        const client = new RPCChannel<Record<string, never>, Api>(new RedisStreamsIO({ url, stream: name, useConsumerGroup }), { timeout: 3000 });
        channels.push(client as RPCChannel<object, object>);
        await new Promise((resolve) => setTimeout(resolve, 30));
        const api = client.getAPI();
        const results = await Promise.allSettled(Array.from({ length: 16 }, (_, i) => api.echo(i)));
        expect(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).name)), `caller ${c}`).to.deep.equal(Array.from({ length: 16 }, (_, i) => i));
      }
    });
  }
});
