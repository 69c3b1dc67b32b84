/**
 * Parent side of the process protocol: fork a role file under tsx, wait for
 * its IPC messages by type, and kill it if a case overruns.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { isChildMessage, type ChildMessage, type ChildMessageType, type ParentMessage, type RoleConfig } from './protocol.js';

const STDERR_TAIL_CHARS = 4000;

type MessageOf<T extends ChildMessageType> = Extract<ChildMessage, { type: T }>;

interface Waiter {
  readonly type: ChildMessageType;
  resolve(message: ChildMessage): void;
  reject(err: Error): void;
}

/** Raised when a child fails, exits early, or reports `'failed'`. */
export class ChildFailedError extends Error {
  override readonly name = 'ChildFailedError';
}

/** Absolute path of a file in bench/. */
export function benchFile(name: string): string {
  return fileURLToPath(new URL(`./${name}`, import.meta.url));
}

/** tsconfig tsx uses in bench processes: no `paths`, so the library comes from dist. */
const DIST_TSCONFIG = benchFile('tsconfig.dist.json');

/** One forked role process. */
export class ChildHandle {
  private readonly child: ChildProcess;
  private readonly inbox: ChildMessage[] = [];
  private readonly waiters: Waiter[] = [];
  private failure: ChildFailedError | undefined;
  private stderrTail = '';
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;

  constructor(
    readonly label: string,
    file: string,
    config: RoleConfig,
    verbose: boolean,
  ) {
    this.child = fork(benchFile(file), [JSON.stringify(config)], {
      // BENCH_CHILD_NODE_ARGS: extra node flags for every child, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`
      // (Node refuses --cpu-prof in NODE_OPTIONS).
      execArgv: ['--import', 'tsx', ...(process.env['BENCH_CHILD_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '')],
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
      // The library side runs the built package: see bench/tsconfig.dist.json.
      env: { ...process.env, TSX_TSCONFIG_PATH: DIST_TSCONFIG },
    });
    this.child.stderr?.setEncoding('utf8');
    this.child.stderr?.on('data', (chunk: string) => {
      if (verbose) process.stderr.write(`[${label}] ${chunk}`);
      this.stderrTail = (this.stderrTail + chunk).slice(-STDERR_TAIL_CHARS);
    });
    this.child.on('message', (message: unknown) => this.receive(message));
    this.exited = new Promise((resolve) => {
      // 'close' rather than 'exit': it comes after the last IPC message and stderr chunk.
      this.child.on('close', (code, signal) => {
        this.fail(`${label} exited (code ${String(code)}, signal ${String(signal)})`);
        resolve(code);
      });
    });
    this.child.on('error', (err) => this.fail(`${label}: ${err.message}`));
  }

  private receive(message: unknown): void {
    if (!isChildMessage(message)) return;
    if (message.type === 'failed') {
      this.fail(`${this.label} failed: ${message.message}`);
      return;
    }
    const index = this.waiters.findIndex((w) => w.type === message.type);
    const waiter = index >= 0 ? this.waiters.splice(index, 1)[0] : undefined;
    if (waiter === undefined) this.inbox.push(message);
    else waiter.resolve(message);
  }

  private fail(reason: string): void {
    if (this.failure !== undefined) return;
    const tail = this.stderrTail.trim();
    this.failure = new ChildFailedError(tail === '' ? reason : `${reason}\n--- stderr of ${this.label} ---\n${tail}`);
    for (const waiter of this.waiters.splice(0)) waiter.reject(this.failure);
  }

  /** The first message of `type` (buffered or future); rejects if the child fails first. */
  next<T extends ChildMessageType>(type: T): Promise<MessageOf<T>> {
    const index = this.inbox.findIndex((m) => m.type === type);
    const buffered = index >= 0 ? this.inbox.splice(index, 1)[0] : undefined;
    if (buffered !== undefined) return Promise.resolve(buffered as MessageOf<T>);
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiters.push({ type, resolve: (m) => resolve(m as MessageOf<T>), reject });
    });
  }

  send(message: ParentMessage): void {
    if (this.child.connected) this.child.send(message);
  }

  /** SIGKILL if still running; used by the watchdog and after failures. */
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

/** Waits for one message of `type` from every child. */
export function allNext<T extends ChildMessageType>(children: readonly ChildHandle[], type: T): Promise<MessageOf<T>[]> {
  return Promise.all(children.map((c) => c.next(type)));
}
