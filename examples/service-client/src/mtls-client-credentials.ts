// A Node service that authenticates with its client certificate from a .p12 file
// (tls_client_auth) and gets a certificate-bound access token (RFC 8705).
// Run: pnpm --filter @popkit/example-service-client mtls  (with the AS and RS examples running)
import type { MtlsFetch } from '@popkit/mtls-binding/node';
import { createMtlsFetch } from '@popkit/mtls-binding/node';

export interface MtlsServiceOptions {
  tokenEndpoint: string;
  clientId: string;
  resource: string;
  scope?: string;
  p12: Uint8Array;
  password: string;
  caPem: string;
}

export interface MtlsServiceSession {
  accessToken: string;
  /** Presents the same certificate on every call; `thumbprint` is the token's `cnf["x5t#S256"]`. */
  mtlsFetch: MtlsFetch;
}

export async function getCertificateBoundToken(
  options: MtlsServiceOptions,
): Promise<MtlsServiceSession> {
  const mtlsFetch = await createMtlsFetch(
    { pfx: options.p12, passphrase: options.password },
    { ca: options.caPem },
  );
  const response = await mtlsFetch(options.tokenEndpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: options.clientId,
      resource: options.resource,
      ...(options.scope ? { scope: options.scope } : {}),
    }).toString(),
  });
  const body = (await response.json()) as {
    access_token?: string;
    error?: string;
    error_description?: string;
  };
  if (!response.ok || !body.access_token)
    throw new Error(
      `token request failed: ${response.status} ${body.error ?? ''} ${body.error_description ?? ''}`,
    );
  return { accessToken: body.access_token, mtlsFetch };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { fileURLToPath } = await import('node:url');
  const { ensureDemoPki } = await import('@popkit/example-shared/pki');
  const pki = await ensureDemoPki(fileURLToPath(new URL('../../.pki', import.meta.url)));
  const issuer = process.env.ISSUER ?? 'https://127.0.0.1:8443';
  const api = process.env.API ?? 'https://127.0.0.1:9443';
  const session = await getCertificateBoundToken({
    tokenEndpoint: `${issuer}/token`,
    clientId: 'service-mtls',
    resource: api,
    p12: pki.serviceP12,
    password: pki.serviceP12Password,
    caPem: pki.caPem,
  });
  console.log(`certificate thumbprint ${session.mtlsFetch.thumbprint}`);
  const res = await session.mtlsFetch(`${api}/api/orders`, {
    headers: { authorization: `Bearer ${session.accessToken}` },
  });
  console.log(res.status, await res.text());
  await session.mtlsFetch.close();
}
