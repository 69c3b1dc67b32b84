/** A level-free wake-up: `wait()` resolves at the next `notify()`. */
export class Signal {
  private waiters: (() => void)[] = [];

  /** Resolves at the next {@link Signal.notify}. */
  wait(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Wakes every waiter. */
  notify(): void {
    if (this.waiters.length === 0) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}

/** Sleeps `ms`, or less if `signal` fires first. The timer never holds the process open. */
export function sleep(ms: number, signal?: Signal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    timer.unref();
    void signal?.wait().then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * Exponential backoff with full jitter, so a fleet of workers does not retry
 * in lock step after a Redis restart.
 */
export function backoffMs(attempt: number, baseMs = 50, maxMs = 2000): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 16));
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}
