// The mTLS-at-the-proxy attacks of the red team's review, against real Express, Fastify and Hono
// servers (each in a child process), with a liveness check after each: (3) a client certificate
// whose SAN carries a quoted copy of the victim's XFCC element, to make popkit read the victim's
// certificate and accept a stolen certificate-bound token; (8) a proxy header crafted for the
// worst case of the PEM parser at its maximum length (it once took 11.8 s).
import { X509Certificate, createHash } from 'node:crypto';
import { issue } from '@popkit/example-shared/pki';
import { createTestPki } from '@popkit/example-shared/pki';
import { MAX_HEADER_LENGTH } from '@popkit/mtls-binding/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Peer } from '../../../packages/mtls-binding/test/envoy-writer.ts';
import { envoyElement, envoyHash } from '../../../packages/mtls-binding/test/envoy-writer.ts';
import type { Framework, HostileServer } from './hostile-servers.ts';
import { FRAMEWORKS, HANDLER_HEADER, assertAlive, startHostileServer } from './hostile-servers.ts';

const XFCC = 'x-forwarded-client-cert';
const x5t = (pem: string) =>
  createHash('sha256').update(new X509Certificate(pem).raw).digest('base64url');

let victim: Peer;
let attacker: Peer;
beforeAll(async () => {
  const pki = await createTestPki();
  victim = { certPem: pki.clientA.certPem, chainPems: [pki.intermediate.certPem] };
  // the attacker's own certificate, whose one URI SAN ends the element early and writes the
  // victim's element after it, quoted the way Envoy quotes special characters
  const fake = envoyElement(victim, { cert: true, uri: true }, { quoteSans: 'always' });
  const cert = await issue({
    subject: 'CN=attacker',
    issuer: pki.intermediate,
    san: [{ type: 'url', value: `"https://attacker.example/",${fake}` }],
  });
  attacker = { certPem: cert.certPem, chainPems: [pki.intermediate.certPem] };
}, 60_000);

describe.each(FRAMEWORKS as Framework[])('%s behind a TLS-terminating proxy', (framework) => {
  const servers: HostileServer[] = [];
  afterAll(async () => {
    for (const s of servers) await s.stop();
  });

  it('(3) a SAN carrying the victim element does not make a stolen certificate-bound token work (Envoy XFCC)', async () => {
    const server = await startHostileServer({
      framework,
      certificate: { proxy: 'envoy', options: { details: { cert: true, uri: true } } },
    });
    servers.push(server);
    // Envoy (SANITIZE_SET) writes the attacker's element; the trap (the victim's Hash and Cert
    // inside the attacker's URI SAN) is in the header
    const header = envoyElement(attacker, { cert: true, uri: true }, { quoteSans: 'special' });
    expect(header).toContain(`Hash=${envoyHash(victim.certPem)}`);
    const stolen = `cert.${x5t(victim.certPem)}.stolen`;
    const res = await fetch(`${server.url}/api/orders`, {
      headers: { authorization: `Bearer ${stolen}`, [XFCC]: header },
    });
    expect(res.status).toBe(401);
    expect(res.headers.get(HANDLER_HEADER)).toBeNull();
    // the victim, through Envoy, is served: the source reads what Envoy appended
    const own = await fetch(`${server.url}/api/orders`, {
      headers: {
        authorization: `Bearer ${stolen}`,
        [XFCC]: envoyElement(victim, { cert: true, uri: true }),
      },
    });
    expect(own.status).toBe(200);
    expect((await server.runs()).length).toBe(1);
    await assertAlive(server, 'XFCC with a victim element in a SAN');
  }, 60_000);

  it('(8) a worst-case PEM header at the maximum length is answered at once, typed, and the server lives', async () => {
    const server = await startHostileServer({ framework, certificate: { proxy: 'apache' } });
    servers.push(server);
    const stolen = `cert.${x5t(victim.certPem)}.stolen`;
    // many unterminated BEGIN markers and long runs of spaces: what made the loose PEM regex
    // backtrack quadratically
    const unit = '-----BEGIN CERTIFICATE----- ';
    const crafted = unit.repeat(Math.floor((MAX_HEADER_LENGTH - 64) / unit.length));
    for (const value of [
      crafted,
      ' '.repeat(MAX_HEADER_LENGTH - 16),
      `${crafted.slice(0, 4000)}A`,
    ]) {
      const started = performance.now();
      const res = await fetch(`${server.url}/api/orders`, {
        headers: { authorization: `Bearer ${stolen}`, ssl_client_cert: value },
      });
      const took = performance.now() - started;
      expect([400, 401, 431]).toContain(res.status);
      expect(res.headers.get(HANDLER_HEADER)).toBeNull();
      expect(took).toBeLessThan(1000); // (was seconds: 11.8 s for one header)
    }
    await assertAlive(server, 'worst-case PEM header');
  }, 60_000);
});
