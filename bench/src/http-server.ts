// The HTTP benchmark target, run as a child process (its own core): the example-style Express
// API with popkit's middleware, with a naive jose-based DPoP check, or with no auth at all.
import { createHash, generateKeyPairSync, sign, verify } from 'node:crypto';
import { MemoryReplayStore } from '@popkit/dpop-verifier';
import { dpopAuth } from '@popkit/dpop-verifier/express';
import express from 'express';
import { auth as oauth2Bearer } from 'express-oauth2-jwt-bearer';
import { EmbeddedJWK, calculateJwkThumbprint, createLocalJWKSet, jwtVerify } from 'jose';

const mode = process.argv[2] as 'popkit' | 'jose' | 'peer' | 'none' | 'verify' | 'shared';
const jwks = JSON.parse(process.argv[3]!);
const publicUrl = process.argv[4]!;
const app = express();
app.disable('x-powered-by');
// Server CPU time, measured in this process (steadier than req/s on 2 shared cores): the whole
// process between `cpu-start` and `cpu-stop`, and, in `cpu-start-request` rounds, each
// request's own window, from entering Express's first middleware to the response's `finish`
// (all its middleware, its queued ticks and microtasks, the GC its allocations trigger, the
// handler and the response write), summed per path prefix (`/popkit/...` counts as `popkit`).
// The timer is two system calls per request, the same for every prefix.
let served = 0;
let cpuStart = process.cpuUsage();
let perRequest = false;
const windows = new Map<string, { micros: number; calls: number }>();
app.use((req, res, next) => {
  const t0 = perRequest ? process.cpuUsage() : undefined;
  res.once('finish', () => {
    served++;
    if (t0 === undefined) return;
    const d = process.cpuUsage(t0);
    const slash = req.originalUrl.indexOf('/', 1);
    const label = slash < 0 ? 'root' : req.originalUrl.slice(1, slash);
    let sum = windows.get(label);
    if (sum === undefined) windows.set(label, (sum = { micros: 0, calls: 0 }));
    sum.micros += d.user + d.system;
    sum.calls++;
  });
  next();
});
process.on('message', (m: { cmd: string }) => {
  if (m.cmd === 'cpu-start' || m.cmd === 'cpu-start-request') {
    perRequest = m.cmd === 'cpu-start-request';
    served = 0;
    windows.clear();
    cpuStart = process.cpuUsage();
    process.send!({ cmd: 'cpu-started' });
  } else if (m.cmd === 'exit') {
    process.exit(0); // (writes a --cpu-prof profile)
  } else if (m.cmd === 'cpu-stop') {
    const { user, system } = process.cpuUsage(cpuStart);
    process.send!({
      cmd: 'cpu',
      micros: user + system,
      requests: served,
      windows: Object.fromEntries(windows),
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
// The resource-server middleware API authors would otherwise pick; it verifies DPoP too (no
// replay check, no nonces: see the interop matrix).
const peerAuth = () =>
  oauth2Bearer({
    issuer: 'https://as',
    audience: 'https://rs',
    publicKey: jwks,
    tokenSigningAlg: 'ES256',
    dpop: { enabled: true, required: true },
  });
const joseAuth = (): express.RequestHandler => {
  const keySet = createLocalJWKSet(jwks);
  // What many apps hand-roll: jose for both JWTs, the minimal claim checks, no replay store.
  return async (req, res, next) => {
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
      if (
        payload.htm !== req.method ||
        payload.htu !== `${publicUrl}${req.originalUrl.split('?')[0]}`
      )
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
  app.use(rawVerify());
} else if (mode === 'shared') {
  // Every layer in one server, each under its own path prefix (`/none` has no auth), requests
  // to the prefixes interleaved: Express alone, the raw verify, popkit, the peer and jose are
  // measured in the same process, at the same moments, with the same JIT, heap and machine
  // state, so machine noise cancels in their differences and ratios.
  app.use('/verify', rawVerify());
  app.use('/popkit', popkitAuth());
  app.use('/peer', peerAuth());
  app.use('/jose', joseAuth());
} else if (mode === 'peer') {
  app.use(peerAuth());
} else if (mode === 'popkit') {
  app.use(popkitAuth());
} else if (mode === 'jose') {
  app.use(joseAuth());
}
app.get(
  [
    '/api/orders',
    '/none/api/orders',
    '/verify/api/orders',
    '/popkit/api/orders',
    '/peer/api/orders',
    '/jose/api/orders',
  ],
  (_req, res) => res.json({ orders: [1, 2, 3] }),
);
const server = app.listen(0, '127.0.0.1', () =>
  process.send!({ port: (server.address() as { port: number }).port }),
);
