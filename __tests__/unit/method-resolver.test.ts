// Which paths of an exposed API a peer may call, driven through RPCChannel over the in-memory IO:
// accessors are never invoked, built-in methods are refused by identity of their prototypes
// (JavaScript-implemented ones like Buffer#fill included), and the user's own functions,
// namespaces and class methods stay callable.
import { createSecretKey } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Readable } from 'node:stream';
import { expect } from 'chai';
import { RPCChannel, RPCMethodNotFoundError, createMemoryIoPair } from '../../src/index.js';

type Loose = Record<string, unknown> & ((...args: unknown[]) => Promise<unknown>);

const open: RPCChannel<object, object>[] = [];
const unexpected: Error[] = [];

/** Serves `exposed`; returns a client proxy cast to a loose type so any path can be called. */
function setup(exposed: object): { api: Loose; server: RPCChannel<object, object> } {
  const [a, b] = createMemoryIoPair();
  const server = new RPCChannel<object, object>(a, { expose: exposed });
  const client = new RPCChannel<Record<string, never>, object>(b, { timeout: 2_000 });
  for (const channel of [server, client]) {
    channel.on('error', (e) => unexpected.push(e));
    open.push(channel);
  }
  return { api: client.getAPI() as unknown as Loose, server };
}

/** The proxy at a dotted path. */
function at(api: Loose, path: string): Loose {
  return path.split('.').reduce((p: Loose, key) => p[key] as Loose, api);
}

async function expectNotFound(api: Loose, path: string, ...args: unknown[]): Promise<void> {
  const err = (await at(api, path)(...args).catch((e: unknown) => e)) as RPCMethodNotFoundError;
  expect(err, path).to.be.instanceOf(RPCMethodNotFoundError);
  expect(err.code, path).to.equal('ERR_RPC_METHOD_NOT_FOUND');
  expect(err.method, path).to.equal(path);
}

afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.destroy()));
  expect(unexpected.splice(0), 'unexpected "error" events').to.deep.equal([]);
});

describe('method resolver: accessors are never invoked', () => {
  it('refuses a path through a throwing getter without running it, and keeps serving', async () => {
    let runs = 0;
    class Service {
      get db(): { query(): string } {
        runs++;
        throw new Error('no database');
      }
      ping(): string {
        return 'pong';
      }
    }
    const { api, server } = setup({ svc: new Service() });
    await expectNotFound(api, 'svc.db.query');
    await expectNotFound(api, 'svc.db');
    expect(runs, 'getter invocations').to.equal(0);
    // The read loop survived: later requests are still answered.
    expect(await at(api, 'svc.ping')()).to.equal('pong');
    expect(server.stats().handled).to.be.greaterThanOrEqual(1);
  });

  it('refuses own, inherited, static and setter-only accessors without running them', async () => {
    let runs = 0;
    const tools = { run: () => 'ran' };
    class Grandparent {
      get tools(): typeof tools {
        runs++;
        return tools;
      }
      get action(): () => string {
        runs++;
        return () => 'acted';
      }
      hello(): string {
        return 'hello';
      }
    }
    class Parent extends Grandparent {}
    class Child extends Parent {}
    class Statics {
      static get helper(): () => number {
        runs++;
        return () => 1;
      }
    }
    const instance = new Child();
    Object.defineProperty(instance, 'ownGetter', { get: () => (runs++, tools), enumerable: true });
    const exposed = {
      get lazy() {
        runs++;
        return tools;
      },
      get fn() {
        runs++;
        return () => 'x';
      },
      set sink(_: unknown) {
        runs++;
      },
      nested: Object.defineProperty(Object.create(null) as object, 'hidden', { get: () => (runs++, () => 'h') }),
      child: instance,
      Statics,
    };
    const { api } = setup(exposed);
    for (const path of ['lazy.run', 'lazy', 'fn', 'sink', 'nested.hidden', 'child.tools.run', 'child.tools', 'child.action', 'child.ownGetter.run', 'Statics.helper']) {
      await expectNotFound(api, path);
    }
    expect(runs, 'accessor invocations').to.equal(0);
    expect(await at(api, 'child.hello')()).to.equal('hello');
  });

  it('treats a throwing Proxy trap as not found and keeps serving', async () => {
    const hostile = new Proxy({}, {
      getOwnPropertyDescriptor() {
        throw new Error('trap');
      },
      getPrototypeOf() {
        throw new Error('trap');
      },
    });
    const { api } = setup({ hostile, friendly: new Proxy({ hi: () => 'hi' }, {}), ok: () => 'ok' });
    await expectNotFound(api, 'hostile.anything');
    await expectNotFound(api, 'hostile.deeper.still');
    expect(await at(api, 'friendly.hi')()).to.equal('hi');
    expect(await at(api, 'ok')()).to.equal('ok');
  });
});

