// Soak test: a pool of worker processes that keep getting SIGKILLed, and a caller keeping ~200
// calls in flight. Reports what was sent, answered, lost, executed more than once and answered twice.
//
//   npm run soak -- --calls 1000000 --workers 3 --kill-every 5s
//
// Options:
//   --calls N          calls to make (default 1,000,000)
//   --workers N        worker processes (default 3)
//   --kill-every D     SIGKILL a random worker this often, then restart it under the same consumer
//                      name (default 5s; 0 = never). D: 500ms, 5s, 2m, or a bare number of seconds
//   --duration D       stop sending after this long even if --calls is not reached (default 30m)
//   --concurrency N    calls in flight (default 200)
//   --claim-idle D     claimIdleMs of the workers (default 1s)
//   --timeout D        per-call timeout (default 60s)
//   --handler-ms N     how long each handler takes (an async wait; default 0: a plain echo)
//   --sample N         count executions (HINCRBY) of every Nth call; default: every call up to
//                      200,000 calls, else as many as keep the counter hash near 200,000 fields
//   --verbose          forward worker stderr
//
// Runs against REDIS_URL; `npm run soak` starts a private redis-server for it (with-redis --own).
// Exit code 0 when nothing was lost and no call failed, 1 otherwise.
import { Redis } from 'ioredis';
import { WorkerPool, makeCaller, mb, parseCounts, seconds, type WorkerStatsLine } from '../__tests__/faults/fixtures/pool.js';

interface SoakOptions {
  calls: number;
  workers: number;
  killEveryMs: number;
  durationMs: number;
  concurrency: number;
  claimIdleMs: number;
  timeoutMs: number;
  handlerMs: number;
  sample: number;
  verbose: boolean;
}

