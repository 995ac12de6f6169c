import type { DPoPError } from './errors.ts';

/** How challenges are written for one verifier. @internal */
export interface ChallengeConfig {
  algs: string;
  realm?: string;
  allowBearer: boolean;
  /** RFC 9728 §5.1 `resource_metadata`: the URL of this resource's metadata document. */
  resourceMetadata?: string;
  /** RFC 6750 §3 `scope`: the scopes this resource requires, space-separated. */
  scope?: string;
}

function quote(value: string): string {
  return `"${value.replace(/[\\"]/g, '\\$&').replace(/[\x00-\x1f\x7f]/g, '')}"`;
}

/**
 * Builds the `WWW-Authenticate` value for a resource-server error (RFC 9449 §7.1, RFC 6750
 * §3): the error goes on the scheme the client used (on `DPoP` when it is not known yet); when
 * the Bearer scheme is open (certificate-bound or unbound tokens) it is offered too; a request
 * with no credentials gets challenges without an error code. `scope` (RFC 6750 §3) and
 * `resource_metadata` (RFC 9728 §5.1, which MCP clients read to find the authorization
 * server) go on every challenge when configured. @internal
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
  const scope = config.scope === undefined ? '' : `scope=${quote(config.scope)}`;
  const metadata =
    config.resourceMetadata === undefined
      ? ''
      : `resource_metadata=${quote(config.resourceMetadata)}`;
  // An error found before the scheme is known (e.g. two Authorization headers) goes on DPoP.
  const onDPoP = scheme === 'DPoP' || scheme === undefined;
  const dpop = `DPoP ${join(realm, onDPoP ? errorParams : '', scope, metadata, `algs=${quote(config.algs)}`)}`;
  if (!config.allowBearer) return dpop;
  const bearerParams = join(realm, scheme === 'Bearer' ? errorParams : '', scope, metadata);
  const bearer = bearerParams ? `Bearer ${bearerParams}` : 'Bearer';
  return scheme === 'Bearer' ? `${bearer}, ${dpop}` : `${dpop}, ${bearer}`;
}