describe('method resolver: built-in methods are refused, JavaScript-implemented ones too', () => {
  it('refuses Buffer, URLSearchParams, AbortController and stream methods, leaving the objects unchanged', async () => {
    const buf = Buffer.from('abcd');
    const params = new URLSearchParams('a=1');
    const controller = new AbortController();
    const stream = new Readable({ read() {} });
    const { api } = setup({ buf, params, controller, signal: controller.signal, stream });
    const paths = [
      'buf.fill', 'buf.write', 'buf.swap16', 'buf.writeUInt8', 'buf.readUInt8', 'buf.set',
      'params.append', 'params.set', 'params.delete', 'params.sort',
      'controller.abort', 'signal.addEventListener', 'signal.throwIfAborted',
      'stream.destroy', 'stream.push', 'stream.pause', 'stream.resume', 'stream.read', 'stream.emit', 'stream._read',
    ];
    for (const path of paths) await expectNotFound(api, path, 0, 'zz');
    expect(buf.toString()).to.equal('abcd');
    expect(params.toString()).to.equal('a=1');
    expect(controller.signal.aborted).to.equal(false);
    expect(stream.destroyed).to.equal(false);
    expect(stream.isPaused()).to.equal(false);
    expect(stream.readableFlowing).to.equal(null);
    expect(stream.readableLength).to.equal(0);
  });

  it('refuses methods of EventEmitter, collections, Date, Promise, Error, RegExp, typed arrays, timers and keys', async () => {
    const emitter = new EventEmitter();
    emitter.on('x', () => undefined);
    const timer = setInterval(() => undefined, 1_000_000);
    timer.unref();
    const exposed = {
      emitter,
      map: new Map([['k', 1]]),
      set: new Set([1]),
      weak: new WeakMap(),
      list: [1, 2, 3],
      date: new Date(0),
      promise: Promise.resolve(1),
      error: new Error('e'),
      regexp: /a/g,
      u8: new Uint8Array([1, 2]),
      f64: new Float64Array([1.5]),
      view: new DataView(new ArrayBuffer(2)),
      url: new URL('http://example.com/'),
      iterator: [1, 2][Symbol.iterator](),
      timer,
      key: createSecretKey(Buffer.from('0123456789abcdef')),
    };
    try {
      const { api } = setup(exposed);
      const paths = [
        'emitter.emit', 'emitter.on', 'emitter.removeAllListeners', 'emitter.setMaxListeners', 'emitter._events.x',
        'map.clear', 'map.set', 'set.add', 'set.clear', 'weak.set', 'list.push', 'list.fill', 'list.splice',
        'date.setTime', 'promise.catch', 'promise.finally', 'regexp.compile', 'regexp.exec', 'u8.fill', 'u8.set',
        'f64.fill', 'view.setInt8', 'url.constructor', 'iterator.next', 'timer.refresh', 'timer.close', 'key.export',
      ];
      for (const path of paths) await expectNotFound(api, path, 9);
      expect(emitter.listenerCount('x')).to.equal(1);
      expect(exposed.map.size).to.equal(1);
      expect(exposed.list).to.deep.equal([1, 2, 3]);
      expect(exposed.date.getTime()).to.equal(0);
      expect(Array.from(exposed.u8)).to.deep.equal([1, 2]);
      expect(exposed.iterator.next().value).to.equal(1);
    } finally {
      clearInterval(timer);
    }
  });

  it('refuses Object.prototype members and the forbidden segments everywhere', async () => {
    class Thing {
      hi(): string {
        return 'hi';
      }
      static make(): string {
        return 'made';
      }
    }
    const { api } = setup({ plain: { f: () => 1 }, thing: new Thing(), Thing, fn: () => 1 });
    const paths = [
      'plain.toLocaleString', 'plain.hasOwnProperty', 'plain.propertyIsEnumerable', 'plain.__defineGetter__', '__lookupGetter__', 'plain.f.call', 'plain.f.bind',
      'thing.constructor', 'thing.constructor.make', 'thing.__proto__.hi', 'Thing.prototype.hi', 'thing.isPrototypeOf',
      'fn.apply', 'Thing.name', 'Thing.make.call',
    ];
    for (const path of paths) await expectNotFound(api, path);
  });
});

