// Where `commit()` goes at a token endpoint with one-time grants, through the public API only.
// The recommended order: prepare (nothing recorded), authenticate the client, validate the grant
// read-only, commit (records the jti), consume the grant (compare-and-set), issue. Compared with
// the old README order (validate-and-consume, then commit) and the one-call form.
import { createHash, randomBytes } from 'node:crypto';
import { createProof } from '@popkit/dpop-client';
import { describe, expect, it } from 'vitest';
import type { ReplayStore } from '../src/index.ts';
import {
  DPoPError,
  MemoryReplayStore,
  ReplayStoreError,
  createTokenRequestVerifier,
} from '../src/index.ts';
import { clientKey } from './helpers.ts';

const TOKEN_URL = 'https://as.example.com/token';
const CLIENT_ID = 'app';
const s256 = (v: string) => createHash('sha256').update(v).digest('base64url');
const opaque = () => randomBytes(32).toString('base64url');

type Order =
  /** prepare, validate read-only, commit, consume: the README's order */
  | 'recommended'
  /** prepare, validate and consume, commit: the README's order before */
  | 'old'
  /** checkDPoP(request) first (records at once), then validate and consume */
  | 'one-call';

interface Answer {
  status: number;
  error?: string;
  retryAfter?: string;
  refreshToken?: string;
}

/**
 * The grant side of an authorization server, in memory: one public client, one-time codes
 * bound by `dpop_jkt`, DPoP-bound refresh tokens rotated on every use, and reuse detection (a
 * used code or a rotated refresh token presented again revokes its family, RFC 6749 §4.1.2,
 * RFC 9700 §4.14). Consumption is compare-and-set: check and change with no await between.
 */
function authorizationServer(order: Order, replay: ReplayStore) {
  const checkDPoP = createTokenRequestVerifier({ tokenEndpoint: TOKEN_URL, replay });
  const codes = new Map<
    string,
    { challenge: string; dpopJkt: string; family: string; used: boolean }
  >();
  const refreshTokens = new Map<string, { jkt: string; family: string; rotated: boolean }>();
  const revoked = new Set<string>();
  const reuse = (family: string): Answer => {
    revoked.add(family);
    return { status: 400, error: 'invalid_grant' };
  };
  const issue = (family: string, jkt: string): Answer => {
    const refreshToken = opaque();
    refreshTokens.set(refreshToken, { jkt, family, rotated: false });
    return { status: 200, refreshToken };
  };

  async function token(proof: string, params: Record<string, string>): Promise<Answer> {
    const request = {
      method: 'POST',
      url: '/token',
      headers: { host: 'as.example.com', dpop: proof },
    };
    try {
      if (params.client_id !== CLIENT_ID) {
        if (order === 'one-call') await checkDPoP(request);
        else await checkDPoP.prepare(request);
        return { status: 401, error: 'invalid_client' };
      }
      if (params.grant_type === 'authorization_code') {
        const code = codes.get(params.code ?? '');
        const context = code ? { dpopJkt: code.dpopJkt } : {};
        if (order === 'one-call') {
          const dpop = (await checkDPoP(request, context))!;
          if (!code || s256(params.code_verifier ?? '') !== code.challenge)
            return { status: 400, error: 'invalid_grant' };
          if (code.used) return reuse(code.family);
          code.used = true;
          return issue(code.family, dpop.jkt);
        }
        const dpop = (await checkDPoP.prepare(request, context))!;
        if (!code || s256(params.code_verifier ?? '') !== code.challenge)
          return { status: 400, error: 'invalid_grant' };
        if (order === 'old') {
          if (code.used) return reuse(code.family);
          code.used = true;
          await dpop.commit();
        } else {
          await dpop.commit();
          if (code.used) return reuse(code.family);
          code.used = true;
        }
        return issue(code.family, dpop.jkt);
      }
      if (params.grant_type === 'refresh_token') {
        const current = refreshTokens.get(params.refresh_token ?? '');
        const context = current ? { boundJkt: current.jkt } : {};
        if (order === 'one-call') {
          const dpop = (await checkDPoP(request, context))!;
          if (!current || revoked.has(current.family))
            return { status: 400, error: 'invalid_grant' };
          if (current.rotated) return reuse(current.family);
          current.rotated = true;
          return issue(current.family, dpop.jkt);
        }
        const dpop = (await checkDPoP.prepare(request, context))!;
        if (!current || revoked.has(current.family)) return { status: 400, error: 'invalid_grant' };
        if (order === 'old') {
          if (current.rotated) return reuse(current.family);
          current.rotated = true;
          await dpop.commit();
        } else {
          await dpop.commit();
          if (current.rotated) return reuse(current.family);
          current.rotated = true;
        }
        return issue(current.family, dpop.jkt);
      }
      return { status: 400, error: 'unsupported_grant_type' };
    } catch (e) {
      if (!(e instanceof DPoPError)) throw e;
      const answer: Answer = { status: e.status, error: JSON.parse(e.body!).error };
      if (e.headers['Retry-After'] !== undefined) answer.retryAfter = e.headers['Retry-After'];
      return answer;
    }
  }

  /** The authorization endpoint's part: a code for this PKCE challenge and key. */
  function authorize(verifier: string, dpopJkt: string): string {
    const code = opaque();
    codes.set(code, { challenge: s256(verifier), dpopJkt, family: opaque(), used: false });
    return code;
  }
  return { token, authorize };
}

