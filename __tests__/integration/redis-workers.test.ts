// Load-balanced mode with real worker processes (fixtures/worker-pool.ts) against a real
// redis-server: each request runs exactly once in the pool, answers and callback invocations reach
// only their caller, and two consumer groups on one stream are independent pools.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { RPCChannel, RedisStreamsIO } from '../../src/index.js';
import { deleteKeys, redisUrl, uniqueName, waitFor } from '../support/env.js';
import type { WorkResult, WorkerApi } from './fixtures/worker-pool.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../..');
const WORKER = path.join(here, 'fixtures', 'worker-pool.ts');

interface Worker {
  readonly pid: number;
  readonly group: string;
  readonly lines: string[];
  /** SIGTERM, then the clean exit; resolves with the `handled` count the worker printed. */
  stop(): Promise<number>;
}

const live = new Set<ChildProcess>();

async function startWorker(url: string, stream: string, group: string): Promise<Worker> {
  const proc = spawn(process.execPath, ['--import', 'tsx', WORKER], {
    cwd: repoRoot,
    env: { ...process.env, REDIS_URL: url, RPC_STREAM: stream, RPC_GROUP: group },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(proc);
  const lines: string[] = [];
  let stderr = '';
  createInterface({ input: proc.stdout }).on('line', (line) => lines.push(line));
  proc.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('close', (code, signal) => resolve({ code, signal })),
  );
  await waitFor(() => lines.includes('ready') || proc.exitCode !== null, { timeoutMs: 20_000, message: `worker not ready: ${stderr}` });
  if (!lines.includes('ready')) throw new Error(`worker exited during start-up (${proc.exitCode}):\n${stderr}`);
  const stop = async (): Promise<number> => {
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    const { code, signal } = await closed.finally(() => clearTimeout(timer));
    live.delete(proc);
    expect({ code, signal }, `worker ${proc.pid} must exit by itself after destroy() (a leak keeps it alive)`).to.deep.equal({ code: 0, signal: null });
    expect(stderr, `worker ${proc.pid} reported errors`).not.to.include('worker error');
    const handled = lines.find((l) => l.startsWith('handled '));
    expect(handled, `worker ${proc.pid} printed no handled count`).to.be.a('string');
    return Number(handled?.slice('handled '.length));
  };
  return { pid: proc.pid as number, group, lines, stop };
}

/** How often each worker printed `ran <tag> <n>`, keyed by n. */
function runsOf(workers: readonly Worker[], tag: string): Map<number, number[]> {
  const runs = new Map<number, number[]>();
  for (const worker of workers) {
    for (const line of worker.lines) {
      const [word, t, n] = line.split(' ');
      if (word !== 'ran' || t !== tag) continue;
      runs.set(Number(n), [...(runs.get(Number(n)) ?? []), worker.pid]);
    }
  }
  return runs;
}

function distribution(results: readonly WorkResult[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of results) counts[r.pid] = (counts[r.pid] ?? 0) + 1;
  return counts;
}

type Caller = RPCChannel<Record<string, never>, WorkerApi>;

describe('RedisStreamsIO load-balanced mode with worker processes', function () {
  this.timeout(60_000);
  let url = '';
  const channels: RPCChannel<object, object>[] = [];
  const unexpected: Error[] = [];

  function caller(stream: string, group = 'pool'): Caller {
    const channel = new RPCChannel<Record<string, never>, WorkerApi>(
      new RedisStreamsIO({ url, stream, consumerGroup: group, useConsumerGroup: true }),
      { timeout: 20_000 },
    );
    channel.on('error', (e) => unexpected.push(e));
    channels.push(channel as RPCChannel<object, object>);
    return channel;
  }

  before(() => {
    url = redisUrl();
  });

  afterEach(async () => {
    await Promise.all(channels.splice(0).map((c) => c.destroy()));
    expect(unexpected.splice(0), 'unexpected "error" events').to.deep.equal([]);
  });

  after(() => {
    for (const proc of live) proc.kill('SIGKILL');
  });

  describe('one pool of 3 worker processes', () => {
    const stream = uniqueName('pool');
    let workers: Worker[] = [];

    before(async () => {
      workers = await Promise.all([1, 2, 3].map(() => startWorker(url, stream, 'pool')));
    });

    after(async () => {
      const handled = await Promise.all(workers.map((w) => w.stop()));
      console.log(`      handled per worker process: ${JSON.stringify(handled)}`);
      const raw = new Redis(url);
      try {
        const [pending] = (await raw.xpending(stream, 'pool')) as [number];
        expect(pending, 'requests left pending in the group').to.equal(0);
      } finally {
        await raw.quit();
      }
      await deleteKeys(url, `*${stream}*`);
    });

    it('runs each of 300 calls exactly once across the workers and answers all of them', async () => {
      const client = caller(stream);
      const api = client.getAPI();
      const results = await Promise.all(Array.from({ length: 300 }, (_, i) => api.work('once', i, 2)));
      expect(results.map((r) => r.n)).to.deep.equal(Array.from({ length: 300 }, (_, i) => i));
      const byPid = distribution(results);
      console.log(`      300 calls over worker pids: ${JSON.stringify(byPid)}`);
      expect(Object.keys(byPid).length, 'work spread over more than one worker').to.be.greaterThan(1);
      for (const pid of Object.keys(byPid)) expect(workers.map((w) => String(w.pid))).to.include(pid);
      // A worker's "ran" line travels through its stdout pipe and can arrive after the answer travelled through Redis.
      await waitFor(() => runsOf(workers, 'once').size >= 300, { message: 'workers did not report 300 runs' });
      const runs = runsOf(workers, 'once');
      expect(runs.size).to.equal(300);
      const twice = [...runs].filter(([, pids]) => pids.length !== 1);
      expect(twice, 'calls run more than once').to.deep.equal([]);
      for (const r of results) expect(runs.get(r.n)).to.deep.equal([r.pid]);
      expect(client.stats().duplicates).to.equal(0);
    });

    it('answers two concurrent callers with their own results only', async () => {
      const [a, b] = [caller(stream), caller(stream)];
      const [ra, rb] = await Promise.all([
        Promise.all(Array.from({ length: 150 }, (_, i) => a.getAPI().work('client-a', i, 1))),
        Promise.all(Array.from({ length: 150 }, (_, i) => b.getAPI().work('client-b', i, 1))),
      ]);
      expect(ra.every((r, i) => r.tag === 'client-a' && r.n === i)).to.equal(true);
      expect(rb.every((r, i) => r.tag === 'client-b' && r.n === i)).to.equal(true);
      for (const c of [a, b]) {
        expect(c.stats().duplicates, 'an answer meant for the other caller arrived').to.equal(0);
        expect(c.stats().received, 'only its own 150 answers reached its inbox').to.equal(150);
      }
    });

    it('a process that is worker and caller at once gets all its replies', async () => {
      const selfApi: WorkerApi = {
        work: async (tag, n) => ({ pid: process.pid, group: 'pool', tag, n }),
        progress: async (tag, steps) => ({ pid: process.pid, group: 'pool', tag, n: steps }),
      };
      const both = new RPCChannel<WorkerApi, WorkerApi>(new RedisStreamsIO({ url, stream, consumerGroup: 'pool', useConsumerGroup: true }), {
        expose: selfApi,
        timeout: 20_000,
      });
      both.on('error', (e) => unexpected.push(e));
      channels.push(both as RPCChannel<object, object>);
      const results = await Promise.all(Array.from({ length: 200 }, (_, i) => both.getAPI().work('both', i, 2)));
      expect(results.map((r) => r.n)).to.deep.equal(Array.from({ length: 200 }, (_, i) => i));
      const byPid = distribution(results);
      console.log(`      worker+caller (pid ${process.pid}) got 200 replies from: ${JSON.stringify(byPid)}`);
      expect(both.stats().duplicates).to.equal(0);
      const elsewhere = results.filter((r) => r.pid !== process.pid).length;
      await waitFor(() => runsOf(workers, 'both').size >= elsewhere, { message: 'workers did not report their runs' });
      expect(runsOf(workers, 'both').size).to.equal(elsewhere);
    });

    for (const spacingMs of [0, 10]) {
      it(`delivers callbacks invoked ${spacingMs === 0 ? 'synchronously' : 'between awaits'} by a worker process to their caller only, in order`, async () => {
        const [a, b] = [caller(stream), caller(stream)];
        const run = (c: Caller, prefix: string) =>
          Promise.all(
            Array.from({ length: 10 }, async (_, k) => {
              const seen: string[] = [];
              const tag = `${prefix}-${k}`;
              const result = await c.getAPI().progress(tag, 5, spacingMs, (t, step) => seen.push(`${t}#${step}`));
              return { tag, seen, result };
            }),
          );
        const [ra, rb] = await Promise.all([run(a, 'A'), run(b, 'B')]);
        for (const { tag, seen, result } of [...ra, ...rb]) {
          expect(result.tag).to.equal(tag);
          expect(seen, `callbacks of ${tag}`).to.deep.equal([1, 2, 3, 4, 5].map((s) => `${tag}#${s}`));
        }
        console.log(`      callback calls answered by pids: ${JSON.stringify(distribution([...ra, ...rb].map((r) => r.result)))}`);
        for (const c of [a, b]) {
          expect(c.stats().received, 'exactly 10 x (5 callbacks + 1 answer) reached each caller').to.equal(60);
          expect(c.stats().duplicates).to.equal(0);
        }
      });
    }
  });

  it('two consumer groups on one stream each receive every request (independent pools)', async () => {
    const stream = uniqueName('groups');
    const workers = await Promise.all([
      startWorker(url, stream, 'g1'),
      startWorker(url, stream, 'g1'),
      startWorker(url, stream, 'g2'),
    ]);
    try {
      const client = caller(stream, 'g1');
      const results = await Promise.all(Array.from({ length: 100 }, (_, i) => client.getAPI().work('groups', i, 1)));
      expect(results.map((r) => r.n)).to.deep.equal(Array.from({ length: 100 }, (_, i) => i));
      // The slower pool's answers arrive late: one duplicate per request.
      await waitFor(() => client.stats().duplicates === 100, { message: 'not every request was answered by both groups' });
      const g1 = runsOf(workers.slice(0, 2), 'groups');
      const g2 = runsOf(workers.slice(2), 'groups');
      expect(g1.size, 'requests run in g1').to.equal(100);
      expect(g2.size, 'requests run in g2').to.equal(100);
      expect([...g1.values(), ...g2.values()].every((pids) => pids.length === 1), 'run twice within a group').to.equal(true);
      console.log(`      first answers by group: ${JSON.stringify(results.reduce<Record<string, number>>((acc, r) => ({ ...acc, [r.group]: (acc[r.group] ?? 0) + 1 }), {}))}`);
    } finally {
      const handled = await Promise.all(workers.map((w) => w.stop()));
      expect(handled[0]! + handled[1]!, 'handled in g1').to.equal(100);
      expect(handled[2], 'handled in g2').to.equal(100);
      await deleteKeys(url, `*${stream}*`);
    }
  });
});
