import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBinary } from '../../../test-support/binaries.ts';
import type { BundleInPage } from '../../../test-support/browser-bundle.ts';
import { bundleInChromium } from '../../../test-support/browser-bundle.ts';
import { CHROMIUM_INSTALL, CHROMIUM_PATH } from '../../../test-support/chromium.ts';

const available = requireBinary(CHROMIUM_PATH, CHROMIUM_INSTALL);

/**
 * The verifier core and the Hono adapter on a Web-standard runtime: bundled for the browser
 * (the `#crypto` default condition, WebCrypto) and run in real Chromium.
 */
describe.skipIf(!available)('dpop-verifier on WebCrypto, in real headless Chromium', () => {
  let env: BundleInPage;
  let page: Page;
  let bundle: string;

  beforeAll(async () => {
    env = await bundleInChromium(
      [
        "export { createProofVerifier, createDPoPAuth, createNonceIssuer, MemoryReplayStore, DPoPError } from './src/index.ts';",
        "export { dpopAuth } from './src/hono/index.ts';",
        "export { createProof, generateKeyPair, thumbprint } from '@popkit/dpop-client';",
        "export { Hono } from 'hono';",
        "export { SignJWT, exportJWK, generateKeyPair as joseKeyPair } from 'jose';",
        "export { backend } from '#crypto';",
      ].join('\n'),
      fileURLToPath(new URL('..', import.meta.url)),
    );
    ({ page, bundle } = env);
  }, 60_000);

  afterAll(() => env?.close());

  it('bundles without Node built-ins and picks the WebCrypto backend', async () => {
    expect(bundle).not.toMatch(/from ?["']node:|require\(["']node:/);
    expect(await page.evaluate(() => (window as any).popkit.backend)).toBe('web');
  });

  it('verifies proofs, rejects replays, tampering and wrong URLs, issues and checks nonces', async () => {
    const outcome = await page.evaluate(async () => {
      const m = (window as any).popkit;
      const key = await m.generateKeyPair('ES256');
      const ed = await m.generateKeyPair('EdDSA');
      const nonces = m.createNonceIssuer({ secret: 'browser-nonce-secret-of-32-bytes!!' });
      const store = new m.MemoryReplayStore();
      const verify = m.createProofVerifier({ replay: store, nonces });
      const url = 'https://api.example.com/orders';
      const code = async (p: Promise<unknown>) =>
        p.then(
          () => 'ok',
          (e: any) => `${e.code}/${e.reason}`,
        );
      const tamper = (p: string) => p.slice(0, -4) + (p.endsWith('AAAA') ? 'BBBB' : 'AAAA');
      const nonce = await nonces.current(undefined, store.epoch);
      const proof = await m.createProof(key, { method: 'GET', url, accessToken: 'tok', nonce });
      const results: Record<string, string> = {};
      results.valid = await code(
        verify(proof, { method: 'GET', url, accessToken: 'tok', jkt: await m.thumbprint(key) }),
      );
      results.replay = await code(verify(proof, { method: 'GET', url, accessToken: 'tok' }));
      results.eddsa = await code(
        verify(await m.createProof(ed, { method: 'GET', url, nonce }), { method: 'GET', url }),
      );
      results.noNonce = await code(
        verify(await m.createProof(key, { method: 'GET', url }), { method: 'GET', url }),
      );
      results.htu = await code(
        verify(await m.createProof(key, { method: 'GET', url: `${url}/x`, nonce }), {
          method: 'GET',
          url,
        }),
      );
      const other = await m.createProof(key, { method: 'GET', url, nonce });
      results.tampered = await code(verify(tamper(other), { method: 'GET', url }));
      // the claims are checked while WebCrypto checks the signature: a proof failing both is
      // still refused for its signature, as when they ran one after the other
      const otherUrl = await m.createProof(key, { method: 'GET', url: `${url}/x`, nonce });
      results.tamperedAndHtu = await code(verify(tamper(otherUrl), { method: 'GET', url }));
      const post = await m.createProof(key, { method: 'POST', url, nonce });
      results.tamperedAndHtm = await code(verify(tamper(post), { method: 'GET', url }));
      results.htm = await code(
        verify(await m.createProof(key, { method: 'POST', url, nonce }), { method: 'GET', url }),
      );
      results.ath = await code(
        verify(await m.createProof(key, { method: 'GET', url, accessToken: 'other', nonce }), {
          method: 'GET',
          url,
          accessToken: 'tok',
        }),
      );
      return results;
    });
    expect(outcome).toEqual({
      valid: 'ok',
      replay: 'invalid_dpop_proof/replay',
      eddsa: 'ok',
      noNonce: 'use_dpop_nonce/nonce_missing',
      htu: 'invalid_dpop_proof/htu',
      tampered: 'invalid_dpop_proof/signature',
      tamperedAndHtu: 'invalid_dpop_proof/signature',
      tamperedAndHtm: 'invalid_dpop_proof/signature',
      htm: 'invalid_dpop_proof/htm',
      ath: 'invalid_dpop_proof/ath_mismatch',
    });
  });

  it('verifies many proofs in flight at once (the signing-input buffer is reused between calls)', async () => {
    const outcome = await page.evaluate(async () => {
      const m = (window as any).popkit;
      const key = await m.generateKeyPair('ES256');
      const verify = m.createProofVerifier({ replay: new m.MemoryReplayStore() });
      const base = 'https://api.example.com/orders';
      // different lengths and contents, started in the same tick; every third one tampered
      const proofs: string[] = [];
      for (let i = 0; i < 60; i++) {
        const url = `${base}/${'x'.repeat(i)}`;
        const proof: string = await m.createProof(key, { method: 'GET', url });
        proofs.push(
          i % 3 === 2 ? proof.slice(0, -4) + (proof.endsWith('AAAA') ? 'BBBB' : 'AAAA') : proof,
        );
      }
      const results = await Promise.all(
        proofs.map((proof, i) =>
          verify(proof, { method: 'GET', url: `${base}/${'x'.repeat(i)}` }).then(
            () => 'ok',
            (e: any) => e.reason,
          ),
        ),
      );
      return results;
    });
    expect(outcome).toEqual(
      Array.from({ length: 60 }, (_, i) => (i % 3 === 2 ? 'signature' : 'ok')),
    );
  });

  it("caches imported WebCrypto keys per algorithm: an RS256 proof cannot break the same key's PS256 proofs", async () => {
    const outcome = await page.evaluate(async () => {
      const m = (window as any).popkit;
      const url = 'https://api.example.com/orders';
      const pair = (await crypto.subtle.generateKey(
        {
          name: 'RSASSA-PKCS1-v1_5',
          modulusLength: 2048,
          publicExponent: new Uint8Array([1, 0, 1]),
          hash: 'SHA-256',
        },
        true,
        ['sign', 'verify'],
      )) as CryptoKeyPair;
      const priv = await crypto.subtle.exportKey('jwk', pair.privateKey);
      const pub = await crypto.subtle.exportKey('jwk', pair.publicKey);
      const pss = await crypto.subtle.importKey(
        'jwk',
        { ...priv, alg: 'PS256' },
        { name: 'RSA-PSS', hash: 'SHA-256' },
        false,
        ['sign'],
      );
      const jwk = { kty: 'RSA', n: pub.n, e: pub.e };
      const b64 = (s: string) => btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
      const proof = async (alg: string, key: CryptoKey, params: any) => {
        const h = b64(JSON.stringify({ typ: 'dpop+jwt', alg, jwk }));
        const p = b64(
          JSON.stringify({
            htm: 'GET',
            htu: url,
            iat: Math.floor(Date.now() / 1000),
            jti: crypto.randomUUID(),
          }),
        );
        const sig = await crypto.subtle.sign(params, key, new TextEncoder().encode(`${h}.${p}`));
        return `${h}.${p}.${b64(String.fromCharCode(...new Uint8Array(sig)))}`;
      };
      const verify = m.createProofVerifier({ replay: new m.MemoryReplayStore() });
      const results: string[] = [];
      for (const alg of ['RS256', 'PS256', 'RS256', 'PS256']) {
        const p =
          alg === 'RS256'
            ? await proof(alg, pair.privateKey, { name: 'RSASSA-PKCS1-v1_5' })
            : await proof(alg, pss, { name: 'RSA-PSS', saltLength: 32 });
        results.push(
          await verify(p, { method: 'GET', url }).then(
            () => `${alg} ok`,
            (e: any) => `${alg} ${e.reason}`,
          ),
        );
      }
      return results;
    });
    expect(outcome).toEqual(['RS256 ok', 'PS256 ok', 'RS256 ok', 'PS256 ok']);
  });

  it('the Hono middleware protects a route on a Web-standard runtime (app.request in the page)', async () => {
    const outcome = await page.evaluate(async () => {
      const m = (window as any).popkit;
      const as = await m.joseKeyPair('ES256');
      const jwks = { keys: [{ ...(await m.exportJWK(as.publicKey)), kid: 'k' }] };
      const key = await m.generateKeyPair('ES256');
      const token = await new m.SignJWT({ cnf: { jkt: await m.thumbprint(key) } })
        .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'k' })
        .setIssuer('https://as')
        .setAudience('https://rs')
        .setExpirationTime('5m')
        .sign(as.privateKey);
      const app = new m.Hono();
      app.use(
        '/api/*',
        m.dpopAuth({
          accessToken: { issuer: 'https://as', audience: 'https://rs', jwks },
          replay: new m.MemoryReplayStore(),
          publicUrl: 'https://rs.example',
        }),
      );
      app.get('/api/me', (c: any) => c.json({ jkt: c.get('auth').jkt }));
      const url = 'https://rs.example/api/me';
      const send = async (headers: Record<string, string>) => {
        const res = await app.request(url, { headers });
        return `${res.status} ${res.headers.get('www-authenticate') ?? (await res.text())}`;
      };
      const proof = await m.createProof(key, { method: 'GET', url, accessToken: token });
      return {
        ok: await send({ authorization: `DPoP ${token}`, dpop: proof }),
        replay: await send({ authorization: `DPoP ${token}`, dpop: proof }),
        bearer: await send({ authorization: `Bearer ${token}` }),
        jkt: await m.thumbprint(key),
      };
    });
    expect(outcome.ok).toBe(`200 {"jkt":"${outcome.jkt}"}`);
    expect(outcome.replay).toMatch(/^401 DPoP error="invalid_dpop_proof"/);
    expect(outcome.bearer).toMatch(/^401 DPoP error="invalid_token"/);
  });
});