describe('method resolver: the user\'s functions stay callable', () => {
  it('calls methods of user classes up to the grandparent, arrow fields, and nested namespaces', async () => {
    class Base {
      base(): string {
        return `base of ${this.name()}`;
      }
      name(): string {
        return 'base';
      }
    }
    class Middle extends Base {}
    class Leaf extends Middle {
      readonly arrow = (n: number): number => n + 1;
      override name(): string {
        return 'leaf';
      }
    }
    const bare = Object.assign(Object.create(null) as object, { deep: { hi: () => 'deep hi' } });
    const proto = { greet(this: { who: string }) { return `hi ${this.who}`; } };
    const exposed = { leaf: new Leaf(), bare, fromProto: Object.assign(Object.create(proto) as object, { who: 'proto' }) };
    const { api } = setup(exposed);
    expect(await at(api, 'leaf.base')()).to.equal('base of leaf');
    expect(await at(api, 'leaf.name')()).to.equal('leaf');
    expect(await at(api, 'leaf.arrow')(1)).to.equal(2);
    expect(await at(api, 'bare.deep.hi')()).to.equal('deep hi');
    expect(await at(api, 'fromProto.greet')()).to.equal('hi proto');
  });

  it('calls own methods of a class extending EventEmitter but none of EventEmitter\'s, nor its listeners', async () => {
    let heard = 0;
    class Service extends EventEmitter {
      readonly repo = { find: (id: number) => ({ id }) };
      greet(name: string): string {
        return `hi ${name}`;
      }
    }
    const svc = new Service();
    svc.on('secret', () => heard++);
    const { api } = setup({ svc });
    expect(await at(api, 'svc.greet')('bob')).to.equal('hi bob');
    expect(await at(api, 'svc.repo.find')(7)).to.deep.equal({ id: 7 });
    for (const path of ['svc.emit', 'svc.on', 'svc.listeners', 'svc._events.secret', 'svc._events', 'svc._maxListeners']) {
      await expectNotFound(api, path, 'secret');
    }
    expect(heard).to.equal(0);
  });

  it('calls functions exposed as values and their own static methods, not inherited statics', async () => {
    class Parent {
      static inherited(): string {
        return 'inherited';
      }
    }
    class Child extends Parent {
      static own(): string {
        return 'own';
      }
    }
    const fn = Object.assign(() => 'called', { sub: () => 'sub' });
    // A module namespace object (`import * as handlers`): null prototype, own data properties.
    const specifier: string = 'data:text/javascript,export const hi = () => "module hi";';
    const handlers = (await import(specifier)) as object;
    const { api } = setup({ Child, fn, now: Date.now, handlers });
    expect(await at(api, 'handlers.hi')()).to.equal('module hi');
    expect(await at(api, 'Child.own')()).to.equal('own');
    expect(await at(api, 'fn')()).to.equal('called');
    expect(await at(api, 'fn.sub')()).to.equal('sub');
    expect(await at(api, 'now')()).to.be.a('number');
    await expectNotFound(api, 'Child.inherited');
  });
});
