// The replay-attack demo: a real authorization server (oidc-provider), real resource servers
// (Express + @popkit/dpop-verifier), real clients, and every attack a token thief would try.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DPoPFetchEvent, FetchLike } from '@popkit/dpop-client';
import type { DPoPKey } from '@popkit/dpop-client';
import {
  createDPoPFetch,
  createProof,
  generateKeyPair,
  parseWWWAuthenticate,
} from '@popkit/dpop-client';
import type { ReplayStore } from '@popkit/dpop-verifier';
import { MemoryReplayStore } from '@popkit/dpop-verifier';
import {
  MTLS_CLIENT_ID,
  SERVICE_CLIENT,
  SPA_CLIENT_ID,
  startAuthorizationServer,
} from '@popkit/example-authorization-server';
import { startApi } from '@popkit/example-resource-server';
import { buildAuthOptions } from '@popkit/example-resource-server/options';
import type { AuthMetrics } from '@popkit/example-resource-server/metrics';
import { getDPoPServiceToken } from '@popkit/example-service-client/dpop';
import { getCertificateBoundToken } from '@popkit/example-service-client/mtls';
import { ensureDemoPki } from '@popkit/example-shared/pki';
import { freePort, startRedis } from '@popkit/example-shared/redis';
import { findPostgresBinary, startPostgres } from '@popkit/example-shared/postgres';
import { PostgresReplayStore } from '@popkit/dpop-verifier/postgres';
import pg from 'pg';
import { findBinary } from '@popkit/example-shared/binaries';
import { fetchTrusting } from '@popkit/example-shared/tls';
import { createMtlsFetch } from '@popkit/mtls-binding/node';
import { spaLogin } from './spa-login.ts';

/** One row of the demo table. */
export interface ScenarioResult {
  id: string;
  scenario: string;
  /** What the caller holds (for attacks: what was stolen). */
  holds: string;
  kind: 'legitimate' | 'attack';
  status: number | null;
  /** OAuth error code from WWW-Authenticate or the JSON body. */
  error: string | null;
  /** What popkit or the AS expects here. */
  expect: string;
  verdict: 'OK' | 'DEFEATED' | 'FAILED' | 'BREACH' | 'SKIPPED';
  note?: string;
}

export interface DemoOptions {
  /** Called with each log line (nonce challenges, retries, set-up). */
  log?: (line: string) => void;
  /** A Redis URL to use for scenario 9 instead of starting redis-server. */
  redisUrl?: string;
  /**
   * What the two API instances of scenario 9 share. Default: Redis when a Redis URL is given or
   * redis-server is installed, else PostgreSQL when it is installed (a server of its own).
   */
  sharedStore?: 'redis' | 'postgres';
}

/** The resource indicator (token audience) of the demo API. */
export const RESOURCE = 'https://api.popkit.example';

interface Observed {
  status: number;
  error: string | null;
}

async function observe(res: Response): Promise<Observed> {
  let error: string | null = null;
  for (const c of parseWWWAuthenticate(res.headers.get('www-authenticate')))
    if (c.params.error) error = c.params.error;
  if (!error && /json/.test(res.headers.get('content-type') ?? '') && !res.ok) {
    error = ((await res.json().catch(() => ({}))) as { error?: string }).error ?? null;
  } else {
    await res.arrayBuffer().catch(() => undefined);
  }
  return { status: res.status, error };
}

function judge(
  row: Omit<ScenarioResult, 'verdict' | 'status' | 'error'>,
  observed: Observed,
  wanted: { status: number; error?: string },
): ScenarioResult {
  const ok =
    observed.status === wanted.status &&
    (wanted.error === undefined || observed.error === wanted.error);
  const verdict =
    row.kind === 'legitimate'
      ? ok
        ? 'OK'
        : 'FAILED'
      : observed.status >= 200 && observed.status < 300
        ? 'BREACH'
        : ok
          ? 'DEFEATED'
          : 'FAILED';
  return { ...row, status: observed.status, error: observed.error, verdict };
}

