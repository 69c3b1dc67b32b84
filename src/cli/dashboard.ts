/**
 * `redis-streams-rpc dashboard`: a small web page on loopback (node:http, no
 * framework) with live calls/s, latency, in-flight calls, consumers and their
 * load, pending, lag and dead letters with a redrive button. The numbers come
 * from one {@link StreamInspector}: `inspect()` every second and a `tail()`
 * of the traffic, so the dashboard, like the rest of the CLI, creates nothing
 * by looking.
 *
 * Only requests from the page itself are served: the Host header must name
 * the loopback address the server listens on (no DNS rebinding), and a redrive
 * must carry the random token embedded in the page (no cross-site request can
 * read it).
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RPCError, type StreamInspector, type StreamStatus, type TailEvent } from '../index.js';
import { dashboardPage } from './dashboard-page.js';

/** Window of the rates and latencies, in milliseconds. */
const WINDOW_MS = 10_000;
/** Calls followed at once for the in-flight count (older ones are forgotten). */
const MAX_IN_FLIGHT = 100_000;
/** Largest request body accepted (a redrive of a few thousand ids). */
const MAX_BODY = 256 * 1024;

/** Live traffic figures from the tail. */
export interface TrafficFigures {
  /** Requests per second over the last 10 s. */
  readonly callsPerSec: number;
  /** Answers per second over the last 10 s. */
  readonly answersPerSec: number;
  /** Error answers per second over the last 10 s. */
  readonly errorsPerSec: number;
  /** Median and 95th percentile time from request to answer over the last 10 s, in milliseconds. */
  readonly latencyMs: { readonly p50: number | null; readonly p95: number | null };
  /** Calls seen and not answered yet (their deadline not passed). */
  readonly inFlight: number;
  /** Answers per answering endpoint over the last 10 s. */
  readonly answersBy: Readonly<Record<string, number>>;
}

/** Counts the tailed traffic. */
export class Traffic {
  private requests: number[] = [];
  private answers: { time: number; durationMs: number | null; error: boolean; from: string }[] = [];
  private readonly open = new Map<string, number>();

  /** Takes one tailed event. */
  add(event: TailEvent, now = Date.now()): void {
    if (event.type === 'request') {
      this.requests.push(now);
      if (!event.request.notification) {
        this.open.set(event.request.callId, event.request.deadline);
        if (this.open.size > MAX_IN_FLIGHT) this.open.delete(this.open.keys().next().value as string);
      }
    } else if (event.type === 'result' || event.type === 'error') {
      this.answers.push({ time: now, durationMs: event.durationMs, error: event.type === 'error', from: event.from });
      this.open.delete(event.callId);
    }
  }

  /** The figures now. */
  figures(now = Date.now()): TrafficFigures {
    const since = now - WINDOW_MS;
    this.requests = this.requests.filter((t) => t >= since);
    this.answers = this.answers.filter((a) => a.time >= since);
    for (const [id, deadline] of this.open) if (deadline < now) this.open.delete(id);
    const durations = this.answers.map((a) => a.durationMs).filter((d): d is number => d !== null).sort((a, b) => a - b);
    const pick = (q: number): number | null => (durations.length === 0 ? null : (durations[Math.min(durations.length - 1, Math.floor(q * durations.length))] ?? null));
    const answersBy: Record<string, number> = {};
    for (const a of this.answers) answersBy[a.from] = (answersBy[a.from] ?? 0) + 1;
    const perSec = (n: number): number => Math.round((n / (WINDOW_MS / 1000)) * 10) / 10;
    return {
      callsPerSec: perSec(this.requests.length),
      answersPerSec: perSec(this.answers.length),
      errorsPerSec: perSec(this.answers.filter((a) => a.error).length),
      latencyMs: { p50: pick(0.5), p95: pick(0.95) },
      inFlight: this.open.size,
      answersBy,
    };
  }
}

/** A running dashboard. */
export interface Dashboard {
  /** Where it listens, e.g. `http://127.0.0.1:8080/`. */
  readonly url: string;
  /** Stops the server and the tail. */
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, data: unknown): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(data));
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
      if (body.length > MAX_BODY) reject(new Error('request body too large'));
    });
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

function errorJson(err: unknown): { error: { name: string; code: string | null; message: string } } {
  const e = err instanceof Error ? err : new Error(String(err));
  return { error: { name: e.name, code: err instanceof RPCError ? err.code : null, message: e.message } };
}

/** Options of {@link startDashboard}. */
export interface DashboardOptions {
  /** Port to listen on; 0 picks a free one. */
  readonly port: number;
  /** Loopback address to listen on. */
  readonly host: string;
}

/**
 * Serves the dashboard of `inspector`'s stream until `close()`.
 *
 * @param inspector - Reads the stream; closed by the caller after `close()`.
 */
export async function startDashboard(inspector: StreamInspector, options: DashboardOptions): Promise<Dashboard> {
  const token = randomBytes(18).toString('base64url');
  const traffic = new Traffic();
  const stop = new AbortController();
  let tailError: string | null = null;
  const tailing = (async () => {
    try {
      for await (const event of inspector.tail({ signal: stop.signal })) traffic.add(event);
    } catch (err) {
      tailError = err instanceof Error ? err.message : String(err);
    }
  })();

  let hostHeader = '';
  const snapshot = async (): Promise<unknown> => {
    let status: StreamStatus | null = null;
    let statusError: ReturnType<typeof errorJson>['error'] | null = null;
    try {
      status = await inspector.inspect();
    } catch (err) {
      statusError = errorJson(err).error;
    }
    const deadLetters = await inspector.deadLetters({ count: 50 }).catch(() => []);
    return { stream: inspector.stream, status, statusError, deadLetters, traffic: traffic.figures(), tailError };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.headers.host !== hostHeader && req.headers.host !== hostHeader.replace(options.host, 'localhost')) {
      sendJson(res, 421, { error: { name: 'Misdirected', code: null, message: 'unexpected Host header' } });
      return;
    }
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/') return send(res, 200, 'text/html; charset=utf-8', dashboardPage(inspector.stream, token));
    if (req.method === 'GET' && path === '/api/snapshot') return sendJson(res, 200, await snapshot());
    if (req.method === 'POST' && path === '/api/redrive') {
      if (req.headers['x-dashboard-token'] !== token || !String(req.headers['content-type']).startsWith('application/json')) {
        return sendJson(res, 403, { error: { name: 'Forbidden', code: null, message: 'missing or wrong dashboard token' } });
      }
      const body = JSON.parse(await readBody(req)) as { ids?: unknown };
      const ids = body.ids === 'all' ? 'all' : Array.isArray(body.ids) ? body.ids.map(String) : [];
      return sendJson(res, 200, await inspector.redriveDeadLetters(ids));
    }
    sendJson(res, 404, { error: { name: 'NotFound', code: null, message: `no ${req.method ?? ''} ${path ?? ''}` } });
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, err instanceof RPCError && err.code === 'ERR_RPC_INVALID_ARGUMENT' ? 400 : 500, errorJson(err));
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  hostHeader = `${options.host}:${port}`;
  return {
    url: `http://${hostHeader}/`,
    close: async () => {
      stop.abort();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await tailing;
    },
  };
}
