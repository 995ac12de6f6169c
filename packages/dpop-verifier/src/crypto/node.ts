// Node-only backend of `#crypto`: synchronous node:crypto with KeyObjects (2-5x WebCrypto on Node).
import { constants, createHmac, createPublicKey, hash, verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type { ProofAlgorithm } from '../algorithms.ts';

/** @internal */
export const backend = 'node' as const;

const HASH: Record<string, string> = { '256': 'sha256', '384': 'sha384', '512': 'sha512' };

/** @internal */
export function importPublicJwk(_alg: ProofAlgorithm, jwk: Record<string, string>): KeyObject {
  return createPublicKey({ key: jwk, format: 'jwk' });
}

/** @internal */
export function verifySignature(
  alg: ProofAlgorithm,
  key: unknown,
  signingInput: string,
  signature: Uint8Array,
): boolean {
  const data = Buffer.from(signingInput, 'latin1');
  const keyObject = key as KeyObject;
  switch (alg[0]) {
    case 'E':
      if (alg === 'EdDSA' || alg === 'Ed25519') return verify(null, data, keyObject, signature);
      return verify(
        HASH[alg.slice(2)],
        data,
        { key: keyObject, dsaEncoding: 'ieee-p1363' },
        signature,
      );
    case 'P':
      return verify(
        HASH[alg.slice(2)],
        data,
        {
          key: keyObject,
          padding: constants.RSA_PKCS1_PSS_PADDING,
          saltLength: Number(alg.slice(2)) / 8,
        },
        signature,
      );
    default:
      return verify(HASH[alg.slice(2)], data, keyObject, signature);
  }
}

/** @internal */
export function sha256Base64url(text: string): string {
  return hash('sha256', text, 'base64url');
}

/** @internal */
export function hmacSha256Base64url(key: Uint8Array, data: string): string {
  return createHmac('sha256', key).update(data).digest('base64url');
}

/** @internal */
export function decodeBase64url(segment: string): Uint8Array {
  return Buffer.from(segment, 'base64url');
}

/** @internal */
export function decodeBase64urlText(segment: string): string {
  return Buffer.from(segment, 'base64url').toString('utf8');
}