/** Records what went over the wire to the API (the attacker's vantage point), optionally blocking it. */
function wiretap(base: FetchLike) {
  const tap = {
    last: undefined as
      { url: string; method: string; authorization: string; dpop: string } | undefined,
    block: false,
    fetch: (async (input, init) => {
      const headers = new Headers(init?.headers);
      const captured = {
        url: String(input),
        method: init?.method ?? 'GET',
        authorization: headers.get('authorization') ?? '',
        dpop: headers.get('dpop') ?? '',
      };
      if (tap.block) {
        tap.last = captured;
        return new Response(null, { status: 502 }); // intercepted: never reaches the API
      }
      const res = await base(input, init);
      if (res.ok) tap.last = captured;
      return res;
    }) as FetchLike,
  };
  return tap;
}

/** Runs every scenario against freshly started servers and stops them. */
export async function runDemo(options: DemoOptions = {}): Promise<ScenarioResult[]> {
  const log = options.log ?? (() => {});
  const started: Array<() => Promise<void>> = [];
  const results: ScenarioResult[] = [];
  try {
    const pki = await ensureDemoPki(fileURLToPath(new URL('../../.pki', import.meta.url)));
    const trusting = fetchTrusting(pki.caPem) as FetchLike;
    const as = await startAuthorizationServer({
      pki,
      resource: RESOURCE,
      spaRedirectUris: ['http://127.0.0.1/callback'],
    });
    started.push(as.close);
    log(`authorization server (oidc-provider, DPoP nonces + mTLS) on ${as.issuer}`);
    const nonceSecret = randomBytes(32).toString('base64url');
    const tls = { keyPem: pki.server.keyPem, certPem: pki.server.certPem, caPem: pki.caPem };
    const context: Context = { issuer: as.issuer, tls, trusting, nonceSecret, started };
    const rs = await startResourceServer(context);
    log(`resource server (Express + @popkit/dpop-verifier) on ${rs.url}`);
    const api = `${rs.url}/api/orders`;

    // 1. legitimate service with DPoP
    const tap = wiretap(trusting);
    const events = (who: string) => (e: DPoPFetchEvent) => {
      if (e.type === 'retry')
        log(`${who}: ${e.origin} answered ${e.reason}; retrying once with the new nonce`);
      if (e.type === 'clock-offset')
        log(`${who}: learned clock offset ${e.offset}s for ${e.origin}`);
    };
    const service = await getDPoPServiceToken({
      tokenEndpoint: `${as.issuer}/token`,
      clientId: SERVICE_CLIENT.id,
      clientSecret: SERVICE_CLIENT.secret,
      resource: RESOURCE,
      scope: 'orders:read',
      fetch: tap.fetch,
      onEvent: events('service client'),
    });
    log(`service client: got a DPoP-bound token (token_type ${service.tokenType})`);
    results.push(
      judge(
        {
          id: '1',
          scenario: 'Legitimate DPoP call (nonce challenge + automatic retry)',
          holds: 'key + token',
          kind: 'legitimate',
          expect: '200',
        },
        await observe(await service.dpopFetch(api, { accessToken: service.accessToken })),
        { status: 200 },
      ),
    );
    const captured = tap.last!;
    const raw = (url: string, headers: Record<string, string>, method = 'GET') =>
      trusting(url, { method, headers });

    // 2. replay of the captured request
    results.push(
      judge(
        {
          id: '2',
          scenario: 'Replay a captured request (same token, same proof)',
          holds: 'token + used proof',
          kind: 'attack',
          expect: '401 invalid_dpop_proof',
        },
        await observe(
          await raw(captured.url, { authorization: captured.authorization, dpop: captured.dpop }),
        ),
        { status: 401, error: 'invalid_dpop_proof' },
      ),
    );

    // 3. stolen token, attacker's own key
    const attackerKey = await generateKeyPair();
    results.push(
      judge(
        {
          id: '3',
          scenario: "Stolen token with the attacker's own DPoP key",
          holds: 'token + own key',
          kind: 'attack',
          expect: '401 invalid_token',
        },
        await observe(
          await createDPoPFetch(attackerKey, { fetch: trusting })(api, {
            accessToken: service.accessToken,
          }),
        ),
        { status: 401, error: 'invalid_token' },
      ),
    );

    // 4. downgrade to Bearer
    results.push(
      judge(
        {
          id: '4',
          scenario: 'Stolen token sent as a Bearer token (downgrade)',
          holds: 'token',
          kind: 'attack',
          expect: '401 invalid_token',
        },
        await observe(await raw(api, { authorization: `Bearer ${service.accessToken}` })),
        { status: 401, error: 'invalid_token' },
      ),
    );

    // 5. an intercepted, never-used proof redirected to another URL or method
    tap.block = true;
    await service.dpopFetch(api, { accessToken: service.accessToken });
    tap.block = false;
    const intercepted = tap.last!;
    results.push(
      judge(
        {
          id: '5a',
          scenario: 'Intercepted proof sent to another URL',
          holds: 'token + unused proof',
          kind: 'attack',
          expect: '401 invalid_dpop_proof',
        },
        await observe(
          await raw(`${rs.url}/api/admin`, {
            authorization: intercepted.authorization,
            dpop: intercepted.dpop,
          }),
        ),
        { status: 401, error: 'invalid_dpop_proof' },
      ),
    );
    results.push(
      judge(
        {
          id: '5b',
          scenario: 'Intercepted proof used with another method',
          holds: 'token + unused proof',
          kind: 'attack',
          expect: '401 invalid_dpop_proof',
        },
        await observe(
          await raw(
            api,
            {
              authorization: intercepted.authorization,
              dpop: intercepted.dpop,
              'content-type': 'application/json',
            },
            'POST',
          ),
        ),
        { status: 401, error: 'invalid_dpop_proof' },
      ),
    );

    // 6. stale proofs
    const stale = await createProof(
      service.key,
      { method: 'GET', url: api, accessToken: service.accessToken },
      { iat: Math.floor(Date.now() / 1000) - 300 },
    );
    results.push(
      judge(
        {
          id: '6a',
          scenario: 'Proof pre-computed 5 minutes ago, no nonce',
          holds: 'token + stale proof',
          kind: 'attack',
          expect: '401 use_dpop_nonce',
        },
        await observe(
          await raw(api, { authorization: `DPoP ${service.accessToken}`, dpop: stale }),
        ),
        { status: 401, error: 'use_dpop_nonce' },
      ),
    );
    const forgedNonce = await createProof(service.key, {
      method: 'GET',
      url: api,
      accessToken: service.accessToken,
      nonce: 'A'.repeat(43),
    });
    results.push(
      judge(
        {
          id: '6b',
          scenario: 'Proof with a nonce the server never issued',
          holds: 'token + proof',
          kind: 'attack',
          expect: '401 use_dpop_nonce',
        },
        await observe(
          await raw(api, { authorization: `DPoP ${service.accessToken}`, dpop: forgedNonce }),
        ),
        { status: 401, error: 'use_dpop_nonce' },
      ),
    );

    // 7. ath for another token
    const second = await getDPoPServiceToken({
      tokenEndpoint: `${as.issuer}/token`,
      clientId: SERVICE_CLIENT.id,
      clientSecret: SERVICE_CLIENT.secret,
      resource: RESOURCE,
      fetch: trusting,
      key: service.key,
    });
    const nonceRes = await raw(api, {
      authorization: `DPoP ${service.accessToken}`,
      dpop: await createProof(service.key, {
        method: 'GET',
        url: api,
        accessToken: service.accessToken,
      }),
    });
    const nonce = nonceRes.headers.get('dpop-nonce') ?? undefined;
    await nonceRes.arrayBuffer();
    const mixed = await createProof(service.key, {
      method: 'GET',
      url: api,
      accessToken: second.accessToken,
      ...(nonce ? { nonce } : {}),
    });
    results.push(
      judge(
        {
          id: '7',
          scenario: 'Token A with a proof whose ath is for token B',
          holds: 'token A + proof for B',
          kind: 'attack',
          expect: '401 invalid_dpop_proof',
        },
        await observe(
          await raw(api, { authorization: `DPoP ${service.accessToken}`, dpop: mixed }),
        ),
        { status: 401, error: 'invalid_dpop_proof' },
      ),
    );

    // 8. certificate-bound token (RFC 8705)
    const mtls = await getCertificateBoundToken({
      tokenEndpoint: `${as.issuer}/token`,
      clientId: MTLS_CLIENT_ID,
      resource: RESOURCE,
      scope: 'orders:read',
      p12: pki.serviceP12,
      password: pki.serviceP12Password,
      caPem: pki.caPem,
    });
    started.push(() => mtls.mtlsFetch.close());
    log(
      `mTLS service client: certificate-bound token for x5t#S256 ${mtls.mtlsFetch.thumbprint.slice(0, 8)}… (certificate from service.p12)`,
    );
    const bearer = { authorization: `Bearer ${mtls.accessToken}` };
    results.push(
      judge(
        {
          id: '8a',
          scenario: 'Legitimate certificate-bound call (mTLS, .p12)',
          holds: 'certificate + token',
          kind: 'legitimate',
          expect: '200',
        },
        await observe((await mtls.mtlsFetch(api, { headers: bearer })) as unknown as Response),
        { status: 200 },
      ),
    );
    const otherCert = await createMtlsFetch(
      { cert: pki.other.certPem, key: pki.other.keyPem },
      { ca: pki.caPem },
    );
    started.push(() => otherCert.close());
    results.push(
      judge(
        {
          id: '8b',
          scenario: 'Certificate-bound token with another client certificate',
          holds: 'token + other cert',
          kind: 'attack',
          expect: '401 invalid_token',
        },
        await observe((await otherCert(api, { headers: bearer })) as unknown as Response),
        { status: 401, error: 'invalid_token' },
      ),
    );
    results.push(
      judge(
        {
          id: '8c',
          scenario: 'Certificate-bound token with no client certificate',
          holds: 'token',
          kind: 'attack',
          expect: '401 invalid_token',
        },
        await observe(await raw(api, bearer)),
        { status: 401, error: 'invalid_token' },
      ),
    );

    // 9. the same proof raced at two instances sharing Redis (or PostgreSQL)
    results.push(
      ...(await raceScenario({
        ...context,
        options,
        log,
        key: service.key,
        token: service.accessToken,
      })),
    );

    // 10. refresh token bound to the SPA's key
    const spaKey = await generateKeyPair();
    const spa = await spaLogin({
      issuer: as.issuer,
      clientId: SPA_CLIENT_ID,
      redirectUri: 'http://127.0.0.1/callback',
      resource: RESOURCE,
      key: spaKey,
      fetch: trusting,
    });
    log(
      'SPA: logged in (authorization code + PKCE + dpop_jkt); DPoP-bound access and refresh tokens',
    );
    results.push(
      judge(
        {
          id: '10a',
          scenario: 'Legitimate SPA call after login (code + PKCE + dpop_jkt)',
          holds: 'key + token',
          kind: 'legitimate',
          expect: '200',
        },
        await observe(
          await createDPoPFetch(spaKey, { fetch: trusting })(api, { accessToken: spa.accessToken }),
        ),
        { status: 200 },
      ),
    );
    const refresh = (key: CryptoKeyPair) =>
      createDPoPFetch(key, { fetch: trusting })(`${as.issuer}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'refresh_token',
          refresh_token: spa.refreshToken,
          client_id: SPA_CLIENT_ID,
        }),
      });
    results.push(
      judge(
        {
          id: '10b',
          scenario: "Stolen refresh token used with the attacker's key",
          holds: 'refresh token + own key',
          kind: 'attack',
          expect: '400 invalid_grant',
        },
        await observe(await refresh(await generateKeyPair())),
        { status: 400, error: 'invalid_grant' },
      ),
    );
    results.push(
      judge(
        {
          id: '10c',
          scenario: 'Legitimate refresh with the bound key',
          holds: 'key + refresh token',
          kind: 'legitimate',
          expect: '200',
        },
        await observe(await refresh(spaKey)),
        { status: 200 },
      ),
    );
    // 11. a restart of the API (memory store) must not reopen replays
    results.push(
      ...(await restartScenario({ ...context, log, key: service.key, token: service.accessToken })),
    );

    // 12. fairness by account: one account floods with many keys, a busy service is served
    results.push(
      ...(await accountFloodScenario({
        ...context,
        log,
        service,
        spaLoginAs: (key) =>
          spaLogin({
            issuer: as.issuer,
            clientId: SPA_CLIENT_ID,
            redirectUri: 'http://127.0.0.1/callback',
            resource: RESOURCE,
            key,
            fetch: trusting,
          }),
      })),
    );
    const series = (await rs.metrics.render()).split('\n').filter((l) => /^dpop_/.test(l)).length;
    log(
      `resource server metrics: ${rs.url}/metrics (Prometheus, ${series} dpop_* samples; ` +
        `dashboard and alert rules in examples/observability): ${rs.metrics.summary()}`,
    );
    return results;
  } finally {
    for (const stop of started.reverse()) await stop().catch(() => undefined);
  }
}

interface Context {
  issuer: string;
  tls: { keyPem: string; certPem: string; caPem: string };
  trusting: FetchLike;
  nonceSecret: string;
  started: Array<() => Promise<void>>;
}

/** Starts the Express API on a free port; its `htu` is its own URL unless `publicUrl` says otherwise. */
async function startResourceServer(
  context: Context & { redisUrl?: string; publicUrl?: string; replay?: ReplayStore; port?: number },
): Promise<{ url: string; metrics: AuthMetrics; stop: () => Promise<void> }> {
  const port = context.port ?? (await freePort());
  const url = `https://127.0.0.1:${port}`;
  const auth = buildAuthOptions({
    issuer: context.issuer,
    audience: RESOURCE,
    publicUrl: context.publicUrl ?? url,
    fetch: context.trusting as typeof fetch,
    nonceSecret: context.nonceSecret,
    ...(context.redisUrl ? { redisUrl: context.redisUrl } : {}),
    ...(context.replay ? { replay: context.replay } : {}),
  });
  const api = await startApi(auth, context.tls, port);
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      await api.close();
      await auth.close();
    })());
  context.started.push(stop);
  return { url: api.url, metrics: auth.metrics, stop };
}

