/**
 * Child-process side of the benchmark: the config, IPC with the parent, the
 * memory sampler and the common serve / drive lifecycles. Every role file
 * (raw and library) goes through these, so both sides are measured the same way.
 */
import { isParentMessage, parseRoleConfig, type ChildMessage, type ClientResult, type MemoryStats, type ParentMessage, type RoleConfig } from './protocol.js';

const SAMPLE_EVERY_MS = 50;
const BYTES_PER_MB = 1024 * 1024;

/** Samples RSS every 50 ms; the timer is unref'd so it never keeps the process alive. */
export class MemorySampler {
  private peak = process.memoryUsage().rss;
  private readonly timer: NodeJS.Timeout;

  constructor() {
    this.timer = setInterval(() => this.sample(), SAMPLE_EVERY_MS);
    this.timer.unref();
  }

  private sample(): void {
    this.peak = Math.max(this.peak, process.memoryUsage().rss);
  }

  /** Stops sampling and returns the peaks. */
  stop(): MemoryStats {
    clearInterval(this.timer);
    this.sample();
    // maxRSS is in kilobytes on Linux and macOS.
    return { rssPeakMB: this.peak / BYTES_PER_MB, maxRssMB: (process.resourceUsage().maxRSS * 1024) / BYTES_PER_MB };
  }
}

export function readConfig(): RoleConfig {
  return parseRoleConfig(process.argv[2]);
}

/** Sends one message; resolves once it is handed to the IPC channel. */
export function toParent(message: ChildMessage): Promise<void> {
  return new Promise((resolve, reject) => {
    if (process.send === undefined || !process.connected) {
      reject(new Error('no IPC channel to the parent: start this file through bench/run.ts'));
      return;
    }
    process.send(message, undefined, {}, (err: Error | null) => (err === null ? resolve() : reject(err)));
  });
}

/**
 * Resolves on the first parent message of `type`. Losing the parent counts
 * as `'stop'`, so an orphaned child still winds down and exits.
 */
export function fromParent(type: ParentMessage['type']): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      process.off('message', onMessage);
      process.off('disconnect', done);
      resolve();
    };
    const onMessage = (message: unknown): void => {
      if (isParentMessage(message) && message.type === type) done();
    };
    process.on('message', onMessage);
    process.on('disconnect', done);
  });
}

/** Closes the IPC channel so the process can exit on its own. */
function detach(): void {
  if (process.connected) process.disconnect();
}

async function reportFailure(err: unknown): Promise<void> {
  const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
  process.exitCode = 1;
  try {
    await toParent({ type: 'failed', message });
  } catch {
    process.stderr.write(`${message}\n`);
  }
}

/** CPU time (user + system) this process spent since `since`, in milliseconds. */
function cpuMsSince(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
}

/** A serving process once set up. */
export interface ServingSession {
  /** Messages handled, for the report. */
  handled(): number;
  errors(): number;
  /** Stops loops and closes every connection. */
  close(): Promise<void>;
}

/** ready -> (serve until 'stop') -> close -> stats -> exit. */
export async function runServing(setup: (config: RoleConfig) => ServingSession | Promise<ServingSession>): Promise<void> {
  const sampler = new MemorySampler();
  try {
    const config = readConfig();
    const stopped = fromParent('stop');
    const session = await setup(config);
    await toParent({ type: 'ready' });
    // From here on: serving only (module loading and connecting are not counted).
    const cpu0 = process.cpuUsage();
    await stopped;
    const cpuMs = cpuMsSince(cpu0);
    await session.close();
    await toParent({ type: 'stats', memory: sampler.stop(), handled: session.handled(), errors: session.errors(), cpuMs });
  } catch (err) {
    await reportFailure(err);
  } finally {
    sampler.stop();
    detach();
  }
}

/** A driving process once connected. */
export interface DrivingSession {
  /** Runs warm-up; resolves when the timed phase may start. */
  warmup(): Promise<void>;
  timed(): Promise<ClientResult>;
  close(): Promise<void>;
}

/** setup + warm-up -> ready -> (wait 'go') -> timed -> result -> close -> stats -> exit. */
export async function runDriving(setup: (config: RoleConfig) => DrivingSession | Promise<DrivingSession>): Promise<void> {
  const sampler = new MemorySampler();
  try {
    const config = readConfig();
    const go = fromParent('go');
    let cpuMs = Number.NaN;
    const session = await setup(config);
    try {
      await session.warmup();
      await toParent({ type: 'ready' });
      await go;
      const cpu0 = process.cpuUsage();
      const result = await session.timed();
      cpuMs = cpuMsSince(cpu0);
      await toParent({ type: 'result', result });
    } finally {
      await session.close();
    }
    await toParent({ type: 'stats', memory: sampler.stop(), handled: 0, errors: 0, cpuMs });
  } catch (err) {
    await reportFailure(err);
  } finally {
    sampler.stop();
    detach();
  }
}

/**
 * Counts subscriber deliveries: reports `'seen'` on the first warm-up one
 * (n < 0) and `'done'` once `expected` timed ones (n >= 0) arrived.
 */
export class DeliveryCounter {
  private seen = false;
  private timed = 0;
  private total = 0;

  constructor(
    private readonly expected: number,
    private readonly onReport: (message: ChildMessage) => void,
  ) {}

  deliver(n: number): void {
    this.total++;
    if (n < 0) {
      if (!this.seen) {
        this.seen = true;
        this.onReport({ type: 'seen' });
      }
      return;
    }
    this.timed++;
    if (this.timed === this.expected) this.onReport({ type: 'done', deliveries: this.timed, lastAt: performance.timeOrigin + performance.now() });
  }

  handled(): number {
    return this.total;
  }
}

/** Sends a counter report without blocking the delivery path; a lost parent is reported on stderr. */
export function reportAsync(message: ChildMessage): void {
  toParent(message).catch((err: unknown) => process.stderr.write(`report ${message.type} failed: ${String(err)}\n`));
}
