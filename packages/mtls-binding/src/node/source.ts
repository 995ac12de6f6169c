import { hash } from 'node:crypto';
import type { CertificateFromHeadersOptions, HeaderSource } from './headers.ts';
import { headerReader } from './headers.ts';
import { peerCertificate } from './peer.ts';
import { MtlsArgumentError } from '../errors.ts';

/** Where the resource server finds the client certificate. */
export type CertificateSourceOptions =
  { from: 'socket' } | ({ from: 'headers' } & CertificateFromHeadersOptions);

/** A request as `@popkit/dpop-verifier` adapters pass it: headers, and the socket when there is one. */
export interface CertificateSourceRequest {
  headers: unknown;
  rawHeaders?: readonly string[];
  socket?: unknown;
}

/** x5t#S256 with node:crypto's one-shot hash (the core uses WebCrypto, which is async). */
const x5t = (der: Uint8Array): string => hash('sha256', der, 'base64url');

/**
 * The `certificate` hook of `@popkit/dpop-verifier`'s `createDPoPAuth`: resolves the `x5t#S256`
 * of the client certificate of a request, from the TLS socket (`{ from: 'socket' }`) or from a
 * named proxy's header (`{ from: 'headers', proxy: 'envoy' }`; every option, Envoy's `element`
 * and `details` included, is checked here, once). One middleware then enforces
 * `cnf.jkt` and `cnf["x5t#S256"]` alike; a token bound to both needs both. A malformed proxy
 * header makes the hook throw, and the verifier refuses the request (never accepts it).
 *
 * A TLS connection's client certificate cannot change, so the socket's thumbprint is computed
 * once per connection and reused by every request on it (keep-alive).
 *
 * @example
 * ```ts
 * createDPoPAuth({ ...options, certificate: certificateThumbprintSource({ from: 'headers', proxy: 'nginx' }) });
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc8705#section-3
 */
export function certificateThumbprintSource(
  options: CertificateSourceOptions,
): (request: CertificateSourceRequest) => string | undefined {
  if (options?.from !== 'socket' && options?.from !== 'headers')
    throw new MtlsArgumentError('ERR_INVALID_ARG_VALUE', '"from" must be "socket" or "headers"');
  if (options.from === 'headers') {
    const read = headerReader(options); // every option checked here, once
    if (options.proxy === undefined)
      throw new MtlsArgumentError(
        'ERR_INVALID_ARG_VALUE',
        '"proxy" must name the TLS-terminating proxy whose header is trusted',
      );
    return (request) => {
      const presented = read(request as HeaderSource);
      return presented === undefined ? undefined : x5t(presented.leaf);
    };
  }
  const perConnection = new WeakMap<object, string | null>();
  return (request) => {
    const socket = request.socket;
    if (socket === null || typeof socket !== 'object') return undefined;
    let thumbprint = perConnection.get(socket);
    if (thumbprint === undefined) {
      const presented = peerCertificate({ socket });
      thumbprint = presented === undefined ? null : x5t(presented.leaf);
      perConnection.set(socket, thumbprint);
    }
    return thumbprint ?? undefined;
  };
}
