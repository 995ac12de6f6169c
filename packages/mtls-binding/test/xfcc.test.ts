// Envoy's x-forwarded-client-cert, attacked from the one place a client controls: its own
// certificate (subject, URI and DNS SANs) and, behind an appending Envoy, every earlier element.
import { X509Certificate } from 'node:crypto';
import { MemoryReplayStore, createDPoPAuth } from '@popkit/dpop-verifier';
import type { DPoPError } from '@popkit/dpop-verifier';
import { SignJWT, exportJWK, generateKeyPair as joseKeyPair } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { issue } from '../../../examples/shared/src/pki.ts';
import type { Issued } from '../../../examples/shared/src/pki.ts';
import type { TestPki } from '../../../test-support/pki.ts';
import { createTestPki } from '../../../test-support/pki.ts';
import { MtlsArgumentError, MtlsBindingError, certificateThumbprint } from '../src/index.ts';
import type { CertificateFromHeadersOptions, EnvoyClientCertDetails } from '../src/node/index.ts';
import { certificateFromHeaders, certificateThumbprintSource } from '../src/node/index.ts';
import type { Details, Peer } from './envoy-writer.ts';
import { envoyElement, envoyHash, envoyUrlEncode, forward } from './envoy-writer.ts';

const XFCC = 'x-forwarded-client-cert';
let pki: TestPki;
let victim: Peer;

beforeAll(async () => {
  pki = await createTestPki();
  victim = { certPem: pki.clientA.certPem, chainPems: [pki.intermediate.certPem] };
});

const der = (pem: string) => new Uint8Array(new X509Certificate(pem).raw);
const sameBytes = (a: Uint8Array | undefined, b: Uint8Array) =>
  a !== undefined && Buffer.from(a).equals(Buffer.from(b));

type Outcome = 'refused-at-build' | 'refused' | 'victim' | 'attacker' | 'other' | 'none';

/** What popkit makes of a header, for options given as the certificate source gets them. */
function outcome(header: string, options: CertificateFromHeadersOptions, attacker: Peer): Outcome {
  let read: (r: { headers: unknown }) => string | undefined;
  try {
    read = certificateThumbprintSource({ from: 'headers', proxy: 'envoy', ...options });
  } catch (e) {
    expect(e).toBeInstanceOf(MtlsArgumentError);
    return 'refused-at-build';
  }
  let presented;
  try {
    presented = certificateFromHeaders({ [XFCC]: header }, { proxy: 'envoy', ...options });
    expect(read({ headers: { [XFCC]: header } })).toBeDefined();
  } catch (e) {
    expect(e, 'a typed 401, never a crash').toBeInstanceOf(MtlsBindingError);
    expect((e as MtlsBindingError).reason).toBe('certificate_unusable');
    expect((e as MtlsBindingError).message).not.toMatch(/MII|BEGIN|%2B|%3D/);
    return 'refused';
  }
  if (presented === undefined) return 'none';
  if (sameBytes(presented.leaf, der(victim.certPem))) return 'victim';
  if (sameBytes(presented.leaf, der(attacker.certPem))) return 'attacker';
  return 'other';
}

/** A client certificate whose one SAN is `value`: the attacker's whole lever. */
const attackerWith = async (type: 'url' | 'dns', value: string): Promise<Peer> => {
  const cert = await issue({
    subject: 'CN=attacker',
    issuer: pki.intermediate,
    san: [{ type, value }],
  });
  return { certPem: cert.certPem, chainPems: [pki.intermediate.certPem] };
};

// The red team's five configurations (and their mirror images): Envoy forwards a SAN field, the
// reader takes a later element, and the SAN ends the element early and writes the victim's.
const RED_TEAM: Array<[string, Details, 'url' | 'dns']> = [
  ['{cert,uri}', { cert: true, uri: true }, 'url'],
  ['{cert,chain,uri}', { cert: true, chain: true, uri: true }, 'url'],
  ['{cert,dns}', { cert: true, dns: true }, 'dns'],
  ['Istio-like {cert,subject,uri,dns}', { cert: true, subject: true, uri: true, dns: true }, 'url'],
];

