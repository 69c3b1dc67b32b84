/**
 * What the benchmark parent and its child processes exchange: the role
 * config (passed as one JSON argv) and the IPC messages. Shared by both sides
 * so a typo in a message tag does not compile.
 */

/** Roles that serve: echo servers, consumer-group workers, notification subscribers. */
export type ServingRole = 'server' | 'worker' | 'subscriber';
/** Roles that drive load. */
export type ClientRole = 'seq' | 'inflight' | 'notify';
export type Role = ServingRole | ClientRole;

/** Everything a child needs; one flat object so it travels as a single argv. */
export interface RoleConfig {
  readonly role: Role;
  /** Redis URL; also in the environment, repeated here so the config is self-contained. */
  readonly url: string;
  /** Request (or notification) stream; the library's only stream. */
  readonly stream: string;
  /** Raw baseline only: the client's own reply stream. */
  readonly replyStream: string;
  readonly group: string;
  /** Consumer / process label, e.g. `w1`. */
  readonly name: string;
  /** Size of the echoed string (`'x'.repeat(payloadBytes)`). */
  readonly payloadBytes: number;
  readonly warmup: number;
  /** Timed calls (clients) or expected timed deliveries (subscribers). */
  readonly count: number;
  readonly concurrency: number;
  /** Serving roles: how long each echo handler takes (an async wait), 0 for a synchronous echo. */
  readonly handlerMs: number;
  /** The library in consumer-group (load-balanced) mode. */
  readonly balanced: boolean;
  /** Hard bound for any loop in the child. */
  readonly timeoutMs: number;
  /** Library roles: the `signing` secret (hex) of every IO (`--signing`); absent, signing is off. */
  readonly signingSecret?: string;
  /** Library roles: record spans and metrics with an OpenTelemetry SDK (`--tracing`, see bench/tracing.ts). */
  readonly tracing?: boolean;
}

/** The `signing` option of a library role (`--signing`), or undefined when it is off. */
export function signingOf(config: RoleConfig): { keys: Record<string, Buffer>; keyId: string } | undefined {
  return config.signingSecret === undefined ? undefined : { keys: { bench: Buffer.from(config.signingSecret, 'hex') }, keyId: 'bench' };
}

/** Peak memory of one process, in MB. */
export interface MemoryStats {
  /** Highest `process.memoryUsage().rss` sampled every 50 ms. */
  readonly rssPeakMB: number;
  /** `process.resourceUsage().maxRSS` at the end (the kernel's high-water mark). */
  readonly maxRssMB: number;
}

/** What a client reports after its timed phase. */
export interface ClientResult {
  readonly calls: number;
  readonly elapsedMs: number;
  /** Wall clock (`performance.timeOrigin + performance.now()`) of the first timed send. */
  readonly startedAt: number;
  /** Per-call latency, only for the sequential role. */
  readonly p50Us?: number;
  readonly p99Us?: number;
  readonly meanUs?: number;
  readonly errors: number;
}

export type ChildMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'seen' }
  | { readonly type: 'result'; readonly result: ClientResult }
  | { readonly type: 'done'; readonly deliveries: number; readonly lastAt: number }
  | { readonly type: 'stats'; readonly memory: MemoryStats; readonly handled: number; readonly errors: number; readonly cpuMs: number }
  | { readonly type: 'failed'; readonly message: string };

export type ParentMessage = { readonly type: 'go' } | { readonly type: 'stop' };

export type ChildMessageType = ChildMessage['type'];

const CHILD_TYPES: ReadonlySet<string> = new Set<ChildMessageType>(['ready', 'seen', 'result', 'done', 'stats', 'failed']);
const ROLES: ReadonlySet<string> = new Set<Role>(['server', 'worker', 'subscriber', 'seq', 'inflight', 'notify']);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** Trusts the shape after checking the tag: both ends are this package's code. */
export function isChildMessage(value: unknown): value is ChildMessage {
  return isRecord(value) && typeof value['type'] === 'string' && CHILD_TYPES.has(value['type']);
}

export function isParentMessage(value: unknown): value is ParentMessage {
  return isRecord(value) && (value['type'] === 'go' || value['type'] === 'stop');
}

/** Parses and checks the JSON config a child gets as `argv[2]`. */
export function parseRoleConfig(text: string | undefined): RoleConfig {
  if (text === undefined) throw new Error('missing role config: pass it as the first argument (JSON)');
  const value: unknown = JSON.parse(text);
  if (!isRecord(value)) throw new Error('role config must be a JSON object');
  const strings = ['role', 'url', 'stream', 'replyStream', 'group', 'name'];
  const numbers = ['payloadBytes', 'warmup', 'count', 'concurrency', 'timeoutMs'];
  for (const key of strings) {
    if (typeof value[key] !== 'string') throw new Error(`role config: "${key}" must be a string`);
  }
  for (const key of numbers) {
    const n = value[key];
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw new Error(`role config: "${key}" must be an integer >= 0`);
  }
  if (typeof value['balanced'] !== 'boolean') throw new Error('role config: "balanced" must be a boolean');
  if (value['signingSecret'] !== undefined && (typeof value['signingSecret'] !== 'string' || !/^[0-9a-f]{64,}$/.test(value['signingSecret']))) {
    throw new Error('role config: "signingSecret" must be a hex string of at least 32 bytes');
  }
  if (!ROLES.has(String(value['role']))) throw new Error(`role config: unknown role ${String(value['role'])}`);
  return value as unknown as RoleConfig;
}

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes. */
export function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}

/** The API the library servers expose in every case. */
export type BenchApi = {
  echo(x: string): string | Promise<string>;
  tick(n: number): void;
};
