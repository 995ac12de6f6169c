// The same API on Fastify 5.
import { dpopAuthPlugin } from '@popkit/dpop-verifier/fastify';
import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import type { ApiAuth } from './options.ts';

export async function createFastifyApi(
  auth: ApiAuth,
  https: { key: string; cert: string; ca: string },
): Promise<FastifyInstance> {
  const app = Fastify({ https: { ...https, requestCert: true, rejectUnauthorized: false } });
  app.get('/metrics', async (_request, reply) =>
    reply.type('text/plain; version=0.0.4').send(await auth.metrics.render()),
  );
  await app.register(
    async (api) => {
      await api.register(dpopAuthPlugin, auth.options);
      api.get('/orders', async (request) => ({
        owner: request.auth!.claims.sub ?? request.auth!.claims.client_id,
        scheme: request.auth!.scheme,
      }));
    },
    { prefix: '/api' },
  );
  return app;
}
