import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { dpopAuth as expressAuth } from '../src/express/index.ts';
import { dpopAuthHook, dpopAuthPlugin } from '../src/fastify/index.ts';
import { dpopAuth as honoAuth } from '../src/hono/index.ts';
import type { DPoPAuthOptions } from '../src/index.ts';
import {
  DPoPConfigError,
  MemoryReplayStore,
  createDPoPAuth,
  createNonceIssuer,
  createProofVerifier,
  createTokenRequestVerifier,
  verifyProof,
} from '../src/index.ts';
import { closest, editDistance } from '../src/options.ts';
import { RedisReplayStore } from '../src/redis/index.ts';

// A misspelt or foreign option must not be ignored: the verifier would run with the default
// the developer meant to change (`allowUnboundBearr: false` reads as set, and is not).

const jwt = {
  issuer: 'https://as.example.com',
  audience: 'https://api.example.com',
  jwks: { keys: [] },
};
const base = (): DPoPAuthOptions => ({
  accessToken: jwt,
  publicUrl: 'https://api.example.com',
  replay: new MemoryReplayStore({ maxEntries: 64 }),
});

/** The configuration error `build` throws, with its message. */
function configError(build: () => unknown): DPoPConfigError {
  try {
    build();
  } catch (error) {
    expect(error).toBeInstanceOf(DPoPConfigError);
    expect(error).toMatchObject({ code: 'ERR_INVALID_ARG_VALUE', name: 'DPoPConfigError' });
    return error as DPoPConfigError;
  }
  throw new Error('no configuration error was thrown');
}

describe('the closest option name', () => {
  it('is the optimal string alignment distance, case-insensitive, bounded', () => {
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('abc', 'abc')).toBe(0);
    expect(editDistance('maxAeg', 'maxAge')).toBe(1); // a swap counts once
    expect(editDistance('ca', 'abc')).toBe(3);
    expect(editDistance('a'.repeat(10), 'b'.repeat(10), 3)).toBeGreaterThanOrEqual(3);
    expect(closest('publicURL', ['publicUrl', 'allowedHosts'])).toBe('publicUrl');
    expect(closest('allowUnboundBearr', ['allowBearer', 'allowUnboundBearer'])).toBe(
      'allowUnboundBearer',
    );
    // near only within max(2, length / 3)
    expect(closest('replays', ['replay'])).toBe('replay');
    expect(closest('foo', ['replay', 'realm'])).toBeUndefined();
    expect(closest('resourceMetadataUrl', ['publicUrl', 'realm', 'replay'])).toBeUndefined();
    expect(closest('x'.repeat(10_000), ['x'])).toBeUndefined();
  });
});

