/**
 * `redis-streams-rpc/otel`: OpenTelemetry traces and metrics for
 * redis-streams-rpc. A separate entry point, so that the main one never loads
 * `@opentelemetry/api` (an optional peer dependency: install it to use this).
 *
 * @packageDocumentation
 */
export { instrumentRedisStreamsRpc, DEFAULT_INSTRUMENTATION_OPTIONS, INSTRUMENTATION_NAME } from './otel/instrumentation.js';
export type { RedisStreamsRpcInstrumentation, RedisStreamsRpcInstrumentationOptions } from './otel/instrumentation.js';
export { ATTR, MESSAGING_SYSTEM, RPC_SYSTEM } from './otel/attributes.js';
