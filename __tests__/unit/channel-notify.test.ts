// notify(): one-way calls that resolve once written, their failures staying on the server.
import * as chai from 'chai';
import chaiAsPromised from 'chai-as-promised';
import { expect } from 'chai';
import { RPCChannel, RPCMethodNotFoundError, createMemoryIoPair } from '../../src/index.js';

chai.use(chaiAsPromised);

const open: { destroy(): Promise<void> }[] = [];

interface LogApi {
  log: { write(level: string, at: Date): void };
  fail(message: string): void;
  failAsync(): Promise<void>;
  rejectString(): Promise<void>;
  ping(): string;
}

function setup() {
  const [a, b] = createMemoryIoPair();
  const written: [string, Date][] = [];
  let releaseRan!: () => void;
  const ran = new Promise<void>((resolve) => (releaseRan = resolve));
  const server = new RPCChannel<LogApi, Record<string, never>>(a, {
    expose: {
      log: {
        write: (level, at) => {
          written.push([level, at]);
          releaseRan();
        },
      },
      fail: (message) => {
        throw new RangeError(message);
      },
      failAsync: async () => {
        await Promise.resolve();
        throw new Error('async notification failure');
      },
      rejectString: () => Promise.reject('a plain string'), // eslint-disable-line prefer-promise-reject-errors
      ping: () => 'pong',
    },
  });
  const client = new RPCChannel<Record<string, never>, LogApi>(b, { timeout: 5_000 });
  const serverErrors: Error[] = [];
  const clientErrors: Error[] = [];
  server.on('error', (e) => serverErrors.push(e));
  client.on('error', (e) => clientErrors.push(e));
  open.push(server, client);
  return { server, client, written, ran, serverErrors, clientErrors };
}

/** Destroys what the test opened; shared by every describe of this file. */
async function cleanUp(): Promise<void> {
  await Promise.all(open.splice(0).map((c) => c.destroy()));
}

describe('RPCChannel notify() (memory IO)', () => {
  afterEach(cleanUp);

  it('runs the handler and resolves with undefined once written, with no answer sent back', async () => {
    const { client, server, written, ran, serverErrors, clientErrors } = setup();
    const at = new Date('2021-02-03T04:05:06.007Z');
    const result = await client.notify().log.write('info', at);
    expect(result).to.equal(undefined);
    expect(client.stats()).to.include({ calls: 1, sent: 1 });
    await ran;
    expect(written).to.have.length(1);
    expect(written[0]?.[0]).to.equal('info');
    expect(written[0]?.[1]).to.be.instanceOf(Date);
    expect(written[0]?.[1].getTime()).to.equal(at.getTime());
    // The server answers the next call only: a notification has no result message.
    expect(await client.getAPI().ping()).to.equal('pong');
    expect(server.stats()).to.include({ handled: 2, sent: 1 });
    expect(client.stats()).to.include({ received: 1, duplicates: 0 });
    expect(serverErrors).to.deep.equal([]);
    expect(clientErrors).to.deep.equal([]);
  });

  it('resolves before the handler has run (it does not wait for the server)', async () => {
    const [a, b] = createMemoryIoPair();
    let ran = false;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const server = new RPCChannel(a, {
      expose: {
        slow: async () => {
          await gate;
          ran = true;
        },
      },
    });
    const client = new RPCChannel<Record<string, never>, { slow(): Promise<void> }>(b);
    open.push(server, client);
    await client.notify().slow();
    expect(ran).to.equal(false);
    release();
  });

  it('reports a throwing notification handler on the server\'s "error" event, not to the caller', async () => {
    const { client, server, serverErrors, clientErrors } = setup();
    await client.notify().fail('sync failure');
    await client.notify().failAsync();
    await client.notify().rejectString();
    // A later call's answer proves that the server has run the three notifications.
    expect(await client.getAPI().ping()).to.equal('pong');
    await new Promise((resolve) => setImmediate(resolve));
    expect(serverErrors).to.have.length(3);
    expect(serverErrors[0]).to.be.instanceOf(RangeError);
    expect(serverErrors[0]?.message).to.equal('sync failure');
    expect(serverErrors[1]?.message).to.equal('async notification failure');
    expect(serverErrors[2]).to.be.instanceOf(Error);
    expect(serverErrors[2]?.message).to.equal('a plain string');
    expect(clientErrors).to.deep.equal([]);
    expect(client.stats()).to.include({ received: 1, duplicates: 0 });
    expect(server.stats().sent).to.equal(1);
  });

  it('reports a notification for an unknown method on the server with RPCMethodNotFoundError', async () => {
    const { client, serverErrors, clientErrors } = setup();
    const loose = client.notify() as unknown as { nope: { nothing(): Promise<void> } };
    await loose.nope.nothing();
    expect(await client.getAPI().ping()).to.equal('pong');
    expect(serverErrors).to.have.length(1);
    const err = serverErrors[0] as RPCMethodNotFoundError;
    expect(err).to.be.instanceOf(RPCMethodNotFoundError);
    expect(err.code).to.equal('ERR_RPC_METHOD_NOT_FOUND');
    expect(err.method).to.equal('nope.nothing');
    expect(clientErrors).to.deep.equal([]);
  });

  it('delivers notifications in order with calls', async () => {
    const { client, written } = setup();
    const notify = client.notify();
    const sent = Array.from({ length: 50 }, (_, i) => notify.log.write(`n${i}`, new Date(i)));
    const [pong] = await Promise.all([client.getAPI().ping(), ...sent]);
    expect(pong).to.equal('pong');
    expect(written.map(([level]) => level)).to.deep.equal(Array.from({ length: 50 }, (_, i) => `n${i}`));
  });
});
