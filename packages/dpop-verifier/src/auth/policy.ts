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
  const { requireNonce, certificate, onResult, onUpstream, realm, resourceMetadata } = options;
  const requiredScopes = scopeList(options.requiredScopes);
  if (resourceMetadata !== undefined && !isHttpUrl(resourceMetadata))
    throw new DPoPConfigError('resourceMetadata', 'must be an absolute http(s) URL string');
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
  if (onUpstream !== undefined && typeof onUpstream !== 'function')
    throw new DPoPConfigError('onUpstream', 'must be a function');
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
  const validateToken = createTokenValidator(options.accessToken, onUpstream);
  const store = options.replay;
  const replayFill =
    store !== false && typeof store?.stats === 'function'
      ? (): number | undefined => {
          try {
            return store.stats!().fill;
          } catch {
            return undefined;
          }
        }
      : (): number | undefined => undefined;
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
      ...(requiredScopes.length === 0 ? {} : { scope: requiredScopes.join(' ') }),
      ...(resourceMetadata === undefined ? {} : { resourceMetadata }),
    },
    maxTokenLength: options.maxTokenLength ?? 16384,
    requiredScopes,
    explain: explain === 'log',
  };
}

/** RFC 6749 §3.3 scope-token: printable ASCII but space, `"` and `\\`. */
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

function scopeList(value: unknown): readonly string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((s) => typeof s === 'string' && SCOPE_TOKEN.test(s)))
    throw new DPoPConfigError('requiredScopes', 'must be an array of scope tokens (RFC 6749 §3.3)');
  return Object.freeze([...(value as string[])]);
}

function isHttpUrl(value: unknown): boolean {
  if (typeof value !== 'string' || /[\x00-\x20"\\\x7f]/.test(value)) return false;
  try {
    const url = new URL(value);
    return url.protocol === 'https:' || url.protocol === 'http:';
  } catch {
    return false;
  }
}
