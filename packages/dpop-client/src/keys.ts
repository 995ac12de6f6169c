import { base64urlString, sha256Base64url, signWithCryptoKey } from '#crypto';
import type { DPoPAlgorithm } from './algorithms.ts';
import { EC_SIGNATURE_BYTES, algorithmOfKey, isAlgorithm, keyGenParams } from './algorithms.ts';
import { DPoPClientError, invalidType, invalidValue, rejectUnknownOptions } from './errors.ts';
import type { OptionNames } from './options.ts';
import type { PublicJwk } from './jwk.ts';
import { canonicalJwk, toPublicJwk } from './jwk.ts';
import type { DPoPKey, DPoPSigner } from './signer.ts';
import { derToJoseSignature } from './signer.ts';
import { encodeBase64url, utf8 } from './base64url.ts';
import { noRandom } from './random.ts';

/** Options of {@link generateKeyPair}. */
export interface GenerateKeyPairOptions {
  /** Whether the private key may be exported. Default `false`; keep it that way. */
  extractable?: boolean;
  /** RSA modulus in bits (>= 2048). Default 2048. */
  modulusLength?: number;
}

/** The names of {@link GenerateKeyPairOptions}, for the unknown-option check. @internal */
const KEY_OPTION_NAMES = {
  extractable: true,
  modulusLength: true,
} as const satisfies OptionNames<GenerateKeyPairOptions>;

/**
 * Generates a DPoP key pair with WebCrypto. The private key is non-extractable by default, so
 * script (including XSS) can use it while the page lives but never copy it out; the public key
 * is always extractable, since it travels in every proof.
 *
 * Prefer `ES256` (the default, the most widely accepted) or `EdDSA`; RSA key generation takes
 * ~150 ms and RSA proofs are twice as long.
 *
 * @example
 * ```ts
 * const keyPair = await generateKeyPair(); // ES256, non-extractable
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-4.2
 */
export async function generateKeyPair(
  alg: DPoPAlgorithm = 'ES256',
  options: GenerateKeyPairOptions = {},
): Promise<CryptoKeyPair> {
  if (!isAlgorithm(alg)) throw invalidValue('alg', 'is not a supported DPoP algorithm');
  if (options === null || typeof options !== 'object') throw invalidType('options', 'an object');
  rejectUnknownOptions(options, KEY_OPTION_NAMES, 'generateKeyPair');
  const { extractable = false, modulusLength = 2048 } = options;
  if (typeof extractable !== 'boolean') throw invalidType('options.extractable', 'a boolean');
  if (!Number.isInteger(modulusLength) || modulusLength < 2048 || modulusLength > 16384) {
    throw invalidValue('options.modulusLength', 'must be an integer from 2048 to 16384');
  }
  const pair = (await crypto.subtle.generateKey(keyGenParams(alg, modulusLength), extractable, [
    'sign',
    'verify',
  ])) as CryptoKeyPair;
  // WebCrypto makes the public key extractable regardless; assert it for runtimes that do not.
  if (!pair.publicKey.extractable) {
    throw new DPoPClientError(
      'ERR_DPOP_KEY_UNSUPPORTED',
      'the runtime made the public key unexportable',
    );
  }
  return pair;
}

/** Everything about a key that never changes, computed once and cached. @internal */
export interface ProofKey {
  readonly alg: DPoPAlgorithm;
  readonly jwk: PublicJwk;
  /** Canonical RFC 7638 JSON, for the thumbprint. */
  readonly canonical: string;
  /** base64url of the protected header, per header `alg` spelling. */
  header(alg: DPoPAlgorithm): string;
  sign(signingInput: string): Uint8Array | Promise<Uint8Array>;
  thumbprint(): string | Promise<string>;
  /** A 128-bit `jti` where the runtime has no CSPRNG: the signer's `randomBytes`, or throws. */
  randomId(): Promise<string>;
}

const cache = new WeakMap<object, Promise<ProofKey>>();

async function noSignerRandom(): Promise<string> {
  throw noRandom();
}

