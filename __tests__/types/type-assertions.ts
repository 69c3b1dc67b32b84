// Helpers for the type tests in this folder. These files are type-checked by
// `tsc -p tsconfig.test.json` and never run.

/** `true` when A and B are the same type (not merely assignable either way). */
export type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

/** Compiles only when given `true`: `type _ = Expect<Equal<A, B>>`. */
export type Expect<T extends true> = T;

/**
 * Compiles only when the value's type is exactly `Expected`:
 * `expectType<Promise<number>>()(api.add(1, 2))`.
 */
export function expectType<Expected>() {
  return <Actual>(_value: Actual & (Equal<Actual, Expected> extends true ? unknown : never)): void => undefined;
}
