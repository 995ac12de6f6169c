// A single-page app that logs in with the authorization code flow + PKCE + DPoP (dpop_jkt),
// keeps its non-extractable key in IndexedDB, and calls the API through createDPoPFetch.
import { createDPoPFetch } from '@popkit/dpop-client';
import { deleteKeyPair, loadOrCreateKeyPair } from '@popkit/dpop-client/browser';

const ISSUER = import.meta.env.VITE_ISSUER ?? 'https://127.0.0.1:8443';
const API = import.meta.env.VITE_API ?? 'https://127.0.0.1:9443';
const RESOURCE = import.meta.env.VITE_RESOURCE ?? API;
const CLIENT_ID = 'spa';
const KEY_NAME = 'popkit-demo-spa';
const redirectUri = `${location.origin}/`;

const $ = (id: string) => document.getElementById(id)!;
const log = (line: string) => ($('log').textContent += `${line}\n`);
const status = (text: string) => ($('status').textContent = text);

function base64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '');
}

const { keyPair, jkt, persisted } = await loadOrCreateKeyPair(KEY_NAME);
$('jkt').textContent = jkt;
$('persisted').textContent = persisted
  ? '(stored in IndexedDB, non-extractable)'
  : '(memory only: IndexedDB unavailable)';
const dpopFetch = createDPoPFetch(keyPair, {
  onEvent: (e) => {
    if (e.type === 'retry') log(`${e.origin}: retried once (${e.reason})`);
    // learned from the Date of a refused proof: this device's clock is off
    if (e.type === 'clock-offset')
      log(`${e.origin}: server clock ${e.offset} s from this device's`);
  },
});

async function login(): Promise<void> {
  const verifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
  const challenge = base64url(
    new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))),
  );
  const state = base64url(crypto.getRandomValues(new Uint8Array(16)));
  sessionStorage.setItem('pkce', JSON.stringify({ verifier, state }));
  const url = new URL(`${ISSUER}/auth`);
  url.search = new URLSearchParams({
    client_id: CLIENT_ID,
    response_type: 'code',
    redirect_uri: redirectUri,
    scope: 'openid orders:read',
    resource: RESOURCE,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state,
    dpop_jkt: jkt, // binds the authorization code to this key (RFC 9449 §10)
  }).toString();
  location.assign(url.href);
}

async function completeLogin(params: URLSearchParams): Promise<void> {
  const saved = JSON.parse(sessionStorage.getItem('pkce') ?? '{}') as {
    verifier?: string;
    state?: string;
  };
  history.replaceState(null, '', '/');
  if (!saved.verifier || params.get('state') !== saved.state) {
    status('login failed: state mismatch');
    return;
  }
  sessionStorage.removeItem('pkce');
  const res = await dpopFetch(`${ISSUER}/token`, {
    method: 'POST',
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: params.get('code')!,
      redirect_uri: redirectUri,
      code_verifier: saved.verifier,
      client_id: CLIENT_ID,
    }),
  });
  const body = (await res.json()) as { access_token?: string; token_type?: string; error?: string };
  if (!body.access_token) {
    status(`login failed: ${res.status} ${body.error ?? ''}`);
    return;
  }
  sessionStorage.setItem('access_token', body.access_token);
  log(`token_type ${body.token_type}`);
}

async function callApi(): Promise<void> {
  const accessToken = sessionStorage.getItem('access_token');
  if (!accessToken) return void status('not logged in');
  const res = await dpopFetch(`${API}/api/orders`, { accessToken });
  $('result').textContent = `${res.status} ${await res.text()}`;
}

$('login').addEventListener('click', () => void login());
$('call').addEventListener('click', () => void callApi());
$('logout').addEventListener('click', async () => {
  sessionStorage.clear();
  await deleteKeyPair(KEY_NAME); // a new login binds a new key
  location.reload();
});

const params = new URLSearchParams(location.search);
if (params.has('code')) await completeLogin(params);
status(sessionStorage.getItem('access_token') ? 'logged in' : 'logged out');
