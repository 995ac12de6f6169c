import type { DPoPAlgorithm } from './algorithms.ts';
import type { PublicJwk } from './jwk.ts';

/**
 * A signing key that never enters JavaScript: an iOS Secure Enclave or Android Keystore key
 * behind a React Native native module, a cloud KMS key, an HSM, a WebAuthn-less platform key.
 * Every API that takes a key takes a `CryptoKeyPair` or a `DPoPSigner`.
 *
 * `sign` receives the JWS signing input (ASCII bytes of `header.payload`) and returns the
 * signature. ECDSA signatures must be JOSE/IEEE P1363 (`r || s`) unless
 * `signatureEncoding: 'der'` says the platform returns ASN.1 DER (Apple `SecKeyCreateSignature`
 * with `.ecdsaSignatureMessageX962SHA256`, Android `Signature("SHA256withECDSA")`, AWS KMS), in
 * which case popkit converts it.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-4.2
 * @see https://www.rfc-editor.org/rfc/rfc7518#section-3.4
 */
export interface DPoPSigner {
  /** JWS `alg` of the key, e.g. `ES256`. */
  readonly alg: DPoPAlgorithm;
  /** The public key as a JWK; only public members are used. */
  readonly publicJwk: PublicJwk | Readonly<Record<string, unknown>>;
  /** Signs the JWS signing input. */
  sign(signingInput: Uint8Array): Promise<Uint8Array> | Uint8Array;
  /** Encoding of ECDSA signatures returned by `sign`. Default `'raw'` (P1363). */
  readonly signatureEncoding?: 'raw' | 'der';
  /**
   * Bytes from the platform CSPRNG (iOS `SecRandomCopyBytes`, Android `SecureRandom`), used for
   * `jti` only when the runtime has no `crypto.getRandomValues`. Without either, proofs throw
   * `ERR_DPOP_NO_RANDOM`; popkit never falls back to `Math.random`.
   */
  randomBytes?(length: number): Uint8Array | Promise<Uint8Array>;
}

/** A key the client signs with: a WebCrypto key pair or an external signer. */
export type DPoPKey = CryptoKeyPair | DPoPSigner;

/**
 * Converts an ASN.1 DER ECDSA signature (`SEQUENCE { r INTEGER, s INTEGER }`) to the JOSE
 * fixed-length `r || s` form (RFC 7518 §3.4). Returns `undefined` for malformed input.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7518#section-3.4
 */
export function derToJoseSignature(der: Uint8Array, size: number): Uint8Array | undefined {
  const half = size / 2;
  let i = 0;
  if (der[i++] !== 0x30) return undefined;
  let seqLen = der[i++];
  if (seqLen === undefined) return undefined;
  if (seqLen & 0x80) {
    if (seqLen !== 0x81) return undefined;
    seqLen = der[i++];
    if (seqLen === undefined) return undefined;
  }
  if (i + seqLen !== der.length) return undefined;
  const out = new Uint8Array(size);
  for (let part = 0; part < 2; part++) {
    if (der[i++] !== 0x02) return undefined;
    const len = der[i++];
    if (len === undefined || len === 0 || i + len > der.length) return undefined;
    let start = i;
    let n = len;
    while (n > half && der[start] === 0) {
      start++;
      n--;
    }
    if (n > half) return undefined;
    out.set(der.subarray(start, start + n), part * half + (half - n));
    i += len;
  }
  return i === der.length ? out : undefined;
}