describe('Envoy XFCC: a quoted SAN cannot pass off the victim certificate', () => {
  for (const [name, details, type] of RED_TEAM) {
    for (const quoteSans of [false, 'special'] as const) {
      it(`${name}${quoteSans ? ', Envoy quoting special SANs' : ''}`, async () => {
        // SAN = "<benign>",<the victim's element, every SAN quoted>: Envoy writes it unescaped
        const fake = envoyElement(victim, details, { quoteSans: 'always' });
        const lead = type === 'url' ? '"https://attacker.example/",' : '"a.example",';
        const attacker = await attackerWith(type, lead + fake);
        for (const mode of ['SANITIZE_SET', 'APPEND_FORWARD'] as const) {
          const header = forward(mode, undefined, envoyElement(attacker, details, { quoteSans }));
          expect(header.includes(`Hash=${envoyHash(victim.certPem)}`)).toBe(true); // the trap is set
          // the configurations the red team used are refused when the source is built
          for (const element of [-1, 1])
            expect(outcome(header, { element, details }, attacker), `element ${element}`).toBe(
              'refused-at-build',
            );
          // SANITIZE_SET, element 0: the certificate is the one Envoy hashed, the attacker's own
          expect(outcome(header, { element: 0, details }, attacker)).toBe('attacker');
          // an appended element read while declaring no SAN fields: refused per request
          const noSans = { cert: details.cert, chain: details.chain, subject: details.subject };
          expect(outcome(header, { element: -1, details: noSans }, attacker)).toBe('refused');
          expect(outcome(header, { element: -1 }, attacker)).toBe('refused');
        }
      });
    }
  }

  it('an unquoted SAN holding a fake element: element 0 reads the attacker, -1 refuses', async () => {
    const attacker = await attackerWith(
      'url',
      `spiffe://x,${envoyElement(victim, { cert: true, uri: true })}`,
    );
    const header = envoyElement(attacker, { cert: true, uri: true });
    expect(outcome(header, { details: { cert: true, uri: true } }, attacker)).toBe('attacker');
    expect(outcome(header, { element: -1 }, attacker)).toBe('refused');
    expect(outcome(header, { element: -2 }, attacker)).toBe('refused');
  });

  it('a DNS or URI SAN adding fields to the element Envoy wrote is refused', async () => {
    for (const [type, details] of [
      ['url', { cert: true, uri: true }],
      ['dns', { cert: true, dns: true }],
      ['url', { chain: true, uri: true, dns: true }],
    ] as const) {
      const attacker = await attackerWith(
        type,
        `x;Hash=${envoyHash(victim.certPem)};Cert="${envoyUrlEncode(victim.certPem)}"`,
      );
      expect(outcome(envoyElement(attacker, details), { details }, attacker)).toBe('refused');
    }
  });

  it('a subject full of quotes, commas and semicolons stays inside its quotes', async () => {
    const cn = `x";Hash=${envoyHash(victim.certPem)};Cert="y,z=w+v<u>`;
    const cert = await issue({
      subject: `CN=${cn.replace(/[",;+<>\\]/g, (c) => `\\${c}`)}`,
      issuer: pki.intermediate,
    });
    expect(new X509Certificate(cert.certPem).subject).toContain('Hash='); // the CN is as written
    const attacker = { certPem: cert.certPem };
    for (const details of [
      { cert: true, subject: true },
      { chain: true, subject: true },
    ]) {
      const element = envoyElement(attacker, details);
      expect(element).toContain('\\"'); // Envoy's RFC 2253 text escapes the quote
      expect(outcome(element, { details }, attacker)).toBe('attacker');
      expect(outcome(forward('APPEND_FORWARD', 'Hash=00;URI=', element), {}, attacker)).toBe(
        'refused',
      );
      expect(outcome(element, { element: -1, details }, attacker)).toBe('attacker');
    }
  });
});

