import { createProof, generateKeyPair } from '@popkit/dpop-client';
import type { AuthOutcome } from '@popkit/dpop-verifier';
import {
  DPoPError,
  MemoryReplayStore,
  createDPoPAuth,
  createNonceIssuer,
} from '@popkit/dpop-verifier';
import { runDemo } from '@popkit/example-demo';
import { createTestPki } from '@popkit/example-shared/pki';
import { verifyCertificateBinding } from '@popkit/mtls-binding';
import { certificateFromHeaders } from '@popkit/mtls-binding/node';
import { SignJWT, exportJWK, generateKeyPair as joseKeyPair } from 'jose';
import { describe, expect, it } from 'vitest';
import { SECRET_SHAPES, captureConsole, findLeak, secretWindows } from './leaks.ts';

describe('secrets never leak into messages or logs', () => {
  it('the demo (every attack, real servers): no token, proof, key or certificate in any output', async () => {
    const lines: string[] = [];
    const { result, output } = await captureConsole(() => runDemo({ log: (l) => lines.push(l) }));
    const everything = `${output}\n${lines.join('\n')}\n${JSON.stringify(result)}`;
    expect(result.every((r) => r.verdict !== 'BREACH')).toBe(true);
    for (const shape of SECRET_SHAPES) expect(everything, String(shape)).not.toMatch(shape);
    // the detector works: a real access token and certificate match the shapes
    const planted = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256' })
      .sign((await joseKeyPair('ES256')).privateKey);
    expect(SECRET_SHAPES.some((shape) => shape.test(planted))).toBe(true);
  });

  it('every rejection path: messages, headers, bodies and onResult outcomes hold no part of any secret', async () => {
    const as = await joseKeyPair('ES256', { extractable: true });
    const jwks = { keys: [{ ...(await exportJWK(as.publicKey)), kid: 'k' }] };
    const client = await generateKeyPair('ES256', { extractable: true });
    const thief = await generateKeyPair('ES256', { extractable: true });
    const pki = await createTestPki();
    const { thumbprint } = await import('@popkit/dpop-client');
    const token = await new SignJWT({ cnf: { jkt: await thumbprint(client) } })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'k' })
      .setIssuer('https://as')
      .setAudience('https://rs')
      .setExpirationTime('5m')
      .sign(as.privateKey);
    const url = 'https://rs.example/api';
    const outcomes: AuthOutcome[] = [];
    const auth = createDPoPAuth({
      accessToken: { issuer: 'https://as', audience: 'https://rs', jwks: jwks as never },
      replay: new MemoryReplayStore(),
      nonces: createNonceIssuer({ secret: 'the-nonce-secret-must-never-leak-anywhere!' }),
      publicUrl: 'https://rs.example',
      allowUnboundBearer: true,
      certificate: () => 'A'.repeat(43),
      onResult: (o) => outcomes.push(o),
    });
    const proof = await createProof(client, { method: 'GET', url, accessToken: token });
    const nonce = (await auth
      .verify({ method: 'GET', url, headers: { authorization: `DPoP ${token}`, dpop: proof } })
      .catch((e: DPoPError) => e)) as DPoPError;
    const good = await createProof(client, {
      method: 'GET',
      url,
      accessToken: token,
      nonce: nonce.headers['DPoP-Nonce']!,
    });
    const attempts: Array<Record<string, string>> = [
      { authorization: `DPoP ${token}`, dpop: good },
      { authorization: `DPoP ${token}`, dpop: good }, // replay
      { authorization: `Bearer ${token}` }, // downgrade
      {
        authorization: `DPoP ${token}`,
        dpop: await createProof(thief, {
          method: 'GET',
          url,
          accessToken: token,
          nonce: nonce.headers['DPoP-Nonce']!,
        }),
      },
      { authorization: `DPoP ${token}`, dpop: `${proof}x` },
      { authorization: `DPoP ${token}`, dpop: proof.split('.').reverse().join('.') },
      { authorization: `DPoP ${token}x` },
      { authorization: `DPoP ${token}, DPoP ${token}` },
      { authorization: `DPoP ${token}`, dpop: `${proof}, ${proof}` },
    ];
    const { output } = await captureConsole(async () => {
      for (const headers of attempts) {
        try {
          await auth.verify({ method: 'GET', url, headers });
        } catch (e) {
          if (!(e instanceof DPoPError)) throw e;
          console.log(
            e.message,
            e.reason,
            e.code,
            JSON.stringify(e.headers),
            e.body ?? '',
            String(e.cause ?? ''),
          );
        }
      }
      // mTLS paths
      await verifyCertificateBinding(
        { cnf: { 'x5t#S256': 'A'.repeat(43) } },
        pki.clientA.certPem,
      ).catch((e: Error) => console.log(e.message, JSON.stringify(e)));
      try {
        certificateFromHeaders(
          { 'ssl-client-cert': encodeURIComponent(pki.clientA.keyPem) },
          { proxy: 'nginx' },
        );
      } catch (e) {
        console.log((e as Error).message, String((e as Error).cause ?? ''));
      }
    });
    const privateJwks = await Promise.all(
      [client, thief].map(async (k) =>
        JSON.stringify(await crypto.subtle.exportKey('jwk', k.privateKey)),
      ),
    );
    const windows = secretWindows([
      token,
      proof,
      good,
      ...privateJwks.map((j) => JSON.parse(j).d as string),
      'the-nonce-secret-must-never-leak-anywhere!',
      pki.clientA.certPem.replace(/-----[A-Z ]+-----|\s/g, ''),
      pki.clientA.keyPem.replace(/-----[A-Z ]+-----|\s/g, ''),
    ]);
    const everything = `${output}\n${JSON.stringify(outcomes)}`;
    // the detector works: a planted fragment of a secret is found
    expect(findLeak(`error near ${token.slice(40, 60)}`, windows)).toBeDefined();
    expect(outcomes.length).toBeGreaterThanOrEqual(attempts.length);
    expect(findLeak(everything, windows)).toBeUndefined();
  });
});
