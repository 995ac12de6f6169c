// How the example resource server configures @popkit/dpop-verifier: RFC 9068 JWTs from the
// authorization server's JWKS, DPoP with nonces, a replay store (Redis when REDIS_URL is set),
// and certificate-bound tokens through @popkit/mtls-binding.
import { MemoryReplayStore, createNonceIssuer } from '@popkit/dpop-verifier';
import type { DPoPAuthOptions, NonceIssuer, ReplayStore } from '@popkit/dpop-verifier';
import { RedisReplayStore } from '@popkit/dpop-verifier/redis';
import { certificateThumbprintSource } from '@popkit/mtls-binding/node';
import type { CertificateSourceOptions } from '@popkit/mtls-binding/node';
import { Redis } from 'ioredis';
import { AuthMetrics } from './metrics.ts';

export interface ApiConfig {
  /** The authorization server's issuer (its JWKS is at `${issuer}/jwks`). */
  issuer: string;
  /** This API's identifier: the access tokens' audience. */
  audience: string;
  /** How this server appears to clients (`htu`). */
  publicUrl: string;
  /** A fetch that trusts the authorization server's TLS certificate. */
  fetch: typeof globalThis.fetch;
  /** Shared by every instance so nonces agree; >= 32 bytes. */
  nonceSecret: string;
  /** Use a shared Redis replay store (several instances). Default: process.env.REDIS_URL. */
  redisUrl?: string;
  /** A replay store to use instead (tests, custom stores). */
  replay?: ReplayStore;
  /** A nonce issuer to use instead of one built from `nonceSecret` (e.g. a shorter period). */
  nonces?: NonceIssuer;
  /**
   * Where the client certificate comes from: the TLS socket (default, TLS terminated here), or
   * a TLS-terminating proxy's header (`{ from: 'headers', proxy: 'nginx' }`).
   */
  certificate?: CertificateSourceOptions;
  /** Proof freshness window, seconds. Default 60 and 10. */
  maxAge?: number;
  clockTolerance?: number;
}

export interface ApiAuth {
  options: DPoPAuthOptions;
  metrics: AuthMetrics;
  close(): Promise<void>;
}

export function buildAuthOptions(config: ApiConfig): ApiAuth {
  const metrics = new AuthMetrics();
  const redisUrl = config.redisUrl ?? process.env.REDIS_URL;
  let replay: ReplayStore;
  let redis: Redis | undefined;
  if (config.replay) {
    replay = config.replay;
  } else if (redisUrl) {
    redis = new Redis(redisUrl, { maxRetriesPerRequest: 1, enableOfflineQueue: false });
    redis.on('error', () => {}); // outages fail requests closed (503); no log noise
    replay = new RedisReplayStore(redis, { timeout: 250 });
  } else {
    replay = new MemoryReplayStore({ maxEntries: 100_000 });
  }
  return {
    metrics,
    options: {
      accessToken: {
        issuer: config.issuer,
        audience: config.audience,
        // popkit keeps the JWKS: refreshed in the background, a rotated key picked up on its
        // first token, the keys held kept through an outage (stale-if-error)
        jwks: `${config.issuer}/jwks`,
        fetch: (url: string, init: RequestInit) => config.fetch(url, init),
        algorithms: ['ES256'],
      },
      publicUrl: config.publicUrl,
      replay,
      nonces: config.nonces ?? createNonceIssuer({ secret: config.nonceSecret }),
      // Sender-constrained only (the default): DPoP-bound tokens with a proof, and, because a
      // certificate source is set, certificate-bound tokens on Bearer with their certificate.
      // Unbound bearer tokens are refused.
      certificate: certificateThumbprintSource(config.certificate ?? { from: 'socket' }),
      onResult: metrics.onResult,
      onUpstream: metrics.onUpstream,
      ...(config.maxAge === undefined ? {} : { maxAge: config.maxAge }),
      ...(config.clockTolerance === undefined ? {} : { clockTolerance: config.clockTolerance }),
    },
    close: async () => {
      redis?.disconnect();
      await metrics.close();
    },
  };
}
