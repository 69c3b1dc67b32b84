/**
 * Benchmark: redis-streams-rpc against a raw ioredis ping-pong, in one run,
 * client and servers in separate processes (bench/lib-*.ts, bench/raw-*.ts).
 *
 * Cases (full size; `--quick` in brackets):
 * - a: sequential echo("x") after warm-up: p50 / p99 latency (µs), calls/s
 *      [5,000 timed after 500 warm-up; quick 300 after 100]
 * - b: echo with 100 calls in flight, broadcast mode, one server: calls/s [20,000; 2,000]
 * - c: the same, load-balanced (consumer group), two worker processes: calls/s [20,000; 2,000]
 * - d: sequential echo of a 100 KB string: calls/s and p50 [300; 30]
 * - e: notifications fanned out to 4 subscriber processes, 100 writes in flight:
 *      deliveries/s = deliveries counted at subscribers / (last delivery - first send) [50,000; 2,000: a timed phase of ~1 s, where 5,000 gave ~0.1-0.2 s, too short to measure]
 * - f: 100 calls in flight to 3 load-balanced workers whose handlers take 10 ms (an async wait):
 *      calls/s against the ideal (100 in flight / 10 ms = 10,000 calls/s) and each worker's share [6,000; 600]
 * Every case also reports peak RSS per process (sampled every 50 ms, and the
 * kernel's maxRSS), Redis commands per call (INFO commandstats delta over
 * the timed phase, INFO itself excluded) and CPU time per call of every node
 * process (process.cpuUsage: the client's timed phase, servers from ready to
 * stop), which other load on the machine moves much less than calls/s. Each case runs 3 times (quick: 1);
 * the table shows medians and library/raw ratios; bench/results.json keeps
 * every repetition.
 *
 * Usage (needs REDIS_URL of a throwaway server; `npm run bench` starts one):
 *   npm run bench [-- --quick] [-- --only raw|lib] [--cases a,c] [--reps N]
 *                 [--timeout-ms 120000] [--verbose] [--signing] [--tracing]
 *
 * `--tracing`: the library roles record every span and metric with an
 * OpenTelemetry SDK (in-memory exporters, bench/tracing.ts); compare with a run without it.
 * `BENCH_BURST_COUNT=100000` (environment): timed calls of (b) and (c) instead of 20,000, for
 * steady-state figures (in 20,000 calls start-up and JIT compilation weigh on CPU per call).
 * `--signing`: every library IO signs and verifies entries (the `signing`
 * option, one random 32-byte key per run); the raw baseline is unchanged.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { buildCases, runRep, type CaseSpec, type Impl, type RepResult, type RunContext } from './cases.js';
import { benchFile } from './parent-procs.js';
import { RedisAdmin } from './redis-admin.js';
import { compare, formatTable, summarize, writeJson, type CaseResult, type ImplResult } from './report.js';

interface Options {
  readonly quick: boolean;
  readonly impls: Impl[];
  readonly caseIds: Set<string> | undefined;
  readonly reps: number;
  readonly timeoutMs: number;
  readonly verbose: boolean;
  readonly signing: boolean;
  readonly tracing: boolean;
}

const DEFAULT_TIMEOUT_MS = 120_000;

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      cases: { type: 'string' },
      reps: { type: 'string' },
      'timeout-ms': { type: 'string' },
      verbose: { type: 'boolean', default: false },
      signing: { type: 'boolean', default: false },
      tracing: { type: 'boolean', default: false },
    },
  });
  const only = values.only;
  if (only !== undefined && only !== 'raw' && only !== 'lib') throw new Error(`--only must be "raw" or "lib", got "${only}"`);
  const reps = Number(values.reps ?? (values.quick ? 1 : 3));
  const timeoutMs = Number(values['timeout-ms'] ?? DEFAULT_TIMEOUT_MS);
  if (!Number.isInteger(reps) || reps < 1 || reps > 50) throw new Error(`--reps must be an integer from 1 to 50, got "${String(values.reps)}"`);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1000) throw new Error(`--timeout-ms must be an integer >= 1000, got "${String(values['timeout-ms'])}"`);
  return {
    quick: values.quick,
    impls: only === undefined ? ['lib', 'raw'] : [only],
    caseIds: values.cases === undefined ? undefined : new Set(values.cases.split(',').map((s) => s.trim())),
    reps,
    timeoutMs,
    verbose: values.verbose,
    signing: values.signing,
    tracing: values.tracing,
  };
}

/** Only a throwaway server: refuses a missing URL and the default port of a shared one. */
function redisUrl(): string {
  const url = process.env['REDIS_URL'];
  if (url === undefined || url === '') throw new Error('REDIS_URL is not set: run through `npm run bench` (scripts/with-redis.mjs --own)');
  const port = new URL(url).port;
  if (port === '' || port === '6379') throw new Error(`refusing REDIS_URL ${url}: the benchmark deletes keys and needs its own server, not port 6379`);
  return url;
}

