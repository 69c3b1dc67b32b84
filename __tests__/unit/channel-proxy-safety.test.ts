import { EventEmitter } from 'node:events';
import { expect } from 'chai';
import { RPCChannel, RPCInvalidArgumentError, RPCMethodNotFoundError, createMemoryIoPair } from '../../src/index.js';

type Loose = Record<string, unknown> & ((...args: unknown[]) => Promise<unknown>);

class Service extends EventEmitter {
  greet(name: string): string {
    return `hi ${name}`;
  }
}

function setup() {
  const [a, b] = createMemoryIoPair();
  const exposed = { list: [1, 2, 3], cache: new Map([['k', 1]]), when: new Date(0), svc: new Service(), ok: () => 'ok' };
  const server = new RPCChannel(a, { expose: exposed });
  const client = new RPCChannel<Record<string, never>, typeof exposed>(b, { timeout: 2000 });
  return { exposed, server, client, api: client.getAPI() as unknown as Loose };
}

describe('RPCChannel proxy safety', () => {
  const channels: RPCChannel<object, object>[] = [];
  afterEach(async () => {
    await Promise.all(channels.splice(0).map((c) => c.destroy()));
  });

  it('refuses methods of built-in prototypes reached through exposed values (Array, Map, Date, EventEmitter)', async () => {
    const { server, client, api, exposed } = setup();
    channels.push(server, client);
    for (const path of ['list.push', 'list.pop', 'cache.clear', 'cache.set', 'when.setTime', 'svc.emit', 'svc.on', 'svc.removeAllListeners']) {
      const fn = path.split('.').reduce((p: Loose, k) => p[k] as Loose, api);
      await expect(fn(), path).to.be.rejectedWith(RPCMethodNotFoundError);
    }
    expect(exposed.list).to.deep.equal([1, 2, 3]);
    expect(exposed.cache.size).to.equal(1);
    expect(exposed.when.getTime()).to.equal(0);
    // The user's own class methods remain callable.
    expect(await (api.svc as Loose & { greet(n: string): Promise<string> }).greet('bob')).to.equal('hi bob');
  });

  it('rejects a call of the root proxy at once, without sending anything', async () => {
    const { server, client, api } = setup();
    channels.push(server, client);
    const err = (await (api as unknown as () => Promise<unknown>)().catch((e: unknown) => e)) as RPCInvalidArgumentError;
    expect(err).to.be.instanceOf(RPCInvalidArgumentError);
    expect(err.code).to.equal('ERR_RPC_INVALID_ARGUMENT');
    expect(client.stats().sent).to.equal(0);
  });

  it('rejects a method path deeper than 32 levels at once', async () => {
    const { server, client, api } = setup();
    channels.push(server, client);
    let p: Loose = api;
    for (let i = 0; i < 40; i++) p = p[`n${i}`] as Loose;
    await expect(p()).to.be.rejectedWith(RPCInvalidArgumentError, /deeper than 32/);
    expect(client.stats().sent).to.equal(0);
  });

  it('converting or inspecting a proxy sends no request', async () => {
    const { server, client, api } = setup();
    channels.push(server, client);
    expect(() => String(api)).to.not.throw();
    expect(() => `${String(api.ok)}`).to.not.throw();
    expect(JSON.stringify({ api: api.ok })).to.be.a('string');
    await new Promise((r) => setTimeout(r, 20));
    expect(client.stats().sent).to.equal(0);
  });
});

describe('RPCChannel constructor arguments', () => {
  for (const [label, io] of [
    ['null', null],
    ['a string', 'redis://localhost'],
    ['an object without read/write', { on() {}, off() {} }],
  ] as const) {
    it(`rejects ${label} as the io with RPCInvalidArgumentError naming "io"`, () => {
      let caught: unknown;
      try {
        new RPCChannel(io as never);
      } catch (err) {
        caught = err;
      }
      expect(caught).to.be.instanceOf(RPCInvalidArgumentError);
      expect((caught as RPCInvalidArgumentError).argument).to.equal('io');
    });
  }
});
