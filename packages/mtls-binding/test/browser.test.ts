import { X509Certificate, hash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBinary } from '../../../test-support/binaries.ts';
import type { BundleInPage } from '../../../test-support/browser-bundle.ts';
import { bundleInChromium } from '../../../test-support/browser-bundle.ts';
import { CHROMIUM_INSTALL, CHROMIUM_PATH } from '../../../test-support/chromium.ts';
import type { TestPki } from '../../../test-support/pki.ts';
import { createTestPki } from '../../../test-support/pki.ts';

const available = requireBinary(CHROMIUM_PATH, CHROMIUM_INSTALL);

describe.skipIf(!available)('mtls-binding core in real headless Chromium (runtime-neutral)', () => {
  let env: BundleInPage;
  let pki: TestPki;
  beforeAll(async () => {
    pki = await createTestPki();
    env = await bundleInChromium(
      `export * from './src/index.ts';`,
      fileURLToPath(new URL('..', import.meta.url)),
    );
  }, 60_000);
  afterAll(() => env?.close());

  it('bundles without Node built-ins or node-forge', () => {
    // (pvtsutils, under @peculiar/asn1-schema, keeps a Buffer fallback for runtimes without btoa)
    expect(env.bundle).not.toMatch(/from ?["']node:|require\(["']node:|node-forge|undici/);
  });

  it('computes the same thumbprint as Node, checks bindings and matches tls_client_auth identities', async () => {
    const pem = pki.clientA.certPem;
    const other = pki.clientB.certPem;
    const result = await env.page.evaluate(
      async ({ pem, other }) => {
        const m = (window as any).popkit;
        const x5t = await m.certificateThumbprint(pem);
        const mismatch = await m.verifyCertificateBinding({ cnf: { 'x5t#S256': x5t } }, other).then(
          () => 'accepted',
          (e: any) => `${e.code}/${e.reason}`,
        );
        return {
          x5t,
          bound: await m.verifyCertificateBinding({ cnf: { 'x5t#S256': x5t } }, pem),
          mismatch,
          dn: m.matchesTlsClientAuth(pem, {
            tls_client_auth_subject_dn: 'CN=client-a,OU=Payments+UID=client-a,O=Acme\\, Inc.,C=US',
          }),
          ip: m.matchesTlsClientAuth(pem, { tls_client_auth_san_ip: '2001:DB8:0:0:0:0:0:A' }),
        };
      },
      { pem, other },
    );
    expect(result).toEqual({
      x5t: hash('sha256', new X509Certificate(pem).raw, 'base64url'),
      bound: hash('sha256', new X509Certificate(pem).raw, 'base64url'),
      mismatch: 'invalid_token/certificate_mismatch',
      dn: true,
      ip: true,
    });
  });
});
