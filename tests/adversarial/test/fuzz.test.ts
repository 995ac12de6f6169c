import {
  createProof,
  generateKeyPair,
  normalizeHtu,
  parseWWWAuthenticate,
  thumbprint,
} from '@popkit/dpop-client';
import { DPoPError, MemoryReplayStore, createDPoPAuth } from '@popkit/dpop-verifier';
import { MtlsBindingError } from '@popkit/mtls-binding';
import { PROXY_HEADERS, certificateFromHeaders } from '@popkit/mtls-binding/node';
import type { ProxyKind } from '@popkit/mtls-binding/node';
import fc from 'fast-check';
import { SignJWT, exportJWK, generateKeyPair as joseKeyPair } from 'jose';
import { KeyObject, sign } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { findLeak, secretWindows } from './leaks.ts';

// Seeded and bounded so the suite stays fast; POPKIT_FUZZ_RUNS=50000 for a long run.
const RUNS = Number(process.env.POPKIT_FUZZ_RUNS ?? 200);
const params = { seed: 8705, numRuns: RUNS };
const b64 = (s: string) => Buffer.from(s).toString('base64url');

describe('normalizeHtu properties', () => {
  const webUrl = fc.webUrl({
    validSchemes: ['http', 'https'],
    withQueryParameters: true,
    withFragments: true,
  });

  it('is idempotent', () => {
    fc.assert(
      fc.property(webUrl, (url) => {
        const once = normalizeHtu(url);
        expect(normalizeHtu(once)).toBe(once);
      }),
      params,
    );
  });

  it('equivalent spellings normalise equal', () => {
    fc.assert(
      fc.property(webUrl, fc.boolean(), fc.boolean(), fc.boolean(), (url, upper, port, dots) => {
        const u = new URL(url);
        const base = normalizeHtu(url);
        let host = u.host;
        if (upper) host = host.toUpperCase();
        if (port && u.port === '') host += u.protocol === 'https:' ? ':443' : ':80';
        let path = u.pathname;
        if (dots) path = `/x/..${path}`;
        // percent-encode every unreserved letter of the path (any case of the hex digits)
        path = path.replace(
          /[A-Za-z~]/g,
          (c, i: number) =>
            `%${c.charCodeAt(0).toString(16)[i % 2 ? 'toUpperCase' : 'toLowerCase']()}`,
        );
        const variant = `${upper ? u.protocol.toUpperCase() : u.protocol}//${host}${path}?noise=1#frag`;
        expect(normalizeHtu(variant)).toBe(base);
      }),
      params,
    );
  });

  it('different resources never normalise equal', () => {
    fc.assert(
      fc.property(
        webUrl,
        fc.constantFrom('a', 'B', '~', '%2F', '%25', '/', '.x'),
        (url, suffix) => {
          const u = new URL(url);
          const other = `${u.origin}${u.pathname}${u.pathname.endsWith('/') ? 'z' : '/z'}${suffix}`;
          expect(normalizeHtu(other)).not.toBe(normalizeHtu(url));
          const otherHost = `${u.protocol}//x${u.host}${u.pathname}`;
          expect(normalizeHtu(otherHost)).not.toBe(normalizeHtu(url));
        },
      ),
      params,
    );
  });
});

