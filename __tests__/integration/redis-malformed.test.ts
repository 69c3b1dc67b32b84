// Entries not written by redis-streams-rpc, added with a raw ioredis client: each is skipped,
// reported on 'error' as RPCProtocolError, acknowledged in load-balanced mode, and the channel
// keeps working. Both modes, against a real redis-server.
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { RPCChannel, RPCDeliveryError, RPCProtocolError, RedisStreamsIO } from '../../src/index.js';
import { deleteKeys, redisUrl, sleep, uniqueName, waitFor } from '../support/env.js';

interface Api {
  ping(): string;
}

/** Adds the bad entries to `key` and returns their ids. */
async function addJunk(raw: Redis, key: string): Promise<string[]> {
  const adds: (string | Buffer)[][] = [
    ['data', 'hello'], // no sender field
    ['f', 'intruder', 'd', '{"hello":"world"}'], // valid sender, JSON of the wrong shape
    ['f', 'intruder', 'd', '{"v":1,"k":"req","id":"x","m":"ping","dl":0}\n[]'], // header of the wrong shape
    ['f', 'intruder'], // sender only
    [Buffer.from([0xff, 0x00, 0xfe]), Buffer.from([0xc3, 0x28, 0x80, 0x00])], // binary junk
    ['f', 'intruder', 'd', Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x80, 0x0a, 0xc0])], // binary junk as data
    ['f', 'intruder', ...Array.from({ length: 17 }, () => ['d', 'x']).flat()], // more messages than a writer ever batches (16)
    ['f', 'intruder', 'r', '-1', 'd', '{"v":1,"k":"res","id":"x"}\n{"json":1}'], // bad redelivery count
  ];
  const ids: string[] = [];
  for (const fields of adds) ids.push((await raw.xadd(key, '*', ...(fields as string[]))) as string);
  return ids;
}

describe('RedisStreamsIO with entries it did not write', function () {
  this.timeout(20_000);
  let url = '';
  let name = '';
  let raw: Redis | undefined;
  const channels: RPCChannel<object, object>[] = [];

  beforeEach(() => {
    url = redisUrl();
    name = uniqueName('junk');
  });

  afterEach(async () => {
    await Promise.all(channels.splice(0).map((c) => c.destroy()));
    await raw?.quit();
    raw = undefined;
    await deleteKeys(url, `*${name}*`);
  });

  function setup(useConsumerGroup: boolean) {
    const serverIo = new RedisStreamsIO({ url, stream: name, useConsumerGroup });
    const clientIo = new RedisStreamsIO({ url, stream: name, useConsumerGroup });
    const server = new RPCChannel<Api, Record<string, never>>(serverIo, { expose: { ping: () => 'pong' } });
    const client = new RPCChannel<Record<string, never>, Api>(clientIo, { timeout: 5_000 });
    const serverErrors: Error[] = [];
    const clientErrors: Error[] = [];
    server.on('error', (e) => serverErrors.push(e));
    client.on('error', (e) => clientErrors.push(e));
    channels.push(server as RPCChannel<object, object>, client as RPCChannel<object, object>);
    raw = new Redis(url);
    return { serverIo, clientIo, server, client, serverErrors, clientErrors, raw };
  }

  const protocolErrors = (errors: Error[]): number => errors.filter((e) => e instanceof RPCProtocolError).length;

  function expectProtocolErrors(all: Error[], ids: string[]): void {
    // A refused request whose id is still readable is answered with the error; the answer to the
    // made-up sender "intruder" finds no inbox and is reported as undeliverable, not lost silently.
    const undelivered = all.filter((e) => e instanceof RPCDeliveryError);
    for (const err of undelivered) expect(err.message).to.include(':inbox:intruder');
    const errors = all.filter((e) => !(e instanceof RPCDeliveryError));
    for (const err of errors) {
      expect(err).to.be.instanceOf(RPCProtocolError);
      expect((err as RPCProtocolError).code).to.equal('ERR_RPC_PROTOCOL');
    }
    expect(errors.map((e) => (e as RPCProtocolError).entryId).sort()).to.deep.equal([...ids].sort());
  }

  for (const mode of ['broadcast', 'load-balanced'] as const) {
    const useConsumerGroup = mode === 'load-balanced';

    it(`${mode}: skips and reports each bad request-stream entry, acks it in group mode, and keeps serving`, async () => {
      const { serverIo, server, client, serverErrors, clientErrors, raw } = setup(useConsumerGroup);
      await serverIo.waitUntilReady();
      const ids = await addJunk(raw, name);
      await waitFor(() => protocolErrors(serverErrors) >= ids.length, { message: `expected ${ids.length} errors` });
      await sleep(100); // no second report of the same entry
      expectProtocolErrors(serverErrors, ids);
      expect(server.stats().handled).to.equal(0);
      expect(server.stats().malformed, 'each bad entry counted once (IO or channel level)').to.equal(ids.length);
      if (useConsumerGroup) {
        await waitFor(async () => ((await raw.xpending(name, serverIo.getConsumerGroup())) as [number])[0] === 0, {
          message: 'bad entries were left pending',
        });
      }
      expect(await client.getAPI().ping()).to.equal('pong');
      expect(await client.getAPI().ping()).to.equal('pong');
      expect(clientErrors).to.deep.equal([]);
      expect(protocolErrors(serverErrors)).to.equal(ids.length);
    });

    it(`${mode}: skips and reports bad entries in a caller's reply inbox, and its calls still work`, async () => {
      const { serverIo, clientIo, client, serverErrors, clientErrors, raw } = setup(useConsumerGroup);
      await Promise.all([serverIo.waitUntilReady(), clientIo.waitUntilReady()]);
      const inbox = `{${name}}:inbox:${clientIo.getSessionId()}`;
      expect(await raw.exists(inbox)).to.equal(1);
      const ids = await addJunk(raw, inbox);
      await waitFor(() => protocolErrors(clientErrors) >= ids.length, { message: `expected ${ids.length} errors` });
      expectProtocolErrors(clientErrors, ids);
      expect(client.stats().malformed).to.equal(ids.length);
      expect(await client.getAPI().ping()).to.equal('pong');
      expect(serverErrors).to.deep.equal([]);
    });
  }
});
