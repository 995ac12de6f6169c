// The library path for authorization-server authors: a minimal token endpoint (client
// credentials) that checks DPoP proofs with @popkit/dpop-verifier's token-request verifier and
// issues RFC 9068 access tokens bound to the proof key (cnf.jkt). No oidc-provider involved.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  DPoPError,
  MemoryReplayStore,
  createNonceIssuer,
  createTokenRequestVerifier,
} from '@popkit/dpop-verifier';
import { toRequestLike } from '@popkit/dpop-verifier/express';
import express from 'express';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';

export interface MinimalAuthorizationServer {
  issuer: string;
  jwks: { keys: object[] };
  close(): Promise<void>;
}

/** Starts the minimal AS on http://127.0.0.1:<port> with one confidential client. */
export async function startMinimalAuthorizationServer(options: {
  client: { id: string; secret: string };
  audience: string;
}): Promise<MinimalAuthorizationServer> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwks = {
    keys: [{ ...(await exportJWK(publicKey)), kid: 'minimal-1', alg: 'ES256', use: 'sig' }],
  };
  const app = express();
  const server: Server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  // Built once: options are validated here, the key cache lives inside.
  const checkDPoP = createTokenRequestVerifier({
    tokenEndpoint: `${issuer}/token`,
    replay: new MemoryReplayStore(),
    nonces: createNonceIssuer({ secret: randomBytes(32) }),
    required: false, // clients without DPoP get Bearer tokens
  });

  const clientAuthenticated = (header: string | undefined): boolean => {
    const expected = Buffer.from(`Basic ${btoa(`${options.client.id}:${options.client.secret}`)}`);
    const given = Buffer.from(header ?? '');
    return given.length === expected.length && timingSafeEqual(given, expected);
  };

  app.get('/jwks', (_req, res) => res.json(jwks));
  app.post('/token', express.urlencoded({ extended: false }), async (req, res) => {
    res.set('Cache-Control', 'no-store');
    // The safe order (two-phase): 1. check the proof, recording nothing; 2. authenticate the
    // client; 3. validate the grant; 4. commit the proof's jti; 5. issue. Failed or anonymous
    // requests never fill the replay store, and never burn a legitimate client's jti.
    let dpop: Awaited<ReturnType<typeof checkDPoP.prepare>>;
    try {
      dpop = await checkDPoP.prepare(toRequestLike(req));
      if (!clientAuthenticated(req.headers.authorization))
        return void res.status(401).json({ error: 'invalid_client' });
      if (req.body.grant_type !== 'client_credentials')
        return void res.status(400).json({ error: 'unsupported_grant_type' });
      await dpop?.commit();
    } catch (error) {
      if (!(error instanceof DPoPError)) throw error;
      // 400 {"error":"invalid_dpop_proof" | "use_dpop_nonce"} with DPoP-Nonce (RFC 9449 §5, §8)
      return void res.status(error.status).set(error.headers).send(error.body);
    }
    const accessToken = await new SignJWT({
      client_id: options.client.id,
      scope: 'orders:read',
      ...(dpop ? { cnf: { jkt: dpop.jkt } } : {}),
    })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'minimal-1' })
      .setIssuer(issuer)
      .setAudience(options.audience)
      .setSubject(options.client.id)
      .setIssuedAt()
      .setJti(randomBytes(16).toString('base64url'))
      .setExpirationTime('5m')
      .sign(privateKey);
    res
      .set(dpop?.headers ?? {})
      .json({ access_token: accessToken, token_type: dpop ? 'DPoP' : 'Bearer', expires_in: 300 });
  });
  return { issuer, jwks, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
