// Client and verifier benchmarks against the raw node:crypto / WebCrypto limits and the peers.
import { createPublicKey, createPrivateKey, KeyObject, sign, verify } from 'node:crypto';
import { accessTokenHash, createProof, generateKeyPair, thumbprint } from '@popkit/dpop-client';
import { MemoryReplayStore, createDPoPAuth, createProofVerifier } from '@popkit/dpop-verifier';
import type { DPoPAuthOptions } from '@popkit/dpop-verifier';
import { dpopTelemetry } from '@popkit/dpop-verifier/otel';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { context, trace } from '@opentelemetry/api';
import { BatchSpanProcessor, StackContextManager, TracerProvider } from '@opentelemetry/sdk-trace';
import { generateProof } from 'dpop';
import {
  EmbeddedJWK,
  SignJWT,
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair as joseKeyPair,
  jwtVerify,
} from 'jose';
import Provider from 'oidc-provider';
// oidc-provider has no exports map: its DPoP validation is reachable by path (not public API).
import validateDpop from 'oidc-provider/lib/helpers/validate_dpop.js';
import type { Case } from './harness.ts';

const URL_ = 'https://rs.example.com/api/orders';
const TOKEN = 'eyJhbGciOiJFUzI1NiJ9.'.padEnd(248, 'x');
const data = new TextEncoder().encode('eyJ0eXAiOiJkcG9wK2p3dCJ9.eyJodG0iOiJHRVQifQ');

type Alg = 'ES256' | 'EdDSA';
const nodeSign = (alg: Alg, key: KeyObject, input: Uint8Array) =>
  alg === 'ES256'
    ? sign('sha256', input, { key, dsaEncoding: 'ieee-p1363' })
    : sign(null, input, key);
const nodeVerify = (alg: Alg, key: KeyObject, input: Uint8Array, sig: Uint8Array) =>
  alg === 'ES256'
    ? verify('sha256', input, { key, dsaEncoding: 'ieee-p1363' }, sig)
    : verify(null, input, key, sig);
const subtleParams = (alg: Alg) =>
  alg === 'ES256' ? { name: 'ECDSA', hash: 'SHA-256' } : { name: 'Ed25519' };

export async function clientCases(alg: Alg): Promise<Case[]> {
  const pair = await generateKeyPair(alg); // non-extractable, as shipped
  const privateKeyObject = KeyObject.from(pair.privateKey);
  const dpopAlg = alg === 'ES256' ? 'ES256' : 'Ed25519';
  const joseJwk = await exportJWK(pair.publicKey);
  const ath = await accessTokenHash(TOKEN);
  return [
    { name: `[limit] node:crypto sign ${alg}`, run: () => nodeSign(alg, privateKeyObject, data) },
    {
      name: `[limit] WebCrypto sign ${alg}`,
      run: () => crypto.subtle.sign(subtleParams(alg), pair.privateKey, data),
    },
    {
      name: `popkit createProof ${alg}`,
      run: () => createProof(pair, { method: 'GET', url: URL_ }),
    },
    {
      name: `popkit createProof ${alg} +ath`,
      run: () => createProof(pair, { method: 'GET', url: URL_, accessToken: TOKEN }),
    },
    {
      name: `dpop generateProof ${alg} +ath`,
      run: () => generateProof(pair, URL_, 'GET', undefined, TOKEN),
    },
    {
      name: `jose SignJWT ${alg} +ath`,
      run: () =>
        new SignJWT({ htm: 'GET', htu: URL_, jti: crypto.randomUUID(), ath })
          .setProtectedHeader({
            typ: 'dpop+jwt',
            alg: dpopAlg === 'ES256' ? 'ES256' : 'EdDSA',
            jwk: joseJwk,
          })
          .setIssuedAt()
          .sign(pair.privateKey),
    },
  ];
}

/**
 * Refusals seen by cases that should accept every request, by case and reason: the bench fails
 * when one is not empty (a case swallowing refusals measures refusals, not verifications; a
 * replay store built after its proofs were signed refuses them all as `iat_before_restart`).
 */
