import { createServer } from 'node:https';
import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createDPoPFetch, generateKeyPair, thumbprint as jkt } from '@popkit/dpop-client';
import { MemoryReplayStore } from '@popkit/dpop-verifier';
import { dpopAuth } from '@popkit/dpop-verifier/express';
import express from 'express';
import { SignJWT, exportJWK, generateKeyPair as joseKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBinary } from '../../../test-support/binaries.ts';
import type { TestPki } from '../../../test-support/pki.ts';
import { createTestPki, opensslPkcs12 } from '../../../test-support/pki.ts';
import { MtlsArgumentError, certificateThumbprint } from '../src/index.ts';
import {
  certificateThumbprintSource,
  createMtlsFetch,
  loadPkcs12,
  peerCertificate,
} from '../src/node/index.ts';

let pki: TestPki;
let server: Server;
let base: string;
/** HTTPS options of the test servers: ask for a client certificate, verify it against the CA, admit any. */
const serverTls = () => ({
  key: pki.server.keyPem,
  cert: pki.server.certPem,
  ca: [pki.ca.certPem],
  requestCert: true,
  rejectUnauthorized: false,
});
const haveOpenssl = requireBinary('openssl', 'apt-get install -y openssl');

beforeAll(async () => {
  pki = await createTestPki();
  server = createServer(serverTls(), async (req, res) => {
    const presented = peerCertificate(req);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify(
        presented
          ? {
              thumbprint: await certificateThumbprint(presented.leaf),
              chain: presented.chain.length,
              verified: presented.verified,
            }
          : { thumbprint: null },
      ),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('real TLS: the socket, PEM and PKCS#12 all give one thumbprint', () => {
  it('PEM credentials (leaf + intermediate), verified chain', async () => {
    const mtlsFetch = await createMtlsFetch(
      { cert: pki.clientA.certPem + pki.intermediate.certPem, key: pki.clientA.keyPem },
      { ca: pki.ca.certPem },
    );
    const body = (await (await mtlsFetch(base)).json()) as {
      thumbprint: string;
      chain: number;
      verified: boolean;
    };
    expect(body.thumbprint).toBe(await certificateThumbprint(pki.clientA.certPem));
    expect(body.thumbprint).toBe(mtlsFetch.thumbprint);
    expect(body.verified).toBe(true);
    expect(body.chain).toBeGreaterThanOrEqual(1);
    await mtlsFetch.close();
  });

  it('a self-signed certificate is presented (not verified) and its chain walk stops', async () => {
    const mtlsFetch = await createMtlsFetch(
      { cert: pki.selfSigned.certPem, key: pki.selfSigned.keyPem },
      { ca: pki.ca.certPem },
    );
    const body = (await (await mtlsFetch(base)).json()) as {
      thumbprint: string;
      chain: number;
      verified: boolean;
    };
    expect(body).toEqual({
      thumbprint: await certificateThumbprint(pki.selfSigned.certPem),
      chain: 0,
      verified: false,
    });
    await mtlsFetch.close();
  });

  it('no client certificate: peerCertificate is undefined', async () => {
    const { Agent, fetch } = await import('undici');
    const res = await fetch(base, { dispatcher: new Agent({ connect: { ca: pki.ca.certPem } }) });
    expect(await res.json()).toEqual({ thumbprint: null });
    expect(peerCertificate({ socket: {} })).toBeUndefined();
  });

  it.runIf(haveOpenssl)(
    'modern and legacy PKCS#12 files (EC and RSA) load and present the same certificate',
    async () => {
      for (const [issued, chain] of [
        [pki.clientA, [pki.intermediate]],
        [pki.clientB, []],
      ] as const) {
        const expected = await certificateThumbprint(issued.certPem);
        for (const kind of ['modern', 'legacy'] as const) {
          const pfx = opensslPkcs12(issued, [...chain], 'p12-secret', kind);
          const contents = await loadPkcs12(pfx, 'p12-secret');
          expect(contents.thumbprint, kind).toBe(expected);
          expect(contents.chain).toHaveLength(chain.length);
          expect(contents.privateKey.type).toBe('private');
          const mtlsFetch = await createMtlsFetch(
            { pfx, passphrase: 'p12-secret' },
            { ca: pki.ca.certPem },
          );
          expect(
            ((await (await mtlsFetch(base)).json()) as { thumbprint: string }).thumbprint,
            kind,
          ).toBe(expected);
          await mtlsFetch.close();
        }
      }
      const pfx = opensslPkcs12(pki.clientA, [], 'right', 'legacy');
      await expect(loadPkcs12(pfx, 'wrong')).rejects.toMatchObject({
        code: 'ERR_INVALID_ARG_VALUE',
        message: expect.stringContaining('PKCS#12'),
      });
      await expect(loadPkcs12(new Uint8Array([1, 2, 3]), 'x')).rejects.toBeInstanceOf(
        MtlsArgumentError,
      );
    },
  );
});

describe('one middleware enforces cnf.jkt and cnf["x5t#S256"] (with @popkit/dpop-verifier)', () => {
  let rs: Server;
  let rsBase: string;
  let mint: (cnf: object) => Promise<string>;
  beforeAll(async () => {
    const { privateKey, publicKey } = await joseKeyPair('ES256');
    const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: 'k' }] };
    mint = (cnf) =>
      new SignJWT({ cnf })
        .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'k' })
        .setIssuer('https://as')
        .setAudience('https://rs')
        .setExpirationTime('5m')
        .sign(privateKey);
    const app = express();
    app.use(
      dpopAuth({
        accessToken: { issuer: 'https://as', audience: 'https://rs', jwks: jwks as never },
        replay: new MemoryReplayStore(),
        publicUrl: (req) => `${rsBase}${req.url}`, // the listening port is known only later
        // sender-constrained only: certificate-bound tokens on Bearer, DPoP-bound on DPoP
        certificate: certificateThumbprintSource({ from: 'socket' }),
      }),
    );
    app.get('/data', (req, res) =>
      res.json({ scheme: req.auth!.scheme, jkt: req.auth!.jkt ?? null }),
    );
    rs = createServer(serverTls(), app);
    await new Promise<void>((r) => rs.listen(0, '127.0.0.1', r));
    rsBase = `https://127.0.0.1:${(rs.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => rs.close(() => r())));

  /** mTLS fetches presenting client A's and client B's certificates. */
  const clientFetches = () =>
    Promise.all(
      [pki.clientA, pki.clientB].map((c) =>
        createMtlsFetch({ cert: c.certPem, key: c.keyPem }, { ca: pki.ca.certPem }),
      ),
    );

  it('certificate-bound: right certificate 200, another certificate or none 401', async () => {
    const [a, b] = await clientFetches();
    const { Agent, fetch } = await import('undici');
    const none = (url: string, init: object) =>
      fetch(url, { ...init, dispatcher: new Agent({ connect: { ca: pki.ca.certPem } }) });
    const token = await mint({ 'x5t#S256': a.thumbprint });
    const headers = { authorization: `Bearer ${token}` };
    expect((await a(`${rsBase}/data`, { headers })).status).toBe(200);
    const other = await b(`${rsBase}/data`, { headers });
    expect(other.status).toBe(401);
    expect(other.headers.get('www-authenticate')).toContain('error="invalid_token"');
    expect((await none(`${rsBase}/data`, { headers })).status).toBe(401);
    await Promise.all([a.close(), b.close()]);
  });

  it('bound both ways: needs the DPoP key and the certificate', async () => {
    const [a, b] = await clientFetches();
    const keyPair = await generateKeyPair();
    const token = await mint({ jkt: await jkt(keyPair), 'x5t#S256': a.thumbprint });
    const viaA = createDPoPFetch(keyPair, { fetch: a as never });
    const viaB = createDPoPFetch(keyPair, { fetch: b as never });
    const ok = await viaA(`${rsBase}/data`, { accessToken: token });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ scheme: 'DPoP', jkt: await jkt(keyPair) });
    expect((await viaB(`${rsBase}/data`, { accessToken: token })).status).toBe(401);
    const thiefKey = await generateKeyPair();
    expect(
      (
        await createDPoPFetch(thiefKey, { fetch: a as never })(`${rsBase}/data`, {
          accessToken: token,
        })
      ).status,
    ).toBe(401);
    await Promise.all([a.close(), b.close()]);
  });
});
