// The example API on Express, protected by @popkit/dpop-verifier.
import { createServer } from 'node:https';
import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { DPOP_CORS_ALLOW_HEADERS, DPOP_CORS_EXPOSE_HEADERS } from '@popkit/dpop-verifier';
import { dpopAuth } from '@popkit/dpop-verifier/express';
import cors from 'cors';
import express from 'express';
import type { ApiAuth } from './options.ts';

/** The API routes: CORS for the browser app, /metrics, and the protected /api. */
export function createApi(auth: ApiAuth): express.Express {
  const app = express();
  app.disable('x-powered-by');
  // Browser clients on other origins: tokens travel in the Authorization header, never in
  // cookies, so any origin may call; popkit's lists allow DPoP and expose the nonce and errors.
  app.use(
    cors({
      origin: '*',
      allowedHeaders: [...DPOP_CORS_ALLOW_HEADERS],
      exposedHeaders: [...DPOP_CORS_EXPOSE_HEADERS],
    }),
  );
  app.get('/metrics', async (_req, res) => {
    res.type('text/plain; version=0.0.4').send(await auth.metrics.render());
  });
  app.use('/api', dpopAuth(auth.options));
  app.get('/api/orders', (req, res) => {
    res.json({
      owner: req.auth!.claims.sub ?? req.auth!.claims.client_id,
      scheme: req.auth!.scheme,
      orders: [{ id: 1, item: 'coffee' }],
    });
  });
  app.post('/api/orders', express.json(), (req, res) =>
    res.status(201).json({ created: req.body, by: req.auth!.claims.client_id }),
  );
  app.get('/api/admin', (_req, res) => res.json({ admin: true }));
  return app;
}

export interface RunningApi {
  url: string;
  server: Server;
  close(): Promise<void>;
}

/** Serves the API over HTTPS, asking for (not requiring) client certificates. */
export async function startApi(
  auth: ApiAuth,
  tls: { keyPem: string; certPem: string; caPem: string },
  port = 0,
): Promise<RunningApi> {
  const server = createServer(
    {
      key: tls.keyPem,
      cert: tls.certPem,
      ca: [tls.caPem],
      requestCert: true,
      rejectUnauthorized: false,
    },
    createApi(auth),
  );
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    server,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
