/**
 * The `redis-streams-rpc` command line, on commander. Every command takes
 * `--url` (or `REDIS_URL`), `--stream` and `--json`; with `--json` it prints
 * the inspector's plain data (tail: one JSON object per line).
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { RPCError, StreamInspector, type SigningOptions, type StreamInspectorOptions } from '../index.js';
import { startDashboard } from './dashboard.js';
import type { Output } from './output.js';
import { renderDeadLetter, renderDeadLetters, renderPending, renderRedrive, renderStatus, renderTailEvent, renderTrim } from './render.js';

/** Options every command takes. */
interface CommonOptions {
  url: string;
  stream: string;
  deadLetterStream?: string;
  claimIdleMs: number;
  json: boolean;
  signing?: string;
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer.');
  return n;
}

function withCommon(cmd: Command): Command {
  return cmd
    .addOption(new Option('--url <url>', 'Redis URL').env('REDIS_URL').default('redis://localhost:6379'))
    .option('--stream <name>', 'the service\'s request stream', 'rpc-stream')
    .option('--dead-letter-stream <key>', 'dead-letter stream, if the workers set deadLetterStream (default <stream>:dead)')
    .option('--claim-idle-ms <ms>', 'the workers\' claimIdleMs: a consumer idle longer looks dead', positiveInt, 10_000)
    .option('--json', 'print JSON (tail: one object per line)', false);
}

function inspectorOptions(o: CommonOptions): StreamInspectorOptions {
  const options: StreamInspectorOptions = { url: o.url, stream: o.stream, claimIdleMs: o.claimIdleMs };
  if (o.deadLetterStream !== undefined) options.deadLetterStream = o.deadLetterStream;
  if (o.signing !== undefined) options.signing = JSON.parse(readFileSync(o.signing, 'utf8')) as SigningOptions;
  return options;
}

/** Runs `task` with an inspector for the command's options, then closes it. */
async function withInspector<T>(o: CommonOptions, task: (inspector: StreamInspector) => Promise<T>): Promise<T> {
  const inspector = new StreamInspector(inspectorOptions(o));
  try {
    return await task(inspector);
  } finally {
    await inspector.close();
  }
}

function print(out: Output, o: CommonOptions, data: unknown, human: () => string): void {
  out.out(o.json ? JSON.stringify(data, null, 2) : human());
}

function selection(ids: string[], all: boolean, verb: string): readonly string[] | 'all' {
  if (all && ids.length > 0) throw new InvalidArgumentError(`give dead-letter ids or --all, not both`);
  if (!all && ids.length === 0) throw new InvalidArgumentError(`give the ids of the dead letters to ${verb}, or --all`);
  return all ? 'all' : ids;
}

function deadLetterCommands(out: Output): Command {
  const dl = new Command('dead-letters').description('list, show, redrive or purge dead-lettered requests');
  withCommon(dl.command('list').description('the oldest dead letters'))
    .option('--count <n>', 'how many', positiveInt, 100)
    .action(async (o: CommonOptions & { count: number }) => {
      const [letters, now] = await withInspector(o, async (i) => [await i.deadLetters({ count: o.count }), Date.now()] as const);
      print(out, o, letters, () => renderDeadLetters(out, letters, now));
    });
  withCommon(dl.command('show').description('one dead letter with its messages').argument('<id>', 'dead-letter id'))
    .action(async (id: string, o: CommonOptions) => {
      const letter = await withInspector(o, (i) => i.deadLetter(id));
      print(out, o, letter, () => renderDeadLetter(out, letter));
    });
  withCommon(dl.command('redrive').description('put dead letters back so a worker serves them (a waiting caller gets the answer)').argument('[ids...]', 'dead-letter ids'))
    .option('--all', 'every dead letter present now', false)
    .option('--signing <file>', 'JSON file with the workers\' signing option ({ "keys": {...}, "keyId": ... })')
    .action(async (ids: string[], o: CommonOptions & { all: boolean }) => {
      const result = await withInspector(o, (i) => i.redriveDeadLetters(selection(ids, o.all, 'redrive')));
      print(out, o, result, () => renderRedrive(out, result));
    });
  withCommon(dl.command('purge').description('delete dead letters').argument('[ids...]', 'dead-letter ids'))
    .option('--all', 'every dead letter (deletes the dead-letter stream)', false)
    .action(async (ids: string[], o: CommonOptions & { all: boolean }) => {
      const removed = await withInspector(o, (i) => i.purgeDeadLetters(selection(ids, o.all, 'purge')));
      print(out, o, { removed }, () => `Deleted ${removed} dead letter(s).`);
    });
  return dl;
}

