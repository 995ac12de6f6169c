/**
 * JWS algorithms a DPoP proof may be signed with (RFC 9449 §4.2, RFC 7518 §3, RFC 8037,
 * and the fully-specified `Ed25519` of RFC 9864). `EdDSA` and `Ed25519` name the same key type.
 */
export type DPoPAlgorithm =
  | 'ES256'
  | 'ES384'
  | 'ES512'
  | 'EdDSA'
  | 'Ed25519'
  | 'PS256'
  | 'PS384'
  | 'PS512'
  | 'RS256'
  | 'RS384'
  | 'RS512';

/** Every algorithm this package signs with, in order of preference. */
export const SUPPORTED_ALGORITHMS: readonly DPoPAlgorithm[] = Object.freeze([
  'ES256',
  'EdDSA',
  'Ed25519',
  'ES384',
  'ES512',
  'PS256',
  'PS384',
  'PS512',
  'RS256',
  'RS384',
  'RS512',
]);

const EC_CURVES: Record<string, string> = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' };
/** Bytes of an IEEE P1363 (JOSE) ECDSA signature per algorithm. @internal */
export const EC_SIGNATURE_BYTES: Record<string, number> = { ES256: 64, ES384: 96, ES512: 132 };

/** @internal */
export function isAlgorithm(value: unknown): value is DPoPAlgorithm {
  return typeof value === 'string' && (SUPPORTED_ALGORITHMS as readonly string[]).includes(value);
}

/** SHA-2 variant used by an RSA or ECDSA algorithm, e.g. `SHA-256`. @internal */
export function hashOf(alg: DPoPAlgorithm): 'SHA-256' | 'SHA-384' | 'SHA-512' {
  const bits = alg.slice(2);
  return bits === '384' ? 'SHA-384' : bits === '512' ? 'SHA-512' : 'SHA-256';
}

/** WebCrypto key generation parameters for an algorithm. @internal */
export function keyGenParams(
  alg: DPoPAlgorithm,
  modulusLength: number,
): RsaHashedKeyGenParams | EcKeyGenParams | Algorithm {
  switch (alg) {
    case 'ES256':
    case 'ES384':
    case 'ES512':
      return { name: 'ECDSA', namedCurve: EC_CURVES[alg]! };
    case 'EdDSA':
    case 'Ed25519':
      return { name: 'Ed25519' };
    default:
      return {
        name: alg.startsWith('PS') ? 'RSA-PSS' : 'RSASSA-PKCS1-v1_5',
        modulusLength,
        publicExponent: new Uint8Array([1, 0, 1]),
        hash: hashOf(alg),
      };
  }
}

/** WebCrypto `sign` parameters for an algorithm. @internal */
export function signParams(alg: DPoPAlgorithm): AlgorithmIdentifier | EcdsaParams | RsaPssParams {
  switch (alg) {
    case 'ES256':
    case 'ES384':
    case 'ES512':
      return { name: 'ECDSA', hash: hashOf(alg) };
    case 'EdDSA':
    case 'Ed25519':
      return { name: 'Ed25519' };
    case 'PS256':
    case 'PS384':
    case 'PS512':
      return { name: 'RSA-PSS', saltLength: Number(alg.slice(2)) / 8 };
    default:
      return { name: 'RSASSA-PKCS1-v1_5' };
  }
}

/**
 * Works out the JWS algorithm of a WebCrypto private key, or `undefined` when the key is of a
 * kind DPoP cannot use. @internal
 */
export function algorithmOfKey(key: CryptoKey): DPoPAlgorithm | undefined {
  const a = key.algorithm as KeyAlgorithm & {
    namedCurve?: string;
    hash?: { name: string };
    modulusLength?: number;
  };
  switch (a.name) {
    case 'ECDSA':
      return a.namedCurve === 'P-256'
        ? 'ES256'
        : a.namedCurve === 'P-384'
          ? 'ES384'
          : a.namedCurve === 'P-521'
            ? 'ES512'
            : undefined;
    case 'Ed25519':
      return 'EdDSA';
    case 'RSASSA-PKCS1-v1_5':
    case 'RSA-PSS': {
      const bits = a.hash?.name.slice(4);
      if (bits !== '256' && bits !== '384' && bits !== '512') return undefined;
      return `${a.name === 'RSA-PSS' ? 'PS' : 'RS'}${bits}` as DPoPAlgorithm;
    }
    default:
      return undefined;
  }
}
