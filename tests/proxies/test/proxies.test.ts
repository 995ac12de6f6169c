// Real nginx and HAProxy terminate TLS on 127.0.0.1 in front of the example API, forward the
// client certificate in their own header format and strip a path prefix (publicUrl). Each proxy
// faces the same clients: DPoP-bound, certificate-bound (sender-constrained-only policy), a
// look-alike certificate, a client forging the proxy's header, and a token bound both ways.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createProof, generateKeyPair, thumbprint } from '@popkit/dpop-client';
import { createApi } from '@popkit/example-resource-server';
import { buildAuthOptions } from '@popkit/example-resource-server/options';
import { freePort } from '@popkit/example-shared/redis';
import { createTestPki, issue } from '@popkit/example-shared/pki';
import type { Issued, TestPki } from '@popkit/example-shared/pki';
import { SignJWT, exportJWK, generateKeyPair as joseKeyPair } from 'jose';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBinary, waitForListening } from '../../../test-support/binaries.ts';

const INSTALL = 'apt-get update && apt-get install -y nginx haproxy';
const haveNginx = requireBinary('nginx', INSTALL);
const haveHaproxy = requireBinary('haproxy', INSTALL);

const ISSUER = 'https://as.proxies.example';
const AUDIENCE = 'https://api.proxies.example';
const PREFIX = '/edge';

interface Proxy {
  name: 'nginx' | 'haproxy';
  /** Header the proxy writes the client certificate into. */
  header: string;
  /** The same header, forged by a client without a certificate (in the proxy's format). */
  forged(pem: string): string;
  config(dir: string, port: number, backend: number): string;
  command(dir: string, file: string): [string, string[]];
}

const PROXIES: Proxy[] = [
  {
    name: 'nginx',
    header: 'ssl-client-cert',
    forged: (pem) => encodeURIComponent(pem),
    // $ssl_client_escaped_cert: the URL-encoded PEM; proxy_set_header replaces any copy the
    // client sent (and sends none when no certificate was presented).
    config: (dir, port, backend) => `
daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events {}
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${dir}/server.pem;
    ssl_certificate_key ${dir}/server.key;
    ssl_client_certificate ${dir}/ca.pem;
    ssl_verify_client optional;
    ssl_verify_depth 3;
    location ${PREFIX}/ {
      proxy_pass http://127.0.0.1:${backend}/;
      proxy_set_header Host $host;
      proxy_set_header ssl-client-cert $ssl_client_escaped_cert;
    }
  }
}
`,
    command: (dir, file) => ['nginx', ['-p', dir, '-c', file]],
  },
  {
    name: 'haproxy',
    header: 'x-ssl-client-cert',
    forged: (pem) => `"${pem.replace(/-----[^-]+-----|\s/g, '')}"`,
    // %{+Q}[ssl_c_der,base64]: the quoted base64 DER; any client-sent copy is deleted first.
    config: (dir, port, backend) => `
global
  maxconn 256
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend edge
  bind 127.0.0.1:${port} ssl crt ${dir}/server-combined.pem ca-file ${dir}/ca.pem verify optional
  http-request del-header x-ssl-client-cert
  http-request set-header x-ssl-client-cert %{+Q}[ssl_c_der,base64] if { ssl_c_used }
  http-request replace-path ${PREFIX}(/.*) \\1
  default_backend api
backend api
  server api 127.0.0.1:${backend}
`,
    command: (dir, file) => ['haproxy', ['-f', file, '-db']],
  },
];

let pki: TestPki;
let lookAlike: Issued;
let signer: CryptoKey;
let jwks: { keys: object[] };

beforeAll(async () => {
  pki = await createTestPki();
  // Same subject DN and issuing CA as client A, another key: a different certificate.
  lookAlike = await issue({
    subject: [
      { C: ['US'] },
      { O: ['Acme, Inc.'] },
      { OU: ['Payments'], '0.9.2342.19200300.100.1.1': ['client-a'] },
      { CN: ['client-a'] },
    ],
    issuer: pki.intermediate,
  });
  const pair = await joseKeyPair('ES256');
  signer = pair.privateKey;
  jwks = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256' }] };
});