describe('createDPoPAuth().verify under structured mutations', () => {
  const url = 'https://rs.fuzz.example/api';
  let auth: ReturnType<typeof createDPoPAuth>;
  let token: string;
  let keyObject: KeyObject;
  let jwk: Record<string, string>;
  let accepted = 0;

  beforeAll(async () => {
    const as = await joseKeyPair('ES256');
    const jwks = { keys: [{ ...(await exportJWK(as.publicKey)), kid: 'k' }] };
    const client = await generateKeyPair('ES256', { extractable: true });
    keyObject = KeyObject.from(client.privateKey);
    jwk = (await exportJWK(client.publicKey)) as Record<string, string>;
    token = await new SignJWT({ cnf: { jkt: await thumbprint(client) } })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'k' })
      .setIssuer('https://as')
      .setAudience('https://rs')
      .setExpirationTime('1h')
      .sign(as.privateKey);
    auth = createDPoPAuth({
      accessToken: { issuer: 'https://as', audience: 'https://rs', jwks: jwks as never },
      replay: new MemoryReplayStore(),
      allowedHosts: ['rs.fuzz.example'],
    });
    // sanity: a well-formed proof passes
    await auth.verify({
      method: 'GET',
      url,
      headers: {
        authorization: `DPoP ${token}`,
        dpop: await createProof(client, { method: 'GET', url, accessToken: token }),
      },
    });
  });

  const signRaw = (headerJson: string, payloadJson: string) => {
    const input = `${b64(headerJson)}.${b64(payloadJson)}`;
    return `${input}.${sign('sha256', Buffer.from(input), { key: keyObject, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
  };
  const validHeader = () =>
    `{"typ":"dpop+jwt","alg":"ES256","jwk":${JSON.stringify({ kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y })}}`;
  const validPayload = async (jti: string) => {
    const ath = Buffer.from(
      await crypto.subtle.digest('SHA-256', new TextEncoder().encode(token)),
    ).toString('base64url');
    return `{"htm":"GET","htu":"${url}","iat":${Math.floor(Date.now() / 1000)},"jti":"${jti}","ath":"${ath}"`;
  };

  const outcome = async (dpop: string, authorization = `DPoP ${token}`) => {
    const started = performance.now();
    try {
      await auth.verify({ method: 'GET', url, headers: { authorization, dpop } });
      return { ok: true as const, ms: performance.now() - started };
    } catch (error) {
      if (!(error instanceof DPoPError)) throw new Error(`untyped throw: ${String(error)}`);
      return { ok: false as const, error, ms: performance.now() - started };
    }
  };

  it('duplicate JSON members whose last value differs, huge numbers, unicode and 64 KiB values are rejected, quickly, with typed errors', async () => {
    const field = fc.constantFrom('htm', 'htu', 'iat', 'jti', 'ath', 'typ', 'alg');
    const value = fc.oneof(
      fc.string({ unit: 'grapheme', maxLength: 30 }),
      fc.constantFrom(
        1e308,
        -1e308,
        2 ** 53 + 1,
        -0,
        0.5,
        'NaN',
        'Infinity',
        null,
        true,
        [],
        {},
        'x'.repeat(65536),
        '\u0000',
        '\uD800',
        'POST',
        `${url}/x`,
        'https://RS.fuzz.example:443/api?x',
      ),
    );
    await fc.assert(
      fc.asyncProperty(field, value, fc.uuid(), async (name, v, jti) => {
        const header = validHeader();
        const payload = await validPayload(jti);
        const duplicate = `,"${name}":${JSON.stringify(v)}`;
        const proof = ['typ', 'alg'].includes(name)
          ? signRaw(header.slice(0, -1) + duplicate + '}', `${payload}}`)
          : signRaw(header, `${payload}${duplicate}}`);
        const result = await outcome(proof);
        // Only a duplicate that restates an equivalent value may pass (JSON keeps the last member).
        const equivalent =
          (name === 'htu' && v === 'https://RS.fuzz.example:443/api?x') ||
          (name === 'typ' && v === 'dpop+jwt') ||
          (name === 'alg' && v === 'ES256') ||
          (name === 'htm' && v === 'GET') ||
          (name === 'jti' && typeof v === 'string' && v.length >= 1 && v.length <= 256); // any such jti is a valid jti
        if (!equivalent) expect(result.ok).toBe(false);
        if (result.ok) accepted++;
        expect(result.ms).toBeLessThan(100);
        if (!result.ok)
          expect(findLeak(result.error.message, secretWindows([token, proof]))).toBeUndefined();
      }),
      params,
    );
  });

  it('base64url alphabet edges anywhere in a valid proof are rejected', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.nat(),
        fc.constantFrom('+', '/', '=', ' ', '.', '%', '\u00e9', '\uFEFF', '\u2028', 'A'),
        fc.uuid(),
        async (pos, char, jti) => {
          const proof = signRaw(validHeader(), `${await validPayload(jti)}}`);
          const i = pos % proof.length;
          fc.pre(proof[i] !== char);
          const mutated = proof.slice(0, i) + char + proof.slice(i + 1);
          expect((await outcome(mutated)).ok).toBe(false);
        },
      ),
      params,
    );
  });

  it('arbitrary Authorization and DPoP values never throw untyped and return fast', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ maxLength: 300 }),
        fc.oneof(fc.string({ maxLength: 300 }), fc.constant('x'.repeat(70000))),
        async (a, d) => {
          const result = await outcome(d, a);
          expect(result.ok).toBe(false);
          expect(result.ms).toBeLessThan(100);
        },
      ),
      params,
    );
    expect(accepted).toBeLessThanOrEqual(RUNS);
  });
});

describe('header parsers never throw untyped or loop', () => {
  it('parseWWWAuthenticate', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 2000 }),
          fc.string({ unit: 'binary', maxLength: 2000 }),
          fc
            .array(fc.constantFrom('DPoP ', 'Bearer', ',', '=', '"', '\\', ' ', 'error', 'a'), {
              maxLength: 500,
            })
            .map((p) => p.join('')),
        ),
        (header) => {
          const started = performance.now();
          const challenges = parseWWWAuthenticate(header);
          expect(Array.isArray(challenges)).toBe(true);
          expect(performance.now() - started).toBeLessThan(250); // bounded work, not a benchmark
        },
      ),
      params,
    );
  });

  it('certificateFromHeaders, every proxy', () => {
    const proxies = Object.keys(PROXY_HEADERS) as ProxyKind[];
    // warm every parser once, so the bound below catches runaway work, not a cold start
    for (const proxy of proxies) {
      try {
        certificateFromHeaders({ [PROXY_HEADERS[proxy]]: 'x' }, { proxy });
      } catch {
        // expected
      }
    }
    fc.assert(
      fc.property(
        fc.constantFrom(...proxies),
        fc.oneof(
          fc.string({ maxLength: 3000 }),
          fc.base64String({ maxLength: 3000 }),
          fc.constant(`:${'A'.repeat(70000)}:`),
        ),
        (proxy, value) => {
          const started = performance.now();
          try {
            certificateFromHeaders({ [PROXY_HEADERS[proxy]]: value }, { proxy });
          } catch (error) {
            expect(error).toBeInstanceOf(MtlsBindingError);
          }
          // a bound against quadratic or looping parsers (generous: CI machines are loaded)
          expect(performance.now() - started).toBeLessThan(250);
        },
      ),
      params,
    );
  });
});
