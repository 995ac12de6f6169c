import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';

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
const nextSerial = () => (serial++).toString(16).padStart(2, '0');

async function issue(options: {
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
  const notAfter = new Date(Date.now() + 30 * 86400_000);
  const cert = options.issuer
    ? await x509.X509CertificateGenerator.create({
        serialNumber: nextSerial(),
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
        serialNumber: nextSerial(),
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

/** A complete test PKI: CA, intermediate, server certificate for 127.0.0.1, and client certificates. */
export interface TestPki {
  ca: Issued;
  intermediate: Issued;
  server: Issued;
  /** EC client certificate issued by the intermediate, with DN and SANs. */
  clientA: Issued;
  /** clientA's key re-issued in a new certificate (rotation: new thumbprint). */
  clientAReissued: Issued;
  /** RSA client certificate issued by the CA. */
  clientB: Issued;
  /** A self-signed certificate no CA vouches for. */
  selfSigned: Issued;
}

/** Generates the test PKI with @peculiar/x509 (subjects given in ASN.1 order: C first). */
export async function createTestPki(): Promise<TestPki> {
  const ca = await issue({ subject: 'C=US, O=popkit test, CN=popkit Test Root CA', ca: true });
  const intermediate = await issue({
    subject: 'C=US, O=popkit test, CN=popkit Test Issuing CA',
    ca: true,
    issuer: ca,
  });
  const server = await issue({
    subject: 'C=US, O=popkit test, CN=localhost',
    issuer: ca,
    serverAuth: true,
    san: [
      { type: 'dns', value: 'localhost' },
      { type: 'ip', value: '127.0.0.1' },
    ],
  });
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

/**
 * A PKCS#12 file made by the `openssl` command: `modern` (OpenSSL 3 default: PBES2/AES-256,
 * PBKDF2) or `legacy` (RC2-40 certificates, 3DES key, SHA-1 MAC).
 */
export function opensslPkcs12(
  issued: Issued,
  chain: Issued[],
  password: string,
  kind: 'modern' | 'legacy',
): Uint8Array {
  const dir = mkdtempSync(join(tmpdir(), 'popkit-p12-'));
  try {
    writeFileSync(join(dir, 'cert.pem'), issued.certPem);
    writeFileSync(join(dir, 'key.pem'), issued.keyPem);
    writeFileSync(join(dir, 'chain.pem'), chain.map((c) => c.certPem).join(''));
    const args = [
      'pkcs12',
      '-export',
      '-in',
      'cert.pem',
      '-inkey',
      'key.pem',
      '-out',
      'out.p12',
      '-passout',
      `pass:${password}`,
    ];
    if (chain.length) args.push('-certfile', 'chain.pem');
    if (kind === 'legacy') args.push('-legacy');
    execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    return new Uint8Array(readFileSync(join(dir, 'out.p12')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
