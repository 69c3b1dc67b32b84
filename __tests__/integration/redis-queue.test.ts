// Bounded inbound queue of RedisStreamsIO against a real redis-server: bursts lose nothing, a
// reader never pulls more than it has room for, and unhandled load-balanced requests stay pending.
// Queue scenarios run in a child process (fixtures/peer-queue-probe.ts) under a wall-clock limit,
// so a reader that busy-loops in microtasks fails its test instead of freezing mocha.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { RPCChannel, RedisStreamsIO } from '../../src/index.js';
import { deleteKeys, redisUrl, uniqueName, waitFor } from '../support/env.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../..');
const PROBE = path.join(here, 'fixtures', 'peer-queue-probe.ts');

type Phase = Record<string, unknown>;

const children = new Set<ChildProcess>();

/**
 * Runs one probe scenario and returns its reported phases by name.
 * @throws Error when the child crashes or is still running after `limitMs` (it is then SIGKILLed).
 */
async function runProbe(env: Record<string, string>, limitMs: number): Promise<Record<string, Phase>> {
  const child = spawn(process.execPath, ['--max-old-space-size=128', '--import', 'tsx', PROBE], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  let timedOut = false;
  const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, limitMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
  children.delete(child);
  const phases: Record<string, Phase> = {};
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('result ')) continue;
    const phase = JSON.parse(line.slice('result '.length)) as Phase;
    phases[String(phase.phase)] = phase;
  }
  const tail = stderr
    .split('\n')
    .filter((l) => l.trim() !== '' && !/^\s*\d+: 0x/.test(l))
    .slice(-6)
    .join('\n');
  const seen = JSON.stringify(phases);
  if (timedOut) {
    throw new Error(`probe ${env.PROBE} still running after ${limitMs} ms (starved event loop or leaked handle); phases: ${seen}\n${tail}`);
  }
  if (exit.code !== 0) throw new Error(`probe ${env.PROBE} crashed (exit ${exit.code}, signal ${exit.signal}); phases: ${seen}\n${tail}`);
  return phases;
}

