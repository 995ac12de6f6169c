/**
 * Values that are ready now or later. The verifier's steps are synchronous on Node (node:crypto,
 * the memory store, a cached token) and asynchronous elsewhere (WebCrypto, Redis, a JWKS
 * fetch): each step returns its value when it has it and a promise only when it does not, so a
 * request whose every step is synchronous is verified without a promise or a microtask.
 * @internal
 */
export type MaybePromise<T> = T | Promise<T>;

/** Whether `value` is a promise (or any thenable). @internal */
export function isPromiseLike<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

/**
 * Runs `step` and returns its outcome as a promise, with a synchronous throw as a rejection: the
 * public, always-asynchronous face of a step. @internal
 */
export function settle<T>(step: () => T | PromiseLike<T>): Promise<T> {
  try {
    return Promise.resolve(step());
  } catch (error) {
    return Promise.reject(error);
  }
}
