/** A level-free wake-up: `wait()` resolves at the next `notify()`. */
export class Signal {
  private waiters = new Set<() => void>();

  /** Resolves at the next {@link Signal.notify}. */
  wait(): Promise<void> {
    return new Promise((resolve) => this.waiters.add(resolve));
  }

  /** Calls `wake` at the next notify; the returned function cancels that, so short waits leave nothing behind. */
  subscribe(wake: () => void): () => void {
    this.waiters.add(wake);
    return () => this.waiters.delete(wake);
  }

  /** Wakes every waiter. */
  notify(): void {
    if (this.waiters.size === 0) return;
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const wake of waiters) wake();
  }
}

/**
 * Sleeps `ms`, or less if `signal` fires first. The timer never holds the
 * process open, and a sleep that ends by itself unsubscribes from `signal`
 * (a long outage sleeps thousands of times; none may stay registered).
 */
export function sleep(ms: number, signal?: Signal): Promise<void> {
  return new Promise((resolve) => {
    const unsubscribe = signal?.subscribe(() => {
      clearTimeout(timer);
      resolve();
    });
    const timer = setTimeout(() => {
      unsubscribe?.();
      resolve();
    }, ms);
    timer.unref();
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

/** `promise`, or `undefined` once `ms` have passed first (the timer does not keep the process alive). */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    timer.unref();
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
