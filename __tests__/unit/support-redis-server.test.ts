// Tests of the test helper itself: if RedisServer lies about restarts or kills, every fault test
// built on it proves nothing.
import { existsSync } from 'node:fs';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { RedisServer, findRedisServerBinary } from '../support/redis-server.js';

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

function connect(url: string): Redis {
  const client = new Redis(url, { retryStrategy: () => null, maxRetriesPerRequest: 0 });
  client.on('error', () => undefined); // commands reject on their own
  return client;
}

function onceEnded(client: Redis): Promise<void> {
  return new Promise((resolve) => client.once('end', () => resolve()));
}

describe('support/redis-server', () => {
  const servers: RedisServer[] = [];
  const clients: Redis[] = [];
  const start = async (opts?: Parameters<typeof RedisServer.start>[0]): Promise<RedisServer> => {
    const server = await RedisServer.start(opts);
    servers.push(server);
    return server;
  };

  afterEach(async () => {
    for (const client of clients.splice(0)) client.disconnect();
    await Promise.all(servers.splice(0).map((server) => server.stop()));
  });

  it('finds the redis-server binary and rejects a bad REDIS_SERVER_BIN', async () => {
    expect(await findRedisServerBinary()).to.match(/redis-server$/);
    const saved = process.env.REDIS_SERVER_BIN;
    process.env.REDIS_SERVER_BIN = '/nonexistent/redis-server';
    try {
      await expect(findRedisServerBinary()).to.be.rejectedWith(Error, /REDIS_SERVER_BIN/);
    } finally {
      if (saved === undefined) delete process.env.REDIS_SERVER_BIN;
      else process.env.REDIS_SERVER_BIN = saved;
    }
  });

  it('starts on a free loopback port with persistence off and runs commands', async () => {
    const server = await start();
    expect(server.port).to.be.a('number').and.not.equal(6379);
    expect(server.url).to.equal(`redis://127.0.0.1:${server.port}`);
    expect(processExists(server.pid)).to.equal(true);
    expect(existsSync(server.dir)).to.equal(true);
    expect(await server.command('CONFIG', 'GET', 'bind')).to.deep.equal(['bind', '127.0.0.1']);
    expect(await server.command('CONFIG', 'GET', 'appendonly')).to.deep.equal(['appendonly', 'no']);
    expect(await server.command('CONFIG', 'GET', 'save')).to.deep.equal(['save', '']);
    expect(await server.command('CONFIG', 'GET', 'dir')).to.deep.equal(['dir', server.dir]);
    expect(await server.command('SET', 'k', 'v1')).to.equal('OK');
    expect(await server.command('GET', 'k')).to.equal('v1');
  });

  it('starts two servers on different ports', async () => {
    const [a, b] = await Promise.all([start(), start()]);
    expect(a!.port).to.not.equal(b!.port);
    await a!.command('SET', 'only-on-a', '1');
    expect(await b!.command('EXISTS', 'only-on-a')).to.equal(0);
  });

  it('keeps acknowledged writes across a SIGKILL restart with appendOnly', async () => {
    const server = await start({ appendOnly: true });
    expect(await server.command('CONFIG', 'GET', 'appendfsync')).to.deep.equal(['appendfsync', 'always']);
    await server.command('SET', 'survivor', 'still here');
    await server.command('XADD', 'stream', '*', 'f', 'v');
    const { port, dir, pid: oldPid } = server;

    await server.restart({ downMs: 50 });

    expect(processExists(oldPid)).to.equal(false);
    expect(server.pid).to.not.equal(oldPid);
    expect(server.port).to.equal(port);
    expect(server.dir).to.equal(dir);
    expect(await server.command('GET', 'survivor')).to.equal('still here');
    expect(await server.command('XLEN', 'stream')).to.equal(1);
  });

  it('loses writes across a restart without appendOnly', async () => {
    const server = await start();
    await server.command('SET', 'ephemeral', 'gone soon');
    const oldPid = server.pid;

    await server.restart();

    expect(server.pid).to.not.equal(oldPid);
    expect(await server.command('GET', 'ephemeral')).to.equal(null);
    expect(await server.command('DBSIZE')).to.equal(0);
  });

  it('lets a reconnecting client come back after a restart', async () => {
    const server = await start();
    const client = new Redis(server.url, { retryStrategy: () => 20, maxRetriesPerRequest: null });
    client.on('error', () => undefined);
    clients.push(client);
    await client.set('x', '1');
    await server.restart({ downMs: 100 });
    expect(await client.get('x')).to.equal(null);
    expect(await client.ping()).to.equal('PONG');
  });

  it('kill() ends the process with SIGKILL and the port stops answering', async () => {
    const server = await start();
    const pid = server.pid;
    await server.kill();
    expect(server.alive).to.equal(false);
    expect(processExists(pid)).to.equal(false);
    await expect(server.command('PING')).to.be.rejectedWith(Error, /ECONNREFUSED|Connection is closed/);
  });

  it('stop() removes the directory it created and unregisters nothing it did not start', async () => {
    const server = await start();
    const pid = server.pid;
    await server.stop();
    expect(processExists(pid)).to.equal(false);
    expect(existsSync(server.dir)).to.equal(false);
  });

  it('clientKillAll() drops every other connection, blocked readers included', async () => {
    const server = await start();
    const idle = connect(server.url);
    const blocked = connect(server.url);
    clients.push(idle, blocked);
    await Promise.all([idle.ping(), blocked.ping()]);
    // Attach the expectation before the kill: the rejection must never be unhandled, not even for a tick.
    const readFails = expect(blocked.xread('BLOCK', 0, 'STREAMS', 'nothing-here', '$')).to.be.rejectedWith(
      Error,
      /Connection is closed/,
    );
    const idleEnded = onceEnded(idle);

    expect(await server.clientKillAll()).to.equal(2);

    await readFails;
    await idleEnded;
  });

  it('pause() holds other clients\' commands until the pause ends', async () => {
    const server = await start();
    const client = connect(server.url);
    clients.push(client);
    await client.ping();

    await server.pause(1_500);
    let answered = false;
    const reply = client.ping().then((r) => ((answered = true), r));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(answered, 'PING answered during CLIENT PAUSE').to.equal(false);
    expect(await reply).to.equal('PONG');
  });

  it('start() rejects with the log tail when redis-server refuses to start', async () => {
    await expect(RedisServer.start({ extraArgs: ['--no-such-directive', 'x'] })).to.be.rejectedWith(
      Error,
      /exited during startup[\s\S]*no-such-directive/,
    );
  });
});
