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

/** @internal */
export async function signWithCryptoKey(
  alg: DPoPAlgorithm,
  key: CryptoKey,
  signingInput: string,
): Promise<Uint8Array> {
  return new Uint8Array(
    await subtle('signing').sign(signParams(alg), key, utf8(signingInput) as BufferSource),
  );
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

/** @internal */
export function randomId(): string | undefined {
  const bytes = new Uint8Array(16);
  return fillRandom(bytes) ? encodeBase64url(bytes) : undefined;
}
