// ioredis 5 listens to its socket's 'error' only once per connection, but a TLS socket whose
// handshake fails can emit a second one (seen in redis-tls: the server's "tlsv1 alert decode error"
// after the client refused its certificate), which Node throws as an uncaught exception. The IO
// keeps listening to a socket once it failed, so a second error of the dead socket is dropped.
// Real sockets: an IO pointed at a loopback port nobody listens on, its real socket's second error.
import { expect } from 'chai';
import net from 'node:net';
import { RedisStreamsIO } from '../../src/index.js';
import { uniqueName, waitFor } from '../support/env.js';

/** A loopback port that refuses connections (bound, then closed). */
async function refusedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

describe('RedisStreamsIO and a socket that errors twice', function () {
  this.timeout(10_000);

  it('a second error of a failed socket (ioredis listens once) is not thrown', async () => {
    const io = new RedisStreamsIO({ url: `redis://127.0.0.1:${await refusedPort()}`, stream: uniqueName('socket-errors') });
    const errors: Error[] = [];
    io.on('error', (e) => errors.push(e));
    try {
      await waitFor(() => errors.length > 0, { message: 'no connection error reported' });
      // The command connection's socket, as ioredis keeps it after the failure.
      const stream = (io as unknown as { cmd: { stream?: NodeJS.EventEmitter } }).cmd.stream;
      expect(stream, 'ioredis keeps the failed socket').to.not.equal(undefined);
      expect(() => stream?.emit('error', new Error('second error of a dead socket'))).to.not.throw();
    } finally {
      await io.destroy();
    }
  });
});
