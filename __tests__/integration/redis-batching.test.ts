// Writes issued in one tick share a stream entry: requests of one caller on the request stream,
// answers to one caller in its inbox. Checked on the entries themselves (raw XRANGE), in both
// modes, against a real redis-server.
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { RPCChannel, RPCDeliveryError, RPCTimeoutError, RedisStreamsIO } from '../../src/index.js';
import { deleteKeys, redisUrl, uniqueName, waitFor } from '../support/env.js';

interface Api {
  echo(n: number): number;
}

/** Messages (`d` fields) per entry of `key`, oldest first; entries without `d` (control entries) are left out. */
async function messagesPerEntry(raw: Redis, key: string): Promise<number[]> {
  const entries = (await raw.xrange(key, '-', '+')) as [string, string[]][];
  return entries.map(([, fields]) => fields.filter((f, i) => i % 2 === 0 && f === 'd').length).filter((n) => n > 0);
}

describe('RedisStreamsIO coalesces the writes of one tick into one entry per stream', function () {
  this.timeout(20_000);
  let url = '';
  let name = '';
  let raw: Redis | undefined;
  const channels: RPCChannel<object, object>[] = [];

  beforeEach(() => {
    url = redisUrl();
    name = uniqueName('batch');
  });

  afterEach(async () => {
    await Promise.all(channels.splice(0).map((c) => c.destroy()));
    await raw?.quit();
    raw = undefined;
    await deleteKeys(url, `*${name}*`);
  });

  async function setup(useConsumerGroup: boolean, writeBatchSize?: number) {
    const serverIo = new RedisStreamsIO({ url, stream: name, useConsumerGroup, writeBatchSize });
    const clientIo = new RedisStreamsIO({ url, stream: name, useConsumerGroup, writeBatchSize });
    const server = new RPCChannel<Api, Record<string, never>>(serverIo, { expose: { echo: (n: number) => n } });
    const client = new RPCChannel<Record<string, never>, Api>(clientIo, { timeout: 10_000 });
    channels.push(server as RPCChannel<object, object>, client as RPCChannel<object, object>);
    await Promise.all([serverIo.waitUntilReady(), clientIo.waitUntilReady()]);
    raw = new Redis(url);
    return { clientIo, serverIo, client, api: client.getAPI(), raw, inbox: `{${name}}:inbox:${clientIo.getSessionId()}` };
  }

  for (const mode of ['broadcast', 'load-balanced'] as const) {
    const useConsumerGroup = mode === 'load-balanced';

    /** A caller of a string echo on the same stream (the server of `setup` echoes numbers, and any value). */
    async function setupBig() {
      const io = new RedisStreamsIO({ url, stream: name, useConsumerGroup });
      const client = new RPCChannel<Record<string, never>, { echo(s: string): string }>(io, { timeout: 10_000 });
      channels.push(client as RPCChannel<object, object>);
      await io.waitUntilReady();
      return { api: client.getAPI() };
    }

    it(`${mode}: 10 calls made in one tick travel as one request entry, their answers as one inbox entry`, async () => {
      const { api, raw, inbox, client, serverIo, clientIo } = await setup(useConsumerGroup);
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => api.echo(i)));

      expect(results).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect(await messagesPerEntry(raw, name), 'request entries').to.deep.equal([10]);
      const [entry] = await clientIo.getAllEntries();
      expect(entry?.messages, 'getAllEntries() lists every message of the entry, in order').to.have.length(10);
      expect(entry?.messages.map((m) => (JSON.parse(m.slice(m.indexOf('\n') + 1)) as { json: number[] }).json[0])).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect(await messagesPerEntry(raw, inbox), 'answer entries in the inbox').to.deep.equal([10]);
      // Counters count messages, not entries.
      expect(client.stats().sent).to.equal(10);
      expect(client.stats().received).to.equal(10);
      expect(serverIo.stats().sent).to.equal(10);
      if (useConsumerGroup) {
        expect(serverIo.stats().acked, 'requests settled').to.equal(10);
        expect(serverIo.stats().ackedEntries, 'the entry is acknowledged once, with the last answer').to.equal(1);
        expect(await raw.call('XPENDING', name, serverIo.getConsumerGroup())).to.deep.equal([0, null, null, null]);
      }
    });

    it(`${mode}: 41 calls in one tick are split into entries of at most 16 requests, in order`, async () => {
      const { api, raw, inbox } = await setup(useConsumerGroup);
      const results = await Promise.all(Array.from({ length: 41 }, (_, i) => api.echo(i)));

      expect(results).to.deep.equal(Array.from({ length: 41 }, (_, i) => i));
      expect(await messagesPerEntry(raw, name)).to.deep.equal([16, 16, 9]);
      const answers = await messagesPerEntry(raw, inbox);
      expect(answers.every((n) => n <= 16)).to.equal(true);
      expect(answers.reduce((a, b) => a + b, 0)).to.equal(41);
    });

    it(`${mode}: writeBatchSize 1 gives each of 10 calls of one tick, and each answer, an entry of its own`, async () => {
      const { api, raw, inbox } = await setup(useConsumerGroup, 1);
      expect(await Promise.all(Array.from({ length: 10 }, (_, i) => api.echo(i)))).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect(await messagesPerEntry(raw, name)).to.deep.equal(Array.from({ length: 10 }, () => 1));
      expect(await messagesPerEntry(raw, inbox)).to.deep.equal(Array.from({ length: 10 }, () => 1));
    });

    it(`${mode}: writeBatchSize 4 caps the entries of 10 calls of one tick at 4 requests`, async () => {
      const { api, raw } = await setup(useConsumerGroup, 4);
      expect(await Promise.all(Array.from({ length: 10 }, (_, i) => api.echo(i)))).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect(await messagesPerEntry(raw, name)).to.deep.equal([4, 4, 2]);
    });

    it(`${mode}: an answer to an inbox that no longer exists is reported on 'error' (RPCDeliveryError), not dropped silently`, async () => {
      let release: () => void = () => undefined;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const serverIo = new RedisStreamsIO({ url, stream: name, useConsumerGroup });
      const server = new RPCChannel<{ wait(): Promise<string> }, Record<string, never>>(serverIo, { expose: { wait: async () => (await gate, 'done') } });
      const clientIo = new RedisStreamsIO({ url, stream: name, useConsumerGroup });
      const client = new RPCChannel<Record<string, never>, { wait(): Promise<string> }>(clientIo, { timeout: 1500 });
      channels.push(server as RPCChannel<object, object>, client as RPCChannel<object, object>);
      const serverErrors: Error[] = [];
      server.on('error', (e) => serverErrors.push(e));
      await Promise.all([serverIo.waitUntilReady(), clientIo.waitUntilReady()]);
      raw = new Redis(url);
      const call = client.getAPI().wait();
      await waitFor(async () => (await raw!.xlen(name)) > 0);
      await new Promise((resolve) => setTimeout(resolve, 50));
      await raw.del(`{${name}}:inbox:${clientIo.getSessionId()}`);
      release();

      await waitFor(() => serverErrors.length > 0);
      expect(serverErrors[0]).to.be.instanceOf(RPCDeliveryError);
      expect(serverErrors[0]?.message).to.include('no longer exists').and.include(clientIo.getSessionId());
      await expect(call).to.be.rejectedWith(RPCTimeoutError);
      expect(serverIo.stats().sent, 'the dropped answer is not counted as sent').to.equal(0);
      if (useConsumerGroup) expect(await raw.call('XPENDING', name, serverIo.getConsumerGroup())).to.deep.equal([0, null, null, null]);
    });

    it(`${mode}: messages past 256 K characters start a new entry (two 150 K echoes of one tick: two entries)`, async () => {
      const { raw } = await setup(useConsumerGroup);
      const big = await setupBig();
      const payload = 'x'.repeat(150_000);
      expect(await Promise.all([big.api.echo(payload), big.api.echo(payload)])).to.deep.equal([payload, payload]);
      expect(await messagesPerEntry(raw, name)).to.deep.equal([1, 1]);
    });

    it(`${mode}: calls made in separate ticks get entries of their own`, async () => {
      const { api, raw } = await setup(useConsumerGroup);
      for (let i = 0; i < 3; i++) expect(await api.echo(i)).to.equal(i);
      expect(await messagesPerEntry(raw, name)).to.deep.equal([1, 1, 1]);
    });
  }

  it('load-balanced: notifications handled in one tick are acknowledged with one XACK', async () => {
    // 20 notifications in entries of their own, waiting before the worker starts: it reads 16
    // entries, then 4, and acknowledges each read's notifications together.
    const clientIo = new RedisStreamsIO({ url, stream: name, useConsumerGroup: true, writeBatchSize: 1 });
    const client = new RPCChannel<Record<string, never>, { tick(): void }>(clientIo);
    channels.push(client as RPCChannel<object, object>);
    const notify = client.notify();
    await Promise.all(Array.from({ length: 20 }, () => notify.tick()));
    raw = new Redis(url);
    const xacks = async (): Promise<number> => Number(/cmdstat_xack:calls=(\d+)/.exec(await raw!.info('commandstats'))?.[1] ?? 0);
    const before = await xacks();

    let ticks = 0;
    // concurrency 256: a read may take 16 entries (each could carry 16 requests), as the test needs.
    const serverIo = new RedisStreamsIO({ url, stream: name, useConsumerGroup: true, concurrency: 256 });
    channels.push(new RPCChannel<{ tick(): void }, Record<string, never>>(serverIo, { expose: { tick: () => void ticks++ } }) as RPCChannel<object, object>);
    await waitFor(() => ticks === 20);
    await waitFor(async () => ((await raw!.xpending(name, serverIo.getConsumerGroup())) as [number])[0] === 0, { message: 'notifications were not acknowledged' });
    expect(await xacks(), 'XACK commands for 20 notifications read in 2 reads').to.equal(before + 2);
    expect(serverIo.stats().acked).to.equal(20);
  });
});
