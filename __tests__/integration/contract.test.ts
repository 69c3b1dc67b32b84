// The RPC contract every IO must honour, run unchanged over the in-memory pair and over
// RedisStreamsIO in broadcast and load-balanced mode against a real redis-server.
import { expect } from 'chai';
import {
  RPCChannel,
  RPCChannelClosedError,
  RPCMethodNotFoundError,
  RPCTimeoutError,
  RedisStreamsIO,
  createMemoryIoPair,
  type IoInterface,
} from '../../src/index.js';
import { deleteKeys, redisUrl, sleep, uniqueName } from '../support/env.js';

class DomainError extends Error {
  override name = 'DomainError';
  readonly code = 'E_DOMAIN';
  readonly retryable = false;
  constructor(
    message: string,
    readonly detail: { orderId: number; at: Date },
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

interface Value {
  buf: Buffer;
  bytes: Uint8Array;
  at: Date;
  map: Map<string, unknown>;
  big: bigint;
  nested: { when: Date; ids: bigint[] }[];
}

/** The API every server in the contract exposes. */
interface ContractApi {
  add(a: number, b: number): number;
  math: { nested: { mul(a: number, b: number): Promise<number> } };
  fail(): never;
  hang(): Promise<never>;
  progressSync(steps: number, onStep: (i: number) => void): string;
  progressAsync(steps: number, onStep: (i: number, label: string) => void): Promise<string>;
  echo(value: Value): Value;
}

const contractApi: ContractApi = {
  add: (a, b) => a + b,
  math: { nested: { mul: async (a, b) => a * b } },
  fail: () => {
    throw new DomainError('order 42 rejected', { orderId: 42, at: new Date('2024-05-06T07:08:09.010Z') }, {
      cause: new TypeError('quantity must be positive'),
    });
  },
  // Never settles and holds no timer: only the caller's timeout or destroy() ends the call.
  hang: () => new Promise<never>(() => undefined),
  progressSync: (steps, onStep) => {
    for (let i = 1; i <= steps; i++) onStep(i);
    return 'done';
  },
  progressAsync: async (steps, onStep) => {
    for (let i = 1; i <= steps; i++) {
      onStep(i, `step ${i}`);
      await sleep(2);
    }
    return 'done';
  },
  echo: (value) => value,
};

/** A fresh server/client IO pair on a transport; `ready` resolves once the server sees requests. */
interface Transport {
  ios(name: string): { serverIo: IoInterface; clientIo: IoInterface; ready(): Promise<void> };
  cleanup(name: string): Promise<void>;
}

const memory: Transport = {
  ios: () => {
    const [serverIo, clientIo] = createMemoryIoPair();
    return { serverIo, clientIo, ready: async () => undefined };
  },
  cleanup: async () => undefined,
};

function redis(useConsumerGroup: boolean): Transport {
  return {
    ios: (name) => {
      const url = redisUrl();
      const serverIo = new RedisStreamsIO({ url, stream: name, useConsumerGroup });
      const clientIo = new RedisStreamsIO({ url, stream: name, useConsumerGroup });
      return { serverIo, clientIo, ready: () => serverIo.waitUntilReady() };
    },
    cleanup: (name) => deleteKeys(redisUrl(), `*${name}*`),
  };
}

type Client = RPCChannel<Record<string, never>, ContractApi>;

/** Registers the contract suite for one transport. */
function rpcContract(label: string, transport: Transport): void {
  describe(`RPC contract over ${label}`, function () {
    this.timeout(30_000);
    let name = '';
    const channels: RPCChannel<object, object>[] = [];
    const unexpected: Error[] = [];

    async function connect(): Promise<{ client: Client; server: RPCChannel<ContractApi, Record<string, never>> }> {
      name = uniqueName('contract');
      const { serverIo, clientIo, ready } = transport.ios(name);
      const server = new RPCChannel<ContractApi, Record<string, never>>(serverIo, { expose: contractApi });
      const client: Client = new RPCChannel<Record<string, never>, ContractApi>(clientIo, { timeout: 10_000 });
      for (const channel of [server, client] as RPCChannel<object, object>[]) {
        channel.on('error', (e) => unexpected.push(e));
        channels.push(channel);
      }
      await ready();
      return { client, server };
    }

    afterEach(async () => {
      await Promise.all(channels.splice(0).map((c) => c.destroy()));
      await transport.cleanup(name);
      expect(unexpected.splice(0), 'unexpected "error" events').to.deep.equal([]);
    });

    it('calls a method and resolves with its result', async () => {
      const { client } = await connect();
      expect(await client.getAPI().add(2, 3)).to.equal(5);
    });

    it('calls methods in nested namespaces', async () => {
      const { client } = await connect();
      expect(await client.getAPI().math.nested.mul(6, 7)).to.equal(42);
    });

    it('rebuilds a remote error: name, message, code, own fields and cause', async () => {
      const { client } = await connect();
      const p = client.getAPI().fail();
      await expect(p).to.be.rejectedWith(Error, 'order 42 rejected');
      const err = (await p.catch((e: unknown) => e)) as DomainError;
      expect(err.name).to.equal('DomainError');
      expect(err.code).to.equal('E_DOMAIN');
      expect(err.retryable).to.equal(false);
      expect(err.detail).to.deep.equal({ orderId: 42, at: new Date('2024-05-06T07:08:09.010Z') });
      expect(err.cause).to.be.instanceOf(TypeError);
      expect((err.cause as TypeError).message).to.equal('quantity must be positive');
    });

    it('fails fast with RPCMethodNotFoundError for a method the server does not expose', async function () {
      this.timeout(5_000); // the proxy's timeout is 20 s: only a real answer can end this in time
      const { client } = await connect();
      const remote = client.getAPI({ timeout: 20_000 }) as unknown as { missing: { fn(): Promise<unknown> } };
      const p = remote.missing.fn();
      await expect(p).to.be.rejectedWith(RPCMethodNotFoundError);
      const err = (await p.catch((e: unknown) => e)) as RPCMethodNotFoundError;
      expect(err.code).to.equal('ERR_RPC_METHOD_NOT_FOUND');
      expect(err.method).to.equal('missing.fn');
    });

    it('rejects with RPCTimeoutError carrying the caller stack when no answer comes in time', async () => {
      const { client } = await connect();
      const p = client.getAPI({ timeout: 300 }).hang();
      await expect(p).to.be.rejectedWith(RPCTimeoutError);
      const err = (await p.catch((e: unknown) => e)) as RPCTimeoutError;
      expect(err.code).to.equal('ERR_RPC_TIMEOUT');
      expect(err.method).to.equal('hang');
      expect(err.timeoutMs).to.equal(300);
      expect(err.stack).to.include('contract.test.ts');
      expect(client.stats().timeouts).to.equal(1);
    });

    it('invokes callbacks called synchronously before the method returns, in order, before the result', async () => {
      const { client } = await connect();
      const seen: number[] = [];
      const result = await client.getAPI().progressSync(5, (i) => seen.push(i));
      expect(result).to.equal('done');
      expect(seen).to.deep.equal([1, 2, 3, 4, 5]);
    });

    it('invokes callbacks called between awaits, with several arguments', async () => {
      const { client } = await connect();
      const seen: string[] = [];
      const result = await client.getAPI().progressAsync(4, (i, label) => seen.push(`${i}:${label}`));
      expect(result).to.equal('done');
      expect(seen).to.deep.equal(['1:step 1', '2:step 2', '3:step 3', '4:step 4']);
    });

    it('destroy() rejects pending calls with RPCChannelClosedError, and later calls too', async () => {
      const { client } = await connect();
      const api = client.getAPI();
      const pending = [api.hang(), api.hang()];
      const settled = Promise.allSettled(pending);
      await sleep(50); // let the requests reach the server
      await client.destroy();
      for (const result of await settled) {
        expect(result.status).to.equal('rejected');
        const reason = (result as PromiseRejectedResult).reason as RPCChannelClosedError;
        expect(reason).to.be.instanceOf(RPCChannelClosedError);
        expect(reason.code).to.equal('ERR_RPC_CLOSED');
      }
      await expect(api.add(1, 1)).to.be.rejectedWith(RPCChannelClosedError);
    });

    it('round-trips Buffer, Uint8Array, Date, Map and BigInt, nested', async () => {
      const { client } = await connect();
      const value: Value = {
        buf: Buffer.from([0, 1, 2, 254, 255]),
        bytes: new Uint8Array([9, 8, 7, 0]),
        at: new Date('2024-01-02T03:04:05.678Z'),
        map: new Map<string, unknown>([['a', 1], ['b', { when: new Date(0), n: 2n }]]),
        big: 2n ** 70n + 1n,
        nested: [{ when: new Date(86_400_000), ids: [1n, -(2n ** 64n)] }],
      };
      const back = await client.getAPI().echo(value);
      expect(Buffer.isBuffer(back.buf), 'buf is a Buffer').to.equal(true);
      expect(back.buf.equals(value.buf)).to.equal(true);
      expect(back.bytes).to.be.instanceOf(Uint8Array);
      expect(Buffer.isBuffer(back.bytes), 'bytes is not a Buffer').to.equal(false);
      expect([...back.bytes]).to.deep.equal([9, 8, 7, 0]);
      expect(back.at).to.be.instanceOf(Date);
      expect(back.at.toISOString()).to.equal('2024-01-02T03:04:05.678Z');
      expect(back.map).to.be.instanceOf(Map);
      expect(back.map).to.deep.equal(value.map);
      expect(back.big).to.equal(2n ** 70n + 1n);
      expect(back.nested).to.deep.equal(value.nested);
    });

    it('answers 1,000 concurrent calls, each with its own result', async () => {
      const { client, server } = await connect();
      const api = client.getAPI();
      const results = await Promise.all(Array.from({ length: 1000 }, (_, i) => api.add(i, 1_000_000)));
      expect(results).to.deep.equal(Array.from({ length: 1000 }, (_, i) => i + 1_000_000));
      const stats = client.stats();
      expect(stats.duplicates).to.equal(0);
      expect(stats.dropped).to.equal(0);
      expect(server.stats().handled).to.equal(1000);
    });
  });
}

rpcContract('the in-memory IO pair', memory);
rpcContract('RedisStreamsIO (broadcast)', redis(false));
rpcContract('RedisStreamsIO (load-balanced)', redis(true));
