import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { createDPoPFetch, createProof, generateKeyPair } from '@popkit/dpop-client';
import type { FetchLike } from '@popkit/dpop-client';
import {
  DPoPError,
  MemoryReplayStore,
  createNonceIssuer,
  createProofVerifier,
} from '@popkit/dpop-verifier';
import { startMinimalAuthorizationServer } from '@popkit/example-authorization-server/minimal';
import { startApi } from '@popkit/example-resource-server';
import { buildAuthOptions } from '@popkit/example-resource-server/options';
import { createTestPki } from '@popkit/example-shared/pki';
import { freePort } from '@popkit/example-shared/redis';
import { fetchTrusting } from '@popkit/example-shared/tls';
import { describe, expect, it } from 'vitest';

// Bounded by default; POPKIT_SOAK_SECONDS=600 for a long soak.
const SECONDS = Number(process.env.POPKIT_SOAK_SECONDS ?? 15);
const AUDIENCE = 'https://api.soak.example';

type Kind = 'legitimate' | 'replay' | 'stolen' | 'downgrade';

function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
}

describe('load soak at the example resource server', () => {
  it(`${SECONDS} s of mixed traffic: no attack accepted, no legitimate call refused, replay store flat`, async () => {
    const pki = await createTestPki();
    const trusting = fetchTrusting(pki.ca.certPem) as FetchLike;
    const as = await startMinimalAuthorizationServer({
      client: { id: 'svc', secret: 'secret' },
      audience: AUDIENCE,
    });
    const store = new MemoryReplayStore({ maxEntries: 100_000 });
    const port = await freePort();
    // Short lifetimes so the soak reaches its plateau quickly: a proof is acceptable for at most
    // maxAge + clockTolerance (3 s), or as long as its nonce (2 s steps, 1 previous step accepted).
    const auth = buildAuthOptions({
      issuer: as.issuer,
      audience: AUDIENCE,
      publicUrl: `https://127.0.0.1:${port}`,
      fetch: globalThis.fetch,
      nonceSecret: '',
      nonces: createNonceIssuer({ secret: randomBytes(32), period: 2, window: 1 }),
      replay: store,
      maxAge: 2,
      clockTolerance: 1,
    });
    const api = await startApi(
      auth,
      { keyPem: pki.server.keyPem, certPem: pki.server.certPem, caPem: pki.ca.certPem },
      port,
    );
    const url = `${api.url}/api/orders`;

    const clients = await Promise.all(
      [0, 1, 2, 3].map(async () => {
        const key = await generateKeyPair();
        const captured: { last?: Record<string, string> } = {};
        const tap: FetchLike = async (input, init) => {
          const res = await trusting(input, init);
          if (res.ok && String(input).startsWith(api.url))
            captured.last = Object.fromEntries(new Headers(init?.headers));
          return res;
        };
        const dpopFetch = createDPoPFetch(key, { fetch: tap });
        const res = await createDPoPFetch(key)(`${as.issuer}/token`, {
          method: 'POST',
          headers: { authorization: `Basic ${btoa('svc:secret')}` },
          body: new URLSearchParams({ grant_type: 'client_credentials' }),
        });
        const { access_token: token } = (await res.json()) as { access_token: string };
        return { key, dpopFetch, token, captured };
      }),
    );
    const thief = createDPoPFetch(await generateKeyPair(), { fetch: trusting });

    const stats: Record<Kind, { sent: number; accepted: number; rejected: number }> = {
      legitimate: { sent: 0, accepted: 0, rejected: 0 },
      replay: { sent: 0, accepted: 0, rejected: 0 },
      stolen: { sent: 0, accepted: 0, rejected: 0 },
      downgrade: { sent: 0, accepted: 0, rejected: 0 },
    };
    const latencies: number[] = [];
    const sizes: number[] = [];
    // legitimate requests accepted so far, at each size sample (the store's inflow)
    const inflow: number[] = [];
    const sampledAt: number[] = [];
    // legitimate requests refused after taking longer than the proof window (maxAge 2 s): only a
    // machine loaded enough to delay a request by seconds produces these
    let slowRejected = 0;
    const heap: number[] = [];
    const deadline = Date.now() + SECONDS * 1000;
    const sampler = setInterval(() => {
      sizes.push(store.size);
      inflow.push(stats.legitimate.accepted);
      sampledAt.push(performance.now());
      heap.push(process.memoryUsage().heapUsed);
    }, 250);
    let i = 0;
    const worker = async () => {
      while (Date.now() < deadline) {
        const c = clients[i++ % clients.length]!;
        const roll = i % 10;
        const kind: Kind =
          roll < 7 || !c.captured.last
            ? 'legitimate'
            : roll === 7
              ? 'replay'
              : roll === 8
                ? 'stolen'
                : 'downgrade';
        const started = performance.now();
        let status: number;
        if (kind === 'legitimate')
          status = (await c.dpopFetch(url, { accessToken: c.token })).status;
        else if (kind === 'replay')
          status = (await trusting(url, { headers: c.captured.last! })).status;
        else if (kind === 'stolen') status = (await thief(url, { accessToken: c.token })).status;
        else
          status = (await trusting(url, { headers: { authorization: `Bearer ${c.token}` } }))
            .status;
        const took = performance.now() - started;
        if (kind === 'legitimate') latencies.push(took);
        if (kind === 'legitimate' && status !== 200 && took > 2000) slowRejected++;
        stats[kind].sent++;
        stats[kind][status === 200 ? 'accepted' : 'rejected']++;
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    clearInterval(sampler);
    await api.close();
    await as.close();

    const half = Math.floor(sizes.length / 2);
    const report = {
      seconds: SECONDS,
      stats,
      requestsPerSecond: Math.round(Object.values(stats).reduce((a, s) => a + s.sent, 0) / SECONDS),
      latencyMs: {
        p50: percentile(latencies, 50),
        p99: percentile(latencies, 99),
        max: Math.max(...latencies),
      },
      replayStore: {
        cap: 50_000,
        maxFirstHalf: Math.max(...sizes.slice(1, half)),
        maxSecondHalf: Math.max(...sizes.slice(half)),
      },
      heapMiB: {
        firstHalfMax: Math.max(...heap.slice(1, half)) / 2 ** 20,
        secondHalfMax: Math.max(...heap.slice(half)) / 2 ** 20,
      },
    };
    const dir = fileURLToPath(new URL('../results/', import.meta.url));
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${dir}soak.json`, `${JSON.stringify(report, null, 2)}\n`);
    console.log(`soak: ${JSON.stringify(report)}`);

    expect(stats.legitimate.sent).toBeGreaterThan(100);
    // every refusal of a legitimate request is one the machine delayed past the proof window
    expect(stats.legitimate.rejected - slowRejected).toBe(0);
    expect(slowRejected).toBeLessThanOrEqual(Math.ceil(stats.legitimate.sent / 100));
    for (const kind of ['replay', 'stolen', 'downgrade'] as const) {
      expect(stats[kind].sent).toBeGreaterThan(10);
      expect(stats[kind].accepted).toBe(0);
    }
    // entries live 3 s (maxAge 2 + tolerance 1): the store plateaus instead of growing with time
    expect(report.replayStore.maxSecondHalf).toBeLessThanOrEqual(report.replayStore.cap);
    // load-independent plateau: at every sample the store holds no more than what was admitted
    // in the last entry lifetime (3 s, plus a sample period), whatever the request rate was
    let windowStart = 0;
    for (let k = 1; k < sizes.length; k++) {
      while (sampledAt[k]! - sampledAt[windowStart]! > 3_500) windowStart++;
      const admitted = inflow[k]! - (windowStart > 0 ? inflow[windowStart - 1]! : 0);
      expect(sizes[k]!).toBeLessThanOrEqual(2 * admitted + 100);
    }
  });

  it('under pressure the memory store refuses (503) the key over its share rather than grows, and still serves others', async () => {
    const store = new MemoryReplayStore({ maxEntries: 200 });
    const verify = createProofVerifier({ replay: store });
    const key = await generateKeyPair();
    const call = (k: CryptoKeyPair) =>
      createProof(k, { method: 'GET', url: 'https://rs/x' }).then((proof) =>
        verify(proof, { method: 'GET', url: 'https://rs/x' }),
      );
    let refused = 0;
    for (let n = 0; n < 300; n++) {
      try {
        await call(key);
      } catch (e) {
        expect(e).toBeInstanceOf(DPoPError);
        expect([
          (e as DPoPError).status,
          (e as DPoPError).reason,
          (e as DPoPError).headers['Retry-After'],
        ]).toEqual([503, 'replay_over_share', '1']);
        refused++;
      }
    }
    // one key alone may use half the capacity; the other half stays for everyone else
    expect(store.size).toBe(100);
    expect(refused).toBe(200);
    for (let c = 0; c < 20; c++) await call(await generateKeyPair());
    expect(store.size).toBe(120);
    expect(store.stats()).toMatchObject({ keys: 21, refusedOverShare: 200, refusedFull: 0 });
  });
});
