// Instrumentation seams (node:diagnostics_channel): what each phase of a call and of a handler run
// publishes, over the in-memory IO pair.
import diagnostics from 'node:diagnostics_channel';
import * as chai from 'chai';
import chaiAsPromised from 'chai-as-promised';
import { expect } from 'chai';
import {
  DIAGNOSTICS_CHANNELS,
  RPCChannel,
  RPCInvalidArgumentError,
  RPCMethodNotFoundError,
  RPCTimeoutError,
  createMemoryIoPair,
  getRequestContext,
  type RPCCallEvent,
  type RPCChannelEvent,
  type RPCHandleEvent,
} from '../../src/index.js';

chai.use(chaiAsPromised);

interface Api {
  add(a: number, b: number): number;
  fail(message: string): never;
  slow(ms: number): Promise<string>;
  meta(): Record<string, string>;
  log(line: string): void;
}

const api: Api = {
  add: (a, b) => a + b,
  fail: (message) => {
    throw new TypeError(message);
  },
  slow: (ms) => new Promise((resolve) => setTimeout(() => resolve('done'), ms)),
  meta: () => ({ ...getRequestContext()?.metadata }),
  log: () => undefined,
};

type Seen = { phase: string; event: unknown };

/** Subscribes to every channel; returns what was published, in order, and an unsubscribe. */
function record(): { seen: Seen[]; stop(): void } {
  const seen: Seen[] = [];
  const subs = Object.entries(DIAGNOSTICS_CHANNELS).map(([phase, name]) => {
    const fn = (event: unknown): void => void seen.push({ phase, event: { ...(event as object) } });
    diagnostics.subscribe(name, fn);
    return () => diagnostics.unsubscribe(name, fn);
  });
  return { seen, stop: () => subs.forEach((s) => s()) };
}

const open: { destroy(): Promise<void> }[] = [];
const recorders: { stop(): void }[] = [];
afterEach(async () => {
  recorders.splice(0).forEach((r) => r.stop());
  await Promise.all(open.splice(0).map((c) => c.destroy()));
});

function setUp(timeout = 2000) {
  const rec = record();
  recorders.push(rec);
  const [a, b] = createMemoryIoPair();
  const server = new RPCChannel<Api, Record<string, never>>(a, { expose: api });
  const client = new RPCChannel<Record<string, never>, Api>(b, { timeout });
  open.push(server, client);
  return { ...rec, server, client, serverIo: a, clientIo: b };
}

const phases = (seen: Seen[], prefix: string): string[] => seen.filter((s) => s.phase.startsWith(prefix)).map((s) => s.phase);
const ofPhase = <T>(seen: Seen[], phase: string): T[] => seen.filter((s) => s.phase === phase).map((s) => s.event as T);

