import { X509Certificate, hash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { TestPki } from '../../../test-support/pki.ts';
import { createTestPki } from '../../../test-support/pki.ts';
import {
  MtlsArgumentError,
  MtlsBindingError,
  certificateConfirmation,
  certificateThumbprint,
  thumbprintFormatError,
  verifyCertificateBinding,
} from '../src/index.ts';

let pki: TestPki;
beforeAll(async () => {
  pki = await createTestPki();
});

/** RFC 8705 §3.1's example value. Its last character carries non-zero unused bits. */
const RFC8705_EXAMPLE = 'bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2';

describe('certificateThumbprint (RFC 8705 §3.1)', () => {
  it('is base64url SHA-256 of the DER, the same from PEM, DER, ArrayBuffer, node and @peculiar certificates', async () => {
    const pem = pki.clientA.certPem;
    const node = new X509Certificate(pem);
    const expected = hash('sha256', node.raw, 'base64url');
    expect(expected).toMatch(/^[A-Za-z0-9_-]{43}$/);
    for (const input of [
      pem,
      new Uint8Array(node.raw),
      node.raw.buffer.slice(node.raw.byteOffset, node.raw.byteOffset + node.raw.byteLength),
      node,
      pki.clientA.cert,
    ]) {
      expect(await certificateThumbprint(input as never)).toBe(expected);
    }
    // the hex fingerprint Node prints is the same digest, in another encoding
    expect(Buffer.from(node.fingerprint256.replace(/:/g, ''), 'hex').toString('base64url')).toBe(
      expected,
    );
    expect(await certificateConfirmation(pem)).toEqual({ 'x5t#S256': expected });
  });

  it('refuses a bundle unless leaf: "first", never hashing the PEM text', async () => {
    const bundle = pki.clientA.certPem + pki.intermediate.certPem;
    await expect(certificateThumbprint(bundle)).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG_VALUE',
      message: expect.stringContaining('bundle of 2'),
    });
    expect(await certificateThumbprint(bundle, { leaf: 'first' })).toBe(
      await certificateThumbprint(pki.clientA.certPem),
    );
  });

  it('rejects garbage with a typed error', async () => {
    for (const bad of [
      '',
      'not pem',
      '-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----',
      pki.clientA.keyPem,
      new Uint8Array([1, 2, 3]),
      42,
      null,
      {},
    ]) {
      await expect(certificateThumbprint(bad as never)).rejects.toBeInstanceOf(MtlsArgumentError);
    }
  });

  it('reads PEM with one forward scan: text around blocks is fine, a malformed block is not', async () => {
    const pem = pki.clientA.certPem;
    const expected = await certificateThumbprint(pem);
    // OpenSSL's "Bag Attributes" and other text around the blocks are ignored
    expect(await certificateThumbprint(`Bag Attributes\n    localKeyID: 01\n${pem}trailer`)).toBe(
      expected,
    );
    // line breaks replaced by spaces or stripped, CRLF: whitespace in the body is ignored
    expect(await certificateThumbprint(pem.replace(/\n/g, ' '))).toBe(expected);
    expect(await certificateThumbprint(pem.replace(/\n/g, ''))).toBe(expected);
    expect(await certificateThumbprint(pem.replace(/\n/g, '\r\n'))).toBe(expected);
    const body = pem.replace(/-----[^-]+-----|\s/g, '');
    for (const bad of [
      `-----BEGIN CERTIFICATE-----\n${body}\n`, // no END line
      `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE----`, // END line cut short
      `-----BEGIN CERTIFICATE-----\n${body}\n-----END X509 CRL-----`, // END of another label
      `-----BEGIN CERTIFICATE\n${body}`, // BEGIN line not closed
      `-----BEGIN certificate-----\n${body}\n-----END certificate-----`, // not an RFC 7468 label
      `-----BEGIN ${'A'.repeat(65)}-----\n${body}\n-----END ${'A'.repeat(65)}-----`,
      `${pem}-----BEGIN CERTIFICATE-----`, // a valid block, then an unterminated one
      `-----END CERTIFICATE-----\n${body}`, // END without BEGIN: no block at all
      `-----BEGIN CERTIFICATE-----${body}${body}-----END CERTIFICATE-----`, // trailing bytes
    ]) {
      await expect(certificateThumbprint(bad)).rejects.toBeInstanceOf(MtlsArgumentError);
    }
    // a key block is refused by name, wherever it stands
    await expect(
      certificateThumbprint(pem + pki.clientA.keyPem, { leaf: 'first' }),
    ).rejects.toThrow(/found PRIVATE KEY/);
  });

  it('a re-issued certificate with the same key has a different thumbprint (rotation, RFC 8705 §6.3)', async () => {
    expect(await certificateThumbprint(pki.clientAReissued.certPem)).not.toBe(
      await certificateThumbprint(pki.clientA.certPem),
    );
  });
});