async function tail(out: Output, o: CommonOptions & { method?: string[] }): Promise<void> {
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await withInspector(o, async (inspector) => {
      if (!o.json) out.err(out.style.dim(`Following ${inspector.stream}, its inboxes and dead letters (Ctrl-C to stop)...`));
      const options = o.method === undefined ? { signal: stop.signal } : { signal: stop.signal, methods: o.method };
      for await (const event of inspector.tail(options)) out.out(o.json ? JSON.stringify(event) : renderTailEvent(out, event));
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** Serves the dashboard until SIGINT/SIGTERM. */
async function dashboard(out: Output, o: CommonOptions & { port: number }): Promise<void> {
  // A long-lived page rides out a Redis restart: reconnect for ever (with backoff), unlike one-shot commands.
  const inspector = new StreamInspector({ ...inspectorOptions(o), redisOptions: { retryStrategy: (times) => Math.min(100 * times, 2000) } });
  const server = await startDashboard(inspector, { port: o.port, host: '127.0.0.1' }).catch(async (err: unknown) => {
    await inspector.close();
    throw err;
  });
  out.out(o.json ? JSON.stringify({ url: server.url, stream: inspector.stream }) : `Dashboard of ${inspector.stream}: ${server.url} (Ctrl-C to stop)`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await server.close();
  await inspector.close();
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('expected a port number (0 picks a free one).');
  return n;
}

/** Builds the program; `out` receives everything it prints. */
export function buildProgram(out: Output, version: string): Command {
  const program = new Command('redis-streams-rpc')
    .description('Inspect and operate a redis-streams-rpc service: status, pending requests, dead letters, live traffic, trimming.')
    .version(version)
    .showHelpAfterError()
    .configureOutput({ writeOut: (s) => out.out(s.trimEnd()), writeErr: (s) => out.err(s.trimEnd()) });
  withCommon(program.command('status').description('streams, groups, consumers (alive?), lag, inboxes, dead letters')).action(async (o: CommonOptions) => {
    const status = await withInspector(o, (i) => i.inspect());
    print(out, o, status, () => renderStatus(out, status));
  });
  withCommon(program.command('pending').description('requests delivered to a worker and not answered yet'))
    .option('--group <name>', 'only this group')
    .option('--consumer <name>', 'only requests held by this consumer')
    .option('--count <n>', 'most entries per group', positiveInt, 100)
    .action(async (o: CommonOptions & { group?: string; consumer?: string; count: number }) => {
      const query = { count: o.count, ...(o.group === undefined ? {} : { group: o.group }), ...(o.consumer === undefined ? {} : { consumer: o.consumer }) };
      const pending = await withInspector(o, (i) => i.pending(query));
      print(out, o, pending, () => renderPending(out, pending));
    });
  program.addCommand(deadLetterCommands(out));
  withCommon(program.command('tail').description('live requests and answers: method, ids, sizes, durations (reads from now on, creates nothing)'))
    .option('--method <name...>', 'only these methods (and those below: "math" matches "math.add")')
    .action((o: CommonOptions & { method?: string[] }) => tail(out, o));
  withCommon(program.command('dashboard').description('a live web page on 127.0.0.1: calls/s, latency, in flight, consumers, pending, lag, dead letters with redrive'))
    .option('--port <n>', 'port on 127.0.0.1 (0 picks a free one)', port, 8080)
    .option('--signing <file>', 'JSON file with the workers\' signing option, to redrive signed dead letters')
    .action((o: CommonOptions & { port: number }) => dashboard(out, o));
  withCommon(program.command('trim').description('remove entries no consumer group needs any more (never a pending one)')).action(async (o: CommonOptions) => {
    const result = await withInspector(o, (i) => i.trim());
    print(out, o, result, () => renderTrim(result));
  });
  return program;
}

/** Prints a failure: the library's typed errors by code, others by message. */
export function reportFailure(out: Output, err: unknown, json: boolean): void {
  const error = err instanceof Error ? err : new Error(String(err));
  const code = err instanceof RPCError ? err.code : undefined;
  if (json) out.err(JSON.stringify({ error: { name: error.name, code: code ?? null, message: error.message } }));
  else out.err(`${out.style.red('error')}: ${error.message}${code === undefined ? '' : out.style.dim(` (${code})`)}`);
}
