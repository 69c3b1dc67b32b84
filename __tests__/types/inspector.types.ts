// Type tests of the inspection API (type-checked by tsconfig.test.json, never run).
import {
  StreamInspector,
  inspect,
  redriveDeadLetters,
  type DeadLetter,
  type DeadLetterDetail,
  type PendingEntry,
  type RedriveResult,
  type RedisStreamsNotFoundError,
  type StreamStatus,
  type TailEvent,
  type TrimResult,
} from '../../src/index.js';
import { expectType } from './type-assertions.js';

declare const inspector: StreamInspector;
expectType<Promise<StreamStatus>>()(inspector.inspect());
expectType<Promise<PendingEntry[]>>()(inspector.pending({ group: 'g', consumer: 'c', count: 10 }));
expectType<Promise<DeadLetter[]>>()(inspector.deadLetters({ count: 5 }));
expectType<Promise<DeadLetterDetail>>()(inspector.deadLetter('1-0'));
expectType<Promise<RedriveResult>>()(inspector.redriveDeadLetters(['1-0']));
expectType<Promise<RedriveResult>>()(inspector.redriveDeadLetters('all'));
expectType<Promise<number>>()(inspector.purgeDeadLetters('all'));
expectType<Promise<TrimResult>>()(inspector.trim());
expectType<AsyncGenerator<TailEvent, void, undefined>>()(inspector.tail({ methods: ['math'] }));
expectType<Promise<StreamStatus>>()(inspect({ stream: 'jobs' }));
expectType<Promise<RedriveResult>>()(redriveDeadLetters({ stream: 'jobs' }, 'all'));

// @ts-expect-error a selection is ids or 'all', nothing else
void inspector.redriveDeadLetters('everything');
// @ts-expect-error unknown option names are compile errors too
void new StreamInspector({ streem: 'jobs' });

// Tail events narrow on `type`.
declare const event: TailEvent;
if (event.type === 'request') expectType<string>()(event.request.method);
else if (event.type === 'dead-letter') expectType<DeadLetter>()(event.deadLetter);
else expectType<number | null>()(event.durationMs);

declare const notFound: RedisStreamsNotFoundError;
expectType<'ERR_REDIS_NOT_FOUND'>()(notFound.code);
expectType<'stream' | 'group' | 'dead-letter'>()(notFound.what);
