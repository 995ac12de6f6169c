// Standing red-team suite against real servers: Express 5 and 4, Fastify and Hono (on
// @hono/node-server), each with popkit in front of a catch-all handler, each in a child process
// (see hostile-servers.ts). After every hostile scenario the server must still be alive and
// answer /health within 100 ms, and the handler must have run only for authenticated requests.
//
// 1. Late answers: a request-timeout layer answers 503 at 50 ms while popkit waits 300 ms on a
//    real introspection endpoint; popkit's answer (refusal or acceptance) arrives after the
//    response is finished. Before the fix, Express wrote headers on the finished response and
//    the process died of an unhandled ERR_HTTP_HEADERS_SENT; an accepted request ran the handler
//    after the client had its 503.
// 2. Client disconnects during the verification: no write, no handler run.
// 3. Fake preflights: OPTIONS with Access-Control-Request-Method went through unauthenticated and
//    ran catch-all handlers. Only a real preflight (Origin, the request method, no credentials)
//    passes, and it is answered without reaching the handler.
import { request as httpRequest } from 'node:http';
import { createProof, generateKeyPair, thumbprint } from '@popkit/dpop-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostileServer, HostileServerConfig, SlowIntrospection } from './hostile-servers.ts';
import {
  ALLOWED_ORIGIN,
  FRAMEWORKS,
  HANDLER_HEADER,
  assertAlive,
  startHostileServer,
  startSlowIntrospection,
} from './hostile-servers.ts';

const INTROSPECTION_DELAY_MS = 300;
const TIMEOUT_MS = 50;
const EVIL_ORIGIN = 'https://evil.example';

let introspection: SlowIntrospection;
let key: CryptoKeyPair;
let jkt: string;

