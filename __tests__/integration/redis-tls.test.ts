// Both modes over rediss:// against a TLS-only redis-server on loopback (the plain port is off),
// with the CA given through redisOptions.tls; a wrong CA and a wrong host name fail with a typed
// error at waitUntilReady() and at the first call, instead of hanging. The CA and the server
// certificate are made with openssl in a temp dir; without openssl, or with a redis-server built
// without TLS, the suite fails saying what to install (it is never skipped).
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { RPCChannel, RedisStreamsConnectionError, RedisStreamsIO, type RedisStreamsIOOptions } from '../../src/index.js';
import { RedisServer } from '../support/redis-server.js';
import { createTestCertificates, type TestCertificates } from '../support/tls.js';
import { uniqueName } from '../support/env.js';

interface Api {
  add(a: number, b: number): number;
  whoami(): string;
}

/** Node's codes for a certificate that does not chain to the trusted CA. */
const UNTRUSTED = ['SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY'];

describe('Redis over TLS (rediss:// to a TLS-only redis-server)', function () {
  this.timeout(60_000);
  let certs: TestCertificates | undefined;
  let server: RedisServer;
  const channels: RPCChannel<object, object>[] = [];
  const ios: RedisStreamsIO[] = [];

  before(async () => {
    certs = createTestCertificates();
    server = await RedisServer.start({ tls: certs });
  });

  after(async () => {
    await server?.stop();
    certs?.cleanup();
  });

  afterEach(async () => {
    await Promise.all(channels.splice(0).map((c) => c.destroy()));
    await Promise.all(ios.splice(0).map((io) => io.destroy()));
  });

  const tlsCerts = (): TestCertificates => {
    if (certs === undefined) throw new Error('no certificates');
    return certs;
  };

  function io(options: RedisStreamsIOOptions): RedisStreamsIO {
    const created = new RedisStreamsIO({ url: server.url, redisOptions: { tls: { ca: tlsCerts().ca } }, ...options });
    ios.push(created);
    return created;
  }

  function channel<L extends object, R extends object>(transport: RedisStreamsIO, options: ConstructorParameters<typeof RPCChannel<L, R>>[1] = {}): RPCChannel<L, R> {
    const created = new RPCChannel<L, R>(transport, options);
    // The refusals are asserted on the IO and on the calls; the channel forwards them here too.
    created.on('error', () => undefined);
    channels.push(created as RPCChannel<object, object>);
    return created;
  }

  it('the server takes TLS only: a plain redis:// client cannot run a command', async () => {
    const plain = new Redis(`redis://127.0.0.1:${server.port}`, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    plain.on('error', () => undefined);
    try {
      await expect(plain.connect().then(() => plain.ping())).to.be.rejected;
    } finally {
      plain.disconnect();
    }
    expect(await server.command('PING')).to.equal('PONG');
  });

  it('broadcast: calls over rediss://localhost succeed (host name checked against the certificate)', async () => {
    const stream = uniqueName('tls-bc');
    const url = `rediss://localhost:${server.port}`;
    const serverIo = io({ url, stream });
    channel<Api, Record<string, never>>(serverIo, { expose: { add: (a: number, b: number) => a + b, whoami: () => 'server' } });
    await serverIo.waitUntilReady();
    const callerIo = io({ url, stream });
    await callerIo.waitUntilReady();
    const api = channel<Record<string, never>, Api>(callerIo, { timeout: 20_000 }).getAPI();
    expect(await Promise.all(Array.from({ length: 20 }, (_, i) => api.add(i, 1)))).to.deep.equal(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(await api.whoami()).to.equal('server');
  });

  it('load-balanced: two workers of a consumer group serve a caller over rediss://', async () => {
    const stream = uniqueName('tls-lb');
    for (const name of ['w1', 'w2']) {
      const workerIo = io({ stream, useConsumerGroup: true, consumerName: name, writeBatchSize: 1 });
      channel<Api, Record<string, never>>(workerIo, { expose: { add: (a: number, b: number) => a + b, whoami: () => name } });
      await workerIo.waitUntilReady();
    }
    const callerIo = io({ stream, useConsumerGroup: true, writeBatchSize: 1 });
    await callerIo.waitUntilReady();
    const api = channel<Record<string, never>, Api>(callerIo, { timeout: 20_000 }).getAPI();
    expect(await Promise.all(Array.from({ length: 40 }, (_, i) => api.add(i, 2)))).to.deep.equal(Array.from({ length: 40 }, (_, i) => i + 2));
    const served = await Promise.all(Array.from({ length: 40 }, () => api.whoami()));
    expect(served.every((w) => w === 'w1' || w === 'w2')).to.equal(true);
    // Every request was acknowledged through the group.
    const pending = (await server.command('XPENDING', stream, 'rpc-group')) as unknown[];
    expect(pending[0]).to.equal(0);
  });

  for (const mode of ['broadcast', 'load-balanced'] as const) {
    const useConsumerGroup = mode === 'load-balanced';

    it(`${mode}: a CA that did not sign the server's certificate: waitUntilReady() and the first call reject with RedisStreamsConnectionError (the TLS error as cause), no hang`, async () => {
      const wrong = io({ stream: uniqueName('tls-ca'), useConsumerGroup, redisOptions: { tls: { ca: tlsCerts().otherCa } } });
      const errors: Error[] = [];
      wrong.on('error', (e) => errors.push(e));
      const started = Date.now();
      const err = await wrong.waitUntilReady().then(
        () => expect.fail('waitUntilReady() resolved over an untrusted certificate'),
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(RedisStreamsConnectionError);
      const cause = (err as Error).cause as NodeJS.ErrnoException;
      expect(UNTRUSTED).to.include(cause.code);
      expect(Date.now() - started).to.be.below(10_000);
      const api = channel<Record<string, never>, Api>(wrong, { timeout: 20_000 }).getAPI();
      const callErr = await api.add(1, 2).then(
        () => expect.fail('a call succeeded over an untrusted certificate'),
        (e: unknown) => e as Error,
      );
      expect(callErr).to.be.instanceOf(RedisStreamsConnectionError);
      expect(UNTRUSTED).to.include((callErr.cause as NodeJS.ErrnoException).code);
      expect(Date.now() - started).to.be.below(15_000);
      expect(errors.some((e) => e instanceof RedisStreamsConnectionError && UNTRUSTED.includes((e.cause as NodeJS.ErrnoException).code ?? ''))).to.equal(true);
    });

    it(`${mode}: a host name the certificate does not name: waitUntilReady() and the first call reject with RedisStreamsConnectionError (ERR_TLS_CERT_ALTNAME_INVALID), no hang`, async () => {
      const wrong = io({ stream: uniqueName('tls-host'), useConsumerGroup, redisOptions: { tls: { ca: tlsCerts().ca, servername: 'wrong-host.invalid' } } });
      wrong.on('error', () => undefined);
      // A call made at once, before set-up has failed: it is held, then fails with the refusal.
      const api = channel<Record<string, never>, Api>(wrong, { timeout: 20_000 }).getAPI();
      const started = Date.now();
      const [ready, call] = await Promise.allSettled([wrong.waitUntilReady(), api.add(1, 2)]);
      for (const outcome of [ready, call]) {
        expect(outcome.status).to.equal('rejected');
        const reason = (outcome as PromiseRejectedResult).reason as Error;
        expect(reason).to.be.instanceOf(RedisStreamsConnectionError);
        expect((reason.cause as NodeJS.ErrnoException).code).to.equal('ERR_TLS_CERT_ALTNAME_INVALID');
        expect(reason.message).to.match(/wrong-host\.invalid/);
      }
      expect(Date.now() - started).to.be.below(15_000);
    });
  }
});