function parseDuration(text: string, option: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (match === null) throw new Error(`${option}: "${text}" is not a duration (e.g. 500ms, 5s, 2m)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(match[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  return Math.round(Number(match[1]) * unit);
}

function parseCount(text: string, option: string, min: number): number {
  const n = Number(text.replace(/_/g, ''));
  if (!Number.isInteger(n) || n < min) throw new Error(`${option}: expected an integer >= ${min}, got "${text}"`);
  return n;
}

function parseArgs(argv: readonly string[]): SoakOptions {
  const o: SoakOptions = {
    calls: 1_000_000,
    workers: 3,
    killEveryMs: 5000,
    durationMs: 30 * 60_000,
    concurrency: 200,
    claimIdleMs: 1000,
    timeoutMs: 60_000,
    handlerMs: 0,
    sample: 0,
    verbose: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    if (flag === '--verbose') {
      o.verbose = true;
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    switch (flag) {
      case '--calls': o.calls = parseCount(value, flag, 1); break;
      case '--workers': o.workers = parseCount(value, flag, 1); break;
      case '--kill-every': o.killEveryMs = parseDuration(value, flag); break;
      case '--duration': o.durationMs = parseDuration(value, flag); break;
      case '--concurrency': o.concurrency = parseCount(value, flag, 1); break;
      case '--claim-idle': o.claimIdleMs = parseDuration(value, flag); break;
      case '--timeout': o.timeoutMs = parseDuration(value, flag); break;
      case '--sample': o.sample = parseCount(value, flag, 1); break;
      case '--handler-ms': o.handlerMs = parseCount(value, flag, 0); break;
      default: throw new Error(`unknown option ${flag} (see the header of scripts/soak.ts)`);
    }
  }
  if (o.sample === 0) o.sample = Math.max(1, Math.ceil(o.calls / 200_000));
  if (o.workers < 2 && o.killEveryMs > 0) process.stderr.write('soak: with one worker, calls wait while it restarts\n');
  return o;
}

const log = (line: string): void => void process.stderr.write(`[soak] ${line}\n`);

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  const url = process.env.REDIS_URL;
  if (url === undefined) throw new Error('REDIS_URL is not set; run it with `npm run soak -- ...` (starts a private redis-server)');
  const stream = `soak:${Date.now().toString(36)}`;
  const execKey = `${stream}:exec`;
  log(
    `stream ${stream}: calls=${o.calls} workers=${o.workers} killEvery=${o.killEveryMs}ms duration<=${seconds(o.durationMs)}` +
      ` concurrency=${o.concurrency} claimIdle=${o.claimIdleMs}ms timeout=${o.timeoutMs}ms handler=${o.handlerMs}ms sample=1/${o.sample}`,
  );

  const names = Array.from({ length: o.workers }, (_, i) => `w${i + 1}`);
  const pool = new WorkerPool({ url, stream, claimIdleMs: o.claimIdleMs, execKey }, { restartCrashed: true, maxRestarts: 100, verbose: o.verbose });
  await pool.start(names);
  const workerRssStart = new Map(names.map((n) => [n, pool.get(n)]));
  const caller = await makeCaller({ url, stream }, o.timeoutMs);
  const { api } = caller;
  const clientRssStart = process.memoryUsage().rss;
  let clientRssPeak = clientRssStart;

  let sent = 0;
  let answered = 0;
  let wrong = 0;
  const failures = new Map<string, number>();
  let kills = 0;
  let killing = false;
  const started = Date.now();
  const deadline = started + o.durationMs;

  const killer =
    o.killEveryMs > 0
      ? setInterval(() => {
          if (killing) return;
          const alive = names.filter((n) => pool.current.get(n)?.alive === true);
          const victim = alive[Math.floor(Math.random() * alive.length)];
          if (victim === undefined) return;
          killing = true;
          kills++;
          pool
            .kill9(victim, true)
            .catch((err: unknown) => log(`restart of ${victim} failed: ${String(err)}`))
            .finally(() => (killing = false));
        }, o.killEveryMs)
      : undefined;

  let lastSent = 0;
  const progress = setInterval(() => {
    clientRssPeak = Math.max(clientRssPeak, process.memoryUsage().rss);
    const elapsed = (Date.now() - started) / 1000;
    const failed = [...failures.values()].reduce((a, b) => a + b, 0);
    log(
      `${elapsed.toFixed(0)}s sent=${sent} answered=${answered} failed=${failed} inFlight=${sent - answered - failed - wrong}` +
        ` rate=${Math.round((sent - lastSent) / 5)}/s kills=${kills} restarts=${pool.restarts} rss=${mb(process.memoryUsage().rss)}`,
    );
    lastSent = sent;
  }, 5000);

  // Each lane keeps one call in flight; counters only, so a million calls retain nothing.
  const lane = async (): Promise<void> => {
    while (sent < o.calls && Date.now() < deadline) {
      const i = sent++;
      try {
        const id = `s${i}`;
        // With --handler-ms every call waits in its handler (counted ones too), so kills hit running handlers.
        const value = i % o.sample === 0 ? await api.counted(id, o.handlerMs) : o.handlerMs > 0 ? await api.echoAfter(id, o.handlerMs) : await api.echo(id);
        if (value === id) answered++;
        else wrong++;
      } catch (err) {
        const name = err instanceof Error ? err.name : 'non-error';
        failures.set(name, (failures.get(name) ?? 0) + 1);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.concurrency, o.calls) }, lane));
  const elapsedMs = Date.now() - started;
  if (killer !== undefined) clearInterval(killer);
  clearInterval(progress);
  for (let i = 0; i < 200 && killing; i++) await new Promise((r) => setTimeout(r, 50));
  const clientRssEnd = process.memoryUsage().rss;
  clientRssPeak = Math.max(clientRssPeak, clientRssEnd);
  const callerStats = caller.channel.stats();

  const workerLines: WorkerStatsLine[] = await pool.stopAll();
  await caller.close();
  const redis = new Redis(url, { maxRetriesPerRequest: 3 });
  let counts = new Map<string, number>();
  try {
    counts = parseCounts(await redis.hgetall(execKey).then((h) => Object.entries(h).flat()));
    await redis.del(execKey);
  } finally {
    redis.disconnect();
  }
  const sampled = Math.ceil(sent / o.sample);
  const executedTwice = [...counts.values()].filter((n) => n > 1).length;
  const extraExecutions = [...counts.values()].reduce((a, n) => a + Math.max(0, n - 1), 0);
  const notExecuted = sampled - counts.size;
  const failed = [...failures.values()].reduce((a, b) => a + b, 0);
  const lost = sent - answered;

  const out = (line: string): void => void process.stdout.write(`${line}\n`);
  out('');
  out(`soak: ${o.workers} workers, SIGKILL every ${o.killEveryMs > 0 ? seconds(o.killEveryMs) : 'never'}, ${o.concurrency} calls in flight, claimIdleMs ${o.claimIdleMs}`);
  out(`  duration              ${seconds(elapsedMs)} (${Math.round(sent / (elapsedMs / 1000))} calls/s)`);
  out(`  calls sent            ${sent}`);
  out(`  answered              ${answered}${wrong > 0 ? ` (+${wrong} with a wrong value)` : ''}`);
  out(`  lost                  ${lost}${failed > 0 ? ` ${JSON.stringify(Object.fromEntries(failures))}` : ''}`);
  out(`  executed > once       ${executedTwice} of ${sampled} sampled calls (1 in ${o.sample}), ${extraExecutions} extra executions; sampled calls never executed: ${notExecuted}`);
  out(`  answers duplicated    ${callerStats.duplicates} (ignored by the caller: stats().duplicates)`);
  out(`  worker kills          ${kills} SIGKILL + ${pool.crashes} other crashes, ${pool.restarts + kills} restarts (same consumer names)`);
  out(
    `  workers (final)       reclaimed=${workerLines.reduce((a, w) => a + w.stats.reclaimed, 0)} deadLettered=${workerLines.reduce((a, w) => a + w.stats.deadLettered, 0)}` +
      ` dropped=${workerLines.reduce((a, w) => a + w.stats.dropped, 0)} errors=${JSON.stringify(workerLines.map((w) => w.errors))}`,
  );
  out(`  client RSS            start ${mb(clientRssStart)}, end ${mb(clientRssEnd)}, peak ${mb(clientRssPeak)}`);
  for (const line of workerLines) {
    const first = workerRssStart.get(line.consumer);
    const restarted = first !== undefined && first.pid !== line.pid;
    out(
      `  ${`worker ${line.consumer} RSS`.padEnd(22)}start ${mb(line.rssStart)}, end ${mb(line.rssEnd)}, peak ${mb(line.rssPeak)}` +
        ` (pid ${line.pid}${restarted ? ', restarted' : ''}, handled ${line.stats.handled})`,
    );
  }
  const ok = lost === 0 && wrong === 0;
  out(`  result                ${ok ? 'PASS: nothing lost' : 'FAIL'}`);
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`soak failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(2);
  },
);
