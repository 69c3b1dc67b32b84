// Options of RedisStreamsIO (validation, defaults, url with a database, maxLen) and its stream
// inspection helpers (getStreamInfo, trimStream, getAllEntries), against a real redis-server.
import { expect } from 'chai';
import { Redis } from 'ioredis';
import {
  DEFAULT_REDIS_STREAMS_OPTIONS,
  RPCChannel,
  RPCInvalidArgumentError,
  RedisStreamsIO,
  type RedisStreamsIOOptions,
} from '../../src/index.js';
import { deleteKeys, redisUrl, uniqueName } from '../support/env.js';

interface Api {
  ping(n: number): number;
}

describe('RedisStreamsIO options and stream helpers', function () {
  this.timeout(30_000);
  let url = '';
  let name = '';
  const closeables: { destroy(): Promise<void> }[] = [];
  const clients: Redis[] = [];
  const cleanups: (() => Promise<void>)[] = [];

  beforeEach(() => {
    url = redisUrl();
    name = uniqueName('opts');
  });

  afterEach(async () => {
    await Promise.all(closeables.splice(0).map((c) => c.destroy()));
    await Promise.all(clients.splice(0).map((c) => c.quit()));
    for (const cleanup of cleanups.splice(0)) await cleanup();
    await deleteKeys(url, `*${name}*`);
  });

  function io(options: RedisStreamsIOOptions = {}): RedisStreamsIO {
    const created = new RedisStreamsIO({ url, stream: name, ...options });
    closeables.push(created);
    return created;
  }

  function rawClient(target = url): Redis {
    const client = new Redis(target);
    clients.push(client);
    return client;
  }

  describe('validation', () => {
    const invalid: [string, Record<string, unknown>][] = [
      ['stream', { stream: '' }],
      ['blockTimeout', { blockTimeout: -1 }],
      ['maxQueueSize', { maxQueueSize: 0 }],
      ['maxLen', { maxLen: 1.5 }],
      ['url', { url: 'http://x' }],
      ['useConsumerGroup', { useConsumerGroup: 'yes' }],
      ['maxlen', { maxlen: 10 }],
      ['stream', { stream: 'a{b' }],
      ['writeBatchSize', { writeBatchSize: 0 }],
      ['writeBatchSize', { writeBatchSize: 17 }],
      ['writeBatchSize', { writeBatchSize: 2.5 }],
    ];
    for (const [option, bad] of invalid) {
      it(`throws RPCInvalidArgumentError naming "${option}" for ${JSON.stringify(bad)}`, () => {
        const options = { url: redisUrl(), stream: uniqueName('opts'), ...bad } as RedisStreamsIOOptions;
        let thrown: unknown;
        expect(() => {
          try {
            closeables.push(new RedisStreamsIO(options));
          } catch (err) {
            thrown = err;
            throw err;
          }
        }).to.throw(RPCInvalidArgumentError);
        const err = thrown as RPCInvalidArgumentError;
        expect(err.code).to.equal('ERR_RPC_INVALID_ARGUMENT');
        expect(err.argument).to.equal(option);
        expect(err.message).to.include(`"${option}"`);
      });
    }
  });

  describe('defaults', () => {
    it('uses rpc-stream, rpc-group and consumer-<sessionId> (on the test server, not localhost:6379)', async () => {
      const target = new RedisStreamsIO({ url });
      closeables.push(target);
      const sessionId = target.getSessionId();
      cleanups.push(() => deleteKeys(url, `{rpc-stream}:inbox:${sessionId}`));
      expect(target.getStream()).to.equal('rpc-stream');
      expect(target.getConsumerGroup()).to.equal('rpc-group');
      expect(sessionId).to.be.a('string').and.not.equal('');
      expect(target.getConsumerName()).to.equal(`consumer-${sessionId}`);
      expect(DEFAULT_REDIS_STREAMS_OPTIONS).to.include({ stream: 'rpc-stream', consumerGroup: 'rpc-group', useConsumerGroup: false });
      await target.waitUntilReady();
      expect(await rawClient().exists(`{rpc-stream}:inbox:${sessionId}`)).to.equal(1);
    });

    it('takes sessionId and consumerName when given', () => {
      const target = io({ sessionId: 'sess-1', consumerName: 'worker-7', consumerGroup: 'g' });
      expect(target.getSessionId()).to.equal('sess-1');
      expect(target.getConsumerName()).to.equal('worker-7');
      expect(target.getConsumerGroup()).to.equal('g');
    });
  });

  it('writes into the database named in the url (redis://host:port/2)', async () => {
    const db2 = new URL(url);
    db2.pathname = '/2';
    const dbUrl = db2.toString();
    cleanups.push(() => deleteKeys(dbUrl, `*${name}*`));
    const serverIo = new RedisStreamsIO({ url: dbUrl, stream: name });
    const server = new RPCChannel<Api, Record<string, never>>(serverIo, { expose: { ping: (n) => n } });
    const client = new RPCChannel<Record<string, never>, Api>(new RedisStreamsIO({ url: dbUrl, stream: name }));
    closeables.push(server, client);
    await serverIo.waitUntilReady();
    expect(await client.getAPI().ping(7)).to.equal(7);
    expect(await rawClient(dbUrl).xlen(name), 'request stream in db 2').to.equal(1);
    expect(await rawClient().exists(name), 'request stream in db 0').to.equal(0);
  });

  it('maxLen: 10 keeps the request stream near 10 entries over 500 calls', async () => {
    const serverIo = io({ maxLen: 10 });
    const server = new RPCChannel<Api, Record<string, never>>(serverIo, { expose: { ping: (n) => n } });
    const client = new RPCChannel<Record<string, never>, Api>(io({ maxLen: 10 }));
    closeables.push(server, client);
    await serverIo.waitUntilReady();
    // One call at a time: in broadcast mode a request trimmed away before a server read it is lost
    // without trace (there is no pending list to notice it), so a burst larger than maxLen would
    // time out by design.
    const api = client.getAPI({ timeout: 5_000 });
    for (let i = 0; i < 500; i++) expect(await api.ping(i)).to.equal(i);
    const length = await rawClient().xlen(name);
    console.log(`      XLEN after 500 calls with maxLen 10: ${length}`);
    // MAXLEN ~ trims whole radix-tree nodes (100 entries by default), so "near" means <= ~110.
    expect(length).to.be.within(10, 200);
  });

  describe('stream helpers', () => {
    it('getStreamInfo() reports length, groups and the last entry', async () => {
      const writer = io();
      await writer.waitUntilReady();
      expect(await writer.getStreamInfo()).to.deep.equal({ length: 0, groups: 0, lastEntry: null });
      for (const data of ['one', 'two', 'three']) await writer.write({ data });
      const info = await writer.getStreamInfo();
      expect(info.length).to.equal(3);
      expect(info.groups).to.equal(0);
      expect(info.lastEntry?.id).to.match(/^\d+-\d+$/);
      expect(info.lastEntry?.fields).to.deep.equal({ f: writer.getSessionId(), d: 'three' });
      expect(info.lastEntry?.messages).to.deep.equal(['three']);

      const g1 = io({ useConsumerGroup: true, consumerGroup: 'g1' });
      const g2 = io({ useConsumerGroup: true, consumerGroup: 'g2' });
      await Promise.all([g1.waitUntilReady(), g2.waitUntilReady()]);
      expect(await g1.getStreamInfo()).to.deep.include({ length: 3, groups: 2 });
    });

    it('getAllEntries() returns every entry, oldest first', async () => {
      const writer = io();
      for (const data of ['a', 'b', 'c']) await writer.write({ data });
      const entries = await writer.getAllEntries();
      expect(entries.map((e) => e.fields)).to.deep.equal(['a', 'b', 'c'].map((d) => ({ f: writer.getSessionId(), d })));
      const ids = entries.map((e) => e.id);
      expect(ids).to.deep.equal([...ids].sort((x, y) => (BigInt(x.split('-')[0] as string) < BigInt(y.split('-')[0] as string) ? -1 : 0)));
      expect(new Set(ids).size).to.equal(3);
    });

    it('trimStream(n) trims to about n entries and returns how many it removed', async () => {
      const writer = io();
      const raw = rawClient();
      const pipeline = raw.pipeline();
      for (let i = 0; i < 1000; i++) pipeline.xadd(name, '*', 'f', 'filler', 'd', `entry-${i}`);
      await pipeline.exec();
      const removed = await writer.trimStream(10);
      const after = await raw.xlen(name);
      console.log(`      trimStream(10) on 1000 entries removed ${removed}, ${after} left`);
      expect(removed).to.equal(1000 - after);
      expect(after).to.be.within(10, 200);
      expect((await writer.getAllEntries()).at(-1)?.fields.d, 'the newest entries are kept').to.equal('entry-999');
      const p = writer.trimStream(-1);
      await expect(p).to.be.rejectedWith(RPCInvalidArgumentError);
      expect(((await p.catch((e: unknown) => e)) as RPCInvalidArgumentError).argument).to.equal('maxLen');
    });
  });
});
