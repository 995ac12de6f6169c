// The measurement that runs inside each runtime (Chromium, Deno, Bun): bundled by
// runtime-cases.ts with the runtime's WebCrypto branch, no Node APIs. Raw crypto.subtle.sign vs
// createProof and raw crypto.subtle.verify vs verifyProof, each pair interleaved batch by batch.
import { createProof, generateKeyPair } from '@popkit/dpop-client';
import { createProofVerifier } from '@popkit/dpop-verifier';
import type { Case, Measured } from './harness.ts';
import { measurePair } from './harness.ts';

export interface ProbeOptions {
  rounds: number;
  ms: number;
}

export interface ProbeResult {
  measured: Measured[];
  /** Microseconds per piece of createProof, measured separately (where the time goes). */
  pieces: Record<string, number>;
}

const URL_ = 'https://rs.example.com/api/orders';
const ECDSA = { name: 'ECDSA', hash: 'SHA-256' } as const;

/** A base64url JWS signature's bytes (no Node APIs: this runs in every runtime). */
function decodeSignature(segment: string): Uint8Array {
  const binary = atob(segment.replace(/-/g, '+').replace(/_/g, '/'));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

export const PROBE_NAMES = {
  sign: '[limit] crypto.subtle.sign ES256',
  create: 'popkit createProof ES256',
  verify: '[limit] crypto.subtle.verify ES256',
  verifyProof: 'popkit verifyProof ES256 warm key',
} as const;

/** Mean microseconds of `run` over about `ms` milliseconds. */
async function micros(run: () => unknown, ms: number): Promise<number> {
  let n = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < ms) {
    for (let i = 0; i < 64; i++) await run();
    n += 64;
    elapsed = performance.now() - start;
  }
  return (elapsed * 1000) / n;
}

export async function runProbe(options: ProbeOptions): Promise<ProbeResult> {
  const pair = await generateKeyPair('ES256');
  const request = { method: 'GET', url: URL_ };
  const sample = await createProof(pair, request);
  const dot = sample.lastIndexOf('.');
  const input = new TextEncoder().encode(sample.slice(0, dot));
  const verifyKey = await crypto.subtle.importKey(
    'jwk',
    await crypto.subtle.exportKey('jwk', pair.publicKey),
    { name: 'ECDSA', namedCurve: 'P-256' },
    false,
    ['verify'],
  );
  const verifier = createProofVerifier({ replay: false, algorithms: ['ES256'] });
  // The limits do the same work on the same data: the raw sign signs real signing inputs of
  // 512 proofs in turn (createProof signs a new one each time), the raw verify checks the very
  // 512 proofs verifyProof checks (one input verified over and over ran about 5 % faster in Bun:
  // its data stayed in the caches).
  const POOL = 512;
  const inputs: Uint8Array[] = [];
  let pool: string[] = [];
  let signatures: Uint8Array[] = [];
  let signed: Uint8Array[] = [];
  const encoder = new TextEncoder();
  for (let k = 0; k < POOL; k++) {
    const p = await createProof(pair, request);
    inputs.push(encoder.encode(p.slice(0, p.lastIndexOf('.'))));
  }
  let i = 0;
  let v = 0;
  let w = 0;
  const sign: Case = {
    name: PROBE_NAMES.sign,
    run: () =>
      crypto.subtle.sign(ECDSA, pair.privateKey, inputs[i++ & (POOL - 1)]! as BufferSource),
  };
  const create: Case = { name: PROBE_NAMES.create, run: () => createProof(pair, request) };
  const verify: Case = {
    name: PROBE_NAMES.verify,
    // fresh proofs (current iat) each round, shared with verifyProof
    beforeRound: async () => {
      pool = [];
      signatures = [];
      signed = [];
      for (let k = 0; k < POOL; k++) {
        const p = await createProof(pair, request);
        const d = p.lastIndexOf('.');
        pool.push(p);
        signed.push(encoder.encode(p.slice(0, d)));
        signatures.push(decodeSignature(p.slice(d + 1)));
      }
    },
    run: () => {
      const k = v++ & (POOL - 1);
      return crypto.subtle.verify(
        ECDSA,
        verifyKey,
        signatures[k]! as BufferSource,
        signed[k]! as BufferSource,
      );
    },
  };
  const verifyProof: Case = {
    name: PROBE_NAMES.verifyProof,
    run: () => verifier(pool[w++ & (POOL - 1)]!, request),
  };
  const measured = [
    ...(await measurePair(sign, create, options.rounds, options.ms)),
    ...(await measurePair(verify, verifyProof, options.rounds, options.ms)),
  ];

  // Where createProof's time goes: its pieces, each alone (means over ~200 ms).
  const text = sample.slice(0, dot);
  const random = new Uint8Array(16);
  const pieces: Record<string, number> = {
    'crypto.subtle.sign': await micros(
      () => crypto.subtle.sign(ECDSA, pair.privateKey, input),
      200,
    ),
    createProof: await micros(() => createProof(pair, request), 200),
    'TextEncoder.encode(signing input)': await micros(() => encoder.encode(text), 100),
    'getRandomValues(16)': await micros(() => crypto.getRandomValues(random), 100),
    'new URL(url)': await micros(() => new URL(URL_), 100),
    'an await': await micros(() => undefined, 100),
  };
  return { measured, pieces };
}
