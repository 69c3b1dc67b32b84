// Least-privilege Redis users, on a throwaway redis-server of this file's own (ACL SETUSER changes
// server state). The roles are read from the README's "ACL roles" block, so what is documented is
// what runs: both modes serve calls under them, and each role is refused what it is not granted.
// Then every command a minimal user may be refused: a typed RedisStreamsPermissionError at once and
// each time it matters, never a silent retry into timeouts.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import {
  RPCChannel,
  RPCTimeoutError,
  RedisStreamsConnectionError,
  RedisStreamsIO,
  RedisStreamsPermissionError,
  type RedisStreamsIOOptions,
} from '../../src/index.js';
import { RedisServer } from '../support/redis-server.js';
import { uniqueName, waitFor } from '../support/env.js';

interface Api {
  add(a: number, b: number): number;
  whoami(): string;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const README = path.resolve(here, '../../README.md');
const PASSWORD = 'acl-test-password';

type Role = 'billing' | 'worker' | 'server' | 'inspector';

/** The `ACL SETUSER <role> ...` lines of the README's "ACL roles" section: rules after the user name. */
function documentedRoles(): Record<Role, string[]> {
  const text = readFileSync(README, 'utf8');
  const section = /^### ACL roles\n([\s\S]*?)\n#{2,3} /m.exec(text)?.[1];
  if (section === undefined) throw new Error('README.md has no "### ACL roles" section');
  const roles: Partial<Record<Role, string[]>> = {};
  for (const line of section.split('\n')) {
    const m = /^ACL SETUSER (\S+) (.+)$/.exec(line.trim());
    if (m?.[1] !== undefined && m[2] !== undefined) roles[m[1] as Role] = m[2].split(' ');
  }
  for (const role of ['billing', 'worker', 'server', 'inspector'] as const) {
    if (roles[role] === undefined) throw new Error(`README "ACL roles" documents no user "${role}"`);
  }
  return roles as Record<Role, string[]>;
}

/** The documented rules for `stream` instead of `orders`, with this test's password. */
function rulesFor(role: Role, stream: string): string[] {
  return documentedRoles()[role].map((rule) => {
    if (rule.startsWith('>')) return `>${PASSWORD}`;
    return rule.replaceAll('{orders}', `{${stream}}`).replace(/~orders$/, `~${stream}`);
  });
}

describe('Redis ACL: documented least-privilege roles, and refused commands as typed errors', function () {
  this.timeout(60_000);
  let server: RedisServer;
  const channels: RPCChannel<object, object>[] = [];
  const ios: RedisStreamsIO[] = [];
  const clients: Redis[] = [];

  before(async () => {
    server = await RedisServer.start();
  });

  after(async () => {
    await server?.stop();
  });

  afterEach(async () => {
    await Promise.all(channels.splice(0).map((c) => c.destroy()));
    await Promise.all(ios.splice(0).map((io) => io.destroy()));
    for (const client of clients.splice(0)) client.disconnect();
  });

  /** Creates a user with `rules` (after a reset); returns its URL. */
  async function user(rules: string[]): Promise<string> {
    const name = uniqueName('user').replaceAll(':', '-');
    await server.command('ACL', 'SETUSER', name, 'reset', ...rules);
    return `redis://${name}:${PASSWORD}@127.0.0.1:${server.port}`;
  }

  /** A user with the documented rules of `role`, minus the `removed` ones. */
  async function roleUser(role: Role, stream: string, removed: string[] = []): Promise<string> {
    const rules = rulesFor(role, stream);
    for (const rule of removed) expect(rules, `the documented ${role} rules include ${rule}`).to.include(rule);
    return user(rules.filter((r) => !removed.includes(r)));
  }

  function io(url: string, options: RedisStreamsIOOptions): RedisStreamsIO {
    const created = new RedisStreamsIO({ url, ...options });
    ios.push(created);
    return created;
  }

  function collect(target: { on(event: 'error', listener: (e: Error) => void): unknown }): Error[] {
    const errors: Error[] = [];
    target.on('error', (e) => errors.push(e));
    return errors;
  }

  function channel<L extends object, R extends object>(transport: RedisStreamsIO, options: ConstructorParameters<typeof RPCChannel<L, R>>[1] = {}): { ch: RPCChannel<L, R>; errors: Error[] } {
    const ch = new RPCChannel<L, R>(transport, options);
    channels.push(ch as RPCChannel<object, object>);
    return { ch, errors: collect(ch) };
  }

  function serve(transport: RedisStreamsIO, name: string): { errors: Error[] } {
    return channel<Api, Record<string, never>>(transport, { expose: { add: (a: number, b: number) => a + b, whoami: () => name } });
  }

  const denied = (errors: readonly Error[], command: string): RedisStreamsPermissionError[] =>
    errors.filter((e): e is RedisStreamsPermissionError => e instanceof RedisStreamsPermissionError && e.command === command);

  describe('the documented roles', () => {
    it('load-balanced: a caller and two workers under their documented users; calls succeed, and destroy() cleans up without a refusal', async () => {
      const stream = uniqueName('acl-lb');
      const workerUrl = await roleUser('worker', stream);
      const workers = ['w1', 'w2'].map((name) => {
        // retentionIntervalMs 100: retention (XINFO GROUPS, XPENDING, XTRIM) runs many times under the documented rules.
        const transport = io(workerUrl, { stream, useConsumerGroup: true, sessionIdPrefix: 'worker-', consumerName: name, claimIdleMs: 1000, writeBatchSize: 1, retentionIntervalMs: 100 });
        return { transport, ...serve(transport, name) };
      });
      await Promise.all(workers.map((w) => w.transport.waitUntilReady()));
      const callerIo = io(await roleUser('billing', stream), { stream, useConsumerGroup: true, sessionIdPrefix: 'billing-', writeBatchSize: 1 });
      expect(callerIo.getSessionId()).to.match(/^billing-/);
      await callerIo.waitUntilReady();
      const caller = channel<Record<string, never>, Api>(callerIo, { timeout: 20_000 });
      const api = caller.ch.getAPI();
      expect(await Promise.all(Array.from({ length: 40 }, (_, i) => api.add(i, 1)))).to.deep.equal(Array.from({ length: 40 }, (_, i) => i + 1));
      const served = new Set(await Promise.all(Array.from({ length: 40 }, () => api.whoami())));
      expect([...served].every((w) => w === 'w1' || w === 'w2')).to.equal(true);
      // A few recovery passes (every claimIdleMs / 2) and lease renewals run under the worker's ACL.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(await api.add(2, 2)).to.equal(4);
      await Promise.all(channels.splice(0).map((c) => c.destroy()));
      // The channels forward every error of their IO.
      expect([...caller.errors, ...workers.flatMap((w) => w.errors)]).to.deep.equal([]);
      // destroy() deleted the inboxes and left the group (DEL, xgroup|delconsumer allowed).
      expect(await server.command('KEYS', `{${stream}}:inbox:*`)).to.deep.equal([]);
      expect(await server.command('XINFO', 'CONSUMERS', stream, 'rpc-group')).to.deep.equal([]);
    });

    it('broadcast: a caller and a server under their documented users; calls succeed', async () => {
      const stream = uniqueName('acl-bc');
      // Retention (XINFO GROUPS, XTRIM MINID) runs every 100 ms under the documented rules.
      const serverIo = io(await roleUser('server', stream), { stream, sessionIdPrefix: 'server-', retentionIntervalMs: 100, retentionMs: 1 });
      const srv = serve(serverIo, 'server');
      await serverIo.waitUntilReady();
      const callerIo = io(await roleUser('billing', stream), { stream, sessionIdPrefix: 'billing-' });
      await callerIo.waitUntilReady();
      const caller = channel<Record<string, never>, Api>(callerIo, { timeout: 20_000 });
      const api = caller.ch.getAPI();
      expect(await Promise.all(Array.from({ length: 30 }, (_, i) => api.add(i, 3)))).to.deep.equal(Array.from({ length: 30 }, (_, i) => i + 3));
      expect(await api.whoami()).to.equal('server');
      await new Promise((resolve) => setTimeout(resolve, 500));
      await Promise.all(channels.splice(0).map((c) => c.destroy()));
      expect([...caller.errors, ...srv.errors]).to.deep.equal([]);
      expect(await server.command('KEYS', `{${stream}}:inbox:*`)).to.deep.equal([]);
    });

    it("what the roles may not do: a caller reads neither the request stream nor another caller's inbox; an inspector writes nothing", async () => {
      const stream = uniqueName('acl-deny');
      await server.command('XADD', stream, '*', 'f', 'someone', 'd', 'secret request');
      await server.command('XADD', `{${stream}}:inbox:other-1`, '*', 'f', 'w', 'd', 'secret answer');
      await server.command('XGROUP', 'CREATE', stream, 'rpc-group', '0');
      await server.command('XADD', `{${stream}}:dead`, '*', 'source', '1-1', 'd', 'dead');
      const connect = (url: string): Redis => {
        const client = new Redis(url, { maxRetriesPerRequest: 0, retryStrategy: () => null });
        client.on('error', () => undefined);
        clients.push(client);
        return client;
      };
      const caller = connect(await roleUser('billing', stream));
      await expect(caller.xrange(stream, '-', '+')).to.be.rejectedWith(/NOPERM/);
      await expect(caller.xread('STREAMS', stream, '0')).to.be.rejectedWith(/NOPERM/);
      await expect(caller.xread('STREAMS', `{${stream}}:inbox:other-1`, '0')).to.be.rejectedWith(/NOPERM/);
      await expect(caller.xadd(`{${stream}}:inbox:other-1`, '*', 'f', 'forged')).to.be.rejectedWith(/NOPERM/);
      await expect(caller.xreadgroup('GROUP', 'rpc-group', 'c', 'STREAMS', stream, '>')).to.be.rejectedWith(/NOPERM/);
      await expect(caller.xack(stream, 'rpc-group', '1-1')).to.be.rejectedWith(/NOPERM/);
      expect(await caller.xread('STREAMS', `{${stream}}:inbox:billing-1`, '0')).to.equal(null);

      const inspector = connect(await roleUser('inspector', stream));
      expect(await inspector.xlen(stream)).to.equal(1);
      expect(await inspector.xrange(stream, '-', '+')).to.have.length(1);
      expect(await inspector.call('XINFO', 'GROUPS', stream)).to.have.length(1);
      expect(await inspector.call('XPENDING', stream, 'rpc-group')).to.deep.include(0);
      expect(await inspector.xrange(`{${stream}}:dead`, '-', '+')).to.have.length(1);
      expect(await inspector.xrange(`{${stream}}:inbox:other-1`, '-', '+')).to.have.length(1);
      await expect(inspector.xadd(stream, '*', 'f', 'x')).to.be.rejectedWith(/NOPERM/);
      await expect(inspector.xtrim(stream, 'MAXLEN', 0)).to.be.rejectedWith(/NOPERM/);
      await expect(inspector.del(`{${stream}}:inbox:other-1`)).to.be.rejectedWith(/NOPERM/);
      await expect(inspector.xgroup('DESTROY', stream, 'rpc-group')).to.be.rejectedWith(/NOPERM/);
      expect(await server.command('XLEN', stream)).to.equal(1);
    });

    it('sessionIdPrefix: validated, and a given sessionId must start with it', () => {
      expect(() => new RedisStreamsIO({ sessionIdPrefix: 'bill*' })).to.throw(/sessionIdPrefix/);
      expect(() => new RedisStreamsIO({ sessionIdPrefix: 'a b' })).to.throw(/sessionIdPrefix/);
      expect(() => new RedisStreamsIO({ sessionIdPrefix: 'billing-', sessionId: 'other-1' })).to.throw(/sessionId/);
    });
  });

  describe('a refused command is a typed error at once, every time it matters', () => {
    it('caller refused XREAD of its inbox: its calls reject with RedisStreamsPermissionError instead of timing out; reported again each time', async () => {
      const stream = uniqueName('acl-inbox');
      const serverIo = io(await roleUser('server', stream), { stream, sessionIdPrefix: 'server-' });
      serve(serverIo, 'server');
      await serverIo.waitUntilReady();
      const callerIo = io(await roleUser('billing', stream, ['+xread']), { stream, sessionIdPrefix: 'billing-' });
      await callerIo.waitUntilReady();
      const caller = channel<Record<string, never>, Api>(callerIo, { timeout: 30_000 });
      const started = Date.now();
      const results = await Promise.allSettled([caller.ch.getAPI().add(1, 2), caller.ch.getAPI().whoami()]);
      for (const r of results) {
        expect(r.status).to.equal('rejected');
        const reason = (r as PromiseRejectedResult).reason as RedisStreamsPermissionError;
        expect(reason).to.be.instanceOf(RedisStreamsPermissionError);
        expect(reason.code).to.equal('ERR_REDIS_PERMISSION');
        expect(reason.command).to.equal('XREAD');
        expect(reason.message).to.include(`{${stream}}:inbox:billing-`);
      }
      expect(Date.now() - started).to.be.below(15_000);
      // A call made later fails too, at the next refusal.
      await expect(caller.ch.getAPI().add(3, 4)).to.be.rejectedWith(RedisStreamsPermissionError);
      expect(denied(caller.errors, 'XREAD').length).to.be.at.least(2);
    });

    it('load-balanced worker refused XREADGROUP: RedisStreamsPermissionError on every attempt (not once), and it serves once the ACL allows it', async () => {
      const stream = uniqueName('acl-readgroup');
      const workerUrl = await roleUser('worker', stream, ['+xreadgroup']);
      const workerIo = io(workerUrl, { stream, useConsumerGroup: true, sessionIdPrefix: 'worker-' });
      const worker = serve(workerIo, 'w');
      await workerIo.waitUntilReady();
      await waitFor(() => denied(worker.errors, 'XREADGROUP').length >= 3, { timeoutMs: 20_000, message: 'XREADGROUP refusals were not reported again' });
      const username = new URL(workerUrl).username;
      await server.command('ACL', 'SETUSER', username, '+xreadgroup');
      const callerIo = io(await roleUser('billing', stream), { stream, useConsumerGroup: true, sessionIdPrefix: 'billing-' });
      const api = channel<Record<string, never>, Api>(callerIo, { timeout: 20_000 }).ch.getAPI();
      expect(await api.add(5, 6)).to.equal(11);
    });

    it('broadcast server refused XREAD of the request stream: RedisStreamsPermissionError on every attempt', async () => {
      const stream = uniqueName('acl-xread');
      const serverUrl = await user(rulesFor('server', stream).filter((r) => r !== `%R~${stream}`));
      // XREVRANGE of set-up is refused too: waitUntilReady() says so.
      const serverIo = io(serverUrl, { stream, sessionIdPrefix: 'server-' });
      const srv = serve(serverIo, 's');
      const err = await serverIo.waitUntilReady().then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(RedisStreamsPermissionError);
      expect((err as RedisStreamsPermissionError).command).to.equal('XREVRANGE');
      // Granted the stream for XREVRANGE, but no XREAD: set-up completes at its next attempt, and
      // each read of requests is refused and reported (the inbox reads too, told apart by action).
      await server.command('ACL', 'SETUSER', new URL(serverUrl).username, '-xread', `%R~${stream}`);
      await waitFor(() => serverIo.waitUntilReady().then(() => true, () => false), { timeoutMs: 10_000, message: 'set-up did not complete once allowed' });
      const requestReads = (): RedisStreamsPermissionError[] => denied(srv.errors, 'XREAD').filter((e) => e.message.includes(`read requests from "${stream}"`));
      await waitFor(() => requestReads().length >= 3, { timeoutMs: 20_000, message: 'XREAD refusals were not reported again' });
    });

    for (const command of ['+xautoclaim', '+xpending'] as const) {
      it(`load-balanced worker refused ${command.slice(1).toUpperCase()}: it keeps serving new requests, and the refusal is reported at each recovery pass`, async () => {
        const stream = uniqueName('acl-recovery');
        const workerIo = io(await roleUser('worker', stream, [command]), { stream, useConsumerGroup: true, sessionIdPrefix: 'worker-', claimIdleMs: 400 });
        const worker = serve(workerIo, 'w');
        await workerIo.waitUntilReady();
        const callerIo = io(await roleUser('billing', stream), { stream, useConsumerGroup: true, sessionIdPrefix: 'billing-' });
        const api = channel<Record<string, never>, Api>(callerIo, { timeout: 10_000 }).ch.getAPI();
        for (let i = 0; i < 5; i++) expect(await api.add(i, 10)).to.equal(i + 10);
        await waitFor(() => denied(worker.errors, command.slice(1).toUpperCase()).length >= 3, { timeoutMs: 20_000, message: `${command} refusals were not reported again` });
        expect(await api.add(1, 1)).to.equal(2);
        expect(worker.errors.filter((e) => !(e instanceof RedisStreamsPermissionError))).to.deep.equal([]);
      });
    }

    it('destroy(): a refused DEL of the inbox, and a refused xgroup|delconsumer, are reported on the channel\'s \'error\'', async () => {
      const stream = uniqueName('acl-destroy');
      const workerIo = io(await roleUser('worker', stream, ['+del', '+xgroup|delconsumer']), { stream, useConsumerGroup: true, sessionIdPrefix: 'worker-' });
      const worker = serve(workerIo, 'w');
      await workerIo.waitUntilReady();
      const callerIo = io(await roleUser('billing', stream, ['+del']), { stream, useConsumerGroup: true, sessionIdPrefix: 'billing-' });
      const caller = channel<Record<string, never>, Api>(callerIo, { timeout: 10_000 });
      expect(await caller.ch.getAPI().add(1, 2)).to.equal(3);
      await Promise.all(channels.splice(0).map((c) => c.destroy()));
      expect(denied(caller.errors, 'DEL')).to.have.length(1);
      expect(denied(worker.errors, 'DEL')).to.have.length(1);
      expect(denied(worker.errors, 'XGROUP|DELCONSUMER')).to.have.length(1);
    });

    it('caller refused XADD of requests: the call rejects at once with RedisStreamsPermissionError', async () => {
      const stream = uniqueName('acl-xadd');
      const callerUrl = await user(rulesFor('billing', stream).filter((r) => r !== `%W~${stream}`));
      const callerIo = io(callerUrl, { stream, sessionIdPrefix: 'billing-' });
      await callerIo.waitUntilReady();
      const caller = channel<Record<string, never>, Api>(callerIo, { timeout: 20_000 });
      const started = Date.now();
      const err = await caller.ch.getAPI().add(1, 2).then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(RedisStreamsPermissionError);
      expect((err as RedisStreamsPermissionError).command).to.equal('XADD');
      expect(Date.now() - started).to.be.below(5000);
    });

    it('set-up refused (no PEXPIRE): waitUntilReady() and calls reject with RedisStreamsPermissionError instead of hanging', async () => {
      const stream = uniqueName('acl-setup');
      const callerIo = io(await roleUser('billing', stream, ['+pexpire']), { stream, sessionIdPrefix: 'billing-' });
      const caller = channel<Record<string, never>, Api>(callerIo, { timeout: 20_000 });
      const [ready, call] = await Promise.allSettled([callerIo.waitUntilReady(), caller.ch.getAPI().add(1, 2)]);
      for (const outcome of [ready, call]) {
        const reason = (outcome as PromiseRejectedResult).reason as RedisStreamsPermissionError;
        expect(reason).to.be.instanceOf(RedisStreamsPermissionError);
        expect(reason.command).to.equal('PEXPIRE');
      }
      expect(denied(caller.errors, 'PEXPIRE').length).to.be.at.least(1);
    });

    it('load-balanced worker refused XADD to inboxes: each refused answer is a RedisStreamsPermissionError on its \'error\'', async () => {
      const stream = uniqueName('acl-answer');
      const workerUrl = await user(rulesFor('worker', stream).filter((r) => r !== `%W~{${stream}}:inbox:*`));
      const workerIo = io(workerUrl, { stream, useConsumerGroup: true, sessionIdPrefix: 'worker-' });
      const worker = serve(workerIo, 'w');
      await workerIo.waitUntilReady();
      const callerIo = io(await roleUser('billing', stream), { stream, useConsumerGroup: true, sessionIdPrefix: 'billing-' });
      const api = channel<Record<string, never>, Api>(callerIo, { timeout: 3000 }).ch.getAPI();
      await expect(api.add(1, 2)).to.be.rejectedWith(RPCTimeoutError);
      expect(worker.errors.some((e) => e instanceof RedisStreamsPermissionError)).to.equal(true);
    });

    it('wrong password: waitUntilReady() and calls reject with RedisStreamsConnectionError (WRONGPASS) instead of hanging', async () => {
      const stream = uniqueName('acl-pass');
      const url = (await roleUser('billing', stream)).replace(PASSWORD, 'not-the-password');
      const callerIo = io(url, { stream });
      const caller = channel<Record<string, never>, Api>(callerIo, { timeout: 20_000 });
      const [ready, call] = await Promise.allSettled([callerIo.waitUntilReady(), caller.ch.getAPI().add(1, 2)]);
      for (const outcome of [ready, call]) {
        const reason = (outcome as PromiseRejectedResult).reason as Error;
        expect(reason).to.be.instanceOf(RedisStreamsConnectionError);
        expect(reason.message).to.match(/WRONGPASS/);
      }
    });
  });
});
