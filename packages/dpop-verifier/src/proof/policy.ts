import type { VerifyKey } from '#crypto';
import type { ProofAlgorithm } from '../algorithms.ts';
import { DEFAULT_ALGORITHMS, isProofAlgorithm } from '../algorithms.ts';
import { DPoPConfigError } from '../errors.ts';
import { Lru } from '../lru.ts';
import type { NonceIssuer } from '../nonce.ts';
import { EPOCH_BOUND } from '../nonce.ts';
import type { ReplayStore } from '../replay/types.ts';
import type { VerifyProofOptions } from './types.ts';

/**
 * A proof header that passed RFC 9449 §4.3 checks 4, 5 and 7, with its imported key: cached by
 * the header segment, so a byte-identical header is not checked again. @internal
 */
export interface HeaderEntry {
  alg: ProofAlgorithm;
  key: VerifyKey;
  /** RFC 7638 thumbprint of the key. */
  jkt: string;
  jwk: Record<string, string>;
  /** The signature's exact length in bytes (RFC 7518 §3.4, RFC 8037 §3.1, the RSA modulus). */
  signatureLength: number;
}

/**
 * The options of a proof verifier once validated, and the caches that live with them: the
 * first argument of every check in `src/proof/`. Built once by {@link compileProofPolicy}.
 * @internal
 */
export interface ProofPolicy {
  readonly allowed: ReadonlySet<string>;
  readonly maxAge: number;
  readonly clockTolerance: number;
  readonly maxProofLength: number;
  readonly maxJtiLength: number;
  readonly maxRsaBits: number;
  /** `nonceIatSkew + clockTolerance`, in seconds. */
  readonly nonceIatSkew: number;
  readonly requireNonce: boolean;
  readonly replay: ReplayStore | false;
  readonly nonces: NonceIssuer | undefined;
  /** popkit's nonces are bound to the store's epoch; another issuer's get the `since` rule too. */
  readonly epochBound: boolean;
  readonly now: () => number;
  /** Checked headers by segment (§4.3 checks 4, 5, 7). */
  readonly headers: Lru<string, HeaderEntry>;
  /** Imported keys by algorithm and canonical JWK. */
  readonly keys: Lru<string, VerifyKey>;
  /** The normalised expected `htu` by request URL string (§4.3 check 9). */
  readonly htus: Lru<string, string>;
}

function bounded(name: string, value: unknown, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > max) {
    throw new DPoPConfigError(name, `must be a number from 0 to ${max}`);
  }
  return value;
}

/** Validates the options of a proof verifier once (throws {@link DPoPConfigError}). @internal */
export function compileProofPolicy(options: VerifyProofOptions): ProofPolicy {
  if (options === null || typeof options !== 'object')
    throw new DPoPConfigError('options', 'must be an object');
  const algorithms = options.algorithms ?? DEFAULT_ALGORITHMS;
  if (
    !Array.isArray(algorithms) ||
    algorithms.length === 0 ||
    !algorithms.every(isProofAlgorithm)
  ) {
    throw new DPoPConfigError(
      'algorithms',
      'must be a non-empty list of asymmetric JWS algorithms',
    );
  }
  const maxAge = bounded('maxAge', options.maxAge, 60, 3600);
  const clockTolerance = bounded('clockTolerance', options.clockTolerance, 10, 600);
  const maxProofLength = bounded('maxProofLength', options.maxProofLength, 8192, 65536);
  const maxJtiLength = bounded('maxJtiLength', options.maxJtiLength, 256, 4096);
  const keyCacheSize = bounded('keyCacheSize', options.keyCacheSize, 1000, 1_000_000);
  const maxRsaBits = bounded('maxRsaBits', options.maxRsaBits, 4096, 8192);
  if (maxRsaBits < 2048) throw new DPoPConfigError('maxRsaBits', 'must be from 2048 to 8192');
  const { replay, nonces } = options;
  if (
    replay !== false &&
    (replay === null || typeof replay !== 'object' || typeof replay.useOnce !== 'function')
  ) {
    throw new DPoPConfigError(
      'replay',
      'must be a ReplayStore, or false to disable replay detection explicitly',
    );
  }
  if (
    nonces !== undefined &&
    (typeof nonces?.check !== 'function' || typeof nonces?.current !== 'function')
  ) {
    throw new DPoPConfigError('nonces', 'must be a NonceIssuer (createNonceIssuer)');
  }
  const requireNonce = options.requireNonce ?? nonces !== undefined;
  if (requireNonce && nonces === undefined)
    throw new DPoPConfigError('requireNonce', 'needs "nonces"');
  const nonceIatSkew = bounded('nonceIatSkew', options.nonceIatSkew, 300, 3600) + clockTolerance;
  const now = options.now ?? Date.now;
  if (typeof now !== 'function') throw new DPoPConfigError('now', 'must be a function');
  return {
    allowed: new Set<string>(algorithms),
    maxAge,
    clockTolerance,
    maxProofLength,
    maxJtiLength,
    maxRsaBits,
    nonceIatSkew,
    requireNonce,
    replay,
    nonces,
    epochBound: (nonces as { [EPOCH_BOUND]?: boolean } | undefined)?.[EPOCH_BOUND] === true,
    now,
    headers: new Lru(Math.max(1, keyCacheSize)),
    keys: new Lru(Math.max(1, keyCacheSize)),
    // a server has few routes: bounded
    htus: new Lru(1024),
  };
}