beforeAll(async () => {
  introspection = await startSlowIntrospection(INTROSPECTION_DELAY_MS);
  key = await generateKeyPair();
  jkt = await thumbprint(key);
});
afterAll(async () => {
  await introspection?.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const random = () => Math.random().toString(36).slice(2);
/** An active token bound to the test key (the introspection endpoint and the local hook agree). */
const liveToken = () => `live.${jkt}.${random()}`;
/** A token no authorization server issued: the attacker has no account. */
const garbageToken = () => `garbage${random()}`;

/** DPoP request headers: a valid proof by the attacker's own key, for this token. */
async function credentials(url: string, method: string, token: string) {
  return {
    authorization: `DPoP ${token}`,
    dpop: await createProof(key, { method, url, accessToken: token }),
  };
}

/** Sends a request; resolves with its status, headers and body. */
async function send(url: string, init: RequestInit) {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(5000) });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

/** Sends a request and drops the connection after `ms`, before any answer. */
function sendAndDisconnect(url: string, headers: Record<string, string>, ms: number) {
  return new Promise<void>((resolve, reject) => {
    const req = httpRequest(url, { headers }, () => {
      reject(new Error('answered before the client left'));
    });
    req.on('error', () => undefined); // the socket we destroy
    req.end();
    setTimeout(() => {
      req.destroy();
      resolve();
    }, ms);
  });
}

/** Servers started by a describe block, stopped after it. */
function servers() {
  const started: HostileServer[] = [];
  afterAll(async () => {
    await Promise.all(started.map((s) => s.stop()));
  });
  return async (config: HostileServerConfig) => {
    const server = await startHostileServer(config);
    started.push(server);
    return server;
  };
}

/** Runs a hostile scenario, then the liveness check and the "no late write" check. */
async function hostile(server: HostileServer, scenario: string, attack: () => Promise<void>) {
  const mark = server.mark();
  await attack();
  await assertAlive(server, scenario);
  expect([scenario, server.complaints(mark)]).toEqual([scenario, []]);
}

/** Sends one request whose verification takes INTROSPECTION_DELAY_MS, and waits until it finished. */
async function lateAnswer(server: HostileServer, token: string) {
  const url = `${server.url}/api/orders`;
  const before = await server.results();
  // (GET: Fastify's handlerTimeout stops counting once a request body has been read)
  const res = await send(url, { headers: await credentials(url, 'GET', token) });
  // the timeout layer answered first; popkit's answer comes later, onto a finished response
  expect(res.status).toBe(503);
  expect(res.headers.get(HANDLER_HEADER)).toBeNull();
  await server.resultsReach(before + 1);
  await sleep(50); // popkit's late path runs right after its verification
}

for (const framework of FRAMEWORKS) {
  describe(`${framework}: late answers`, () => {
    const start = servers();
    let plain: HostileServer;
    const timeouts: Array<[string, HostileServer]> = [];
    beforeAll(async () => {
      const base = { framework, introspection: introspection.url, throwingOnResult: true };
      plain = await start(base);
      timeouts.push([`timeout layer`, await start({ ...base, timeoutMs: TIMEOUT_MS })]);
      if (framework.startsWith('express')) {
        timeouts.push([
          'connect-timeout style timeout (next(error))',
          await start({ ...base, timeoutMs: TIMEOUT_MS, timeoutStyle: 'next-error' }),
        ]);
      }
    }, 60_000);

    it('control: without a timeout, a live token is accepted after the slow introspection and the handler runs once', async () => {
      const url = `${plain.url}/api/orders`;
      const res = await send(url, {
        method: 'POST',
        headers: await credentials(url, 'POST', liveToken()),
        body: '{}',
      });
      expect(res.status).toBe(200);
      expect(res.headers.get(HANDLER_HEADER)).toBe('1');
      const garbage = await send(url, {
        method: 'POST',
        headers: await credentials(url, 'POST', garbageToken()),
      });
      expect(garbage.status).toBe(401);
      expect(await plain.runs()).toEqual([
        { method: 'POST', path: '/api/orders', authenticated: true },
      ]);
      await assertAlive(plain, 'control');
    });

    it('a refusal that arrives after the timeout layer answered: dropped, the process lives', async () => {
      for (const [name, server] of timeouts) {
        await hostile(server, `${name}: garbage token, valid proof`, async () => {
          await lateAnswer(server, garbageToken());
        });
        expect(await server.runs()).toEqual([]);
      }
    });

    it('an acceptance that arrives after the timeout layer answered: the handler does not run', async () => {
      for (const [name, server] of timeouts) {
        await hostile(server, `${name}: live token`, async () => {
          await lateAnswer(server, liveToken());
        });
        expect([name, await server.runs()]).toEqual([name, []]);
      }
    });

    it('a client that disconnects during the verification: nothing written, the handler does not run', async () => {
      const url = `${plain.url}/api/orders`;
      const runsBefore = (await plain.runs()).length;
      for (const token of [liveToken(), garbageToken()]) {
        await hostile(plain, `disconnect (${token.slice(0, 4)} token)`, async () => {
          const before = await plain.results();
          await sendAndDisconnect(url, await credentials(url, 'GET', token), TIMEOUT_MS);
          await plain.resultsReach(before + 1);
          await sleep(50);
        });
      }
      expect((await plain.runs()).length).toBe(runsBefore);
    });
  });
}

/** The preflight attacks: each must be refused or answered without running the handler. */
async function preflightAttacks(server: HostileServer) {
  const url = `${server.url}/api/orders`;
  const acrm = { 'access-control-request-method': 'POST' };
  const attacks: Record<string, Record<string, string>> = {
    'OPTIONS + Access-Control-Request-Method, no Origin': acrm,
    'the same with a garbage token': { ...acrm, authorization: `DPoP ${garbageToken()}` },
    'the same with Origin and a garbage token and proof': {
      ...acrm,
      origin: EVIL_ORIGIN,
      ...(await credentials(url, 'OPTIONS', garbageToken())),
    },
    'the same with Origin and a DPoP header only': {
      ...acrm,
      origin: EVIL_ORIGIN,
      dpop: (await credentials(url, 'OPTIONS', garbageToken())).dpop,
    },
    'a real preflight from the allowed origin': { ...acrm, origin: ALLOWED_ORIGIN },
    'a real preflight from another origin': {
      ...acrm,
      origin: EVIL_ORIGIN,
      'access-control-request-headers': 'authorization, dpop',
    },
  };
  const answers: Record<string, { status: number; allowOrigin: string | null; body: string }> = {};
  for (const [name, headers] of Object.entries(attacks)) {
    const res = await send(url, { method: 'OPTIONS', headers });
    expect([name, res.headers.get(HANDLER_HEADER)]).toEqual([name, null]);
    expect([name, res.body]).not.toEqual([name, expect.stringContaining('handler')]);
    answers[name] = {
      status: res.status,
      allowOrigin: res.headers.get('access-control-allow-origin'),
      body: res.body,
    };
  }
  return answers;
}

for (const framework of FRAMEWORKS) {
  describe(`${framework}: fake preflights`, () => {
    const start = servers();
    const corsModes: Array<HostileServerConfig['cors']> = [
      undefined,
      'allow',
      'deny',
      ...(framework === 'hono' ? [] : (['continue'] as const)),
    ];
    const byMode = new Map<HostileServerConfig['cors'], HostileServer>();
    beforeAll(async () => {
      for (const cors of corsModes)
        byMode.set(cors, await start({ framework, ...(cors === undefined ? {} : { cors }) }));
    }, 60_000);

    it('without a CORS layer: fake preflights are authenticated (401), a real one is answered 204 with no grant', async () => {
      const server = byMode.get(undefined)!;
      let answers: Awaited<ReturnType<typeof preflightAttacks>> = {};
      await hostile(server, 'fake preflights, no CORS layer', async () => {
        answers = await preflightAttacks(server);
      });
      expect(answers).toEqual({
        'OPTIONS + Access-Control-Request-Method, no Origin': expect.objectContaining({
          status: 401,
        }),
        'the same with a garbage token': expect.objectContaining({ status: 401 }),
        'the same with Origin and a garbage token and proof': expect.objectContaining({
          status: 401,
        }),
        'the same with Origin and a DPoP header only': expect.objectContaining({ status: 401 }),
        'a real preflight from the allowed origin': { status: 204, allowOrigin: null, body: '' },
        'a real preflight from another origin': { status: 204, allowOrigin: null, body: '' },
      });
      expect(await server.runs()).toEqual([]);
      await control(server);
    });

    for (const cors of corsModes.filter((m) => m !== undefined)) {
      it(`with a CORS layer in front ('${cors}'): no fake preflight reaches the handler; real ones get the layer's grant`, async () => {
        const server = byMode.get(cors)!;
        let answers: Awaited<ReturnType<typeof preflightAttacks>> = {};
        await hostile(server, `fake preflights, CORS layer '${cors}'`, async () => {
          answers = await preflightAttacks(server);
        });
        for (const [name, answer] of Object.entries(answers)) {
          // refused, or answered by the CORS layer or popkit: never a handler's 200
          expect([name, answer.status === 200]).toEqual([name, false]);
          expect([name, answer.allowOrigin]).not.toEqual([name, EVIL_ORIGIN]);
        }
        const real = answers['a real preflight from the allowed origin']!;
        expect(real.status).toBe(204);
        expect(real.allowOrigin).toBe(cors === 'deny' ? null : ALLOWED_ORIGIN);
        expect(await server.runs()).toEqual([]);
        await control(server);
      });
    }
  });
}

/** The handler does run for an authenticated request on the same server (the counter works). */
async function control(server: HostileServer) {
  const url = `${server.url}/api/orders`;
  const res = await send(url, {
    method: 'POST',
    headers: { ...(await credentials(url, 'POST', liveToken())), origin: ALLOWED_ORIGIN },
    body: '{}',
  });
  expect(res.status).toBe(200);
  expect(await server.runs()).toEqual([
    { method: 'POST', path: '/api/orders', authenticated: true },
  ]);
}
