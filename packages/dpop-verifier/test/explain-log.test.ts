// `explain: 'log'`: a refused request is logged once with its failing check and reason, with
// fingerprints only (never the token, the proof or the key); off by default.
import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DPoPConfigError, createDPoPAuth } from '../src/index.ts';
import type { DPoPAuthOptions } from '../src/index.ts';
import { NOW, URL_, rawKey } from './helpers.ts';

const key = rawKey('Ed25519');
const jkt = createHash('sha256')
  .update(JSON.stringify({ crv: key.jwk.crv, kty: key.jwk.kty, x: key.jwk.x }))
  .digest('base64url');
const token = 'opaque-access-token-0123456789';
const ath = createHash('sha256').update(token).digest('base64url');

const options = (extra: Partial<DPoPAuthOptions> = {}): DPoPAuthOptions => ({
  accessToken: (t) =>
    t === token ? { sub: 'alice', cnf: { jkt } } : Promise.reject(new Error('no')),
  replay: false,
  publicUrl: 'https://api.example.com',
  now: () => NOW,
  ...extra,
});

const request = (proof: string) => ({
  method: 'GET',
  url: '/orders',
  headers: { authorization: `DPoP ${token}`, dpop: proof },
});

describe("createDPoPAuth({ explain: 'log' })", () => {
  let lines: string[];
  beforeEach(() => {
    lines = [];
    vi.spyOn(console, 'warn').mockImplementation((...args: unknown[]) => {
      lines.push(args.map(String).join(' '));
    });
  });
  afterEach(() => vi.restoreAllMocks());

  it('logs the failing check and reason with fingerprints only', async () => {
    const auth = createDPoPAuth(options({ explain: 'log' }));
    const proof = key.jws(key.header(), key.claims({ htu: `${URL_}/other`, ath }));
    await expect(auth.verify(request(proof))).rejects.toMatchObject({ reason: 'htu' });
    await vi.waitFor(() => expect(lines).toHaveLength(1));
    const line = lines[0]!;
    expect(line).toContain('refused at check 9: reason htu (invalid_dpop_proof, 401)');
    expect(line).toContain(`token sha256:${ath.slice(0, 12)}`);
    expect(line).toContain(`cnf.jkt ${jkt}`);
    const proofHash = createHash('sha256').update(proof).digest('base64url');
    expect(line).toContain(`proof sha256:${proofHash.slice(0, 12)}`);
    expect(line).toContain('popkit explain');
    for (const secret of [token, proof, key.jwk.x!, ath]) expect(line).not.toContain(secret);
  });

  it('logs request-level refusals too, and nothing for an accepted request', async () => {
    const auth = createDPoPAuth(options({ explain: 'log' }));
    await expect(auth.verify(request(''))).rejects.toMatchObject({ reason: 'missing_proof' });
    const ok = key.jws(key.header(), key.claims({ ath }));
    await expect(auth.verify(request(ok))).resolves.toMatchObject({ jkt });
    await vi.waitFor(() => expect(lines).toHaveLength(1));
    expect(lines[0]).toContain('refused at check 1: reason missing_proof');
  });

  it('is off by default, and a bad value is a configuration error', async () => {
    const auth = createDPoPAuth(options());
    await expect(auth.verify(request('x.y.z'))).rejects.toMatchObject({
      reason: 'proof_malformed',
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(lines).toEqual([]);
    expect(() => createDPoPAuth(options({ explain: true as unknown as 'log' }))).toThrow(
      DPoPConfigError,
    );
    expect(() => createDPoPAuth(options({ explain: false }))).not.toThrow();
  });
});
