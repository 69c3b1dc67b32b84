import type { EventMap } from './io-interface.js';

/**
 * Where background problems go when nobody listens to `'error'`, and notable
 * events. Only `warn` is required: a logger without `error` gets errors on
 * `warn` (as before `error` existed); one without `info` gets no notes.
 * Debug-level lines go through the `debug` package (`DEBUG=redis-streams-rpc:*`).
 */
export interface Logger {
  /** Reports a problem nobody subscribed to, when the logger has no `error`. */
  warn(message: string, error?: unknown): void;
  /** Reports an `'error'` nobody listens to (or a listener that threw). */
  error?(message: string, error?: unknown): void;
  /** Notable events that are not failures: a reconnection, a request dead-lettered, a take-over. */
  info?(message: string, details?: Readonly<Record<string, unknown>>): void;
}

/** Why `logger` is not a {@link Logger}, or undefined when it is. */
export function loggerProblem(logger: unknown): string | undefined {
  if (typeof logger !== 'object' || logger === null || typeof (logger as Logger).warn !== 'function') return 'expected an object with a warn(message, error) method';
  for (const level of ['error', 'info'] as const) {
    const fn = (logger as Record<string, unknown>)[level];
    if (fn !== undefined && typeof fn !== 'function') return `its "${level}" must be a function when present`;
  }
  return undefined;
}

/** Sends an unobserved error to the logger's `error`, else its `warn`. */
export function logError(logger: Logger, message: string, error: unknown): void {
  if (logger.error !== undefined) logger.error(message, error);
  else logger.warn(message, error);
}

/**
 * Default {@link Logger}: a process warning (printed once per distinct message
 * code by Node), so an unobserved failure is never silent yet never throws.
 */
export const defaultLogger: Logger = {
  warn(message: string, error?: unknown): void {
    const detail = error instanceof Error ? `${error.name}: ${error.message}` : error === undefined ? '' : JSON.stringify(error) ?? typeof error;
    process.emitWarning(detail === '' ? message : `${message}: ${detail}`, { code: 'REDIS_STREAMS_RPC' });
  },
};

/**
 * A small typed event emitter. Unlike node:events, an `'error'` with no
 * listener goes to the logger instead of throwing inside a background loop,
 * and a throwing listener cannot break the emitter's caller.
 */
export class TypedEmitter<Events extends EventMap<Events>> {
  private readonly listeners = new Map<keyof Events, Set<Events[keyof Events]>>();

  /** @param logger - Receives errors nobody listens to. */
  constructor(private readonly logger: Logger = defaultLogger) {}

  /** Adds a listener. */
  on<E extends keyof Events & string>(event: E, listener: Events[E]): this {
    let set = this.listeners.get(event);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener);
    return this;
  }

  /** Adds a listener that is removed after its first call. */
  once<E extends keyof Events & string>(event: E, listener: Events[E]): this {
    const wrapper = ((...args: Parameters<Events[E]>) => {
      this.off(event, wrapper);
      (listener as (...a: Parameters<Events[E]>) => void)(...args);
    }) as Events[E];
    return this.on(event, wrapper);
  }

  /** Removes a listener. */
  off<E extends keyof Events & string>(event: E, listener: Events[E]): this {
    this.listeners.get(event)?.delete(listener);
    return this;
  }

  /** Number of listeners of an event. */
  listenerCount(event: keyof Events & string): number {
    return this.listeners.get(event)?.size ?? 0;
  }

  /** Removes every listener. */
  removeAllListeners(): void {
    this.listeners.clear();
  }

  /** Calls every listener of `event`; returns whether there was one. */
  emit<E extends keyof Events & string>(event: E, ...args: Parameters<Events[E]>): boolean {
    const set = this.listeners.get(event);
    if (set === undefined || set.size === 0) {
      if (event === 'error') logError(this.logger, 'redis-streams-rpc error with no "error" listener', args[0]);
      return false;
    }
    for (const listener of [...set]) {
      try {
        (listener as (...a: Parameters<Events[E]>) => void)(...args);
      } catch (err) {
        if (event !== 'error') this.emit('error' as E, ...([err] as unknown as Parameters<Events[E]>));
        else logError(this.logger, 'an "error" listener threw', err);
      }
    }
    return true;
  }
}
