// The measurement that runs inside each runtime (Chromium, Deno, Bun): bundled by
// runtime-cases.ts with the runtime's WebCrypto branch, no Node APIs. Raw crypto.subtle.sign vs
// createProof and raw crypto.subtle.verify vs verifyProof, interleaved round by round.
import { createProof, generateKeyPair } from '@popkit/dpop-client';
import { createProofVerifier } from '@popkit/dpop-verifier';
import type { Case, Measured } from './harness.ts';
import { measureGroup } from './harness.ts';

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
  // The raw limit signs exactly what a proof signs: a real signing input of the same length.
  const sample = await createProof(pair, request);
  const dot = sample.lastIndexOf('.');
  const input = new TextEncoder().encode(sample.slice(0, dot));
  const signature = new Uint8Array(await crypto.subtle.sign(ECDSA, pair.privateKey, input));
  const verifyKey = await crypto.subtle.importKey(
    'jwk',
    await crypto.subtle.exportKey('jwk', pair.publicKey),
    { name: 'ECDSA', namedCurve: 'P-256' },
    false,
    ['verify'],
  );
  const verifier = createProofVerifier({ replay: false, algorithms: ['ES256'] });
  let pool: string[] = [];
  let i = 0;
  const cases: Case[] = [
    { name: PROBE_NAMES.sign, run: () => crypto.subtle.sign(ECDSA, pair.privateKey, input) },
    { name: PROBE_NAMES.create, run: () => createProof(pair, request) },
    {
      name: PROBE_NAMES.verify,
      run: () => crypto.subtle.verify(ECDSA, verifyKey, signature, input),
    },
    {
      name: PROBE_NAMES.verifyProof,
      // fresh proofs (current iat), each verified once per 512 calls; the key stays cached
      beforeRound: async () => {
        pool = [];
        for (let k = 0; k < 512; k++) pool.push(await createProof(pair, request));
      },
      run: () => verifier(pool[i++ & 511]!, request),
    },
  ];
  const measured = await measureGroup(cases, options.rounds, options.ms);

  // Where createProof's time goes: its pieces, each alone (means over ~200 ms).
  const encoder = new TextEncoder();
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
