import { X509Certificate, createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { TestPki } from '../../../test-support/pki.ts';
import { createTestPki } from '../../../test-support/pki.ts';
import { MtlsArgumentError, MtlsBindingError } from '../src/index.ts';
import type { CertificateFromHeadersOptions } from '../src/node/index.ts';
import {
  MAX_HEADER_LENGTH,
  certificateFromHeaders,
  certificateThumbprintSource,
} from '../src/node/index.ts';

let pki: TestPki;
let leafDer: Buffer;
let chainDer: Buffer;
let leafPem: string;
let chainPem: string;

beforeAll(async () => {
  pki = await createTestPki();
  leafPem = pki.clientA.certPem;
  chainPem = pki.intermediate.certPem;
  leafDer = new X509Certificate(leafPem).raw;
  chainDer = new X509Certificate(chainPem).raw;
});

const b64 = (d: Buffer) => d.toString('base64');
/** Envoy's XFCC Hash: SHA-256 of the certificate DER, hex. */
const sha = (pem: string) =>
  createHash('sha256').update(new X509Certificate(pem).raw).digest('hex');
/** nginx $ssl_client_escaped_cert: every reserved character escaped. */
const nginxEscape = (pem: string) => encodeURIComponent(pem);
/** AWS ALB: URL-encoded PEM with "+", "=" and "/" left unescaped. */
const albEscape = (pem: string) =>
  encodeURIComponent(pem).replace(/%2B/g, '+').replace(/%3D/g, '=').replace(/%2F/g, '/');
/** Go's url.QueryEscape, as Traefik v2 used. */
const goQueryEscape = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');

function read(headers: Record<string, string | string[]>, options: CertificateFromHeadersOptions) {
  return certificateFromHeaders(headers, options);
}

describe('certificateFromHeaders: every proxy format', () => {
  it('reads the leaf (and chain) from each proxy, and the bytes are exactly the certificate DER', () => {
    const cases: Array<[string, CertificateFromHeadersOptions, Record<string, string>, number]> = [
      [
        'RFC 9440',
        { proxy: 'rfc9440' },
        {
          'client-cert': `:${b64(leafDer)}:`,
          'client-cert-chain': `:${b64(chainDer)}:, :${b64(new X509Certificate(pki.ca.certPem).raw)}:`,
        },
        2,
      ],
      [
        'Cloudflare (RFC 9440 transform)',
        { proxy: 'cloudflare' },
        { 'client-cert': `:${b64(leafDer)}:` },
        0,
      ],
      [
        'Cloudflare legacy base64 DER',
        { proxy: 'cloudflare', header: 'cf-client-cert-der-base64' },
        { 'cf-client-cert-der-base64': b64(leafDer) },
        0,
      ],
      [
        'Envoy XFCC Cert+Chain',
        {
          proxy: 'envoy',
          details: { cert: true, chain: true, subject: true, uri: true, dns: true },
        },
        {
          'x-forwarded-client-cert': `By=spiffe://cluster.local/ns/a/sa/api;Hash=${sha(leafPem)};Cert="${nginxEscape(leafPem)}";Chain="${nginxEscape(leafPem + chainPem)}";Subject="/C=US/O=Acme, Inc./CN=client-a";URI="spiffe://example.com/client-a";DNS="a.example";DNS="b.example"`,
        },
        1,
      ],
      [
        'Envoy XFCC several elements, first chosen',
        { proxy: 'envoy' },
        {
          'x-forwarded-client-cert': `Hash=${sha(leafPem)};Cert="${nginxEscape(leafPem)}",By=spiffe://x;Hash=${sha(pki.clientB.certPem)};Cert="${nginxEscape(pki.clientB.certPem)}"`,
        },
        0,
      ],
      [
        'Envoy XFCC lower-case keys (keys are case-insensitive)',
        { proxy: 'envoy' },
        {
          'x-forwarded-client-cert': `hash=${sha(leafPem)};cert="${nginxEscape(leafPem)}"`,
        },
        0,
      ],
      [
        'nginx $ssl_client_escaped_cert',
        { proxy: 'nginx' },
        { 'ssl-client-cert': nginxEscape(leafPem) },
        0,
      ],
      [
        'HAProxy %{+Q}[ssl_c_der,base64]',
        { proxy: 'haproxy' },
        { 'x-ssl-client-cert': `"${b64(leafDer)}"` },
        0,
      ],
      [
        'Apache PEM, line breaks as spaces',
        { proxy: 'apache' },
        { ssl_client_cert: leafPem.replace(/\n/g, ' ') },
        0,
      ],
      [
        'Apache PEM, line breaks stripped',
        { proxy: 'apache' },
        { ssl_client_cert: leafPem.replace(/\n/g, '') },
        0,
      ],
      [
        'Traefik v3 raw',
        { proxy: 'traefik' },
        { 'x-forwarded-tls-client-cert': `${b64(leafDer)},${b64(chainDer)}` },
        1,
      ],
      [
        'Traefik v2 escaped',
        { proxy: 'traefik' },
        { 'x-forwarded-tls-client-cert': goQueryEscape(`${b64(leafDer)},${b64(chainDer)}`) },
        1,
      ],
      [
        'AWS ALB verify mode (+ must survive)',
        { proxy: 'aws-alb' },
        { 'x-amzn-mtls-clientcert-leaf': albEscape(leafPem) },
        0,
      ],
      [
        'AWS ALB passthrough (whole chain)',
        { proxy: 'aws-alb', header: 'x-amzn-mtls-clientcert' },
        { 'x-amzn-mtls-clientcert': albEscape(leafPem + chainPem) },
        1,
      ],
      ['Azure X-ARR-ClientCert', { proxy: 'azure' }, { 'x-arr-clientcert': b64(leafDer) }, 0],
    ];
    for (const [name, options, headers, chainLength] of cases) {
      const result = read(headers, options);
      expect(result, name).toBeDefined();
      expect(Buffer.from(result!.leaf).equals(leafDer), name).toBe(true);
      expect(result!.chain, name).toHaveLength(chainLength);
      if (chainLength) expect(Buffer.from(result!.chain[0]!).equals(chainDer), name).toBe(true);
    }
    expect(b64(leafDer).includes('+') || b64(leafDer).includes('/')).toBe(true); // the ALB "+" case is meaningful
  });

  it('reads chains up to 16 certificates besides the leaf', () => {
    const cert = `:${b64(leafDer)}:`;
    expect(
      read({ 'ssl-client-cert': nginxEscape(leafPem.repeat(17)) }, { proxy: 'nginx' })!.chain,
    ).toHaveLength(16);
    expect(
      read(
        { 'x-forwarded-tls-client-cert': Array(17).fill(b64(leafDer)).join(',') },
        { proxy: 'traefik' },
      )!.chain,
    ).toHaveLength(16);
    expect(
      read(
        { 'client-cert': cert, 'client-cert-chain': Array(16).fill(cert).join(', ') },
        { proxy: 'rfc9440' },
      )!.chain,
    ).toHaveLength(16);
    expect(
      read(
        { ssl_client_cert: leafPem.replace(/\n/g, ' ') },
        { proxy: 'apache', maxLength: MAX_HEADER_LENGTH },
      ),
    ).toBeDefined();
  });

  it('trusts nothing unless the proxy is named, and reads only its header', () => {
    expect(read({ 'client-cert': `:${b64(leafDer)}:` }, {})).toBeUndefined();
    expect(read({ 'x-ssl-client-cert': b64(leafDer) }, { proxy: 'nginx' })).toBeUndefined();
    expect(read({}, { proxy: 'envoy' })).toBeUndefined();
    for (const absent of ['', '-', '(null)'])
      expect(read({ 'ssl-client-cert': absent }, { proxy: 'nginx' })).toBeUndefined();
  });

  it('reads a Web Headers object and a Node request with rawHeaders', () => {
    const h = new Headers({ 'Client-Cert': `:${b64(leafDer)}:` });
    expect(certificateFromHeaders(h, { proxy: 'rfc9440' })).toBeDefined();
    const req = {
      headers: { 'client-cert': `:${b64(leafDer)}:` },
      rawHeaders: ['Client-Cert', `:${b64(leafDer)}:`],
    };
    expect(certificateFromHeaders(req, { proxy: 'rfc9440' })).toBeDefined();
  });

  it('rejects hostile values as unusable certificate information (401 invalid_token), never crashing', () => {
    const cert = `:${b64(leafDer)}:`;
    const hostile: Array<
      [Parameters<typeof certificateFromHeaders>[0], CertificateFromHeadersOptions]
    > = [
      [
        { headers: {}, rawHeaders: ['client-cert', cert, 'Client-Cert', cert] },
        { proxy: 'rfc9440' },
      ],
      [{ 'client-cert': [cert, cert] }, { proxy: 'rfc9440' }],
      [{ 'client-cert': `${cert}, ${cert}` }, { proxy: 'rfc9440' }],
      [{ 'client-cert': b64(leafDer) }, { proxy: 'rfc9440' }],
      [{ 'client-cert': ':not base64!:' }, { proxy: 'rfc9440' }],
      [{ 'client-cert': `:${'A'.repeat(70000)}:` }, { proxy: 'rfc9440' }],
      [{ 'client-cert': ':AAAA:' }, { proxy: 'rfc9440' }],
      [{ 'x-forwarded-client-cert': 'Cert="unterminated' }, { proxy: 'envoy' }],
      [
        { 'x-forwarded-client-cert': `Hash=${sha(leafPem)};Cert="${nginxEscape(leafPem)}"` },
        { proxy: 'envoy', element: -3 },
      ],
      // an element without the certificate Envoy was configured to send
      [{ 'x-forwarded-client-cert': 'By=spiffe://x;Hash=00;Subject="a"' }, { proxy: 'envoy' }],
      // Envoy writes Cert quoted and Hash in lower-case hex, nothing else
      [
        { 'x-forwarded-client-cert': `Hash=${sha(leafPem)};Cert=${nginxEscape(leafPem)}` },
        { proxy: 'envoy' },
      ],
      [
        {
          'x-forwarded-client-cert': `Hash=${sha(leafPem).toUpperCase()};Cert="${nginxEscape(leafPem)}"`,
        },
        { proxy: 'envoy' },
      ],
      [{ 'x-forwarded-client-cert': 'Cert=%E0%A4%A' }, { proxy: 'envoy' }],
      [{ 'x-forwarded-client-cert': 'garbage-without-equals' }, { proxy: 'envoy' }],
      [{ 'ssl-client-cert': '%%%' }, { proxy: 'nginx' }],
      [{ 'ssl-client-cert': nginxEscape(pki.clientA.keyPem) }, { proxy: 'nginx' }],
      [{ 'x-ssl-client-cert': '"bm90IGEgY2VydA=="' }, { proxy: 'haproxy' }],
      [{ 'x-forwarded-tls-client-cert': `${b64(leafDer)},garbage` }, { proxy: 'traefik' }],
      [{ 'x-arr-clientcert': '\u0000\u0001' }, { proxy: 'azure' }],
      // chains longer than any client's (16 besides the leaf) are not read
      [{ 'ssl-client-cert': nginxEscape(leafPem.repeat(18)) }, { proxy: 'nginx' }],
      [
        { 'x-amzn-mtls-clientcert': albEscape(leafPem.repeat(18)) },
        { proxy: 'aws-alb', header: 'x-amzn-mtls-clientcert' },
      ],
      [
        { 'x-forwarded-tls-client-cert': Array(18).fill(b64(leafDer)).join(',') },
        { proxy: 'traefik' },
      ],
      [
        { 'client-cert': cert, 'client-cert-chain': Array(17).fill(cert).join(', ') },
        { proxy: 'rfc9440' },
      ],
    ];
    for (const [headers, options] of hostile) {
      let thrown: unknown;
      try {
        read(headers as never, options);
      } catch (e) {
        thrown = e;
      }
      expect(thrown, JSON.stringify(options)).toBeInstanceOf(MtlsBindingError);
      expect((thrown as MtlsBindingError).code).toBe('invalid_token');
      expect((thrown as MtlsBindingError).reason).toBe('certificate_unusable');
      expect((thrown as MtlsBindingError).status).toBe(401);
      expect((thrown as MtlsBindingError).message).not.toContain('MII');
    }
  });

  it('bad options are argument errors, found when the source is built', () => {
    for (const options of [
      { proxy: 'squid' },
      { proxy: 'Nginx' },
      { proxy: 'envoy', element: 1.5 },
      { proxy: 'envoy', element: 99 },
      { proxy: 'envoy', element: 1 },
      { proxy: 'envoy', element: -1, details: { cert: true, uri: true } },
      { proxy: 'envoy', details: { cert: true, san: true } },
      { proxy: 'nginx', details: { cert: true } },
      { proxy: 'nginx', element: 0 },
      { proxy: 'nginx', header: 'bad header' },
      { proxy: 'nginx', maxLength: -1 },
      { proxy: 'nginx', maxLength: MAX_HEADER_LENGTH + 1 },
    ]) {
      expect(() => read({}, options as never), JSON.stringify(options)).toThrow(MtlsArgumentError);
      expect(() => certificateThumbprintSource({ from: 'headers', ...(options as never) })).toThrow(
        MtlsArgumentError,
      );
    }
  });

  it('Envoy XFCC: no value a client certificate controls can change which certificate is read', () => {
    const victim = pki.clientB.certPem;
    const attacker = leafPem;
    const v = nginxEscape(victim);
    const a = nginxEscape(attacker);
    const inject: Array<[string, string, CertificateFromHeadersOptions]> = [
      [
        'a URI SAN holding a whole fake element (element: -1 behind an appending edge)',
        `By=spiffe://edge;Hash=${sha(attacker)};Cert="${a}";URI=spiffe://x,Hash=${sha(victim)};Cert="${v}"`,
        { proxy: 'envoy', element: -1 },
      ],
      [
        'a DNS SAN adding a Cert to an element that forwards only Chain',
        `By=spiffe://edge;Hash=${sha(attacker)};Chain="${a}";DNS=x;Cert=${v}`,
        { proxy: 'envoy' },
      ],
      [
        'a repeated Cert in one element',
        `Hash=${sha(attacker)};Cert="${a}";Cert="${v}"`,
        { proxy: 'envoy' },
      ],
      [
        'a repeated Hash in one element',
        `Hash=${sha(victim)};Hash=${sha(attacker)};Cert="${v}"`,
        { proxy: 'envoy' },
      ],
      [
        'a Cert that does not match the element Hash',
        `Hash=${sha(attacker)};Cert="${v}"`,
        { proxy: 'envoy' },
      ],
      ['a Cert without any Hash', `Cert="${v}"`, { proxy: 'envoy' }],
      ['an unknown field', `Hash=${sha(victim)};Cert="${v}";Evil=1`, { proxy: 'envoy' }],
      ['an unquoted value holding =', `Hash=${sha(victim)};Cert="${v}";By=a=b`, { proxy: 'envoy' }],
      ['an empty element', `Hash=${sha(victim)};Cert="${v}",`, { proxy: 'envoy' }],
    ];
    for (const [name, header, options] of inject) {
      let thrown: unknown;
      try {
        read({ 'x-forwarded-client-cert': header }, options);
      } catch (e) {
        thrown = e;
      }
      expect(thrown, name).toBeInstanceOf(MtlsBindingError);
      expect((thrown as MtlsBindingError).reason, name).toBe('certificate_unusable');
    }
    // the safe Envoy configuration (SANITIZE_SET, cert only) reads the one element it wrote
    const safe = read(
      { 'x-forwarded-client-cert': `Hash=${sha(attacker)};Cert="${a}"` },
      { proxy: 'envoy' },
    );
    expect(Buffer.from(safe!.leaf).equals(leafDer)).toBe(true);
  });

  it('stays fast on large inputs', () => {
    const big = `Cert="${'%41'.repeat(20000)}"`;
    const start = performance.now();
    try {
      read({ 'x-forwarded-client-cert': big }, { proxy: 'envoy' });
    } catch {
      // expected
    }
    expect(performance.now() - start).toBeLessThan(500); // no quadratic work (a loaded CI machine)
  });
});
