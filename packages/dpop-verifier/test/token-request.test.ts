import { createProof } from '@popkit/dpop-client';
import { describe, expect, it } from 'vitest';
import {
  DPoPError,
  MemoryReplayStore,
  createNonceIssuer,
  createTokenRequestVerifier,
  mergeExposeHeaders,
  verifyTokenRequest,
} from '../src/index.ts';
import { clientKey } from './helpers.ts';

const TOKEN_URL = 'https://as.example.com/token';
const post = (dpop?: string | string[]) => ({
  method: 'POST',
  url: '/token',
  headers: dpop === undefined ? { host: 'as.example.com' } : { host: 'as.example.com', dpop },
});

async function failure(p: Promise<unknown>) {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(DPoPError);
  return e as DPoPError;
}

describe('verifyTokenRequest (authorization servers)', () => {
  it('returns the jkt for cnf and answers errors as 400 JSON', async () => {
    const k = await clientKey();
    const check = createTokenRequestVerifier({
      tokenEndpoint: TOKEN_URL,
      replay: new MemoryReplayStore(),
    });
    const proof = await createProof(k.keyPair, { method: 'POST', url: TOKEN_URL });
    const result = await check(post(proof));
    expect(result!.jkt).toBe(k.jkt);
    const replay = await failure(check(post(proof)));
    expect(replay.status).toBe(400);
    expect(JSON.parse(replay.body!)).toEqual({
      error: 'invalid_dpop_proof',
      error_description: 'The DPoP proof has already been used',
    });
    expect(replay.headers['Content-Type']).toBe('application/json');
    expect(replay.headers['Cache-Control']).toBe('no-store');
    expect(replay.headers['WWW-Authenticate']).toBeUndefined();
    const missing = await failure(check(post()));
    expect(missing.reason).toBe('missing_proof');
    const two = await failure(check(post([proof, proof])));
    expect([two.code, two.reason]).toEqual(['invalid_dpop_proof', 'multiple_proofs']);
    const wrongUrl = await failure(
      check(
        post(await createProof(k.keyPair, { method: 'POST', url: 'https://as.example.com/other' })),
      ),
    );
    expect(wrongUrl.reason).toBe('htu');
  });

  it('checks dpop_jkt (RFC 9449 §10) and a bound refresh token', async () => {
    const k = await clientKey();
    const other = await clientKey();
    const options = { tokenEndpoint: TOKEN_URL, replay: new MemoryReplayStore() };
    const proof = () => createProof(k.keyPair, { method: 'POST', url: TOKEN_URL });
    expect(
      (await verifyTokenRequest(post(await proof()), { ...options, dpopJkt: k.jkt })).jkt,
    ).toBe(k.jkt);
    expect(
      (await failure(verifyTokenRequest(post(await proof()), { ...options, dpopJkt: other.jkt })))
        .reason,
    ).toBe('dpop_jkt_mismatch');
    const check = createTokenRequestVerifier(options);
    expect((await failure(check(post(await proof()), { boundJkt: other.jkt }))).reason).toBe(
      'jkt_mismatch',
    );
    const optional = createTokenRequestVerifier({ ...options, required: false });
    expect(await optional(post())).toBeUndefined();
    expect((await failure(optional(post(), { boundJkt: k.jkt }))).reason).toBe('missing_proof');
  });

  it('nonce challenges are 400 use_dpop_nonce with DPoP-Nonce', async () => {
    const k = await clientKey();
    const nonces = createNonceIssuer({ secret: 'as-secret-'.padEnd(32, '!') });
    const replay = new MemoryReplayStore();
    const check = createTokenRequestVerifier({ tokenEndpoint: TOKEN_URL, replay, nonces });
    const e = await failure(
      check(post(await createProof(k.keyPair, { method: 'POST', url: TOKEN_URL }))),
    );
    expect([e.status, e.code]).toEqual([400, 'use_dpop_nonce']);
    expect(JSON.parse(e.body!).error).toBe('use_dpop_nonce');
    const nonce = e.headers['DPoP-Nonce']!;
    expect(nonce).toBe(await nonces.current(undefined, replay.epoch));
    expect(
      (await check(post(await createProof(k.keyPair, { method: 'POST', url: TOKEN_URL, nonce }))))!
        .jkt,
    ).toBe(k.jkt);
  });

  it('refusals and nonce-carrying results expose DPoP-Nonce, WWW-Authenticate and Date (clock-offset learning)', async () => {
    const k = await clientKey();
    const nonces = createNonceIssuer({ secret: 'as-secret-'.padEnd(32, '!') });
    const replay = new MemoryReplayStore();
    const check = createTokenRequestVerifier({ tokenEndpoint: TOKEN_URL, replay, nonces });
    const full = 'DPoP-Nonce, WWW-Authenticate, Date';
    const missing = await failure(
      check(post(await createProof(k.keyPair, { method: 'POST', url: TOKEN_URL }))),
    );
    expect(missing.headers['Access-Control-Expose-Headers']).toBe(full);
    const nonce = missing.headers['DPoP-Nonce']!;
    // a browser 10 minutes slow, past nonceIatSkew: refused, and told where to read the time
    const stale = await failure(
      check(
        post(
          await createProof(
            k.keyPair,
            { method: 'POST', url: TOKEN_URL, nonce },
            { clockOffset: -600 },
          ),
        ),
      ),
    );
    expect([stale.code, stale.reason]).toEqual(['use_dpop_nonce', 'iat_too_old']);
    expect(stale.headers['Access-Control-Expose-Headers']).toBe(full);
    const bad = await failure(check(post('not-a-proof')));
    expect([bad.code, bad.headers['Access-Control-Expose-Headers']]).toEqual([
      'invalid_dpop_proof',
      full,
    ]);
    // the prepared result of a proof with a nonce about to rotate carries the same list
    const rotating = createNonceIssuer({ secret: 'as-secret-'.padEnd(32, '!'), period: 1 });
    const soon = createTokenRequestVerifier({ tokenEndpoint: TOKEN_URL, replay, nonces: rotating });
    const old = await rotating.current(Date.now() - 1500, replay.epoch);
    const prepared = await soon.prepare(
      post(await createProof(k.keyPair, { method: 'POST', url: TOKEN_URL, nonce: old })),
    );
    expect(prepared!.headers).toEqual({
      'DPoP-Nonce': expect.any(String),
      'Access-Control-Expose-Headers': full,
    });
  });

  it('mergeExposeHeaders keeps the existing list, appends what is missing once, keeps *', () => {
    expect(mergeExposeHeaders(undefined)).toBe('DPoP-Nonce, WWW-Authenticate, Date');
    expect(mergeExposeHeaders('X-Request-Id', 'DPoP-Nonce, WWW-Authenticate, Date')).toBe(
      'X-Request-Id, DPoP-Nonce, WWW-Authenticate, Date',
    );
    expect(mergeExposeHeaders(['X-A', 'date'], ['DPoP-Nonce', 'Date', 'dpop-nonce'])).toBe(
      'X-A, date, DPoP-Nonce',
    );
    expect(mergeExposeHeaders('*')).toBe('*');
    expect(mergeExposeHeaders(' , ', ' ,Date,, ')).toBe('Date');
    expect(mergeExposeHeaders({}, [])).toBe('');
  });

  it('two-phase: prepare records nothing; commit records once; mismatches and failed grants never burn a jti', async () => {
    const k = await clientKey();
    const other = await clientKey();
    const replay = new MemoryReplayStore();
    const check = createTokenRequestVerifier({ tokenEndpoint: TOKEN_URL, replay });
    const proof = await createProof(k.keyPair, { method: 'POST', url: TOKEN_URL });

    // a dpop_jkt mismatch is found before the signature is checked, and records nothing
    const mismatch = await failure(check.prepare(post(proof), { dpopJkt: other.jkt }));
    expect([mismatch.status, mismatch.reason]).toEqual([400, 'dpop_jkt_mismatch']);
    // a request whose client authentication then fails: prepared, never committed
    const abandoned = await check.prepare(post(proof), { dpopJkt: k.jkt });
    expect(abandoned!.jkt).toBe(k.jkt);
    expect(replay.size).toBe(0);
    // the same proof, now with a successful client authentication: commit records it
    const prepared = await check.prepare(post(proof), { dpopJkt: k.jkt });
    const committed = prepared!.commit();
    expect(prepared!.commit()).toBe(committed); // once
    await committed;
    expect(replay.size).toBe(1);
    // a replay is found at prepare's commit, as a ready 400 JSON answer
    const again = await check.prepare(post(proof), { dpopJkt: k.jkt });
    const replayed = await failure(again!.commit());
    expect([replayed.status, replayed.code, replayed.reason]).toEqual([
      400,
      'invalid_dpop_proof',
      'replay',
    ]);
    expect(JSON.parse(replayed.body!).error).toBe('invalid_dpop_proof');
    // the one-call form records at once (and also checks dpop_jkt before recording)
    const fresh = await createProof(k.keyPair, { method: 'POST', url: TOKEN_URL });
    await failure(check(post(fresh), { dpopJkt: other.jkt }));
    expect(replay.size).toBe(1);
    await check(post(fresh), { dpopJkt: k.jkt });
    expect(replay.size).toBe(2);
  });

  it('an anonymous flood of fresh-key proofs records nothing until a commit', async () => {
    const replay = new MemoryReplayStore({ maxEntries: 10 });
    const check = createTokenRequestVerifier({ tokenEndpoint: TOKEN_URL, replay });
    for (let i = 0; i < 50; i++) {
      const attacker = await clientKey();
      await check.prepare(
        post(await createProof(attacker.keyPair, { method: 'POST', url: TOKEN_URL })),
      );
    }
    expect(replay.size).toBe(0);
    const k = await clientKey();
    const legit = await check.prepare(
      post(await createProof(k.keyPair, { method: 'POST', url: TOKEN_URL })),
    );
    await legit!.commit();
    expect(replay.size).toBe(1);
  });

  it('needs tokenEndpoint or allowedHosts: the request URL is never trusted silently', async () => {
    const replay = new MemoryReplayStore();
    expect(() => createTokenRequestVerifier({ replay })).toThrow(
      /"tokenEndpoint" or "allowedHosts"/,
    );
    const k = await clientKey();
    const check = createTokenRequestVerifier({ replay, allowedHosts: ['as.example.com'] });
    const proof = await createProof(k.keyPair, { method: 'POST', url: TOKEN_URL });
    const ok = await check({
      method: 'POST',
      url: '/token',
      headers: { host: 'as.example.com', dpop: proof },
      protocol: 'https',
    });
    expect(ok!.jkt).toBe(k.jkt);
    const other = await failure(
      check({ method: 'POST', url: '/token', headers: { host: 'evil.example', dpop: proof } }),
    );
    expect(other.reason).toBe('invalid_host');
    const dev = createTokenRequestVerifier({ replay, dangerouslyTrustRequestUrl: true });
    const p2 = await createProof(k.keyPair, { method: 'POST', url: 'http://evil.example/token' });
    expect(
      (await dev({ method: 'POST', url: '/token', headers: { host: 'evil.example', dpop: p2 } }))!
        .jkt,
    ).toBe(k.jkt);
  });
});
