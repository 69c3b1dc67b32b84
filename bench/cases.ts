/**
 * The benchmark cases and how one repetition of one case runs: fork the
 * serving processes, then the client, snapshot Redis command counters around
 * the timed phase only, collect memory, delete the keys.
 */
import type { ClientRole, ClientResult, MemoryStats, RoleConfig, ServingRole } from './protocol.js';
import { allNext, ChildHandle } from './parent-procs.js';
import { commandCallsDelta, type RedisAdmin } from './redis-admin.js';

export type Impl = 'raw' | 'lib';
export type Metrics = Record<string, number>;

export interface CaseSpec {
  readonly id: string;
  readonly title: string;
  readonly servingRole: ServingRole;
  readonly servers: number;
  readonly clientRole: ClientRole;
  readonly balanced: boolean;
  readonly payloadBytes: number;
  readonly warmup: number;
  readonly count: number;
  readonly concurrency: number;
  /** How long each echo handler takes (an async wait); 0: a synchronous echo. */
  readonly handlerMs: number;
}

export interface ProcessReport {
  readonly label: string;
  readonly memory: MemoryStats;
  readonly handled: number;
  /** CPU time: the client's over its timed phase, a server's from ready to stop (warm-up included). */
  readonly cpuMs: number;
}

export interface RepResult {
  readonly rep: number;
  readonly ok: boolean;
  readonly error?: string;
  readonly wallMs: number;
  readonly metrics: Metrics;
  readonly client?: ClientResult;
  readonly processes: ProcessReport[];
  readonly keysDeleted: number;
}

export interface RunContext {
  readonly url: string;
  readonly runId: string;
  readonly admin: RedisAdmin;
  readonly timeoutMs: number;
  readonly verbose: boolean;
  /** `--signing`: the hex secret every library IO signs and verifies with. */
  readonly signingSecret: string | undefined;
  /** `--tracing`: library roles record spans and metrics (bench/tracing.ts). */
  readonly tracing: boolean;
}

/** Serving processes get a moment to start their read loops before the first request. */
const SETTLE_MS = 200;
const KB = 1024;

/**
 * Timed calls of (b) and (c): 20,000, or `BENCH_BURST_COUNT` (e.g. 100000 for a steady-state
 * measurement: in 20,000 calls, about 1 s, start-up and JIT compilation are a large part of each
 * process's CPU).
 */
function burstCount(): number {
  const value = process.env['BENCH_BURST_COUNT'];
  if (value === undefined || value === '') return 20_000;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 100) throw new Error(`BENCH_BURST_COUNT must be an integer of at least 100, got ${JSON.stringify(value)}`);
  return n;
}

export function buildCases(quick: boolean): CaseSpec[] {
  const pick = (full: number, reduced: number): number => (quick ? reduced : full);
  const echo = { servingRole: 'server', servers: 1, balanced: false, concurrency: 1, handlerMs: 0 } as const;
  const burst = { count: pick(burstCount(), 2_000), warmup: pick(500, 100), concurrency: 100, payloadBytes: 1, clientRole: 'inflight', handlerMs: 0 } as const;
  return [
    { ...echo, id: 'a', title: 'sequential echo("x")', clientRole: 'seq', payloadBytes: 1, warmup: pick(500, 100), count: pick(5_000, 300) },
    { ...echo, ...burst, id: 'b', title: '100 in flight, broadcast, 1 server' },
    { ...burst, id: 'c', title: '100 in flight, load-balanced, 2 workers', servingRole: 'worker', servers: 2, balanced: true },
    { ...echo, id: 'd', title: 'sequential echo(100 KB)', clientRole: 'seq', payloadBytes: 100 * KB, warmup: pick(20, 5), count: pick(300, 30) },
    {
      id: 'e', title: 'notification fan-out to 4 subscribers', servingRole: 'subscriber', servers: 4, balanced: false,
      clientRole: 'notify', payloadBytes: 1, warmup: 0, count: pick(50_000, 2_000), concurrency: 100, handlerMs: 0,
    },
    // Handlers that take time: throughput against the ideal (calls in flight / handler time, when the
    // workers can run them all at once), and how evenly the 3 workers share the calls.
    { ...burst, id: 'f', title: '10 ms handlers, 100 in flight, 3 workers', servingRole: 'worker', servers: 3, balanced: true, handlerMs: 10, count: pick(6_000, 600), warmup: pick(300, 100) },
  ];
}

