/**
 * Human renderings of the inspector's plain data (the `--json` output is the data itself).
 *
 * @module
 */
import type { DeadLetter, DeadLetterDetail, PendingEntry, RedriveResult, StreamStatus, TailEvent, TrimResult } from '../index.js';
import { bytes, clock, duration, table, type Output } from './output.js';

function methods(requests: readonly { method: string }[]): string {
  if (requests.length === 0) return '-';
  return requests.length === 1 ? (requests[0]?.method ?? '-') : `${requests[0]?.method ?? '?'} +${requests.length - 1}`;
}

/** `status`. */
export function renderStatus(o: Output, s: StreamStatus): string {
  const { style } = o;
  const st = s.stream;
  const label = (text: string): string => style.bold(text.padEnd(15));
  const lines = [
    `${label('Stream')}${st.key}`,
    `${label('Entries')}${st.length}${st.entriesAdded === null ? '' : ` (${st.entriesAdded} added in all)`}, ${bytes(st.memoryBytes)}`,
    `${label('Oldest entry')}${st.firstEntryId ?? '-'}   ${style.bold('newest')} ${st.lastEntryId ?? '-'}`,
    `${label('Dead letters')}${s.deadLetters.count === 0 ? style.green('0') : style.red(String(s.deadLetters.count))} (${s.deadLetters.key})`,
    `${label('Oldest pending')}${duration(s.oldestPendingAgeMs)}`,
    '',
  ];
  if (s.groups.length === 0) lines.push(style.dim('No consumer group (broadcast mode, or no worker has started).'));
  else {
    lines.push(
      table(
        o,
        ['GROUP', 'CONSUMERS', 'PENDING', 'LAG', 'LAST DELIVERED', 'OLDEST PENDING'],
        s.groups.map((g) => [g.name, String(g.consumers.length), String(g.pending), g.lag === null ? '?' : String(g.lag), g.lastDeliveredId, duration(g.oldestPendingAgeMs)]),
      ),
    );
    const consumers = s.groups.flatMap((g) => g.consumers.map((c) => ({ g, c })));
    if (consumers.length > 0) {
      lines.push('');
      lines.push(
        table(
          o,
          ['CONSUMER', 'GROUP', 'PENDING', 'IDLE', 'ALIVE'],
          consumers.map(({ g, c }) => [c.name, g.name, String(c.pending), duration(c.idleMs), c.alive ? style.green(`yes (${c.aliveBy})`) : style.red(`no (${c.aliveBy})`)]),
        ),
      );
    }
  }
  lines.push('');
  if (s.inboxes.length === 0) lines.push(style.dim('No reply inbox: no endpoint is connected.'));
  else lines.push(table(o, ['INBOX', 'ENTRIES', 'EXPIRES IN'], s.inboxes.map((i) => [i.key, String(i.length), duration(i.ttlMs)])));
  return lines.join('\n');
}

/** `pending`. */
export function renderPending(o: Output, entries: readonly PendingEntry[]): string {
  if (entries.length === 0) return o.style.dim('Nothing pending.');
  const rows = entries.flatMap((e) => {
    const base = [e.entryId, e.group, e.consumer, duration(e.ageMs), duration(e.idleMs), String(e.deliveries), e.caller ?? '-'];
    if (e.requests.length === 0) return [[...base, '-', e.missing ? o.style.red('(entry gone: trimmed or deleted)') : o.style.red('(undecodable)')]];
    return e.requests.map((r) => [...base, r.callId, r.method]);
  });
  return table(o, ['ENTRY', 'GROUP', 'HOLDER', 'AGE', 'IDLE', 'DELIVERIES', 'CALLER', 'CALL', 'METHOD'], rows);
}

