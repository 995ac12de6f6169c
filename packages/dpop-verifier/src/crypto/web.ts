import type { ProofAlgorithm } from '../algorithms.ts';

/** @internal */
export const backend = 'web' as const;

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const DECODE = new Uint8Array(128);
for (let i = 0; i < 64; i++) DECODE[ALPHABET.charCodeAt(i)] = i;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function encode(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const v = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out +=
      ALPHABET[v >> 18]! + ALPHABET[(v >> 12) & 63]! + ALPHABET[(v >> 6) & 63]! + ALPHABET[v & 63]!;
  }
  const rest = bytes.length - i;
  if (rest > 0) {
    const v = (bytes[i]! << 16) | ((rest > 1 ? bytes[i + 1]! : 0) << 8);
    out +=
      ALPHABET[v >> 18]! + ALPHABET[(v >> 12) & 63]! + (rest > 1 ? ALPHABET[(v >> 6) & 63]! : '');
  }
  return out;
}

/** @internal */
export function decodeBase64url(segment: string): Uint8Array {
  const out = new Uint8Array(Math.floor((segment.length * 3) / 4));
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < segment.length; i++) {
    acc = ((acc << 6) | DECODE[segment.charCodeAt(i) & 127]!) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  return out;
}

/** @internal */
export function decodeBase64urlText(segment: string): string {
  return decoder.decode(decodeBase64url(segment));
}

function paramsOf(alg: ProofAlgorithm): { importParams: Algorithm; verifyParams: Algorithm } {
  const bits = alg.slice(2);
  const hash = `SHA-${bits === '384' || bits === '512' ? bits : '256'}`;
  switch (alg) {
    case 'ES256':
    case 'ES384':
    case 'ES512': {
      const namedCurve = alg === 'ES256' ? 'P-256' : alg === 'ES384' ? 'P-384' : 'P-521';
      return {
        importParams: { name: 'ECDSA', namedCurve } as EcKeyImportParams,
        verifyParams: { name: 'ECDSA', hash } as EcdsaParams,
      };
    }
    case 'EdDSA':
    case 'Ed25519':
      return { importParams: { name: 'Ed25519' }, verifyParams: { name: 'Ed25519' } };
    default: {
      const name = alg.startsWith('PS') ? 'RSA-PSS' : 'RSASSA-PKCS1-v1_5';
      return {
        importParams: { name, hash } as RsaHashedImportParams,
        verifyParams: (name === 'RSA-PSS'
          ? { name, saltLength: Number(bits) / 8 }
          : { name }) as Algorithm,
      };
    }
  }
}

/** The WebCrypto parameters per algorithm, built once (a verify allocates none). */
const PARAMS = new Map<string, { importParams: Algorithm; verifyParams: Algorithm }>();
function params(alg: ProofAlgorithm): { importParams: Algorithm; verifyParams: Algorithm } {
  let found = PARAMS.get(alg);
  if (found === undefined) {
    found = paramsOf(alg);
    PARAMS.set(alg, found);
  }
  return found;
}

/**
 * The signing input as bytes, in one buffer reused across calls: `crypto.subtle.verify` copies
 * its data argument when it is called (WebCrypto: "get a copy of the bytes held by"), so the
 * next call may overwrite it. The input is ASCII (base64url and a dot).
 */
let scratch = new Uint8Array(4096);
function signingBytes(input: string): Uint8Array {
  if (input.length > scratch.length) scratch = new Uint8Array(input.length * 2);
  const { written } = encoder.encodeInto(input, scratch);
  return scratch.subarray(0, written);
}

/** @internal */
export function importPublicJwk(
  alg: ProofAlgorithm,
  jwk: Record<string, string>,
): Promise<CryptoKey> {
  return crypto.subtle.importKey(
    'jwk',
    { ...jwk, ext: true } as JsonWebKey,
    params(alg).importParams,
    false,
    ['verify'],
  );
}

/** @internal */
export function verifySignature(
  alg: ProofAlgorithm,
  key: unknown,
  signingInput: string,
  signature: Uint8Array,
): Promise<boolean> {
  return crypto.subtle.verify(
    params(alg).verifyParams,
    key as CryptoKey,
    signature as BufferSource,
    signingBytes(signingInput) as BufferSource,
  );
}

/** @internal */
export async function sha256Base64url(text: string): Promise<string> {
  return encode(
    new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(text) as BufferSource)),
  );
}

const hmacKeys = new WeakMap<Uint8Array, Promise<CryptoKey>>();

/** @internal */
export async function hmacSha256Base64url(key: Uint8Array, data: string): Promise<string> {
  let cryptoKey = hmacKeys.get(key);
  if (cryptoKey === undefined) {
    cryptoKey = crypto.subtle.importKey(
      'raw',
      key as BufferSource,
      { name: 'HMAC', hash: 'SHA-256' },
      false,
      ['sign'],
    );
    hmacKeys.set(key, cryptoKey);
  }
  return encode(
    new Uint8Array(
      await crypto.subtle.sign('HMAC', await cryptoKey, encoder.encode(data) as BufferSource),
    ),
  );
}