function roleFiles(impl: Impl): { serving: string; client: string } {
  return impl === 'raw' ? { serving: 'raw-server.ts', client: 'raw-client.ts' } : { serving: 'lib-server.ts', client: 'lib-client.ts' };
}

function servingLabel(spec: CaseSpec, index: number): string {
  return spec.servers === 1 ? spec.servingRole : `${spec.servingRole}${index + 1}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Rejects after `ms` unless `work` settles first; the timer never outlives the race. */
async function withWatchdog<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms (raise --timeout-ms)`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

interface Timed {
  readonly client: ClientResult;
  /** Redis commands issued during the timed phase, by command name. */
  readonly commands: ReadonlyMap<string, number>;
  /** CPU the Redis server used during the timed phase, in milliseconds. */
  readonly redisCpuMs: number;
  /** Fan-out only: deliveries counted at the subscribers and the last one's wall clock. */
  readonly deliveries?: { readonly total: number; readonly lastAt: number };
}

/** Drives one repetition once every process is forked; returns the measured window. */
async function drive(spec: CaseSpec, servers: ChildHandle[], client: ChildHandle, admin: RedisAdmin): Promise<Timed> {
  await client.next('ready');
  // A subscriber proves it reads by seeing a warm-up notification (n = -1).
  if (spec.clientRole === 'notify') await allNext(servers, 'seen');
  const before = await admin.commandCalls();
  const redisCpuBefore = await admin.cpuMs();
  client.send({ type: 'go' });
  const { result } = await client.next('result');
  let deliveries: Timed['deliveries'];
  if (spec.clientRole === 'notify') {
    const done = await allNext(servers, 'done');
    deliveries = { total: done.reduce((s, d) => s + d.deliveries, 0), lastAt: Math.max(...done.map((d) => d.lastAt)) };
  }
  const redisCpuMs = (await admin.cpuMs()) - redisCpuBefore;
  const commands = commandCallsDelta(before, await admin.commandCalls());
  return { client: result, commands, redisCpuMs, ...(deliveries === undefined ? {} : { deliveries }) };
}

function metricsOf(spec: CaseSpec, timed: Timed, processes: ProcessReport[]): Metrics {
  const { client } = timed;
  const metrics: Metrics = {};
  if (timed.deliveries !== undefined) {
    metrics['deliveriesPerSec'] = timed.deliveries.total / ((timed.deliveries.lastAt - client.startedAt) / 1000);
  } else {
    metrics['callsPerSec'] = client.calls / (client.elapsedMs / 1000);
  }
  if (client.p50Us !== undefined) metrics['p50Us'] = client.p50Us;
  if (client.p99Us !== undefined) metrics['p99Us'] = client.p99Us;
  let commands = 0;
  for (const [name, n] of timed.commands) {
    commands += n;
    metrics[`cmdsPerCall.${name}`] = n / client.calls;
  }
  metrics['cmdsPerCall'] = commands / client.calls;
  // CPU per call, summed over every process: unlike calls/s, barely moved by other load on the machine.
  // Redis shares the machine's cores with the node processes: its CPU per call is part of the cost.
  metrics['redisCpuUsPerCall'] = (timed.redisCpuMs * 1000) / client.calls;
  metrics['cpuUsPerCall'] = (processes.reduce((sum, p) => sum + p.cpuMs, 0) * 1000) / client.calls;
  for (const p of processes) {
    metrics[`cpuUsPerCall.${p.label}`] = (p.cpuMs * 1000) / client.calls;
    metrics[`maxRssMB.${p.label}`] = p.memory.maxRssMB;
    metrics[`rssPeakMB.${p.label}`] = p.memory.rssPeakMB;
  }
  if (client.errors > 0) metrics['errors'] = client.errors;
  if (spec.handlerMs > 0) {
    // The best any implementation can do with this many calls in flight.
    metrics['idealCallsPerSec'] = (spec.concurrency * 1000) / spec.handlerMs;
    metrics['ofIdeal'] = (metrics['callsPerSec'] ?? 0) / metrics['idealCallsPerSec'];
    const servers = processes.filter((p) => p.label !== 'client');
    const total = servers.reduce((sum, p) => sum + p.handled, 0);
    for (const p of servers) metrics[`share.${p.label}`] = total === 0 ? 0 : p.handled / total;
  }
  return metrics;
}

function configFor(spec: CaseSpec, ctx: RunContext, prefix: string, label: string, role: RoleConfig['role']): RoleConfig {
  return {
    role, url: ctx.url, stream: `${prefix}:s`, replyStream: `${prefix}:reply:client`, group: 'bench', name: label,
    payloadBytes: spec.payloadBytes, warmup: spec.warmup, count: spec.count, concurrency: spec.concurrency,
    balanced: spec.balanced, handlerMs: spec.handlerMs, timeoutMs: ctx.timeoutMs,
    ...(ctx.signingSecret === undefined ? {} : { signingSecret: ctx.signingSecret }),
    ...(ctx.tracing ? { tracing: true } : {}),
  };
}

/** Everything from fork to exit; the caller owns the watchdog and the kill. */
async function runProcesses(spec: CaseSpec, impl: Impl, ctx: RunContext, prefix: string, children: ChildHandle[], abort: AbortSignal): Promise<{ timed: Timed; processes: ProcessReport[] }> {
  const files = roleFiles(impl);
  const servers = Array.from({ length: spec.servers }, (_, i) => {
    const label = servingLabel(spec, i);
    return new ChildHandle(label, files.serving, configFor(spec, ctx, prefix, label, spec.servingRole), ctx.verbose);
  });
  children.push(...servers);
  await allNext(servers, 'ready');
  await sleep(SETTLE_MS);
  // The watchdog may have fired (and killed everything) during the sleep.
  if (abort.aborted) throw new Error('aborted');
  const client = new ChildHandle('client', files.client, configFor(spec, ctx, prefix, 'client', spec.clientRole), ctx.verbose);
  children.push(client);
  const timed = await drive(spec, servers, client, ctx.admin);
  for (const server of servers) server.send({ type: 'stop' });
  const stats = await allNext(children, 'stats');
  const codes = await Promise.all(children.map((c) => c.exited));
  const bad = children.filter((_, i) => codes[i] !== 0).map((c, i) => `${c.label} (exit code ${String(codes[i])})`);
  if (bad.length > 0) throw new Error(`processes ended badly: ${bad.join(', ')}`);
  const processes = children.map((c, i) => ({
    label: c.label,
    memory: stats[i]?.memory ?? { rssPeakMB: Number.NaN, maxRssMB: Number.NaN },
    handled: stats[i]?.handled ?? 0,
    cpuMs: stats[i]?.cpuMs ?? Number.NaN,
  }));
  return { timed, processes };
}

/** One repetition of one case for one implementation. Never throws: failures are recorded. */
export async function runRep(spec: CaseSpec, impl: Impl, rep: number, ctx: RunContext): Promise<RepResult> {
  const prefix = `bench:${ctx.runId}:${spec.id}:${impl}:r${rep}`;
  const children: ChildHandle[] = [];
  const abort = new AbortController();
  const t0 = Date.now();
  let outcome: Pick<RepResult, 'ok' | 'metrics' | 'processes'> & { error?: string; client?: ClientResult };
  try {
    const { timed, processes } = await withWatchdog(runProcesses(spec, impl, ctx, prefix, children, abort.signal), ctx.timeoutMs, `case ${spec.id} (${impl}) rep ${rep + 1}`);
    outcome = { ok: true, metrics: metricsOf(spec, timed, processes), processes, client: timed.client };
  } catch (err) {
    outcome = { ok: false, error: err instanceof Error ? err.message : String(err), metrics: {}, processes: [] };
  } finally {
    abort.abort();
    for (const child of children) child.kill();
  }
  await Promise.all(children.map((c) => c.exited));
  const keysDeleted = await ctx.admin.deletePrefix(prefix);
  return { rep, wallMs: Date.now() - t0, keysDeleted, ...outcome };
}
