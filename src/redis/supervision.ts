/**
 * Connection supervision of one {@link RedisStreamsIO}: turns the ioredis
 * events of its connections (the command connection and each blocking
 * reader) into one `'error'` per outage and a `'reconnect'` when a connection
 * is back, remembers whether the command connection is down or was refused
 * (TLS verification, credentials), and filters background failures so that an
 * outage already reported is not reported again by every task that meets it.
 *
 * @module
 */
import { debugLog } from '../debug-log.js';
import { RedisStreamsConnectionError, type RPCError } from '../errors.js';
import type { Logger } from '../io/typed-emitter.js';
import { connectionError, isRefusedConnection, redisError, type RedisConnection } from './connection.js';
import type { Inbound } from './inbound.js';

/** Sockets already given a lasting 'error' listener. */
const guarded = new WeakSet<object>();

/**
 * ioredis 5 listens to its socket's `'error'` only once per connection
 * (`stream.once("error", ...)` in Redis.js), but a TLS socket whose handshake
 * fails can emit a second one (the server's alert after the client refused its
 * certificate: "tlsv1 alert decode error"), which Node would throw as an
 * uncaught exception, ending the process. Called at the first error, while
 * `conn.stream` is still that socket: later errors of the dead socket are
 * dropped (ioredis reconnects on a new one, and the outage was reported).
 */
function keepListening(conn: RedisConnection): void {
  const stream = (conn as { stream?: { on?: unknown } }).stream;
  if (stream === undefined || stream === null || typeof stream.on !== 'function' || guarded.has(stream)) return;
  guarded.add(stream);
  (stream as NodeJS.EventEmitter).on('error', () => undefined);
}

/** Which connection of the IO. */
export type ConnectionRole = 'command' | 'reader';

/** What the supervisor needs from its IO. */
export interface SupervisorHost {
  /** This endpoint's session id, for debug lines. */
  readonly id: string;
  /** The request stream's name, for the logger. */
  readonly stream: string;
  readonly inbound: Inbound;
  readonly logger: Logger | undefined;
  /** The command connection is back after being lost: Redis may have restarted empty. */
  onCommandBack(): void;
  /** The command connection was refused in a way retrying cannot fix. */
  onRefused(): void;
}

/** Outage reporting and connection state of one IO. */
export class ConnectionSupervisor {
  /** Successful reconnections (read by the IO's stats()). */
  reconnects = 0;
  private commandDown = false;
  private refused: RPCError | undefined;

  constructor(private readonly host: SupervisorHost) {}

  /** Why the command connection was refused (TLS verification, credentials), until it is ready again. */
  get refusal(): RPCError | undefined {
    return this.refused;
  }

  /** Reports a background failure on `'error'`, unless it is the outage of the command connection, already reported. */
  report(err: unknown): void {
    const { inbound } = this.host;
    if (inbound.closed) return;
    const error = redisError('background task', err);
    if (error instanceof RedisStreamsConnectionError && this.commandDown) return;
    inbound.events.emit('error', error);
  }

  /**
   * Watches one connection. A connection that closes is only "lost": if
   * ioredis gets it back at the first attempt (CLIENT KILL, an idle timeout on
   * a proxy) that is a `'reconnect'` alone. The first failure after that (a
   * refused reconnect, a socket error) is the outage, reported once; ioredis
   * then reports every failed attempt, and those are dropped.
   */
  watch(conn: RedisConnection, role: ConnectionRole): void {
    const { host } = this;
    const { events } = host.inbound;
    let wasReady = false;
    let state: 'up' | 'lost' | 'down' = 'up';
    conn.on('ready', () => {
      const back = wasReady && state !== 'up';
      debugLog.connection('%s %s connection ready%s', host.id, role, back ? ' again' : '');
      wasReady = true;
      state = 'up';
      if (role === 'command') {
        this.commandDown = false;
        this.refused = undefined;
      }
      if (!back || host.inbound.closed) return;
      this.reconnects++;
      events.emit('reconnect', { connection: role, reconnects: this.reconnects });
      host.logger?.info?.('redis-streams-rpc reconnected', { connection: role, reconnects: this.reconnects, stream: host.stream });
      if (role === 'command') host.onCommandBack();
    });
    conn.on('error', (err: Error) => {
      keepListening(conn);
      if (role === 'command' && isRefusedConnection(err)) {
        this.refused = connectionError('command connection', err);
        host.onRefused();
      }
      if (state === 'down' || host.inbound.closed) return;
      debugLog.connection('%s %s connection down: %s', host.id, role, err.message);
      state = 'down';
      if (role === 'command') this.commandDown = true;
      events.emit('error', connectionError(`${role} connection`, err));
    });
    conn.on('close', () => {
      debugLog.connection('%s %s connection closed', host.id, role);
      if (wasReady && state === 'up') state = 'lost';
    });
  }
}
