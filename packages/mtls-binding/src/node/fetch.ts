import type { KeyObject } from 'node:crypto';
import type * as undiciModule from 'undici';
import { optionalPeer } from './optional.ts';
import { certificateThumbprint } from '../thumbprint.ts';
import { loadPkcs12 } from './pkcs12.ts';
import { MtlsArgumentError } from '../errors.ts';

/** The client certificate and key: PEM strings (the certificate may be followed by its chain), or a PKCS#12 file. */
export type MtlsCredentials =
  | { cert: string; key: string | KeyObject; passphrase?: string }
  | { pfx: Uint8Array | ArrayBuffer; passphrase: string };

/** TLS options for the server side of the connection. */
export interface MtlsFetchOptions {
  /** CA certificate(s) to trust for the server, PEM. Default: the system store. */
  ca?: string | string[];
  /** SNI / certificate name to check, when it differs from the URL host. */
  servername?: string;
}

/** A `fetch` that presents the client certificate on every TLS connection. */
export interface MtlsFetch {
  (input: string | URL, init?: RequestInit): Promise<Response>;
  /** `x5t#S256` of the presented certificate: what bound tokens carry in `cnf`. */
  readonly thumbprint: string;
  /** Closes pooled connections (call it after rotating the certificate: pools keep the old one). */
  close(): Promise<void>;
}

/**
 * A fetch that authenticates with a TLS client certificate (RFC 8705 §2 client authentication
 * and §3 certificate-bound tokens), built on an undici `Agent`. Accepts PEM or PKCS#12 (modern
 * and legacy files, via `loadPkcs12`). Use it for the token endpoint (or its
 * `mtls_endpoint_aliases` entry) and for resource servers that check `cnf["x5t#S256"]`.
 *
 * @example
 * ```ts
 * const mtlsFetch = await createMtlsFetch({ pfx: await readFile('client.p12'), passphrase }, { ca: caPem });
 * const res = await mtlsFetch('https://as.example.com/mtls/token', { method: 'POST', body });
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc8705#section-5
 */
export async function createMtlsFetch(
  credentials: MtlsCredentials,
  options: MtlsFetchOptions = {},
): Promise<MtlsFetch> {
  let cert: string;
  let key: string | KeyObject;
  let passphrase: string | undefined;
  if ('pfx' in credentials) {
    const contents = await loadPkcs12(credentials.pfx, credentials.passphrase);
    cert = [contents.certificate, ...contents.chain].join('');
    key = contents.privateKeyPem;
  } else {
    if (typeof credentials?.cert !== 'string')
      throw new MtlsArgumentError(
        'ERR_INVALID_ARG_VALUE',
        '"credentials.cert" must be a PEM string',
      );
    cert = credentials.cert;
    key = credentials.key;
    passphrase = credentials.passphrase;
  }
  const thumbprint = await certificateThumbprint(cert, { leaf: 'first' });
  const keyOption =
    typeof key === 'string' ? key : key.export({ format: 'pem', type: 'pkcs8' }).toString();
  const undici = await optionalPeer<typeof undiciModule>('undici', 'createMtlsFetch');
  const agent = new undici.Agent({
    connect: {
      cert,
      key: keyOption,
      ...(passphrase === undefined ? {} : { passphrase }),
      ...(options.ca === undefined ? {} : { ca: options.ca }),
      ...(options.servername === undefined ? {} : { servername: options.servername }),
    },
  });
  // (undici's own fetch: only it takes a dispatcher; its Request/Response are the global ones)
  const mtlsFetch = ((input: string | URL, init?: RequestInit) =>
    undici.fetch(input, {
      ...(init as Parameters<typeof undici.fetch>[1]),
      dispatcher: agent,
    }) as unknown as Promise<Response>) as MtlsFetch;
  Object.defineProperty(mtlsFetch, 'thumbprint', { value: thumbprint, enumerable: true });
  Object.defineProperty(mtlsFetch, 'close', { value: () => agent.close() });
  return mtlsFetch;
}
