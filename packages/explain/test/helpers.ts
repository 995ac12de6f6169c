import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLocalJWKSet, jwtVerify } from 'jose';
import type { DPoPError, TokenClaims } from '@popkit/dpop-verifier';
import { createDPoPAuth, createProofVerifier } from '@popkit/dpop-verifier';
import { jwtRefusal } from '@popkit/dpop-verifier/internal-checks';
import type { ExplainInput } from '../src/explain.ts';
import type { Fixture } from '../fixtures/fixtures.ts';
import { AUDIENCE, ISSUER, JWKS } from '../fixtures/fixtures.ts';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const BIN = `${ROOT}node_modules/.bin/popkit`;

const jwksFiles = new Map<string, string>();
/** A file holding this JWK Set, for `--jwks`. */
function jwksFile(jwks: object): string {
  const text = JSON.stringify(jwks);
  let file = jwksFiles.get(text);
  if (file === undefined) {
    file = join(mkdtempSync(join(tmpdir(), 'popkit-explain-')), 'jwks.json');
    writeFileSync(file, text);
    jwksFiles.set(text, file);
  }
  return file;
}

/** The CLI arguments for a fixture. */
export function cliArgs(fixture: Fixture): string[] {
  const { request, server } = fixture;
  const args = ['explain', '--json', '--method', request.method, '--url', request.url];
  args.push('--now', request.now);
  for (const d of request.dpop) args.push('--dpop', d);
  for (const a of request.authorization) args.push('--authorization', a);
  if (request.nonce !== undefined) args.push('--nonce', request.nonce);
  if (request.body !== undefined) args.push('--body', request.body);
  if (server.allowUnboundBearer === true) args.push('--allow-unbound-bearer');
  if (server.publicUrl !== undefined) args.push('--public-url', server.publicUrl);
  if (server.allowedHosts !== undefined)
    args.push('--allowed-hosts', server.allowedHosts.join(','));
  if (server.jwks !== undefined) args.push('--jwks', jwksFile(server.jwks));
  if (server.issuer !== undefined) args.push('--issuer', server.issuer);
  if (server.audience !== undefined) args.push('--audience', server.audience);
  if (server.mtls === true) args.push('--mtls');
  if (server.certificate !== undefined) args.push('--certificate', server.certificate);
  if (server.requiredScopes !== undefined)
    args.push('--required-scopes', server.requiredScopes.join(','));
  return args;
}

/** The `explain()` input for a fixture (what the page's `window.popkitExplain` takes too). */
export function explainInput(fixture: Fixture): ExplainInput {
  const { request, server } = fixture;
  return {
    method: request.method,
    url: request.url,
    dpop: request.dpop,
    authorization: request.authorization,
    now: request.now,
    ...(request.nonce === undefined ? {} : { nonce: request.nonce }),
    ...(request.body === undefined ? {} : { body: request.body }),
    ...(server as Omit<ExplainInput, 'method' | 'url'>),
  };
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

const verifierJwks = createLocalJWKSet(JWKS);

/** The real verifier's verdict on a fixture: `null` when accepted, else the refusal. */
export async function verdict(
  fixture: Fixture,
  extra: { explain?: 'log' } = {},
): Promise<DPoPError | null> {
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
      const { server } = fixture;
      const auth = createDPoPAuth({
        // the verifier's RFC 9068 validation (accessToken: { issuer, audience, jwks }) at the
        // fixture's time: the same jose options, and its refusals through the verifier's mapping
        accessToken: async (token) => {
          try {
            const { payload } = await jwtVerify(token, verifierJwks, {
              issuer: ISSUER,
              audience: AUDIENCE,
              algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'],
              clockTolerance: 5,
              requiredClaims: ['exp'],
              typ: 'at+jwt',
              currentDate: new Date(nowMs),
            });
            return payload as TokenClaims;
          } catch (e) {
            throw jwtRefusal(e);
          }
        },
        replay: false,
        ...(server.publicUrl === undefined && server.allowedHosts === undefined
          ? { dangerouslyTrustRequestUrl: true }
          : {}),
        ...(server.publicUrl === undefined ? {} : { publicUrl: server.publicUrl }),
        ...(server.allowedHosts === undefined ? {} : { allowedHosts: server.allowedHosts }),
        ...(server.allowUnboundBearer === undefined
          ? {}
          : { allowUnboundBearer: server.allowUnboundBearer }),
        ...(server.requiredScopes === undefined ? {} : { requiredScopes: server.requiredScopes }),
        ...(server.mtls === true ? { certificate: () => server.certificate } : {}),
        now: () => nowMs,
        ...extra,
      });
      const rawHeaders: string[] = [];
      for (const a of request.authorization) rawHeaders.push('Authorization', a);
      for (const d of request.dpop) rawHeaders.push('DPoP', d);
      if (request.body !== undefined)
        rawHeaders.push('Content-Type', 'application/x-www-form-urlencoded');
      await auth.verify({
        method: request.method,
        url: request.url,
        headers: {},
        rawHeaders,
        ...(request.body === undefined
          ? {}
          : { body: Object.fromEntries(new URLSearchParams(request.body)) }),
      });
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
