// The HTTP benchmark target, run as a child process (its own core): the example-style Express
// API with popkit's middleware, with a naive jose-based DPoP check, or with no auth at all.
import { createHash, generateKeyPairSync, sign, verify } from 'node:crypto';
import { MemoryReplayStore } from '@popkit/dpop-verifier';
import { dpopAuth } from '@popkit/dpop-verifier/express';
import express from 'express';
import { auth as oauth2Bearer } from 'express-oauth2-jwt-bearer';
import { EmbeddedJWK, calculateJwkThumbprint, createLocalJWKSet, jwtVerify } from 'jose';

const mode = process.argv[2] as 'popkit' | 'jose' | 'peer' | 'none' | 'verify' | 'paired';
const jwks = JSON.parse(process.argv[3]!);
const publicUrl = process.argv[4]!;
const app = express();
app.disable('x-powered-by');
// Server CPU time per request, measured in this process (steadier than req/s on 2 shared cores).
let served = 0;
let cpuStart = process.cpuUsage();
// CPU spent inside the auth middleware itself: from entering it to its `next()`. popkit's path
// never waits on I/O (its awaits settle in the same turn), so no other request runs in between
// and the delta is its own cost, free of the socket and event-loop noise of the whole server.
// CPU spent inside each timed middleware: from entering it to its `next()`, by label. popkit's
// path never waits on I/O (its awaits settle in the same turn), so no other request runs in
// between and the delta is its own cost, free of the socket and event-loop noise of the whole
// server.
const timed = new Map<string, { micros: number; calls: number }>();
// Off by default: process.cpuUsage() is a system call, so rounds that measure the whole server
// leave it off and only the middleware rounds turn it on.
let timing = false;
const measured =
  (mw: express.RequestHandler, label = 'auth'): express.RequestHandler =>
  (req, res, next) => {
    if (!timing) return mw(req, res, next);
    const t0 = process.cpuUsage();
    mw(req, res, (err?: unknown) => {
      const d = process.cpuUsage(t0);
      let sum = timed.get(label);
      if (sum === undefined) timed.set(label, (sum = { micros: 0, calls: 0 }));
      sum.micros += d.user + d.system;
      sum.calls++;
      next(err);
    });
  };
app.use((_req, res, next) => {
  res.once('finish', () => served++);
  next();
});
process.on('message', (m: { cmd: string }) => {
  if (m.cmd === 'cpu-start' || m.cmd === 'cpu-start-middleware') {
    timing = m.cmd === 'cpu-start-middleware';
    served = 0;
    timed.clear();
    cpuStart = process.cpuUsage();
    process.send!({ cmd: 'cpu-started' });
  } else if (m.cmd === 'exit') {
    process.exit(0); // (writes a --cpu-prof profile)
  } else if (m.cmd === 'cpu-stop') {
    const { user, system } = process.cpuUsage(cpuStart);
    const auth = timed.get('auth') ?? { micros: 0, calls: 0 };
    process.send!({
      cmd: 'cpu',
      micros: user + system,
      requests: served,
      authMicros: auth.micros,
      authCalls: auth.calls,
      labels: Object.fromEntries(timed),
    });
  }
});
// The limit: one raw node:crypto ES256 verify per request (a fixed signature, a ready KeyObject).
const rawVerify = (): express.RequestHandler => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const data = Buffer.from('x'.repeat(700));
  const signature = sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
  return (_req, res, next) => {
    if (!verify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature))
      return void res.status(500).end();
    next();
  };
};
const popkitAuth = () =>
  dpopAuth({
    accessToken: { issuer: 'https://as', audience: 'https://rs', jwks, algorithms: ['ES256'] },
    publicUrl,
    // the default store: one busy key is served without any per-key cap
    replay: new MemoryReplayStore(),
  });
if (mode === 'verify') {
  // The limit, under the same load as the auth layers, measured around the middleware.
  app.use(measured(rawVerify()));
} else if (mode === 'paired') {
  // Both in one server, requests alternating between them: the two middlewares are timed at
  // the same moments, under the same load and cache pressure, so machine noise cancels in
  // their ratio.
  app.use('/verify', measured(rawVerify(), 'verify'));
  app.use('/popkit', measured(popkitAuth(), 'popkit'));
} else if (mode === 'peer') {
  // The resource-server middleware API authors would otherwise pick; it verifies DPoP too
  // (no replay check, no nonces: see the interop matrix).
  app.use(
    oauth2Bearer({
      issuer: 'https://as',
      audience: 'https://rs',
      publicKey: jwks,
      tokenSigningAlg: 'ES256',
      dpop: { enabled: true, required: true },
    }),
  );
} else if (mode === 'popkit') {
  app.use(measured(popkitAuth()));
} else if (mode === 'jose') {
  // What many apps hand-roll: jose for both JWTs, the minimal claim checks, no replay store.
  const keySet = createLocalJWKSet(jwks);
  app.use(async (req, res, next) => {
    try {
      const token = req.headers.authorization!.slice(5);
      const { payload: claims } = await jwtVerify(token, keySet, {
        issuer: 'https://as',
        audience: 'https://rs',
        typ: 'at+jwt',
      });
      const { payload, protectedHeader } = await jwtVerify(
        req.headers.dpop as string,
        EmbeddedJWK,
        { typ: 'dpop+jwt', algorithms: ['ES256'], maxTokenAge: 60 },
      );
      if (payload.htm !== req.method || payload.htu !== `${publicUrl}${req.path}`)
        throw new Error('htm/htu');
      if (payload.ath !== createHash('sha256').update(token).digest('base64url'))
        throw new Error('ath');
      if (
        (claims.cnf as { jkt: string }).jkt !== (await calculateJwkThumbprint(protectedHeader.jwk!))
      )
        throw new Error('jkt');
      next();
    } catch {
      res.status(401).end();
    }
  });
}
app.get(['/api/orders', '/verify/api/orders', '/popkit/api/orders'], (_req, res) =>
  res.json({ orders: [1, 2, 3] }),
);
const server = app.listen(0, '127.0.0.1', () =>
  process.send!({ port: (server.address() as { port: number }).port }),
);