function makeProofKey(
  alg: DPoPAlgorithm,
  jwk: PublicJwk,
  sign: (signingInput: string) => Uint8Array | Promise<Uint8Array>,
  randomId: () => Promise<string> = noSignerRandom,
): ProofKey {
  const headers = new Map<DPoPAlgorithm, string>();
  const jwkJson = JSON.stringify(jwk);
  const canonical = canonicalJwk(jwk);
  let thumbprint: string | Promise<string> | undefined;
  return {
    alg,
    jwk,
    canonical,
    header(headerAlg) {
      let h = headers.get(headerAlg);
      if (h === undefined) {
        h = base64urlString(`{"typ":"dpop+jwt","alg":"${headerAlg}","jwk":${jwkJson}}`);
        headers.set(headerAlg, h);
      }
      return h;
    },
    sign,
    randomId,
    thumbprint() {
      thumbprint ??= sha256Base64url(canonical);
      return thumbprint;
    },
  };
}

function jwkMatchesAlg(alg: DPoPAlgorithm, jwk: PublicJwk): boolean {
  switch (alg) {
    case 'ES256':
      return jwk.kty === 'EC' && jwk.crv === 'P-256';
    case 'ES384':
      return jwk.kty === 'EC' && jwk.crv === 'P-384';
    case 'ES512':
      return jwk.kty === 'EC' && jwk.crv === 'P-521';
    case 'EdDSA':
    case 'Ed25519':
      return jwk.kty === 'OKP' && jwk.crv === 'Ed25519';
    default:
      return jwk.kty === 'RSA';
  }
}

async function fromCryptoKeyPair(pair: CryptoKeyPair, name: string): Promise<ProofKey> {
  const { privateKey, publicKey } = pair;
  if (
    typeof CryptoKey === 'undefined' ||
    !(privateKey instanceof CryptoKey) ||
    !(publicKey instanceof CryptoKey)
  ) {
    throw invalidType(name, 'a CryptoKeyPair or a DPoPSigner');
  }
  if (privateKey.type !== 'private' || !privateKey.usages.includes('sign')) {
    throw new DPoPClientError(
      'ERR_DPOP_KEY_UNSUPPORTED',
      `"${name}.privateKey" must be a private key with the "sign" usage`,
    );
  }
  if (publicKey.type !== 'public') {
    throw new DPoPClientError(
      'ERR_DPOP_KEY_UNSUPPORTED',
      `"${name}.publicKey" must be a public key`,
    );
  }
  if (!publicKey.extractable) {
    throw new DPoPClientError(
      'ERR_DPOP_KEY_UNSUPPORTED',
      `"${name}.publicKey" must be extractable (it is sent in every proof)`,
    );
  }
  const alg = algorithmOfKey(privateKey);
  if (alg === undefined) {
    throw new DPoPClientError(
      'ERR_DPOP_KEY_UNSUPPORTED',
      `"${name}" uses an algorithm DPoP does not support`,
    );
  }
  const modulus = (privateKey.algorithm as RsaHashedKeyAlgorithm).modulusLength;
  if (alg[0] !== 'E' && modulus < 2048) {
    throw new DPoPClientError(
      'ERR_DPOP_KEY_UNSUPPORTED',
      `"${name}" RSA keys must be at least 2048 bits`,
    );
  }
  const jwk = toPublicJwk(
    (await crypto.subtle.exportKey('jwk', publicKey)) as Record<string, unknown>,
    `${name}.publicKey`,
  );
  return makeProofKey(alg, jwk, (signingInput) => signWithCryptoKey(alg, privateKey, signingInput));
}

