import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createProof, generateKeyPair, thumbprint } from '@popkit/dpop-client';
import type { Attributes } from '@opentelemetry/api';
import { SpanStatusCode, context, trace } from '@opentelemetry/api';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  StackContextManager,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import express from 'express';
import { SignJWT, exportJWK, generateKeyPair as joseKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dpopAuth, toRequestLike } from '../src/express/index.ts';
import type { AuthOutcome } from '../src/index.ts';
import {
  DPoPConfigError,
  DPoPError,
  MemoryReplayStore,
  PROOF_ALGORITHMS,
  createNonceIssuer,
  createTokenRequestVerifier,
} from '../src/index.ts';
import { DPOP_ATTRIBUTES, DPOP_METRICS, OTHER, dpopTelemetry } from '../src/otel/index.ts';
import { REFUSALS } from '../src/errors.ts';

// Real OpenTelemetry SDKs (metrics and traces) behind a real Express API, a real token endpoint
// and a real issuer serving its JWKS on 127.0.0.1, driven by valid and hostile traffic: random
// paths, random jtis and kids, garbage headers, made-up algs, skewed clocks, replays.

class Reader extends MetricReader {
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** Every value each attribute key may take: the closed sets. */
const ALLOWED: Record<string, ReadonlySet<string>> = {
  [DPOP_ATTRIBUTES.outcome]: new Set(['accepted', 'rejected', 'error']),
  [DPOP_ATTRIBUTES.reason]: new Set([...Object.keys(REFUSALS), OTHER]),
  [DPOP_ATTRIBUTES.scheme]: new Set(['DPoP', 'Bearer', 'none']),
  [DPOP_ATTRIBUTES.alg]: new Set([...PROOF_ALGORITHMS, OTHER]),
  [DPOP_ATTRIBUTES.endpoint]: new Set(['resource', 'token']),
  [DPOP_ATTRIBUTES.signatureOf]: new Set(['proof', 'access_token']),
  [DPOP_ATTRIBUTES.introspectionResult]: new Set(['active', 'inactive', 'error', OTHER]),
  [DPOP_ATTRIBUTES.jwksResult]: new Set(['ok', 'error', OTHER]),
  [DPOP_ATTRIBUTES.clockDirection]: new Set(['behind', 'ahead']),
  [DPOP_ATTRIBUTES.jwksTrigger]: new Set(['initial', 'expired', 'refresh', 'unknown_key', OTHER]),
};
const random = (n = 12) =>
  Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => b.toString(36)).join('');

let jwksServer: Server;
let api: Server;
let base = '';
const reader = new Reader();
const spans = new InMemorySpanExporter();
const outcomes: AuthOutcome[] = [];
let mint: (claims: Record<string, unknown>, kid?: string) => Promise<string>;
let jwksRequests = 0;
const PUBLIC = 'https://api.example.com';

