// A complete test PKI made with @peculiar/x509: a root CA, an issuing CA, a TLS server
// certificate for 127.0.0.1/localhost, and client certificates. Used by the examples (written
// once to examples/.pki, git-ignored) and by the test suites (in memory).
import 'reflect-metadata';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import forge from 'node-forge';

const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const RSA = {
  name: 'RSASSA-PKCS1-v1_5',
  hash: 'SHA-256',
  publicExponent: new Uint8Array([1, 0, 1]),
  modulusLength: 2048,
} as const;

/** A certificate with its key, as PEM. */
export interface Issued {
  cert: x509.X509Certificate;
  certPem: string;
  keyPem: string;
  keys: CryptoKeyPair;
}

async function pkcs8Pem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await crypto.subtle.exportKey('pkcs8', key));
  return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').replace(/.{1,64}/g, '$&\n')}-----END PRIVATE KEY-----\n`;
}

let serial = 1;

/** Issues one certificate (self-signed when no issuer). Subjects are in ASN.1 order (C first). */
export async function issue(options: {
  subject: string | x509.JsonName;
  issuer?: Issued;
  keys?: CryptoKeyPair;
  alg?: 'EC' | 'RSA';
  ca?: boolean;
  san?: x509.JsonGeneralNames;
  serverAuth?: boolean;
}): Promise<Issued> {
  const alg = options.alg === 'RSA' ? RSA : EC;
  const keys =
    options.keys ??
    ((await crypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair);
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(options.ca === true, undefined, true),
    new x509.KeyUsagesExtension(
      options.ca
        ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign
        : x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
      true,
    ),
  ];
  if (!options.ca)
    extensions.push(
      new x509.ExtendedKeyUsageExtension([
        options.serverAuth ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth,
      ]),
    );
  if (options.san) extensions.push(new x509.SubjectAlternativeNameExtension(options.san));
  const notBefore = new Date(Date.now() - 3600_000);
  const notAfter = new Date(Date.now() + 365 * 86400_000);
  const serialNumber = (Date.now() * 1000 + serial++).toString(16);
  const cert = options.issuer
    ? await x509.X509CertificateGenerator.create({
        serialNumber,
        subject: options.subject,
        issuer: options.issuer.cert.subject,
        notBefore,
        notAfter,
        signingAlgorithm: options.issuer.keys.privateKey.algorithm.name === 'ECDSA' ? EC : RSA,
        publicKey: keys.publicKey,
        signingKey: options.issuer.keys.privateKey,
        extensions,
      })
    : await x509.X509CertificateGenerator.createSelfSigned({
        serialNumber,
        name: options.subject,
        notBefore,
        notAfter,
        signingAlgorithm: alg,
        keys,
        extensions,
      });
  return {
    cert,
    certPem: `${cert.toString('pem').trimEnd()}\n`,
    keyPem: await pkcs8Pem(keys.privateKey),
    keys,
  };
}

/** A TLS server certificate for localhost and 127.0.0.1, issued by `ca`. */
function localhostServer(ca: Issued, organization: string): Promise<Issued> {
  return issue({
    subject: `C=US, O=${organization}, CN=localhost`,
    issuer: ca,
    serverAuth: true,
    san: [
      { type: 'dns', value: 'localhost' },
      { type: 'ip', value: '127.0.0.1' },
    ],
  });
}

/** The PKI the examples and tests use. */
export interface TestPki {
  ca: Issued;
  intermediate: Issued;
  /** TLS server certificate for localhost and 127.0.0.1, issued by the root. */
  server: Issued;
  /** EC client certificate issued by the intermediate, with a multi-valued RDN and SANs. */
  clientA: Issued;
  /** clientA's key in a re-issued certificate (rotation: a new thumbprint). */
  clientAReissued: Issued;
  /** RSA client certificate issued by the root. */
  clientB: Issued;
  /** A self-signed certificate no CA vouches for. */
  selfSigned: Issued;
}

