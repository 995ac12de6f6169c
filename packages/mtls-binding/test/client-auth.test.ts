import { beforeAll, describe, expect, it } from 'vitest';
import type { TestPki } from '../../../test-support/pki.ts';
import { createTestPki } from '../../../test-support/pki.ts';
import {
  distinguishedNamesEqual,
  matchSelfSignedTlsClientAuth,
  matchesTlsClientAuth,
  parseDistinguishedName,
} from '../src/index.ts';

let pki: TestPki;
beforeAll(async () => {
  pki = await createTestPki();
});

describe('parseDistinguishedName (RFC 4514)', () => {
  it('parses escapes, multi-valued RDNs, OIDs and hex values', () => {
    expect(parseDistinguishedName('CN=a\\,b,O=x\\+y+OU=z, 2.5.4.6=US')).toEqual([
      [{ type: '2.5.4.3', value: 'a,b' }],
      [
        { type: '2.5.4.10', value: 'x+y' },
        { type: '2.5.4.11', value: 'z' },
      ],
      [{ type: '2.5.4.6', value: 'US' }],
    ]);
    expect(parseDistinguishedName('CN=#0c0568656c6c6f')).toEqual([
      [{ type: '2.5.4.3', value: 'hello' }],
    ]);
    expect(parseDistinguishedName('CN=caf\\C3\\A9')).toEqual([
      [{ type: '2.5.4.3', value: 'café' }],
    ]);
    expect(parseDistinguishedName('CN=\\ lead')).toEqual([[{ type: '2.5.4.3', value: ' lead' }]]);
    for (const bad of ['CN', 'XX=1', 'CN=a,', 'CN=a\\', 'CN=a"b', 'CN=#zz'])
      expect(parseDistinguishedName(bad), bad).toBeUndefined();
  });
});

