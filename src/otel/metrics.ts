/**
 * The instruments of the OpenTelemetry instrumentation: call and handler
 * durations and counts, recorded as calls settle, and the channels' counters
 * (`stats()`), observed at each collection.
 *
 * @module
 */
import type { Attributes, BatchObservableCallback, BatchObservableResult, Counter, Histogram, Meter, ObservableCounter, ObservableGauge } from '@opentelemetry/api';
import type { IoGauges } from '../io/io-interface.js';
import type { RPCChannelEvent } from '../channel/diagnostics.js';
import type { RPCStats } from '../channel/rpc-channel.js';
import { ATTR } from './attributes.js';

/** One side's recorded instruments. */
export interface SideInstruments {
  readonly duration: Histogram;
  readonly calls: Counter;
  readonly errors: Counter;
  readonly inFlight: InFlight;
}

/**
 * Calls in flight, counted here and observed at collection: an
 * UpDownCounter would hash its attributes twice per call (the SDK's largest
 * cost per recording).
 */
export class InFlight {
  private readonly counts = new Map<string, { attributes: Attributes; n: number }>();

  constructor(meter: Meter, name: string, description: string) {
    meter.createObservableUpDownCounter(name, { unit: '{call}', description }).addCallback((result) => {
      for (const { attributes, n } of this.counts.values()) result.observe(n, attributes);
    });
  }

  /** Adds `delta` to the count of one method on one stream. */
  add(delta: number, method: string, destination: string): void {
    const key = `${destination}\n${method}`;
    const entry = this.counts.get(key);
    if (entry !== undefined) entry.n += delta;
    else this.counts.set(key, { attributes: { [ATTR.rpcMethod]: method, [ATTR.destination]: destination }, n: delta });
  }
}

/** Observed counters: metric name, the `stats()` field, what it counts. */
const OBSERVED: readonly (readonly [name: string, field: keyof RPCStats, unit: string, description: string])[] = [
  ['redis_streams_rpc.messages.sent', 'sent', '{message}', 'Messages written (requests, answers, notifications, callbacks).'],
  ['redis_streams_rpc.messages.delivered', 'received', '{message}', 'Messages delivered to the channel by the transport.'],
  ['redis_streams_rpc.messages.acked', 'acked', '{message}', 'Requests settled: answered or acknowledged.'],
  ['redis_streams_rpc.messages.reclaimed', 'reclaimed', '{message}', 'Requests taken over from a stopped worker.'],
  ['redis_streams_rpc.messages.dead_lettered', 'deadLettered', '{message}', 'Requests moved to the dead-letter stream.'],
  ['redis_streams_rpc.messages.expired', 'expired', '{message}', 'Requests skipped because their deadline had passed.'],
  ['redis_streams_rpc.messages.dropped', 'dropped', '{message}', 'Messages dropped because the inbound queue was full.'],
  ['redis_streams_rpc.messages.malformed', 'malformed', '{message}', 'Inbound messages skipped as invalid.'],
  ['redis_streams_rpc.messages.duplicates', 'duplicates', '{message}', 'Late or repeated answers ignored.'],
  ['redis_streams_rpc.entries.trimmed', 'trimmedEntries', '{entry}', 'Pending entries trimmed away before being handled.'],
  ['redis_streams_rpc.entries.retention_trimmed', 'retentionTrimmedEntries', '{entry}', 'Request-stream entries nobody needed, removed by retention.'],
  ['redis_streams_rpc.entries.split', 'splitEntries', '{entry}', 'Entries re-queued in parts to fit a worker\'s concurrency.'],
  ['redis_streams_rpc.messages.handed_back', 'handedBack', '{message}', 'Requests a draining worker handed back to its group unfinished.'],
  ['redis_streams_rpc.client.timeouts', 'timeouts', '{call}', 'Calls that timed out.'],
  ['redis_streams_rpc.connection.reconnects', 'reconnects', '{reconnect}', 'Reconnections after a lost connection.'],
];

/** Observed gauges: metric name, the `gauges()` field, what it measures. */
const GAUGES: readonly (readonly [name: string, field: Exclude<keyof IoGauges, 'sampledAt'>, unit: string, description: string])[] = [
  ['redis_streams_rpc.consumer.lag', 'consumerLag', '{message}', 'Requests in the stream not delivered to the consumer group yet (sampled every retentionIntervalMs).'],
  ['redis_streams_rpc.consumer.pending', 'pendingRequests', '{message}', 'Requests delivered to the consumer group and not acknowledged yet (sampled every retentionIntervalMs).'],
];