describe('Envoy XFCC: the supported configurations', () => {
  const ALL: Details[] = [];
  for (let mask = 0; mask < 32; mask++) {
    const d = {
      cert: !!(mask & 1),
      chain: !!(mask & 2),
      subject: !!(mask & 4),
      uri: !!(mask & 8),
      dns: !!(mask & 16),
    };
    if (d.cert || d.chain) ALL.push(d);
  }

  it('SANITIZE_SET, element 0: every set of details reads the leaf and its chain', () => {
    for (const details of ALL) {
      for (const by of [[], ['spiffe://edge'], ['spiffe://edge', 'https://edge.example/']]) {
        const header = forward('SANITIZE_SET', 'Hash=junk', envoyElement(victim, details, { by }));
        const presented = certificateFromHeaders({ [XFCC]: header }, { proxy: 'envoy', details });
        const name = JSON.stringify({ details, by });
        expect(sameBytes(presented?.leaf, der(victim.certPem)), name).toBe(true);
        expect(presented!.chain.length, name).toBe(details.chain ? 1 : 0);
        if (details.chain)
          expect(sameBytes(presented!.chain[0], der(pki.intermediate.certPem))).toBe(true);
      }
    }
  });

  it('element 0 is still the edge element when later Envoys append theirs (Istio sidecars)', () => {
    const edge = envoyElement(victim, { cert: true, subject: true, uri: true, dns: true });
    const sidecar = envoyElement(
      { certPem: pki.server.certPem },
      { subject: true, uri: true, dns: true },
    );
    const header = forward('APPEND_FORWARD', edge, sidecar);
    const presented = certificateFromHeaders(
      { [XFCC]: header },
      { proxy: 'envoy', details: { cert: true, subject: true, uri: true, dns: true } },
    );
    expect(sameBytes(presented?.leaf, der(victim.certPem))).toBe(true);
  });

  it('APPEND_FORWARD, counted from the end, for details without SANs', () => {
    for (const details of ALL.filter((d) => !d.uri && !d.dns)) {
      for (const hops of [0, 1, 2]) {
        // the client's own text first, then the edge's element, then one per later Envoy
        let header = forward('APPEND_FORWARD', 'Hash=00;Cert="x"', envoyElement(victim, details));
        for (let h = 0; h < hops; h++)
          header = forward(
            'APPEND_FORWARD',
            header,
            envoyElement({ certPem: pki.server.certPem }, { subject: true, uri: true, dns: true }),
          );
        const presented = certificateFromHeaders(
          { [XFCC]: header },
          { proxy: 'envoy', element: -1 - hops, details },
        );
        expect(sameBytes(presented?.leaf, der(victim.certPem)), JSON.stringify(details)).toBe(true);
      }
    }
  });

  it('no header is no certificate; the thumbprint is the leaf x5t#S256', async () => {
    const source = certificateThumbprintSource({ from: 'headers', proxy: 'envoy' });
    expect(source({ headers: {} })).toBeUndefined();
    expect(source({ headers: { [XFCC]: envoyElement(victim, { cert: true }) } })).toBe(
      await certificateThumbprint(victim.certPem),
    );
  });
});

describe('Envoy XFCC: a client writing the elements before an appending Envoy', () => {
  it('whatever the client sends first, element -1 is its own certificate or a refusal', async () => {
    const attacker: Peer = { certPem: pki.clientB.certPem };
    const v = envoyUrlEncode(victim.certPem);
    const hv = envoyHash(victim.certPem);
    // pieces a client can put before Envoy's comma: quotes and escapes that try to swallow
    // Envoy's separator, and whole victim elements
    const pieces = [
      '"',
      '\\',
      '\\"',
      ',',
      ';',
      'Hash=',
      `Hash=${hv}`,
      'Cert=',
      `Cert="${v}"`,
      `Hash=${hv};Cert="${v}"`,
      'Subject="',
      `Cert="${v}`,
      '',
    ];
    const seen = new Set<Outcome>();
    let cases = 0;
    for (const details of [{ cert: true }, { chain: true, subject: true }]) {
      const element = envoyElement(attacker, details);
      for (const a of pieces)
        for (const b of pieces)
          for (const c of pieces) {
            const header = forward('APPEND_FORWARD', a + b + c || undefined, element);
            const result = outcome(header, { element: -1, details }, attacker);
            seen.add(result);
            cases++;
            expect(['attacker', 'refused'], header.slice(0, 200)).toContain(result);
          }
    }
    expect(cases).toBe(2 * pieces.length ** 3);
    expect(seen).toEqual(new Set(['attacker', 'refused'])); // both paths exercised
  });
});

