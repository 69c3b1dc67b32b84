/**
 * Raw ioredis baseline, driving process. Roles (from the JSON config in argv[2]):
 * - `seq`: sequential echo calls, each timed;
 * - `inflight`: echo calls with `concurrency` in flight;
 * - `notify`: notifications (one XADD each) with `concurrency` writes in flight.
 *
 * Run by bench/run.ts: `node --import tsx bench/raw-client.ts '<config json>'`.
 */
import { runDriving, type DrivingSession } from './child-runtime.js';
import { runInflight, runNotify, runSequential, WarmupTicker } from './drivers.js';
import type { RoleConfig } from './protocol.js';
import { RawCaller } from './raw-streams.js';

const MAX_WARM_TICKS = 3000;

/**
 * The fastest simple baseline for each case: sequential calls write through a
 * plain connection (each XADD goes out at once), calls in flight and
 * notifications through an auto-pipelining one (the XADDs of a tick share one
 * socket write, which is faster there).
 */
function newCaller(config: RoleConfig): RawCaller {
  return new RawCaller(config.url, config.stream, config.replyStream, Date.now() + config.timeoutMs, config.role !== 'seq');
}

function echoSession(config: RoleConfig): DrivingSession {
  const caller = newCaller(config);
  const payload = 'x'.repeat(config.payloadBytes);
  const call = (p: string): Promise<unknown> => caller.call(p);
  const sequential = config.role === 'seq';
  return {
    warmup: async () => {
      if (sequential) await runSequential(call, payload, config.warmup);
      else await runInflight(call, payload, config.warmup, config.concurrency);
    },
    timed: () => (sequential ? runSequential(call, payload, config.count) : runInflight(call, payload, config.count, config.concurrency)),
    close: () => caller.close(),
  };
}

function notifySession(config: RoleConfig): DrivingSession {
  const caller = newCaller(config);
  const notify = (n: number): Promise<void> => caller.notify(n);
  let ticker: WarmupTicker | undefined;
  return {
    // Ticks until the parent says go: it waits for every subscriber to see one.
    warmup: () => {
      ticker = new WarmupTicker(notify, MAX_WARM_TICKS);
      return Promise.resolve();
    },
    timed: async () => {
      await ticker?.stop();
      return runNotify(notify, config.count, config.concurrency);
    },
    close: async () => {
      await ticker?.stop().catch(() => undefined);
      await caller.close();
    },
  };
}

await runDriving((config) => {
  switch (config.role) {
    case 'seq':
    case 'inflight':
      return echoSession(config);
    case 'notify':
      return notifySession(config);
    default:
      throw new Error(`raw-client.ts cannot play role "${config.role}"`);
  }
});