describe('RedisStreamsIO bounded queue', function () {
  this.timeout(90_000);
  let url = '';
  let name = '';
  const channels: { destroy(): Promise<void> }[] = [];
  const unexpected: Error[] = [];
  let raw: Redis | undefined;

  beforeEach(() => {
    url = redisUrl();
    name = uniqueName('queue');
  });

  afterEach(async () => {
    for (const child of children) child.kill('SIGKILL');
    await Promise.all(channels.splice(0).map((c) => c.destroy()));
    await raw?.quit();
    raw = undefined;
    await deleteKeys(url, `*${name}*`);
    expect(unexpected.splice(0), 'unexpected "error" events').to.deep.equal([]);
  });

  const probeEnv = (probe: string, mode: 'broadcast' | 'group', maxQueue: number, extra: Record<string, string> = {}) => ({
    REDIS_URL: url,
    RPC_STREAM: name,
    RPC_MODE: mode,
    MAX_QUEUE: String(maxQueue),
    PROBE: probe,
    ...extra,
  });

  for (const mode of ['broadcast', 'group'] as const) {
    it(`${mode}: a 5,000-call burst through maxQueueSize 100 loses nothing`, async () => {
      // Regression (group): the reply-inbox reader used to hold every free slot during its blocking
      // XREAD, so with maxQueueSize <= 128 the XREADGROUP reader never got room (fixed in 5712ac1).
      const { burst } = await runProbe(probeEnv('burst', mode, 100, { CALLS: '5000' }), 60_000);
      console.log(`      ${mode} burst: ${JSON.stringify(burst)}`);
      expect(burst).to.include({ ok: 5000, wrong: 0, failed: 0, serverDropped: 0, clientDropped: 0, handled: 5000, duplicates: 0 });
      expect(burst?.errors).to.deep.equal([]);
    });

    it(`${mode}: a serving IO whose read() is not called queues exactly maxQueueSize (5), drops none, then delivers all 50 in order`, async () => {
      // Regression: broadcast used to split its reservation over two keys and busy-loop with one
      // free slot left (heap exhaustion); group mode read nothing at all (both fixed in 5712ac1).
      const phases = await runProbe(probeEnv('hold', mode, 5), 30_000);
      console.log(`      ${mode} hold: ${JSON.stringify(phases)}`);
      const pending = mode === 'group' ? 5 : null;
      expect(phases.held).to.deep.include({ received: 5, dropped: 0, pending, errors: [] });
      expect(phases.drained).to.deep.include({ count: 50, inOrder: true, dropped: 0, pending: mode === 'group' ? 0 : null, errors: [] });
    });

    it(`${mode}: a server with maxQueueSize 1 still answers calls`, async () => {
      // Regression: the same two faults as above, at their extreme (fixed in 5712ac1).
      const { tiny } = await runProbe(probeEnv('tiny', mode, 1), 30_000);
      expect(tiny).to.deep.equal({ phase: 'tiny', results: [3, 7], dropped: 0 });
    });
  }

  it('group: a worker whose in-flight requests fill maxQueueSize waits for answers instead of spinning', async () => {
    // Regression: with every in-flight slot taken while the queue had room, the group reader used to
    // wait on queue room that was already there, spinning in microtasks until the heap ran out.
    const { burst } = await runProbe(probeEnv('burst', 'group', 200, { CALLS: '1000', DELAY_MS: '50' }), 60_000);
    console.log(`      slow-handler burst: ${JSON.stringify(burst)}`);
    expect(burst).to.include({ ok: 1000, failed: 0, serverDropped: 0, clientDropped: 0 });
  });

  it('group: an IO that serves and calls gets its answers while its blocking group read holds queue room', async () => {
    // The group read reserves queue room for as long as XREADGROUP blocks; it must leave room for
    // the answers the same IO's inbox reader takes, or the calls starve until they time out.
    // A second worker answers some of the calls: those answers arrive while the first IO's group read blocks.
    const other = new RPCChannel<{ double(n: number): number }, Record<string, never>>(new RedisStreamsIO({ url, stream: name, useConsumerGroup: true }), {
      expose: { double: (n: number) => n * 2 },
    });
    const io = new RedisStreamsIO({ url, stream: name, useConsumerGroup: true });
    const both = new RPCChannel<{ double(n: number): number }, { double(n: number): number }>(io, { expose: { double: (n: number) => n * 2 }, timeout: 4000 });
    for (const c of [other, both] as RPCChannel<object, object>[]) {
      c.on('error', (e) => unexpected.push(e));
      channels.push(c);
    }
    const api = both.getAPI();
    for (let round = 0; round < 5; round++) {
      const results = await Promise.all(Array.from({ length: 100 }, (_, i) => api.double(i)));
      expect(results).to.deep.equal(Array.from({ length: 100 }, (_, i) => i * 2));
    }
    expect(both.stats()).to.include({ calls: 500, timeouts: 0, dropped: 0 });
  });

  it('group: requests answered out of a batch free their in-flight slots before the batch\'s slow request ends', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const api = { job: async (n: number) => (n === 0 ? (await gate, n) : n) };
    const workerIo = new RedisStreamsIO({ url, stream: name, useConsumerGroup: true, maxQueueSize: 2 });
    const worker = new RPCChannel<typeof api, Record<string, never>>(workerIo, { expose: api });
    const client = new RPCChannel<Record<string, never>, typeof api>(new RedisStreamsIO({ url, stream: name, useConsumerGroup: true }), { timeout: 10_000 });
    for (const c of [worker, client] as RPCChannel<object, object>[]) {
      c.on('error', (e) => unexpected.push(e));
      channels.push(c);
    }
    await workerIo.waitUntilReady();
    const order: string[] = [];
    const remote = client.getAPI();
    // One tick: one entry of 4 requests on a worker that holds 2 at once; request 0 waits for the gate.
    const batch = [0, 1, 2, 3].map((n) => remote.job(n).then((v) => void order.push(`batch ${v}`)));
    await waitFor(() => order.length === 3);
    // A later request fits the slots the 3 answered requests freed, while request 0 still runs.
    await remote.job(4).then((v) => void order.push(`later ${v}`));
    release();
    await Promise.all(batch);
    expect(order).to.deep.equal(['batch 1', 'batch 2', 'batch 3', 'later 4', 'batch 0']);
  });

  it('group: a request is not acknowledged before it is handled (XPENDING shows it), then is', async () => {
    const gates = new Map<number, () => void>();
    let started = 0;
    const api = {
      job: async (n: number) => {
        started++;
        await new Promise<void>((resolve) => gates.set(n, resolve));
        return n * 2;
      },
    };
    const workerIo = new RedisStreamsIO({ url, stream: name, useConsumerGroup: true });
    const worker = new RPCChannel<typeof api, Record<string, never>>(workerIo, { expose: api });
    const client = new RPCChannel<Record<string, never>, typeof api>(new RedisStreamsIO({ url, stream: name, useConsumerGroup: true }));
    for (const c of [worker, client] as RPCChannel<object, object>[]) {
      c.on('error', (e) => unexpected.push(e));
      channels.push(c);
    }
    raw = new Redis(url);
    const r = raw;
    const group = workerIo.getConsumerGroup();
    await workerIo.waitUntilReady();
    const pending = async (): Promise<number> => ((await r.xpending(name, group)) as [number])[0];

    // Written in the same tick, the call and the notification share one entry.
    const call = client.getAPI().job(21);
    await client.notify().job(1);
    await waitFor(() => started === 2);
    const summary = (await r.xpending(name, group)) as [number, string, string, [string, string][]];
    expect(summary[0], 'the entry carrying the call and the notification is pending while their handlers run').to.equal(1);
    expect(summary[3]).to.deep.equal([[workerIo.getConsumerName(), '1']]);

    gates.get(21)?.();
    expect(await call).to.equal(42);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await pending(), 'still pending: the notification in the same entry is running').to.equal(1);

    gates.get(1)?.();
    await waitFor(async () => (await pending()) === 0, { message: 'the entry was never acknowledged' });
    expect(workerIo.stats().acked, 'requests settled').to.equal(2);
    expect(workerIo.stats().ackedEntries, 'entries acknowledged').to.equal(1);
  });
});