/** `dead-letters list`. */
export function renderDeadLetters(o: Output, letters: readonly DeadLetter[], now: number): string {
  if (letters.length === 0) return o.style.dim('No dead letters.');
  return table(
    o,
    ['ID', 'AGE', 'METHOD', 'CALLER', 'DELIVERIES', 'REASON'],
    letters.map((l) => [
      l.id,
      duration(Math.max(0, now - l.deadLetteredAt)),
      methods(l.requests),
      `${l.caller ?? '-'}${l.caller === null ? '' : l.callerAlive ? o.style.green(' (waiting)') : o.style.dim(' (gone)')}`,
      l.deliveries === null ? '-' : String(l.deliveries),
      l.reason ?? '-',
    ]),
  );
}

/** `dead-letters show`. */
export function renderDeadLetter(o: Output, l: DeadLetterDetail): string {
  const b = o.style.bold;
  const lines = [
    `${b('Dead letter')}  ${l.id} (${new Date(l.deadLetteredAt).toISOString()})`,
    `${b('Source')}       ${l.sourceId ?? '-'} in group ${l.group ?? '-'}`,
    `${b('Deliveries')}   ${l.deliveries ?? '-'}`,
    `${b('Reason')}       ${l.reason ?? '-'}`,
    `${b('Caller')}       ${l.caller ?? '-'} (${l.callerAlive ? 'inbox exists: a redrive answers it' : 'inbox gone'})`,
  ];
  for (const r of l.requests) {
    lines.push(`${b('Request')}      ${r.method} call ${r.callId}, ${bytes(r.bytes)}, deadline ${new Date(r.deadline).toISOString()}${r.notification ? ', notification' : ''}`);
  }
  for (const u of l.undecodable) lines.push(`${b('Undecodable')}  ${u.error}`);
  l.messages.forEach((m, i) => {
    const nl = m.indexOf('\n');
    lines.push(`${b(`Message ${i + 1}`)}    ${nl < 0 ? m : m.slice(0, nl)}`, `             ${nl < 0 ? '' : m.slice(nl + 1, nl + 1 + 2000)}`);
  });
  return lines.join('\n');
}

/** `dead-letters redrive`. */
export function renderRedrive(o: Output, r: RedriveResult): string {
  const lines = [`Redrove ${r.redriven.length} dead letter(s) to the request stream.`];
  for (const x of r.redriven) lines.push(`  ${x.deadLetterId} -> ${x.entryId}`);
  if (r.notFound.length > 0) lines.push(o.style.yellow(`Not found (already redriven or purged): ${r.notFound.join(', ')}`));
  if (r.skipped.length > 0) lines.push(o.style.yellow(`Skipped (no request, or a signature that does not verify): ${r.skipped.join(', ')}`));
  return lines.join('\n');
}

/** `trim`. */
export function renderTrim(r: TrimResult): string {
  if (r.minId === null) return `No consumer group on the stream: nothing is known to be safe to trim (broadcast readers keep their positions to themselves). ${r.length} entries left.`;
  return `Removed ${r.removed} entr${r.removed === 1 ? 'y' : 'ies'} older than ${r.minId} (nothing pending or unread); ${r.length} left.`;
}

/** One `tail` line. */
export function renderTailEvent(o: Output, e: TailEvent): string {
  const { style } = o;
  const t = style.dim(clock(e.time));
  switch (e.type) {
    case 'request': {
      const r = e.request;
      return `${t} ${style.cyan(r.notification ? '→ notify' : '→ req   ')} ${r.method}  call ${r.callId}  from ${e.caller}  ${bytes(r.bytes)}`;
    }
    case 'result':
    case 'error':
    case 'callback': {
      const tag = e.type === 'result' ? style.green('← res   ') : e.type === 'error' ? style.red('← err   ') : style.yellow('← cb    ');
      const took = e.durationMs === null ? '' : `  ${duration(e.durationMs)}`;
      return `${t} ${tag} ${e.method ?? '?'}  call ${e.callId}  to ${e.to} by ${e.from}  ${bytes(e.bytes)}${took}`;
    }
    case 'dead-letter':
      return `${t} ${style.red('✗ dead  ')} ${methods(e.deadLetter.requests)}  ${e.entryId}  ${e.deadLetter.reason ?? ''}`;
  }
}