/**
 * 11: a request captured just before the API process restarts (its memory replay store starts
 * empty), replayed just after: refused, because the server nonces are bound to the store's
 * epoch. The legitimate client gets `use_dpop_nonce` once and retries by itself.
 */
async function restartScenario(
  context: Context & { log: (line: string) => void; key: DPoPKey; token: string },
): Promise<ScenarioResult[]> {
  const port = await freePort();
  const before = await startResourceServer({ ...context, port });
  const tap = wiretap(context.trusting);
  const client = createDPoPFetch(context.key, { fetch: tap.fetch });
  const api = `${before.url}/api/orders`;
  await observe(await client(api, { accessToken: context.token }));
  const captured = tap.last!;
  await before.stop();
  const after = await startResourceServer({ ...context, port });
  context.log(`API restarted on port ${port} (a new MemoryReplayStore: it remembers nothing)`);
  // (new connections: the old process's sockets are gone)
  const trusting = fetchTrusting(context.tls.caPem) as FetchLike;
  const replayed = await observe(
    await trusting(captured.url, {
      headers: { authorization: captured.authorization, dpop: captured.dpop },
    }),
  );
  let retries = 0;
  const legit = createDPoPFetch(context.key, {
    fetch: trusting,
    onEvent: (e) => {
      if (e.type === 'retry') retries++;
    },
  });
  const served = await observe(
    await legit(`${after.url}/api/orders`, { accessToken: context.token }),
  );
  context.log(
    `after the restart: the captured proof got ${replayed.status} ${replayed.error}; the client retried ${retries} time(s)`,
  );
  return [
    judge(
      {
        id: '11a',
        scenario: 'Captured proof replayed after the API restarts (memory store)',
        holds: 'token + used proof',
        kind: 'attack',
        expect: '401 use_dpop_nonce',
      },
      replayed,
      { status: 401, error: 'use_dpop_nonce' },
    ),
    judge(
      {
        id: '11b',
        scenario: 'Legitimate call right after the restart (one nonce retry)',
        holds: 'key + token',
        kind: 'legitimate',
        expect: '200',
      },
      served,
      { status: 200 },
    ),
  ];
}

