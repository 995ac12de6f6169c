// The app: what a React Native screen does with popkit. Run on the Hermes VM; prints one JSON
// line per result for the Node side of tests/react-native to verify.
import { p256 } from '@noble/curves/nist.js';
import { createDPoPFetch, createProof, thumbprint, wireHtu } from '@popkit/dpop-client';

const out = (value) => print(JSON.stringify(value));

// A stand-in for a Secure Enclave / Android Keystore key: a pure-JS P-256 key whose sign()
// returns ASN.1 DER, as SecKeyCreateSignature and Signature("SHA256withECDSA") do.
function hardwareSigner(secretHex) {
  const secret = new Uint8Array(secretHex.match(/../g).map((h) => parseInt(h, 16)));
  const point = p256.getPublicKey(secret, false); // 0x04 || x || y
  const b64 = (bytes) => {
    const A = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    let s = '';
    for (let i = 0; i < bytes.length; i += 3) {
      const v = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
      s += A[v >> 18] + A[(v >> 12) & 63];
      if (i + 1 < bytes.length) s += A[(v >> 6) & 63];
      if (i + 2 < bytes.length) s += A[v & 63];
    }
    return s;
  };
  return {
    alg: 'ES256',
    publicJwk: { kty: 'EC', crv: 'P-256', x: b64(point.slice(1, 33)), y: b64(point.slice(33)) },
    signatureEncoding: 'der',
    sign: async (input) => p256.sign(input, secret, { format: 'der', extraEntropy: false }),
  };
}

export async function run({ secret, urls, token }) {
  const env = {
    subtle:
      typeof globalThis.crypto === 'object' &&
      globalThis.crypto !== null &&
      'subtle' in globalThis.crypto,
    getRandomValues: typeof globalThis.crypto?.getRandomValues === 'function',
    URL:
      new URL('HTTPS://A.example:443/').href === 'HTTPS://A.example:443/'
        ? 'as written (React Native)'
        : 'WHATWG',
    TextEncoder: typeof TextEncoder,
  };
  out({ type: 'env', env });
  const signer = hardwareSigner(secret);
  const result = async (type, fn) => {
    try {
      out({ type, ok: true, value: await fn() });
    } catch (e) {
      out({ type, ok: false, name: e?.name, code: e?.code, message: String(e?.message ?? e) });
    }
  };
  await result('thumbprint', () => thumbprint(signer));
  for (const url of urls) {
    await result('wireHtu', async () => ({ url, htu: wireHtu(url) }));
    await result('proof', async () => ({
      url,
      proof: await createProof(signer, { method: 'get', url }),
    }));
    await result('proof', async () => ({
      url,
      token,
      proof: await createProof(signer, { method: 'POST', url, accessToken: token }),
    }));
  }
  // createDPoPFetch over a stand-in native fetch: the first call gets a nonce challenge (401,
  // use_dpop_nonce), the retry carries the nonce; every request is recorded.
  const sent = [];
  let calls = 0;
  const fakeFetch = async (url, init) => {
    const headers = new Headers(init?.headers);
    sent.push({
      url: String(url),
      method: init?.method ?? 'GET',
      dpop: headers.get('dpop'),
      authorization: headers.get('authorization'),
    });
    calls++;
    if (calls === 1) {
      return new Response('', {
        status: 401,
        headers: { 'www-authenticate': 'DPoP error="use_dpop_nonce"', 'dpop-nonce': 'n-1' },
      });
    }
    return new Response('{"ok":true}', {
      status: 200,
      headers: { 'content-type': 'application/json' },
    });
  };
  await result('fetch', async () => {
    const dpopFetch = createDPoPFetch(signer, { fetch: fakeFetch });
    const res = await dpopFetch(urls[0], { accessToken: token });
    return { status: res.status, sent };
  });
}
