import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createProof } from '@popkit/dpop-client';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuthOutcome, DPoPAuthOptions, RequestLike } from '../src/index.ts';
import { DPoPError, MemoryReplayStore, createDPoPAuth, createNonceIssuer } from '../src/index.ts';
import { AUDIENCE, ISSUER, URL_, clientKey, testIssuer } from './helpers.ts';

let as: Awaited<ReturnType<typeof testIssuer>>;
let signingKey: CryptoKey;
let jwks: { keys: object[] };

beforeAll(async () => {
  as = await testIssuer();
  signingKey = as.signingKey;
  jwks = as.jwks;
});

const accessToken = (claims?: Record<string, unknown>, header?: Record<string, unknown>) =>
  as.mint(claims, header);

function options(extra: Partial<DPoPAuthOptions> = {}): DPoPAuthOptions {
  return {
    accessToken: { issuer: ISSUER, audience: AUDIENCE, jwks: jwks as never },
    replay: new MemoryReplayStore(),
    ...(extra.publicUrl === undefined ? { allowedHosts: ['api.example.com'] } : {}),
    ...extra,
  };
}

function request(headers: Record<string, string>, extra: Partial<RequestLike> = {}): RequestLike {
  return { method: 'GET', url: URL_, headers: new Headers(headers), ...extra };
}

async function failure(promise: Promise<unknown>) {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DPoPError);
  return error as DPoPError;
}

