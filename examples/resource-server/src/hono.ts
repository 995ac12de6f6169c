// The same API on Hono (runs on Node, Workers, Deno, Bun: Web-standard Request in, Response out).
import { dpopAuth } from '@popkit/dpop-verifier/hono';
import type { DPoPAuthEnv } from '@popkit/dpop-verifier/hono';
import { Hono } from 'hono';
import type { ApiAuth } from './options.ts';

export function createHonoApi(auth: ApiAuth): Hono<DPoPAuthEnv> {
  const app = new Hono<DPoPAuthEnv>();
  app.get('/metrics', async (c) => c.text(await auth.metrics.render()));
  app.use('/api/*', dpopAuth(auth.options));
  app.get('/api/orders', (c) =>
    c.json({
      owner: c.get('auth').claims.sub ?? c.get('auth').claims.client_id,
      scheme: c.get('auth').scheme,
    }),
  );
  return app;
}
