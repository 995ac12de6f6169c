// Loopback HTTP load: requests/s and latency of the Express API with popkit, with a naive jose
// check, and with no auth (the ceiling). autocannon in this process, the server in a child.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createProof, generateKeyPair, thumbprint } from '@popkit/dpop-client';
import autocannon from 'autocannon';
import { SignJWT, exportJWK, generateKeyPair as joseKeyPair } from 'jose';

export interface HttpResult {
  name: string;
  requestsPerSecond: number;
  p50: number;
  p99: number;
  non2xx: number;
}

export async function httpCases(seconds: number, connections = 16): Promise<HttpResult[]> {
  const as = await joseKeyPair('ES256');
  const jwks = { keys: [{ ...(await exportJWK(as.publicKey)), kid: 'k', alg: 'ES256' }] };
  const client = await generateKeyPair('ES256');
  const token = await new SignJWT({ cnf: { jkt: await thumbprint(client) } })
    .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'k' })
    .setIssuer('https://as')
    .setAudience('https://rs')
    .setExpirationTime('1h')
    .sign(as.privateKey);
  const results: HttpResult[] = [];
  for (const mode of ['none', 'popkit', 'jose'] as const) {
    const publicUrl = 'http://127.0.0.1';
    const child = fork(
      fileURLToPath(new URL('./http-server.ts', import.meta.url)),
      [mode, JSON.stringify(jwks), publicUrl],
      {
        execArgv: ['--import', 'tsx'],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      },
    );
    const { port } = await new Promise<{ port: number }>((resolve) =>
      child.once('message', (m) => resolve(m as { port: number })),
    );
    // one fresh proof per request (unique jti, htu as the server sees itself)
    const estimate = Math.ceil(seconds * 12_000);
    const proofs: string[] = [];
    if (mode !== 'none')
      for (let i = 0; i < estimate; i++)
        proofs.push(
          await createProof(client, {
            method: 'GET',
            url: `${publicUrl}/api/orders`,
            accessToken: token,
          }),
        );
    let next = 0;
    const result = await autocannon({
      url: `http://127.0.0.1:${port}/api/orders`,
      connections,
      duration: seconds,
      requests: [
        {
          setupRequest: (req: { headers?: Record<string, string> }) => {
            req.headers =
              mode === 'none'
                ? {}
                : { authorization: `DPoP ${token}`, dpop: proofs[next++ % proofs.length]! };
            return req;
          },
        },
      ],
    } as never);
    child.kill();
    results.push({
      name:
        mode === 'none'
          ? '[ceiling] Express, no auth'
          : mode === 'popkit'
            ? 'Express + popkit dpopAuth (JWT + DPoP + replay)'
            : 'Express + naive jose DPoP check (no replay)',
      requestsPerSecond: result.requests.average,
      p50: result.latency.p50,
      p99: result.latency.p99,
      non2xx: result.non2xx,
    });
  }
  return results;
}
