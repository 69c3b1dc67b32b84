// Lifecycle of RedisStreamsIO against a real redis-server: use after destroy(), idempotent and
// prompt destroy(), nothing left behind (inbox key, connections), an unreachable Redis, and reply
// inboxes that outlive a live caller but expire after a SIGKILLed one.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import {
  RPCChannel,
  RedisStreamsConnectionError,
  RedisStreamsDestroyedError,
  RedisStreamsIO,
} from '../../src/index.js';
import { RedisServer } from '../support/redis-server.js';
import { deleteKeys, redisUrl, sleep, uniqueName, waitFor } from '../support/env.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../..');
const CALLER = path.join(here, 'fixtures', 'peer-caller.ts');

interface Api {
  ping(): string;
}

const modes = [
  { mode: 'broadcast', useConsumerGroup: false },
  { mode: 'load-balanced', useConsumerGroup: true },
] as const;

describe('RedisStreamsIO lifecycle', function () {
  this.timeout(30_000);
  let url = '';
  let name = '';
  const closeables: { destroy(): Promise<void> }[] = [];
  const children = new Set<ChildProcess>();
  let raw: Redis | undefined;

  beforeEach(() => {
    url = redisUrl();
    name = uniqueName('life');
  });

  afterEach(async () => {
    for (const child of children) child.kill('SIGKILL');
    children.clear();
    await Promise.all(closeables.splice(0).map((c) => c.destroy()));
    await raw?.quit();
    raw = undefined;
    await deleteKeys(url, `*${name}*`);
  });

  function io(options: ConstructorParameters<typeof RedisStreamsIO>[0] = {}): RedisStreamsIO {
    const created = new RedisStreamsIO({ url, stream: name, ...options });
    closeables.push(created);
    return created;
  }

  for (const { mode, useConsumerGroup } of modes) {
    it(`${mode}: every operation after destroy() rejects with RedisStreamsDestroyedError`, async () => {
      const target = io({ useConsumerGroup });
      target.acceptRequests();
      await target.waitUntilReady();
      await target.destroy();
      const attempts: [string, () => Promise<unknown>][] = [
        ['write', () => target.write({ data: 'x' })],
        ['write a reply', () => target.write({ data: 'x', target: 'someone' })],
        ['getStreamInfo', () => target.getStreamInfo()],
        ['trimStream', () => target.trimStream(1)],
        ['getAllEntries', () => target.getAllEntries()],
        ['signalDestroy', () => target.signalDestroy()],
      ];
      if (useConsumerGroup) attempts.push(['ack', () => target.ack({ id: '1-0' })]);
      for (const [what, attempt] of attempts) {
        const p = attempt();
        await expect(p, what).to.be.rejectedWith(RedisStreamsDestroyedError, 'Redis Streams adapter has been destroyed');
        const err = (await p.catch((e: unknown) => e)) as RedisStreamsDestroyedError;
        expect(err.code, what).to.equal('ERR_REDIS_DESTROYED');
      }
      expect(await target.read()).to.equal(null);
    });

    it(`${mode}: destroy() is idempotent, also through the channel that owns the IO`, async () => {
      const target = io({ useConsumerGroup });
      const channel = new RPCChannel<Api, Record<string, never>>(target, { expose: { ping: () => 'pong' } });
      await target.waitUntilReady();
      await Promise.all([target.destroy(), target.destroy()]);
      await target.destroy();
      await channel.destroy();
      await channel.destroy();
    });

    it(`${mode}: destroy() with blockTimeout 60000 returns at once and deletes the reply inbox`, async () => {
      const server = io({ useConsumerGroup, blockTimeout: 60_000 });
      const caller = io({ useConsumerGroup, blockTimeout: 60_000 });
      const channel = new RPCChannel<Api, Record<string, never>>(server, { expose: { ping: () => 'pong' } });
      await Promise.all([server.waitUntilReady(), caller.waitUntilReady()]);
      await sleep(100); // both readers are now inside their blocking reads
      raw = new Redis(url);
      const inboxes = [server, caller].map((x) => `{${name}}:inbox:${x.getSessionId()}`);
      expect(await raw.exists(...inboxes)).to.equal(2);
      const started = Date.now();
      await Promise.all([channel.destroy(), caller.destroy()]);
      const elapsed = Date.now() - started;
      console.log(`      destroy() of a blocked server and caller took ${elapsed} ms`);
      expect(elapsed, 'destroy() waited for the blocking read').to.be.lessThan(2_000);
      expect(await raw.exists(...inboxes), 'reply inboxes left behind').to.equal(0);
    });
  }

  describe('connections (on a private redis-server)', () => {
    let server: RedisServer | undefined;

    afterEach(async () => {
      await server?.stop();
      server = undefined;
    });

    /** Clients connected to the private server, not counting the one asking. */
    async function clientCount(): Promise<number> {
      const list = String(await (server as RedisServer).command('CLIENT', 'LIST'));
      return list.split('\n').filter((l) => l.trim() !== '').length - 1;
    }

    for (const { mode, useConsumerGroup } of modes) {
      it(`${mode}: a destroyed channel leaves no connection and no key behind`, async () => {
        server = await RedisServer.start();
        const serverIo = new RedisStreamsIO({ url: server.url, stream: name, useConsumerGroup });
        const callerIo = new RedisStreamsIO({ url: server.url, stream: name, useConsumerGroup });
        const worker = new RPCChannel<Api, Record<string, never>>(serverIo, { expose: { ping: () => 'pong' } });
        const client = new RPCChannel<Record<string, never>, Api>(callerIo, { timeout: 5_000 });
        await serverIo.waitUntilReady();
        expect(await client.getAPI().ping()).to.equal('pong');
        const open = await clientCount();
        console.log(`      ${mode}: ${open} connections while serving and calling`);
        expect(open).to.be.greaterThanOrEqual(4);
        await Promise.all([worker.destroy(), client.destroy()]);
        await waitFor(async () => (await clientCount()) === 0, { timeoutMs: 3_000, message: 'connections left open after destroy()' });
        const keys = (await server.command('KEYS', '*inbox*')) as string[];
        expect(keys, 'reply inboxes left behind').to.deep.equal([]);
      });
    }

    it('a user-supplied client is used, not closed by destroy(); the connections it duplicated are', async () => {
      server = await RedisServer.start();
      const own = new Redis(server.url);
      try {
        const serverIo = new RedisStreamsIO({ client: own, stream: name, useConsumerGroup: true, blockTimeout: 60_000 });
        const worker = new RPCChannel<Api, Record<string, never>>(serverIo, { expose: { ping: () => 'pong' } });
        const client = new RPCChannel<Record<string, never>, Api>(new RedisStreamsIO({ url: server.url, stream: name, useConsumerGroup: true }));
        await serverIo.waitUntilReady();
        expect(await client.getAPI().ping()).to.equal('pong');
        const before = await own.call('XINFO', 'CONSUMERS', name, serverIo.getConsumerGroup());
        expect(before, 'the worker reads through the supplied server').to.have.length(1);
        await Promise.all([worker.destroy(), client.destroy()]);
        expect(own.status).to.equal('ready');
        expect(await own.ping()).to.equal('PONG');
        await waitFor(async () => (await clientCount()) === 1, { timeoutMs: 3_000, message: 'duplicated connections left open' });
      } finally {
        await own.quit();
      }
    });
  });

  for (const { mode, useConsumerGroup } of modes) {
    it(`${mode}: an unreachable Redis fails calls with RedisStreamsConnectionError in bounded time, with few 'error' events`, async function () {
      this.timeout(20_000);
      const created = Date.now();
      const target = new RedisStreamsIO({ url: 'redis://127.0.0.1:1', stream: name, useConsumerGroup });
      const errors: Error[] = [];
      target.on('error', (e) => errors.push(e));
      const channel = new RPCChannel<Api, Api>(target, { timeout: 30_000, ...(useConsumerGroup ? { expose: { ping: () => 'pong' } } : {}) });
      channel.on('error', () => undefined); // the same errors, already counted on the IO
      const p = channel.getAPI().ping();
      await expect(p).to.be.rejectedWith(RedisStreamsConnectionError, 'Redis Streams connection error');
      const failedAfter = Date.now() - created;
      const err = (await p.catch((e: unknown) => e)) as RedisStreamsConnectionError;
      expect(err.code).to.equal('ERR_REDIS_CONNECTION');
      expect(err.cause).to.be.instanceOf(Error);
      expect(failedAfter, 'the call waited too long').to.be.lessThan(10_000);
      await sleep(Math.max(0, 3_000 - (Date.now() - created)));
      console.log(`      ${mode}: call failed after ${failedAfter} ms; ${errors.length} 'error' events in 3 s`);
      expect(errors.length, "'error' events over 3 s").to.be.within(1, 3);
      for (const e of errors) expect(e).to.be.instanceOf(RedisStreamsConnectionError);
      await channel.destroy();
    });
  }

  describe('reply inbox expiry', () => {
    async function inboxAlive(key: string): Promise<number> {
      raw ??= new Redis(url);
      return raw.exists(key);
    }

    for (const { mode } of modes) {
      it(`${mode}: the inbox of a caller process killed with SIGKILL expires after inboxTtlMs`, async () => {
        const proc = spawn(process.execPath, ['--import', 'tsx', CALLER], {
          cwd: repoRoot,
          env: { ...process.env, REDIS_URL: url, RPC_STREAM: name, RPC_MODE: mode === 'broadcast' ? 'broadcast' : 'group', INBOX_TTL_MS: '1500' },
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        children.add(proc);
        const lines: string[] = [];
        createInterface({ input: proc.stdout }).on('line', (l) => lines.push(l));
        await waitFor(() => lines.some((l) => l.startsWith('ready ')) || proc.exitCode !== null, { timeoutMs: 20_000 });
        const sessionId = lines.find((l) => l.startsWith('ready '))?.slice('ready '.length);
        expect(sessionId, 'caller process did not start').to.be.a('string');
        const inbox = `{${name}}:inbox:${sessionId}`;
        expect(await inboxAlive(inbox)).to.equal(1);
        const exited = new Promise((resolve) => proc.once('exit', resolve));
        proc.kill('SIGKILL');
        await exited;
        const killedAt = Date.now();
        await waitFor(async () => (await inboxAlive(inbox)) === 0, { timeoutMs: 5_000, message: 'the dead caller inbox never expired' });
        console.log(`      inbox of the killed caller gone ${Date.now() - killedAt} ms after SIGKILL`);
      });
    }

    it("a live caller's inbox persists past 3x inboxTtlMs and still receives answers", async function () {
      this.timeout(20_000);
      // One stream per mode, so that the broadcast server does not also answer the group's requests.
      const callers = modes.map(({ mode, useConsumerGroup }) => io({ stream: `${name}-${mode}`, useConsumerGroup, inboxTtlMs: 1500 }));
      const servers = modes.map(({ mode, useConsumerGroup }) => io({ stream: `${name}-${mode}`, useConsumerGroup }));
      const channels = servers.map((s) => new RPCChannel<Api, Record<string, never>>(s, { expose: { ping: () => 'pong' } }));
      const clients = callers.map((c) => new RPCChannel<Record<string, never>, Api>(c, { timeout: 5_000 }));
      closeables.push(...channels, ...clients);
      await Promise.all([...callers, ...servers].map((x) => x.waitUntilReady()));
      await sleep(3 * 1500 + 500);
      for (const c of callers) {
        const inbox = `{${c.getStream()}}:inbox:${c.getSessionId()}`;
        expect(await inboxAlive(inbox), 'live inbox expired').to.equal(1);
        const pttl = await (raw as Redis).pttl(inbox);
        expect(pttl).to.be.within(1, 1500);
      }
      for (const client of clients) expect(await client.getAPI().ping()).to.equal('pong');
    });
  });
});
