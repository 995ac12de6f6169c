// The token endpoint's order over real HTTP: validate the grant read-only, commit the proof's
// jti, then consume the grant. Each finding is shown twice: fixed in the minimal AS, and still
// broken in a small in-test AS with the old order (prepare, validate-and-consume, commit).
import { createHash, randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DPoPKey, FetchLike } from '@popkit/dpop-client';
import { createDPoPFetch, createProof, generateKeyPair, thumbprint } from '@popkit/dpop-client';
import type { ReplayStore } from '@popkit/dpop-verifier';
import {
  DPoPError,
  MemoryReplayStore,
  ReplayStoreError,
  createNonceIssuer,
  createTokenRequestVerifier,
} from '@popkit/dpop-verifier';
import { toRequestLike } from '@popkit/dpop-verifier/express';
import express from 'express';
import { decodeJwt } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemoryGrantStore, newOpaqueValue } from '../src/grants.ts';
import type { ApprovedAuthorization } from '../src/minimal.ts';
import { startMinimalAuthorizationServer } from '../src/minimal.ts';

const CLIENT_ID = 'app';
const REDIRECT_URI = 'https://app.example/callback';
const s256 = (v: string) => createHash('sha256').update(v).digest('base64url');

interface TestServer {
  issuer: string;
  authorize(request: ApprovedAuthorization): Promise<string>;
  close(): Promise<void>;
}
const open: TestServer[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

async function safeServer(replay?: ReplayStore): Promise<TestServer> {
  const as = await startMinimalAuthorizationServer({
    client: { id: 'svc', secret: 'secret' },
    audience: 'https://api.example',
    publicClient: { id: CLIENT_ID, redirectUris: [REDIRECT_URI] },
    ...(replay ? { replay } : {}),
  });
  open.push(as);
  return as;
}

/**
 * The order the README used to recommend: prepare, then validate the grant the way most ASes
 * do it, consuming it (code marked used, refresh token rotated, reuse revoking the family),
 * then commit. Same grant store, same verifier as the minimal AS: only the order differs.
 */
async function oldOrderServer(replay: ReplayStore = new MemoryReplayStore()): Promise<TestServer> {
  const grants = createMemoryGrantStore();
  const app = express();
  const server: Server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const checkDPoP = createTokenRequestVerifier({
    tokenEndpoint: `${issuer}/token`,
    replay,
    nonces: createNonceIssuer({ secret: randomBytes(32) }),
  });
  app.post('/token', express.urlencoded({ extended: false }), async (req, res) => {
    const body = req.body as Record<string, string>;
    const invalidGrant = () => void res.status(400).json({ error: 'invalid_grant' });
    try {
      if (body.grant_type === 'authorization_code') {
        const code = await grants.findCode(body.code);
        const dpop = (await checkDPoP.prepare(toRequestLike(req), { dpopJkt: code?.dpopJkt }))!;
        res.set(dpop.headers);
        if (
          !code ||
          code.clientId !== body.client_id ||
          code.redirectUri !== body.redirect_uri ||
          s256(body.code_verifier ?? '') !== code.codeChallenge
        )
          return invalidGrant();
        if (!(await grants.consumeCode(body.code!))) {
          await grants.revokeFamily(code.familyId); // RFC 6749 §4.1.2
          return invalidGrant();
        }
        await dpop.commit(); // too late: the code is spent
        const refreshToken = newOpaqueValue();
        await grants.saveRefreshToken(refreshToken, {
          familyId: code.familyId,
          clientId: code.clientId,
          jkt: dpop.jkt,
          subject: code.subject,
          scope: code.scope,
          expiresAt: Date.now() + 3600_000,
        });
        return void res.json({
          access_token: 'opaque',
          token_type: 'DPoP',
          refresh_token: refreshToken,
        });
      }
      const refresh = await grants.findRefreshToken(body.refresh_token);
      const dpop = (await checkDPoP.prepare(toRequestLike(req), { boundJkt: refresh?.jkt }))!;
      res.set(dpop.headers);
      if (
        !refresh ||
        refresh.clientId !== body.client_id ||
        (await grants.isRevoked(refresh.familyId))
      )
        return invalidGrant();
      const next = newOpaqueValue();
      if (!(await grants.rotateRefreshToken(body.refresh_token!, next, refresh))) {
        await grants.revokeFamily(refresh.familyId); // reuse detection, RFC 9700 §4.14
        return invalidGrant();
      }
      await dpop.commit(); // too late: the family may be revoked, the token rotated
      return void res.json({ access_token: 'opaque', token_type: 'DPoP', refresh_token: next });
    } catch (error) {
      if (!(error instanceof DPoPError)) throw error;
      return void res.status(error.status).set(error.headers).send(error.body);
    }
  });
  return {
    issuer,
    authorize: async (request) => {
      const code = newOpaqueValue();
      const { codeChallengeMethod: _, ...approved } = request;
      await grants.saveCode(code, {
        ...approved,
        scope: request.scope ?? 'orders:read',
        expiresAt: Date.now() + 60_000,
        familyId: newOpaqueValue(),
      });
      return code;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  } satisfies TestServer as TestServer;
}

/** A request as sent on the wire, as an eavesdropper (a logging proxy, say) records it. */
interface Captured {
  url: string;
  headers: Headers;
  body: string;
}
/** A fetch that records every request the popkit client sends. */
function wiretap() {
  const sent: Captured[] = [];
  const tapped: FetchLike = (input, init) => {
    sent.push({
      url: String(input),
      headers: new Headers(init?.headers),
      body: String(init?.body ?? ''),
    });
    return fetch(input, init);
  };
  return { sent, fetch: tapped };
}
/** Sends a captured request again, byte for byte: same DPoP proof, same grant. */
const replay = (c: Captured) =>
  fetch(c.url, {
    method: 'POST',
    headers: c.headers,
    body: new URLSearchParams(c.body),
  });

const answer = async (res: Response) => ({
  status: res.status,
  retryAfter: res.headers.get('retry-after'),
  ...((await res.json()) as { error?: string; refresh_token?: string; access_token?: string }),
});

/** A signed-in public client: the code exchange done through the popkit client. */
async function login(as: TestServer, key: DPoPKey, fetchImpl?: FetchLike) {
  const verifier = randomBytes(32).toString('base64url');
  const code = await as.authorize({
    clientId: CLIENT_ID,
    redirectUri: REDIRECT_URI,
    codeChallenge: s256(verifier),
    codeChallengeMethod: 'S256',
    dpopJkt: await thumbprint(key),
    subject: 'alice',
  });
  const dpopFetch = createDPoPFetch(key, fetchImpl ? { fetch: fetchImpl } : {});
  const exchange = () =>
    dpopFetch(`${as.issuer}/token`, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        redirect_uri: REDIRECT_URI,
        code_verifier: verifier,
        client_id: CLIENT_ID,
      }),
    }).then(answer);
  const refresh = (refreshToken: string) =>
    dpopFetch(`${as.issuer}/token`, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: refreshToken,
        client_id: CLIENT_ID,
      }),
    }).then(answer);
  return { code, verifier, exchange, refresh };
}