/** A client of that AS, signing a fresh proof per request unless handed one. */
async function client(as: ReturnType<typeof authorizationServer>) {
  const key = await clientKey();
  const proof = () => createProof(key.keyPair, { method: 'POST', url: TOKEN_URL });
  const verifier = opaque();
  const code = as.authorize(verifier, key.jkt);
  const exchangeParams = {
    grant_type: 'authorization_code',
    client_id: CLIENT_ID,
    code,
    code_verifier: verifier,
  };
  const refreshParams = (refreshToken: string) => ({
    grant_type: 'refresh_token',
    client_id: CLIENT_ID,
    refresh_token: refreshToken,
  });
  return {
    proof,
    exchangeParams,
    refreshParams,
    exchange: async (p?: string) => as.token(p ?? (await proof()), exchangeParams),
    refresh: async (refreshToken: string, p?: string) =>
      as.token(p ?? (await proof()), refreshParams(refreshToken)),
  };
}

/** A store that counts its calls, fails the next one once armed, and can hold answers. */
function testStore() {
  const inner = new MemoryReplayStore();
  let failNext = false;
  let calls = 0;
  let gate: { n: number; held: Array<() => void> } | undefined;
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
      if (failNext) {
        failNext = false;
        throw new ReplayStoreError('replay_store_error', 'replay store timed out');
      }
      const first = inner.useOnce(key, expiresAt, scope) as boolean;
      const g = gate;
      if (!g) return first;
      return new Promise<boolean>((resolve) => {
        g.held.push(() => resolve(first));
        if (g.held.length === g.n) {
          gate = undefined;
          g.held.forEach((release) => release());
        }
      });
    },
  };
  return {
    store,
    calls: () => calls,
    failNextCommit: () => void (failNext = true),
    /** Holds the next `n` answers until all n calls have arrived. */
    holdUntil: (n: number) => void (gate = { n, held: [] }),
  };
}

describe('token endpoint order, finding 5: a captured refresh request replayed', () => {
  it('recommended order: the replay is refused at commit, before the refresh token; the victim refreshes on', async () => {
    const as = authorizationServer('recommended', testStore().store);
    const victim = await client(as);
    const first = await victim.exchange();
    const captured = await victim.proof(); // the proof of the refresh request an attacker records
    const second = await victim.refresh(first.refreshToken!, captured);
    expect(second.status).toBe(200);
    expect(await victim.refresh(first.refreshToken!, captured)).toEqual({
      status: 400,
      error: 'invalid_dpop_proof',
    });
    const third = await victim.refresh(second.refreshToken!);
    expect(third.status).toBe(200);
  });

  it('old order: the same replay reaches reuse detection first and revokes the victim’s session', async () => {
    const as = authorizationServer('old', testStore().store);
    const victim = await client(as);
    const first = await victim.exchange();
    const captured = await victim.proof();
    const second = await victim.refresh(first.refreshToken!, captured);
    expect(second.status).toBe(200);
    expect(await victim.refresh(first.refreshToken!, captured)).toEqual({
      status: 400,
      error: 'invalid_grant',
    });
    expect(await victim.refresh(second.refreshToken!)).toEqual({
      status: 400,
      error: 'invalid_grant',
    });
  });

  it('one-call form: refuses the replay first too, but records the jti of every request with a valid proof', async () => {
    const counting = testStore();
    const as = authorizationServer('one-call', counting.store);
    const victim = await client(as);
    const first = await victim.exchange();
    const captured = await victim.proof();
    const second = await victim.refresh(first.refreshToken!, captured);
    expect((await victim.refresh(first.refreshToken!, captured)).error).toBe('invalid_dpop_proof');
    expect((await victim.refresh(second.refreshToken!)).status).toBe(200);
    // the cost: a request with a bogus grant, or no client at all, still fills the store
    const before = counting.calls();
    const anonymous = await clientKey();
    const bogus = await createProof(anonymous.keyPair, { method: 'POST', url: TOKEN_URL });
    expect(await as.token(bogus, { grant_type: 'refresh_token', client_id: 'nobody' })).toEqual({
      status: 401,
      error: 'invalid_client',
    });
    expect(counting.calls()).toBe(before + 1);
  });

  it('recommended order: a real reuse (rotated token, fresh proof) still revokes the family', async () => {
    const as = authorizationServer('recommended', testStore().store);
    const victim = await client(as);
    const first = await victim.exchange();
    const second = await victim.refresh(first.refreshToken!);
    expect(await victim.refresh(first.refreshToken!)).toEqual({
      status: 400,
      error: 'invalid_grant',
    });
    expect(await victim.refresh(second.refreshToken!)).toEqual({
      status: 400,
      error: 'invalid_grant',
    });
    // and a used code presented again with a fresh proof revokes what it issued
    const other = await client(as);
    const tokens = await other.exchange();
    expect(await other.exchange()).toEqual({ status: 400, error: 'invalid_grant' });
    expect((await other.refresh(tokens.refreshToken!)).error).toBe('invalid_grant');
  });
});

