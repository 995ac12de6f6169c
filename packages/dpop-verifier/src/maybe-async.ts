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

/** One step of an orchestrator: checks `run` and records what it found there. @internal */
export type Step<R> = (run: R) => void | PromiseLike<void>;

/**
 * Runs `steps` in order on `run` (a per-request record), from `from`: the one place where the
 * synchronous and asynchronous paths fork. While every step answers synchronously nothing is
 * allocated (no promise, no closure) and `run` is returned as is; the first step that returns
 * a promise continues the rest after it. A step's failure propagates (a throw, or a rejection
 * once asynchronous): callers map errors once, around the whole run. @internal
 */
export function runSteps<R>(steps: readonly Step<R>[], run: R, from = 0): MaybePromise<R> {
  for (let i = from; i < steps.length; i++) {
    const pending = steps[i]!(run);
    if (pending !== undefined) {
      const next = i + 1;
      return Promise.resolve(pending).then(() => runSteps(steps, run, next));
    }
  }
  return run;
}

/**
 * Stores `value` as `run[key]`, now or once it settles: what a step that finds one value does.
 * Returns a promise only when `value` is one (its rejection, the step's failure). @internal
 */
export function keep<R, K extends keyof R>(
  run: R,
  key: K,
  value: R[K] | PromiseLike<R[K]>,
): void | Promise<void> {
  if (!isPromiseLike(value)) {
    run[key] = value;
    return;
  }
  return Promise.resolve(value).then((settled) => {
    run[key] = settled;
  });
}