/** Generates the PKI in memory (about 0.3 s, RSA key generation included). */
export async function createTestPki(): Promise<TestPki> {
  const ca = await issue({ subject: 'C=US, O=popkit test, CN=popkit Test Root CA', ca: true });
  const intermediate = await issue({
    subject: 'C=US, O=popkit test, CN=popkit Test Issuing CA',
    ca: true,
    issuer: ca,
  });
  const server = await localhostServer(ca, 'popkit test');
  const san: x509.JsonGeneralNames = [
    { type: 'dns', value: 'client-a.example.com' },
    { type: 'url', value: 'spiffe://example.com/client-a' },
    { type: 'email', value: 'client-a@example.com' },
    { type: 'ip', value: '2001:db8::a' },
    { type: 'ip', value: '192.0.2.10' },
  ];
  const subjectA: x509.JsonName = [
    { C: ['US'] },
    { O: ['Acme, Inc.'] },
    { OU: ['Payments'], '0.9.2342.19200300.100.1.1': ['client-a'] },
    { CN: ['client-a'] },
  ];
  const clientA = await issue({ subject: subjectA, issuer: intermediate, san });
  const clientAReissued = await issue({
    subject: subjectA,
    issuer: intermediate,
    san,
    keys: clientA.keys,
  });
  const clientB = await issue({
    subject: 'C=US, O=Other Corp, CN=client-b',
    issuer: ca,
    alg: 'RSA',
  });
  const selfSigned = await issue({ subject: 'CN=self-signed client' });
  return { ca, intermediate, server, clientA, clientAReissued, clientB, selfSigned };
}

/** A PKCS#12 file (3DES, SHA-1 MAC: the widely readable legacy profile) made with node-forge; RSA keys only. */
export function pkcs12(issued: Issued, chain: Issued[], password: string): Uint8Array {
  const key = forge.pki.privateKeyFromPem(issued.keyPem);
  const certs = [issued, ...chain].map((c) => forge.pki.certificateFromPem(c.certPem));
  const asn1 = forge.pkcs12.toPkcs12Asn1(key, certs, password, { algorithm: '3des' });
  return new Uint8Array(Buffer.from(forge.asn1.toDer(asn1).getBytes(), 'binary'));
}

/** The files the examples read: PEM certificates and keys, and the service client's .p12. */
export interface DemoPki {
  dir: string;
  caPem: string;
  server: { certPem: string; keyPem: string };
  /** The mTLS service client (tls_client_auth), RSA, subject `CN=service-mtls,O=popkit demo,C=US`. */
  serviceP12: Uint8Array;
  serviceP12Password: string;
  /** Another client's certificate, as a thief would present it. */
  other: { certPem: string; keyPem: string };
}

/** The subject DN the authorization server registers for the mTLS service client (RFC 4514). */
export const SERVICE_SUBJECT_DN = 'CN=service-mtls,O=popkit demo,C=US';

/**
 * Loads the demo PKI from `dir`, generating it on first run (CA, server certificate for
 * 127.0.0.1, the service client's .p12, and another client certificate).
 */
export async function ensureDemoPki(dir: string): Promise<DemoPki> {
  const file = (name: string) => join(dir, name);
  const password = 'popkit-demo';
  if (!existsSync(file('service.p12'))) {
    mkdirSync(dir, { recursive: true });
    // RSA CA: node-forge (which writes the .p12) re-encodes certificates, faithfully only for RSA signatures.
    const ca = await issue({
      subject: 'C=US, O=popkit demo, CN=popkit Demo CA',
      ca: true,
      alg: 'RSA',
    });
    const server = await localhostServer(ca, 'popkit demo');
    const service = await issue({
      subject: 'C=US, O=popkit demo, CN=service-mtls',
      issuer: ca,
      alg: 'RSA',
    });
    const other = await issue({ subject: 'C=US, O=elsewhere, CN=another-client', issuer: ca });
    writeFileSync(file('ca.pem'), ca.certPem);
    writeFileSync(file('server.pem'), server.certPem);
    writeFileSync(file('server.key'), server.keyPem, { mode: 0o600 });
    writeFileSync(file('other.pem'), other.certPem);
    writeFileSync(file('other.key'), other.keyPem, { mode: 0o600 });
    writeFileSync(file('service.p12'), pkcs12(service, [], password), { mode: 0o600 });
  }
  return {
    dir,
    caPem: readFileSync(file('ca.pem'), 'utf8'),
    server: {
      certPem: readFileSync(file('server.pem'), 'utf8'),
      keyPem: readFileSync(file('server.key'), 'utf8'),
    },
    serviceP12: new Uint8Array(readFileSync(file('service.p12'))),
    serviceP12Password: password,
    other: {
      certPem: readFileSync(file('other.pem'), 'utf8'),
      keyPem: readFileSync(file('other.key'), 'utf8'),
    },
  };
}