describe('tls_client_auth (RFC 8705 §2.1.2)', () => {
  it('matches the subject DN as structured RDNs in RFC 4514 order', () => {
    const cert = pki.clientA.certPem;
    const yes = [
      'CN=client-a,OU=Payments+UID=client-a,O=Acme\\, Inc.,C=US',
      'cn=CLIENT-A, uid=client-a+ou=payments, o=acme\\, inc., c=us', // case, spaces, RDN set order
      'CN=client-a,OU=Payments+0.9.2342.19200300.100.1.1=client-a,O=Acme\\2C Inc.,C=US', // OID, hex escape
    ];
    const no = [
      'C=US,O=Acme\\, Inc.,OU=Payments+UID=client-a,CN=client-a', // ASN.1 order is not RFC 4514 order
      'CN=client-a,OU=Payments,O=Acme\\, Inc.,C=US', // missing one value of a multi-valued RDN
      'CN=client-a,OU=Payments+UID=client-a,O=Acme Inc.,C=US',
      'CN=client-a,OU=Payments+UID=client-a,O=Acme\\, Inc.,C=US,DC=extra',
      'CN=client-b,O=Other Corp,C=US',
    ];
    for (const dn of yes)
      expect(matchesTlsClientAuth(cert, { tls_client_auth_subject_dn: dn }), dn).toBe(true);
    for (const dn of no)
      expect(matchesTlsClientAuth(cert, { tls_client_auth_subject_dn: dn }), dn).toBe(false);
  });

  it('compares each attribute by its own equality rule (RFC 5280 §7.1, RFC 4517/4518), or exactly', () => {
    const eq = (a: string, b: string, matching?: 'rfc4518' | 'exact') =>
      distinguishedNamesEqual(parseDistinguishedName(a)!, parseDistinguishedName(b)!, matching);
    // directory strings: caseIgnoreMatch after LDAP string preparation (NFKC, case fold, spaces)
    expect(eq('CN=Client  A,O=Acme', 'cn=client a,o=ACME')).toBe(true);
    expect(eq('CN=ｃｌｉｅｎｔ', 'CN=client')).toBe(true); // NFKC, as RFC 4518 §2.3 requires
    expect(eq('CN=client²', 'CN=client2')).toBe(true); // likewise; use 'exact' to refuse it
    // IA5 attributes (DC, emailAddress): ASCII case only, no Unicode folding
    expect(eq('DC=Example,DC=COM', 'dc=example,dc=com')).toBe(true);
    expect(eq('DC=ｅxample', 'DC=example')).toBe(false);
    expect(eq('E=Client@Example.com', 'emailAddress=client@example.com')).toBe(true);
    // attribute types without a known rule: exact
    expect(eq('2.5.4.65=Pseudo', '2.5.4.65=pseudo')).toBe(false);
    expect(eq('2.5.4.65=Pseudo', '2.5.4.65=Pseudo')).toBe(true);
    // exact mode: no folding at all
    expect(eq('CN=Client', 'CN=client', 'exact')).toBe(false);
    expect(eq('CN=client²', 'CN=client2', 'exact')).toBe(false);
    expect(eq('CN=client,O=Acme', 'CN=client,O=Acme', 'exact')).toBe(true);
    expect(() => eq('CN=a', 'CN=a', 'loose' as never)).toThrow(/matching/);
    // multi-valued RDNs are sets: any order, but the same attributes as many times
    expect(eq('CN=a+OU=b+UID=c,O=x', 'UID=c+CN=A+OU=b,O=x')).toBe(true);
    expect(eq('CN=a+CN=a+CN=b', 'CN=a+CN=b+CN=b')).toBe(false);
    expect(eq('CN=a+OU=a', 'OU=a+OU=a')).toBe(false);
    expect(eq('CN=a+CN=b', 'CN=a,CN=b')).toBe(false);
    // and comparing the largest RDN the parser accepts stays cheap (each value prepared once)
    const values = Array.from({ length: 580 }, (_, i) => `CN=${i.toString(36)}`);
    const started = performance.now();
    expect(eq(values.join('+'), [...values].reverse().join('+'))).toBe(true);
    expect(performance.now() - started).toBeLessThan(100); // was ~180 ms: one NFKC per pair
    // through tls_client_auth
    expect(
      matchesTlsClientAuth(
        pki.clientA.certPem,
        { tls_client_auth_subject_dn: 'cn=CLIENT-A,ou=Payments+uid=client-a,o=Acme\\, Inc.,c=US' },
        { dnMatching: 'exact' },
      ),
    ).toBe(false);
  });

  it('matches SANs: dns (any case), uri and email exactly, ip as bytes', () => {
    const cert = pki.clientA.cert;
    const cases: Array<[object, boolean]> = [
      [{ tls_client_auth_san_dns: 'client-a.example.com' }, true],
      [{ tls_client_auth_san_dns: 'CLIENT-A.example.COM' }, true],
      [{ tls_client_auth_san_dns: 'client-b.example.com' }, false],
      [{ tls_client_auth_san_dns: '*.example.com' }, false],
      [{ tls_client_auth_san_uri: 'spiffe://example.com/client-a' }, true],
      [{ tls_client_auth_san_uri: 'spiffe://example.com/client-a/' }, false],
      [{ tls_client_auth_san_email: 'client-a@example.com' }, true],
      [{ tls_client_auth_san_email: 'client-b@example.com' }, false],
      [{ tls_client_auth_san_ip: '2001:db8::a' }, true],
      [{ tls_client_auth_san_ip: '2001:DB8:0:0:0:0:0:A' }, true],
      [{ tls_client_auth_san_ip: '2001:0db8:0000::000a' }, true],
      [{ tls_client_auth_san_ip: '[2001:db8::a]' }, true],
      [{ tls_client_auth_san_ip: '2001:db8::b' }, false],
      [{ tls_client_auth_san_ip: '192.0.2.10' }, true],
      [{ tls_client_auth_san_ip: '::ffff:192.0.2.10' }, false], // a different address family is a different address
      [{ tls_client_auth_san_ip: '192.0.2.010' }, false],
      [{ tls_client_auth_san_ip: 'not-an-ip' }, false],
    ];
    for (const [metadata, expected] of cases)
      expect(matchesTlsClientAuth(cert, metadata), JSON.stringify(metadata)).toBe(expected);
  });

  it('requires exactly one tls_client_auth_* field', () => {
    expect(() => matchesTlsClientAuth(pki.clientA.certPem, {})).toThrow(/exactly one/);
    expect(() =>
      matchesTlsClientAuth(pki.clientA.certPem, {
        tls_client_auth_san_dns: 'a',
        tls_client_auth_san_uri: 'b',
      }),
    ).toThrow(/exactly one/);
  });
});

describe('self_signed_tls_client_auth (RFC 8705 §2.2)', () => {
  it('finds the JWKS key whose x5c leaf is the presented certificate', async () => {
    const x5c = (pem: string) => [pem.replace(/-----[A-Z ]+-----|\s/g, '')];
    const jwks = {
      keys: [
        { kty: 'EC', kid: 'other', x5c: x5c(pki.clientB.certPem) },
        { kty: 'EC', kid: 'no-x5c' },
        { kty: 'EC', kid: 'broken', x5c: ['!!!'] },
        { kty: 'EC', kid: 'mine', x5c: x5c(pki.selfSigned.certPem) },
      ],
    };
    expect((await matchSelfSignedTlsClientAuth(pki.selfSigned.certPem, jwks))?.kid).toBe('mine');
    expect(await matchSelfSignedTlsClientAuth(pki.clientA.certPem, jwks)).toBeUndefined();
  });
});