/**
 * 12: fairness by account. One user logs in ten times with ten keys and floods an API whose
 * replay store is small (400 entries) with valid proofs, while a service client of another
 * account calls at a steady rate. The flood is held to its account's share (503
 * `replay_over_share`); the service is served in full.
 */
async function accountFloodScenario(
  context: Context & {
    log: (line: string) => void;
    service: { key: DPoPKey; accessToken: string };
    spaLoginAs: (key: CryptoKeyPair) => Promise<{ accessToken: string }>;
  },
): Promise<ScenarioResult[]> {
  const store = new MemoryReplayStore({ maxEntries: 400 });
  const rs = await startResourceServer({ ...context, replay: store });
  const api = `${rs.url}/api/orders`;
  const attackers = await Promise.all(
    Array.from({ length: 10 }, async () => {
      const key = await generateKeyPair();
      const { accessToken } = await context.spaLoginAs(key);
      return { fetch: createDPoPFetch(key, { fetch: context.trusting }), accessToken };
    }),
  );
  const floodTotal = 600;
  let sent = 0;
  const flood: Record<string, number> = {};
  const worker = async () => {
    while (sent < floodTotal) {
      const a = attackers[sent++ % attackers.length]!;
      const seen = await observe(await a.fetch(api, { accessToken: a.accessToken }));
      const reason = seen.status === 200 ? 'accepted' : `${seen.status}`;
      flood[reason] = (flood[reason] ?? 0) + 1;
    }
  };
  const serviceFetch = createDPoPFetch(context.service.key, { fetch: context.trusting });
  let served = 0;
  let refused: Observed | undefined;
  const serviceCalls = 30;
  const steady = async () => {
    for (let i = 0; i < serviceCalls; i++) {
      const seen = await observe(
        await serviceFetch(api, { accessToken: context.service.accessToken }),
      );
      if (seen.status === 200) served++;
      else refused ??= seen;
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  await Promise.all([...Array.from({ length: 16 }, worker), steady()]);
  const stats = store.stats();
  context.log(
    `account flood: 10 tokens of one account sent ${floodTotal} proofs (${flood.accepted ?? 0} recorded, ${flood['503'] ?? 0} refused 503 over its share); the service: ${served}/${serviceCalls} served; store ${stats.entries}/${stats.capacity}, ${stats.keys} accounts`,
  );
  const ok = served === serviceCalls && (flood['503'] ?? 0) > 0;
  return [
    {
      id: '12',
      scenario: 'Busy service served while another account floods with 10 keys',
      holds: 'key + token (flood: 10 tokens, 1 account)',
      kind: 'legitimate',
      status: ok ? 200 : (refused?.status ?? 0),
      error: ok ? null : (refused?.error ?? 'flood not held to its share'),
      expect: `${serviceCalls}/${serviceCalls} 200`,
      verdict: ok ? 'OK' : 'FAILED',
      note: `service ${served}/${serviceCalls}; flood ${flood.accepted ?? 0} recorded, ${flood['503'] ?? 0} refused`,
    },
  ];
}

/** 9: one captured proof sent to two instances behind one public URL, at the same moment. */
async function raceScenario(
  context: Context & {
    options: DemoOptions;
    log: (line: string) => void;
    key: CryptoKeyPair | import('@popkit/dpop-client').DPoPKey;
    token: string;
  },
): Promise<ScenarioResult[]> {
  let redisUrl = context.options.redisUrl ?? process.env.REDIS_URL;
  const havePostgres = Boolean(findPostgresBinary('initdb') && findPostgresBinary('postgres'));
  const shared =
    context.options.sharedStore ??
    (redisUrl || findBinary('redis-server') || !havePostgres ? 'redis' : 'postgres');
  const row = {
    id: '9',
    scenario: `Same captured proof raced at two API instances sharing ${shared === 'redis' ? 'Redis' : 'PostgreSQL'}`,
    holds: 'token + one proof, sent twice at once',
    kind: 'attack' as const,
    expect: 'exactly one 200',
  };
  const publicUrl = RESOURCE; // both instances sit behind one public name
  let a: Awaited<ReturnType<typeof startResourceServer>>;
  let b: typeof a;
  if (shared === 'postgres') {
    if (!havePostgres) {
      context.log(
        'scenario 9 skipped: PostgreSQL is not installed (apt-get install -y postgresql)',
      );
      return [
        { ...row, status: null, error: null, verdict: 'SKIPPED', note: 'postgresql not installed' },
      ];
    }
    const server = await startPostgres();
    // one pool per instance, as two processes would have; one table they share
    const pools = [0, 1].map(() => {
      const pool = new pg.Pool({ connectionString: server.url, max: 4, statement_timeout: 250 });
      pool.on('error', () => {});
      return pool;
    });
    context.started.push(async () => {
      await Promise.all(pools.map((pool) => pool.end()));
      await server.stop();
    });
    const stores = pools.map((pool) => new PostgresReplayStore({ client: pool }));
    // at start-up: the tables exist and both know the table's epoch, which binds their nonces
    await Promise.all(stores.map((store) => store.ready()));
    a = await startResourceServer({ ...context, replay: stores[0]!, publicUrl });
    b = await startResourceServer({ ...context, replay: stores[1]!, publicUrl });
    context.log(
      `two API instances (${new URL(a.url).port}, ${new URL(b.url).port}) share a PostgresReplayStore (one table, a pg pool each) at ${server.url}`,
    );
  } else {
    if (!redisUrl) {
      if (!findBinary('redis-server')) {
        context.log(
          'scenario 9 skipped: neither redis-server nor PostgreSQL is installed (apt-get install -y redis-server)',
        );
        return [
          {
            ...row,
            status: null,
            error: null,
            verdict: 'SKIPPED',
            note: 'redis-server not installed',
          },
        ];
      }
      // with AOF, as the store's docs ask: a Redis restart keeps the entries
      const dir = mkdtempSync(join(tmpdir(), 'popkit-demo-redis-'));
      const redis = await startRedis(undefined, ['--appendonly', 'yes', '--dir', dir]);
      context.started.push(async () => {
        await redis.stop();
        rmSync(dir, { recursive: true, force: true });
      });
      redisUrl = redis.url;
    }
    a = await startResourceServer({ ...context, redisUrl, publicUrl });
    b = await startResourceServer({ ...context, redisUrl, publicUrl });
    context.log(
      `two API instances (${new URL(a.url).port}, ${new URL(b.url).port}) share a RedisReplayStore at ${redisUrl}`,
    );
  }
  const htu = `${publicUrl}/api/orders`;
  const send = (base: string, proof: string) =>
    context.trusting(`${base}/api/orders`, {
      headers: { authorization: `DPoP ${context.token}`, dpop: proof },
    });
  const challenge = await send(
    a.url,
    await createProof(context.key, { method: 'GET', url: htu, accessToken: context.token }),
  );
  await challenge.arrayBuffer();
  const nonce = challenge.headers.get('dpop-nonce') ?? undefined;
  const rounds = 10;
  let exactlyOnce = 0;
  let breaches = 0;
  let loser: Observed = { status: 0, error: null };
  for (let round = 0; round < rounds; round++) {
    const proof = await createProof(context.key, {
      method: 'GET',
      url: htu,
      accessToken: context.token,
      ...(nonce ? { nonce } : {}),
    });
    const answers = await Promise.all(
      [send(a.url, proof), send(b.url, proof)].map(async (p) => observe(await p)),
    );
    const accepted = answers.filter((x) => x.status === 200).length;
    if (accepted === 1) exactlyOnce++;
    if (accepted > 1) breaches++;
    loser = answers.find((x) => x.status !== 200) ?? loser;
  }
  context.log(
    `race: ${rounds} proofs, each sent to both instances at once: ${exactlyOnce} accepted exactly once, ${breaches} accepted twice`,
  );
  const verdict =
    breaches > 0
      ? 'BREACH'
      : exactlyOnce === rounds && loser.error === 'invalid_dpop_proof'
        ? 'DEFEATED'
        : 'FAILED';
  return [
    {
      ...row,
      status: loser.status,
      error: loser.error,
      verdict,
      note: `${exactlyOnce}/${rounds} rounds: one 200, one 401`,
    },
  ];
}
