import type { DPoPAlgorithm } from '../algorithms.ts';
import { signParams } from '../algorithms.ts';
import { encodeBase64url, encodeBase64urlString, utf8 } from '../base64url.ts';
import { DPoPClientError } from '../errors.ts';
import { fillRandom } from '../random.ts';

/** Which implementation is loaded. @internal */
export const backend = 'web' as const;

/** `crypto.subtle`, or the typed error a runtime without WebCrypto gets. @internal */
export function subtle(what: string): SubtleCrypto {
  const s = (globalThis as { crypto?: { subtle?: SubtleCrypto } }).crypto?.subtle;
  if (s === undefined || s === null) {
    throw new DPoPClientError(
      'ERR_DPOP_NO_WEBCRYPTO',
      `this runtime has no crypto.subtle for ${what}: sign with a DPoPSigner` +
        ' (on React Native, bundle with the "react-native" condition, as Metro does, for SHA-256)',
    );
  }
  return s;
}

const toBytes = (signature: ArrayBuffer) => new Uint8Array(signature);

/**
 * `crypto.subtle.sign` of bytes, to a JOSE signature. Not async (one promise fewer per proof):
 * without WebCrypto it throws, inside createProof's await. @internal
 */
export function signBytes(
  alg: DPoPAlgorithm,
  key: CryptoKey,
  data: Uint8Array,
): Promise<Uint8Array> {
  return subtle('signing')
    .sign(signParams(alg), key, data as BufferSource)
    .then(toBytes);
}

/** @internal */
export function signWithCryptoKey(
  alg: DPoPAlgorithm,
  key: CryptoKey,
  signingInput: string,
): Promise<Uint8Array> {
  // WebCrypto copies `data` before sign() returns (WebCrypto §14.3.3 step 2), so the bytes can
  // be a view of the shared encoding buffer: no ArrayBuffer allocated per proof.
  return signBytes(alg, key, utf8(signingInput, true));
}

/** @internal */
export async function sha256Base64url(text: string): Promise<string> {
  return encodeBase64url(
    new Uint8Array(await subtle('SHA-256').digest('SHA-256', utf8(text) as BufferSource)),
  );
}

/** @internal */
export const base64url = encodeBase64url;

/** @internal */
export const base64urlString = encodeBase64urlString;

// jti bytes are drawn 64 at a time: one getRandomValues call costs more than a proof's own
// JavaScript in Chromium (8 us). Each 16 bytes are used once and zeroed once encoded.
const POOL = 1024;
const pool = new Uint8Array(POOL);
let used = POOL;

/** @internal */
export function randomId(): string | undefined {
  // asked on every call: a runtime (or test) without a CSPRNG gets undefined, never pool bytes
  const c = (globalThis as { crypto?: { getRandomValues?: unknown } }).crypto;
  if (c === undefined || c === null || typeof c.getRandomValues !== 'function') return undefined;
  if (used === POOL) {
    if (!fillRandom(pool)) return undefined;
    used = 0;
  }
  const bytes = pool.subarray(used, (used += 16));
  const id = encodeBase64url(bytes);
  bytes.fill(0);
  return id;
}
