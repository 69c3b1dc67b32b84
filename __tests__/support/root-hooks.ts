// Mocha root hooks (loaded through .mocharc.json "require"): chai-as-promised, a guard that fails
// the run on unhandled rejections, and cleanup of redis-server processes left by failing tests.
import * as chai from 'chai';
import chaiAsPromised from 'chai-as-promised';
import { stopAllRedisServers } from './redis-server.js';

chai.use(chaiAsPromised);

// Mocha re-emits unhandled rejections from user code on `process` and, with no other listener,
// they vanish. ioredis is prone to them, so record each one and fail the next hook below.
const unhandled: unknown[] = [];
let runFinished = false;

process.on('unhandledRejection', (reason) => {
  process.stderr.write(`\n[root-hooks] unhandled rejection: ${describe(reason)}\n`);
  if (runFinished) process.exitCode = 1; // too late to fail a test; fail the process instead
  else unhandled.push(reason);
});

function describe(reason: unknown): string {
  return reason instanceof Error ? (reason.stack ?? String(reason)) : String(reason);
}

async function throwIfUnhandled(where: string): Promise<void> {
  // A rejection from the code that just ran surfaces only after the microtask queue drains.
  await new Promise((resolve) => setImmediate(resolve));
  if (unhandled.length === 0) return;
  const reasons = unhandled.splice(0);
  throw new Error(
    `${reasons.length} unhandled rejection(s) ${where}:\n${reasons.map(describe).join('\n---\n')}`,
    { cause: reasons[0] },
  );
}

export const mochaHooks: Mocha.RootHookObject = {
  async afterEach(this: Mocha.Context) {
    await throwIfUnhandled(`during "${this.currentTest?.fullTitle() ?? 'unknown test'}"`);
  },
  async afterAll() {
    await stopAllRedisServers(); // never rejects: it settles every stop()
    try {
      await throwIfUnhandled('after the last test');
    } finally {
      runFinished = true;
    }
  },
};