export const unexpectedRefusals = new Map<string, number>();
const refused = (name: string) => (e: unknown) => {
  const key = `${name}: ${(e as { reason?: string }).reason ?? String(e)}`;
  unexpectedRefusals.set(key, (unexpectedRefusals.get(key) ?? 0) + 1);
};

/** Fresh proofs (unique jti, current iat) from `keys`, cycling through them. */
async function proofPool(
  keys: CryptoKeyPair[],
  n: number,
  accessToken?: string,
): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++)
    out.push(
      await createProof(keys[i % keys.length]!, {
        method: 'GET',
        url: URL_,
        ...(accessToken ? { accessToken } : {}),
      }),
    );
  return out;
}

export async function verifierCases(alg: Alg, poolSize: number): Promise<Case[]> {
  const one = [await generateKeyPair(alg, { extractable: true })];
  const many = await Promise.all(Array.from({ length: 256 }, () => generateKeyPair(alg)));
  const publicJwk = (await exportJWK(one[0]!.publicKey)) as Record<string, string>;
  const privateKeyObject = createPrivateKey({
    key: (await exportJWK(one[0]!.privateKey)) as never,
    format: 'jwk',
  });
  const publicKeyObject = createPublicKey({ key: publicJwk as never, format: 'jwk' });
  const signature = nodeSign(alg, privateKeyObject, data);
  const subtleKey = await crypto.subtle.importKey(
    'jwk',
    publicJwk,
    alg === 'ES256' ? { name: 'ECDSA', namedCurve: 'P-256' } : { name: 'Ed25519' },
    false,
    ['verify'],
  );

  const algorithms = ['ES256', 'EdDSA', 'Ed25519'] as const;
  const warm = createProofVerifier({ replay: false, algorithms: [...algorithms] });
  const cold = createProofVerifier({ replay: false, algorithms: [...algorithms], keyCacheSize: 1 });
  let replayVerifier = createProofVerifier({
    replay: new MemoryReplayStore({ maxEntries: 1_000_000 }),
    algorithms: [...algorithms],
  });

  let warmPool: string[] = [];
  let coldPool: string[] = [];
  let uniquePool: string[] = [];
  let i = 0;
  let j = 0;
  let k = 0;
  const expect = { method: 'GET', url: URL_ };
  const provider = new Provider('https://op.example.com', {
    features: { dPoP: { enabled: true } },
    enabledJWA: { dPoPSigningAlgValues: ['ES256', 'Ed25519', 'EdDSA'] },
  });
  const opCtx = (proof: string) => ({
    method: 'GET',
    oidc: { provider, route: 'x', urlFor: () => URL_ },
    get: () => proof,
    set: () => {},
  });

  return [
    {
      name: `[limit] node:crypto verify ${alg} (KeyObject ready)`,
      run: () => nodeVerify(alg, publicKeyObject, data, signature),
    },
    {
      name: `[limit] createPublicKey + verify ${alg}`,
      run: () =>
        nodeVerify(
          alg,
          createPublicKey({ key: publicJwk as never, format: 'jwk' }),
          data,
          signature,
        ),
    },
    {
      name: `[limit] WebCrypto verify ${alg}`,
      run: () =>
        crypto.subtle.verify(
          alg === 'ES256' ? { name: 'ECDSA', hash: 'SHA-256' } : { name: 'Ed25519' },
          subtleKey,
          signature,
          data,
        ),
    },
    {
      name: `popkit verifyProof ${alg} warm key`,
      beforeRound: async () => {
        warmPool = await proofPool(one, 512);
      },
      run: () => warm(warmPool[i++ & 511]!, expect),
    },
    {
      name: `popkit verifyProof ${alg} warm key + memory replay`,
      beforeRound: async () => {
        // the store first: proofs signed before a store started are refused (restarts, §11.1)
        replayVerifier = createProofVerifier({
          replay: new MemoryReplayStore({ maxEntries: 1_000_000 }),
          algorithms: [...algorithms],
        });
        uniquePool = await proofPool(one, poolSize);
        k = 0;
      },
      run: () =>
        replayVerifier(uniquePool[k++ % poolSize]!, expect).catch(
          refused(`verifyProof ${alg} + memory replay`),
        ),
    },
    {
      name: `popkit verifyProof ${alg} cold key`,
      beforeRound: async () => {
        coldPool = await proofPool(many, 512);
      },
      run: () => cold(coldPool[j++ & 511]!, expect),
    },
    {
      name: `jose jwtVerify EmbeddedJWK ${alg} + thumbprint`,
      run: async () => {
        const { payload, protectedHeader } = await jwtVerify(warmPool[i++ & 511]!, EmbeddedJWK, {
          typ: 'dpop+jwt',
          algorithms: [...algorithms],
        });
        if (payload.htm !== 'GET' || payload.htu !== URL_) throw new Error('claims');
        await calculateJwkThumbprint(protectedHeader.jwk!);
      },
    },
    {
      name: `oidc-provider validateDpop ${alg}`,
      run: () => validateDpop(provider, opCtx(warmPool[i++ & 511]!)),
    },
  ];
}

