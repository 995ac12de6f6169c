import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createPublicKey } from 'node:crypto';
import { jwtVerify } from 'jose';
import type { DPoPError, TokenClaims } from '@popkit/dpop-verifier';
import { createDPoPAuth, createProofVerifier } from '@popkit/dpop-verifier';
import type { Fixture } from '../fixtures/fixtures.ts';
import { AUDIENCE, AUTHORIZATION_SERVER, ISSUER } from '../fixtures/fixtures.ts';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const BIN = `${ROOT}node_modules/.bin/popkit`;

/** The CLI arguments for a fixture. */
export function cliArgs(fixture: Fixture): string[] {
  const { request, server } = fixture;
  const args = ['explain', '--json', '--method', request.method, '--url', request.url];
  args.push('--now', request.now);
  for (const d of request.dpop) args.push('--dpop', d);
  for (const a of request.authorization) args.push('--authorization', a);
  if (request.nonce !== undefined) args.push('--nonce', request.nonce);
  if (server.allowUnboundBearer === true) args.push('--allow-unbound-bearer');
  return args;
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command as a real process (killed after 30 s), with optional stdin. */
export function run(file: string, args: string[], stdin?: string, cwd = ROOT): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { cwd, timeout: 30_000, encoding: 'utf8' },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        if (code === -1) reject(error);
        else resolve({ code, stdout, stderr });
      },
    );
    if (stdin !== undefined) child.stdin!.end(stdin);
    else child.stdin!.end();
  });
}

const asPublicKey = createPublicKey(AUTHORIZATION_SERVER.key);

/** The real verifier's verdict on a fixture: `null` when accepted, else the refusal. */
export async function verdict(fixture: Fixture): Promise<DPoPError | null> {
  const { request } = fixture;
  const nowMs = Date.parse(request.now);
  try {
    if (fixture.verifier === 'proof') {
      const verify = createProofVerifier({ replay: false, now: () => nowMs });
      await verify(request.dpop[0] ?? '', {
        method: request.method,
        url: request.url,
        ...(request.nonce === undefined ? {} : { nonce: request.nonce }),
      });
    } else {
      const auth = createDPoPAuth({
        accessToken: async (token) =>
          (
            await jwtVerify(token, asPublicKey, {
              issuer: ISSUER,
              audience: AUDIENCE,
              typ: 'at+jwt',
              currentDate: new Date(nowMs),
            })
          ).payload as TokenClaims,
        replay: false,
        dangerouslyTrustRequestUrl: true,
        now: () => nowMs,
        ...fixture.server,
      });
      const rawHeaders: string[] = [];
      for (const a of request.authorization) rawHeaders.push('Authorization', a);
      for (const d of request.dpop) rawHeaders.push('DPoP', d);
      await auth.verify({ method: request.method, url: request.url, headers: {}, rawHeaders });
    }
    return null;
  } catch (e) {
    return e as DPoPError;
  }
}

/** Runs `fn` over `items`, `limit` at a time. */
export async function pool<T, R>(
  items: readonly T[],
  limit: number,
  fn: (t: T) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
