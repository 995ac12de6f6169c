/**
 * `@popkit/mtls-binding/node`: client certificates from TLS sockets, proxy headers and PKCS#12
 * files, and a fetch that presents one. Node only.
 * @packageDocumentation
 */
export { createMtlsFetch } from './fetch.ts';
export type { MtlsCredentials, MtlsFetch, MtlsFetchOptions } from './fetch.ts';
export type { EnvoyClientCertDetails } from './envoy.ts';
export type { PresentedCertificate } from './forwarded.ts';
export { MAX_HEADER_LENGTH, PROXY_HEADERS, certificateFromHeaders } from './headers.ts';
export type { CertificateFromHeadersOptions, HeaderSource, ProxyKind } from './headers.ts';
export { peerCertificate } from './peer.ts';
export type { SocketSource } from './peer.ts';
export { loadPkcs12 } from './pkcs12.ts';
export type { Pkcs12Contents } from './pkcs12.ts';
export { certificateThumbprintSource } from './source.ts';
export type { CertificateSourceOptions, CertificateSourceRequest } from './source.ts';
