import { invalidValue } from './errors.ts';

/** A public JSON Web Key (RFC 7517) of a kind DPoP uses: EC, OKP (Ed25519) or RSA. */
export interface PublicJwk {
  kty: 'EC' | 'OKP' | 'RSA';
  crv?: string;
  x?: string;
  y?: string;
  n?: string;
  e?: string;
}

const REQUIRED: Record<string, readonly string[]> = {
  EC: ['crv', 'kty', 'x', 'y'],
  OKP: ['crv', 'kty', 'x'],
  RSA: ['e', 'kty', 'n'],
};

/**
 * Copies only the public, required members of a JWK (RFC 7638 §3.2), dropping `d`, `p`, `key_ops`,
 * `ext`, `alg` and anything else. Throws if a required member is missing.
 * @internal
 */
export function toPublicJwk(jwk: Record<string, unknown>, name = 'jwk'): PublicJwk {
  const members = typeof jwk?.kty === 'string' ? REQUIRED[jwk.kty] : undefined;
  if (!members) throw invalidValue(name, 'must be an EC, OKP or RSA public JWK');
  const out: Record<string, string> = {};
  for (const m of members) {
    const v = jwk[m];
    if (typeof v !== 'string' || v.length === 0) throw invalidValue(name, `is missing "${m}"`);
    out[m] = v;
  }
  return out as unknown as PublicJwk;
}

/**
 * The RFC 7638 canonical JSON of a public JWK: required members only, in lexicographic order,
 * no whitespace. @internal
 */
export function canonicalJwk(jwk: PublicJwk): string {
  switch (jwk.kty) {
    case 'EC':
      return `{"crv":${JSON.stringify(jwk.crv)},"kty":"EC","x":${JSON.stringify(jwk.x)},"y":${JSON.stringify(jwk.y)}}`;
    case 'OKP':
      return `{"crv":${JSON.stringify(jwk.crv)},"kty":"OKP","x":${JSON.stringify(jwk.x)}}`;
    default:
      return `{"e":${JSON.stringify(jwk.e)},"kty":"RSA","n":${JSON.stringify(jwk.n)}}`;
  }
}
