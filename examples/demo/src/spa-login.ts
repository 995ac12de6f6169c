// The authorization code flow of the SPA client, scripted from Node against oidc-provider's
// development login page: PKCE, dpop_jkt (RFC 9449 §10), and a DPoP-bound code exchange.
import { createHash, randomBytes } from 'node:crypto';
import type { DPoPKey, FetchLike } from '@popkit/dpop-client';
import { createDPoPFetch, thumbprint } from '@popkit/dpop-client';

export interface SpaTokens {
  accessToken: string;
  refreshToken: string;
}

/** Logs in as `user` through the AS's login form and exchanges the code with DPoP. */
export async function spaLogin(options: {
  issuer: string;
  clientId: string;
  redirectUri: string;
  resource: string;
  key: DPoPKey;
  fetch: FetchLike;
  user?: string;
}): Promise<SpaTokens> {
  const cookies = new Map<string, string>();
  const send = async (url: string, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    if (cookies.size) headers.set('cookie', [...cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    const res = await options.fetch(url, { ...init, headers, redirect: 'manual' });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      cookies.set(pair!.slice(0, eq), pair!.slice(eq + 1));
    }
    return res;
  };
  const verifier = randomBytes(32).toString('base64url');
  const authorize = new URL(`${options.issuer}/auth`);
  authorize.search = new URLSearchParams({
    client_id: options.clientId,
    response_type: 'code',
    redirect_uri: options.redirectUri,
    scope: 'openid orders:read',
    resource: options.resource,
    state: randomBytes(8).toString('hex'),
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    dpop_jkt: await thumbprint(options.key),
  }).toString();

  let location = (await send(authorize.href)).headers.get('location');
  for (let hop = 0; hop < 6 && location && !location.startsWith(options.redirectUri); hop++) {
    const url = new URL(location, options.issuer).href;
    if (/\/interaction\/[^/]+$/.test(url)) {
      // the development login page, then (if asked) its consent page
      const page = await (await send(url)).text();
      const form: Record<string, string> = page.includes('value="consent"')
        ? { prompt: 'consent' }
        : { prompt: 'login', login: options.user ?? 'alice', password: 'any' };
      location = (
        await send(url, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams(form).toString(),
        })
      ).headers.get('location');
    } else {
      location = (await send(url)).headers.get('location');
    }
  }
  const code = location ? new URL(location).searchParams.get('code') : null;
  if (!code) throw new Error('the authorization server did not return a code');

  const dpopFetch = createDPoPFetch(options.key, { fetch: options.fetch });
  const res = await dpopFetch(`${options.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: options.redirectUri,
      code_verifier: verifier,
      client_id: options.clientId,
    }),
  });
  const body = (await res.json()) as {
    access_token?: string;
    refresh_token?: string;
    error?: string;
  };
  if (!body.access_token || !body.refresh_token)
    throw new Error(`code exchange failed: ${res.status} ${body.error ?? ''}`);
  return { accessToken: body.access_token, refreshToken: body.refresh_token };
}