describe('Envoy XFCC grammar: anything Envoy would not write is refused', () => {
  it('refuses ambiguous or foreign headers with a typed 401', () => {
    const h = envoyHash(victim.certPem);
    const c = `"${envoyUrlEncode(victim.certPem)}"`;
    const two = `"${envoyUrlEncode(victim.certPem + pki.clientB.certPem)}"`;
    const attacker = { certPem: pki.clientB.certPem };
    const hostile: Array<[string, string, EnvoyClientCertDetails?]> = [
      ['duplicate Hash', `Hash=${h};Hash=${h};Cert=${c}`],
      ['duplicate Cert', `Hash=${h};Cert=${c};Cert=${c}`],
      ['Cert before Hash', `Cert=${c};Hash=${h}`],
      ['Chain before Cert', `Hash=${h};Chain=${c};Cert=${c}`, { cert: true, chain: true }],
      ['Subject before Cert', `Hash=${h};Subject="CN=x";Cert=${c}`, { cert: true, subject: true }],
      ['By after Hash', `Hash=${h};By=spiffe://x;Cert=${c}`],
      ['an unknown field', `Hash=${h};Cert=${c};Evil=1`],
      ['the old SAN field', `Hash=${h};Cert=${c};SAN=spiffe://x`],
      ['a field not configured', `Hash=${h};Cert=${c};Subject="CN=x"`],
      ['a configured field missing', `Hash=${h};Cert=${c}`, { cert: true, chain: true }],
      [
        'URI missing (Envoy writes URI= even empty)',
        `Hash=${h};Cert=${c}`,
        { cert: true, uri: true },
      ],
      ['DNS not configured', `Hash=${h};Cert=${c};DNS=a.example`],
      ['characters after a closing quote', `Hash=${h};Cert=${c}x`],
      ['a quote after a closing quote', `Hash=${h};Cert=${c}"`],
      ['an unterminated quote', `Hash=${h};Cert="${envoyUrlEncode(victim.certPem)}`],
      ['an escape at the end', `Hash=${h};Cert="abc\\`],
      ['a quote inside an unquoted value', `Hash=${h};Cert=${c};By=a"b`],
      ['a backslash inside an unquoted value', `By=a\\b;Hash=${h};Cert=${c}`],
      ['a trailing ;', `Hash=${h};Cert=${c};`],
      ['a trailing ,', `Hash=${h};Cert=${c},`],
      ['a leading ,', `,Hash=${h};Cert=${c}`],
      ['an empty field', `Hash=${h};;Cert=${c}`],
      ['a key without =', `Hash=${h};Cert`],
      ['a space before a key', `Hash=${h}; Cert=${c}`],
      ['a space after a comma (joined header lines)', `Hash=${h};Cert=${c}, Hash=${h};Cert=${c}`],
      ['a key that is not letters', `Hash=${h};Cert-x=${c}`],
      ['Hash not hex', `Hash=${'g'.repeat(64)};Cert=${c}`],
      ['Hash too short', `Hash=${h.slice(2)};Cert=${c}`],
      ['Hash upper-case', `Hash=${h.toUpperCase()};Cert=${c}`],
      ['Hash quoted', `Hash="${h}";Cert=${c}`],
      ['Cert unquoted', `Hash=${h};Cert=${c.slice(1, -1)}`],
      ['Subject unquoted', `Hash=${h};Cert=${c};Subject=CN`, { cert: true, subject: true }],
      [
        'Cert with characters Envoy escapes',
        `Hash=${h};Cert="${encodeURIComponent('x;y').replace('%3B', ';')}"`,
      ],
      ['Cert with an escaped quote', `Hash=${h};Cert="a\\"b"`],
      ['Cert holding two certificates', `Hash=${h};Cert=${two}`],
      ['Cert holding a key', `Hash=${h};Cert="${envoyUrlEncode(pki.clientA.keyPem)}"`],
      ['Cert not matching Hash', `Hash=${envoyHash(pki.clientB.certPem)};Cert=${c}`],
      [
        'Chain not starting with Cert',
        `Hash=${h};Cert=${c};Chain="${envoyUrlEncode(pki.clientB.certPem + victim.certPem)}"`,
        { cert: true, chain: true },
      ],
      [
        'Chain leaf not matching Hash',
        `Hash=${envoyHash(pki.clientB.certPem)};Chain=${c}`,
        { chain: true },
      ],
      ['bad percent-encoding', `Hash=${h};Cert="%E0%A4%A"`],
      ['no element at -2', `Hash=${h};Cert=${c}`],
      ['33 elements', Array(33).fill(`Hash=${h};Cert=${c}`).join(',')],
      ['17 By fields', `${'By=spiffe://x;'.repeat(17)}Hash=${h};Cert=${c}`],
      ['SAN fields before the element read', `Hash=00;URI=x,Hash=${h};Cert=${c}`],
    ];
    for (const [name, header, details] of hostile) {
      const element = name === 'no element at -2' || name.startsWith('SAN fields') ? -2 : 0;
      const options = { element: name.startsWith('SAN fields') ? -1 : element, details };
      expect(outcome(header, options, attacker), name).toBe('refused');
    }
    // and the same shapes, well formed, are read
    expect(outcome(`Hash=${h};Cert=${c}`, {}, attacker)).toBe('victim');
    expect(outcome(`hAsH=${h};cErT=${c}`, {}, attacker)).toBe('victim');
    expect(
      outcome(`Hash=${h};Cert=${c};URI=`, { details: { cert: true, uri: true } }, attacker),
    ).toBe('victim');
    expect(outcome(`Hash=00;Cert=x,Hash=${h};Cert=${c}`, { element: -1 }, attacker)).toBe('victim');
  });

  it('checks the configuration once, when the source is built', () => {
    const refused: CertificateFromHeadersOptions[] = [
      { element: 1 },
      { element: 15 },
      { element: -17 },
      { element: 0.5 },
      { element: '0' as never },
      { details: {} },
      { details: { subject: true, uri: true } },
      { details: { cert: false, chain: false } },
      { details: { cert: 'yes' as never } },
      { details: { cert: true, san: true } as never },
      { details: null as never },
      { details: ['cert'] as never },
      { element: -1, details: { cert: true, uri: true } },
      { element: -1, details: { chain: true, dns: true } },
      { element: -3, details: { cert: true, subject: true, uri: true, dns: true } },
    ];
    for (const options of refused) {
      const name = JSON.stringify(options);
      expect(
        () => certificateThumbprintSource({ from: 'headers', proxy: 'envoy', ...options }),
        name,
      ).toThrow(MtlsArgumentError);
      expect(() => certificateFromHeaders({}, { proxy: 'envoy', ...options }), name).toThrow(
        MtlsArgumentError,
      );
    }
    // a built source never throws a configuration error per request
    const source = certificateThumbprintSource({ from: 'headers', proxy: 'envoy', element: -1 });
    expect(() => source({ headers: { [XFCC]: 'garbage' } })).toThrow(MtlsBindingError);
  });
});

