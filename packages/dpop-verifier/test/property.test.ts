import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { normalizeHtu } from '@popkit/dpop-client';
import { DPoPError, MemoryReplayStore, createDPoPAuth, createProofVerifier } from '../src/index.ts';
import { NOW, URL_, rawKey } from './helpers.ts';

// Seeded and bounded; POPKIT_FUZZ_RUNS=20000 for a long run.
const RUNS = Number(process.env.POPKIT_FUZZ_RUNS ?? 300);
const params = { seed: 9449, numRuns: RUNS };

const verify = createProofVerifier({
  replay: new MemoryReplayStore({ now: () => NOW }),
  now: () => NOW,
});
const expectation = { method: 'GET', url: URL_ };

async function outcome(proof: unknown): Promise<'accepted' | DPoPError> {
  try {
    await verify(proof as string, expectation);
    return 'accepted';
  } catch (e) {
    if (!(e instanceof DPoPError)) throw new Error(`untyped throw: ${String(e)}`);
    return e;
  }
}

describe('verifyProof properties (fast-check)', () => {
  const key = rawKey();

  it('random strings, bytes and JSON are rejected with a DPoPError', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string(),
          fc.string({ unit: 'binary' }),
          fc.uint8Array().map((b) => Buffer.from(b).toString('latin1')),
          fc.json().map((j) => Buffer.from(j).toString('base64url')),
          fc
            .tuple(fc.json(), fc.json(), fc.string())
            .map(
              ([a, b, c]) =>
                `${Buffer.from(a).toString('base64url')}.${Buffer.from(b).toString('base64url')}.${c}`,
            ),
          fc.anything(),
        ),
        async (input) => {
          expect(await outcome(input)).toBeInstanceOf(DPoPError);
        },
      ),
      params,
    );
  });

  it('any character change to a valid proof is rejected', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.nat(),
        fc.constantFrom(
          ...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ '.split(''),
        ),
        async (pos, char) => {
          const proof = key.jws(key.header(), key.claims());
          const i = pos % proof.length;
          fc.pre(proof[i] !== char);
          const mutated = proof.slice(0, i) + char + proof.slice(i + 1);
          expect(await outcome(mutated)).toBeInstanceOf(DPoPError);
        },
      ),
      params,
    );
  });

  it('re-signed proofs with any protocol field changed are rejected', async () => {
    const fields = ['typ', 'alg', 'jwk', 'crit', 'htm', 'htu', 'iat', 'jti'] as const;
    const value = fc.oneof(
      fc.anything(),
      fc.string(),
      fc.string({ unit: 'grapheme', maxLength: 40 }),
      fc.double(),
      fc.constantFrom(
        1e308,
        -1e308,
        Number.MAX_SAFE_INTEGER,
        2 ** 64,
        'x'.repeat(65536),
        'dpop+jwt ',
        'DPOP+JWT',
        'none',
        'HS256',
        'get',
        'https://api.example.com/other',
      ),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...fields), value, async (field, v) => {
        const header: Record<string, unknown> = key.header();
        const claims: Record<string, unknown> = key.claims();
        const target = field in header || field === 'crit' ? header : claims;
        const original = target[field];
        if (field === 'jti') fc.pre(!(typeof v === 'string' && v.length > 0 && v.length <= 256)); // any such jti is valid
        if (field === 'iat') fc.pre(!(typeof v === 'number' && Math.abs(v - NOW / 1000) <= 60));
        if (field === 'htu' && typeof v === 'string') {
          let same = false;
          try {
            same = normalizeHtu(v) === URL_;
          } catch {
            same = false;
          }
          fc.pre(!same);
        }
        fc.pre(JSON.stringify(v) !== JSON.stringify(original));
        target[field] = v;
        let proof: string;
        try {
          proof = key.jws(header, claims);
        } catch {
          return; // not serialisable (BigInt...): nothing to send
        }
        const result = await outcome(proof);
        expect(result).toBeInstanceOf(DPoPError);
      }),
      params,
    );
  });

  it('64 KiB hostile inputs return in milliseconds', async () => {
    const big = 'A'.repeat(65536);
    const inputs = [
      big,
      `${big}.${big}.${big}`,
      key.jws(key.header({ kid: big }), key.claims()),
      key.jws(key.header(), key.claims({ htu: `https://api.example.com/${'%41'.repeat(20000)}` })),
      '.'.repeat(65536),
      `${'{'.repeat(30000)}`,
    ];
    const lenient = createProofVerifier({ replay: false, maxProofLength: 65536, now: () => NOW });
    for (const input of inputs) {
      const start = performance.now();
      await lenient(input, expectation).catch((e: unknown) => expect(e).toBeInstanceOf(DPoPError));
      expect(performance.now() - start).toBeLessThan(250); // bounded work (generous: loaded CI machines)
    }
  });
});

describe('createDPoPAuth().verify properties', () => {
  const auth = createDPoPAuth({
    accessToken: () => ({ cnf: { jkt: 'A'.repeat(43) } }),
    replay: new MemoryReplayStore(),
    allowUnboundBearer: true,
    dangerouslyTrustRequestUrl: true, // arbitrary Host headers are part of the property
  });
  it('arbitrary headers never produce anything but a DPoPError', async () => {
    const headerValue = fc.oneof(
      fc.string(),
      fc.constantFrom(
        'DPoP x',
        'Bearer y',
        'dpop',
        'DPoP  a, DPoP b',
        'Bearer =',
        `DPoP ${'a'.repeat(70000)}`,
      ),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.dictionary(
          fc.constantFrom('authorization', 'dpop', 'host', 'x-forwarded-host'),
          headerValue,
        ),
        fc.string(),
        async (headers, path) => {
          try {
            await auth.verify({
              method: 'GET',
              url: `/${path}`,
              headers: { host: 'api.example.com', ...headers },
            });
            throw new Error('accepted');
          } catch (e) {
            expect(e).toBeInstanceOf(DPoPError);
          }
        },
      ),
      params,
    );
  });
});
