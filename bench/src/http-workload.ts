// The HTTP benchmarks' shared workload: an authorization server key (its JWKS goes to every
// server), a DPoP-bound access token, and the client key that makes one fresh proof per request.
import { fileURLToPath } from 'node:url';
import { createProof, generateKeyPair, thumbprint } from '@popkit/dpop-client';
import { SignJWT, exportJWK, generateKeyPair as joseKeyPair } from 'jose';

/** The servers under test (`http-server.ts`): Express alone, plus one raw verify, popkit, the peer, jose. */
export const HTTP_MODES = ['none', 'verify', 'popkit', 'peer', 'jose'] as const;
export type HttpMode = (typeof HTTP_MODES)[number];

/** The public URL the servers are configured with (the peer derives htu from `Host` instead). */
export const PUBLIC_URL = 'http://127.0.0.1';
/** The server script, run as a child process per mode. */
export const SERVER_SCRIPT = fileURLToPath(new URL('./http-server.ts', import.meta.url));

export const HTTP_NAMES: Record<HttpMode, string> = {
  none: '[ceiling] Express, no auth (same request headers)',
  verify: '[limit] Express + one raw node:crypto ES256 verify',
  popkit: 'Express + popkit dpopAuth (JWT + DPoP + replay)',
  peer: 'Express + express-oauth2-jwt-bearer (JWT + DPoP, no replay)',
  jose: 'Express + naive jose DPoP check (no replay)',
};

export interface HttpWorkload {
  jwks: { keys: Record<string, unknown>[] };
  token: string;
  client: CryptoKeyPair;
  /** A fresh proof for `GET {path}` (default `/api/orders`) on a server of this mode on `port`. */
  proof(mode: HttpMode, port: number, path?: string): Promise<string>;
}

export async function createHttpWorkload(): Promise<HttpWorkload> {
  const as = await joseKeyPair('ES256');
  const jwks = { keys: [{ ...(await exportJWK(as.publicKey)), kid: 'k', alg: 'ES256' }] };
  const client = await generateKeyPair('ES256');
  const token = await new SignJWT({ cnf: { jkt: await thumbprint(client) } })
    .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'k' })
    .setIssuer('https://as')
    .setAudience('https://rs')
    .setExpirationTime('1h')
    .sign(as.privateKey);
  return {
    jwks,
    token,
    client,
    // htu as each server sees itself: the peer derives it from the Host header, port included
    proof: (mode, port, path = '/api/orders') =>
      createProof(client, {
        method: 'GET',
        url: `${mode === 'peer' ? `http://127.0.0.1:${port}` : PUBLIC_URL}${path}`,
        accessToken: token,
      }),
  };
}
