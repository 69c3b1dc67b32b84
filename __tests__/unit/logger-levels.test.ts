// Logger levels: an unobserved 'error' goes to logger.error when the logger has one, else to warn (a
// logger with only warn keeps working); loggers are validated by both the channel and the Redis adapter.
import { expect } from 'chai';
import { RPCChannel, RPCInvalidArgumentError, RedisStreamsIO, createMemoryIoPair, type Logger } from '../../src/index.js';

/** A channel whose IO reports an error nobody listens to: a message that is not ours. */
async function unobservedError(logger: Logger): Promise<void> {
  const [a, b] = createMemoryIoPair();
  const channel = new RPCChannel(a, { logger });
  try {
    await b.write({ data: 'not a redis-streams-rpc message' });
    await new Promise((resolve) => setTimeout(resolve, 20));
  } finally {
    await channel.destroy();
    await b.destroy();
  }
}

describe('logger levels', () => {
  it('sends an unobserved error to warn when the logger has only warn', async () => {
    const warned: unknown[] = [];
    await unobservedError({ warn: (_m, e) => void warned.push(e) });
    expect(warned).to.have.length(1);
    expect(warned[0]).to.have.property('code', 'ERR_RPC_PROTOCOL');
  });

  it('sends it to error, not warn, when the logger has error', async () => {
    const warned: unknown[] = [];
    const errors: unknown[] = [];
    await unobservedError({ warn: (_m, e) => void warned.push(e), error: (_m, e) => void errors.push(e) });
    expect(warned).to.have.length(0);
    expect(errors).to.have.length(1);
  });

  it('refuses a logger without warn, or with a level that is not a function, on the channel and on the IO', () => {
    const [a] = createMemoryIoPair();
    expect(() => new RPCChannel(a, { logger: {} as Logger })).to.throw(RPCInvalidArgumentError, /warn/);
    expect(() => new RPCChannel(a, { logger: { warn: () => undefined, info: 1 } as unknown as Logger })).to.throw(RPCInvalidArgumentError, /"info"/);
    expect(() => new RedisStreamsIO({ stream: 's', logger: { warn: () => undefined, error: 'x' } as unknown as Logger })).to.throw(RPCInvalidArgumentError, /"error"/);
  });
});
