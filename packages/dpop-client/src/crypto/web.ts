import type { DPoPAlgorithm } from '../algorithms.ts';
import { signParams } from '../algorithms.ts';
import { encodeBase64url, encodeBase64urlString, utf8 } from '../base64url.ts';

/** Which implementation is loaded. @internal */
export const backend = 'web' as const;

/** @internal */
export async function signWithCryptoKey(
  alg: DPoPAlgorithm,
  key: CryptoKey,
  signingInput: string,
): Promise<Uint8Array> {
  return new Uint8Array(
    await crypto.subtle.sign(signParams(alg), key, utf8(signingInput) as BufferSource),
  );
}

/** @internal */
export async function sha256Base64url(text: string): Promise<string> {
  return encodeBase64url(
    new Uint8Array(await crypto.subtle.digest('SHA-256', utf8(text) as BufferSource)),
  );
}

/** @internal */
export const base64url = encodeBase64url;

/** @internal */
export const base64urlString = encodeBase64urlString;

/** @internal */
export function randomId(): string {
  return encodeBase64url(crypto.getRandomValues(new Uint8Array(16)));
}
