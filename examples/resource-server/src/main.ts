// `pnpm --filter @popkit/example-resource-server start`: the Express API until Ctrl-C.
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { ensureDemoPki } from '@popkit/example-shared/pki';
import { fetchTrusting } from '@popkit/example-shared/tls';
import { startApi } from './express.ts';
import { buildAuthOptions } from './options.ts';

const pki = await ensureDemoPki(fileURLToPath(new URL('../../.pki', import.meta.url)));
const port = Number(process.env.PORT ?? 9443);
const publicUrl = process.env.PUBLIC_URL ?? `https://127.0.0.1:${port}`;
const auth = buildAuthOptions({
  issuer: process.env.ISSUER ?? 'https://127.0.0.1:8443',
  audience: process.env.AUDIENCE ?? publicUrl,
  publicUrl,
  fetch: fetchTrusting(pki.caPem),
  nonceSecret: process.env.NONCE_SECRET ?? randomBytes(32).toString('base64url'),
});
const api = await startApi(
  auth,
  { keyPem: pki.server.keyPem, certPem: pki.server.certPem, caPem: pki.caPem },
  port,
);
console.log(`resource server: ${api.url}/api/orders  (metrics: ${api.url}/metrics)`);