describe('diagnostics channels', () => {
  it('publishes start, written and settle of a call, and start and end of its handler run, with plain data', async () => {
    const { seen, client, clientIo, serverIo } = setUp();
    expect(await client.getAPI({ metadata: { tenant: 't1' } }).add(1, 2)).to.equal(3);
    expect(phases(seen, 'call')).to.deep.equal(['callStart', 'callWritten', 'callSettle']);
    expect(phases(seen, 'handle')).to.deep.equal(['handleStart', 'handleEnd']);
    const [start] = ofPhase<RPCCallEvent>(seen, 'callStart');
    const [settle] = ofPhase<RPCCallEvent>(seen, 'callSettle');
    expect(start).to.include({ method: 'add', notification: false, endpoint: clientIo.id, destination: clientIo.name, group: undefined, loadBalanced: false, timeoutMs: 2000 });
    expect(start?.metadata).to.deep.equal({ tenant: 't1' });
    expect(start?.bytes).to.equal(undefined);
    expect(settle?.id).to.equal(start?.id);
    expect(settle?.bytes).to.be.a('number').greaterThan(10);
    expect(settle?.durationMs).to.be.a('number').at.least(0);
    expect(settle?.error).to.equal(undefined);
    const [hs] = ofPhase<RPCHandleEvent>(seen, 'handleStart');
    const [he] = ofPhase<RPCHandleEvent>(seen, 'handleEnd');
    expect(hs).to.include({ id: start?.id, method: 'add', notification: false, caller: clientIo.id, endpoint: serverIo.id, destination: serverIo.name });
    expect(hs?.bytes).to.equal(settle?.bytes);
    expect(hs?.metadata).to.deep.equal({ tenant: 't1' });
    expect(he?.durationMs).to.be.a('number').at.least(0);
    expect(he?.error).to.equal(undefined);
  });

  it('publishes the same event object to every phase of one call', async () => {
    const { client } = setUp();
    const objects: unknown[] = [];
    const names = [DIAGNOSTICS_CHANNELS.callStart, DIAGNOSTICS_CHANNELS.callWritten, DIAGNOSTICS_CHANNELS.callSettle];
    const fn = (event: unknown): void => void objects.push(event);
    names.forEach((n) => diagnostics.subscribe(n, fn));
    try {
      await client.getAPI().add(2, 2);
    } finally {
      names.forEach((n) => diagnostics.unsubscribe(n, fn));
    }
    expect(objects).to.have.length(3);
    expect(objects[1]).to.equal(objects[0]);
    expect(objects[2]).to.equal(objects[0]);
  });

  it('reports a remote failure on settle and on the handler end, and a timeout on settle', async () => {
    const { seen, client } = setUp(150);
    await expect(client.getAPI().fail('nope')).to.be.rejectedWith(TypeError, 'nope');
    await expect(client.getAPI().slow(1000)).to.be.rejectedWith(RPCTimeoutError);
    const settles = ofPhase<RPCCallEvent>(seen, 'callSettle');
    expect(settles.map((s) => s.error?.name)).to.deep.equal(['TypeError', 'RPCTimeoutError']);
    const [failed] = ofPhase<RPCHandleEvent>(seen, 'handleEnd');
    expect(failed?.error).to.be.instanceOf(TypeError);
  });

  it('publishes a handler end with the error for a request that cannot run (method not found)', async () => {
    const { seen, client } = setUp();
    const anyApi = client.getAPI() as unknown as { missing(): Promise<void> };
    await expect(anyApi.missing()).to.be.rejectedWith(RPCMethodNotFoundError);
    const [end] = ofPhase<RPCHandleEvent>(seen, 'handleEnd');
    expect(end?.method).to.equal('missing');
    expect(end?.error).to.be.instanceOf(RPCMethodNotFoundError);
  });

  it('settles a call whose arguments cannot be encoded, with the error', async () => {
    const { seen, client } = setUp();
    const big = 'x'.repeat(2 * 1024 * 1024);
    await expect(client.getAPI().add(big as unknown as number, 1)).to.be.rejectedWith(/maxMessageBytes|larger/);
    const [settle] = ofPhase<RPCCallEvent>(seen, 'callSettle');
    expect(settle?.error?.name).to.equal('RPCPayloadTooLargeError');
    expect(phases(seen, 'call')).to.deep.equal(['callStart', 'callSettle']);
  });

  it('publishes a notification as start, written and settle once written', async () => {
    const { seen, client } = setUp();
    await client.notify().log('hi');
    expect(phases(seen, 'call')).to.deep.equal(['callStart', 'callWritten', 'callSettle']);
    expect(ofPhase<RPCCallEvent>(seen, 'callStart')[0]?.notification).to.equal(true);
  });

  it('sends what a call:start subscriber puts in the carrier as request metadata, over the proxy entries', async () => {
    const { client } = setUp();
    const inject = (event: unknown): void => {
      const { carrier } = event as RPCCallEvent;
      carrier.traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
      carrier.tenant = 'from-carrier';
    };
    diagnostics.subscribe(DIAGNOSTICS_CHANNELS.callStart, inject);
    try {
      expect(await client.getAPI({ metadata: { tenant: 't1', user: 'u' } }).meta()).to.deep.equal({
        tenant: 'from-carrier',
        user: 'u',
        traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      });
    } finally {
      diagnostics.unsubscribe(DIAGNOSTICS_CHANNELS.callStart, inject);
    }
    // Unsubscribed: the proxy's metadata only.
    expect(await client.getAPI({ metadata: { tenant: 't1' } }).meta()).to.deep.equal({ tenant: 't1' });
  });

  it('leaves out carrier entries that break the metadata limits and reports them', async () => {
    const { client } = setUp();
    const errors: Error[] = [];
    client.on('error', (e) => errors.push(e));
    const inject = (event: unknown): void => void ((event as RPCCallEvent).carrier.big = 'x'.repeat(5000));
    diagnostics.subscribe(DIAGNOSTICS_CHANNELS.callStart, inject);
    try {
      expect(await client.getAPI({ metadata: { tenant: 't1' } }).meta()).to.deep.equal({ tenant: 't1' });
    } finally {
      diagnostics.unsubscribe(DIAGNOSTICS_CHANNELS.callStart, inject);
    }
    expect(errors).to.have.length(1);
    expect(errors[0]).to.be.instanceOf(RPCInvalidArgumentError);
    expect((errors[0] as RPCInvalidArgumentError).code).to.equal('ERR_RPC_INVALID_ARGUMENT');
  });

  it('runs the handler inside the scope a handle:start subscriber sets, once', async () => {
    const { client } = setUp();
    let inScope = false;
    let scopes = 0;
    let ranInScope: boolean | undefined;
    const server = (open[0] as RPCChannel<Api, Record<string, never>>);
    server.expose({ ...api, add: (a, b) => ((ranInScope = inScope), a + b) });
    const setScope = (event: unknown): void => {
      (event as RPCHandleEvent).scope = <T>(run: () => T): T => {
        scopes++;
        inScope = true;
        try {
          return run();
        } finally {
          inScope = false;
        }
      };
    };
    diagnostics.subscribe(DIAGNOSTICS_CHANNELS.handleStart, setScope);
    try {
      expect(await client.getAPI().add(3, 4)).to.equal(7);
    } finally {
      diagnostics.unsubscribe(DIAGNOSTICS_CHANNELS.handleStart, setScope);
    }
    expect(ranInScope).to.equal(true);
    expect(scopes).to.equal(1);
  });

  it('publishes channel open and close with a stats() reader', async () => {
    const rec = record();
    recorders.push(rec);
    const [a, b] = createMemoryIoPair();
    const server = new RPCChannel<Api, Record<string, never>>(a, { expose: api });
    const client = new RPCChannel<Record<string, never>, Api>(b);
    await client.getAPI().add(1, 1);
    const opened = ofPhase<RPCChannelEvent>(rec.seen, 'channelOpen');
    expect(opened.map((o) => o.endpoint)).to.deep.equal([a.id, b.id]);
    expect(opened[1]?.stats().calls).to.equal(1);
    expect(opened[0]?.stats().handled).to.equal(1);
    await client.destroy();
    await server.destroy();
    expect(ofPhase<RPCChannelEvent>(rec.seen, 'channelClose').map((o) => o.endpoint)).to.deep.equal([a.id, b.id].reverse());
  });

  it('publishes nothing once unsubscribed', async () => {
    const { seen, stop, client } = setUp();
    stop();
    const before = seen.length;
    await client.getAPI().add(1, 2);
    await client.notify().log('x');
    expect(seen.length).to.equal(before);
  });
});
