/**
 * `@popkit/mtls-binding`: certificate-bound access tokens (RFC 8705), runtime-neutral.
 * Node-only helpers (sockets, proxy headers, PKCS#12, mTLS fetch) are in `@popkit/mtls-binding/node`.
 * @packageDocumentation
 */
export { thumbprintFormatError, verifyCertificateBinding } from './binding.ts';
export type { ConfirmationSource } from './binding.ts';
export type { CertificateInput, CertificateInputOptions } from './certificate.ts';
export { matchSelfSignedTlsClientAuth, matchesTlsClientAuth } from './client-auth.ts';
export type { JwkWithX5c, TlsClientAuthMetadata } from './client-auth.ts';
export { MAX_CERTIFICATE_BYTES } from './der.ts';
export { distinguishedNamesEqual, parseDistinguishedName } from './dn.ts';
export type { DistinguishedName, DnAttribute, DnMatching } from './dn.ts';
export { MtlsArgumentError, MtlsBindingError } from './errors.ts';
export type { MtlsBindingErrorCode, MtlsBindingReason } from './errors.ts';
export { certificateConfirmation, certificateThumbprint } from './thumbprint.ts';
