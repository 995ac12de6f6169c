// Node-only backend of `#crypto`, selected by the `node` condition. Synchronous node:crypto
// signing with a KeyObject derived from the CryptoKey: 3x faster than WebCrypto on Node. The
// KeyObject stays in this module's WeakMap; it is never exported, logged or persisted.
import { KeyObject, constants, hash, randomFillSync, sign } from 'node:crypto';
import type { DPoPAlgorithm } from '../algorithms.ts';

/** Which implementation is loaded. @internal */
export const backend = 'node' as const;

const keyObjects = new WeakMap<CryptoKey, KeyObject>();

function keyObjectOf(key: CryptoKey): KeyObject {
  let object = keyObjects.get(key);
  if (object === undefined) {
    object = KeyObject.from(key);
    keyObjects.set(key, object);
  }
  return object;
}

const HASH: Record<string, string> = { '256': 'sha256', '384': 'sha384', '512': 'sha512' };

/** @internal */
export function signWithCryptoKey(
  alg: DPoPAlgorithm,
  key: CryptoKey,
  signingInput: string,
): Uint8Array {
  const keyObject = keyObjectOf(key);
  const data = Buffer.from(signingInput, 'latin1'); // base64url and '.': ASCII
  switch (alg[0]) {
    case 'E':
      if (alg === 'EdDSA' || alg === 'Ed25519') return sign(null, data, keyObject);
      return sign(HASH[alg.slice(2)], data, { key: keyObject, dsaEncoding: 'ieee-p1363' });
    case 'P':
      return sign(HASH[alg.slice(2)], data, {
        key: keyObject,
        padding: constants.RSA_PKCS1_PSS_PADDING,
        saltLength: Number(alg.slice(2)) / 8,
      });
    default:
      return sign(HASH[alg.slice(2)], data, keyObject);
  }
}

/** @internal */
export function sha256Base64url(text: string): string {
  return hash('sha256', text, 'base64url');
}

/** @internal */
export function base64url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

/** @internal */
export function base64urlString(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}

// CSPRNG bytes drawn in blocks: one randomFillSync per 256 identifiers instead of one each.
const pool = Buffer.allocUnsafe(4096);
let offset = pool.length;

/** @internal */
export function randomId(): string {
  if (offset === pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const id = pool.toString('base64url', offset, offset + 16);
  offset += 16;
  return id;
}
