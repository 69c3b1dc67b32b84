// A Redis outage in the middle of a run is reported: at least one 'error' (RedisStreamsConnectionError)
// on every IO and on the channel above it while Redis is away, a bounded number (not one per
// reconnect attempt), and 'reconnect' once it is back. A dropped connection that reconnects at
// once (CLIENT KILL while Redis stays up) is reported with 'reconnect' only. Real redis-server
// processes, SIGKILLed and restarted on the same port.
import { expect } from 'chai';
import { RPCChannel, RedisStreamsConnectionError, RedisStreamsIO, type RemoteAPI } from '../../src/index.js';
import { sleep, uniqueName, waitFor } from '../support/env.js';
import { RedisServer } from '../support/redis-server.js';

interface Api {
  echo(n: number): number;
}

type Phase = 'before' | 'outage' | 'after';

/** What one IO and its channel reported, by phase. */
interface Watched {
  readonly label: string;
  readonly io: RedisStreamsIO;
  readonly channel: RPCChannel<object, object>;
  readonly ioErrors: { phase: Phase; error: Error }[];
  readonly channelErrors: { phase: Phase; error: Error }[];
  readonly reconnects: { phase: Phase; connection: string }[];
}

describe('RedisStreamsIO outage events', function () {
  this.timeout(60_000);
  let server: RedisServer | undefined;
  const watched: Watched[] = [];
  let phase: Phase = 'before';

  afterEach(async () => {
    await Promise.all(watched.splice(0).map((w) => w.channel.destroy()));
    await server?.stop();
    server = undefined;
    phase = 'before';
  });

  function watch(label: string, io: RedisStreamsIO, channel: RPCChannel<object, object>): Watched {
    const w: Watched = { label, io, channel, ioErrors: [], channelErrors: [], reconnects: [] };
    io.on('error', (error) => w.ioErrors.push({ phase, error }));
    io.on('reconnect', ({ connection }) => w.reconnects.push({ phase, connection }));
    channel.on('error', (error) => w.channelErrors.push({ phase, error }));
    watched.push(w);
    return w;
  }

  /** A serving and a calling IO in each mode, with their channels; returns the callers' proxies. */
  async function setup(url: string): Promise<{ apis: RemoteAPI<Api>[]; all: Watched[] }> {
    const apis: RemoteAPI<Api>[] = [];
    const all: Watched[] = [];
    for (const useConsumerGroup of [false, true]) {
      const mode = useConsumerGroup ? 'load-balanced' : 'broadcast';
      const stream = uniqueName(`outage-${mode}`);
      const opts = { url, stream, useConsumerGroup, blockTimeout: 500, claimIdleMs: 1000 };
      const serverIo = new RedisStreamsIO(opts);
      const callerIo = new RedisStreamsIO(opts);
      const serving = new RPCChannel<Api, Record<string, never>>(serverIo, { expose: { echo: (n: number) => n } });
      const caller = new RPCChannel<Record<string, never>, Api>(callerIo, { timeout: 2000 });
      all.push(watch(`${mode} server`, serverIo, serving as RPCChannel<object, object>), watch(`${mode} caller`, callerIo, caller as RPCChannel<object, object>));
      await Promise.all([serverIo.waitUntilReady(), callerIo.waitUntilReady()]);
      apis.push(caller.getAPI());
    }
    for (const api of apis) expect(await api.echo(1)).to.equal(1);
    return { apis, all };
  }

  /** Calls every 100 ms on every caller until stopped; failures during the outage are expected. */
  function load(apis: RemoteAPI<Api>[]): { stop: () => Promise<void> } {
    let stopped = false;
    const lanes = apis.map(async (api) => {
      for (let i = 0; !stopped; i++) {
        await api.echo(i).catch(() => undefined);
        await sleep(100);
      }
    });
    return {
      stop: async () => {
        stopped = true;
        await Promise.all(lanes);
      },
    };
  }

  function describeEvents(all: readonly Watched[]): string {
    return all
      .map(
        (w) =>
          `${w.label}: io errors ${JSON.stringify(w.ioErrors.map((e) => `${e.phase} ${e.error.name}: ${e.error.message}`))}` +
          ` channel errors ${w.channelErrors.length} reconnects ${JSON.stringify(w.reconnects)}`,
      )
      .join('\n');
  }

  it('redis-server SIGKILLed for 3 s during calls: one error per lost connection on each IO and channel, reconnect after, calls succeed again', async () => {
    const s = await RedisServer.start();
    server = s;
    const { apis, all } = await setup(s.url);
    const running = load(apis);
    await sleep(300);

    phase = 'outage';
    // restart(): SIGKILL, 3 s down, then the same port again.
    await s.restart({ downMs: 3000 });
    phase = 'after';
    await waitFor(() => all.every((w) => w.reconnects.length > 0), { timeoutMs: 15_000, message: `not every IO reconnected:\n${describeEvents(all)}` });
    for (const api of apis) {
      await waitFor(async () => (await api.echo(7).catch(() => undefined)) === 7, { timeoutMs: 15_000, message: 'calls do not succeed after the outage' });
    }
    await running.stop();
    const report = describeEvents(all);
    console.log(`      [outage]\n${report.replace(/^/gm, '        ')}`);

    for (const w of all) {
      const during = w.ioErrors.filter((e) => e.phase !== 'before').map((e) => e.error);
      expect(during.filter((e) => e instanceof RedisStreamsConnectionError), `${w.label}: RedisStreamsConnectionError on the IO during the outage\n${report}`).to.not.be.empty;
      for (const e of during) expect((e as RedisStreamsConnectionError).code, `${w.label}: ${e.message}`).to.equal('ERR_REDIS_CONNECTION');
      // One per connection (a command connection and up to two readers), not one per reconnect attempt.
      expect(during.length, `${w.label}: errors on the IO for one outage\n${report}`).to.be.at.most(3);
      expect(w.channelErrors.some((e) => e.phase !== 'before' && e.error instanceof RedisStreamsConnectionError), `${w.label}: the channel forwards it\n${report}`).to.equal(true);
      expect(w.reconnects.some((r) => r.connection === 'command'), `${w.label}: command connection reconnect`).to.equal(true);
      expect(w.ioErrors.filter((e) => e.phase === 'before'), `${w.label}: errors before the outage`).to.deep.equal([]);
    }
  });

  it('CLIENT KILL of every connection while Redis stays up: reported as reconnect (no error), calls go on', async () => {
    const s = await RedisServer.start();
    server = s;
    const { apis, all } = await setup(s.url);
    phase = 'outage';
    const killed = await s.clientKillAll();
    await waitFor(() => all.every((w) => w.reconnects.length > 0), { timeoutMs: 15_000, message: `not every IO reconnected:\n${describeEvents(all)}` });
    phase = 'after';
    for (const api of apis) {
      await waitFor(async () => (await api.echo(7).catch(() => undefined)) === 7, { timeoutMs: 15_000, message: 'calls do not succeed after CLIENT KILL' });
    }
    const report = describeEvents(all);
    console.log(`      [client kill] connections killed=${killed}\n${report.replace(/^/gm, '        ')}`);
    expect(killed).to.be.greaterThan(0);
    for (const w of all) {
      expect(w.ioErrors, `${w.label}: a drop that reconnects at once is not an outage\n${report}`).to.deep.equal([]);
      expect(w.reconnects.some((r) => r.connection === 'command'), `${w.label}: command connection reconnect`).to.equal(true);
    }
  });
});
