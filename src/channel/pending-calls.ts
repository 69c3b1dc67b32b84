import { RPCTimeoutError } from '../errors.js';

/** One call waiting for its answer. */
export interface PendingCall {
  readonly method: string;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
  /** Functions the caller passed; invoked by callback messages until the call settles. */
  readonly callbacks: readonly ((...args: unknown[]) => unknown)[] | undefined;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Calls waiting for answers, each with its own unref'd timer. A call leaves
 * this table exactly once (answer, error, timeout or close), so late and
 * repeated answers find nothing and are counted as duplicates.
 */
export class PendingCalls {
  private readonly calls = new Map<string, PendingCall>();

  /** Number of calls waiting. */
  get size(): number {
    return this.calls.size;
  }

  /**
   * Registers a call and arms its timeout, which rejects it with {@link RPCTimeoutError}.
   */
  add(id: string, call: PendingCall, timeoutMs: number, onTimeout: () => void): void {
    this.calls.set(id, call);
    const timer = setTimeout(() => {
      if (this.calls.get(id) !== call) return;
      this.calls.delete(id);
      onTimeout();
      call.reject(new RPCTimeoutError(call.method, timeoutMs));
    }, timeoutMs);
    timer.unref();
    call.timer = timer;
  }

  /** The call with this id, still pending. */
  get(id: string): PendingCall | undefined {
    return this.calls.get(id);
  }

  /** Removes a call and clears its timer; `undefined` when it already settled. */
  take(id: string): PendingCall | undefined {
    const call = this.calls.get(id);
    if (call === undefined) return undefined;
    this.calls.delete(id);
    if (call.timer !== undefined) clearTimeout(call.timer);
    return call;
  }

  /** Rejects and removes every call. */
  rejectAll(makeError: (call: PendingCall) => Error): void {
    const calls = [...this.calls.values()];
    this.calls.clear();
    for (const call of calls) {
      if (call.timer !== undefined) clearTimeout(call.timer);
      call.reject(makeError(call));
    }
  }
}
