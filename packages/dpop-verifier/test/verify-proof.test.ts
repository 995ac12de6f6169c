import { describe, expect, it } from 'vitest';
import { backend } from '#crypto';
import { accessTokenHash, thumbprint } from '@popkit/dpop-client';
import type { ReplayStore, VerifyProofOptions } from '../src/index.ts';
import {
  DPoPConfigError,
  DPoPError,
  MemoryReplayStore,
  createNonceIssuer,
  createProofVerifier,
  verifyProof,
} from '../src/index.ts';
import {
  RFC9449_JKT,
  RFC9449_JWK,
  RFC9449_PROOF,
  RFC9449_PROOF_CLAIMS,
} from '../../../test-vectors/rfc.ts';
import { NOW, URL_, clientKey, nowSec, rawKey } from './helpers.ts';

/** A store that started an hour before NOW (a fresh one refuses proofs older than its start). */
function runningStore(options: { maxEntries?: number } = {}): MemoryReplayStore {
  let t = NOW - 3_600_000;
  const store = new MemoryReplayStore({ ...options, now: () => t });
  t = NOW;
  return store;
}

const base = (extra: Partial<VerifyProofOptions> = {}): VerifyProofOptions => ({
  replay: runningStore(),
  now: () => NOW,
  ...extra,
});

async function rejects(promise: Promise<unknown>, code: string, reason: string) {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, `expected ${code}/${reason}`).toBeInstanceOf(DPoPError);
  expect({ code: (error as DPoPError).code, reason: (error as DPoPError).reason }).toEqual({
    code,
    reason,
  });
  return error as DPoPError;
}

describe('verifyProof: RFC 9449 vectors', () => {
  it('accepts the RFC 9449 §4.1 example proof at its time and returns the §6.1 jkt', async () => {
    const verify = createProofVerifier({
      replay: false,
      now: () => RFC9449_PROOF_CLAIMS.iat * 1000 + 5000,
    });
    const result = await verify(RFC9449_PROOF, {
      method: 'POST',
      url: 'https://server.example.com/token',
    });
    expect(result.jkt).toBe(RFC9449_JKT);
    expect(result.jwk).toEqual({ kty: 'EC', crv: 'P-256', x: RFC9449_JWK.x, y: RFC9449_JWK.y });
    expect(result.claims).toEqual(RFC9449_PROOF_CLAIMS);
    await rejects(
      verify(RFC9449_PROOF, { method: 'GET', url: 'https://server.example.com/token' }),
      'invalid_dpop_proof',
      'htm',
    );
    await rejects(
      verify(RFC9449_PROOF, {
        method: 'POST',
        url: 'https://server.example.com/token',
        jkt: 'x'.repeat(43),
      }),
      'invalid_token',
      'jkt_mismatch',
    );
  });

  it('uses node:crypto on Node', () => expect(backend).toBe('node'));
});

