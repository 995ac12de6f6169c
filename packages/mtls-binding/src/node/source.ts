import { certificateThumbprint } from '../thumbprint.ts';
import type { CertificateFromHeadersOptions, HeaderSource } from './headers.ts';
import { certificateFromHeaders } from './headers.ts';
import { peerCertificate } from './peer.ts';

/** Where the resource server finds the client certificate. */
export type CertificateSourceOptions =
  { from: 'socket' } | ({ from: 'headers' } & CertificateFromHeadersOptions);

/** A request as `@popkit/dpop-verifier` adapters pass it: headers, and the socket when there is one. */
export interface CertificateSourceRequest {
  headers: unknown;
  rawHeaders?: readonly string[];
  socket?: unknown;
}

/**
 * The `certificate` hook of `@popkit/dpop-verifier`'s `createDPoPAuth`: resolves the `x5t#S256`
 * of the client certificate of a request, from the TLS socket (`{ from: 'socket' }`) or from a
 * named proxy's header (`{ from: 'headers', proxy: 'envoy' }`). One middleware then enforces
 * `cnf.jkt` and `cnf["x5t#S256"]` alike; a token bound to both needs both. A malformed proxy
 * header rejects the request (the hook throws, the verifier answers 503... never accepts).
 *
 * @example
 * ```ts
 * createDPoPAuth({ ...options, certificate: certificateThumbprintSource({ from: 'headers', proxy: 'nginx' }) });
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc8705#section-3
 */
export function certificateThumbprintSource(options: CertificateSourceOptions) {
  if (options?.from !== 'socket' && options?.from !== 'headers')
    throw new TypeError('"from" must be "socket" or "headers"');
  if (options.from === 'headers' && options.proxy === undefined) {
    throw new TypeError('"proxy" must name the TLS-terminating proxy whose header is trusted');
  }
  return async (request: CertificateSourceRequest): Promise<string | undefined> => {
    const presented =
      options.from === 'socket'
        ? request.socket
          ? peerCertificate({ socket: request.socket })
          : undefined
        : certificateFromHeaders(request as HeaderSource, options);
    return presented === undefined ? undefined : certificateThumbprint(presented.leaf);
  };
}
