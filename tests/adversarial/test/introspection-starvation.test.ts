// Introspection starvation (issue: "No request may crash, hang or bypass", item 4): anyone, with
// no account, sends fresh garbage tokens with valid proofs from their own keys; each costs one
// introspection call. Before, the `maxConcurrent` slots filled and legitimate users with valid,
// not yet cached tokens got 503 (31.9 % served). Now slots go to the sources in turn, and a
// quarter is kept for tokens seen active before. Real Express server in a child process, a real
// 250 ms introspection endpoint, clients on distinct loopback addresses (127.0.0.x).
import { createProof, generateKeyPair, thumbprint } from '@popkit/dpop-client';
import { Agent, request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Framework, HostileServer, SlowIntrospection } from './hostile-servers.ts';
import {
  FRAMEWORKS,
  assertAlive,
  startHostileServer,
  startSlowIntrospection,
} from './hostile-servers.ts';

const USERS = 19;
const SECONDS = 6;
const ATTACK_CONCURRENCY = 48;

/** GET over a keep-alive connection from `agent`'s local address; resolves the status. */
function get(url: string, headers: Record<string, string>, agent: Agent): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, { headers, agent, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(0));
    req.end();
  });
}

describe.each(FRAMEWORKS as Framework[])('introspection starvation (%s)', (framework) => {
  let introspection: SlowIntrospection;
  let server: HostileServer;
  beforeAll(async () => {
    introspection = await startSlowIntrospection(250);
    server = await startHostileServer({ framework, introspection: introspection.url });
  });
  afterAll(async () => {
    await server?.stop();
    await introspection?.close();
  });

  it('a flood of fresh garbage tokens with valid proofs from one source leaves >= 95 % of users served', async () => {
    const url = `${server.url}/api/orders`;
    const attackerKey = await generateKeyPair();
    const attackerAgent = new Agent({ keepAlive: true, localAddress: '127.0.0.1' });
    const deadline = Date.now() + SECONDS * 1000;
    let attackerSent = 0;
    const attackerStatus: Record<number, number> = {};
    let seq = 0;
    const attacker = async () => {
      while (Date.now() < deadline) {
        const token = `junk.${seq++}.${Math.random().toString(36).slice(2)}`;
        const proof = await createProof(attackerKey, { method: 'GET', url, accessToken: token });
        const status = await get(
          url,
          { authorization: `DPoP ${token}`, dpop: proof },
          attackerAgent,
        );
        attackerSent++;
        attackerStatus[status] = (attackerStatus[status] ?? 0) + 1;
      }
    };
    const users = await Promise.all(
      Array.from({ length: USERS }, async (_, i) => {
        const key = await generateKeyPair();
        return {
          key,
          jkt: await thumbprint(key),
          agent: new Agent({ keepAlive: true, localAddress: `127.0.0.${10 + i}` }),
          sent: 0,
          served: 0,
          statuses: {} as Record<number, number>,
        };
      }),
    );
    const user = async (u: (typeof users)[number]) => {
      await new Promise((r) => setTimeout(r, 500)); // the flood is on first
      let n = 0;
      while (Date.now() < deadline) {
        // a valid token never seen before, each time: no cache can help
        const token = `live.${u.jkt}.${n++}`;
        const proof = await createProof(u.key, { method: 'GET', url, accessToken: token });
        const status = await get(url, { authorization: `DPoP ${token}`, dpop: proof }, u.agent);
        u.sent++;
        if (status === 200) u.served++;
        else u.statuses[status] = (u.statuses[status] ?? 0) + 1;
      }
    };
    await Promise.all([
      ...Array.from({ length: ATTACK_CONCURRENCY }, attacker),
      ...users.map(user),
    ]);
    attackerAgent.destroy();
    for (const u of users) u.agent.destroy();
    const sent = users.reduce((a, u) => a + u.sent, 0);
    const served = users.reduce((a, u) => a + u.served, 0);
    const rate = (100 * served) / sent;
    const neverServed = users.filter((u) => u.served === 0).length;
    const refusedUsers: Record<number, number> = {};
    for (const u of users)
      for (const [status, n] of Object.entries(u.statuses))
        refusedUsers[Number(status)] = (refusedUsers[Number(status)] ?? 0) + n;
    console.info(
      `introspection starvation (${framework}): users ${served}/${sent} served (${rate.toFixed(1)} %, refused: ${JSON.stringify(refusedUsers)}), ${neverServed} of ${USERS} never served; attacker sent ${attackerSent} (${(attackerSent / SECONDS).toFixed(0)}/s): ${JSON.stringify(attackerStatus)}; ${introspection.calls} introspection calls`,
    );
    expect(rate).toBeGreaterThanOrEqual(95);
    expect(neverServed).toBe(0);
    // the attacker was refused, not served: garbage is inactive (401) or over its share (503)
    expect(attackerStatus[200] ?? 0).toBe(0);
    await assertAlive(server, 'introspection starvation');
  }, 60_000);
});
