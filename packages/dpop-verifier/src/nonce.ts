import { hmacSha256Base64url } from '#crypto';
import { DPoPConfigError } from './errors.ts';
import type { OptionNames } from './options.ts';
import { rejectUnknownOptions } from './options.ts';
import { timingSafeEqual } from './timing-safe.ts';

/** The verdict on a nonce a client sent. */
export interface NonceCheck {
  /** The nonce was issued by this (or a sibling) server within the accepted window. */
  valid: boolean;
  /** It is the nonce of the current step (otherwise send the current one proactively). */
  current: boolean;
  /** Last moment (ms since epoch) this nonce is accepted; bounds replay entries. */
  expiresAt: number;
}

/**
 * Server nonces for DPoP (RFC 9449 §8 and §9): issues the current nonce and checks the ones
 * clients send. Stateless: every instance with the same secret agrees.
 */
export interface NonceIssuer {
  /** Seconds per time step. */
  readonly period: number;
  /**
   * The nonce to send now in `DPoP-Nonce`. `now` in ms (default `Date.now()`); `epoch`, the
   * replay store's (see `ReplayStore.epoch`): nonces of another epoch are not valid.
   */
  current(now?: number, epoch?: string): Promise<string>;
  /** Checks a nonce from a proof's `nonce` claim, in constant time, for the same `epoch`. */
  check(nonce: string, now?: number, epoch?: string): Promise<NonceCheck>;
}

/**
 * Marks popkit's own issuers, which bind nonces to the replay store's `epoch`: for any other
 * issuer the verifier also applies the store's `since` rule to nonce-carrying proofs. @internal
 */
export const EPOCH_BOUND: unique symbol = Symbol('popkit.nonce.epoch-bound');

/** Options of {@link createNonceIssuer}. */
export interface NonceIssuerOptions {
  /**
   * Secret of at least 32 bytes (a `Uint8Array`, or a string of >= 32 UTF-8 bytes), or a list
   * for rotation: the first one issues, all of them are accepted.
   */
  secret: Uint8Array | string | ReadonlyArray<Uint8Array | string>;
  /** Seconds per step. Default 60. */
  period?: number;
  /** Previous steps still accepted. Default 2, so a nonce lives 2-3 periods (2-3 min). */
  window?: number;
  /**
   * The server these nonces are for (its origin, say `https://api.example.com`), mixed into
   * every nonce: a nonce is valid only at the issuer it came from (RFC 9449 §9). Set a
   * different one on servers that share a secret (an authorization server and its APIs), or
   * give each its own secret; without either, a nonce one of them issued is accepted by the
   * others. Instances of one server share it.
   */
  audience?: string;
}

/** The names of {@link NonceIssuerOptions}, for the unknown-option check. @internal */
const NONCE_OPTION_NAMES = {
  secret: true,
  period: true,
  window: true,
  audience: true,
} as const satisfies OptionNames<NonceIssuerOptions>;

const encoder = new TextEncoder();
const NONCE_LENGTH = 43;

function toSecret(value: Uint8Array | string, index: number): Uint8Array {
  const bytes = typeof value === 'string' ? encoder.encode(value) : value;
  if (!(bytes instanceof Uint8Array))
    throw new DPoPConfigError(`secret[${index}]`, 'must be a Uint8Array or a string');
  if (bytes.length < 32) throw new DPoPConfigError(`secret[${index}]`, 'must be at least 32 bytes');
  return bytes;
}

/**
 * Creates a stateless nonce issuer (RFC 9449 §8, §9). A nonce is
 * `base64url(HMAC-SHA-256(secret, "popkit-dpop-nonce:" + step))` with
 * `step = floor(now / period)`: nothing is stored, the step is recomputed from the clock on
 * every call (suspended processes and serverless instances agree), and any instance holding the
 * secret accepts nonces of the current step, the `window` previous ones, and the next one (for
 * small clock differences between instances). Derived values are cached per step.
 *
 * @example
 * ```ts
 * const nonces = createNonceIssuer({ secret: process.env.DPOP_NONCE_SECRET! }); // >= 32 bytes
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-8
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-9
 */
export function createNonceIssuer(options: NonceIssuerOptions): NonceIssuer {
  if (options === null || typeof options !== 'object')
    throw new DPoPConfigError('options', 'must be an object');
  rejectUnknownOptions(options, NONCE_OPTION_NAMES, 'createNonceIssuer');
  const list = Array.isArray(options.secret)
    ? options.secret
    : [options.secret as Uint8Array | string];
  if (list.length === 0) throw new DPoPConfigError('secret', 'must not be empty');
  const secrets = list.map(toSecret);
  const period = options.period ?? 60;
  const window = options.window ?? 2;
  if (!Number.isInteger(period) || period < 1 || period > 86400) {
    throw new DPoPConfigError('period', 'must be an integer number of seconds from 1 to 86400');
  }
  if (!Number.isInteger(window) || window < 0 || window > 10)
    throw new DPoPConfigError('window', 'must be an integer from 0 to 10');
  const periodMs = period * 1000;
  const { audience } = options;
  if (
    audience !== undefined &&
    (typeof audience !== 'string' || audience.length === 0 || audience.length > 2048)
  )
    throw new DPoPConfigError('audience', 'must be a non-empty string');
  // the HMAC input: "popkit-dpop-nonce:" [length ":" audience ":"] step [":" epoch]
  const label =
    audience === undefined
      ? 'popkit-dpop-nonce:'
      : `popkit-dpop-nonce:${audience.length}:${audience}:`;
  // "step" or "step:epoch" -> nonces for each secret (index 0 issues); bounded
  const cache = new Map<string, Promise<string[]>>();

  const valuesFor = (step: number, epoch: string | undefined): Promise<string[]> => {
    const id = epoch === undefined ? `${step}` : `${step}:${epoch}`;
    let values = cache.get(id);
    if (values === undefined) {
      values = Promise.all(secrets.map((s) => hmacSha256Base64url(s, `${label}${id}`)));
      cache.set(id, values);
      // oldest first: drop what is older than the window (and anything past a hard cap)
      for (const old of cache.keys()) {
        if (cache.size <= 4 * (window + 3)) break;
        cache.delete(old);
      }
    }
    return values;
  };

  const issuer: NonceIssuer & { [EPOCH_BOUND]: true } = {
    [EPOCH_BOUND]: true,
    period,
    async current(now = Date.now(), epoch) {
      return (await valuesFor(Math.floor(now / periodMs), epoch))[0]!;
    },
    async check(nonce, now = Date.now(), epoch) {
      const step = Math.floor(now / periodMs);
      let found: number | undefined;
      if (typeof nonce === 'string' && nonce.length === NONCE_LENGTH) {
        // Check every candidate (no early exit) so timing does not tell which step matched.
        for (let s = step + 1; s >= step - window; s--) {
          for (const value of await valuesFor(s, epoch)) {
            if (timingSafeEqual(value, nonce) && found === undefined) found = s;
          }
        }
      }
      if (found === undefined) return { valid: false, current: false, expiresAt: 0 };
      return { valid: true, current: found >= step, expiresAt: (found + window + 1) * periodMs };
    },
  };
  return issuer;
}
