/**
 * Redis Cluster: three real cluster-enabled redis-server processes on
 * loopback, joined with `redis-cli --cluster create`. The same RPC code runs
 * over an ioredis `Cluster` passed as `client`, because every key of a logical
 * stream shares its hash tag.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { Cluster } from 'ioredis';
import { RPCChannel, RedisStreamsIO } from '../../src/index.js';
import { RedisServer } from '../support/redis-server.js';
import { sleep, uniqueName, waitFor } from '../support/env.js';

const run = promisify(execFile);

async function redisCli(): Promise<string | undefined> {
  try {
    const { stdout } = await run('sh', ['-c', 'command -v redis-cli']);
    return stdout.trim() || undefined;
  } catch {
    return undefined;
  }
}

async function startCluster(): Promise<{ servers: RedisServer[]; nodes: { host: string; port: number }[] }> {
  const servers = await Promise.all(
    [0, 1, 2].map(() => RedisServer.start({ extraArgs: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '3000'] })),
  );
  const cli = (await redisCli()) as string;
  await run(cli, ['--cluster', 'create', ...servers.map((s) => `127.0.0.1:${s.port}`), '--cluster-replicas', '0', '--cluster-yes']);
  await waitFor(
    async () => {
      const infos = await Promise.all(servers.map((s) => s.command('CLUSTER', 'INFO')));
      return infos.every((i) => String(i).includes('cluster_state:ok'));
    },
    { timeoutMs: 20_000, message: 'cluster did not reach cluster_state:ok' },
  );
  return { servers, nodes: servers.map((s) => ({ host: '127.0.0.1', port: s.port })) };
}

type Api = { math: { add(a: number, b: number): number }; who(): string };

describe('Redis Cluster (3 masters)', function () {
  this.timeout(60_000);
  let servers: RedisServer[] = [];
  let nodes: { host: string; port: number }[] = [];
  const clients: Cluster[] = [];

  before(async function () {
    if ((await redisCli()) === undefined) this.skip();
    ({ servers, nodes } = await startCluster());
  });

  after(async () => {
    await Promise.all(clients.splice(0).map((c) => c.quit().catch(() => c.disconnect())));
    await Promise.all(servers.map((s) => s.stop()));
  });

  function cluster(): Cluster {
    const c = new Cluster(nodes, { enableAutoPipelining: true, redisOptions: { maxRetriesPerRequest: 3 } });
    clients.push(c);
    return c;
  }

  for (const useConsumerGroup of [false, true]) {
    it(`serves calls in ${useConsumerGroup ? 'load-balanced' : 'broadcast'} mode over a Cluster client, keys spread over one slot`, async () => {
      // Several streams, so that their slots land on different masters.
      const streams = [0, 1, 2, 3].map((i) => uniqueName(`cl${i}`));
      for (const stream of streams) {
        const serverIo = new RedisStreamsIO({ client: cluster(), stream, useConsumerGroup, claimIdleMs: 1000 });
        const server = new RPCChannel<Api>(serverIo, { expose: { math: { add: (a, b) => a + b }, who: () => serverIo.getSessionId() } });
        await serverIo.waitUntilReady();
        const clientIo = new RedisStreamsIO({ client: cluster(), stream, useConsumerGroup });
        const client = new RPCChannel<Record<string, never>, Api>(clientIo, { timeout: 10_000 });
        const api = client.getAPI();
        const sums = await Promise.all(Array.from({ length: 200 }, (_, i) => api.math.add(i, 1)));
        expect(sums).to.deep.equal(Array.from({ length: 200 }, (_, i) => i + 1));
        expect(await api.who()).to.equal(serverIo.getSessionId());
        const slots = new Set<number>();
        for (const key of [stream, `{${stream}}:inbox:${clientIo.getSessionId()}`, `{${stream}}:inbox:${serverIo.getSessionId()}`]) {
          slots.add(Number(await servers[0]!.command('CLUSTER', 'KEYSLOT', key)));
        }
        expect(slots.size, 'every key of one logical stream is in one slot').to.equal(1);
        await client.destroy();
        await server.destroy();
      }
      await sleep(10);
    });
  }
});
