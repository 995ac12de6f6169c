// `pnpm --filter @popkit/example-authorization-server start`: runs the AS until Ctrl-C.
import { fileURLToPath } from 'node:url';
import { ensureDemoPki } from '@popkit/example-shared/pki';
import { startAuthorizationServer } from './provider.ts';

const pki = await ensureDemoPki(fileURLToPath(new URL('../../.pki', import.meta.url)));
const as = await startAuthorizationServer({
  pki,
  resource: process.env.RESOURCE ?? 'https://127.0.0.1:9443',
  spaRedirectUris: [process.env.SPA_REDIRECT ?? 'http://127.0.0.1:5173/'],
  port: Number(process.env.PORT ?? 8443),
});
console.log(
  `authorization server: ${as.issuer}/.well-known/openid-configuration (CA: ${pki.dir}/ca.pem)`,
);