function fromSigner(signer: DPoPSigner, name: string): ProofKey {
  if (!isAlgorithm(signer.alg))
    throw invalidValue(`${name}.alg`, 'is not a supported DPoP algorithm');
  if (typeof signer.sign !== 'function') throw invalidType(`${name}.sign`, 'a function');
  if (signer.publicJwk === null || typeof signer.publicJwk !== 'object') {
    throw invalidType(`${name}.publicJwk`, 'a public JWK object');
  }
  const raw = signer.publicJwk as Record<string, unknown>;
  if ('d' in raw || 'p' in raw || 'q' in raw || 'k' in raw) {
    throw invalidValue(`${name}.publicJwk`, 'must not contain private key members');
  }
  const jwk = toPublicJwk(raw, `${name}.publicJwk`);
  const alg = signer.alg;
  if (!jwkMatchesAlg(alg, jwk)) {
    throw invalidValue(`${name}.publicJwk`, `does not match alg ${alg}`);
  }
  const ecSize = EC_SIGNATURE_BYTES[alg];
  const der = signer.signatureEncoding === 'der';
  const sign = async (signingInput: string): Promise<Uint8Array> => {
    let signature: Uint8Array;
    try {
      signature = await signer.sign(utf8(signingInput));
    } catch (cause) {
      throw new DPoPClientError('ERR_DPOP_SIGNER', 'the external signer failed', { cause });
    }
    if (!(signature instanceof Uint8Array)) {
      throw new DPoPClientError('ERR_DPOP_SIGNER', 'the external signer must return a Uint8Array');
    }
    if (ecSize !== undefined) {
      const jose = der ? derToJoseSignature(signature, ecSize) : signature;
      if (jose === undefined || jose.length !== ecSize) {
        throw new DPoPClientError(
          'ERR_DPOP_SIGNER',
          `the external signer returned a malformed ${alg} signature (expected ${der ? 'DER' : `${ecSize} raw bytes`})`,
        );
      }
      return jose;
    }
    return signature;
  };
  const randomBytes = signer.randomBytes;
  if (randomBytes !== undefined && typeof randomBytes !== 'function') {
    throw invalidType(`${name}.randomBytes`, 'a function');
  }
  const randomId =
    randomBytes === undefined
      ? undefined
      : async (): Promise<string> => {
          let bytes: Uint8Array;
          try {
            bytes = await randomBytes.call(signer, 16);
          } catch (cause) {
            throw new DPoPClientError('ERR_DPOP_SIGNER', 'the signer failed to give random bytes', {
              cause,
            });
          }
          if (!(bytes instanceof Uint8Array) || bytes.length !== 16) {
            throw new DPoPClientError(
              'ERR_DPOP_SIGNER',
              'the signer randomBytes(16) must return 16 bytes in a Uint8Array',
            );
          }
          return encodeBase64url(bytes);
        };
  return makeProofKey(alg, jwk, sign, randomId);
}

function isSigner(key: DPoPKey): key is DPoPSigner {
  return typeof (key as DPoPSigner).sign === 'function';
}

/**
 * Resolves a key pair or signer into its cached {@link ProofKey}. The first call per key
 * exports the public JWK; later calls are a WeakMap lookup. @internal
 */
export function resolveProofKey(key: DPoPKey, name = 'key'): Promise<ProofKey> {
  if (key === null || typeof key !== 'object') {
    throw invalidType(name, 'a CryptoKeyPair or a DPoPSigner');
  }
  const id: object = isSigner(key) ? key : (key.publicKey ?? key);
  let entry = cache.get(id);
  if (entry === undefined) {
    entry = isSigner(key)
      ? Promise.resolve().then(() => fromSigner(key, name))
      : fromCryptoKeyPair(key, name);
    cache.set(id, entry);
    entry.catch(() => cache.delete(id));
  }
  return entry;
}

/**
 * RFC 7638 thumbprint (`jkt`) of a key pair, a signer, or a public JWK: the value of `cnf.jkt` in
 * bound tokens and of `dpop_jkt` in authorization requests (RFC 9449 §10).
 *
 * @example
 * ```ts
 * const url = new URL('https://as.example/authorize');
 * url.searchParams.set('dpop_jkt', await thumbprint(keyPair));
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc7638
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-10
 */
export async function thumbprint(
  key: DPoPKey | PublicJwk | Record<string, unknown>,
): Promise<string> {
  if (key !== null && typeof key === 'object' && 'kty' in key) {
    const jwk = toPublicJwk(key as Record<string, unknown>, 'key');
    return sha256Base64url(canonicalJwk(jwk));
  }
  return (await resolveProofKey(key as DPoPKey)).thumbprint();
}

/** The public JWK of a key pair or signer (public members only). */
export async function publicJwk(key: DPoPKey): Promise<PublicJwk> {
  return { ...(await resolveProofKey(key)).jwk };
}
