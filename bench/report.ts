/**
 * Medians, library/raw ratios, the printed table and bench/results.json.
 */
import { rename, writeFile } from 'node:fs/promises';
import type { CaseSpec, Impl, Metrics, RepResult } from './cases.js';

export interface ImplResult {
  readonly reps: RepResult[];
  readonly okReps: number;
  /** Median of each metric over the repetitions that succeeded. */
  readonly median: Metrics;
}

export interface CaseResult {
  readonly id: string;
  readonly title: string;
  readonly params: CaseSpec;
  readonly results: Partial<Record<Impl, ImplResult>>;
}

export interface ComparisonRow {
  readonly case: string;
  readonly metric: string;
  readonly library: number | null;
  readonly raw: number | null;
  /** library / raw, for every metric (latency, throughput, memory, commands alike). */
  readonly ratio: number | null;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  const hi = sorted[mid] ?? Number.NaN;
  return sorted.length % 2 === 1 ? hi : ((sorted[mid - 1] ?? hi) + hi) / 2;
}

export function summarize(reps: RepResult[]): ImplResult {
  const ok = reps.filter((r) => r.ok);
  const keys = new Set(ok.flatMap((r) => Object.keys(r.metrics)));
  const med: Metrics = {};
  for (const key of keys) {
    med[key] = median(ok.map((r) => r.metrics[key]).filter((v): v is number => v !== undefined));
  }
  return { reps, okReps: ok.length, median: med };
}

/** Performance first, then Redis cost, then memory by process. */
function metricRank(metric: string): number {
  const order = ['callsPerSec', 'idealCallsPerSec', 'ofIdeal', 'deliveriesPerSec', 'p50Us', 'p99Us', 'cmdsPerCall', 'redisCpuUsPerCall', 'cpuUsPerCall', 'errors'];
  const index = order.indexOf(metric);
  if (index >= 0) return index;
  if (metric.startsWith('cmdsPerCall.')) return order.indexOf('cmdsPerCall') + 0.5;
  if (metric.startsWith('share.')) return order.indexOf('ofIdeal') + 0.5;
  if (metric.startsWith('cpuUsPerCall.')) return order.length - 0.5;
  if (metric.startsWith('rssPeakMB.')) return order.length;
  return order.length + 1;
}

function orderedMetrics(results: CaseResult['results']): string[] {
  const keys = new Set([...Object.keys(results.lib?.median ?? {}), ...Object.keys(results.raw?.median ?? {})]);
  return [...keys].sort((a, b) => metricRank(a) - metricRank(b) || a.localeCompare(b));
}

function finiteOrNull(value: number | undefined): number | null {
  return value !== undefined && Number.isFinite(value) ? value : null;
}

export function compare(cases: readonly CaseResult[]): ComparisonRow[] {
  return cases.flatMap((c) =>
    orderedMetrics(c.results).map((metric) => {
      const library = finiteOrNull(c.results.lib?.median[metric]);
      const raw = finiteOrNull(c.results.raw?.median[metric]);
      const ratio = library !== null && raw !== null && raw !== 0 ? library / raw : null;
      return { case: `${c.id}: ${c.title}`, metric, library, raw, ratio };
    }),
  );
}

const LABELS: Record<string, string> = {
  callsPerSec: 'calls/s',
  deliveriesPerSec: 'deliveries/s',
  p50Us: 'p50 latency µs',
  p99Us: 'p99 latency µs',
  cmdsPerCall: 'Redis commands per call',
  redisCpuUsPerCall: 'CPU µs per call, redis-server',
  cpuUsPerCall: 'CPU µs per call, all node processes',
  errors: 'failed calls',
  idealCallsPerSec: 'ideal calls/s (in flight / handler time)',
  ofIdeal: 'fraction of ideal',
};

function label(metric: string): string {
  const known = LABELS[metric];
  if (known !== undefined) return known;
  const [kind, process] = metric.split('.');
  if (kind === 'cpuUsPerCall') return `CPU µs per call ${process ?? ''}`;
  if (kind === 'cmdsPerCall') return `  ${(process ?? '').toUpperCase()} per call`;
  if (kind === 'share') return `  share of calls handled, ${process ?? ''}`;
  return kind === 'rssPeakMB' ? `peak RSS MB (sampled) ${process ?? ''}` : `maxRSS MB ${process ?? ''}`;
}

function formatNumber(value: number | null): string {
  if (value === null) return '-';
  if (Math.abs(value) >= 100) return Math.round(value).toLocaleString('en-US');
  return value.toFixed(Math.abs(value) >= 10 ? 1 : 2);
}

/** Plain-text table: case, metric, library, raw, ratio. */
export function formatTable(rows: readonly ComparisonRow[]): string {
  const header = ['case', 'metric', 'library', 'raw', 'lib/raw'];
  const body = rows.map((r) => [r.case, label(r.metric), formatNumber(r.library), formatNumber(r.raw), r.ratio === null ? '-' : `${r.ratio.toFixed(2)}x`]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((line) => (line[i] ?? '').length)));
  const render = (cells: string[]): string => cells.map((cell, i) => (i >= 2 ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0))).join('  ');
  const lines: string[] = [render(header), widths.map((w) => '-'.repeat(w)).join('  ')];
  let previous = '';
  for (const cells of body) {
    const caseName = cells[0] ?? '';
    lines.push(render([caseName === previous ? '' : caseName, ...cells.slice(1)]));
    previous = caseName;
  }
  return lines.join('\n');
}

/** Writes through a temporary file so an interrupted run never leaves half a JSON. */
export async function writeJson(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.tmp`;
  await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`);
  await rename(tmp, path);
}