/** What the resource-server cases share: an issuer, a bound token, verifiers, telemetry. */
/** What fullSetup started: its SDKs' timers and the active span, stopped by closeTelemetry. */
const started: Array<() => Promise<unknown> | void> = [];

/**
 * Stops the OpenTelemetry SDKs the full-request cases started (a metric reader collecting every
 * second, a batch span processor, the global context manager, the parent span), so that the
 * groups measured after them run without their timers and buffers.
 */
export async function closeTelemetry(): Promise<void> {
  for (const stop of started.splice(0)) await stop();
}

async function fullSetup() {
  const as = await joseKeyPair('ES256');
  const jwks = { keys: [{ ...(await exportJWK(as.publicKey)), kid: 'k', alg: 'ES256' }] };
  const client = await generateKeyPair('ES256');
  const token = await new SignJWT({ cnf: { jkt: await thumbprint(client) }, client_id: 'c' })
    .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'k' })
    .setIssuer('https://as')
    .setAudience('https://rs')
    .setExpirationTime('1h')
    .sign(as.privateKey);
  const make = (cacheSize: number, telemetry: Partial<DPoPAuthOptions> = {}) =>
    createDPoPAuth({
      ...telemetry,
      accessToken: {
        issuer: 'https://as',
        audience: 'https://rs',
        jwks,
        algorithms: ['ES256'],
        cacheSize,
      },
      replay: new MemoryReplayStore({ maxEntries: 1_000_000 }),
      allowedHosts: [new URL(URL_).host],
    });
  // dpopTelemetry with the real OpenTelemetry SDKs, metrics and spans, exporters that drop
  // everything (the SDK's own work is measured, not an exporter's I/O)
  const noop = {
    export: (_items: unknown, done: (result: { code: number }) => void) => done({ code: 0 }), // SUCCESS
    shutdown: () => Promise.resolve(),
    forceFlush: () => Promise.resolve(),
  };
  const meterProvider = new MeterProvider({
    readers: [
      new PeriodicExportingMetricReader({ exporter: noop as never, exportIntervalMillis: 1000 }),
    ],
  });
  const tracerProvider = new TracerProvider({
    spanProcessors: [new BatchSpanProcessor({ exporter: noop as never })],
  });
  const telemetry = dpopTelemetry({ meterProvider, tracerProvider });
  // an instrumented server's HTTP span, active while verifying: one dpop.verify span per request
  // too (the verification is synchronous here, so the stack context manager carries it)
  context.setGlobalContextManager(new StackContextManager().enable());
  const parent = tracerProvider.getTracer('http').startSpan('GET');
  const traced = trace.setSpan(context.active(), parent);
  started.push(
    () => parent.end(),
    () => context.disable(),
    () => meterProvider.shutdown(),
    () => tracerProvider.shutdown(),
  );
  const request = (proof: string) => ({
    method: 'GET',
    url: URL_,
    headers: { authorization: `DPoP ${token}`, dpop: proof },
  });
  const pool = (n: number) => proofPool([client], n, token);
  return { jwks, client, make, telemetry, traced, request, pool };
}

/**
 * dpopTelemetry's cost per request: telemetry off, on (no active span: metrics only) and under
 * an active span (metrics and a span), requests of the three interleaved one by one, each
 * timed alone: median µs per request of each (host noise hits the three alike, and the median
 * drops requests a preemption or a GC pause landed on). Fresh proofs and stores per round.
 */