/** Fails the next `useOnce` once armed, the way a Redis timeout does. */
function flakyStore() {
  const inner = new MemoryReplayStore();
  let failNext = false;
  let failures = 0;
  const store: ReplayStore = {
    // what a restart forgot is refused by these, so a wrapper passes them on
    get since() {
      return inner.since;
    },
    get epoch() {
      return inner.epoch;
    },
    useOnce(key, expiresAt, scope) {
      if (failNext) {
        failNext = false;
        failures++;
        throw new ReplayStoreError('replay_store_error', 'replay store timed out');
      }
      return inner.useOnce(key, expiresAt, scope);
    },
  };
  return {
    store,
    failNextCommit: () => void (failNext = true),
    failures: () => failures,
  };
}

/**
 * Answers each `useOnce` at once (atomic insert-if-absent, as always) but holds the first `n`
 * answers until all n calls are pending, so that n concurrent requests have all passed
 * validation and reached commit before any of them goes on to consume the grant. Later calls
 * pass straight through.
 */
function gatedStore(n: number) {
  const inner = new MemoryReplayStore();
  const held: Array<() => void> = [];
  let calls = 0;
  const releaseAll = () => held.splice(0).forEach((release) => release());
  const store: ReplayStore = {
    // what a restart forgot is refused by these, so a wrapper passes them on
    get since() {
      return inner.since;
    },
    get epoch() {
      return inner.epoch;
    },
    useOnce(key, expiresAt, scope) {
      calls++;
      const first = inner.useOnce(key, expiresAt, scope) as boolean;
      if (calls > n) return first;
      return new Promise<boolean>((resolve) => {
        held.push(() => resolve(first));
        if (calls === n) releaseAll();
        else setTimeout(releaseAll, 5_000).unref(); // if the others never come: let the test fail
      });
    },
  };
  return { store, calls: () => calls };
}

