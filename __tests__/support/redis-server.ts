// Starts real redis-server processes on free loopback ports and faults them (SIGKILL, restart,
// CLIENT KILL, CLIENT PAUSE) for integration tests. Every server is registered so the root hook can
// stop whatever a failing test left behind.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { Redis, type RedisOptions } from 'ioredis';
import type { TestCertificates } from './tls.js';

const READY_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 5_000;
const PORT_ATTEMPTS = 5;

/** Options for {@link RedisServer.start}. */
export interface RedisServerOptions {
  /** `--appendonly yes --appendfsync always`, so acknowledged writes survive a SIGKILL. */
  appendOnly?: boolean;
  /** Fixed port; by default a free loopback port is picked. */
  port?: number;
  /** Data directory; by default a fresh one under `os.tmpdir()`, removed by `stop()`. */
  dir?: string;
  /** Extra `redis-server` arguments, e.g. `['--maxmemory', '10mb']`. */
  extraArgs?: string[];
  /**
   * TLS only: the plain port is off (`--port 0`), the server listens with these certificates on
   * `port` (`--tls-port`) and does not ask clients for certificates. `url` is then `rediss://`.
   */
  tls?: TestCertificates;
}

/**
 * Path of the `redis-server` binary: `REDIS_SERVER_BIN` (set by scripts/with-redis.mjs), then PATH.
 * @throws Error when no executable is found.
 */
export async function findRedisServerBinary(): Promise<string> {
  const fromEnv = process.env.REDIS_SERVER_BIN;
  const candidates = fromEnv
    ? [fromEnv]
    : (process.env.PATH ?? '')
        .split(path.delimiter)
        .filter(Boolean)
        .map((dir) => path.join(dir, 'redis-server'));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // try the next one
    }
  }
  throw new Error(
    fromEnv
      ? `REDIS_SERVER_BIN=${fromEnv} is not an executable file`
      : 'redis-server not found on PATH. Install it (Debian/Ubuntu: sudo apt-get install redis-server) ' +
        'or set REDIS_SERVER_BIN to its path.',
  );
}

const running = new Set<RedisServer>();

/** Stops every server started by this module that is still registered; used by the root hook. */
export async function stopAllRedisServers(): Promise<void> {
  await Promise.allSettled([...running].map((server) => server.stop()));
}

// If mocha dies without running the root afterAll, do not leave orphans behind.
process.once('exit', () => {
  for (const server of running) server.killSync();
});

/** A `redis-server` child process bound to 127.0.0.1. */
export class RedisServer {
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  /** TLS material when started with `tls`. */
  readonly tls: TestCertificates | undefined;
  private proc: ChildProcess;
  private stderr = '';
  private spawnFailed = false;
  private readonly ownsDir: boolean;

  private constructor(
    private readonly bin: string,
    private readonly args: string[],
    port: number,
    dir: string,
    ownsDir: boolean,
    proc: ChildProcess,
    tlsFiles: TestCertificates | undefined,
  ) {
    this.port = port;
    this.url = `${tlsFiles ? 'rediss' : 'redis'}://127.0.0.1:${port}`;
    this.dir = dir;
    this.tls = tlsFiles;
    this.ownsDir = ownsDir;
    this.proc = proc;
  }

  /** Pid of the current process (changes on restart). */
  get pid(): number {
    if (this.proc.pid === undefined) throw new Error('redis-server has no pid (spawn failed)');
    return this.proc.pid;
  }

  /** ioredis options a client needs besides `url`: the CA, for a TLS server. */
  get clientOptions(): RedisOptions {
    return this.tls ? { tls: { ca: this.tls.ca } } : {};
  }

