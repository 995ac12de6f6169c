// The engine in-process: a request with several problems reports each of them, while its
// `reason` stays the verifier's (the first failure in the verifier's order).
import { X509Certificate, createHash } from 'node:crypto';
import { rootCertificates } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { explain } from '../src/index.ts';
import { parseCurl, parseHttpRequest } from '../src/index.ts';
import type { Fixture } from '../fixtures/fixtures.ts';
import {
  API_URL,
  BOUND_TOKEN,
  CLIENT,
  NOW,
  NOW_SEC,
  accessToken,
  proof,
} from '../fixtures/fixtures.ts';
import { verdict } from './helpers.ts';

const several = (dpop: string): Fixture => ({
  name: 'several',
  reason: null,
  step: null,
  description: '',
  request: {
    method: 'GET',
    url: API_URL,
    dpop: [dpop],
    authorization: [`DPoP ${BOUND_TOKEN}`],
    now: NOW,
  },
  server: {},
  verifier: 'auth',
});

describe('explain', () => {
  it('goes on past a failure and reports every problem; the reason is the verifier’s', async () => {
    const dpop = proof({
      token: BOUND_TOKEN,
      header: { typ: 'JWT' },
      claims: { htu: 'http://api.example.com/orders', iat: NOW_SEC - 600 },
    });
    const fixture = several(dpop);
    const e = await explain({ ...fixture.request });
    const refusal = await verdict(fixture);
    expect(refusal?.reason).toBe('typ');
    expect(e.reason).toBe('typ');
    expect(e.step).toBe(4);
    const failed = Object.fromEntries(
      e.steps.filter((s) => s.ok === false).map((s) => [s.step, s.reason]),
    );
    expect(failed).toEqual({ 4: 'typ', 9: 'htu', 11: 'iat_too_old' });
    // the signature is still checked (over the proof as sent), and passes
    expect(e.steps.find((s) => s.step === 6)!.status).toBe('passed');
  });

  it('a proof with a private key: check 7 fails, the private member is never shown', async () => {
    const e = await explain({
      method: 'GET',
      url: API_URL,
      dpop: proof({ header: { jwk: CLIENT.jwk } }),
      now: NOW,
    });
    expect(e.reason).toBe('jwk');
    expect(JSON.stringify(e)).not.toContain(CLIENT.jwk.d);
    expect((e.proof!.header as { jwk: { d: string } }).jwk.d).toBe('[private]');
    expect(e.steps.find((s) => s.step === 6)!.status).toBe('skipped');
  });

  it('a key of the wrong type for alg: check 7 fails, and the claims are still checked', async () => {
    const e = await explain({
      method: 'POST',
      url: API_URL,
      dpop: proof({ header: { alg: 'ES256' } }),
      now: NOW,
      algorithms: ['ES256'],
    });
    // the jwk is an Ed25519 key: for ES256 it is the wrong type (check 7), and the method is wrong
    expect(e.reason).toBe('jwk');
    expect(e.steps.find((s) => s.step === 8)).toMatchObject({
      ok: false,
      reason: 'htm',
      expected: 'POST',
      found: 'GET',
    });
  });

  it('a PEM client certificate: its x5t#S256 is compared with the token cnf (RFC 8705)', async () => {
    const [pem, other] = rootCertificates as [string, string];
    const x5t = createHash('sha256').update(new X509Certificate(pem).raw).digest('base64url');
    const token = accessToken({ 'x5t#S256': x5t });
    const ask = (certificate: string | undefined) =>
      explain({
        method: 'GET',
        url: API_URL,
        authorization: `Bearer ${token}`,
        now: NOW,
        mtls: true,
        ...(certificate === undefined ? {} : { certificate }),
      });
    const same = await ask(pem);
    expect(same.ok).toBe(true);
    expect(same.steps.find((s) => s.step === 'certificate')).toMatchObject({
      status: 'passed',
      expected: x5t,
      found: x5t,
    });
    const wrong = await ask(other);
    expect(wrong.reason).toBe('certificate_mismatch');
    expect(wrong.steps.find((s) => s.step === 'certificate')!.fix).toMatch(/certificate/);
    expect((await ask(undefined)).reason).toBe('certificate_missing');
    await expect(ask('-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----')).rejects.toThrow(
      TypeError,
    );
  });

  it('reads raw HTTP requests and curl command lines', () => {
    expect(
      parseHttpRequest(
        'POST /a?b HTTP/1.1\nHost: x.example\nDPoP: p1\ndpop: p2\nAuthorization: DPoP t\n\nbody',
      ),
    ).toEqual({
      method: 'POST',
      url: 'https://x.example/a?b',
      dpop: ['p1', 'p2'],
      authorization: ['DPoP t'],
    });
    expect(
      parseCurl(
        `curl -X put "https://x.example/a" -H 'DPoP: p' --header "Authorization: DPoP \\"t\\""`,
      ),
    ).toEqual({
      method: 'PUT',
      url: 'https://x.example/a',
      dpop: ['p'],
      authorization: ['DPoP "t"'],
    });
    expect(() => parseHttpRequest('hello')).toThrow(TypeError);
    expect(() => parseCurl("curl -H 'DPoP: p'")).toThrow(/no URL/);
  });
});
