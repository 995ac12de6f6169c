// A Node service that gets a DPoP-bound access token with client_credentials and calls the API.
// Run: pnpm --filter @popkit/example-service-client dpop  (with the AS and RS examples running)
import { createDPoPFetch, generateKeyPair } from '@popkit/dpop-client';
import type { DPoPFetch, DPoPFetchEvent, DPoPKey, FetchLike } from '@popkit/dpop-client';

export interface DPoPServiceOptions {
  tokenEndpoint: string;
  clientId: string;
  clientSecret: string;
  /** RFC 8707 resource indicator of the API. */
  resource: string;
  scope?: string;
  /** The underlying fetch (e.g. one that trusts a private CA). */
  fetch?: FetchLike;
  key?: DPoPKey;
  onEvent?: (event: DPoPFetchEvent) => void;
}

export interface DPoPServiceSession {
  accessToken: string;
  tokenType: string;
  key: DPoPKey;
  /** Signs every call with the same key; nonces and the single retry are handled. */
  dpopFetch: DPoPFetch;
}

/** client_credentials with DPoP (RFC 9449 §5): the token comes back bound to the key (`cnf.jkt`). */
export async function getDPoPServiceToken(
  options: DPoPServiceOptions,
): Promise<DPoPServiceSession> {
  const key = options.key ?? (await generateKeyPair('ES256'));
  const dpopFetch = createDPoPFetch(key, {
    ...(options.fetch ? { fetch: options.fetch } : {}),
    ...(options.onEvent ? { onEvent: options.onEvent } : {}),
  });
  const response = await dpopFetch(options.tokenEndpoint, {
    method: 'POST',
    headers: {
      authorization: `Basic ${btoa(`${encodeURIComponent(options.clientId)}:${encodeURIComponent(options.clientSecret)}`)}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      resource: options.resource,
      ...(options.scope ? { scope: options.scope } : {}),
    }),
  });
  const body = (await response.json()) as {
    access_token?: string;
    token_type?: string;
    error?: string;
  };
  if (!response.ok || !body.access_token)
    throw new Error(
      `token request failed: ${response.status} ${body.error ?? ''} ${(body as { error_description?: string }).error_description ?? ''}`,
    );
  return { accessToken: body.access_token, tokenType: body.token_type ?? '', key, dpopFetch };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { fileURLToPath } = await import('node:url');
  const { ensureDemoPki } = await import('@popkit/example-shared/pki');
  const { fetchTrusting } = await import('@popkit/example-shared/tls');
  const pki = await ensureDemoPki(fileURLToPath(new URL('../../.pki', import.meta.url)));
  const issuer = process.env.ISSUER ?? 'https://127.0.0.1:8443';
  const api = process.env.API ?? 'https://127.0.0.1:9443';
  const session = await getDPoPServiceToken({
    tokenEndpoint: `${issuer}/token`,
    clientId: 'service',
    clientSecret: 'service-secret-do-not-use-in-production',
    resource: api,
    scope: 'orders:read',
    fetch: fetchTrusting(pki.caPem),
    onEvent: (e) => console.log('dpop:', e),
  });
  console.log(`token_type ${session.tokenType}`);
  const res = await session.dpopFetch(`${api}/api/orders`, { accessToken: session.accessToken });
  console.log(res.status, await res.text());
}
