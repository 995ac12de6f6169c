import { generateKeyPairSync, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { createProof, generateKeyPair, thumbprint } from '@popkit/dpop-client';

export const URL_ = 'https://api.example.com/orders';
export const NOW = 1_750_000_000_000;
export const nowSec = NOW / 1000;

const b64 = (v: string | Buffer) => Buffer.from(v).toString('base64url');

/** A node:crypto key pair plus a raw JWS builder, to craft any (mis)formed proof. */
export function rawKey(kind: 'P-256' | 'Ed25519' | 'RSA-2048' | 'RSA-1024' = 'P-256') {
  const pair =
    kind === 'P-256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : kind === 'Ed25519'
        ? generateKeyPairSync('ed25519')
        : generateKeyPairSync('rsa', { modulusLength: kind === 'RSA-1024' ? 1024 : 2048 });
  const jwk = pair.publicKey.export({ format: 'jwk' }) as Record<string, string>;
  const alg = kind === 'P-256' ? 'ES256' : kind === 'Ed25519' ? 'EdDSA' : 'RS256';
  return {
    jwk,
    alg,
    privateKey: pair.privateKey as KeyObject,
    /** Signs any header and payload objects (or raw strings) as a compact JWS. */
    jws(header: object | string, payload: object | string, signAlg = alg): string {
      const h = typeof header === 'string' ? header : b64(JSON.stringify(header));
      const p = typeof payload === 'string' ? payload : b64(JSON.stringify(payload));
      const input = `${h}.${p}`;
      const signature =
        signAlg === 'EdDSA' || signAlg === 'Ed25519'
          ? sign(null, Buffer.from(input), pair.privateKey)
          : sign(
              'sha256',
              Buffer.from(input),
              signAlg.startsWith('ES')
                ? { key: pair.privateKey, dsaEncoding: 'ieee-p1363' }
                : pair.privateKey,
            );
      return `${input}.${b64(signature)}`;
    },
    header(extra: object = {}) {
      return { typ: 'dpop+jwt', alg, jwk, ...extra };
    },
    claims(extra: object = {}) {
      return {
        htm: 'GET',
        htu: URL_,
        iat: Math.floor(nowSec),
        jti: `jti-${Math.random().toString(36).slice(2)}`,
        ...extra,
      };
    },
  };
}

/** A popkit client key and a proof factory with a fixed clock. */
export async function clientKey(alg: Parameters<typeof generateKeyPair>[0] = 'ES256') {
  const keyPair = await generateKeyPair(alg);
  const jkt = await thumbprint(keyPair);
  return {
    keyPair,
    jkt,
    proof: (
      request: Partial<Parameters<typeof createProof>[1]> = {},
      options: Parameters<typeof createProof>[2] = {},
    ) =>
      createProof(
        keyPair,
        { method: 'GET', url: URL_, ...request },
        { iat: Math.floor(nowSec), ...options },
      ),
  };
}

export const ISSUER = 'https://as.example.com';
export const AUDIENCE = 'https://api.example.com';

/** A stand-in authorization server: an ES256 signing key, its JWKS, and an RFC 9068 token minter. */
export async function testIssuer() {
  const { SignJWT, exportJWK, generateKeyPair: joseKeyPair } = await import('jose');
  const pair = await joseKeyPair('ES256');
  const jwks = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'as-1', alg: 'ES256' }] };
  return {
    jwks,
    signingKey: pair.privateKey,
    mint(claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}) {
      return new SignJWT({ client_id: 'c1', scope: 'read', ...claims })
        .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'as-1', ...header })
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setSubject('user-1')
        .setIssuedAt()
        .setJti(crypto.randomUUID())
        .setExpirationTime('5m')
        .sign(pair.privateKey);
    },
  };
}
