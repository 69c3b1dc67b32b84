// write() with a malformed message never throws synchronously: it returns a promise rejected with
// RPCInvalidArgumentError naming the bad part (`message`, `message.data`, ...), on RedisStreamsIO
// (real redis-server) and on MemoryIO alike. Nothing is written for it.
import { expect } from 'chai';
import { RPCInvalidArgumentError, RedisStreamsIO, createMemoryIoPair, type IoInterface, type IoOutboundMessage } from '../../src/index.js';
import { deleteKeys, redisUrl, uniqueName } from '../support/env.js';

/** Malformed messages and the argument the error must name. */
const CASES: { label: string; message: unknown; argument: string }[] = [
  { label: 'a string', message: 'text', argument: 'message' },
  { label: 'null', message: null, argument: 'message' },
  { label: 'undefined', message: undefined, argument: 'message' },
  { label: 'a number', message: 42, argument: 'message' },
  { label: 'an object without data', message: {}, argument: 'message.data' },
  { label: 'a number as data', message: { data: 5 }, argument: 'message.data' },
  { label: 'a number as target', message: { data: 'x', target: 5 }, argument: 'message.target' },
  { label: 'an empty target', message: { data: 'x', target: '' }, argument: 'message.target' },
  { label: 'a string as settles', message: { data: 'x', target: 'peer', settles: 'abc' }, argument: 'message.settles' },
  { label: 'settles without an id', message: { data: 'x', target: 'peer', settles: {} }, argument: 'message.settles' },
  { label: 'settles with a numeric id', message: { data: 'x', target: 'peer', settles: { id: 1 } }, argument: 'message.settles' },
];

/** Calls write() and fails the test if it throws instead of returning a promise. */
function writeUnchecked(io: IoInterface, message: unknown): Promise<void> {
  let result: Promise<void> | undefined;
  expect(() => (result = io.write(message as IoOutboundMessage)), 'write() must not throw synchronously').not.to.throw();
  expect(result).to.be.instanceOf(Promise);
  return result as Promise<void>;
}

async function expectRejections(io: IoInterface): Promise<void> {
  for (const { label, message, argument } of CASES) {
    const error = await expect(writeUnchecked(io, message), label).to.be.rejectedWith(RPCInvalidArgumentError);
    expect(error, label).to.include({ code: 'ERR_RPC_INVALID_ARGUMENT', argument });
  }
  // A getter that throws is the caller's error, still on the promise.
  const hostile = Object.defineProperty({}, 'data', {
    get() {
      throw new Error('boom');
    },
  });
  await expect(writeUnchecked(io, hostile), 'a throwing getter').to.be.rejectedWith('boom');
}

describe('IoInterface.write() validates its message', function () {
  this.timeout(20_000);

  describe('RedisStreamsIO', () => {
    let url = '';
    let name = '';
    const ios: RedisStreamsIO[] = [];

    beforeEach(() => {
      url = redisUrl();
      name = uniqueName('write-validation');
    });

    afterEach(async () => {
      await Promise.all(ios.splice(0).map((io) => io.destroy()));
      await deleteKeys(url, `*${name}*`);
    });

    for (const useConsumerGroup of [false, true]) {
      it(`${useConsumerGroup ? 'load-balanced' : 'broadcast'}: rejects a malformed message with RPCInvalidArgumentError, writes nothing, and still writes good ones`, async () => {
        const io = new RedisStreamsIO({ url, stream: name, useConsumerGroup });
        ios.push(io);
        await io.waitUntilReady();
        await expectRejections(io);
        expect(io.stats().sent, 'nothing was written').to.equal(0);
        expect(await io.getAllEntries(), 'entries on the request stream').to.deep.equal([]);
        await io.write({ data: 'ok' });
        expect(io.stats().sent).to.equal(1);
      });
    }
  });

  describe('MemoryIO', () => {
    it('rejects a malformed message with RPCInvalidArgumentError, delivers nothing, and still delivers good ones', async () => {
      const [a, b] = createMemoryIoPair();
      try {
        await expectRejections(a);
        expect(a.stats().sent).to.equal(0);
        expect(b.queued, 'messages delivered to the peer').to.equal(0);
        await a.write({ data: 'ok' });
        expect(await b.read()).to.include({ data: 'ok', from: a.id });
      } finally {
        await Promise.all([a.destroy(), b.destroy()]);
      }
    });
  });
});