const x5t = (pem: string): string =>
  createHash('sha256')
    .update(Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64'))
    .digest('base64url');

const mint = (cnf: Record<string, string>) =>
  new SignJWT({ cnf, client_id: 'svc' })
    .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'k1' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setExpirationTime('5m')
    .sign(signer);

for (const proxy of PROXIES) {
  const available = proxy.name === 'nginx' ? haveNginx : haveHaproxy;
  describe.skipIf(!available)(`behind real ${proxy.name} (TLS terminated, prefix stripped)`, () => {
    let dir: string;
    let child: ChildProcess;
    let api: Server;
    let base: string;
    let output = '';

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), `popkit-${proxy.name}-`));
      writeFileSync(join(dir, 'server.pem'), pki.server.certPem);
      writeFileSync(join(dir, 'server.key'), pki.server.keyPem);
      writeFileSync(join(dir, 'server-combined.pem'), pki.server.certPem + pki.server.keyPem);
      writeFileSync(join(dir, 'ca.pem'), pki.ca.certPem + pki.intermediate.certPem);
      const port = await freePort();
      base = `https://127.0.0.1:${port}${PREFIX}`;
      // The example API, over plain HTTP behind the proxy, reading the proxy's header.
      const auth = buildAuthOptions({
        issuer: ISSUER,
        audience: AUDIENCE,
        publicUrl: base,
        nonceSecret: 'proxies-test-nonce-secret-of-32-bytes!',
        fetch: async () => Response.json(jwks),
        certificate: { from: 'headers', proxy: proxy.name },
      });
      api = createServer(createApi(auth));
      await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
      const backend = (api.address() as AddressInfo).port;
      const file = join(dir, `${proxy.name}.conf`);
      writeFileSync(file, proxy.config(dir, port, backend));
      const [command, args] = proxy.command(dir, file);
      child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout!.on('data', (d) => (output += d));
      child.stderr!.on('data', (d) => (output += d));
      await waitForListening(port, child, 'the proxy', () => output);
    });

    afterAll(async () => {
      child?.kill('SIGTERM');
      await new Promise<void>((r) => api?.close(() => r()));
      rmSync(dir, { recursive: true, force: true });
    });

    /** A client of the proxy, presenting `cert` (or none). */
    const client = (cert?: Issued) =>
      new Agent({
        connect: {
          ca: pki.ca.certPem,
          ...(cert ? { cert: cert.certPem + pki.intermediate.certPem, key: cert.keyPem } : {}),
        },
      });
    const call = async (
      agent: Agent,
      headers: Record<string, string>,
    ): Promise<{ status: number; body: string; challenge: string | null }> => {
      const res = await undiciFetch(`${base}/api/orders`, { headers, dispatcher: agent });
      return {
        status: res.status,
        body: await res.text(),
        challenge: res.headers.get('www-authenticate'),
      };
    };
    /** A DPoP proof for the URL the client addressed, with the server nonce (one round trip). */
    const dpopHeaders = async (agent: Agent, key: CryptoKeyPair, token: string) => {
      const url = `${base}/api/orders`;
      const first = await undiciFetch(url, {
        headers: {
          authorization: `DPoP ${token}`,
          dpop: await createProof(key, { method: 'GET', url, accessToken: token }),
        },
        dispatcher: agent,
      });
      await first.text();
      const nonce = first.headers.get('dpop-nonce') ?? undefined;
      return {
        authorization: `DPoP ${token}`,
        dpop: await createProof(key, { method: 'GET', url, accessToken: token, nonce }),
      };
    };

    it('accepts a DPoP-bound token through the proxy (htu is the public URL, prefix included)', async () => {
      const key = await generateKeyPair();
      const token = await mint({ jkt: await thumbprint(key) });
      const agent = client();
      const res = await call(agent, await dpopHeaders(agent, key, token));
      expect([res.status, JSON.parse(res.body).scheme]).toEqual([200, 'DPoP']);
    });

    it('accepts a certificate-bound token with its certificate (sender-constrained only: no unbound tokens)', async () => {
      const token = await mint({ 'x5t#S256': x5t(pki.clientA.certPem) });
      const res = await call(client(pki.clientA), { authorization: `Bearer ${token}` });
      expect([res.status, JSON.parse(res.body).scheme]).toEqual([200, 'Bearer']);
      const unbound = await new SignJWT({ client_id: 'svc' })
        .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'k1' })
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setExpirationTime('5m')
        .sign(signer);
      const refused = await call(client(pki.clientA), { authorization: `Bearer ${unbound}` });
      expect(refused.status).toBe(401);
      expect(refused.challenge).toMatch(/error="invalid_token"/);
    });

    it('refuses a look-alike certificate: same subject DN and CA, another key', async () => {
      const token = await mint({ 'x5t#S256': x5t(pki.clientA.certPem) });
      const res = await call(client(lookAlike), { authorization: `Bearer ${token}` });
      expect(res.status).toBe(401);
      expect(res.challenge).toMatch(/error="invalid_token"/);
      expect(res.challenge).toMatch(/not bound to the presented client certificate/);
    });

    it("refuses a client that sends the proxy's header itself without presenting a certificate", async () => {
      const token = await mint({ 'x5t#S256': x5t(pki.clientA.certPem) });
      const res = await call(client(), {
        authorization: `Bearer ${token}`,
        [proxy.header]: proxy.forged(pki.clientA.certPem),
      });
      expect(res.status).toBe(401);
      expect(res.challenge).toMatch(/requires the client certificate/);
      // and with another certificate presented, the forged header is replaced by the real one
      const other = await call(client(lookAlike), {
        authorization: `Bearer ${token}`,
        [proxy.header]: proxy.forged(pki.clientA.certPem),
      });
      expect(other.status).toBe(401);
    });

    it('needs both bindings for a token bound both ways', async () => {
      const key = await generateKeyPair();
      const token = await mint({
        jkt: await thumbprint(key),
        'x5t#S256': x5t(pki.clientA.certPem),
      });
      const withCert = client(pki.clientA);
      const both = await call(withCert, await dpopHeaders(withCert, key, token));
      expect(both.status).toBe(200);
      const noCert = client();
      const proofOnly = await call(noCert, await dpopHeaders(noCert, key, token));
      expect(proofOnly.status).toBe(401);
      expect(proofOnly.challenge).toMatch(/requires the client certificate/);
      const certOnly = await call(withCert, { authorization: `Bearer ${token}` });
      expect(certOnly.status).toBe(401);
      expect(certOnly.challenge).toMatch(/must be sent with the DPoP scheme/);
    });
  });
}