  /** Whether the current process is still running. */
  get alive(): boolean {
    return !this.spawnFailed && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /**
   * Starts a server and waits until it answers PING.
   * @throws Error with the server's log tail if it exits or stays silent for 10 s.
   */
  static async start(opts: RedisServerOptions = {}): Promise<RedisServer> {
    const bin = await findRedisServerBinary();
    const ownsDir = opts.dir === undefined;
    const dir = opts.dir ?? mkdtempSync(path.join(os.tmpdir(), 'redis-streams-rpc-test-'));
    const args = [
      '--bind', '127.0.0.1',
      '--daemonize', 'no',
      '--dir', dir,
      '--logfile', path.join(dir, 'redis.log'),
      ...(opts.appendOnly
        ? ['--appendonly', 'yes', '--appendfsync', 'always']
        : ['--appendonly', 'no', '--save', '']),
      ...(opts.tls
        ? ['--tls-cert-file', opts.tls.certFile, '--tls-key-file', opts.tls.keyFile, '--tls-ca-cert-file', opts.tls.caFile, '--tls-auth-clients', 'no']
        : []),
      ...(opts.extraArgs ?? []),
    ];
    for (let attempt = 1; ; attempt++) {
      // A probed port can be taken by someone else before redis binds it; retry unless it was fixed.
      const port = opts.port ?? (await freePort());
      const server = new RedisServer(bin, args, port, dir, ownsDir, spawnRedis(bin, port, args, opts.tls !== undefined), opts.tls);
      server.watchProcess();
      running.add(server);
      try {
        await server.waitReady();
        return server;
      } catch (err) {
        running.delete(server);
        await server.kill().catch(() => undefined);
        const retry = opts.port === undefined && attempt < PORT_ATTEMPTS && isAddrInUse(err);
        if (!retry) {
          if (ownsDir) rmSync(dir, { recursive: true, force: true });
          if (opts.tls && err instanceof Error) {
            throw new Error(
              `${err.message}\nA TLS-only redis-server did not start: this redis-server may be built without TLS. ` +
                "Debian/Ubuntu's redis-server (7.0) has it (sudo apt-get install redis-server); a source build needs BUILD_TLS=yes.",
              { cause: err },
            );
          }
          throw err;
        }
      }
    }
  }

  /** Sends `signal` (default SIGKILL) and resolves once the process has exited. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.alive) return;
    const exited = onExit(this.proc);
    this.proc.kill(signal);
    await exited;
  }

  /**
   * Stops the server with SIGTERM (SIGKILL after 5 s) and unregisters it. The data directory is
   * removed if this helper created it, unless `keepDir` is set.
   */
  async stop(opts: { keepDir?: boolean } = {}): Promise<void> {
    running.delete(this);
    if (this.alive) {
      const force = setTimeout(() => this.proc.kill('SIGKILL'), STOP_GRACE_MS);
      try {
        await this.kill('SIGTERM');
      } finally {
        clearTimeout(force);
      }
    }
    if (this.ownsDir && !opts.keepDir) rmSync(this.dir, { recursive: true, force: true });
  }

  /**
   * Crash and come back: SIGKILL, wait `downMs` (default 0), then start again on the same port and
   * directory (an AOF survives) and wait for PING.
   */
  async restart(opts: { downMs?: number } = {}): Promise<void> {
    await this.kill('SIGKILL');
    if (opts.downMs) await new Promise((resolve) => setTimeout(resolve, opts.downMs));
    this.stderr = '';
    this.spawnFailed = false;
    this.proc = spawnRedis(this.bin, this.port, this.args, this.tls !== undefined);
    this.watchProcess();
    running.add(this);
    await this.waitReady();
  }

  /** Runs one command on a short-lived client and returns the raw reply. */
  async command(...args: string[]): Promise<unknown> {
    const [name, ...rest] = args;
    if (name === undefined) throw new Error('RedisServer.command() needs a command name');
    return this.withClient((client) => client.call(name, ...rest));
  }

  /**
   * Disconnects every client except the one issuing the command (normal and pub/sub clients, so
   * blocked XREADGROUP connections and subscribers die too).
   * @returns How many connections were killed.
   */
  async clientKillAll(): Promise<number> {
    return this.withClient(async (client) => {
      let killed = 0;
      for (const type of ['normal', 'pubsub']) {
        killed += Number(await client.call('CLIENT', 'KILL', 'TYPE', type, 'SKIPME', 'yes'));
      }
      return killed;
    });
  }

  /** `CLIENT PAUSE ms ALL`: every client's commands stall for `ms` milliseconds. */
  async pause(ms: number): Promise<void> {
    // QUIT would itself be held by the pause, so this client is disconnected instead.
    await this.withClient((client) => client.call('CLIENT', 'PAUSE', String(ms), 'ALL'), false);
  }

  /** SIGKILL without waiting; only for the process 'exit' handler. */
  killSync(): void {
    if (this.alive) this.proc.kill('SIGKILL');
    if (this.ownsDir) rmSync(this.dir, { recursive: true, force: true });
  }

  /** Last lines of stderr and the log file, for error messages. */
  logTail(lines = 20): string {
    let text = this.stderr;
    try {
      text += readFileSync(path.join(this.dir, 'redis.log'), 'utf8');
    } catch {
      // it can die before opening its log file
    }
    return text.trim().split('\n').slice(-lines).join('\n');
  }

  private watchProcess(): void {
    this.proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    // Without a listener a spawn failure would be an uncaught exception; 'exit' may never follow.
    this.proc.once('error', (err) => {
      this.stderr += `spawn failed: ${err.message}\n`;
      this.spawnFailed = true;
    });
  }

  private async withClient<T>(fn: (client: Redis) => Promise<T>, quit = true): Promise<T> {
    const client = new Redis(this.url, {
      ...this.clientOptions,
      lazyConnect: true,
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
    });
    // connect() and the command reject on their own; the event would only be logged as unhandled.
    client.on('error', () => undefined);
    try {
      await client.connect();
      return await fn(client);
    } finally {
      if (quit && client.status === 'ready') await client.quit().catch(() => client.disconnect());
      else client.disconnect();
    }
  }

  private async waitReady(): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (!this.alive) {
        throw new Error(
          `redis-server (port ${this.port}) exited during startup ` +
            `(code ${this.proc.exitCode}, signal ${this.proc.signalCode}):\n${this.logTail()}`,
        );
      }
      if (await ping(this.port, this.tls?.ca)) return;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error(
      `redis-server (port ${this.port}) did not answer PING within ${READY_TIMEOUT_MS} ms:\n${this.logTail()}`,
    );
  }
}

function spawnRedis(bin: string, port: number, args: string[], tlsOnly: boolean): ChildProcess {
  const ports = tlsOnly ? ['--port', '0', '--tls-port', String(port)] : ['--port', String(port)];
  return spawn(bin, [...ports, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    shell: false,
  });
}

function onExit(proc: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) resolve();
    else proc.once('exit', () => resolve());
  });
}

function isAddrInUse(err: unknown): boolean {
  return err instanceof Error && /address already in use/i.test(err.message);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** One PING over a raw socket (TLS when given the CA); true only on +PONG (a loading server answers -LOADING). */
function ping(port: number, ca?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = ca === undefined ? net.connect({ host: '127.0.0.1', port }) : tls.connect({ host: '127.0.0.1', port, ca });
    let buf = '';
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1_000, () => done(false));
    sock.once('error', () => done(false));
    sock.once(ca === undefined ? 'connect' : 'secureConnect', () => sock.write('PING\r\n'));
    sock.on('data', (chunk: Buffer) => {
      buf += chunk.toString('latin1');
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
    });
  });
}
