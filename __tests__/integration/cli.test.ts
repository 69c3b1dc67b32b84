// The redis-streams-rpc command line, run as a child process (node --import tsx src/cli/main.ts)
// against a real redis-server and a live pool in this process: status, pending, dead-letters
// list/show/redrive/purge (redrive answering a caller still waiting), tail, trim; --json parsed.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import type { DeadLetter, DeadLetterDetail, PendingEntry, RedriveResult, StreamStatus, TailEvent, TrimResult } from '../../src/index.js';
import { deleteKeys, redisUrl, uniqueName, waitFor } from '../support/env.js';
import { Pool, keysOf, pendingCount, topology } from './fixtures/inspect-pool.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../..');
const MAIN = path.join(repoRoot, 'src', 'cli', 'main.ts');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

const children = new Set<ChildProcess>();

function start(args: readonly string[], env: Record<string, string> = {}): { child: ChildProcess; done: Promise<Run>; lines: string[] } {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  const lines: string[] = [];
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    lines.splice(0, lines.length, ...stdout.split('\n').filter((l) => l !== ''));
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const done = new Promise<Run>((resolve) =>
    child.once('exit', (code) => {
      children.delete(child);
      resolve({ code, stdout, stderr });
    }),
  );
  return { child, done, lines };
}

async function cli(args: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  return start(args, env).done;
}

async function json<T>(args: readonly string[]): Promise<T> {
  const run = await cli([...args, '--json']);
  if (run.code !== 0) throw new Error(`redis-streams-rpc ${args.join(' ')} exited ${run.code}: ${run.stderr}`);
  return JSON.parse(run.stdout) as T;
}

