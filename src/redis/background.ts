/**
 * The background work of one {@link RedisStreamsIO}: blocking read loops,
 * each on a connection of its own, and periodic tasks (heartbeat, lease
 * renewal, recovery, retention). Failures back off with jitter and are
 * reported once per failure streak, a command the ACL refuses at every
 * attempt; {@link BackgroundTasks.stop} ends everything without waiting for
 * a blocking read to time out.
 *
 * @module
 */
import { Signal, backoffMs, sleep, withTimeout } from './async-utils.js';
import { connectionError, isLibraryError, isNoGroupError, isPermissionError, redisError, type RedisConnection } from './connection.js';

/** Longest stop() waits for its read loops to end, in milliseconds. */
const LOOP_STOP_GRACE_MS = 2000;

/** Longest pause between two attempts of a read the ACL refuses; each refusal is reported. */
const DENIED_RETRY_MAX_MS = 5000;

/** What the tasks need from their IO. */
export interface BackgroundHost {
  /** Whether the IO is destroyed: every loop and task ends. */
  closed(): boolean;
  /** Resolves true once set up, false if destroyed first. */
  whenReady(): Promise<boolean>;
  /** Reports a background failure (see ConnectionSupervisor.report). */
  report(err: unknown): void;
  /** Creates the consumer group (a read found it missing). */
  createGroup(): Promise<void>;
}

/** One read loop's step, what it does (for reports) and how it ends. */
export interface ReadLoopSpec {
  readonly step: (reader: RedisConnection) => Promise<void>;
  /** What the step does, e.g. `read the inbox "key"`: the reports say it. */
  readonly action: string;
  /** Called with every refusal by the ACL. */
  readonly onDenied?: (error: Error) => void;
  /** Ends this loop alone (drain). */
  readonly stopped?: () => boolean;
}

/** Read loops, their connections and the periodic tasks of one IO. */
export class BackgroundTasks {
  private readonly stopSignal = new Signal();
  private readonly readers: RedisConnection[] = [];
  private readonly loops: Promise<void>[] = [];
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(private readonly host: BackgroundHost) {}

  /** Notified at stop(): sleeps of set-up retries end with it. */
  get stopping(): Signal {
    return this.stopSignal;
  }

  /** Runs `spec.step` on `reader` until the IO is destroyed (or `spec.stopped()`); `reader` is disconnected at stop(). */
  startReadLoop(reader: RedisConnection, spec: ReadLoopSpec): void {
    this.readers.push(reader);
    this.loops.push(this.readLoop(reader, spec));
  }

  /** Runs `task` every `ms`, never two at once; failures are reported. */
  every(ms: number, task: () => Promise<void>): void {
    let running = false;
    const timer = setInterval(() => {
      if (running || this.host.closed()) return;
      running = true;
      task()
        .catch((err: unknown) => this.host.report(err))
        .finally(() => (running = false));
    }, ms);
    timer.unref();
    this.timers.push(timer);
  }

  /**
   * Ends every task and loop. Disconnecting the readers breaks a pending
   * blocking read at once. Bounded: a reader disconnected while it was
   * waiting to reconnect (just after a Redis restart) never settles the read
   * it had queued (ioredis flushes its offline queue only on a close event,
   * which a socket already closed does not emit again). That loop holds no
   * socket or timer any more; waiting for it would hang destroy().
   */
  async stop(): Promise<void> {
    this.stopSignal.notify();
    for (const timer of this.timers) clearInterval(timer);
    for (const reader of this.readers) reader.disconnect();
    await withTimeout(Promise.allSettled(this.loops), LOOP_STOP_GRACE_MS);
  }

  /**
   * Failures back off with jitter, and one report is made per failure streak,
   * so an outage neither spins nor floods logs.
   */
  private async readLoop(reader: RedisConnection, spec: ReadLoopSpec): Promise<void> {
    const { host } = this;
    if (!(await host.whenReady())) return;
    const stopped = spec.stopped ?? (() => false);
    let failures = 0;
    while (!host.closed() && !stopped()) {
      try {
        await spec.step(reader);
        failures = 0;
      } catch (err) {
        if (host.closed() || stopped()) return;
        failures++;
        const denied = isPermissionError(err);
        if (isNoGroupError(err)) await host.createGroup().catch((e: unknown) => host.report(redisError('create the consumer group', e)));
        else if (denied) {
          // Refused until an operator changes the ACL: reported at every attempt, never retried silently.
          const error = redisError(spec.action, err);
          host.report(error);
          spec.onDenied?.(error);
        }
        // Through report(): while the command connection is down, its outage is already reported.
        else if (failures === 1) host.report(isLibraryError(err) ? err : connectionError(spec.action, err));
        await sleep(backoffMs(failures, denied ? 250 : 50, denied ? DENIED_RETRY_MAX_MS : 2000), this.stopSignal);
      }
    }
  }
}
