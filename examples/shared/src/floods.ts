// Replay-store flood scenarios on a simulated clock, shared by tests/adversarial (which asserts
// the outcomes) and the bench (which reports the legitimate success rate under each flood).
// Every proof is really signed and really verified; only time is simulated.
import { createProof, generateKeyPair, thumbprint } from '@popkit/dpop-client';
import type { ReplayStore } from '@popkit/dpop-verifier';
import {
  DPoPError,
  MemoryReplayStore,
  createDPoPAuth,
  createNonceIssuer,
  createTokenRequestVerifier,
} from '@popkit/dpop-verifier';

const API = 'https://api.flood.example';
const TOKEN_ENDPOINT = 'https://as.flood.example/token';
const START = Date.UTC(2026, 10, 27, 12, 0, 0);

/** What happened to the legitimate client and to the attacker during one scenario. */
export interface FloodReport {
  name: string;
  legitSent: number;
  legitAccepted: number;
  /** Reasons the legitimate client was refused, with counts (empty when all succeeded). */
  legitRefusals: Record<string, number>;
  attackerSent: number;
  attackerRecorded: number;
  /** Replay entries held when the flood ended. */
  entriesAfterFlood: number;
  /** Extra checks of the scenario (right after the flood, an hour later, replays refused). */
  checks: Record<string, boolean>;
}

/** Percent of the legitimate client's requests accepted. */
export const successRate = (r: FloodReport): number =>
  r.legitSent === 0 ? 100 : (100 * r.legitAccepted) / r.legitSent;

function newReport(name: string): FloodReport {
  return {
    name,
    legitSent: 0,
    legitAccepted: 0,
    legitRefusals: {},
    attackerSent: 0,
    attackerRecorded: 0,
    entriesAfterFlood: 0,
    checks: {},
  };
}

class Clock {
  ms = START;
  now = (): number => this.ms;
  get sec(): number {
    return Math.floor(this.ms / 1000);
  }
}

interface Holder {
  key: CryptoKeyPair;
  jkt: string;
  token: string;
}

async function holder(): Promise<Holder> {
  const key = await generateKeyPair('ES256');
  const jkt = await thumbprint(key);
  return { key, jkt, token: `tok.${jkt}` };
}

function count(map: Record<string, number>, reason: string): void {
  map[reason] = (map[reason] ?? 0) + 1;
}

/**
 * Ten token holders flood the API with nonce-carrying proofs, half with a far-future `iat`
 * (which once pinned an entry for 24 h) and half plausible (which fill the store), while a
 * different client calls at a normal rate. The client is then checked right after the flood and
 * an hour later.
 */
export async function nonceFloodAtApi(
  options: {
    attackers?: number;
    attackerPerSecond?: number;
    legitPerSecond?: number;
    seconds?: number;
    store?: (now: () => number) => ReplayStore;
  } = {},
): Promise<FloodReport> {
  const {
    attackers = 10,
    attackerPerSecond = 50,
    legitPerSecond = 2,
    seconds = 60,
    store = (now) => new MemoryReplayStore({ maxEntries: 4000, now }),
  } = options;
  const clock = new Clock();
  const nonces = createNonceIssuer({ secret: 'flood-nonce-secret'.padEnd(32, '.') });
  const holders = await Promise.all(Array.from({ length: attackers + 1 }, holder));
  const legit = holders.pop()!;
  const byToken = new Map(holders.concat(legit).map((h) => [h.token, h.jkt]));
  const replay = store(clock.now);
  const auth = createDPoPAuth({
    publicUrl: API,
    replay,
    nonces,
    now: clock.now,
    accessToken: (token) => {
      const jkt = byToken.get(token);
      if (jkt === undefined) throw new Error('unknown token');
      return { cnf: { jkt } };
    },
  });
  const call = async (h: Holder, iat: number): Promise<string | undefined> => {
    const nonce = await nonces.current(clock.ms, replay.epoch);
    const proof = await createProof(
      h.key,
      { method: 'GET', url: `${API}/orders`, accessToken: h.token, nonce },
      { iat },
    );
    try {
      await auth.verify({
        method: 'GET',
        url: '/orders',
        headers: { authorization: `DPoP ${h.token}`, dpop: proof },
      });
      return undefined;
    } catch (e) {
      return e instanceof DPoPError ? e.reason : 'crash';
    }
  };
  const report = newReport(
    `${attackers} token holders, ${attackerPerSecond * attackers} nonce proofs/s (half with iat +24 h)`,
  );
  const legitCall = async (): Promise<boolean> => {
    report.legitSent++;
    const refused = await call(legit, clock.sec);
    if (refused === undefined) report.legitAccepted++;
    else count(report.legitRefusals, refused);
    return refused === undefined;
  };
  const ticks = 10; // per simulated second
  for (let t = 0; t < seconds * ticks; t++) {
    clock.ms += 1000 / ticks;
    for (let i = 0; i < (attackerPerSecond * attackers) / ticks; i++) {
      const h = holders[i % attackers]!;
      const farFuture = i % 2 === 0;
      report.attackerSent++;
      if ((await call(h, farFuture ? clock.sec + 86_000 : clock.sec)) === undefined)
        report.attackerRecorded++;
    }
    if (t % Math.max(1, Math.round(ticks / legitPerSecond)) === 0) await legitCall();
  }
  report.entriesAfterFlood = (replay as MemoryReplayStore).size ?? 0;
  clock.ms += 1000;
  report.checks.rightAfter = await legitCall();
  clock.ms += 3600_000;
  report.checks.anHourLater = await legitCall();
  // the sweep's work is spread over calls (at most 1,024 slots each): a few calls empty it
  for (let i = 0; i < 9; i++) await legitCall();
  if (replay instanceof MemoryReplayStore) report.checks.emptiedAfterAnHour = replay.size <= 10;
  return report;
}