describe('redis-streams-rpc CLI', function () {
  this.timeout(90_000);
  let url = '';
  let name = '';
  let raw: Redis;
  let pool: Pool;
  let common: string[];

  beforeEach(() => {
    url = redisUrl();
    name = uniqueName('cli');
    raw = new Redis(url);
    pool = new Pool(url, name);
    common = ['--url', url, '--stream', name];
  });

  afterEach(async () => {
    for (const child of children) child.kill('SIGKILL');
    await pool.destroy();
    await raw.quit();
    await deleteKeys(url, `*${name}*`);
  });

  it('status and pending show a live pool (JSON and tables), and create nothing', async () => {
    const worker = await pool.worker();
    await pool.startCaller();
    const api = pool.caller.getAPI();
    expect(await api.math.add(1, 2)).to.equal(3);
    const held = api.hold('cli');
    held.catch(() => undefined);
    await waitFor(async () => (await pendingCount(raw, name, pool.group)) === 1);
    const keysBefore = await keysOf(raw, name);
    const topologyBefore = await topology(raw, name);

    const status = await json<StreamStatus>(['status', ...common]);
    expect(status.stream.key).to.equal(name);
    expect(status.groups[0]).to.include({ name: 'workers', pending: 1, lag: 0 });
    expect(status.groups[0]!.consumers[0]).to.include({ name: worker.getConsumerName(), pending: 1, alive: true });
    expect(status.inboxes.map((i) => i.sessionId).sort()).to.deep.equal([pool.callerIo.getSessionId(), worker.getSessionId()].sort());

    const pending = await json<PendingEntry[]>(['pending', ...common]);
    expect(pending).to.have.length(1);
    expect(pending[0]).to.include({ consumer: worker.getConsumerName(), caller: pool.callerIo.getSessionId(), deliveries: 1 });
    expect(pending[0]!.requests[0]).to.include({ method: 'hold' });

    const human = await cli(['status', ...common]);
    expect(human.code).to.equal(0);
    expect(human.stdout).to.match(/GROUP +CONSUMERS +PENDING +LAG/);
    expect(human.stdout).to.include(worker.getConsumerName());
    expect(human.stdout).to.match(/yes \(inbox\)/);
    // Not a TTY: no colour codes.
    expect(human.stdout).to.not.include('\u001b[');
    const table = await cli(['pending', ...common]);
    expect(table.stdout).to.match(/ENTRY +GROUP +HOLDER/);
    expect(table.stdout).to.include('hold');

    expect(await keysOf(raw, name)).to.deep.equal(keysBefore);
    expect(await topology(raw, name)).to.deep.equal(topologyBefore);
    pool.openGate();
    expect(await held).to.equal('cli');
  });

  it('dead-letters list, show and redrive: the waiting caller gets its answer', async () => {
    await pool.startCaller(60_000);
    const { call } = await pool.deadLetteredCall(raw, 'from-the-dead');
    const letters = await json<DeadLetter[]>(['dead-letters', 'list', ...common]);
    expect(letters).to.have.length(1);
    const id = letters[0]!.id;
    expect(letters[0]).to.include({ caller: pool.callerIo.getSessionId(), callerAlive: true });
    const detail = await json<DeadLetterDetail>(['dead-letters', 'show', id, ...common]);
    expect(detail.requests[0]).to.include({ method: 'echo' });
    expect(detail.messages[0]).to.include('from-the-dead');
    const list = await cli(['dead-letters', 'list', ...common]);
    expect(list.stdout).to.match(/ID +AGE +METHOD +CALLER/);
    expect(list.stdout).to.include('(waiting)');
    const show = await cli(['dead-letters', 'show', id, ...common]);
    expect(show.stdout).to.include('a redrive answers it');

    await pool.worker();
    const result = await json<RedriveResult>(['dead-letters', 'redrive', id, ...common]);
    expect(result.redriven.map((r) => r.deadLetterId)).to.deep.equal([id]);
    expect(await call).to.equal('from-the-dead');
    const again = await cli(['dead-letters', 'redrive', id, ...common]);
    expect(again.code).to.equal(0);
    expect(again.stdout).to.include('Redrove 0 dead letter(s)');
    expect(again.stdout).to.include(`Not found (already redriven or purged): ${id}`);
    const none = await cli(['dead-letters', 'redrive', ...common]);
    expect(none.code).to.equal(1);
    expect(none.stderr).to.include('or --all');
  });

  it('dead-letters purge and redrive --all', async () => {
    const dead = `{${name}}:dead`;
    for (let i = 0; i < 3; i++) {
      const header = JSON.stringify({ v: 1, k: 'req', id: `c${i}`, m: ['echo'], dl: Date.now() + 60_000 });
      await raw.xadd(dead, '*', 'source', `1-${i}`, 'group', 'workers', 'deliveries', '5', 'reason', 'test', 'f', 'gone-caller', 'd', `${header}\n["x"]`);
    }
    const [first] = await raw.xrange(dead, '-', '+', 'COUNT', 1);
    expect(await json<{ removed: number }>(['dead-letters', 'purge', first![0], ...common])).to.deep.equal({ removed: 1 });
    await raw.xadd(name, '*', 'f', 'someone', 'x', 'open'); // the request stream exists, no group
    const all = await json<RedriveResult>(['dead-letters', 'redrive', '--all', ...common]);
    expect(all.redriven).to.have.length(2);
    expect(await raw.xlen(dead)).to.equal(0);
    expect(await raw.xlen(name)).to.equal(3);
    await raw.xadd(dead, '*', 'f', 'x', 'd', 'y');
    const purged = await cli(['dead-letters', 'purge', '--all', ...common]);
    expect(purged.stdout.trim()).to.equal('Deleted 1 dead letter(s).');
  });

  it('tail prints decoded requests and answers with durations, filtered by --method', async () => {
    await pool.worker();
    await pool.startCaller();
    const readers = async (): Promise<number> => ((await raw.call('CLIENT', 'LIST')) as string).split('\n').filter((l) => / cmd=xread /.test(l)).length;
    const before = await readers();
    const tail = start(['tail', ...common, '--method', 'math', '--json']);
    // Armed once its blocking XREAD is in.
    await waitFor(async () => (await readers()) > before, { timeoutMs: 20_000, message: 'tail never started reading' });
    const api = pool.caller.getAPI();
    // The reader count can rise for another reason (a caller's inbox read between two blocks), so
    // the calls are repeated until tail shows one: a loaded machine may start tail's read late.
    const tailed = (): boolean => tail.lines.some((l) => (JSON.parse(l) as TailEvent).type === 'result');
    for (let i = 0; i < 10 && !tailed(); i++) {
      expect(await api.echo('hidden')).to.equal('hidden');
      expect(await api.math.add(20, 22)).to.equal(42);
      await waitFor(tailed, { timeoutMs: 2000 }).catch(() => undefined);
    }
    await waitFor(tailed, { timeoutMs: 20_000, message: 'no answer tailed' });
    tail.child.kill('SIGTERM');
    const run = await tail.done;
    expect(run.code).to.equal(0);
    const events = run.stdout.trim().split('\n').map((l) => JSON.parse(l) as TailEvent);
    // Only math.add passes the filter: request, result, and again for each repetition.
    const types = events.map((e) => e.type);
    expect(types.length % 2 === 0 && types.every((t, i) => t === (i % 2 === 0 ? 'request' : 'result')), types.join(',')).to.equal(true);
    const [request, answer] = events;
    expect(request!.type === 'request' && request!.request.method).to.equal('math.add');
    if (answer!.type !== 'result') throw new Error('expected a result');
    expect(answer!.method).to.equal('math.add');
    expect(answer!.durationMs).to.be.a('number').at.least(0);

    const count = await readers();
    const human = start(['tail', ...common]);
    await waitFor(async () => (await readers()) > count, { timeoutMs: 20_000, message: 'human tail never started reading' });
    const shown = (): boolean => human.lines.some((l) => l.includes('← res'));
    for (let i = 0; i < 10 && !shown(); i++) {
      expect(await api.echo('shown')).to.equal('shown');
      await waitFor(shown, { timeoutMs: 2000 }).catch(() => undefined);
    }
    await waitFor(shown, { timeoutMs: 20_000, message: 'no human answer line' });
    human.child.kill('SIGINT');
    const text = await human.done;
    expect(text.code).to.equal(0);
    expect(text.stdout).to.match(/→ req +echo +call \S+ +from /);
    expect(text.stdout).to.match(/← res +echo +call \S+ +to \S+ by \S+ +\d+ B +\d+ ms/);
  });

  it('trim removes what the group is done with, never the pending request', async () => {
    await pool.worker({ writeBatchSize: 1 });
    await pool.startCaller();
    const api = pool.caller.getAPI();
    for (let i = 0; i < 4; i++) await api.math.add(i, i);
    const held = api.hold('stay');
    held.catch(() => undefined);
    await waitFor(async () => (await pendingCount(raw, name, pool.group)) === 1);
    const [pendingId] = (await raw.call('XPENDING', name, pool.group, '-', '+', 1)) as [string, ...unknown[]][];
    const result = await json<TrimResult>(['trim', ...common]);
    expect(result.minId).to.equal(pendingId![0]);
    expect(result.removed).to.be.at.least(4);
    expect(await raw.xrange(name, pendingId![0], pendingId![0])).to.have.length(1);
    const human = await cli(['trim', ...common]);
    expect(human.stdout).to.match(/^Removed 0 entries older than/);
    pool.openGate();
    expect(await held).to.equal('stay');
  });

  it('fails with exit code 1 and a typed error for a missing stream or an unreachable Redis', async () => {
    const missing = await cli(['status', ...common]);
    expect(missing.code).to.equal(1);
    expect(missing.stderr).to.include(`Stream "${name}" does not exist`);
    expect(missing.stderr).to.include('ERR_REDIS_NOT_FOUND');
    const asJson = await cli(['pending', ...common, '--json']);
    expect(JSON.parse(asJson.stderr)).to.deep.include({ error: { name: 'RedisStreamsNotFoundError', code: 'ERR_REDIS_NOT_FOUND', message: `Stream "${name}" does not exist (no worker or caller has used it yet, or it was deleted)` } });
    const down = await cli(['status', '--stream', name], { REDIS_URL: 'redis://127.0.0.1:1' });
    expect(down.code).to.equal(1);
    expect(down.stderr).to.include('ERR_REDIS_CONNECTION');
    expect(await keysOf(raw, name)).to.deep.equal([]);
  });
});
