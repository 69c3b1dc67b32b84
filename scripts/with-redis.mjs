// Runs a command with REDIS_URL pointing at a throwaway redis-server on a free loopback port.
//
//   node scripts/with-redis.mjs [--own] <command> [args...]
//
// Without --own an existing REDIS_URL is respected. With --own (benchmarks, soak) a private server
// is always started, so results never depend on whatever else shares a developer's Redis.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { accessSync, constants as fsConstants, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const READY_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 2_000;
const log = (msg) => process.stderr.write(`[with-redis] ${msg}\n`);

function fail(msg) {
  log(msg);
  process.exit(1);
}

function findExecutable(name, extraDirs = []) {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), ...extraDirs];
  for (const dir of dirs.filter(Boolean)) {
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // not here; keep looking
    }
  }
  return undefined;
}

const findRedisServer = () =>
  findExecutable('redis-server', ['/usr/bin', '/usr/sbin', '/usr/local/bin']);

function installRedisServer() {
  const aptGet = findExecutable('apt-get', ['/usr/bin']);
  if (process.getuid?.() !== 0 || !aptGet) {
    fail(
      'redis-server not found. Install it (Debian/Ubuntu: `sudo apt-get install redis-server`), ' +
        'or point the tests at an existing server with REDIS_URL=redis://host:port.',
    );
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [['update'], ['install', '-y', 'redis-server']]) {
    log(`redis-server not found; running: apt-get ${args.join(' ')}`);
    // apt's own output goes to stderr so it cannot mix with the command's stdout.
    const res = spawnSync(aptGet, args, { env, stdio: ['ignore', 2, 2] });
    if (res.status !== 0) fail(`apt-get ${args.join(' ')} failed (exit ${res.status ?? res.signal})`);
  }
  return findRedisServer() ?? fail('apt-get installed redis-server but the binary is still missing');
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** One PING over a raw socket; resolves true only on +PONG (not -LOADING or a refused connection). */
function ping(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let buf = '';
    const done = (ok) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1_000, () => done(false));
    sock.once('error', () => done(false));
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.on('data', (chunk) => {
      buf += chunk.toString('latin1');
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
    });
  });
}

function logTail(dir, stderr) {
  let text = stderr;
  try {
    text += readFileSync(path.join(dir, 'redis.log'), 'utf8');
  } catch {
    // the server may die before it opens its log file
  }
  return text.trim().split('\n').slice(-15).join('\n');
}

/** Starts redis-server on `port`; resolves once it answers PING, rejects with its log tail if it dies. */
async function startRedis(bin, port, dir) {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--dir', dir, '--logfile', path.join(dir, 'redis.log'), '--daemonize', 'no'];
  const proc = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'], shell: false });
  let stderr = '';
  proc.stderr.on('data', (d) => (stderr += d));
  let exited = false;
  proc.once('exit', () => (exited = true));
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exited) {
      const tail = logTail(dir, stderr);
      const err = new Error(`redis-server exited during startup on port ${port}:\n${tail}`);
      err.addrInUse = /address already in use/i.test(tail);
      throw err;
    }
    if (await ping(port)) return proc;
    await new Promise((r) => setTimeout(r, 50));
  }
  proc.kill('SIGKILL');
  throw new Error(`redis-server did not answer PING on port ${port} within ${READY_TIMEOUT_MS} ms:\n${logTail(dir, stderr)}`);
}

function stopRedis(proc) {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => proc.kill('SIGKILL'), STOP_GRACE_MS);
    proc.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    proc.kill('SIGTERM');
  });
}

function exitCodeOf(code, signal) {
  if (code !== null) return code;
  return 128 + (os.constants.signals[signal] ?? 1);
}

/** Runs the command with stdio inherited; resolves with the exit code to use. */
function runCommand(argv, env, onSignal) {
  return new Promise((resolve) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: 'inherit', env, shell: false });
    const forward = (sig) => {
      onSignal?.(sig);
      if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    };
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    child.once('error', (err) => {
      log(`cannot run ${argv[0]}: ${err.message}`);
      resolve(127);
    });
    child.once('exit', (code, signal) => resolve(exitCodeOf(code, signal)));
  });
}

async function main() {
  const argv = process.argv.slice(2);
  const own = argv[0] === '--own';
  if (own) argv.shift();
  if (argv.length === 0) fail('usage: node scripts/with-redis.mjs [--own] <command> [args...]');

  if (process.env.REDIS_URL && !own) {
    process.exit(await runCommand(argv, process.env));
  }

  const bin = findRedisServer() ?? installRedisServer();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'with-redis-'));
  let proc;
  let port;
  // The kernel may hand the probed port to someone else before redis binds it; try a few.
  for (let attempt = 1; !proc; attempt++) {
    port = await freePort();
    try {
      proc = await startRedis(bin, port, dir);
    } catch (err) {
      if (!err.addrInUse || attempt >= 5) {
        rmSync(dir, { recursive: true, force: true });
        fail(err.message);
      }
    }
  }

  // Last resort if we exit without the orderly path below (e.g. an exception).
  process.once('exit', () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  const version = /v=(\S+)/.exec(execFileSync(bin, ['--version'], { encoding: 'utf8' }))?.[1] ?? '?';
  const url = `redis://127.0.0.1:${port}`;
  log(`redis-server ${version} on ${url}`);

  const env = { ...process.env, REDIS_URL: url, REDIS_SERVER_BIN: bin };
  let cleanup;
  const cleanupOnce = () => (cleanup ??= stopRedis(proc).then(() => rmSync(dir, { recursive: true, force: true })));
  const code = await runCommand(argv, env, () => void cleanupOnce());
  await cleanupOnce();
  process.exit(code);
}

await main();
