import { X509Certificate, createPrivateKey } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type forgeModule from 'node-forge';
import { optionalPeer } from './optional.ts';
import { MtlsArgumentError } from '../errors.ts';
import { certificateThumbprint } from '../thumbprint.ts';

/** What a PKCS#12 (`.p12` / `.pfx`) file holds, ready for TLS. */
export interface Pkcs12Contents {
  /** The client certificate (the one matching the private key), PEM. */
  certificate: string;
  /** The private key as a Node `KeyObject`. */
  privateKey: KeyObject;
  /** The private key as PKCS#8 PEM (for TLS options; keep it out of logs). */
  privateKeyPem: string;
  /** The other certificates of the file (intermediates, CA), PEM. */
  chain: string[];
  /** RFC 8705 `x5t#S256` of the client certificate. */
  thumbprint: string;
}

function pkcs12Error(message: string, cause?: unknown): MtlsArgumentError {
  return new MtlsArgumentError(
    'ERR_INVALID_ARG_VALUE',
    `"file" cannot be read as PKCS#12: ${message}`,
    cause === undefined ? undefined : { cause },
  );
}

function toPem(der: Uint8Array, label: string): string {
  const b64 = Buffer.from(der).toString('base64');
  return `-----BEGIN ${label}-----\n${b64.replace(/.{1,64}/g, '$&\n')}-----END ${label}-----\n`;
}

function derOf(forge: typeof forgeModule, asn1: forgeModule.asn1.Asn1): Uint8Array {
  return Buffer.from(forge.asn1.toDer(asn1).getBytes(), 'binary');
}

/**
 * Reads a PKCS#12 file: modern ones (PBES2 with AES and PBKDF2, OpenSSL 3's default) and legacy
 * ones (RC2-40 / 3DES with SHA-1, as older OpenSSL, Windows and Java export them, which Node's
 * own TLS stack refuses). Returns the client certificate (the one whose public key matches the
 * private key), its key, the remaining chain and its `x5t#S256`. EC and RSA keys.
 * Throws {@link MtlsArgumentError} `ERR_PKCS12` for a wrong password, a corrupt file, or a file
 * without exactly one private key and its certificate. Uses node-forge (Node-only entry).
 *
 * @example
 * ```ts
 * const { certificate, privateKeyPem, thumbprint } = await loadPkcs12(await readFile('client.p12'), process.env.P12_PASSWORD!);
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc7292
 */
export async function loadPkcs12(
  file: Uint8Array | ArrayBuffer,
  password: string,
): Promise<Pkcs12Contents> {
  const bytes = file instanceof ArrayBuffer ? new Uint8Array(file) : file;
  if (!(bytes instanceof Uint8Array) || bytes.length === 0 || bytes.length > 1 << 20) {
    throw new MtlsArgumentError(
      'ERR_INVALID_ARG_TYPE',
      '"file" must be the bytes of a PKCS#12 file (at most 1 MiB)',
    );
  }
  if (typeof password !== 'string')
    throw new MtlsArgumentError('ERR_INVALID_ARG_TYPE', '"password" must be a string');
  const forge = (await optionalPeer<{ default: typeof forgeModule }>('node-forge', 'loadPkcs12'))
    .default;
  let p12: forgeModule.pkcs12.Pkcs12Pfx;
  // forge re-encodes the certificates it parses, and its encoding is not always the original
  // (ECDSA signature algorithms gain NULL parameters), which would change the thumbprint and
  // break the signature. Keep the original DER of every certificate it parses. forge is
  // synchronous, so the wrapper is in place for this call only.
  const originals = new WeakMap<object, Uint8Array>();
  const parse = forge.pki.certificateFromAsn1;
  forge.pki.certificateFromAsn1 = (obj, computeHash) => {
    const cert = parse(obj, computeHash);
    originals.set(cert, derOf(forge, obj));
    return cert;
  };
  try {
    const asn1 = forge.asn1.fromDer(forge.util.createBuffer(Buffer.from(bytes).toString('binary')));
    p12 = forge.pkcs12.pkcs12FromAsn1(asn1, false, password);
  } catch (cause) {
    throw pkcs12Error('the PKCS#12 file cannot be read: wrong password or corrupt file', cause);
  } finally {
    forge.pki.certificateFromAsn1 = parse;
  }
  const keys: KeyObject[] = [];
  for (const type of [forge.pki.oids.pkcs8ShroudedKeyBag!, forge.pki.oids.keyBag!]) {
    for (const bag of p12.getBags({ bagType: type })[type] ?? []) {
      try {
        if (bag.key) keys.push(createPrivateKey(forge.pki.privateKeyToPem(bag.key)));
        else if (bag.asn1)
          keys.push(
            createPrivateKey({
              key: Buffer.from(derOf(forge, bag.asn1)),
              format: 'der',
              type: 'pkcs8',
            }),
          );
      } catch (cause) {
        throw pkcs12Error('the PKCS#12 private key cannot be read', cause);
      }
    }
  }
  if (keys.length !== 1)
    throw pkcs12Error(`expected one private key in the PKCS#12 file, found ${keys.length}`);
  const privateKey = keys[0]!;
  const certs: X509Certificate[] = [];
  for (const bag of p12.getBags({ bagType: forge.pki.oids.certBag! })[forge.pki.oids.certBag!] ??
    []) {
    try {
      const der = bag.cert
        ? derOf(forge, forge.pki.certificateToAsn1(bag.cert))
        : bag.asn1
          ? derOf(forge, bag.asn1)
          : undefined;
      if (der) certs.push(new X509Certificate(der));
    } catch (cause) {
      throw pkcs12Error('a PKCS#12 certificate cannot be read', cause);
    }
  }
  const leafIndex = certs.findIndex((c) => c.checkPrivateKey(privateKey));
  if (leafIndex < 0) throw pkcs12Error('the PKCS#12 file has no certificate for its private key');
  const leaf = certs[leafIndex]!;
  return {
    certificate: toPem(leaf.raw, 'CERTIFICATE'),
    privateKey,
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    chain: certs.filter((_, i) => i !== leafIndex).map((c) => toPem(c.raw, 'CERTIFICATE')),
    thumbprint: await certificateThumbprint(leaf.raw),
  };
}
