/**
 * Type-level mapping from an API object to its remote proxy.
 *
 * @module
 */

/** Any function. `never[]` parameters accept every function type. */
export type AnyFunction = (...args: never[]) => unknown;

/** The awaited return value of a remote method, as a Promise. */
export type RemoteMethod<F> = F extends (...args: infer A) => infer R ? (...args: A) => Promise<Awaited<R>> : never;

/** A remote method called as a notification: resolves once sent, no answer. */
export type NotifyMethod<F> = F extends (...args: infer A) => unknown ? (...args: A) => Promise<void> : never;

type CallableKeys<T> = {
  [K in keyof T]: K extends string ? (T[K] extends AnyFunction ? K : T[K] extends object ? K : never) : never;
}[keyof T];

/**
 * The typed proxy of a remote API: every function, in nested namespaces at any
 * depth, becomes a function returning a Promise of its awaited result. Other
 * members (numbers, strings) are not part of the proxy.
 *
 * @typeParam T - The remote API object type.
 */
export type RemoteAPI<T> = {
  readonly [K in CallableKeys<T>]: T[K] extends AnyFunction ? RemoteMethod<T[K]> : RemoteAPI<T[K]>;
};

/**
 * Like {@link RemoteAPI}, but every call is a notification: no answer is
 * expected and the Promise resolves once the request is written.
 */
export type NotifyAPI<T> = {
  readonly [K in CallableKeys<T>]: T[K] extends AnyFunction ? NotifyMethod<T[K]> : NotifyAPI<T[K]>;
};

/** Per-call options, given to {@link RPCChannel.getAPI}. */
export interface CallOptions {
  /** Timeout of each call made through this proxy, in milliseconds. Defaults to the channel's `timeout`. */
  timeout?: number;
  /**
   * Sent with every request of this proxy (request header `md`, protocol
   * version 2) and read by handlers as `getRequestContext().metadata`: trace
   * context, a tenant, an auth token... At most 32 entries; names of 1 to 128
   * characters, string values of at most 4096.
   */
  metadata?: Readonly<Record<string, string>>;
}