function describeRep(spec: CaseSpec, impl: Impl, result: RepResult, reps: number): string {
  const head = `case ${spec.id} ${impl.padEnd(3)} rep ${result.rep + 1}/${reps}`;
  if (!result.ok) return `${head}: FAILED after ${result.wallMs} ms: ${result.error ?? ''}`;
  const m = result.metrics;
  const rate = m['callsPerSec'] ?? m['deliveriesPerSec'] ?? Number.NaN;
  const unit = m['callsPerSec'] === undefined ? 'deliveries/s' : 'calls/s';
  const p50 = m['p50Us'] === undefined ? '' : `, p50 ${m['p50Us'].toFixed(0)} µs`;
  const cpu = `${(m['cpuUsPerCall'] ?? Number.NaN).toFixed(0)} CPU µs/call`;
  return `${head}: ${Math.round(rate)} ${unit}${p50}, ${(m['cmdsPerCall'] ?? Number.NaN).toFixed(2)} cmds/call, ${cpu} (${result.wallMs} ms)`;
}

async function runCase(spec: CaseSpec, options: Options, ctx: RunContext): Promise<CaseResult> {
  const reps: Partial<Record<Impl, RepResult[]>> = {};
  // Alternate implementations inside each repetition so drift hits both alike.
  for (let rep = 0; rep < options.reps; rep++) {
    for (const impl of options.impls) {
      const result = await runRep(spec, impl, rep, ctx);
      (reps[impl] ??= []).push(result);
      process.stderr.write(`${describeRep(spec, impl, result, options.reps)}\n`);
    }
  }
  const results: Partial<Record<Impl, ImplResult>> = {};
  for (const impl of options.impls) results[impl] = summarize(reps[impl] ?? []);
  return { id: spec.id, title: spec.title, params: spec, results };
}

function machineInfo(redisVersion: string): Record<string, string | number> {
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    nproc: os.availableParallelism(),
    totalMemoryMB: Math.round(os.totalmem() / (1024 * 1024)),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    redis: redisVersion,
  };
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const url = redisUrl();
  const admin = new RedisAdmin(url);
  try {
    const redisVersion = await admin.serverVersion();
    const ctx: RunContext = { url, runId: randomBytes(4).toString('hex'), admin, timeoutMs: options.timeoutMs, verbose: options.verbose,
      signingSecret: options.signing ? randomBytes(32).toString('hex') : undefined,
      tracing: options.tracing,
    };
    const specs = buildCases(options.quick).filter((s) => options.caseIds?.has(s.id) ?? true);
    if (specs.length === 0) throw new Error('--cases selected no case; known ids: a, b, c, d, e, f');
    const cases: CaseResult[] = [];
    for (const spec of specs) cases.push(await runCase(spec, options, ctx));
    const comparison = compare(cases);
    process.stdout.write(`\n${formatTable(comparison)}\n`);
    const failed = cases.flatMap((c) => Object.values(c.results)).reduce((n, r) => n + r.reps.length - r.okReps, 0);
    await writeJson(benchFile('results.json'), {
      date: new Date().toISOString(),
      command: [process.execPath, ...process.execArgv, ...process.argv.slice(1)].join(' '),
      npmScript: process.env['npm_lifecycle_script'] ?? null,
      options: { quick: options.quick, impls: options.impls, reps: options.reps, timeoutMs: options.timeoutMs, signing: options.signing, tracing: options.tracing },
      machine: machineInfo(redisVersion),
      runId: ctx.runId,
      failedRepetitions: failed,
      comparison,
      cases,
    });
    process.stdout.write(`\nwrote ${benchFile('results.json')}${failed > 0 ? ` (${failed} failed repetitions)` : ''}\n`);
    if (failed > 0) process.exitCode = 1;
  } finally {
    await admin.close();
  }
}

await main();
