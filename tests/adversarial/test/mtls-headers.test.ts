// Every parser of proxy headers and certificates in @popkit/mtls-binding, fed crafted worst cases
// at the longest input it accepts (a header of MAX_HEADER_LENGTH, a PEM text of 16 maximal
// certificates, a 4096-character DN): each call must stay linear. A regular expression with a
// lazy body took seconds on one crafted Apache header (11.8 s in the red team's run); a linear
// parser takes about a millisecond per 64 KiB. Warm-up first, then the slowest of several runs is held to a bound generous enough for
// a loaded CI machine.
import { X509Certificate } from 'node:crypto';
import { createTestPki } from '@popkit/example-shared/pki';
import {
  MAX_CERTIFICATE_BYTES,
  MtlsArgumentError,
  MtlsBindingError,
  certificateThumbprint,
  distinguishedNamesEqual,
  parseDistinguishedName,
} from '@popkit/mtls-binding';
import { MAX_HEADER_LENGTH, certificateFromHeaders } from '@popkit/mtls-binding/node';
import type { CertificateFromHeadersOptions } from '@popkit/mtls-binding/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const LIMIT = MAX_HEADER_LENGTH;
const BOUND_MS = 20;
const WARM_UP = 3;
const RUNS = 5;

/** `unit` repeated between `prefix` and `suffix`, as close to `length` characters as it fits. */
const fill = (unit: string, prefix = '', suffix = '', length = LIMIT): string =>
  prefix + unit.repeat(Math.floor((length - prefix.length - suffix.length) / unit.length)) + suffix;
const enc = encodeURIComponent;

let leafPem: string;
let leafB64: string;
let hash: string;
beforeAll(async () => {
  const pki = await createTestPki();
  leafPem = pki.clientA.certPem;
  const raw = new X509Certificate(leafPem).raw;
  leafB64 = raw.toString('base64');
  hash = (await import('node:crypto')).createHash('sha256').update(raw).digest('hex');
});

/**
 * The median of `RUNS` calls after `WARM_UP` calls, in ms (the first call alone if hopeless): a
 * quadratic parser is slow on every run, while a loaded machine only delays some of them.
 */
function slowest(run: () => void): number {
  const first = performance.now();
  run();
  const once = performance.now() - first;
  if (once > 50 * BOUND_MS) return once; // quadratic: no need to wait for more runs
  for (let i = 1; i < WARM_UP; i++) run();
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const started = performance.now();
    run();
    times.push(performance.now() - started);
  }
  return times.sort((x, y) => x - y)[RUNS >> 1]!;
}

const measured: Array<[string, string, number, number]> = [];

/** Times each crafted input; every outcome must be a value or the expected typed error. */
function expectLinear(
  parser: string,
  cases: Array<[string, string | (() => string), (value: string) => unknown]>,
  expected: new (...args: never[]) => Error = MtlsBindingError,
): void {
  for (const [name, make, call] of cases) {
    const value = typeof make === 'function' ? make() : make;
    const run = () => {
      try {
        call(value);
      } catch (error) {
        if (!(error instanceof expected)) throw error;
      }
    };
    const ms = slowest(run);
    measured.push([parser, name, value.length, ms]);
    expect(ms, `${parser}: ${name} (${value.length} characters)`).toBeLessThan(BOUND_MS);
  }
}

const header =
  (name: string, options: CertificateFromHeadersOptions, extra: Record<string, string> = {}) =>
  (value: string) =>
    certificateFromHeaders({ [name]: value, ...extra }, { maxLength: LIMIT, ...options });

afterAll(() => {
  // the numbers behind the bound, for whoever reads the CI log
  console.log(
    measured
      .map(([p, n, len, ms]) => `${ms.toFixed(2).padStart(8)} ms  ${p}: ${n} (${len} chars)`)
      .join('\n'),
  );
});

