/**
 * RFC 9449 §11.1: each proof is accepted once. Its `jti` is recorded last, only once every
 * other check passed, in the replay store: key = SHA-256(jkt, jti), kept exactly as long as
 * the proof could be accepted again. A store that cannot answer fails closed (503).
 * @module
 */
import { sha256Base64url } from '#crypto';
import type { DPoPError } from '../errors.ts';
import { refuse } from '../errors.ts';
import { isPromiseLike } from '../maybe-async.ts';
import { ReplayStoreError } from '../replay/types.ts';
import type { ProofPolicy } from './policy.ts';
import type { Checked } from './types.ts';

/**
 * Records a checked proof; `account` is the unit of fairness when the caller knows it (else
 * the key). Synchronous with a synchronous store and hash; throws `replay`, or a 503
 * (`replay_store_*`) when the store cannot answer. @internal
 */
export function recordProof(
  policy: ProofPolicy,
  checked: Checked,
  account = checked.account,
): void | Promise<void> {
  const { replay } = policy;
  if (replay === false) return;
  const { result, jti, expiresAt } = checked;
  const scope = typeof account === 'string' && account.length > 0 ? account : result.jkt;
  let answer: boolean | PromiseLike<boolean>;
  try {
    const hashed = sha256Base64url(`${result.jkt}.${jti}`);
    answer =
      typeof hashed === 'string'
        ? replay.useOnce(hashed, expiresAt, scope)
        : hashed.then((key) => replay.useOnce(key, expiresAt, scope));
  } catch (cause) {
    throw storeUnavailable(cause);
  }
  if (!isPromiseLike(answer)) return firstUse(answer);
  return Promise.resolve(answer).then(firstUse, (cause: unknown) => {
    throw storeUnavailable(cause);
  });
}

/** The replay store could not answer: fail closed, as a 503 the client may retry. */
function storeUnavailable(cause: unknown): DPoPError {
  return refuse(cause instanceof ReplayStoreError ? cause.reason : 'replay_store_error', {
    headers: { 'Retry-After': '1' },
    cause,
  });
}

/** The store's answer: anything but `true` is a replay. */
function firstUse(first: unknown): void {
  if (first !== true) throw refuse('replay');
}