/** A server nonce, from a first proof without one (RFC 9449 §8). */
async function nonceFor(as: TestServer, key: DPoPKey): Promise<string> {
  const res = await fetch(`${as.issuer}/token`, {
    method: 'POST',
    headers: { dpop: await createProof(key, { method: 'POST', url: `${as.issuer}/token` }) },
    body: new URLSearchParams({ grant_type: 'refresh_token', client_id: CLIENT_ID }),
  });
  expect(await answer(res)).toMatchObject({ status: 400, error: 'use_dpop_nonce' });
  return res.headers.get('dpop-nonce')!;
}
const post = (as: TestServer, proof: string, params: Record<string, string>) =>
  fetch(`${as.issuer}/token`, {
    method: 'POST',
    headers: { dpop: proof },
    body: new URLSearchParams({ client_id: CLIENT_ID, ...params }),
  }).then(answer);

describe('the minimal AS: one-time codes, rotating refresh tokens with reuse detection', () => {
  it('issues DPoP-bound tokens for the code, rotates the refresh token, and revokes the family on reuse', async () => {
    const as = await safeServer();
    const key = await generateKeyPair();
    const alice = await login(as, key);
    const tokens = await alice.exchange();
    expect(tokens.status).toBe(200);
    expect(decodeJwt(tokens.access_token!)).toMatchObject({
      sub: 'alice',
      cnf: { jkt: await thumbprint(key) },
    });
    const second = await alice.refresh(tokens.refresh_token!);
    expect(second.status).toBe(200);
    expect(second.refresh_token).not.toBe(tokens.refresh_token);
    // the code is one-time: a second exchange (fresh proof) is refused
    expect(await alice.exchange()).toMatchObject({ status: 400, error: 'invalid_grant' });
    // and, RFC 6749 §4.1.2, what it issued is revoked
    expect(await alice.refresh(second.refresh_token!)).toMatchObject({
      status: 400,
      error: 'invalid_grant',
    });

    const bob = await login(as, key);
    const bobTokens = await bob.exchange();
    const rotated = await bob.refresh(bobTokens.refresh_token!);
    expect(rotated.status).toBe(200);
    // the rotated token used again with a fresh proof: a leak, the family is revoked
    expect(await bob.refresh(bobTokens.refresh_token!)).toMatchObject({
      status: 400,
      error: 'invalid_grant',
    });
    expect(await bob.refresh(rotated.refresh_token!)).toMatchObject({
      status: 400,
      error: 'invalid_grant',
    });
  });

  it('refuses a refresh token from a key other than the one it is bound to', async () => {
    const as = await safeServer();
    const alice = await login(as, await generateKeyPair());
    const tokens = await alice.exchange();
    const thief = await login(as, await generateKeyPair());
    expect(await thief.refresh(tokens.refresh_token!)).toMatchObject({
      status: 400,
      error: 'invalid_dpop_proof',
    });
    // the thief's attempt touched nothing
    expect((await alice.refresh(tokens.refresh_token!)).status).toBe(200);
  });
});