describe('mtls-binding parsers stay linear at the longest input they accept', () => {
  it('every crafted value is as long as the parser accepts', () => {
    expect(LIMIT).toBe(262_144);
    expect(fill('-----BEGIN CERTIFICATE-----').length).toBeGreaterThan(LIMIT - 27);
    expect(() =>
      certificateFromHeaders(
        { 'ssl-client-cert': 'x'.repeat(LIMIT + 1) },
        { proxy: 'nginx', maxLength: LIMIT },
      ),
    ).toThrow(/too large/);
  });

  it('PEM, URL-encoded (nginx $ssl_client_escaped_cert, AWS ALB)', () => {
    for (const [proxy, name] of [
      ['nginx', 'ssl-client-cert'],
      ['aws-alb', 'x-amzn-mtls-clientcert'],
    ] as const) {
      const read = header(name, { proxy, header: name });
      expectLinear(proxy, [
        ['encoded BEGIN fragments, no END', () => fill(enc('-----BEGIN A-----')), read],
        ['raw BEGIN CERTIFICATE lines, no END', () => fill('-----BEGIN CERTIFICATE-----'), read],
        ['BEGIN lines never closed', () => fill('-----BEGIN '), read],
        ['one BEGIN, then newlines', () => fill('%0A', enc('-----BEGIN CERTIFICATE-----')), read],
        ['END lines without BEGIN', () => fill(enc('-----END CERTIFICATE-----')), read],
        ['dashes', () => fill('-'), read],
        [
          'BEGIN, then END lines of another label',
          () => fill('-----END A-----', '-----BEGIN CERTIFICATE-----'),
          read,
        ],
        ['valid certificate blocks, far too many', () => fill(enc(leafPem)), read],
        ['percent signs', () => fill('%'), read],
      ]);
    }
  });

  it('loose PEM (Apache %{SSL_CLIENT_CERT}s)', () => {
    const read = header('ssl_client_cert', { proxy: 'apache' });
    expectLinear('apache', [
      [
        'BEGIN CERTIFICATE lines, no END (the red team header)',
        () => fill('-----BEGIN CERTIFICATE-----'),
        read,
      ],
      ['BEGIN lines and spaces', () => fill('-----BEGIN CERTIFICATE----- '), read],
      ['one BEGIN, then spaces', () => fill(' ', '-----BEGIN CERTIFICATE-----', 'x'), read],
      [
        'one BEGIN, then newlines and base64',
        () => fill('\nAAAA', '-----BEGIN CERTIFICATE-----'),
        read,
      ],
      ['quoted BEGIN lines', () => fill('-----BEGIN CERTIFICATE-----', '"', '"'), read],
      ['base64 and spaces, no PEM', () => fill('A ', 'M'), read],
      ['valid blocks, line breaks as spaces', () => fill(leafPem.replace(/\n/g, ' ')), read],
    ]);
  });

  it('base64 DER (HAProxy, Azure, Cloudflare legacy)', () => {
    for (const [proxy, name] of [
      ['haproxy', 'x-ssl-client-cert'],
      ['azure', 'x-arr-clientcert'],
      ['cloudflare', 'client-cert'],
    ] as const) {
      const read = header(name, { proxy });
      expectLinear(proxy, [
        ['one long base64 run', () => fill('A', 'M'), read],
        ['spaces', () => fill(' ', '"M', '"'), read],
        ['padding run', () => fill('='), read],
        ['padding everywhere', () => fill('A='), read],
        ['unbalanced quotes', () => fill('"'), read],
      ]);
    }
  });

  it('RFC 9440 byte sequences (Client-Cert, Client-Cert-Chain)', () => {
    const leaf = header('client-cert', { proxy: 'rfc9440' });
    const chain = (value: string) =>
      certificateFromHeaders(
        { 'client-cert': `:${leafB64}:`, 'client-cert-chain': value },
        { proxy: 'rfc9440', maxLength: LIMIT },
      );
    expectLinear('rfc9440', [
      ['one long byte sequence', () => fill('A', ':', ':'), leaf],
      ['colons', () => fill(':'), leaf],
      ['chain: commas', () => fill(','), chain],
      ['chain: tiny items', () => fill(':A:,'), chain],
      ['chain: spaces and commas', () => fill(' ,'), chain],
      ['chain: valid items, far too many', () => fill(`:${leafB64}:, `), chain],
    ]);
  });

  it('Traefik certificate list', () => {
    const read = header('x-forwarded-tls-client-cert', { proxy: 'traefik' });
    expectLinear('traefik', [
      ['commas', () => fill(','), read],
      ['escaped commas', () => fill('%2C'), read],
      ['valid items, far too many', () => fill(`${leafB64},`), read],
      ['quotes', () => fill('"'), read],
      ['percent signs', () => fill('%'), read],
    ]);
  });

  it("Envoy's x-forwarded-client-cert", () => {
    const cert = `Cert="${enc(leafPem)}"`;
    for (const options of [
      { proxy: 'envoy' },
      { proxy: 'envoy', element: -16, details: { cert: true, chain: true, subject: true } },
      { proxy: 'envoy', details: { chain: true, subject: true, uri: true, dns: true } },
    ] as CertificateFromHeadersOptions[]) {
      const read = header('x-forwarded-client-cert', options);
      expectLinear(
        `envoy ${JSON.stringify({ element: options.element, details: options.details })}`,
        [
          ['semicolons', () => fill(';'), read],
          ['commas', () => fill(','), read],
          ['quotes', () => fill('"'), read],
          ['backslashes', () => fill('\\'), read],
          ['equals signs', () => fill('='), read],
          ['a key without =', () => fill('a'), read],
          ['escaped quotes in one value', () => fill('\\"', 'Subject="', '"'), read],
          ['escaped quotes, unterminated', () => fill('\\"', 'Subject="'), read],
          ['escapes before one far quote', () => fill('\\a', 'Subject="', '"'), read],
          ['an unterminated quote', () => fill('a', 'Subject="'), read],
          ['many fields', () => fill('By=b;', '', 'By=b'), read],
          ['many elements', () => fill('By=b,', '', 'By=b'), read],
          ['many empty values', () => fill('URI=;', '', 'URI='), read],
          ['one long SAN', () => fill('a', `Hash=${hash};${cert};URI=`), read],
          [
            'Cert of encoded BEGIN fragments',
            () => fill(enc('-----BEGIN A-----'), `Hash=${hash};Cert="`, '"'),
            read,
          ],
          ['Cert of escapes', () => fill('%41', `Hash=${hash};Cert="`, '"'), read],
          ['valid elements, far too many', () => fill(`Hash=${hash};${cert},`), read],
          ['quote desync attempts', () => fill(`";${cert},"`), read],
        ],
      );
    }
  });

  it('PEM in the core (certificateThumbprint of a PEM text)', () => {
    const limit = MAX_CERTIFICATE_BYTES * 16;
    const thumb = (pem: string) => {
      // the parse is synchronous; only the digest awaits
      void certificateThumbprint(pem).catch(() => undefined);
    };
    expectLinear(
      'core PEM',
      [
        ['BEGIN fragments, no END', () => fill('-----BEGIN A-----', '', '', limit), thumb],
        [
          'BEGIN CERTIFICATE lines, no END',
          () => fill('-----BEGIN CERTIFICATE-----', '', '', limit),
          thumb,
        ],
        [
          'one BEGIN, then newlines',
          () => fill('\n', '-----BEGIN CERTIFICATE-----', '', limit),
          thumb,
        ],
        ['END lines', () => fill('-----END CERTIFICATE-----', '', '', limit), thumb],
        ['valid blocks', () => fill(leafPem, '', '', limit), thumb],
      ],
      MtlsArgumentError,
    );
  });

  it('RFC 4514 distinguished names (tls_client_auth_subject_dn)', () => {
    const n = 580;
    const values = Array.from({ length: n }, (_, i) => `CN=${i.toString(36)}`);
    const forward = values.join('+');
    const backward = [...values].reverse().join('+');
    const parse = (dn: string) => parseDistinguishedName(dn);
    expectLinear('DN', [
      ['one RDN of many attributes', fill('CN=a+', '', 'CN=a', 4096), parse],
      ['escaped hex pairs', fill('\\41', 'CN=', '', 4096), parse],
      ['many RDNs', fill('CN=a,', '', 'CN=a', 4096), parse],
      ['spaces', fill(' ', 'CN=', 'a', 4096), parse],
      [
        'equality of one RDN in reverse order',
        forward,
        () => expect(distinguishedNamesEqual(parse(forward)!, parse(backward)!)).toBe(true),
      ],
    ]);
    expect(forward.length).toBeLessThanOrEqual(4096);
  });
});
