// Redis Cluster hash tags: every key RedisStreamsIO creates (request stream, reply inboxes,
// dead-letter stream) must live in the slot of its request stream, so multi-key commands
// (XREAD over stream + inbox, MULTI reply + XACK) stay legal on a cluster. Checked against a real
// redis-server with SCAN and a CRC16 (XMODEM) slot computed here.
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { RPCChannel, RPCDeliveryError, RedisStreamsIO, type RedisStreamsIOOptions } from '../../src/index.js';
import { deleteKeys, redisUrl, uniqueName, waitFor } from '../support/env.js';

/** CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, as Redis Cluster uses. */
function crc16(data: Uint8Array): number {
  let crc = 0;
  for (const byte of data) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** Redis Cluster key slot: the first non-empty `{...}` is hashed instead of the whole key. */
function keySlot(key: string): number {
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) return crc16(Buffer.from(key.slice(open + 1, close))) % 16384;
  }
  return crc16(Buffer.from(key)) % 16384;
}

interface Api {
  hang(): Promise<never>;
  ping(): string;
}

describe('RedisStreamsIO keys and Redis Cluster hash tags', function () {
  this.timeout(30_000);
  let url = '';
  let base = '';
  let raw: Redis | undefined;
  const channels: { destroy(): Promise<void> }[] = [];
  const unexpected: Error[] = [];

  beforeEach(() => {
    url = redisUrl();
    base = uniqueName('keys');
  });

  afterEach(async () => {
    await Promise.all(channels.splice(0).map((c) => c.destroy()));
    await raw?.quit();
    raw = undefined;
    await deleteKeys(url, `*${base}*`);
    expect(unexpected.splice(0), 'unexpected "error" events').to.deep.equal([]);
  });

  function channel(options: RedisStreamsIOOptions, api?: Partial<Api>) {
    const io = new RedisStreamsIO({ url, ...options });
    const ch = new RPCChannel<Partial<Api>, Api>(io, { timeout: 15_000, ...(api ? { expose: api } : {}) });
    channels.push(ch);
    return { io, ch };
  }

  async function scanKeys(pattern: string): Promise<string[]> {
    raw ??= new Redis(url);
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await raw.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    return keys.sort();
  }

  it('computes slots like Redis Cluster (known vectors)', () => {
    expect(crc16(Buffer.from('123456789'))).to.equal(0x31c3);
    expect(keySlot('somekey')).to.equal(11058);
    expect(keySlot('foo')).to.equal(12182);
    expect(keySlot('foo{hash_tag}')).to.equal(2515);
    expect(keySlot('{user1000}.following')).to.equal(keySlot('user1000'));
    expect(keySlot('a{}b')).to.equal(crc16(Buffer.from('a{}b')) % 16384);
  });

  it('stream "orders…" without a tag: inboxes and the dead-letter stream share its slot', async () => {
    const stream = `orders-${base}`;
    let started = 0;
    const hang = (): Promise<never> => {
      started++;
      return new Promise<never>(() => undefined);
    };
    const caller = channel({ stream, useConsumerGroup: true });
    caller.ch.on('error', (e) => unexpected.push(e));
    const first = channel({ stream, useConsumerGroup: true }, { hang });
    first.ch.on('error', (e) => unexpected.push(e));
    await first.io.waitUntilReady();
    const call = caller.ch.getAPI().hang();
    const rejected = expect(call).to.be.rejectedWith(RPCDeliveryError);
    await waitFor(() => started === 1);
    await first.ch.destroy(); // leaves the request pending on its consumer

    // A second worker takes it over after claimIdleMs; delivered twice > maxDeliveries 1: dead letter.
    const second = channel({ stream, useConsumerGroup: true, claimIdleMs: 100, maxDeliveries: 1 }, { hang });
    const reported: Error[] = [];
    second.ch.on('error', (e) => reported.push(e));
    await rejected;
    const err = (await call.catch((e: unknown) => e)) as RPCDeliveryError;
    expect(err.code).to.equal('ERR_RPC_DELIVERY');
    expect(err.deliveries).to.equal(1);
    expect(reported.map((e) => e.name)).to.deep.equal(['RPCDeliveryError']);
    expect(started, 'a dead-lettered request is not run again').to.equal(1);
    const pureCaller = channel({ stream });
    await pureCaller.io.waitUntilReady();

    const keys = await scanKeys(`*${base}*`);
    const expected = [
      stream,
      // Serving peers announce themselves (mode, group) on the control stream.
      `{${stream}}:control`,
      `{${stream}}:dead`,
      ...[caller, second, pureCaller].map((c) => `{${stream}}:inbox:${c.io.getSessionId()}`),
    ].sort();
    expect(keys).to.deep.equal(expected);
    const slot = keySlot(stream);
    console.log(`      ${keys.length} keys of ${stream}, all in slot ${slot}`);
    for (const key of keys) expect(keySlot(key), key).to.equal(slot);
    const dead = await (raw as Redis).xrange(`{${stream}}:dead`, '-', '+');
    expect(dead).to.have.length(1);
  });

  it('stream with an explicit tag "app:{t1}:rpc": derived keys append to the name and keep the tag', async () => {
    const streams = [`app:{t1}:rpc:${base}`, `app:{t1}:rpc:${base}:lb`];
    const server = channel({ stream: streams[0] }, { ping: () => 'b' });
    const client = channel({ stream: streams[0] });
    const worker = channel({ stream: streams[1], useConsumerGroup: true }, { ping: () => 'lb' });
    const lbClient = channel({ stream: streams[1], useConsumerGroup: true });
    for (const c of [server, client, worker, lbClient]) c.ch.on('error', (e) => unexpected.push(e));
    await Promise.all([server.io.waitUntilReady(), worker.io.waitUntilReady()]);
    expect(await client.ch.getAPI().ping()).to.equal('b');
    expect(await lbClient.ch.getAPI().ping()).to.equal('lb');

    const keys = await scanKeys(`*${base}*`);
    const expected = [
      ...streams,
      // Serving peers announce themselves (mode, group) on the control stream.
      ...streams.map((stream) => `${stream}:control`),
      ...[server, client].map((c) => `${streams[0]}:inbox:${c.io.getSessionId()}`),
      ...[worker, lbClient].map((c) => `${streams[1]}:inbox:${c.io.getSessionId()}`),
    ].sort();
    expect(keys).to.deep.equal(expected);
    const slot = keySlot('t1');
    console.log(`      ${keys.length} keys with tag {t1}, all in slot ${slot}`);
    for (const key of keys) expect(keySlot(key), key).to.equal(slot);
  });
});
