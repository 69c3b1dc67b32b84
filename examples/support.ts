// Helpers shared by the examples: where Redis is, a fresh stream name, cleanup, worker processes.
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';

/** `npm run demo` and scripts/with-redis.mjs set REDIS_URL to a throwaway redis-server. */
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A stream name no earlier run has used, so no stale group or pending entry gets in the way. */
export function uniqueStream(name: string): string {
  return `examples:${name}:${Date.now().toString(36)}`;
}

/** Deletes the stream and every key derived from it (inboxes, dead letters: `{stream}:*`). */
export async function removeStreamKeys(stream: string): Promise<void> {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  try {
    const derived: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `{${stream}}:*`, 'COUNT', 500);
      cursor = next;
      derived.push(...keys);
    } while (cursor !== '0');
    await redis.del(stream, ...derived);
  } finally {
    await redis.quit();
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Worker processes started by {@link startWorkers}. */
export interface WorkerProcesses {
  readonly pids: number[];
  /** SIGKILLs one worker: no cleanup, its pending requests stay in the group. */
  kill(pid: number): Promise<void>;
  /** Asks every live worker to shut down and waits until each process has exited. */
  stop(): Promise<void>;
}

/**
 * Forks `count` copies of examples/worker.ts (through tsx) serving `stream`
 * in load-balanced mode, and resolves once each reports that it is ready.
 */
export async function startWorkers(count: number, stream: string, env: Record<string, string> = {}): Promise<WorkerProcesses> {
  const entry = fileURLToPath(new URL('./worker.ts', import.meta.url));
  const children: ChildProcess[] = [];
  for (let i = 0; i < count; i++) {
    children.push(fork(entry, [], { execArgv: ['--import', 'tsx'], env: { ...process.env, ...env, REDIS_URL, STREAM: stream } }));
  }
  await Promise.all(children.map(async (child) => {
    const [message] = (await Promise.race([once(child, 'message'), once(child, 'exit')])) as unknown[];
    if (message !== 'ready') throw new Error(`worker ${child.pid} exited before becoming ready`);
  }));
  const live = (): ChildProcess[] => children.filter((c) => c.exitCode === null && c.signalCode === null);
  return {
    pids: children.map((c) => c.pid as number),
    async kill(pid) {
      const child = children.find((c) => c.pid === pid);
      if (child === undefined || !live().includes(child)) return;
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      await Promise.all(live().map(async (child) => {
        const exited = once(child, 'exit');
        child.send('stop');
        const [code] = (await exited) as [number | null];
        if (code !== 0) throw new Error(`worker ${child.pid} exited with code ${code}`);
      }));
    },
  };
}