describe('verifyProof: every check, in order', () => {
  it('accepts a valid proof once and rejects the replay; result carries jkt, jwk, alg, claims', async () => {
    const k = await clientKey();
    const options = base();
    const proof = await k.proof({ accessToken: 'tok' });
    const result = await verifyProof(
      proof,
      { method: 'GET', url: URL_, accessToken: 'tok', jkt: k.jkt },
      options,
    );
    expect(result).toMatchObject({
      jkt: k.jkt,
      alg: 'ES256',
      claims: { htm: 'GET', htu: URL_, ath: await accessTokenHash('tok') },
    });
    await rejects(
      verifyProof(proof, { method: 'GET', url: URL_, accessToken: 'tok' }, options),
      'invalid_dpop_proof',
      'replay',
    );
  });

  it('size and shape', async () => {
    const o = base();
    const k = rawKey();
    const good = k.jws(k.header(), k.claims());
    const [h, p, s] = good.split('.') as [string, string, string];
    const cases: Array<[string, string]> = [
      ['', 'missing_proof'],
      ['a'.repeat(9000), 'proof_too_long'],
      ['abc', 'proof_malformed'],
      [`${h}.${p}`, 'proof_malformed'],
      [`${h}.${p}.${s}.x`, 'proof_malformed'],
      [`${h}..${s}`, 'proof_malformed'],
      [`.${p}.${s}`, 'proof_malformed'],
      [`${h}.${p}.`, 'proof_malformed'],
      [`${h}=.${p}.${s}`, 'proof_malformed'], // padding
      [`${h}.${p}.${s.replace(/-/g, '+')}x`, 'proof_malformed'], // standard alphabet
      [`${h}.${p} .${s}`, 'proof_malformed'], // whitespace
      [`${h}.${p}.${s.slice(0, 10)}${s[10] === 'A' ? 'B' : 'A'}${s.slice(11)}`, 'signature'],
      [`${h}.${p}.${s.slice(0, 20)}`, 'signature'], // wrong length
    ];
    for (const [proof, reason] of cases)
      await rejects(
        verifyProof(proof, { method: 'GET', url: URL_ }, o),
        'invalid_dpop_proof',
        reason,
      );
    await rejects(
      verifyProof(42 as never, { method: 'GET', url: URL_ }, o),
      'invalid_dpop_proof',
      'missing_proof',
    );
  });

  it('rejects non-canonical trailing bits in any segment', async () => {
    const k = rawKey();
    const proof = k.jws(k.header(), k.claims());
    const s = proof.split('.')[2]!; // 86 chars: 2 trailing bits must be zero
    const last = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const idx = last.indexOf(s.at(-1)!);
    const mutated = `${proof.slice(0, proof.lastIndexOf('.') + 1)}${s.slice(0, -1)}${last[idx | 1]}`;
    if (mutated !== proof)
      await rejects(
        verifyProof(mutated, { method: 'GET', url: URL_ }, base()),
        'invalid_dpop_proof',
        'proof_malformed',
      );
  });

  it('header: typ, alg, crit, jwk', async () => {
    const o = base();
    const k = rawKey();
    const rsaSmall = rawKey('RSA-1024');
    const ed = rawKey('Ed25519');
    const { d: _d, ...pub } = k.privateKey.export({ format: 'jwk' }) as Record<string, string>;
    const privateJwk = k.privateKey.export({ format: 'jwk' });
    const offCurve = { ...k.jwk, y: k.jwk.x };
    const cases: Array<[string, string]> = [
      [k.jws('bm90IGpzb24', k.claims()), 'proof_malformed'],
      [k.jws(Buffer.from('[1,2]').toString('base64url'), k.claims()), 'proof_malformed'],
      [k.jws(k.header({ typ: 'JWT' }), k.claims()), 'typ'],
      [k.jws(k.header({ typ: 'application/jwt' }), k.claims()), 'typ'],
      [k.jws(k.header({ typ: 'dpop+jwt; x' }), k.claims()), 'typ'],
      [k.jws(k.header({ b64: false }), k.claims()), 'b64'],
      [k.jws(k.header({ b64: true }), k.claims()), 'b64'],
      [k.jws({ alg: 'ES256', jwk: k.jwk }, k.claims()), 'typ'],
      [k.jws(k.header({ alg: 'none' }), k.claims()), 'alg'],
      [k.jws(k.header({ alg: 'HS256' }), k.claims()), 'alg'],
      [k.jws(k.header({ alg: 'ES384' }), k.claims()), 'alg'],
      [k.jws(k.header({ crit: ['exp'] }), k.claims()), 'crit'],
      [k.jws(k.header({ jwk: undefined }), k.claims()), 'jwk'],
      [k.jws(k.header({ jwk: privateJwk }), k.claims()), 'jwk'],
      [k.jws(k.header({ jwk: { ...pub, d: 'AAAA' } }), k.claims()), 'jwk'],
      [k.jws(k.header({ jwk: { ...k.jwk, kty: 'OKP' } }), k.claims()), 'jwk'],
      [k.jws(k.header({ jwk: { ...k.jwk, crv: 'P-384' } }), k.claims()), 'jwk'],
      [k.jws(k.header({ jwk: { ...k.jwk, x: k.jwk.x!.slice(1) } }), k.claims()), 'jwk'],
      [k.jws(k.header({ jwk: offCurve }), k.claims()), 'jwk'],
      [k.jws(k.header({ jwk: { ...k.jwk, use: 'enc' } }), k.claims()), 'jwk'],
      [k.jws(k.header({ jwk: 'string' }), k.claims()), 'jwk'],
      [rsaSmall.jws(rsaSmall.header(), rsaSmall.claims()), 'jwk'],
      [ed.jws(ed.header({ jwk: k.jwk }), ed.claims()), 'jwk'],
    ];
    for (const [proof, reason] of cases)
      await rejects(
        verifyProof(proof, { method: 'GET', url: URL_ }, o),
        'invalid_dpop_proof',
        reason,
      );
  });

  it('tolerates peers that leave a query or fragment in htu, or spell it differently (normalised on both sides)', async () => {
    const k = rawKey();
    const o = base();
    for (const htu of [
      `${URL_}?page=2`,
      `${URL_}#section`,
      `${URL_}?a=1#b`,
      URL_.replace('https://api.example.com', 'HTTPS://API.EXAMPLE.COM:443'),
      URL_.replace('/orders', '/%6Frders'),
    ]) {
      const r = await verifyProof(
        k.jws(k.header(), k.claims({ htu })),
        { method: 'GET', url: URL_ },
        o,
      );
      expect(r.claims.htu).toBe(htu);
    }
  });

  it('typ is a media type: application/dpop+jwt and any case are accepted (RFC 7515 §4.1.9)', async () => {
    const k = rawKey();
    for (const typ of ['application/dpop+jwt', 'DPoP+JWT', 'Application/DPoP+JWT']) {
      const r = await verifyProof(
        k.jws(k.header({ typ }), k.claims()),
        { method: 'GET', url: URL_ },
        base(),
      );
      expect(r.jkt).toBeTruthy();
    }
  });

  it('honours exp and nbf when present (RFC 7519 §4.1.4-4.1.5)', async () => {
    const k = rawKey();
    const o = base();
    const send = (claims: object) =>
      verifyProof(k.jws(k.header(), k.claims(claims)), { method: 'GET', url: URL_ }, o);
    await rejects(send({ exp: nowSec - 11 }), 'invalid_dpop_proof', 'exp');
    await rejects(send({ exp: 'soon' }), 'invalid_dpop_proof', 'exp');
    await rejects(send({ nbf: nowSec + 11 }), 'invalid_dpop_proof', 'nbf');
    await send({ exp: nowSec + 30, nbf: nowSec - 1 });
    await send({ exp: nowSec - 5 }); // within clockTolerance
  });

  it('RSA proof keys: 2048 to maxRsaBits (4096) bits and e = 65537 only, refused before any signature check', async () => {
    const k = rawKey('RSA-2048');
    const o = base();
    // a modulus of 6144 bits (top bit set) and a small exponent: refused as jwk, not imported
    const big = `w${'A'.repeat(Math.ceil(6144 / 6) - 1)}`;
    for (const jwk of [
      { kty: 'RSA', n: big, e: 'AQAB' },
      { ...k.jwk, e: 'Aw' },
      { ...k.jwk, e: 'AQAAAQ' },
    ]) {
      await rejects(
        verifyProof(k.jws(k.header({ jwk }), k.claims()), { method: 'GET', url: URL_ }, o),
        'invalid_dpop_proof',
        'jwk',
      );
    }
    expect(() => base({ maxRsaBits: 1024 })).not.toThrow(); // validated when compiled:
    expect(() => createProofVerifier(base({ maxRsaBits: 1024 }))).toThrow(/maxRsaBits/);
    expect(() => createProofVerifier(base({ maxRsaBits: 16384 }))).toThrow(/maxRsaBits/);
  });

  it('compares the key with cnf.jkt before the signature: a proof by another key is cheap to refuse and burns nothing', async () => {
    const k = rawKey();
    const other = rawKey();
    const seen: string[] = [];
    const o = base({ replay: { useOnce: (key: string) => (seen.push(key), true) } });
    const jkt = await thumbprint(other.jwk as never);
    // a garbage signature: refused as jkt_mismatch (the signature is never checked)
    const proof = k.jws(k.header(), k.claims());
    const garbled = `${proof.slice(0, proof.lastIndexOf('.'))}.${'A'.repeat(86)}`;
    await rejects(
      verifyProof(garbled, { method: 'GET', url: URL_, jkt }, o),
      'invalid_token',
      'jkt_mismatch',
    );
    expect(seen).toEqual([]);
  });

  it('accepts EdDSA and Ed25519 headers, RSA 2048, and keys with kid/alg/use=sig members', async () => {
    const o = base({ algorithms: ['ES256', 'EdDSA', 'Ed25519', 'RS256'] });
    const ed = rawKey('Ed25519');
    const rsa = rawKey('RSA-2048');
    const k = rawKey();
    await verifyProof(ed.jws(ed.header(), ed.claims()), { method: 'GET', url: URL_ }, o);
    await verifyProof(
      ed.jws(ed.header({ alg: 'Ed25519' }), ed.claims(), 'Ed25519'),
      { method: 'GET', url: URL_ },
      o,
    );
    await verifyProof(rsa.jws(rsa.header(), rsa.claims()), { method: 'GET', url: URL_ }, o);
    await verifyProof(
      k.jws(k.header({ jwk: { ...k.jwk, kid: 'k1', alg: 'ES256', use: 'sig' } }), k.claims()),
      { method: 'GET', url: URL_ },
      o,
    );
  });

  it('claims: htm, htu, jti, iat', async () => {
    const o = base();
    const k = rawKey();
    const cases: Array<[object, string]> = [
      [{ htm: 'get' }, 'htm'],
      [{ htm: undefined }, 'htm'],
      [{ htm: ['GET'] }, 'htm'],
      [{ htu: 'https://api.example.com/other' }, 'htu'],
      [{ htu: 'https://evil.example.com/orders' }, 'htu'],
      [{ htu: 'http://api.example.com/orders' }, 'htu'],
      [{ htu: 'https://api.example.com/orders/' }, 'htu'],
      [{ htu: 'not a url' }, 'htu'],
      [{ htu: 42 }, 'htu'],
      [{ jti: undefined }, 'jti'],
      [{ jti: '' }, 'jti'],
      [{ jti: 'x'.repeat(257) }, 'jti'],
      [{ jti: 7 }, 'jti'],
      [{ iat: undefined }, 'iat_missing'],
      [{ iat: '1750000000' }, 'iat_missing'],
      [{ iat: nowSec - 61 }, 'iat_too_old'],
      [{ iat: nowSec + 11 }, 'iat_in_future'],
    ];
    for (const [claims, reason] of cases) {
      await rejects(
        verifyProof(k.jws(k.header(), k.claims(claims)), { method: 'GET', url: URL_ }, o),
        'invalid_dpop_proof',
        reason,
      );
    }
    // boundaries are inclusive
    await verifyProof(
      k.jws(k.header(), k.claims({ iat: nowSec - 60 })),
      { method: 'GET', url: URL_ },
      o,
    );
    await verifyProof(
      k.jws(k.header(), k.claims({ iat: nowSec + 10 })),
      { method: 'GET', url: URL_ },
      o,
    );
  });

  it('compares htu after normalising both sides (case, default port, dot segments, percent-encoding, query)', async () => {
    const o = base();
    const k = rawKey();
    for (const htu of [
      'HTTPS://API.example.com:443/orders',
      'https://api.example.com/a/../orders',
      'https://api.example.com/%6frders',
      'https://api.example.com/orders?x=1#f',
    ]) {
      await verifyProof(
        k.jws(k.header(), k.claims({ htu })),
        { method: 'GET', url: 'https://api.example.com/orders?page=3' },
        o,
      );
    }
  });

  it('ath: required with a token, compared as a string', async () => {
    const o = base();
    const k = rawKey();
    const ath = await accessTokenHash('token-1');
    await verifyProof(
      k.jws(k.header(), k.claims({ ath })),
      { method: 'GET', url: URL_, accessToken: 'token-1' },
      o,
    );
    await rejects(
      verifyProof(
        k.jws(k.header(), k.claims()),
        { method: 'GET', url: URL_, accessToken: 'token-1' },
        o,
      ),
      'invalid_dpop_proof',
      'ath_missing',
    );
    await rejects(
      verifyProof(
        k.jws(k.header(), k.claims({ ath: await accessTokenHash('token-2') })),
        { method: 'GET', url: URL_, accessToken: 'token-1' },
        o,
      ),
      'invalid_dpop_proof',
      'ath_mismatch',
    );
    // a lenient decoder would accept padding or a flipped trailing bit: strings do not
    await rejects(
      verifyProof(
        k.jws(k.header(), k.claims({ ath: `${ath}=` })),
        { method: 'GET', url: URL_, accessToken: 'token-1' },
        o,
      ),
      'invalid_dpop_proof',
      'ath_mismatch',
    );
  });

  it('a rejected proof never burns its jti (replay store is last)', async () => {
    const o = base();
    const k = rawKey();
    const claims = k.claims({ ath: await accessTokenHash('right') });
    const proof = k.jws(k.header(), claims);
    await rejects(
      verifyProof(proof, { method: 'GET', url: URL_, accessToken: 'wrong' }, o),
      'invalid_dpop_proof',
      'ath_mismatch',
    );
    await rejects(
      verifyProof(
        proof,
        { method: 'GET', url: URL_, accessToken: 'right', jkt: 'A'.repeat(43) },
        o,
      ),
      'invalid_token',
      'jkt_mismatch',
    );
    await verifyProof(proof, { method: 'GET', url: URL_, accessToken: 'right' }, o);
  });

  it('replay keys are scoped per key: the same jti from two keys is two proofs', async () => {
    const o = base();
    const [a, b] = [rawKey(), rawKey()];
    await verifyProof(
      a.jws(a.header(), a.claims({ jti: 'shared-jti-0001' })),
      { method: 'GET', url: URL_ },
      o,
    );
    await verifyProof(
      b.jws(b.header(), b.claims({ jti: 'shared-jti-0001' })),
      { method: 'GET', url: URL_ },
      o,
    );
  });

  it('fails closed when the replay store errors or is full (503, retryable)', async () => {
    const k = rawKey();
    const broken: ReplayStore = {
      useOnce: () => Promise.reject(new Error('ECONNREFUSED 127.0.0.1:6379')),
    };
    const error = await rejects(
      verifyProof(
        k.jws(k.header(), k.claims()),
        { method: 'GET', url: URL_ },
        base({ replay: broken }),
      ),
      'server_error',
      'replay_store_error',
    );
    expect(error.status).toBe(503);
    expect(error.message).not.toContain('6379');
    const full = base({ replay: new MemoryReplayStore({ maxEntries: 1, now: () => NOW }) });
    await verifyProof(k.jws(k.header(), k.claims()), { method: 'GET', url: URL_ }, full);
    await rejects(
      verifyProof(k.jws(k.header(), k.claims()), { method: 'GET', url: URL_ }, full),
      'server_error',
      'replay_store_full',
    );
    const lying: ReplayStore = { useOnce: () => 'yes' as never };
    await rejects(
      verifyProof(
        k.jws(k.header(), k.claims()),
        { method: 'GET', url: URL_ },
        base({ replay: lying }),
      ),
      'invalid_dpop_proof',
      'replay',
    );
  });

  it('anchors the replay TTL at iat + maxAge + clockTolerance', async () => {
    const seen: number[] = [];
    const spy: ReplayStore = { useOnce: (_k, expiresAt) => (seen.push(expiresAt), true) };
    const k = rawKey();
    await verifyProof(
      k.jws(k.header(), k.claims({ iat: nowSec - 30 })),
      { method: 'GET', url: URL_ },
      base({ replay: spy }),
    );
    expect(seen).toEqual([(nowSec - 30 + 60 + 10) * 1000]);
  });

  it('nonces: missing or invalid -> use_dpop_nonce with a fresh DPoP-Nonce; stale iat -> use_dpop_nonce', async () => {
    const nonces = createNonceIssuer({ secret: 'x'.repeat(32) });
    const o = base({ nonces });
    const epoch = (o.replay as MemoryReplayStore).epoch;
    const k = rawKey();
    const current = await nonces.current(NOW, epoch);
    const missing = await rejects(
      verifyProof(k.jws(k.header(), k.claims()), { method: 'GET', url: URL_ }, o),
      'use_dpop_nonce',
      'nonce_missing',
    );
    expect(missing.headers['DPoP-Nonce']).toBe(current);
    await rejects(
      verifyProof(
        k.jws(k.header(), k.claims({ nonce: 'A'.repeat(43) })),
        { method: 'GET', url: URL_ },
        o,
      ),
      'use_dpop_nonce',
      'nonce_invalid',
    );
    // a nonce that is not a string is a malformed proof, not a nonce challenge
    for (const nonce of [5, null, ['x'], { n: 1 }]) {
      await rejects(
        verifyProof(k.jws(k.header(), k.claims({ nonce })), { method: 'GET', url: URL_ }, o),
        'invalid_dpop_proof',
        'nonce_malformed',
      );
    }
    const ok = await verifyProof(
      k.jws(k.header(), k.claims({ nonce: current })),
      { method: 'GET', url: URL_ },
      o,
    );
    expect(ok.nextNonce).toBeUndefined();
    // a nonce from the previous step is accepted, and the current one is offered proactively
    const previous = await nonces.current(NOW - 60_000, epoch);
    const aged = await verifyProof(
      k.jws(k.header(), k.claims({ nonce: previous })),
      { method: 'GET', url: URL_ },
      o,
    );
    expect(aged.nextNonce).toBe(current);
    // without nonce, iat out of window becomes a nonce challenge when nonces are on
    const stale = await rejects(
      verifyProof(
        k.jws(k.header(), k.claims({ iat: nowSec - 300 })),
        { method: 'GET', url: URL_, requireNonce: false },
        o,
      ),
      'use_dpop_nonce',
      'iat_too_old',
    );
    expect(stale.headers['DPoP-Nonce']).toBe(current);
    // a valid nonce bounds freshness: a client clock 5 minutes slow still succeeds...
    await verifyProof(
      k.jws(k.header(), k.claims({ iat: nowSec - 300, nonce: current })),
      { method: 'GET', url: URL_ },
      o,
    );
    // ...but iat must stay within nonceIatSkew (5 min) plus clockTolerance of now, not a day
    for (const iat of [nowSec - 311, nowSec + 311, nowSec - 86_000, nowSec + 86_000]) {
      await rejects(
        verifyProof(
          k.jws(k.header(), k.claims({ iat, nonce: current })),
          { method: 'GET', url: URL_ },
          o,
        ),
        'use_dpop_nonce',
        iat < nowSec ? 'iat_too_old' : 'iat_in_future',
      );
    }
  });

  it('keeps a replay entry exactly as long as the proof is acceptable: nonce expiry, or iat window', async () => {
    const seen: number[] = [];
    const replay = { useOnce: (_k: string, expiresAt: number) => (seen.push(expiresAt), true) };
    const nonces = createNonceIssuer({ secret: 'x'.repeat(32) });
    const k = rawKey();
    const current = await nonces.current(NOW);
    const check = await nonces.check(current, NOW);
    const withNonce = base({ nonces, replay });
    // a far-future iat no longer pins an entry for a day: it is refused, and an accepted proof
    // with a nonce lives until the nonce expires, whatever its iat
    await verifyProof(
      k.jws(k.header(), k.claims({ iat: nowSec + 290, nonce: current })),
      { method: 'GET', url: URL_ },
      withNonce,
    );
    await verifyProof(
      k.jws(k.header(), k.claims({ iat: nowSec - 290, nonce: current })),
      { method: 'GET', url: URL_ },
      withNonce,
    );
    expect(seen).toEqual([check.expiresAt, check.expiresAt]);
    expect(check.expiresAt - NOW).toBeLessThanOrEqual(3 * 60_000);
    seen.length = 0;
    await verifyProof(
      k.jws(k.header(), k.claims({ iat: nowSec - 7 })),
      { method: 'GET', url: URL_ },
      base({ replay }),
    );
    expect(seen).toEqual([(nowSec - 7 + 60 + 10) * 1000]);
    // after the nonce expires the same proof is refused, so nothing needs remembering past it
    await rejects(
      verifyProof(
        k.jws(k.header(), k.claims({ nonce: current })),
        { method: 'GET', url: URL_ },
        base({ nonces, replay, now: () => check.expiresAt }),
      ),
      'use_dpop_nonce',
      'nonce_invalid',
    );
  });

  it('an exact expected nonce (stateful servers)', async () => {
    const k = rawKey();
    const o = base();
    await verifyProof(
      k.jws(k.header(), k.claims({ nonce: 'n-1' })),
      { method: 'GET', url: URL_, nonce: 'n-1' },
      o,
    );
    const e = await rejects(
      verifyProof(
        k.jws(k.header(), k.claims({ nonce: 'n-0' })),
        { method: 'GET', url: URL_, nonce: 'n-1' },
        o,
      ),
      'use_dpop_nonce',
      'nonce_invalid',
    );
    expect(e.headers['DPoP-Nonce']).toBe('n-1');
  });

  it('validates options when built, with coded errors', () => {
    const bad: Array<[Partial<VerifyProofOptions>, RegExp]> = [
      [{ replay: undefined as never }, /"replay"/],
      [{ replay: {} as never }, /"replay"/],
      [{ replay: false, algorithms: ['HS256' as never] }, /"algorithms"/],
      [{ replay: false, algorithms: [] }, /"algorithms"/],
      [{ replay: false, maxAge: -1 }, /"maxAge"/],
      [{ replay: false, clockTolerance: Number.NaN }, /"clockTolerance"/],
      [{ replay: false, requireNonce: true }, /"requireNonce"/],
      [{ replay: false, nonces: {} as never }, /"nonces"/],
    ];
    for (const [options, message] of bad) {
      expect(() => createProofVerifier(options as VerifyProofOptions)).toThrow(message);
      expect(() => createProofVerifier(options as VerifyProofOptions)).toThrow(DPoPConfigError);
    }
  });

  it('messages never contain the proof or its parts', async () => {
    const k = rawKey();
    const proof = k.jws(k.header({ typ: 'nope' }), k.claims());
    const error = await rejects(
      verifyProof(proof, { method: 'GET', url: URL_ }, base()),
      'invalid_dpop_proof',
      'typ',
    );
    for (const part of proof.split('.')) expect(error.message).not.toContain(part.slice(0, 16));
  });
});