describe('finding 5: a captured refresh request replayed', () => {
  it('is refused as a replay before the grant is touched; the victim’s next refresh succeeds', async () => {
    const as = await safeServer();
    const tap = wiretap();
    const victim = await login(as, await generateKeyPair(), tap.fetch);
    const first = await victim.exchange();
    const second = await victim.refresh(first.refresh_token!);
    expect(second.status).toBe(200);
    const captured = tap.sent.at(-1)!; // the refresh request, with its proof and refresh token
    expect(captured.body).toContain('grant_type=refresh_token');

    expect(await answer(await replay(captured))).toMatchObject({
      status: 400,
      error: 'invalid_dpop_proof',
    });
    const third = await victim.refresh(second.refresh_token!);
    expect(third.status).toBe(200);
    expect((await victim.refresh(third.refresh_token!)).status).toBe(200);
  });

  it('a captured code exchange replayed is refused as a replay too; the session survives', async () => {
    const as = await safeServer();
    const tap = wiretap();
    const victim = await login(as, await generateKeyPair(), tap.fetch);
    const tokens = await victim.exchange();
    expect(tokens.status).toBe(200);
    expect(await answer(await replay(tap.sent.at(-1)!))).toMatchObject({
      status: 400,
      error: 'invalid_dpop_proof',
    });
    expect((await victim.refresh(tokens.refresh_token!)).status).toBe(200);
  });

  it('under the old order (consume, then commit) the same replay revokes the victim’s session', async () => {
    const as = await oldOrderServer();
    open.push(as);
    const tap = wiretap();
    const victim = await login(as, await generateKeyPair(), tap.fetch);
    const first = await victim.exchange();
    const second = await victim.refresh(first.refresh_token!);
    expect(second.status).toBe(200);
    // the replay reaches the rotated refresh token before the replay check: reuse detection
    // fires and revokes the family
    expect(await answer(await replay(tap.sent.at(-1)!))).toMatchObject({
      status: 400,
      error: 'invalid_grant',
    });
    expect(await victim.refresh(second.refresh_token!)).toMatchObject({
      status: 400,
      error: 'invalid_grant',
    });
  });
});

describe('finding 6: the replay store fails once at commit', () => {
  it('answers 503 with Retry-After; the retry with a fresh proof exchanges the code, then refreshes', async () => {
    const flaky = flakyStore();
    const as = await safeServer(flaky.store);
    const victim = await login(as, await generateKeyPair());
    flaky.failNextCommit();
    expect(await victim.exchange()).toMatchObject({
      status: 503,
      error: 'server_error',
      retryAfter: '1',
    });
    expect(flaky.failures()).toBe(1);
    const tokens = await victim.exchange(); // the client's retry: a fresh proof
    expect(tokens.status).toBe(200);

    flaky.failNextCommit();
    expect(await victim.refresh(tokens.refresh_token!)).toMatchObject({
      status: 503,
      error: 'server_error',
    });
    // the refresh token was not rotated: the retry is no reuse
    const refreshed = await victim.refresh(tokens.refresh_token!);
    expect(refreshed.status).toBe(200);
    expect((await victim.refresh(refreshed.refresh_token!)).status).toBe(200);
  });

  it('under the old order the same failure burns the code, and a refresh retry revokes the family', async () => {
    const flaky = flakyStore();
    const as = await oldOrderServer(flaky.store);
    open.push(as);
    const victim = await login(as, await generateKeyPair());
    flaky.failNextCommit();
    expect(await victim.exchange()).toMatchObject({ status: 503, error: 'server_error' });
    expect(await victim.exchange()).toMatchObject({ status: 400, error: 'invalid_grant' });

    const other = await login(as, await generateKeyPair());
    const tokens = await other.exchange();
    flaky.failNextCommit();
    expect(await other.refresh(tokens.refresh_token!)).toMatchObject({ status: 503 });
    expect(await other.refresh(tokens.refresh_token!)).toMatchObject({
      status: 400,
      error: 'invalid_grant',
    });
  });
});