describe('createDPoPAuth', () => {
  it('accepts a DPoP-bound RFC 9068 token with a matching proof', async () => {
    const k = await clientKey();
    const token = await accessToken({ cnf: { jkt: k.jkt } });
    const auth = createDPoPAuth(options());
    const proof = await createProof(k.keyPair, {
      method: 'GET',
      url: `${URL_}?page=2`,
      accessToken: token,
    });
    const result = await auth.verify(
      request({ authorization: `DPoP ${token}`, dpop: proof }, { url: `${URL_}?page=2` }),
    );
    expect(result).toMatchObject({
      scheme: 'DPoP',
      jkt: k.jkt,
      token,
      headers: {},
      claims: { sub: 'user-1', cnf: { jkt: k.jkt } },
    });
    // same request again: replay
    const replay = await failure(
      auth.verify(
        request({ authorization: `DPoP ${token}`, dpop: proof }, { url: `${URL_}?page=2` }),
      ),
    );
    expect([replay.code, replay.reason, replay.status]).toEqual([
      'invalid_dpop_proof',
      'replay',
      401,
    ]);
    expect(replay.headers['WWW-Authenticate']).toBe(
      'DPoP error="invalid_dpop_proof", error_description="The DPoP proof has already been used", algs="ES256 EdDSA Ed25519 PS256 RS256"',
    );
  });

  it('answers a request without credentials with a bare challenge (RFC 6750 §3.1)', async () => {
    const auth = createDPoPAuth(
      options({ realm: 'api', allowBearer: true, algorithms: ['ES256'] }),
    );
    const e = await failure(auth.verify(request({})));
    expect([e.status, e.reason]).toEqual([401, 'missing_authorization']);
    expect(e.headers['WWW-Authenticate']).toBe(
      'DPoP realm="api", algs="ES256", Bearer realm="api"',
    );
    expect(e.headers['Cache-Control']).toBe('no-store');
    const other = await failure(auth.verify(request({ authorization: 'Basic dXNlcjpwYXNz' })));
    expect(other.reason).toBe('missing_authorization');
  });

  it('answers a token sent in the query or a form body invalid_request, with or without Authorization (RFC 6750 §2)', async () => {
    const k = await clientKey();
    const token = await accessToken({ cnf: { jkt: k.jkt } });
    const auth = createDPoPAuth(options());
    const queryOnly = await failure(
      auth.verify(request({}, { url: `${URL_}?a=1&access_token=${token}` })),
    );
    expect([queryOnly.status, queryOnly.code, queryOnly.reason]).toEqual([
      400,
      'invalid_request',
      'token_in_query',
    ]);
    const proof = await createProof(k.keyPair, {
      method: 'GET',
      url: `${URL_}?access_token=${token}`,
      accessToken: token,
    });
    const both = await failure(
      auth.verify(
        request(
          { authorization: `DPoP ${token}`, dpop: proof },
          { url: `${URL_}?access_token=${token}` },
        ),
      ),
    );
    expect([both.code, both.reason]).toEqual(['invalid_request', 'token_in_query']);
    const formOnly = await failure(
      auth.verify(
        request(
          { 'content-type': 'application/x-www-form-urlencoded' },
          { method: 'POST', body: { access_token: token } },
        ),
      ),
    );
    expect([formOnly.code, formOnly.reason]).toEqual(['invalid_request', 'token_in_body']);
    // a query without a token is still a bare challenge
    const none = await failure(auth.verify(request({}, { url: `${URL_}?access=1` })));
    expect(none.reason).toBe('missing_authorization');
  });

  it('enforces one Authorization and one DPoP header, also when Node merged or dropped duplicates', async () => {
    const k = await clientKey();
    const token = await accessToken({ cnf: { jkt: k.jkt } });
    const proof = await k.proof({ accessToken: token });
    const auth = createDPoPAuth(options());
    const raw = (...pairs: string[]) => ({
      method: 'GET',
      url: URL_,
      headers: {},
      rawHeaders: pairs,
    });
    const cases: Array<[RequestLike, string]> = [
      [
        raw('Authorization', `DPoP ${token}`, 'authorization', `DPoP ${token}`, 'DPoP', proof),
        'multiple_authorization',
      ],
      [
        request({ authorization: `DPoP ${token}, DPoP ${token}`, dpop: proof }),
        'multiple_authorization',
      ],
      [raw('Authorization', `DPoP ${token}`, 'DPoP', proof, 'dpop', proof), 'multiple_proofs'],
      [request({ authorization: `DPoP ${token}`, dpop: `${proof}, ${proof}` }), 'multiple_proofs'],
      [
        {
          method: 'GET',
          url: URL_,
          headers: { authorization: `DPoP ${token}`, dpop: [proof, proof] },
        },
        'multiple_proofs',
      ],
      [request({ authorization: 'DPoP not a token' }), 'malformed_authorization'],
      [request({ authorization: `DPoP ${'a'.repeat(20000)}` }), 'malformed_authorization'],
    ];
    for (const [req, reason] of cases) {
      const e = await failure(auth.verify(req));
      expect([e.code, e.reason, e.status]).toEqual(['invalid_request', reason, 400]);
    }
  });

  it('binding rules: scheme, downgrade, unbound tokens, unknown cnf members, stolen tokens', async () => {
    const k = await clientKey();
    const attacker = await clientKey();
    const bound = await accessToken({ cnf: { jkt: k.jkt } });
    const unbound = await accessToken();
    const strict = createDPoPAuth(options());
    const mixed = createDPoPAuth(options({ allowBearer: true }));
    const proofFor = (key: typeof k, token: string) => key.proof({ accessToken: token }, {});
    const check = async (
      auth: typeof strict,
      headers: Record<string, string>,
      code: string,
      reason: string,
    ) => {
      const e = await failure(auth.verify(request(headers)));
      expect([e.code, e.reason]).toEqual([code, reason]);
      return e;
    };
    const liveProof = async (key: typeof k, token: string) =>
      createProof(key.keyPair, { method: 'GET', url: URL_, accessToken: token });
    await check(
      strict,
      { authorization: `Bearer ${unbound}` },
      'invalid_token',
      'bearer_not_allowed',
    );
    const downgrade = await check(
      mixed,
      { authorization: `Bearer ${bound}` },
      'invalid_token',
      'downgrade',
    );
    expect(downgrade.headers['WWW-Authenticate']).toBe(
      'Bearer error="invalid_token", error_description="A DPoP-bound access token must be sent with the DPoP scheme", DPoP algs="ES256 EdDSA Ed25519 PS256 RS256"',
    );
    await check(
      strict,
      { authorization: `DPoP ${unbound}`, dpop: await liveProof(k, unbound) },
      'invalid_token',
      'token_not_bound',
    );
    await check(strict, { authorization: `DPoP ${bound}` }, 'invalid_dpop_proof', 'missing_proof');
    const stolen = await check(
      strict,
      { authorization: `DPoP ${bound}`, dpop: await liveProof(attacker, bound) },
      'invalid_token',
      'jkt_mismatch',
    );
    expect(stolen.status).toBe(401);
    const otherToken = await accessToken({ cnf: { jkt: k.jkt } });
    await check(
      strict,
      { authorization: `DPoP ${bound}`, dpop: await liveProof(k, otherToken) },
      'invalid_dpop_proof',
      'ath_mismatch',
    );
    const weird = await accessToken({ cnf: { jkt: k.jkt, jwk: { kty: 'EC' } } });
    await check(
      strict,
      { authorization: `DPoP ${weird}`, dpop: await liveProof(k, weird) },
      'invalid_token',
      'cnf_unknown',
    );
    const notObject = await accessToken({ cnf: 'x' });
    await check(mixed, { authorization: `Bearer ${notObject}` }, 'invalid_token', 'cnf_malformed');
    // an empty cnf object is malformed, on either scheme
    const empty = await accessToken({ cnf: {} });
    await check(mixed, { authorization: `Bearer ${empty}` }, 'invalid_token', 'cnf_malformed');
    await check(
      strict,
      { authorization: `DPoP ${empty}`, dpop: await liveProof(k, empty) },
      'invalid_token',
      'cnf_malformed',
    );
    const mixedOk = await mixed.verify(request({ authorization: `bearer ${unbound}` }));
    expect(mixedOk.scheme).toBe('Bearer');
    void proofFor;
  });

  it('rejects invalid access tokens as invalid_token without leaking them', async () => {
    const k = await clientKey();
    const auth = createDPoPAuth(options());
    const wrongAud = await new SignJWT({ cnf: { jkt: k.jkt } })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt' })
      .setIssuer(ISSUER)
      .setAudience('https://other.example.com')
      .setExpirationTime('5m')
      .sign(signingKey);
    const noTyp = await accessToken({ cnf: { jkt: k.jkt } }, { typ: 'JWT' });
    const expired = await new SignJWT({ cnf: { jkt: k.jkt } })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(signingKey);
    const reasons = new Map([
      [wrongAud, 'token_audience'],
      [noTyp, 'token_type'],
      [expired, 'token_expired'],
      ['abc.def.ghi', 'token_malformed'],
      ['opaque-token', 'token_malformed'],
    ]);
    for (const [token, reason] of reasons) {
      const e = await failure(
        auth.verify(
          request({
            authorization: `DPoP ${token}`,
            dpop: await createProof(k.keyPair, { method: 'GET', url: URL_, accessToken: token }),
          }),
        ),
      );
      expect([e.code, e.reason]).toEqual(['invalid_token', reason]);
      expect(e.message).not.toContain(token.slice(0, 16));
      expect(e.headers['WWW-Authenticate']).toMatch(/^DPoP error="invalid_token"/);
    }
  });

  it('certificate-bound tokens need the presented certificate; tokens bound both ways need both', async () => {
    const k = await clientKey();
    const thumb = 'bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2';
    const other = 'A'.repeat(43);
    let presented: string | undefined = thumb;
    const withCert = createDPoPAuth(options({ allowBearer: true, certificate: () => presented }));
    const withoutHook = createDPoPAuth(options({ allowBearer: true }));
    const mtls = await accessToken({ cnf: { 'x5t#S256': thumb } });
    expect((await withCert.verify(request({ authorization: `Bearer ${mtls}` }))).scheme).toBe(
      'Bearer',
    );
    expect(
      (await failure(withoutHook.verify(request({ authorization: `Bearer ${mtls}` })))).reason,
    ).toBe('certificate_missing');
    presented = undefined;
    expect(
      (await failure(withCert.verify(request({ authorization: `Bearer ${mtls}` })))).reason,
    ).toBe('certificate_missing');
    presented = other;
    expect(
      (await failure(withCert.verify(request({ authorization: `Bearer ${mtls}` })))).reason,
    ).toBe('certificate_mismatch');
    const both = await accessToken({ cnf: { jkt: k.jkt, 'x5t#S256': thumb } });
    const proof = () => createProof(k.keyPair, { method: 'GET', url: URL_, accessToken: both });
    expect(
      (
        await failure(
          withCert.verify(request({ authorization: `DPoP ${both}`, dpop: await proof() })),
        )
      ).reason,
    ).toBe('certificate_mismatch');
    presented = thumb;
    const ok = await withCert.verify(
      request({ authorization: `DPoP ${both}`, dpop: await proof() }),
    );
    expect(ok.jkt).toBe(k.jkt);
    // certificate information the client influences that cannot be used: 401, never a 5xx
    const throwing = createDPoPAuth(
      options({
        certificate: () => {
          throw new Error('the ssl-client-cert header is malformed');
        },
      }),
    );
    const unusable = await failure(throwing.verify(request({ authorization: `Bearer ${mtls}` })));
    expect([unusable.status, unusable.code, unusable.reason]).toEqual([
      401,
      'invalid_token',
      'certificate_unusable',
    ]);
    expect(unusable.headers['Retry-After']).toBeUndefined();
    const malformed = await accessToken({ cnf: { 'x5t#S256': 'ab:cd:ef' } });
    expect(
      (await failure(withCert.verify(request({ authorization: `Bearer ${malformed}` })))).reason,
    ).toBe('cnf_malformed');
  });

  it('never trusts the request URL silently: publicUrl, allowedHosts or a loud development opt-in', async () => {
    const bare = { accessToken: options().accessToken, replay: new MemoryReplayStore() };
    expect(() => createDPoPAuth(bare)).toThrow(/"publicUrl" or "allowedHosts" is required/);
    expect(() => createDPoPAuth({ ...bare, dangerouslyTrustRequestUrl: 'yes' as never })).toThrow(
      /dangerouslyTrustRequestUrl/,
    );
    // a request captured for service A, replayed to service B that shares the token audience
    const k = await clientKey();
    const token = await accessToken({ cnf: { jkt: k.jkt } });
    const forA = await createProof(k.keyPair, {
      method: 'GET',
      url: 'https://a.example.com/orders',
      accessToken: token,
    });
    const serviceB = createDPoPAuth({ ...bare, publicUrl: 'https://b.example.com' });
    const sent = { authorization: `DPoP ${token}`, dpop: forA };
    const viaHost = await failure(
      serviceB.verify({
        method: 'GET',
        url: '/orders',
        headers: { ...sent, host: 'a.example.com' },
      }),
    );
    expect(viaHost.reason).toBe('htu');
    // with allowedHosts, an absolute-form target or Host naming another host is refused
    const hostsB = createDPoPAuth({ ...bare, allowedHosts: ['b.example.com'] });
    for (const r of [
      { method: 'GET', url: 'https://a.example.com/orders', headers: sent },
      { method: 'GET', url: '/orders', headers: { ...sent, host: 'a.example.com' } },
    ]) {
      expect((await failure(hostsB.verify(r))).reason).toBe('invalid_host');
    }
    // the development opt-in trusts the request, knowingly
    const dev = createDPoPAuth({ ...bare, dangerouslyTrustRequestUrl: true });
    expect(
      (
        await dev.verify({
          method: 'GET',
          url: '/orders',
          protocol: 'https',
          headers: { ...sent, host: 'a.example.com' },
        })
      ).jkt,
    ).toBe(k.jkt);
    // a dot segment escaping the publicUrl prefix is refused, not normalised away
    const prefixed = createDPoPAuth({ ...bare, publicUrl: 'https://api.example.com/svc' });
    const escape = await failure(
      prefixed.verify({ method: 'GET', url: '/../admin', headers: sent }),
    );
    expect([escape.status, escape.code, escape.reason]).toEqual([
      400,
      'invalid_request',
      'invalid_path',
    ]);
  });

  it('sender-constrained only by default: DPoP or mTLS, nothing else (FAPI 2.0)', async () => {
    const k = await clientKey();
    const thumb = 'bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2';
    // a certificate source opens the Bearer scheme to certificate-bound tokens only
    const fapi = createDPoPAuth(options({ certificate: () => thumb }));
    const mtls = await accessToken({ cnf: { 'x5t#S256': thumb } });
    const unbound = await accessToken({});
    const dpopBound = await accessToken({ cnf: { jkt: k.jkt } });
    expect((await fapi.verify(request({ authorization: `Bearer ${mtls}` }))).scheme).toBe('Bearer');
    const notBound = await failure(fapi.verify(request({ authorization: `Bearer ${unbound}` })));
    expect([notBound.code, notBound.reason, notBound.status]).toEqual([
      'invalid_token',
      'token_not_bound',
      401,
    ]);
    // both schemes are offered in the challenge, the error on the one the client used
    expect(notBound.headers['WWW-Authenticate']).toMatch(
      /^Bearer error="invalid_token".*, DPoP algs=/,
    );
    const downgrade = await failure(fapi.verify(request({ authorization: `Bearer ${dpopBound}` })));
    expect(downgrade.reason).toBe('downgrade');
    const ok = await fapi.verify(
      request({
        authorization: `DPoP ${dpopBound}`,
        dpop: await createProof(k.keyPair, { method: 'GET', url: URL_, accessToken: dpopBound }),
      }),
    );
    expect(ok.scheme).toBe('DPoP');
    // without a certificate source the Bearer scheme is closed (refused before the token is read)
    const dpopOnly = createDPoPAuth(options());
    const closed = await failure(dpopOnly.verify(request({ authorization: `Bearer ${mtls}` })));
    expect(closed.reason).toBe('bearer_not_allowed');
    expect(closed.headers['WWW-Authenticate']).not.toMatch(/Bearer/);
    // unbound bearer tokens only by explicit choice (the old name still works)
    for (const extra of [{ allowUnboundBearer: true }, { allowBearer: true }]) {
      const mixed = createDPoPAuth(options(extra));
      expect((await mixed.verify(request({ authorization: `Bearer ${unbound}` }))).scheme).toBe(
        'Bearer',
      );
    }
    expect(() => createDPoPAuth(options({ allowBearer: true, allowUnboundBearer: true }))).toThrow(
      /allowBearer/,
    );
  });

  it('publicUrl maps proxied paths; request-derived URLs validate Host and X-Forwarded-*', async () => {
    const k = await clientKey();
    const token = await accessToken({ cnf: { jkt: k.jkt } });
    const proofFor = (url: string) =>
      createProof(k.keyPair, { method: 'GET', url, accessToken: token });
    const prefixed = createDPoPAuth(options({ publicUrl: 'https://api.example.com/orders-svc/' }));
    await prefixed.verify({
      method: 'GET',
      url: '/items?x=1',
      headers: {
        host: 'internal:8080',
        authorization: `DPoP ${token}`,
        dpop: await proofFor('https://api.example.com/orders-svc/items'),
      },
    });
    const derived = createDPoPAuth(
      options({ allowedHosts: ['api.example.com'], trustProxy: true }),
    );
    await derived.verify({
      method: 'GET',
      url: '/orders',
      headers: {
        host: 'internal:8080',
        'x-forwarded-host': 'api.example.com',
        'x-forwarded-proto': 'https',
        authorization: `DPoP ${token}`,
        dpop: await proofFor(URL_),
      },
    });
    const plain = createDPoPAuth(options());
    for (const host of [
      'evil.example.com/orders?',
      'a b',
      'user@api.example.com',
      'api.example.com#x',
      '',
    ]) {
      const e = await failure(
        plain.verify({
          method: 'GET',
          url: '/orders',
          headers: { host, authorization: `DPoP ${token}`, dpop: await proofFor(URL_) },
        }),
      );
      expect([e.code, e.reason]).toEqual(['invalid_request', 'invalid_host']);
    }
    const notAllowed = await failure(
      derived.verify({
        method: 'GET',
        url: '/orders',
        headers: {
          host: 'x',
          'x-forwarded-host': 'evil.example.com',
          authorization: `DPoP ${token}`,
          dpop: await proofFor('https://evil.example.com/orders'),
        },
      }),
    );
    expect(notAllowed.reason).toBe('invalid_host');
    const ambiguous = await failure(
      derived.verify({
        method: 'GET',
        url: '/orders',
        headers: {
          host: 'x',
          'x-forwarded-host': 'api.example.com, evil.example.com',
          authorization: `DPoP ${token}`,
          dpop: await proofFor(URL_),
        },
      }),
    );
    expect(ambiguous.reason).toBe('invalid_host');
  });

  it('nonces: challenge with DPoP-Nonce, per-request policy, proactive rotation header', async () => {
    const k = await clientKey();
    const token = await accessToken({ cnf: { jkt: k.jkt } });
    const nonces = createNonceIssuer({ secret: 'n'.repeat(32) });
    const replay = new MemoryReplayStore();
    const auth = createDPoPAuth(
      options({ nonces, replay, algorithms: ['ES256'], requireNonce: (r) => r.method !== 'GET' }),
    );
    const get = await auth.verify(
      request({
        authorization: `DPoP ${token}`,
        dpop: await createProof(k.keyPair, { method: 'GET', url: URL_, accessToken: token }),
      }),
    );
    expect(get.headers).toEqual({});
    const post = async (nonce?: string) =>
      request(
        {
          authorization: `DPoP ${token}`,
          dpop: await createProof(k.keyPair, {
            method: 'POST',
            url: URL_,
            accessToken: token,
            ...(nonce ? { nonce } : {}),
          }),
        },
        { method: 'POST' },
      );
    const e = await failure(auth.verify(await post()));
    expect(e.status).toBe(401);
    expect(e.headers['WWW-Authenticate']).toBe(
      'DPoP error="use_dpop_nonce", error_description="A DPoP nonce is required", algs="ES256"',
    );
    // bound to the replay store's epoch: a nonce from before a restart is not valid
    expect(e.headers['DPoP-Nonce']).toBe(await nonces.current(undefined, replay.epoch));
    expect(e.headers['DPoP-Nonce']).not.toBe(await nonces.current());
    expect((await auth.verify(await post(e.headers['DPoP-Nonce']))).scheme).toBe('DPoP');
    const old = await nonces.current(Date.now() - 60_000, replay.epoch);
    expect((await auth.verify(await post(old))).headers['DPoP-Nonce']).toBe(
      await nonces.current(undefined, replay.epoch),
    );
  });

  it('reports typed outcomes to onResult, and a throwing observer changes nothing', async () => {
    const k = await clientKey();
    const token = await accessToken({ cnf: { jkt: k.jkt } });
    const outcomes: AuthOutcome[] = [];
    const auth = createDPoPAuth(options({ onResult: (o) => (outcomes.push(o), undefined) }));
    await auth.verify(
      request({
        authorization: `DPoP ${token}`,
        dpop: await createProof(k.keyPair, { method: 'GET', url: URL_, accessToken: token }),
      }),
    );
    await auth.verify(request({ authorization: `DPoP ${token}` })).catch(() => {});
    expect(
      outcomes.map((o) =>
        o.outcome === 'accepted' ? [o.outcome, o.scheme, o.bound] : [o.outcome, o.code, o.reason],
      ),
    ).toEqual([
      ['accepted', 'DPoP', ['jkt']],
      ['rejected', 'invalid_dpop_proof', 'missing_proof'],
    ]);
    expect(JSON.stringify(outcomes)).not.toContain(token.slice(0, 20));
    // the memory store reports its fill level with every outcome (1 entry of its capacity)
    expect(outcomes[0]!.replayFill).toBeGreaterThan(0);
    expect(outcomes[0]!.replayFill).toBeLessThan(0.001);
    expect(outcomes[1]!.replayFill).toBe(outcomes[0]!.replayFill);
    const noisy = createDPoPAuth(
      options({
        onResult: () => {
          throw new Error('metrics down');
        },
      }),
    );
    await noisy.verify(
      request({
        authorization: `DPoP ${token}`,
        dpop: await createProof(k.keyPair, { method: 'GET', url: URL_, accessToken: token }),
      }),
    );
  });

  it('validates options when built', () => {
    const bad: Array<[Partial<DPoPAuthOptions>, RegExp]> = [
      [{ accessToken: undefined as never }, /"accessToken"/],
      [{ accessToken: { issuer: '', audience: 'a', jwks: jwks as never } }, /issuer/],
      [{ accessToken: { issuer: 'i', audience: 'a', jwks: 42 as never } }, /jwks/],
      [
        { accessToken: { issuer: 'i', audience: 'a', jwks: jwks as never, algorithms: ['HS256'] } },
        /algorithms/,
      ],
      [{ allowBearer: 'yes' as never }, /allowUnboundBearer/],
      [{ publicUrl: 'not a url' }, /publicUrl/],
      [{ publicUrl: 'https://x.example/?q=1' }, /publicUrl/],
      [{ allowedHosts: ['a/b'] }, /allowedHosts/],
      [{ requireNonce: true }, /requireNonce/],
      [{ replay: undefined as never }, /replay/],
    ];
    for (const [extra, message] of bad)
      expect(() => createDPoPAuth({ ...options(), ...extra })).toThrow(message);
  });

  describe('RFC 7662 introspection (real HTTP server)', () => {
    let endpoint: string;
    let calls = 0;
    // tokens named slow-* are answered only when `release` is called
    let release: () => void = () => undefined;
    let held = Promise.resolve();
    const hold = () => {
      held = new Promise<void>((r) => {
        release = r;
      });
    };
    let close: () => Promise<void>;
    const active = new Map<string, object>();
    // tokens answered with a body that is not an RFC 7662 JSON object
    const rawAnswers = new Map<string, string | Buffer>([
      ['raw-html', '<html>Service Unavailable</html>'],
      ['raw-array', '[{"active":true}]'],
      ['raw-string', '"active"'],
      ['raw-empty', ''],
      ['raw-huge', JSON.stringify({ active: false, pad: 'x'.repeat(100_000) })],
      ['raw-utf8', Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])],
    ]);
    beforeAll(async () => {
      const server = createServer(async (req, res) => {
        calls++;
        let body = '';
        for await (const c of req) body += c;
        const token = new URLSearchParams(body).get('token')!;
        if (token.startsWith('slow-')) await held;
        if (req.headers.authorization !== `Basic ${btoa('rs:secret')}`) {
          res.writeHead(401).end();
          return;
        }
        const raw = rawAnswers.get(token);
        if (raw !== undefined) return void res.writeHead(200).end(raw);
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify(active.get(token) ?? { active: false }));
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/introspect`;
      close = () => new Promise((r) => server.close(() => r()));
    });
    afterAll(() => close());

    const introspected = (extra: object = {}) =>
      createDPoPAuth({
        accessToken: {
          introspection: {
            endpoint,
            clientId: 'rs',
            clientSecret: 'secret',
            issuer: ISSUER,
            audience: AUDIENCE,
            ...extra,
          },
        },
        replay: new MemoryReplayStore(),
        allowedHosts: ['api.example.com'],
      });
    const nowSec = () => Math.floor(Date.now() / 1000);

    it('an answer that is not a JSON object (or too large) is a broken server: 503, not a refusal of the token', async () => {
      const k = await clientKey();
      const auth = introspected();
      for (const token of rawAnswers.keys()) {
        const send = async () =>
          auth.verify(
            request({
              authorization: `DPoP ${token}`,
              dpop: await createProof(k.keyPair, { method: 'GET', url: URL_, accessToken: token }),
            }),
          );
        calls = 0;
        for (let i = 0; i < 2; i++) {
          const e = await failure(send());
          expect([token, e.status, e.code, e.reason]).toEqual([
            token,
            503,
            'server_error',
            'introspection_unavailable',
          ]);
          expect(e.headers['Retry-After']).toBe('5');
        }
        expect([token, calls]).toEqual([token, 2]); // not remembered as a refused token
      }
    });

    it('accepts active bound tokens, caches them briefly, rejects inactive ones', async () => {
      const k = await clientKey();
      active.set('opaque-1', {
        active: true,
        token_type: 'DPoP',
        cnf: { jkt: k.jkt },
        exp: nowSec() + 60,
        iss: ISSUER,
        aud: [AUDIENCE, 'https://other.example'],
        sub: 'u',
      });
      const auth = introspected();
      const go = async (token: string) =>
        auth.verify(
          request({
            authorization: `DPoP ${token}`,
            dpop: await createProof(k.keyPair, { method: 'GET', url: URL_, accessToken: token }),
          }),
        );
      calls = 0;
      expect((await go('opaque-1')).claims.sub).toBe('u');
      await go('opaque-1');
      expect(calls).toBe(1);
      expect((await failure(go('opaque-2'))).reason).toBe('token_inactive');
      const down = createDPoPAuth({
        accessToken: {
          introspection: {
            endpoint: 'http://127.0.0.1:1/x',
            clientId: 'rs',
            clientSecret: 'secret',
            issuer: ISSUER,
            audience: AUDIENCE,
            timeout: 500,
          },
        },
        replay: new MemoryReplayStore(),
        allowedHosts: ['api.example.com'],
      });
      const k2 = await clientKey();
      const e = await failure(
        down.verify(
          request({
            authorization: 'DPoP opaque-1',
            dpop: await createProof(k2.keyPair, {
              method: 'GET',
              url: URL_,
              accessToken: 'opaque-1',
            }),
          }),
        ),
      );
      expect([e.code, e.status]).toEqual(['server_error', 503]);
    });

    it('checks issuer, audience, nbf and token type; refused tokens are cached briefly; cheap checks come first', async () => {
      const k = await clientKey();
      const good = {
        active: true,
        token_type: 'DPoP',
        cnf: { jkt: k.jkt },
        exp: nowSec() + 60,
        iss: ISSUER,
        aud: AUDIENCE,
      };
      const cases: Array<[string, object]> = [
        ['wrong-iss', { ...good, iss: 'https://evil.example' }],
        ['no-iss', { ...good, iss: undefined }],
        ['wrong-aud', { ...good, aud: 'https://other.example' }],
        ['no-aud', { ...good, aud: undefined }],
        ['future-nbf', { ...good, nbf: nowSec() + 600 }],
        ['expired', { ...good, exp: nowSec() - 60 }],
        ['refresh', { ...good, token_type: 'refresh_token' }],
      ];
      const reasons: Record<string, string> = {
        'wrong-iss': 'token_issuer',
        'no-iss': 'token_issuer',
        'wrong-aud': 'token_audience',
        'no-aud': 'token_audience',
        'future-nbf': 'token_not_yet_valid',
        expired: 'token_expired',
        refresh: 'token_type',
      };
      const auth = introspected();
      for (const [token, body] of cases) {
        active.set(token, body);
        const send = async () =>
          auth.verify(
            request({
              authorization: `DPoP ${token}`,
              dpop: await createProof(k.keyPair, { method: 'GET', url: URL_, accessToken: token }),
            }),
          );
        calls = 0;
        const e = await failure(send());
        expect([token, e.code, e.reason]).toEqual([token, 'invalid_token', reasons[token]]);
        // the refusal is remembered, with its reason: no second call
        expect((await failure(send())).reason).toBe(reasons[token]);
        expect([token, calls]).toEqual([token, 1]);
      }
      // explicit opt-outs accept tokens without iss / aud
      active.set('bare', { ...good, iss: undefined, aud: undefined });
      const lax = introspected({ issuer: false, audience: false });
      await lax.verify(
        request({
          authorization: 'DPoP bare',
          dpop: await createProof(k.keyPair, { method: 'GET', url: URL_, accessToken: 'bare' }),
        }),
      );
      // no call for requests that fail cheap checks: malformed token, DPoP scheme without a proof
      calls = 0;
      await failure(auth.verify(request({ authorization: 'DPoP garbage-without-proof' })));
      await failure(auth.verify(request({ authorization: 'DPoP not a token' })));
      await failure(auth.verify(request({ authorization: 'Bearer unbound-and-closed' })));
      expect(calls).toBe(0);
      // issuer and audience are required unless disabled explicitly
      for (const missing of [{ issuer: undefined }, { audience: undefined }, { audience: [] }]) {
        expect(() => introspected(missing)).toThrow(/issuer|audience/);
      }
    });

    it('bounds outbound calls: the proof is checked first, one call per new token, a cap on calls in flight', async () => {
      const k = await clientKey();
      const attacker = await clientKey();
      const good = (jkt: string) => ({
        active: true,
        token_type: 'DPoP',
        cnf: { jkt },
        exp: nowSec() + 60,
        iss: ISSUER,
        aud: AUDIENCE,
      });
      const auth = introspected({ maxConcurrent: 2 });
      const send = async (token: string, key = k, proofFor = token) =>
        auth.verify(
          request({
            authorization: `DPoP ${token}`,
            dpop: await createProof(key.keyPair, {
              method: 'GET',
              url: URL_,
              accessToken: proofFor,
            }),
          }),
        );
      // Distinct garbage tokens with proofs that do not check out cost no call: a proof for
      // another token (ath), a replayed proof, a proof for another URL, a forged signature.
      calls = 0;
      const replayed = await createProof(k.keyPair, { method: 'GET', url: URL_, accessToken: 'x' });
      active.set('x', good(k.jkt));
      await auth.verify(request({ authorization: 'DPoP x', dpop: replayed }));
      expect(calls).toBe(1);
      const otherUrl = await createProof(k.keyPair, {
        method: 'GET',
        url: 'https://api.example.com/other',
        accessToken: 'junk-3',
      });
      const reasons = [
        (await failure(send('junk-1', k, 'another-token'))).reason,
        (await failure(auth.verify(request({ authorization: 'DPoP x', dpop: replayed })))).reason,
        (await failure(auth.verify(request({ authorization: 'DPoP junk-3', dpop: otherUrl }))))
          .reason,
        (
          await failure(
            auth.verify(
              request({
                authorization: 'DPoP junk-4',
                dpop: `${replayed.slice(0, replayed.lastIndexOf('.'))}.${'A'.repeat(86)}`,
              }),
            ),
          )
        ).reason,
      ];
      expect(reasons).toEqual(['ath_mismatch', 'replay', 'htu', 'signature']);
      expect(calls).toBe(1);
      // A valid proof by another key: one call, then jkt_mismatch, and its jti is not burned.
      active.set('victim', good(k.jkt));
      const foreign = await createProof(attacker.keyPair, {
        method: 'GET',
        url: URL_,
        accessToken: 'victim',
      });
      const mismatch = await failure(
        auth.verify(request({ authorization: 'DPoP victim', dpop: foreign })),
      );
      expect([mismatch.code, mismatch.reason]).toEqual(['invalid_token', 'jkt_mismatch']);
      expect(calls).toBe(2);
      // Concurrent requests with one new token share one call.
      hold();
      active.set('slow-shared', good(k.jkt));
      calls = 0;
      const shared = Array.from({ length: 8 }, () => send('slow-shared'));
      await new Promise((r) => setTimeout(r, 100));
      release();
      expect((await Promise.all(shared)).every((r) => r.claims.iss === ISSUER)).toBe(true);
      expect(calls).toBe(1);
      // At most maxConcurrent calls in flight; beyond: 503 with Retry-After, and cached tokens
      // are still served meanwhile.
      hold();
      calls = 0;
      active.set('slow-a', good(k.jkt));
      active.set('slow-b', good(k.jkt));
      active.set('slow-c', good(k.jkt));
      const a = send('slow-a');
      const b = send('slow-b');
      await new Promise((r) => setTimeout(r, 100));
      const busy = await failure(send('slow-c'));
      expect([busy.code, busy.reason, busy.status, busy.headers['Retry-After']]).toEqual([
        'server_error',
        'introspection_busy',
        503,
        '1',
      ]);
      expect((await send('slow-shared')).claims.iss).toBe(ISSUER);
      release();
      await Promise.all([a, b]);
      expect(calls).toBe(2);
      expect((await send('slow-c')).claims.iss).toBe(ISSUER);
      expect(calls).toBe(3);
      expect(() => introspected({ maxConcurrent: 0 })).toThrow(/maxConcurrent/);
    });

    it('a format precheck refuses garbage without a call; a waiting request is served when a slot frees', async () => {
      const k = await clientKey();
      const good = {
        active: true,
        token_type: 'DPoP',
        cnf: { jkt: k.jkt },
        exp: nowSec() + 60,
        iss: ISSUER,
        aud: AUDIENCE,
        sub: 'u',
      };
      active.set('pk_slow-1', good);
      active.set('pk_2', good);
      const auth = introspected({
        maxConcurrent: 1,
        precheck: (token: string) => {
          if (token === 'pk_throws') throw new Error('checker bug');
          return token.startsWith('pk_');
        },
      });
      const send = async (token: string) =>
        auth.verify(
          request({
            authorization: `DPoP ${token}`,
            dpop: await createProof(k.keyPair, { method: 'GET', url: URL_, accessToken: token }),
          }),
        );
      calls = 0;
      for (const garbage of ['garbage-1', 'pk_throws']) {
        const e = await failure(send(garbage));
        expect([e.status, e.code, e.reason]).toEqual([401, 'invalid_token', 'token_invalid']);
      }
      expect(calls).toBe(0);
      // one slot: the second token waits for it instead of a 503, and is served
      hold();
      const first = send('pk_slow-1');
      await new Promise((r) => setTimeout(r, 50));
      const second = send('pk_2');
      await new Promise((r) => setTimeout(r, 50));
      release();
      expect((await first).claims.sub).toBe('u');
      expect((await second).claims.sub).toBe('u');
      expect(calls).toBe(2);
      expect(() => introspected({ precheck: 'yes' })).toThrow(/precheck/);
      expect(() => introspected({ queueTimeout: -1 })).toThrow(/queueTimeout/);
    });
  });
});