beforeAll(async () => {
  const pair = await joseKeyPair('ES256');
  const jwks = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'as-1', alg: 'ES256' }] };
  jwksServer = createServer((_req, res) => {
    jwksRequests++;
    res.setHeader('content-type', 'application/json').end(JSON.stringify(jwks));
  });
  await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', r));
  const jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks`;
  mint = (claims, kid = 'as-1') =>
    new SignJWT({ client_id: 'c1', scope: 'read', ...claims })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid })
      .setIssuer('https://as.example.com')
      .setAudience(PUBLIC)
      .setSubject('user-1')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(pair.privateKey);

  const meterProvider = new MeterProvider({ readers: [reader] });
  const tracerProvider = new TracerProvider({
    spanProcessors: [new SimpleSpanProcessor({ exporter: spans })],
  });
  // (no HTTP instrumentation here: spans without a parent, see the requireParentSpan test)
  const telemetry = dpopTelemetry({ meterProvider, tracerProvider, requireParentSpan: false });
  const tap = (o: AuthOutcome) => {
    outcomes.push(o);
    telemetry.onResult(o);
  };
  const replay = new MemoryReplayStore();
  const nonces = createNonceIssuer({ secret: 'n'.repeat(32) });
  const checkDPoP = createTokenRequestVerifier({
    ...telemetry,
    onResult: tap,
    tokenEndpoint: `${PUBLIC}/token`,
    replay,
  });
  const app = express();
  app.post('/token', async (req, res) => {
    try {
      const prepared = await checkDPoP.prepare(toRequestLike(req));
      await prepared!.commit({ account: 'client-1' });
      res.json({ ok: true });
    } catch (e) {
      const error = e as DPoPError;
      res.status(error.status).set(error.headers).send(error.body);
    }
  });
  app.use(
    dpopAuth({
      ...telemetry,
      onResult: tap,
      accessToken: {
        issuer: 'https://as.example.com',
        audience: PUBLIC,
        jwks: jwksUrl,
        jwksUnknownKeyInterval: 0.2,
      },
      publicUrl: PUBLIC,
      replay,
      nonces,
      requireNonce: (request) => request.url.startsWith('/nonce'),
    }),
  );
  app.use((_req, res) => res.json({ ok: true }));
  api = app.listen(0, '127.0.0.1');
  await new Promise((r) => api.once('listening', r));
  base = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((r) => api?.close(r));
  await new Promise((r) => jwksServer?.close(r));
});

async function collect(): Promise<ResourceMetrics> {
  const { resourceMetrics, errors } = await reader.collect();
  expect(errors).toEqual([]);
  return resourceMetrics;
}

/** Data points by metric name: their attribute sets and values. */
function points(rm: ResourceMetrics) {
  const out = new Map<string, Array<{ attributes: Attributes; value: unknown }>>();
  for (const scope of rm.scopeMetrics)
    for (const metric of scope.metrics)
      out.set(
        metric.descriptor.name,
        metric.dataPoints.map((p) => ({ attributes: p.attributes, value: p.value })),
      );
  return out;
}

function count(value: unknown): number {
  return typeof value === 'number' ? value : (value as { count: number }).count;
}

function sum(
  all: Map<string, Array<{ attributes: Attributes; value: unknown }>>,
  name: string,
  where: Attributes = {},
): number {
  let n = 0;
  for (const p of all.get(name) ?? [])
    if (Object.entries(where).every(([k, v]) => p.attributes[k] === v)) n += count(p.value);
  return n;
}

async function call(path: string, headers: Record<string, string>, method = 'GET') {
  const response = await fetch(base + path, { method, headers });
  await response.arrayBuffer();
  return response;
}

describe('dpopTelemetry', () => {
  it('refuses unknown options and providers that are not providers', () => {
    expect(() => dpopTelemetry({ meterProvidr: {} } as never)).toThrow(/meterProvider/);
    expect(() => dpopTelemetry({ meterProvider: {} as never })).toThrow(DPoPConfigError);
    expect(() => dpopTelemetry({ tracerProvider: 1 as never })).toThrow(DPoPConfigError);
    expect(Object.keys(dpopTelemetry())).toEqual(['onResult', 'onUpstream']);
  });

  it('records what operators watch, with the right numbers', async () => {
    const key = await generateKeyPair('ES256');
    const jkt = await thumbprint(key);
    const token = await mint({ cnf: { jkt } });
    const before = points(await collect());
    const accepted0 = sum(before, DPOP_METRICS.duration, { [DPOP_ATTRIBUTES.outcome]: 'accepted' });
    // 5 valid requests
    for (let i = 0; i < 5; i++) {
      const url = `${PUBLIC}/orders/${i}`;
      const dpop = await createProof(key, { method: 'GET', url, accessToken: token });
      expect((await call(`/orders/${i}`, { authorization: `DPoP ${token}`, dpop })).status).toBe(
        200,
      );
    }
    // one replay
    const dpop = await createProof(key, { method: 'GET', url: `${PUBLIC}/r`, accessToken: token });
    expect((await call('/r', { authorization: `DPoP ${token}`, dpop })).status).toBe(200);
    expect((await call('/r', { authorization: `DPoP ${token}`, dpop })).status).toBe(401);
    // a clock 15 minutes behind
    const old = await createProof(
      key,
      { method: 'GET', url: `${PUBLIC}/old`, accessToken: token },
      { iat: Math.floor(Date.now() / 1000) - 900 },
    );
    expect((await call('/old', { authorization: `DPoP ${token}`, dpop: old })).status).toBe(401);
    // a nonce challenge
    const noNonce = await createProof(key, {
      method: 'GET',
      url: `${PUBLIC}/nonce`,
      accessToken: token,
    });
    const challenged = await call('/nonce', { authorization: `DPoP ${token}`, dpop: noNonce });
    expect(challenged.status).toBe(401);
    expect(challenged.headers.get('www-authenticate')).toMatch(/use_dpop_nonce/);
    // a bad access-token signature
    const forged = token.slice(0, -4) + (token.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    const forgedProof = await createProof(key, {
      method: 'GET',
      url: `${PUBLIC}/f`,
      accessToken: forged,
    });
    expect((await call('/f', { authorization: `DPoP ${forged}`, dpop: forgedProof })).status).toBe(
      401,
    );
    // a token request
    const tokenProof = await createProof(key, { method: 'POST', url: `${PUBLIC}/token` });
    expect((await call('/token', { dpop: tokenProof }, 'POST')).status).toBe(200);

    const after = points(await collect());
    expect(
      sum(after, DPOP_METRICS.duration, { [DPOP_ATTRIBUTES.outcome]: 'accepted' }) - accepted0,
    ).toBe(7);
    expect(
      sum(after, DPOP_METRICS.duration, {
        [DPOP_ATTRIBUTES.outcome]: 'accepted',
        [DPOP_ATTRIBUTES.endpoint]: 'token',
        [DPOP_ATTRIBUTES.alg]: 'ES256',
      }),
    ).toBeGreaterThanOrEqual(1);
    expect(sum(after, DPOP_METRICS.replays) - sum(before, DPOP_METRICS.replays)).toBe(1);
    // the missing nonce, and the stale iat (with server nonces, a stale proof is told the nonce)
    expect(
      sum(after, DPOP_METRICS.nonceChallenges) - sum(before, DPOP_METRICS.nonceChallenges),
    ).toBe(2);
    expect(
      sum(after, DPOP_METRICS.signatureFailures, {
        [DPOP_ATTRIBUTES.signatureOf]: 'access_token',
      }) -
        sum(before, DPOP_METRICS.signatureFailures, {
          [DPOP_ATTRIBUTES.signatureOf]: 'access_token',
        }),
    ).toBe(1);
    // the skewed client shows in the skew histogram, 900 s behind
    const skew = after
      .get(DPOP_METRICS.clockSkew)!
      .find((p) => p.attributes[DPOP_ATTRIBUTES.clockDirection] === 'behind')!;
    const hist = skew.value as { max: number };
    expect(hist.max).toBeGreaterThanOrEqual(899);
    expect(hist.max).toBeLessThan(905);
    const oldOutcome = outcomes.find(
      (o) => o.outcome === 'rejected' && o.reason === 'iat_too_old',
    )!;
    expect(oldOutcome.iatSkew).toBeLessThan(-899);
    // sizes, store time, fill
    expect(count(after.get(DPOP_METRICS.proofSize)![0]!.value)).toBeGreaterThanOrEqual(10);
    expect(count(after.get(DPOP_METRICS.tokenSize)![0]!.value)).toBeGreaterThanOrEqual(9);
    expect(sum(after, DPOP_METRICS.storeDuration)).toBeGreaterThanOrEqual(8);
    const fill = after.get(DPOP_METRICS.storeFill)!;
    expect(fill.length).toBeGreaterThanOrEqual(1);
    expect(fill[0]!.value as number).toBeGreaterThan(0);
    // the first token fetched the JWKS once
    expect(
      sum(after, DPOP_METRICS.jwksDuration, {
        [DPOP_ATTRIBUTES.jwksResult]: 'ok',
        [DPOP_ATTRIBUTES.jwksTrigger]: 'initial',
      }),
    ).toBe(1);
    const accepted = outcomes
      .filter((o) => o.outcome === 'accepted' && o.endpoint === 'resource')
      .at(-1)!;
    expect(accepted.alg).toBe('ES256');
    expect(Math.abs(accepted.iatSkew!)).toBeLessThan(5);
    expect(accepted.storeMs).toBeGreaterThanOrEqual(0);
  });

  it('hostile traffic never adds an attribute value outside the closed sets (fixed bound on series)', async () => {
    const key = await generateKeyPair('ES256');
    const jkt = await thumbprint(key);
    const token = await mint({ cnf: { jkt } });
    const secrets: string[] = [];
    const hostile: Array<() => Promise<Response>> = [];
    for (let i = 0; i < 60; i++) {
      const path = `/${random()}/${random(4)}?q=${random()}`;
      const jti = `jti-${random(16)}`;
      const kid = `kid-${random()}`;
      const garbage = random(20);
      const alg = `X${random(4)}`;
      secrets.push(path, jti, kid, garbage, alg);
      /** A request with the bound token and a valid proof for `path` (its options as given). */
      const signed = async (options?: Parameters<typeof createProof>[2]) =>
        call(path, {
          authorization: `DPoP ${token}`,
          dpop: await createProof(
            key,
            { method: 'GET', url: PUBLIC + path, accessToken: token },
            options,
          ),
        });
      hostile.push(
        // valid proof, random path and jti
        () => signed({ jti }),
        // garbage headers
        () => call(path, { authorization: `${garbage} ${garbage}`, dpop: garbage }),
        () =>
          call(path, {
            authorization: `DPoP ${garbage}`,
            dpop: `${garbage}.${garbage}.${garbage}`,
          }),
        // a made-up alg
        () => {
          const header = Buffer.from(
            JSON.stringify({ typ: 'dpop+jwt', alg, jwk: { kty: 'EC' } }),
          ).toString('base64url');
          return call(path, { authorization: `DPoP ${token}`, dpop: `${header}.e30.${garbage}` });
        },
        // an unknown kid (the JWKS is asked at most once per interval)
        async () => {
          const stranger = await mint({ cnf: { jkt } }, kid);
          return call(path, {
            authorization: `DPoP ${stranger}`,
            dpop: await createProof(key, {
              method: 'GET',
              url: PUBLIC + path,
              accessToken: stranger,
            }),
          });
        },
        // a random clock
        () =>
          signed({ iat: Math.floor(Date.now() / 1000) + Math.floor((Math.random() - 0.5) * 1e6) }),
        // a proof from the far future (the reported skew stays bounded)
        () => signed({ iat: 1e15 }),
        // token endpoint garbage, and a valid one with a random jti
        () => call('/token', { dpop: garbage }, 'POST'),
        async () =>
          call(
            '/token',
            { dpop: await createProof(key, { method: 'POST', url: `${PUBLIC}/token` }, { jti }) },
            'POST',
          ),
        // Bearer with garbage
        () => call(path, { authorization: `Bearer ${garbage}` }),
      );
    }
    for (const request of hostile) await request();

    for (const o of outcomes)
      if (o.iatSkew !== undefined) expect(Math.abs(o.iatSkew)).toBeLessThanOrEqual(315_360_000);
    expect(outcomes.some((o) => o.iatSkew === 315_360_000)).toBe(true);
    const all = points(await collect());
    const distinct = new Set<string>();
    let total = 0;
    for (const [name, list] of all) {
      for (const { attributes } of list) {
        for (const [k, v] of Object.entries(attributes)) {
          expect(ALLOWED[k], `attribute key ${k} on ${name}`).toBeDefined();
          expect(ALLOWED[k]!.has(String(v)), `${k}=${String(v)} on ${name}`).toBe(true);
        }
        distinct.add(`${name} ${JSON.stringify(Object.entries(attributes).sort())}`);
        total++;
      }
    }
    // 600 hostile requests with 300 random strings made only a few dozen series
    expect(total).toBe(distinct.size);
    expect(distinct.size).toBeLessThanOrEqual(80);
    const serialized = JSON.stringify([...all]);
    for (const s of secrets) expect(serialized.includes(s)).toBe(false);
    expect(jwksRequests).toBeLessThan(40);

    // spans: one per verification, bounded attributes, ERROR when refused, no request data
    const finished = spans.getFinishedSpans();
    expect(finished.length).toBe(outcomes.length);
    for (const span of finished) {
      expect(span.name).toBe('dpop.verify');
      for (const [k, v] of Object.entries(span.attributes))
        expect(ALLOWED[k]?.has(String(v))).toBe(true);
      const ok = span.attributes[DPOP_ATTRIBUTES.outcome] === 'accepted';
      expect(span.status.code).toBe(ok ? SpanStatusCode.UNSET : SpanStatusCode.ERROR);
      if (!ok) expect(ALLOWED[DPOP_ATTRIBUTES.reason]!.has(span.status.message!)).toBe(true);
      expect(span.events).toEqual([]);
    }
    const serializedSpans = JSON.stringify(finished.map((s) => [s.name, s.attributes, s.status]));
    for (const s of secrets) expect(serializedSpans.includes(s)).toBe(false);
    expect(serializedSpans.includes(token)).toBe(false);
  });

  it('by default a dpop.verify span is started only under an active span, as its child', () => {
    context.setGlobalContextManager(new StackContextManager().enable());
    try {
      const exporter = new InMemorySpanExporter();
      const tracerProvider = new TracerProvider({
        spanProcessors: [new SimpleSpanProcessor({ exporter })],
      });
      const telemetry = dpopTelemetry({ meterProvider: new MeterProvider(), tracerProvider });
      const outcome: AuthOutcome = {
        outcome: 'rejected',
        code: 'invalid_dpop_proof',
        reason: 'replay',
        status: 401,
        scheme: 'DPoP',
        endpoint: 'resource',
        durationMs: 0.2,
      };
      telemetry.onResult(outcome); // no active span: no span
      expect(exporter.getFinishedSpans()).toHaveLength(0);
      const parent = tracerProvider.getTracer('http').startSpan('GET /api');
      context.with(trace.setSpan(context.active(), parent), () => telemetry.onResult(outcome));
      parent.end();
      const [child] = exporter.getFinishedSpans().filter((s) => s.name === 'dpop.verify');
      expect(child!.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
      expect(child!.status).toEqual({ code: SpanStatusCode.ERROR, message: 'replay' });
      expect(child!.attributes).toEqual({
        'dpop.outcome': 'rejected',
        'dpop.reason': 'replay',
        'dpop.scheme': 'DPoP',
        'dpop.endpoint': 'resource',
      });
    } finally {
      context.disable();
    }
  });

  it('a throwing meter or tracer never changes a verdict', async () => {
    const boom = () => {
      throw new Error('boom');
    };
    const bad = { getMeter: boom } as never;
    expect(() => dpopTelemetry({ meterProvider: bad })).toThrow('boom');
    const meterProvider = new MeterProvider();
    const telemetry = dpopTelemetry({
      meterProvider,
      tracerProvider: { getTracer: () => ({ startSpan: boom, startActiveSpan: boom }) } as never,
      requireParentSpan: false,
    });
    const checkDPoP = createTokenRequestVerifier({
      ...telemetry,
      tokenEndpoint: `${PUBLIC}/token`,
      replay: new MemoryReplayStore(),
    });
    const key = await generateKeyPair('ES256');
    const proof = await createProof(key, { method: 'POST', url: `${PUBLIC}/token` });
    const request = { method: 'POST', url: '/token', headers: { dpop: proof } };
    await expect(checkDPoP(request)).resolves.toMatchObject({ jkt: await thumbprint(key) });
    await expect(checkDPoP(request)).rejects.toMatchObject({ reason: 'replay' });
  });
});
