// Type tests of the public surface: RPCChannel<Local, Remote>, getAPI(), notify().
// Type-checked by `npm run test:types` (tsc -p tsconfig.test.json); never run.
// Each `@ts-expect-error` line must fail to compile; tsc reports an unused one.
import {
  RPCChannel,
  createMemoryIoPair,
  type NotifyAPI,
  type RemoteAPI,
  type RPCChannelOptions,
  type RPCStats,
  type RPCTimeoutError,
} from '../../src/index.js';
import { expectType, type Equal, type Expect } from './type-assertions.js';

interface User {
  id: number;
  name: string;
  createdAt: Date;
}

/** The API the server exposes. */
interface ServerApi {
  version: string;
  limits: { max: number };
  ping(): string;
  add(a: number, b: number): number;
  greet(name: string, punctuation?: string): string;
  sum(...values: number[]): number;
  log(message: string): void;
  flush(): Promise<void>;
  users: {
    get(id: number): Promise<User>;
    find(query: { name?: string; limit: number }): Promise<User[]>;
    admin: {
      audit: {
        entries(since: Date): Promise<Map<string, Date>>;
      };
    };
  };
  nested(): Promise<Promise<string>>;
  thenable(): PromiseLike<boolean>;
  download(url: string, onProgress: (percent: number) => void): Promise<Uint8Array>;
}

/** The API the client exposes back to the server. */
interface ClientApi {
  notifyProgress(percent: number): void;
}

declare const client: RPCChannel<ClientApi, ServerApi>;
const api = client.getAPI();

// ---------------------------------------------------------------------------
// Results are Promise<Awaited<R>>, parameters are kept.
// ---------------------------------------------------------------------------
expectType<Promise<string>>()(api.ping());
expectType<Promise<number>>()(api.add(1, 2));
expectType<Promise<string>>()(api.greet('Ada'));
expectType<Promise<string>>()(api.greet('Ada', '!'));
expectType<Promise<number>>()(api.sum());
expectType<Promise<number>>()(api.sum(1, 2, 3, 4));
expectType<Promise<void>>()(api.log('x'));
expectType<Promise<void>>()(api.flush());
expectType<Promise<User>>()(api.users.get(1));
expectType<Promise<User[]>>()(api.users.find({ limit: 10 }));
expectType<Promise<Map<string, Date>>>()(api.users.admin.audit.entries(new Date()));
expectType<Promise<string>>()(api.nested()); // Promise<Promise<string>> is awaited once and for all
expectType<Promise<boolean>>()(api.thenable());
expectType<Promise<Uint8Array>>()(api.download('u', (percent) => expectType<number>()(percent)));

type _Params = Expect<Equal<Parameters<typeof api.add>, [a: number, b: number]>>;
type _Optional = Expect<Equal<Parameters<typeof api.greet>, [name: string, punctuation?: string]>>;
type _Method = Expect<Equal<RemoteAPI<ServerApi>['users']['get'], (id: number) => Promise<User>>>;
// Only functions and namespaces are part of the proxy; plain values are not.
type _Keys = Expect<Equal<keyof RemoteAPI<ServerApi>, Exclude<keyof ServerApi, 'version'>>>;

async function awaitedResults(): Promise<void> {
  const sum: number = await api.add(1, 2);
  const user: User = await api.users.get(sum);
  const name: string = user.name;
  const entries: Map<string, Date> = await api.users.admin.audit.entries(user.createdAt);
  void name;
  void entries;
}
void awaitedResults;

// A per-proxy timeout does not change the type.
const quick = client.getAPI({ timeout: 100 });
type _SameProxy = Expect<Equal<typeof quick, RemoteAPI<ServerApi>>>;

// ---------------------------------------------------------------------------
// Wrong uses of the proxy.
// ---------------------------------------------------------------------------
// @ts-expect-error wrong argument type
void api.add('1', 2);
// @ts-expect-error wrong argument type in a nested namespace
void api.users.get('1');
// @ts-expect-error wrong property type inside an object argument
void api.users.find({ limit: '10' });
// @ts-expect-error missing required property inside an object argument
void api.users.find({ name: 'x' });
// @ts-expect-error too many arguments
void api.add(1, 2, 3);
// @ts-expect-error too many arguments to a method taking none
void api.ping(1);
// @ts-expect-error too few arguments
void api.add(1);
// @ts-expect-error too few arguments: the callback is required
void api.download('u');
// @ts-expect-error the callback gets a number, not a string
void api.download('u', (percent: string) => percent);
// @ts-expect-error unknown method
void api.substract(3, 1);
// @ts-expect-error unknown method in a known namespace
void api.users.remove(1);
// @ts-expect-error unknown namespace
void api.orders.list();
// @ts-expect-error unknown namespace deeper down
void api.users.admin.billing.refund(1);
// @ts-expect-error calling a non-function member
void api.version();
// @ts-expect-error a value member is not readable through the proxy either
void api.limits.max;
// @ts-expect-error a namespace is not callable
void api.users();
// @ts-expect-error the proxy is read-only
api.ping = async () => 'pong';