describe('unknown option names are configuration errors, when the verifier is built', () => {
  it('createDPoPAuth and every adapter name the closest known option', () => {
    const typo = { ...base(), allowUnboundBearr: true } as DPoPAuthOptions;
    for (const build of [
      () => createDPoPAuth(typo),
      () => expressAuth(typo),
      () => dpopAuthHook(typo),
      () => honoAuth(typo),
    ]) {
      expect(configError(build).message).toBe(
        '"allowUnboundBearr" is not an option of createDPoPAuth: did you mean "allowUnboundBearer"?',
      );
    }
    const foreign = { ...base(), expectedResource: 'https://x' } as DPoPAuthOptions;
    expect(configError(() => createDPoPAuth(foreign)).message).toBe(
      '"expectedResource" is not an option of createDPoPAuth',
    );
    // the SDK's name for popkit's `resourceMetadata`
    const sdkName = { ...base(), resourceMetadataUrl: 'https://x' } as DPoPAuthOptions;
    expect(configError(() => createDPoPAuth(sdkName)).message).toBe(
      '"resourceMetadataUrl" is not an option of createDPoPAuth: did you mean "resourceMetadata"?',
    );
    const cased = { ...base(), publicURL: 'https://api.example.com' } as DPoPAuthOptions;
    expect(configError(() => createDPoPAuth(cased)).message).toMatch(/did you mean "publicUrl"\?$/);
    // an option set to undefined is still a name the developer wrote
    const unset = { ...base(), maxAgee: undefined } as DPoPAuthOptions;
    expect(configError(() => createDPoPAuth(unset)).message).toMatch(/did you mean "maxAge"\?$/);
  });

  it('checks the nested access-token bags it owns (JWT and introspection)', () => {
    const jwtTypo = { ...base(), accessToken: { ...jwt, audiance: 'x' } } as DPoPAuthOptions;
    expect(configError(() => createDPoPAuth(jwtTypo)).message).toBe(
      '"accessToken.audiance" is not an option of JWT access tokens: did you mean "accessToken.audience"?',
    );
    const introspection = {
      endpoint: 'https://as.example.com/introspect',
      clientId: 'api',
      clientSecret: 'secret',
      issuer: 'https://as.example.com',
      audience: 'https://api.example.com',
    };
    const inner = {
      ...base(),
      accessToken: { introspection: { ...introspection, maxConcurent: 8 } },
    } as DPoPAuthOptions;
    expect(configError(() => createDPoPAuth(inner)).message).toMatch(
      /^"accessToken\.introspection\.maxConcurent" is not an option of introspection: did you mean "accessToken\.introspection\.maxConcurrent"\?$/,
    );
    const mixed = {
      ...base(),
      accessToken: { introspection, issuer: 'https://as.example.com' },
    } as DPoPAuthOptions;
    expect(configError(() => createDPoPAuth(mixed)).message).toBe(
      '"accessToken.issuer" is not an option of introspection',
    );
    // a validator function is not an options bag
    expect(() => createDPoPAuth({ ...base(), accessToken: () => ({}) })).not.toThrow();
    expect(() => createDPoPAuth({ ...base(), accessToken: { introspection } })).not.toThrow();
  });

  it('every other factory: proofs, token requests, nonces, the memory and Redis stores', () => {
    const replay = new MemoryReplayStore({ maxEntries: 64 });
    expect(configError(() => createProofVerifier({ replay, maxage: 30 } as never)).message).toBe(
      '"maxage" is not an option of createProofVerifier: did you mean "maxAge"?',
    );
    expect(
      configError(() =>
        verifyProof('a.b.c', { method: 'GET', url: 'https://x/' }, {
          replay,
          nonce: 'x',
        } as never),
      ).message,
    ).toMatch(/^"nonce" is not an option of createProofVerifier: did you mean "nonces"\?$/);
    // a resource server's option at the token endpoint, where the URL is `tokenEndpoint`
    expect(
      configError(() =>
        createTokenRequestVerifier({ replay, publicUrl: 'https://as.example.com' } as never),
      ).message,
    ).toBe('"publicUrl" is not an option of createTokenRequestVerifier');
    expect(
      configError(() =>
        createTokenRequestVerifier({ replay, tokenEndpont: 'https://as/token' } as never),
      ).message,
    ).toMatch(/did you mean "tokenEndpoint"\?$/);
    expect(
      configError(() => createNonceIssuer({ secret: 'x'.repeat(32), periode: 60 } as never))
        .message,
    ).toBe('"periode" is not an option of createNonceIssuer: did you mean "period"?');
    expect(configError(() => new MemoryReplayStore({ maxEntry: 10 } as never)).message).toBe(
      '"maxEntry" is not an option of MemoryReplayStore: did you mean "maxEntries"?',
    );
    const client = { set: async () => 'OK' };
    expect(
      configError(() => new RedisReplayStore(client as never, { prefx: 'a:' } as never)).message,
    ).toBe('"prefx" is not an option of RedisReplayStore: did you mean "prefix"?');
  });

  it('the Fastify plugin ignores only Fastify’s own register options', async () => {
    const app = Fastify();
    await app.register(dpopAuthPlugin, { ...base(), prefix: '/api', logLevel: 'warn' } as never);
    await app.ready();
    await app.close();
    const bad = Fastify();
    await expect(
      bad.register(dpopAuthPlugin, { ...base(), allowedHost: ['x'] } as never).ready(),
    ).rejects.toThrow(
      '"allowedHost" is not an option of createDPoPAuth: did you mean "allowedHosts"?',
    );
    await bad.close();
  });

  it('quotes a name back printable and bounded', () => {
    const weird = { ...base(), ['a\r\nSet-Cookie: x"\\' + 'y'.repeat(200)]: 1 } as DPoPAuthOptions;
    const { message } = configError(() => createDPoPAuth(weird));
    expect(message).not.toMatch(/[\r\n]/);
    expect(message.length).toBeLessThan(140);
    expect(message).toMatch(/^"a\?\?Set-Cookie: x\?\?y+…" is not an option of createDPoPAuth$/);
  });
});