describe('token endpoint order, finding 6: the replay store fails once at commit', () => {
  it('recommended order: 503 with Retry-After, and the retry (fresh proof) finds the grant untouched', async () => {
    const flaky = testStore();
    const as = authorizationServer('recommended', flaky.store);
    const victim = await client(as);
    flaky.failNextCommit();
    expect(await victim.exchange()).toEqual({
      status: 503,
      error: 'server_error',
      retryAfter: '1',
    });
    const tokens = await victim.exchange();
    expect(tokens.status).toBe(200);
    flaky.failNextCommit();
    expect((await victim.refresh(tokens.refreshToken!)).status).toBe(503);
    const refreshed = await victim.refresh(tokens.refreshToken!); // not rotated: no reuse
    expect(refreshed.status).toBe(200);
    expect((await victim.refresh(refreshed.refreshToken!)).status).toBe(200);
  });

  it('old order: the code is spent before the 503, and a refresh retry is taken for reuse', async () => {
    const flaky = testStore();
    const as = authorizationServer('old', flaky.store);
    const victim = await client(as);
    flaky.failNextCommit();
    expect((await victim.exchange()).status).toBe(503);
    expect(await victim.exchange()).toEqual({ status: 400, error: 'invalid_grant' });
    const other = await client(as);
    const tokens = await other.exchange();
    flaky.failNextCommit();
    expect((await other.refresh(tokens.refreshToken!)).status).toBe(503);
    expect(await other.refresh(tokens.refreshToken!)).toEqual({
      status: 400,
      error: 'invalid_grant',
    });
  });
});

describe('token endpoint order: concurrency and what reaches the store', () => {
  it('two concurrent copies of one request: both pass validation, one commits, the other never consumes', async () => {
    const gated = testStore();
    const as = authorizationServer('recommended', gated.store);
    const victim = await client(as);
    const tokens = await victim.exchange();
    const proof = await victim.proof();
    gated.holdUntil(2); // both requests are at commit before either goes on
    const both = await Promise.all([
      victim.refresh(tokens.refreshToken!, proof),
      victim.refresh(tokens.refreshToken!, proof),
    ]);
    expect(both.map((a) => [a.status, a.error]).sort()).toEqual([
      [200, undefined],
      [400, 'invalid_dpop_proof'],
    ]);
    const next = both.find((a) => a.status === 200)!.refreshToken!;
    expect((await victim.refresh(next)).status).toBe(200); // no reuse was detected
  });

  it('two different requests racing on one code: both commit, compare-and-set lets one consume', async () => {
    const gated = testStore();
    const as = authorizationServer('recommended', gated.store);
    const victim = await client(as);
    const proofs = [await victim.proof(), await victim.proof()];
    gated.holdUntil(2);
    const both = await Promise.all(proofs.map((p) => victim.exchange(p)));
    expect(both.map((a) => [a.status, a.error]).sort()).toEqual([
      [200, undefined],
      [400, 'invalid_grant'],
    ]);
  });

  it('recommended order: requests failing client authentication or grant validation record nothing', async () => {
    const counting = testStore();
    const as = authorizationServer('recommended', counting.store);
    const victim = await client(as);
    const stranger = await clientKey();
    const strangerProof = () => createProof(stranger.keyPair, { method: 'POST', url: TOKEN_URL });
    const refused = [
      await as.token(await strangerProof(), { ...victim.exchangeParams, client_id: 'nobody' }),
      await as.token(await victim.proof(), { ...victim.exchangeParams, code_verifier: 'wrong' }),
      await as.token(await victim.proof(), { ...victim.exchangeParams, code: 'unknown' }),
      await as.token(await strangerProof(), victim.refreshParams('unknown')),
    ];
    expect(refused.map((a) => a.error)).toEqual([
      'invalid_client',
      'invalid_grant',
      'invalid_grant',
      'invalid_grant',
    ]);
    expect(counting.calls()).toBe(0);
    expect((await victim.exchange()).status).toBe(200);
    expect(counting.calls()).toBe(1);
  });
});
