/**
 * Load drivers shared by the raw and library clients: both hand in a `call`
 * (or `notify`) function and are timed by exactly the same loop.
 */
import type { ClientResult } from './protocol.js';
import { wallClockMs } from './protocol.js';

export type Call = (payload: string) => Promise<unknown>;
export type Notify = (n: number) => Promise<void>;

/** Thrown when an echo comes back different from what was sent. */
class EchoMismatchError extends Error {
  override readonly name = 'EchoMismatchError';
}

function checkEcho(sent: string, got: unknown): void {
  if (got !== sent) throw new EchoMismatchError(`echo returned ${typeof got === 'string' ? `${got.length} chars` : typeof got}, expected ${sent.length} chars`);
}

/** Value at quantile `q` (0..1) of an ascending array, nearest-rank. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1] ?? Number.NaN;
}

/** `count` calls one after the other, each timed. */
export async function runSequential(call: Call, payload: string, count: number): Promise<ClientResult> {
  const latenciesUs: number[] = [];
  const startedAt = wallClockMs();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < count; i++) {
    const before = process.hrtime.bigint();
    checkEcho(payload, await call(payload));
    latenciesUs.push(Number(process.hrtime.bigint() - before) / 1000);
  }
  const elapsedMs = Number(process.hrtime.bigint() - t0) / 1e6;
  latenciesUs.sort((a, b) => a - b);
  const meanUs = latenciesUs.reduce((sum, v) => sum + v, 0) / Math.max(1, count);
  return { calls: count, elapsedMs, startedAt, p50Us: quantile(latenciesUs, 0.5), p99Us: quantile(latenciesUs, 0.99), meanUs, errors: 0 };
}

/**
 * `total` operations with `concurrency` in flight: `concurrency` lanes each
 * take the next index until none is left, so the window never drops below
 * `concurrency` until the tail.
 */
async function inLanes(total: number, concurrency: number, op: (index: number) => Promise<void>): Promise<number> {
  let next = 0;
  let errors = 0;
  const lane = async (): Promise<void> => {
    while (next < total) {
      const index = next++;
      try {
        await op(index);
      } catch (err) {
        errors++;
        // One error is noise; many mean the measurement is meaningless.
        if (errors > Math.max(10, total / 100)) throw err;
      }
    }
  };
  const lanes = Array.from({ length: Math.max(1, Math.min(concurrency, total)) }, () => lane());
  await Promise.all(lanes);
  return errors;
}

/** `total` echo calls with `concurrency` in flight. */
export async function runInflight(call: Call, payload: string, total: number, concurrency: number): Promise<ClientResult> {
  const startedAt = wallClockMs();
  const t0 = process.hrtime.bigint();
  const errors = await inLanes(total, concurrency, async () => checkEcho(payload, await call(payload)));
  const elapsedMs = Number(process.hrtime.bigint() - t0) / 1e6;
  return { calls: total, elapsedMs, startedAt, errors };
}

/** `total` notifications (n = 0..total-1) with `concurrency` writes in flight. */
export async function runNotify(notify: Notify, total: number, concurrency: number): Promise<ClientResult> {
  const startedAt = wallClockMs();
  const t0 = process.hrtime.bigint();
  const errors = await inLanes(total, concurrency, (index) => notify(index));
  const elapsedMs = Number(process.hrtime.bigint() - t0) / 1e6;
  return { calls: total, elapsedMs, startedAt, errors };
}

const WARM_TICK_MS = 10;

/**
 * Sends warm-up notifications (n = -1) every 10 ms until stopped or
 * `maxTicks` were sent: the parent starts the timed phase once every
 * subscriber has seen one, which proves they are all reading.
 */
export class WarmupTicker {
  private readonly timer: NodeJS.Timeout;
  private inflight: Promise<void> = Promise.resolve();
  private ticks = 0;
  private failure: unknown = undefined;

  constructor(notify: Notify, maxTicks: number) {
    this.timer = setInterval(() => {
      if (this.ticks++ >= maxTicks) {
        clearInterval(this.timer);
        return;
      }
      this.inflight = notify(-1).catch((err: unknown) => {
        this.failure = err;
      });
    }, WARM_TICK_MS);
  }

  /** Stops ticking and waits for the last warm-up write; rethrows a write failure. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.inflight;
    if (this.failure !== undefined) throw this.failure;
  }
}
