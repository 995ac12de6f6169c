import type { ProofAlgorithm } from './algorithms.ts';

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
const B64U = /^[A-Za-z0-9_-]+$/;
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** Expected base64url length of an EC/OKP coordinate per curve (RFC 7518 §6.2.1.2, RFC 8037). */
const COORDINATE_LENGTH: Record<string, number> = {
  'P-256': 43,
  'P-384': 64,
  'P-521': 88,
  Ed25519: 43,
};
const CURVE_OF: Partial<Record<ProofAlgorithm, string>> = {
  ES256: 'P-256',
  ES384: 'P-384',
  ES512: 'P-521',
  EdDSA: 'Ed25519',
  Ed25519: 'Ed25519',
};

/** Minimum RSA modulus (RFC 9449 does not set one; NIST SP 800-131A does). */
export const MIN_RSA_BITS = 2048;
/** The only RSA public exponent accepted: 65537 (larger ones only make verification slower). */
const RSA_EXPONENT = 'AQAB';

/**
 * Checks the `jwk` header parameter of a proof (RFC 9449 §4.3 check 7): an object holding a
 * public key only, of the key type and curve `alg` requires, with well-formed members. Returns
 * the public members in RFC 7638 canonical JSON and as an object, or a reason string.
 * @internal
 */
export function checkProofJwk(
  alg: ProofAlgorithm,
  jwk: unknown,
  maxRsaBits = 4096,
): { canonical: string; members: Record<string, string> } | string {
  if (jwk === null || typeof jwk !== 'object' || Array.isArray(jwk))
    return 'the jwk header must be a JSON object';
  const k = jwk as Record<string, unknown>;
  for (const member of PRIVATE_MEMBERS) {
    if (member in k) return 'the jwk header must not contain private key material';
  }
  if (k.use !== undefined && k.use !== 'sig') return 'the jwk "use" must be "sig"';
  if (
    k.alg !== undefined &&
    k.alg !== alg &&
    !(alg === 'Ed25519' && k.alg === 'EdDSA') &&
    !(alg === 'EdDSA' && k.alg === 'Ed25519')
  ) {
    return 'the jwk "alg" does not match the header alg';
  }
  const curve = CURVE_OF[alg];
  if (curve !== undefined) {
    const isOkp = curve === 'Ed25519';
    if (k.kty !== (isOkp ? 'OKP' : 'EC') || k.crv !== curve)
      return `the jwk must be an ${curve} key for ${alg}`;
    const len = COORDINATE_LENGTH[curve]!;
    if (typeof k.x !== 'string' || k.x.length !== len || !B64U.test(k.x))
      return 'the jwk "x" is malformed';
    if (isOkp) {
      return {
        canonical: `{"crv":"${curve}","kty":"OKP","x":"${k.x}"}`,
        members: { kty: 'OKP', crv: curve, x: k.x },
      };
    }
    if (typeof k.y !== 'string' || k.y.length !== len || !B64U.test(k.y))
      return 'the jwk "y" is malformed';
    return {
      canonical: `{"crv":"${curve}","kty":"EC","x":"${k.x}","y":"${k.y}"}`,
      members: { kty: 'EC', crv: curve, x: k.x, y: k.y },
    };
  }
  if (k.kty !== 'RSA') return `the jwk must be an RSA key for ${alg}`;
  const { n, e } = k;
  if (typeof n !== 'string' || !B64U.test(n) || n.length > Math.ceil((maxRsaBits / 8) * (4 / 3))) {
    return `the jwk "n" is malformed or longer than ${maxRsaBits} bits`;
  }
  if (e !== RSA_EXPONENT) return 'the jwk "e" must be 65537 (AQAB)';
  // Bits of the modulus: whole base64url characters, minus the leading zero bits of the first byte.
  const bytes = Math.floor((n.length * 6) / 8);
  const firstByte = (ALPHABET.indexOf(n[0]!) << 2) | (ALPHABET.indexOf(n[1] ?? 'A') >> 4);
  if (firstByte === 0) return 'the jwk "n" has a leading zero';
  const bits = (bytes - 1) * 8 + (32 - Math.clz32(firstByte));
  if (bits < MIN_RSA_BITS || bits > maxRsaBits)
    return `RSA keys must have ${MIN_RSA_BITS} to ${maxRsaBits} bits`;
  return { canonical: `{"e":"${e}","kty":"RSA","n":"${n}"}`, members: { kty: 'RSA', n, e } };
}