/**
 * Anonymous callers (a fresh key per proof, no client credentials) flood the token endpoint
 * while a legitimate client completes token requests in the two-phase order: proof checked,
 * client authenticated, then the `jti` committed.
 */
export async function anonymousFloodAtTokenEndpoint(
  options: {
    nonces?: boolean;
    attackerProofs?: number;
    legitRequests?: number;
    store?: (now: () => number) => ReplayStore;
  } = {},
): Promise<FloodReport> {
  const {
    nonces: withNonces = false,
    attackerProofs = 2000,
    legitRequests = 50,
    store = (now) => new MemoryReplayStore({ maxEntries: 500, now }),
  } = options;
  const clock = new Clock();
  const nonces = withNonces
    ? createNonceIssuer({ secret: 'flood-as-nonce-secret'.padEnd(32, '.') })
    : undefined;
  const replay = store(clock.now);
  const checkDPoP = createTokenRequestVerifier({
    tokenEndpoint: TOKEN_ENDPOINT,
    replay,
    now: clock.now,
    ...(nonces ? { nonces } : {}),
  });
  const legit = await holder();
  const report = newReport(
    `anonymous fresh-key flood at the token endpoint, nonces ${withNonces ? 'on' : 'off'}`,
  );
  // Client authentication of the example: only the legitimate client has credentials.
  const authenticate = (credentials: string | undefined): boolean => credentials === 'legit';
  const tokenRequest = async (key: CryptoKeyPair, credentials: string | undefined) => {
    const nonce = nonces ? await nonces.current(clock.ms, replay.epoch) : undefined;
    const proof = await createProof(
      key,
      { method: 'POST', url: TOKEN_ENDPOINT, ...(nonce ? { nonce } : {}) },
      { iat: clock.sec },
    );
    try {
      const dpop = await checkDPoP.prepare({
        method: 'POST',
        url: TOKEN_ENDPOINT,
        headers: { dpop: proof },
      });
      if (!authenticate(credentials)) return 'invalid_client';
      await dpop!.commit();
      return undefined;
    } catch (e) {
      return e instanceof DPoPError ? e.reason : 'crash';
    }
  };
  const keys = await Promise.all(
    Array.from({ length: Math.min(attackerProofs, 200) }, () => generateKeyPair('ES256')),
  );
  const perLegit = Math.ceil(attackerProofs / legitRequests);
  for (let i = 0; i < attackerProofs; i++) {
    clock.ms += 5;
    report.attackerSent++;
    // a fresh key per proof (keys are reused only after every other one: fresh to the store)
    if ((await tokenRequest(keys[i % keys.length]!, undefined)) === undefined)
      report.attackerRecorded++;
    if (i % perLegit === 0) {
      report.legitSent++;
      const refused = await tokenRequest(legit.key, 'legit');
      if (refused === undefined) report.legitAccepted++;
      else count(report.legitRefusals, refused);
    }
  }
  report.entriesAfterFlood = (replay as MemoryReplayStore).size ?? 0;
  report.checks.onlyCommittedRecorded = report.entriesAfterFlood === report.legitAccepted;
  return report;
}

/**
 * One key sustaining `perSecond` proofs for `seconds` (a service-to-service client), at the
 * default store configuration; `replays` random proofs are sent again within their window.
 */
