// The HTTP benchmark target, run as a child process (its own core): the example-style Express
// API with popkit's middleware, with a naive jose-based DPoP check, or with no auth at all.
import { createHash } from 'node:crypto';
import { MemoryReplayStore } from '@popkit/dpop-verifier';
import { dpopAuth } from '@popkit/dpop-verifier/express';
import express from 'express';
import { EmbeddedJWK, calculateJwkThumbprint, createLocalJWKSet, jwtVerify } from 'jose';

const mode = process.argv[2] as 'popkit' | 'jose' | 'none';
const jwks = JSON.parse(process.argv[3]!);
const publicUrl = process.argv[4]!;
const app = express();
app.disable('x-powered-by');
if (mode === 'popkit') {
  app.use(
    dpopAuth({
      accessToken: { issuer: 'https://as', audience: 'https://rs', jwks, algorithms: ['ES256'] },
      publicUrl,
      // the default store: one busy key is served without any per-key cap
      replay: new MemoryReplayStore(),
    }),
  );
} else if (mode === 'jose') {
  // What many apps hand-roll: jose for both JWTs, the minimal claim checks, no replay store.
  const keySet = createLocalJWKSet(jwks);
  app.use(async (req, res, next) => {
    try {
      const token = req.headers.authorization!.slice(5);
      const { payload: claims } = await jwtVerify(token, keySet, {
        issuer: 'https://as',
        audience: 'https://rs',
        typ: 'at+jwt',
      });
      const { payload, protectedHeader } = await jwtVerify(
        req.headers.dpop as string,
        EmbeddedJWK,
        { typ: 'dpop+jwt', algorithms: ['ES256'], maxTokenAge: 60 },
      );
      if (payload.htm !== req.method || payload.htu !== `${publicUrl}${req.path}`)
        throw new Error('htm/htu');
      if (payload.ath !== createHash('sha256').update(token).digest('base64url'))
        throw new Error('ath');
      if (
        (claims.cnf as { jkt: string }).jkt !== (await calculateJwkThumbprint(protectedHeader.jwk!))
      )
        throw new Error('jkt');
      next();
    } catch {
      res.status(401).end();
    }
  });
}
app.get('/api/orders', (_req, res) => res.json({ orders: [1, 2, 3] }));
const server = app.listen(0, '127.0.0.1', () =>
  process.send!({ port: (server.address() as { port: number }).port }),
);