describe('thumbprintFormatError: the look-alike encodings', () => {
  it('names each mistake', async () => {
    const good = await certificateThumbprint(pki.clientA.certPem);
    const bytes = Buffer.from(good, 'base64url');
    const cases: Array<[string, string | undefined]> = [
      [good, undefined],
      [bytes.toString('hex'), 'thumbprint_hex'],
      [bytes.toString('hex').toUpperCase(), 'thumbprint_hex'],
      [
        bytes
          .toString('hex')
          .toUpperCase()
          .replace(/(..)(?!$)/g, '$1:'),
        'thumbprint_colon_hex',
      ],
      [`${good}=`, 'thumbprint_padded'],
      [bytes.toString('base64'), 'thumbprint_padded'],
      [RFC8705_EXAMPLE, 'thumbprint_non_canonical'],
      [good.slice(0, 42), 'thumbprint_malformed'],
      [`${good} `, 'thumbprint_malformed'],
      ['', 'thumbprint_malformed'],
    ];
    for (const [value, reason] of cases) expect(thumbprintFormatError(value), value).toBe(reason);
    expect(thumbprintFormatError('+'.repeat(43))).toBe('thumbprint_standard_base64');
    expect(thumbprintFormatError(42)).toBe('thumbprint_malformed');
  });
});

describe('verifyCertificateBinding', () => {
  it('accepts JWT claims, introspection responses and bare cnf objects bound to the certificate', async () => {
    const x5t = await certificateThumbprint(pki.clientA.certPem);
    expect(
      await verifyCertificateBinding({ sub: 'a', cnf: { 'x5t#S256': x5t } }, pki.clientA.certPem),
    ).toBe(x5t);
    expect(
      await verifyCertificateBinding(
        { active: true, token_type: 'Bearer', cnf: { 'x5t#S256': x5t } },
        pki.clientA.cert,
      ),
    ).toBe(x5t);
    expect(
      await verifyCertificateBinding({ 'x5t#S256': x5t }, new X509Certificate(pki.clientA.certPem)),
    ).toBe(x5t);
  });

  it('rejects missing certificates, other certificates, unbound tokens and look-alike values as invalid_token 401', async () => {
    const x5t = await certificateThumbprint(pki.clientA.certPem);
    const check = async (claims: object, cert: unknown, reason: string) => {
      const error = await verifyCertificateBinding(claims as never, cert as never).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(MtlsBindingError);
      expect(error).toMatchObject({ code: 'invalid_token', status: 401, reason });
      expect((error as MtlsBindingError).wwwAuthenticate).toMatch(
        /^Bearer error="invalid_token", error_description="/,
      );
      expect((error as MtlsBindingError).message).not.toContain(x5t);
      // the verifier's DPoPError shape: one serialiser answers both
      const e = error as MtlsBindingError;
      expect(e.headers).toEqual({
        'WWW-Authenticate': e.wwwAuthenticate,
        'Cache-Control': 'no-store',
      });
      expect(e.body).toBeUndefined();
      const response = e.toResponse();
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe(e.wwwAuthenticate);
      expect(response.headers.get('cache-control')).toBe('no-store');
    };
    await check({ cnf: { 'x5t#S256': x5t } }, undefined, 'certificate_missing');
    await check({ cnf: { 'x5t#S256': x5t } }, null, 'certificate_missing');
    await check({ cnf: { 'x5t#S256': x5t } }, pki.clientB.certPem, 'certificate_mismatch');
    await check({ cnf: { 'x5t#S256': x5t } }, pki.clientAReissued.certPem, 'certificate_mismatch');
    await check({ cnf: { jkt: x5t } }, pki.clientA.certPem, 'cnf_missing');
    await check({}, pki.clientA.certPem, 'cnf_missing');
    await check(
      { cnf: { 'x5t#S256': Buffer.from(x5t, 'base64url').toString('hex') } },
      pki.clientA.certPem,
      'thumbprint_hex',
    );
    await check({ cnf: { 'x5t#S256': `${x5t}=` } }, pki.clientA.certPem, 'thumbprint_padded');
    await check(
      { cnf: { 'x5t#S256': RFC8705_EXAMPLE } },
      pki.clientA.certPem,
      'thumbprint_non_canonical',
    );
  });
});