describe('concurrency', () => {
  it('two concurrent copies of one request: both pass validation, one commits, the other is refused before consuming', async () => {
    const gate = gatedStore(2);
    const as = await safeServer(gate.store);
    const key = await generateKeyPair();
    const alice = await login(as, key);
    const nonce = await nonceFor(as, key);
    const proof = await createProof(key, { method: 'POST', url: `${as.issuer}/token`, nonce });
    const params = {
      grant_type: 'authorization_code',
      redirect_uri: REDIRECT_URI,
      code: alice.code,
      code_verifier: alice.verifier,
    };
    const both = await Promise.all([post(as, proof, params), post(as, proof, params)]);
    expect(gate.calls()).toBe(2); // both reached commit
    expect(both.map((a) => [a.status, a.error]).sort()).toEqual([
      [200, undefined],
      [400, 'invalid_dpop_proof'],
    ]);
    // the copy never reached the code: no reuse detected, the session is intact
    const tokens = both.find((a) => a.status === 200)!;
    const refreshed = await alice.refresh(tokens.refresh_token!);
    expect(refreshed.status).toBe(200);
  });

  it('two different requests racing on one code: compare-and-set issues tokens once', async () => {
    const gate = gatedStore(2);
    const as = await safeServer(gate.store);
    const key = await generateKeyPair();
    const alice = await login(as, key);
    const nonce = await nonceFor(as, key);
    const params = {
      grant_type: 'authorization_code',
      redirect_uri: REDIRECT_URI,
      code: alice.code,
      code_verifier: alice.verifier,
    };
    const url = `${as.issuer}/token`;
    const both = await Promise.all([
      post(as, await createProof(key, { method: 'POST', url, nonce }), params),
      post(as, await createProof(key, { method: 'POST', url, nonce }), params),
    ]);
    expect(gate.calls()).toBe(2); // two proofs, both committed
    expect(both.map((a) => [a.status, a.error]).sort()).toEqual([
      [200, undefined],
      [400, 'invalid_grant'],
    ]);
    // the loser used a spent code: RFC 6749 §4.1.2, the winner's tokens are revoked
    const tokens = both.find((a) => a.status === 200)!;
    expect(await alice.refresh(tokens.refresh_token!)).toMatchObject({
      status: 400,
      error: 'invalid_grant',
    });
  });
});

describe('what still reaches the replay store', () => {
  it('nothing from requests that fail client authentication or grant validation', async () => {
    const gate = gatedStore(1);
    const as = await safeServer(gate.store);
    const key = await generateKeyPair();
    const alice = await login(as, key);
    const url = `${as.issuer}/token`;
    const proof = async () =>
      createProof(key, { method: 'POST', url, nonce: await nonceFor(as, key) });
    const good = { grant_type: 'authorization_code', redirect_uri: REDIRECT_URI, code: alice.code };
    const refused = [
      await post(as, await proof(), { ...good, code_verifier: 'wrong' }),
      await post(as, await proof(), {
        ...good,
        code_verifier: alice.verifier,
        redirect_uri: 'https://evil.example/',
      }),
      await post(as, await proof(), { ...good, code: 'unknown', code_verifier: alice.verifier }),
      await post(as, await proof(), {
        ...good,
        code_verifier: alice.verifier,
        client_id: 'nobody',
      }),
      await post(as, await proof(), { grant_type: 'refresh_token', refresh_token: 'unknown' }),
    ];
    expect(refused.map((a) => a.error)).toEqual([
      'invalid_grant',
      'invalid_grant',
      'invalid_grant',
      'invalid_client',
      'invalid_grant',
    ]);
    expect(gate.calls()).toBe(0);
    // and the code is still good
    expect((await post(as, await proof(), { ...good, code_verifier: alice.verifier })).status).toBe(
      200,
    );
    expect(gate.calls()).toBe(1);
  });
});
