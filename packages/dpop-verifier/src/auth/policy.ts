/**
 * The options of `createDPoPAuth`, validated once (RFC 9449 §7, RFC 8705 §3, RFC 6750).
 * @module
 */
import { createTokenValidator } from '../access-token.ts';
import { DEFAULT_ALGORITHMS } from '../algorithms.ts';
import type { DPoPAuthOptions } from '../auth.ts';
import { AUTH_OPTION_NAMES } from '../auth.ts';
import { DPoPConfigError } from '../errors.ts';
import { rejectUnknownOptions } from '../options.ts';
import { compileProofPolicy } from '../proof/policy.ts';
import { createUrlResolver, requireUrlTrust } from '../request.ts';
import type { AuthPolicy } from './types.ts';

/** Validates the options once (throws {@link DPoPConfigError}). @internal */
export function compileAuthPolicy(options: DPoPAuthOptions): AuthPolicy {
  if (options === null || typeof options !== 'object')
    throw new DPoPConfigError('options', 'must be an object');
  rejectUnknownOptions(options, AUTH_OPTION_NAMES, 'createDPoPAuth');
  const { requireNonce, certificate, onResult, realm } = options;
  if (options.allowBearer !== undefined && options.allowUnboundBearer !== undefined)
    throw new DPoPConfigError('allowBearer', 'is the old name of "allowUnboundBearer": set one');
  const allowUnboundBearer = options.allowUnboundBearer ?? options.allowBearer ?? false;
  if (typeof allowUnboundBearer !== 'boolean')
    throw new DPoPConfigError('allowUnboundBearer', 'must be a boolean');
  requireUrlTrust(options);
  if (certificate !== undefined && typeof certificate !== 'function')
    throw new DPoPConfigError('certificate', 'must be a function');
  if (onResult !== undefined && typeof onResult !== 'function')
    throw new DPoPConfigError('onResult', 'must be a function');
  if (realm !== undefined && typeof realm !== 'string')
    throw new DPoPConfigError('realm', 'must be a string');
  const { explain = false } = options;
  if (explain !== false && explain !== 'log')
    throw new DPoPConfigError('explain', `must be 'log' or false`);
  if (
    requireNonce !== undefined &&
    typeof requireNonce !== 'boolean' &&
    typeof requireNonce !== 'function'
  ) {
    throw new DPoPConfigError('requireNonce', 'must be a boolean or a function');
  }
  if (requireNonce && options.nonces === undefined)
    throw new DPoPConfigError('requireNonce', 'needs "nonces"');
  const proof = compileProofPolicy({
    ...options,
    requireNonce: typeof requireNonce === 'boolean' ? requireNonce : options.nonces !== undefined,
  });
  const validateToken = createTokenValidator(options.accessToken);
  const store = options.replay;
  const replayFill =
    store !== false && typeof store?.stats === 'function'
      ? (): { replayFill?: number } => {
          try {
            return { replayFill: store.stats!().fill };
          } catch {
            return {};
          }
        }
      : (): { replayFill?: number } => ({});
  const bearerScheme = allowUnboundBearer || certificate !== undefined;
  return {
    proof,
    validateToken,
    resolveUrl: createUrlResolver(options),
    requireNonce: typeof requireNonce === 'function' ? requireNonce : undefined,
    certificate,
    onResult,
    replayFill,
    allowUnboundBearer,
    bearerScheme,
    challenge: {
      algs: (options.algorithms ?? DEFAULT_ALGORITHMS).join(' '),
      allowBearer: bearerScheme,
      ...(realm === undefined ? {} : { realm }),
    },
    maxTokenLength: options.maxTokenLength ?? 16384,
    explain: explain === 'log',
  };
}
