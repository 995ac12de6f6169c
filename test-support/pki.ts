import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Issued } from '../examples/shared/src/pki.ts';

export { createTestPki } from '../examples/shared/src/pki.ts';
export type { Issued, TestPki } from '../examples/shared/src/pki.ts';

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