export async function busyKey(
  options: { perSecond?: number; seconds?: number; replays?: number } = {},
): Promise<FloodReport> {
  const { perSecond = 1000, seconds = 60, replays = 100 } = options;
  const clock = new Clock();
  const replay = new MemoryReplayStore({ now: clock.now });
  const client = await holder();
  const auth = createDPoPAuth({
    publicUrl: API,
    replay,
    now: clock.now,
    accessToken: () => ({ cnf: { jkt: client.jkt } }),
  });
  const report = newReport(`one key at ${perSecond} proofs/s for ${seconds} s (default store)`);
  const send = async (proof: string) =>
    auth
      .verify({
        method: 'GET',
        url: '/orders',
        headers: { authorization: `DPoP ${client.token}`, dpop: proof },
      })
      .then(
        () => undefined,
        (e: unknown) => (e instanceof DPoPError ? e.reason : 'crash'),
      );
  const total = perSecond * seconds;
  const replayAt = new Set<number>();
  let seed = 42;
  while (replayAt.size < replays) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    replayAt.add(1000 + (seed % (total - 1000)));
  }
  const recent: string[] = [];
  let replaysRefused = 0;
  for (let i = 0; i < total; i++) {
    clock.ms += 1000 / perSecond;
    const proof = await createProof(
      client.key,
      { method: 'GET', url: `${API}/orders`, accessToken: client.token },
      { iat: clock.sec },
    );
    recent.push(proof);
    if (recent.length > 1000) recent.shift();
    report.legitSent++;
    const refused = await send(proof);
    if (refused === undefined) report.legitAccepted++;
    else count(report.legitRefusals, refused);
    if (replayAt.has(i)) {
      // a proof from the last second, still inside its acceptance window
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      if ((await send(recent[seed % recent.length]!)) === 'replay') replaysRefused++;
    }
  }
  report.entriesAfterFlood = replay.size;
  report.checks.everyReplayRefused = replaysRefused === replays;
  return report;
}

/** One party of {@link accountFlood}: `accounts` accounts, each sending `perSecond` proofs. */
export interface FloodParty {
  name: string;
  accounts: number;
  /** Keys per account (an attacker logs in again with fresh keys: they cost nothing). */
  keysPerAccount?: number;
  perSecond: number;
  /** Seconds a proof's entry lives: 70 without nonces (iat + 60 + 10), up to 180 with them. */
  lifetime?: number;
}

/** Per party: proofs sent and accepted, and refusals by reason. */
export interface AccountFloodReport {
  name: string;
  parties: Record<string, { sent: number; accepted: number; refusals: Record<string, number> }>;
  /** The store when the flood ended. */
  entries: number;
  accounts: number;
  /** Slowest single `useOnce`, in ms (wall clock). */
  worstCallMs: number;
}

/**
 * Fairness by account, at the store the verifier uses (default budget unless `maxEntries`),
 * on a simulated clock: each party's accounts send proofs at their rate, spread evenly, each
 * recorded as the verifier records it (a fresh key per proof digest, the entry living for the
 * proof's acceptance window, the account as the unit of fairness: `sub:` of the token). The
 * attacker is one account with many keys, at any rate.
 */
export function accountFlood(options: {
  parties: FloodParty[];
  seconds?: number;
  maxEntries?: number;
  /** Fairness unit: `'account'` (what the verifier passes) or `'key'` (the old rule). */
  unit?: 'account' | 'key';
}): AccountFloodReport {
  const { parties, seconds = 120, maxEntries, unit = 'account' } = options;
  const clock = new Clock();
  const store = new MemoryReplayStore({ now: clock.now, ...(maxEntries ? { maxEntries } : {}) });
  const report: AccountFloodReport = {
    name: parties.map((p) => `${p.accounts} x ${p.perSecond}/s (${p.name})`).join(', '),
    parties: {},
    entries: 0,
    accounts: 0,
    worstCallMs: 0,
  };
  const ticksPerSecond = 100;
  // each party's accounts send at evenly spread phases
  const state = parties.map((p) => {
    report.parties[p.name] = { sent: 0, accepted: 0, refusals: {} };
    return { p, debt: 0, next: 0, seq: 0 };
  });
  for (let tick = 0; tick < seconds * ticksPerSecond; tick++) {
    clock.ms += 1000 / ticksPerSecond;
    for (const s of state) {
      const { p } = s;
      s.debt += (p.perSecond * p.accounts) / ticksPerSecond;
      const out = report.parties[p.name]!;
      for (; s.debt >= 1; s.debt--) {
        const account = s.next;
        s.next = (s.next + 1) % p.accounts;
        const key = (s.seq++ % (p.keysPerAccount ?? 1)) + account * 1000;
        const scope = unit === 'account' ? `sub:${p.name}-${account}` : `jkt:${p.name}-${key}`;
        const expiresAt = (clock.sec + (p.lifetime ?? 70)) * 1000;
        out.sent++;
        const t0 = performance.now();
        try {
          if (store.useOnce(`${p.name}.${s.seq}`, expiresAt, scope)) out.accepted++;
          else count(out.refusals, 'replay');
        } catch (e) {
          count(out.refusals, e instanceof Error && 'reason' in e ? String(e.reason) : 'crash');
        }
        const took = performance.now() - t0;
        if (took > report.worstCallMs) report.worstCallMs = took;
      }
    }
  }
  const stats = store.stats();
  report.entries = stats.entries;
  report.accounts = stats.keys;
  return report;
}

/** Percent of a party's proofs accepted. */
export const partySuccess = (r: AccountFloodReport, party: string): number => {
  const p = r.parties[party]!;
  return p.sent === 0 ? 100 : (100 * p.accepted) / p.sent;
};