describe('end to end: a stolen certificate-bound token behind Envoy', () => {
  it('the attacker certificate that smuggles the victim certificate gets a 401', async () => {
    const { privateKey, publicKey } = await joseKeyPair('ES256');
    const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: 'k' }] };
    const stolen = await new SignJWT({
      cnf: { 'x5t#S256': await certificateThumbprint(victim.certPem) },
    })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'k' })
      .setIssuer('https://as')
      .setAudience('https://rs')
      .setExpirationTime('5m')
      .sign(privateKey);
    const details = { cert: true, uri: true };
    const attacker: Issued = await issue({
      subject: 'CN=attacker',
      issuer: pki.intermediate,
      san: [{ type: 'url', value: `"https://attacker.example/",${envoyElement(victim, details)}` }],
    });
    const header = envoyElement({ certPem: attacker.certPem }, details);
    const verify = (options: CertificateFromHeadersOptions, xfcc: string) =>
      createDPoPAuth({
        accessToken: { issuer: 'https://as', audience: 'https://rs', jwks: jwks as never },
        replay: new MemoryReplayStore(),
        publicUrl: 'https://rs.example',
        certificate: certificateThumbprintSource({ from: 'headers', proxy: 'envoy', ...options }),
      }).verify({
        method: 'GET',
        url: 'https://rs.example/data',
        headers: { authorization: `Bearer ${stolen}`, [XFCC]: xfcc },
      });
    // the configuration of the finding no longer builds
    expect(() => verify({ element: -1, details }, header)).toThrow(MtlsArgumentError);
    // the same header, behind a source declared without SANs: certificate_unusable
    const unusable = (await verify({ element: -1 }, header).catch((e) => e)) as DPoPError;
    expect([unusable.status, unusable.reason]).toEqual([401, 'certificate_unusable']);
    // behind SANITIZE_SET, element 0: the attacker's own certificate, which the token is not bound to
    const mismatch = (await verify({ details }, header).catch((e) => e)) as DPoPError;
    expect([mismatch.status, mismatch.reason]).toEqual([401, 'certificate_mismatch']);
    // and the victim, with its own certificate, is served
    const ok = await verify({ details }, envoyElement(victim, details));
    expect(ok.claims.cnf).toBeDefined();
  });
});