/** Instruments of both sides. */
export function createSideInstruments(meter: Meter, side: 'client' | 'server'): SideInstruments {
  const who = side === 'client' ? 'Calls made' : 'Requests handled';
  return {
    duration: meter.createHistogram(`rpc.${side}.call.duration`, {
      unit: 's',
      description: side === 'client' ? 'Duration of calls, from the call to its settling (answer, error, timeout).' : 'Duration of handler runs.',
    }),
    calls: meter.createCounter(`redis_streams_rpc.${side}.calls`, { unit: '{call}', description: `${who}, by method, kind and outcome.` }),
    errors: meter.createCounter(`redis_streams_rpc.${side}.errors`, { unit: '{call}', description: `${who} that failed, by method and error.type.` }),
    inFlight: new InFlight(meter, `redis_streams_rpc.${side}.in_flight`, `${who} not settled yet.`),
  };
}

/**
 * Observes the counters of every open channel at each collection, summed per
 * stream and group (several channels of one process on one stream are one
 * series). A closed channel's last counts stay in its series' totals, so the
 * counters never go down.
 */
export class ChannelObserver {
  private readonly open = new Set<RPCChannelEvent>();
  private readonly retired = new Map<string, Series>();
  private readonly counters = new Map<keyof RPCStats, ObservableCounter>();
  private readonly callback: BatchObservableCallback = (result) => this.collect(result);

  private readonly gauges = new Map<keyof IoGauges, ObservableGauge>();

  constructor(private readonly meter: Meter) {
    for (const [name, field, unit, description] of OBSERVED) this.counters.set(field, meter.createObservableCounter(name, { unit, description }));
    for (const [name, field, unit, description] of GAUGES) this.gauges.set(field, meter.createObservableGauge(name, { unit, description }));
    meter.addBatchObservableCallback(this.callback, [...this.counters.values(), ...this.gauges.values()]);
  }

  /** A channel opened. */
  add(channel: RPCChannelEvent): void {
    this.open.add(channel);
  }

  /** A channel closed: its counts move to the retired totals. */
  remove(channel: RPCChannelEvent): void {
    if (!this.open.delete(channel)) return;
    this.addTo(this.retired, channel);
  }

  /** Stops observing. */
  stop(): void {
    this.meter.removeBatchObservableCallback(this.callback, [...this.counters.values(), ...this.gauges.values()]);
    this.open.clear();
  }

  private collect(result: BatchObservableResult): void {
    const series = new Map<string, Series>();
    for (const [key, s] of this.retired) series.set(key, { attributes: s.attributes, totals: new Map(s.totals) });
    for (const channel of this.open) this.addTo(series, channel);
    for (const { attributes, totals } of series.values()) {
      for (const [field, counter] of this.counters) result.observe(counter, totals.get(field) ?? 0, attributes);
    }
    this.collectGauges(result);
  }

  /** The newest sample of each group among the open channels (every worker of a group samples the same numbers). */
  private collectGauges(result: BatchObservableResult): void {
    const newest = new Map<string, { attributes: Attributes; gauges: IoGauges }>();
    for (const channel of this.open) {
      const gauges = channel.gauges();
      if (gauges.sampledAt === undefined || channel.group === undefined) continue;
      const key = `${channel.destination}\n${channel.group}`;
      const known = newest.get(key);
      if (known !== undefined && (known.gauges.sampledAt ?? 0) >= gauges.sampledAt) continue;
      newest.set(key, { attributes: { [ATTR.destination]: channel.destination, [ATTR.consumerGroup]: channel.group }, gauges });
    }
    for (const { attributes, gauges } of newest.values()) {
      for (const [field, gauge] of this.gauges) {
        const value = gauges[field];
        if (value !== undefined) result.observe(gauge, value, attributes);
      }
    }
  }

  private addTo(series: Map<string, Series>, channel: RPCChannelEvent): void {
    const key = `${channel.destination}\n${channel.group ?? ''}`;
    let s = series.get(key);
    if (s === undefined) {
      const attributes: Attributes = { [ATTR.destination]: channel.destination };
      if (channel.group !== undefined) attributes[ATTR.consumerGroup] = channel.group;
      s = { attributes, totals: new Map() };
      series.set(key, s);
    }
    const stats = channel.stats();
    for (const field of this.counters.keys()) s.totals.set(field, (s.totals.get(field) ?? 0) + stats[field]);
  }
}

interface Series {
  readonly attributes: Attributes;
  readonly totals: Map<keyof RPCStats, number>;
}
