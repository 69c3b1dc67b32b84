// Debug logging (the `debug` package, as ioredis): DEBUG=redis-streams-rpc:* prints the namespaces of
// connections, reads, trims, calls and handler runs on stderr; without DEBUG nothing is printed. And
// logger.info hears of notable events (a reconnection).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { RedisStreamsIO } from '../../src/index.js';
import { useRedisTest, waitFor } from '../support/env.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../..');
const CHILD = path.join(here, 'fixtures', 'debug-child.ts');

function run(url: string, stream: string, debug: string | undefined): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, REDIS_URL: url, RPC_STREAM: stream, DEBUG_COLORS: 'no' };
  delete env.DEBUG;
  if (debug !== undefined) env.DEBUG = debug;
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

describe('debug logging (DEBUG=redis-streams-rpc:*)', function () {
  this.timeout(30_000);
  const redis = useRedisTest('debug');

  it('prints the connection, read, trim, call and handle namespaces when DEBUG enables them', async () => {
    const { code, stdout, stderr } = await run(redis.url, redis.name, 'redis-streams-rpc:*');
    expect(code, stderr).to.equal(0);
    expect(stdout).to.equal('sum 5\n');
    for (const ns of ['connection', 'read', 'trim', 'call', 'handle']) expect(stderr, ns).to.match(new RegExp(`redis-streams-rpc:${ns} `));
    expect(stderr).to.match(/redis-streams-rpc:call call \S+ add on /);
    expect(stderr).to.match(/redis-streams-rpc:handle handled \S+: ok/);
    expect(stderr).to.match(/redis-streams-rpc:connection \S+ set up: inbox .*, group /);
  });

  it('prints only the namespaces DEBUG names', async () => {
    const { code, stderr } = await run(redis.url, redis.name, 'redis-streams-rpc:call');
    expect(code, stderr).to.equal(0);
    expect(stderr).to.match(/redis-streams-rpc:call /);
    expect(stderr).not.to.match(/redis-streams-rpc:(connection|read|handle|trim) /);
  });

  it('prints nothing without DEBUG', async () => {
    const { code, stdout, stderr } = await run(redis.url, redis.name, undefined);
    expect(code, stderr).to.equal(0);
    expect(stdout).to.equal('sum 5\n');
    expect(stderr).to.equal('');
  });
});

describe('logger.info', function () {
  this.timeout(20_000);
  const redis = useRedisTest('loginfo');

  it('is told about a reconnection after CLIENT KILL', async () => {
    const notes: { message: string; details: Readonly<Record<string, unknown>> | undefined }[] = [];
    const io = redis.track(new RedisStreamsIO({ url: redis.url, stream: redis.name, logger: { warn: () => undefined, info: (message, details) => void notes.push({ message, details }) } }));
    await io.waitUntilReady();
    const admin = new Redis(redis.url);
    try {
      await admin.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
    } finally {
      admin.disconnect();
    }
    await waitFor(() => notes.some((n) => n.message.includes('reconnected')), { message: 'no info note of the reconnection' });
    expect(notes.find((n) => n.message.includes('reconnected'))?.details).to.include({ stream: redis.name });
  });
});