async function wrongResults(): Promise<void> {
  // @ts-expect-error the result is a number, not a string
  const s: string = await api.add(1, 2);
  // @ts-expect-error a call returns a Promise: using it as the value needs an await
  const n: number = api.add(1, 2);
  // @ts-expect-error the Promise has no toFixed
  api.add(1, 2).toFixed();
  // @ts-expect-error a void method resolves with nothing usable
  const v: string = await api.log('x');
  // @ts-expect-error the awaited user has no email
  (await api.users.get(1)).email;
  void s;
  void n;
  void v;
}
void wrongResults;

// @ts-expect-error the timeout is a number of milliseconds
client.getAPI({ timeout: '100' });
// @ts-expect-error unknown call option
client.getAPI({ retries: 3 });

// ---------------------------------------------------------------------------
// notify(): same parameters, Promise<void> results.
// ---------------------------------------------------------------------------
const notify = client.notify();
expectType<Promise<void>>()(notify.add(1, 2));
expectType<Promise<void>>()(notify.users.get(1));
expectType<Promise<void>>()(notify.users.admin.audit.entries(new Date()));
type _NotifyParams = Expect<Equal<Parameters<typeof notify.add>, [a: number, b: number]>>;
type _NotifyType = Expect<Equal<typeof notify, NotifyAPI<ServerApi>>>;

async function wrongNotifications(): Promise<void> {
  // @ts-expect-error a notification has no result
  const n: number = await notify.add(1, 2);
  // @ts-expect-error wrong argument type
  await notify.add(1, '2');
  // @ts-expect-error too few arguments
  await notify.users.get();
  // @ts-expect-error unknown method
  await notify.unknown();
  // @ts-expect-error calling a non-function member
  await notify.version();
  void n;
}
void wrongNotifications;

// ---------------------------------------------------------------------------
// The channel itself: what it exposes must match Local; events are typed.
// ---------------------------------------------------------------------------
function channels(): void {
  const [a, b] = createMemoryIoPair();
  const server = new RPCChannel<ServerApi, ClientApi>(a, {
    timeout: 1_000,
    expose: {
      version: '1',
      limits: { max: 1 },
      ping: () => 'pong',
      add: (x, y) => x + y,
      greet: (name, punctuation = '.') => `Hello, ${name}${punctuation}`,
      sum: (...values) => values.reduce((s, v) => s + v, 0),
      log: () => undefined,
      flush: async () => undefined,
      users: {
        get: async (id) => ({ id, name: 'n', createdAt: new Date() }),
        find: async () => [],
        admin: { audit: { entries: async () => new Map() } },
      },
      nested: () => Promise.resolve('x') as unknown as Promise<Promise<string>>,
      thenable: () => Promise.resolve(true),
      download: async (_url, onProgress) => {
        onProgress(100);
        return new Uint8Array();
      },
    },
  });
  const peer = new RPCChannel<ClientApi, ServerApi>(b);
  peer.expose({ notifyProgress: () => undefined });
  expectType<Promise<void>>()(server.getAPI().notifyProgress(5));

  // @ts-expect-error the exposed API is checked against Local: no extra members
  peer.expose({ notifyProgress: () => undefined, extra: 1 } satisfies ClientApi);
  // @ts-expect-error expose() requires every method of Local
  peer.expose({});
  // @ts-expect-error a handler with the wrong parameter type
  peer.expose({ notifyProgress: (percent: string) => void percent });
  // @ts-expect-error the expose option is checked against Local too
  const badOptions: RPCChannelOptions<ClientApi> = { expose: { notifyProgress: 42 } };
  void badOptions;
  // @ts-expect-error serialization is 'superjson', 'json' or a Serializer
  new RPCChannel<ClientApi, ServerApi>(b, { serialization: 'xml' });

  peer.on('error', (error) => expectType<Error>()(error));
  peer.on('duplicate', (info) => expectType<{ id: string }>()(info));
  peer.on('expired', (info) => expectType<{ id: string; method: string }>()(info));
  peer.on('peer-destroyed', (peerId) => expectType<string>()(peerId));
  // @ts-expect-error unknown event
  peer.on('message', () => undefined);
  // @ts-expect-error wrong listener signature
  peer.on('error', (error: string) => error);
  expectType<RPCStats>()(peer.stats());
  expectType<Promise<void>>()(peer.destroy());
}
void channels;

// Library errors carry their fields in the types.
declare const timeout: RPCTimeoutError;
expectType<'ERR_RPC_TIMEOUT'>()(timeout.code);
expectType<number>()(timeout.timeoutMs);
// @ts-expect-error code is a literal, not any string
const otherCode: 'ERR_RPC_CLOSED' = timeout.code;
void otherCode;

// The default type parameters serve nothing and call nothing.
declare const bare: RPCChannel;
// @ts-expect-error no remote API was declared: no member is callable
void bare.getAPI().anything();

// ---------------------------------------------------------------------------
// The helpers themselves reject what they should.
// ---------------------------------------------------------------------------
// @ts-expect-error a different result type
expectType<Promise<string>>()(api.add(1, 2));
// @ts-expect-error a wider type is not the same type
expectType<Promise<unknown>>()(api.add(1, 2));
// @ts-expect-error a narrower type is not the same type either
expectType<Promise<1>>()(api.add(1, 2));
// @ts-expect-error Equal tells any apart
type _NotAny = Expect<Equal<any, number>>; // eslint-disable-line @typescript-eslint/no-explicit-any