export async function telemetryOverhead(
  rounds: number,
  perRound: number,
): Promise<{ off: number; on: number; traced: number }> {
  const { make, telemetry, traced, request, pool } = await fullSetup();
  const times = { off: [] as number[], on: [] as number[], traced: [] as number[] };
  for (let r = 0; r < rounds; r++) {
    const off = make(10_000);
    const on = make(10_000, telemetry);
    const tracedAuth = make(10_000, telemetry);
    const proofs = await pool(3 * perRound);
    const time = async (run: () => Promise<unknown>, into: number[], keep: boolean) => {
      const start = performance.now();
      await run();
      if (keep) into.push(performance.now() - start);
    };
    for (let i = 0; i < perRound; i++) {
      const keep = i >= perRound / 5; // the first fifth warms up
      await time(() => off.verify(request(proofs[3 * i]!)), times.off, keep);
      await time(() => on.verify(request(proofs[3 * i + 1]!)), times.on, keep);
      await time(
        () => context.with(traced, () => tracedAuth.verify(request(proofs[3 * i + 2]!))),
        times.traced,
        keep,
      );
    }
  }
  const med = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1]! * 1000;
  return { off: med(times.off), on: med(times.on), traced: med(times.traced) };
}

/** A full resource-server request: proof + RFC 9068 JWT + ath + cnf.jkt + memory replay. */
export async function fullRequestCases(poolSize: number): Promise<Case[]> {
  const {
    jwks,
    client,
    make,
    telemetry,
    traced,
    request: toRequest,
    pool: sign,
  } = await fullSetup();
  const asKeyObject = createPublicKey({ key: jwks.keys[0] as never, format: 'jwk' });
  const clientPriv = KeyObject.from(client.privateKey);
  const clientPub = KeyObject.from(client.publicKey);
  const sig = nodeSign('ES256', clientPriv, data);
  let cached = make(10_000);
  let uncached = make(0);
  let observed = make(10_000, telemetry);
  let observedTraced = make(10_000, telemetry);
  let pool: string[] = [];
  let n = 0;
  const request = toRequest;
  const refill = async () => {
    pool = await sign(poolSize);
    n = 0;
  };
  return [
    {
      name: '[limit] two ES256 verifies (proof + token)',
      run: () =>
        nodeVerify('ES256', clientPub, data, sig) && nodeVerify('ES256', asKeyObject, data, sig),
    },
    {
      name: 'popkit createDPoPAuth.verify (JWT cached by hash)',
      beforeRound: async () => {
        cached = make(10_000); // before its proofs (see unexpectedRefusals)
        await refill();
      },
      run: () => cached.verify(request(pool[n++ % poolSize]!)).catch(refused('JWT cached by hash')),
    },
    {
      name: 'popkit createDPoPAuth.verify (JWT cached, dpopTelemetry: OTel SDK metrics, spans under a parent)',
      beforeRound: async () => {
        observed = make(10_000, telemetry); // before its proofs (see unexpectedRefusals)
        await refill();
      },
      run: () =>
        observed.verify(request(pool[n++ % poolSize]!)).catch(refused('JWT cached, dpopTelemetry')),
    },
    {
      name: 'popkit createDPoPAuth.verify (JWT cached, dpopTelemetry, under an active span: + a dpop.verify span)',
      beforeRound: async () => {
        observedTraced = make(10_000, telemetry); // before its proofs (see unexpectedRefusals)
        await refill();
      },
      run: () =>
        context.with(traced, () =>
          observedTraced
            .verify(request(pool[n++ % poolSize]!))
            .catch(refused('JWT cached, dpopTelemetry, active span')),
        ),
    },
    {
      name: 'popkit createDPoPAuth.verify (JWT verified by jose every time)',
      beforeRound: async () => {
        uncached = make(0); // before its proofs (see unexpectedRefusals)
        await refill();
      },
      run: () =>
        uncached
          .verify(request(pool[n++ % poolSize]!))
          .catch(refused('JWT verified by jose every time')),
    },
  ];
}
