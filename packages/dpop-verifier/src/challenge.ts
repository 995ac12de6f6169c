import type { DPoPError } from './errors.ts';

/** How challenges are written for one verifier. @internal */
export interface ChallengeConfig {
  algs: string;
  realm?: string;
  allowBearer: boolean;
}

function quote(value: string): string {
  return `"${value.replace(/[\\"]/g, '\\$&').replace(/[\x00-\x1f\x7f]/g, '')}"`;
}

/**
 * Builds the `WWW-Authenticate` value for a resource-server error (RFC 9449 §7.1, RFC 6750
 * §3): the error goes on the scheme the client used; in mixed mode the other scheme is offered
 * too; a request with no credentials gets challenges without an error code. @internal
 */
export function wwwAuthenticate(
  config: ChallengeConfig,
  scheme: 'DPoP' | 'Bearer' | undefined,
  error?: DPoPError,
): string {
  const realm = config.realm === undefined ? '' : `realm=${quote(config.realm)}`;
  const errorParams = error
    ? `error=${quote(error.code)}, error_description=${quote(error.message)}`
    : '';
  const join = (...parts: string[]) => parts.filter(Boolean).join(', ');
  const dpop = `DPoP ${join(realm, scheme === 'DPoP' ? errorParams : '', `algs=${quote(config.algs)}`)}`;
  if (!config.allowBearer) return dpop;
  const bearerParams = join(realm, scheme === 'Bearer' ? errorParams : '');
  const bearer = bearerParams ? `Bearer ${bearerParams}` : 'Bearer';
  return scheme === 'Bearer' ? `${bearer}, ${dpop}` : `${dpop}, ${bearer}`;
}
