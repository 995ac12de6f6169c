import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EmbeddedJWK, jwtVerify } from 'jose';

/** One request as the test server saw it. */
export interface Seen {
  method: string;
  path: string;
  /** The query string, without `?`. */
  query: string;
  nonce?: string;
  iat?: number;
  ath?: string;
  htm?: string;
  htu?: string;
  jti?: string;
  body: string;
  authorization?: string;
  /** Whether the request carried a `DPoP` header at all. */
  dpop: boolean;
  contentType?: string;
  cookie?: string;
  outcome: number;
}

/** Where an authenticated request is redirected instead of answered 200. */
export interface RedirectRule {
  status: number;
  location: string;
}

export interface ServerControl {
  url: string;
  seen: Seen[];
  /** Current nonce; `rotate()` replaces it. */
  nonce: string;
  rotate(): string;
  /** Seconds the server's clock is ahead of the client's. */
  skew: number;
  /** Always demand a new nonce (a misbehaving server). */
  alwaysDemand: boolean;
  /** Spelling of the challenge header. */
  challenge: (nonceError: string) => string;
  /** Redirects a request whose proof (and nonce) verified, instead of answering 200. */
  redirect: (seen: Seen) => RedirectRule | undefined;
  /** Redirects before any proof check, as a load balancer or CDN would. */
  preAuthRedirect: (seen: Seen) => RedirectRule | undefined;
  /** Added to every response (e.g. a `DPoP-Nonce` on every answer). */
  extraHeaders: Record<string, string>;
  /** Answer CORS: preflights allow `Authorization` and `DPoP`, responses expose the DPoP headers. */
  cors: boolean;
  /** Reject a proof whose `htu` is not this server's URL of the request (default true). */
  checkHtu: boolean;
  /**
   * How a stale `iat` is refused: `invalid_dpop_proof` (default), or `use_dpop_nonce` with the
   * current nonce (popkit's verifier with server nonces does that).
   */
  staleIat: 'invalid_dpop_proof' | 'use_dpop_nonce';
  /**
   * After the proof and nonce verified: a `WWW-Authenticate` value refuses the access token
   * with 401 (an expired token), `undefined` lets the request through.
   */
  refuseToken: (seen: Seen) => string | undefined;
  close(): Promise<void>;
}

let counter = 0;

/**
 * A real HTTP server on 127.0.0.1 that behaves like a DPoP resource server and token endpoint:
 * verifies proofs with jose, checks `htm` and `htu` against the request, demands its current
 * nonce, rejects an `iat` more than 60 s from its own (possibly skewed) clock, answers 401
 * challenges on `/api/*` and 400 JSON on `/token`, and redirects verified requests by rule.
 */
export async function startDPoPServer(): Promise<ServerControl> {
  const control: ServerControl = {
    url: '',
    seen: [],
    nonce: `nonce-${++counter}-a`,
    rotate() {
      control.nonce = `nonce-${++counter}-${Math.random().toString(36).slice(2)}`;
      return control.nonce;
    },
    skew: 0,
    alwaysDemand: false,
    challenge: (error) => `Bearer realm="api", DPoP error="${error}", algs="ES256 EdDSA"`,
    redirect: () => undefined,
    preAuthRedirect: () => undefined,
    extraHeaders: {},
    cors: false,
    checkHtu: true,
    staleIat: 'invalid_dpop_proof',
    refuseToken: () => undefined,
    close: async () => {},
  };
  const server = createServer(async (req, res) => {
    const cors: Record<string, string> = control.cors
      ? {
          'access-control-allow-origin': '*',
          'access-control-expose-headers': 'dpop-nonce, date, www-authenticate, location',
        }
      : {};
    if (control.cors && req.method === 'OPTIONS') {
      res.writeHead(204, {
        ...cors,
        'access-control-allow-headers': 'authorization, dpop, content-type',
        'access-control-allow-methods': 'GET, POST, PUT, DELETE',
      });
      return res.end();
    }
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString();
    const [path, query = ''] = (req.url ?? '/').split('?') as [string, string?];
    const seen: Seen = {
      method: req.method!,
      path,
      query,
      body,
      dpop: req.headers.dpop !== undefined,
      outcome: 0,
    };
    if (req.headers.authorization) seen.authorization = req.headers.authorization;
    if (req.headers['content-type']) seen.contentType = req.headers['content-type'];
    if (req.headers.cookie) seen.cookie = req.headers.cookie;
    control.seen.push(seen);
    const early = control.preAuthRedirect(seen);
    if (early) {
      seen.outcome = early.status;
      res.writeHead(early.status, { ...cors, ...control.extraHeaders, location: early.location });
      return res.end();
    }
    const now = Date.now() / 1000 + control.skew;
    const isToken = path === '/token';
    const reply = (status: number, error?: string) => {
      seen.outcome = status;
      const headers: Record<string, string> = {
        ...cors,
        date: new Date(now * 1000).toUTCString(),
      };
      if (error === 'use_dpop_nonce' || status === 200) headers['dpop-nonce'] = control.nonce;
      Object.assign(headers, control.extraHeaders);
      const rule = status === 200 ? control.redirect(seen) : undefined;
      if (rule) {
        seen.outcome = rule.status;
        res.writeHead(rule.status, { ...headers, location: rule.location });
        res.end();
      } else if (status === 200) {
        res.writeHead(200, { ...headers, 'content-type': 'application/json' });
        res.end(JSON.stringify({ ok: true, echo: body }));
      } else if (isToken) {
        res.writeHead(400, { ...headers, 'content-type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify({ error, error_description: 'see spec' }));
      } else {
        const challenge = error!.startsWith('token:') ? error!.slice(6) : control.challenge(error!);
        res.writeHead(401, { ...headers, 'www-authenticate': challenge });
        res.end();
      }
    };
    const proof = req.headers.dpop;
    if (typeof proof !== 'string') return reply(isToken ? 400 : 401, 'invalid_dpop_proof');
    try {
      const { payload } = await jwtVerify(proof, EmbeddedJWK, {
        typ: 'dpop+jwt',
        algorithms: ['ES256', 'EdDSA'],
      });
      Object.assign(seen, {
        nonce: payload.nonce as string | undefined,
        iat: payload.iat,
        ath: payload.ath as string | undefined,
        htm: payload.htm as string,
        htu: payload.htu as string,
        jti: payload.jti as string,
      });
      if (payload.htm !== req.method) return reply(isToken ? 400 : 401, 'invalid_dpop_proof');
      if (control.checkHtu && payload.htu !== `${control.url}${path}`)
        return reply(isToken ? 400 : 401, 'invalid_dpop_proof');
      if (Math.abs((payload.iat as number) - now) > 60)
        return reply(isToken ? 400 : 401, control.staleIat);
      if (control.alwaysDemand) {
        control.rotate();
        return reply(isToken ? 400 : 401, 'use_dpop_nonce');
      }
      if (payload.nonce !== control.nonce) return reply(isToken ? 400 : 401, 'use_dpop_nonce');
      const refused = isToken ? undefined : control.refuseToken(seen);
      if (refused !== undefined) return reply(401, `token:${refused}`);
      return reply(200);
    } catch {
      return reply(isToken ? 400 : 401, 'invalid_dpop_proof');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  control.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  control.close = () => new Promise((resolve) => server.close(() => resolve()));
  return control;
}
