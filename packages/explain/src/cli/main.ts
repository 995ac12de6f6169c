/**
 * `popkit explain`: the command line. Exit status 0 when every check passes, 1 when one fails,
 * 2 for a usage error.
 * @module
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { JSONWebKeySet } from 'jose';
import type { ExplainInput } from '../explain.ts';
import { explain } from '../explain.ts';
import { formatExplanation } from '../format.ts';
import { parseRequestText } from '../request-text.ts';

export const USAGE = `Usage: popkit explain [options]
       popkit explain [options] -      (a raw HTTP request or a curl command line on stdin)

Why was my DPoP request rejected? Runs every RFC 9449 §4.3 check with the verifier's own
code and says, for each, what was expected, what was found and how to fix it. Offline: the
token's signature is verified only with --jwks, and the replay check is the server's.

Request:
  --method <METHOD>          the request method (GET, POST, ...)
  --url <URL>                the request URL as the server received it
  --dpop <proof>             the DPoP header value (repeat for several headers)
  --authorization <value>    the Authorization header value, e.g. "DPoP eyJ..." (repeatable)
Server:
  --nonce <nonce>            the nonce the server expects in the proof
  --now <ISO time>           the server's time (default: now)
  --public-url <URL>         the server's publicUrl option
  --jwks <URL or file>       the authorization server's JWKS, to verify the token signature
  --max-age <s>              the server's maxAge (default 60)
  --clock-tolerance <s>      the server's clockTolerance (default 10)
  --algorithms <a,b>         the server's allowed proof algorithms
  --issuer <iss>             the issuer the server requires of tokens (checked with --jwks)
  --audience <aud>           the audience the server requires of tokens (checked with --jwks)
  --allowed-hosts <h1,h2>    the server's allowedHosts
  --required-scopes <s1,s2>  the route's requiredScopes
  --mtls                     the server reads client certificates (its certificate option)
  --certificate <PEM file or x5t#S256>
                             the client certificate presented (RFC 8705; implies --mtls)
  --body <form>              the request body, when a form (application/x-www-form-urlencoded)
  --allow-unbound-bearer     the server's allowUnboundBearer (mixed mode)
Output:
  --json                     { ok, reason, steps: [{ step, name, ok, reason, expected, found, fix }] }
  -h, --help                 this text

Exit status: 0 every check passes, 1 a check fails, 2 usage error.
`;

class UsageError extends Error {}

interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  stdin: () => Promise<string>;
}

const defaultIo: Io = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  stdin: async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return new TextDecoder().decode(Buffer.concat(chunks));
  },
};

function number(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number`);
  return n;
}

async function loadJwks(source: string): Promise<JSONWebKeySet> {
  let text: string;
  if (/^https?:\/\//i.test(source)) {
    const response = await fetch(source, { signal: AbortSignal.timeout(10_000) });
    if (!response.ok) throw new UsageError(`--jwks ${source}: HTTP ${response.status}`);
    text = await response.text();
  } else {
    try {
      text = readFileSync(source, 'utf8');
    } catch {
      throw new UsageError(`--jwks ${source}: cannot read the file`);
    }
  }
  let jwks: unknown;
  try {
    jwks = JSON.parse(text);
  } catch {
    throw new UsageError('--jwks is not JSON');
  }
  if (
    jwks === null ||
    typeof jwks !== 'object' ||
    !Array.isArray((jwks as { keys?: unknown }).keys)
  )
    throw new UsageError('--jwks is not a JWK Set ({ "keys": [...] })');
  return jwks as JSONWebKeySet;
}

/** `--certificate`: an `x5t#S256` thumbprint as it is, else a PEM file. */
function readCertificate(value: string): string {
  if (/^[A-Za-z0-9_-]{43}$/.test(value)) return value;
  try {
    return readFileSync(value, 'utf8');
  } catch {
    throw new UsageError(`--certificate ${value}: cannot read the file`);
  }
}

/** Runs the command line; resolves to the exit status. */
export async function main(argv: readonly string[], io: Io = defaultIo): Promise<number> {
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        method: { type: 'string' },
        url: { type: 'string' },
        dpop: { type: 'string', multiple: true },
        authorization: { type: 'string', multiple: true },
        nonce: { type: 'string' },
        now: { type: 'string' },
        'public-url': { type: 'string' },
        jwks: { type: 'string' },
        'max-age': { type: 'string' },
        'clock-tolerance': { type: 'string' },
        algorithms: { type: 'string' },
        issuer: { type: 'string' },
        audience: { type: 'string' },
        'allowed-hosts': { type: 'string' },
        'required-scopes': { type: 'string' },
        mtls: { type: 'boolean' },
        certificate: { type: 'string' },
        body: { type: 'string' },
        'allow-unbound-bearer': { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }) as {
      values: Record<string, string | string[] | boolean | undefined>;
      positionals: string[];
    };
    const [command, ...rest] = positionals;
    if (values.help === true && (command === undefined || command === 'explain')) {
      io.stdout(USAGE);
      return 0;
    }
    if (command !== 'explain')
      throw new UsageError(
        command === undefined ? 'a command is required' : `unknown command "${command}"`,
      );
    if (rest.length > 1 || (rest.length === 1 && rest[0] !== '-'))
      throw new UsageError(`unexpected argument "${rest[0]}"`);
    const str = (k: string) => values[k] as string | undefined;
    const list = (k: string) => values[k] as string[] | undefined;
    let method = str('method');
    let url = str('url');
    let dpop = list('dpop') ?? [];
    let authorization = list('authorization') ?? [];
    if (rest[0] === '-') {
      const text = await io.stdin();
      let parsed;
      try {
        parsed = parseRequestText(text);
      } catch (e) {
        throw new UsageError(`stdin: ${(e as Error).message}`);
      }
      method ??= parsed.method;
      url ??= parsed.url;
      if (dpop.length === 0) dpop = parsed.dpop;
      if (authorization.length === 0) authorization = parsed.authorization;
    }
    if (method === undefined) throw new UsageError('--method is required');
    if (url === undefined) throw new UsageError('--url is required');
    if (!/^https?:\/\//i.test(url))
      throw new UsageError(`--url must be absolute (https://host/path), got "${url}"`);
    const now = str('now');
    if (now !== undefined && !Number.isFinite(Date.parse(now)))
      throw new UsageError(`--now must be an ISO 8601 time, got "${now}"`);
    const input: ExplainInput = { method, url, dpop, authorization };
    if (str('nonce') !== undefined) input.nonce = str('nonce')!;
    if (now !== undefined) input.now = now;
    if (str('public-url') !== undefined) input.publicUrl = str('public-url')!;
    if (str('jwks') !== undefined) input.jwks = await loadJwks(str('jwks')!);
    const maxAge = number('max-age', str('max-age'));
    if (maxAge !== undefined) input.maxAge = maxAge;
    const clockTolerance = number('clock-tolerance', str('clock-tolerance'));
    if (clockTolerance !== undefined) input.clockTolerance = clockTolerance;
    if (str('algorithms') !== undefined)
      input.algorithms = str('algorithms')!
        .split(',')
        .map((a) => a.trim());
    if (values['allow-unbound-bearer'] === true) input.allowUnboundBearer = true;
    const csv = (k: string) =>
      str(k)
        ?.split(',')
        .map((v) => v.trim())
        .filter(Boolean);
    if (str('issuer') !== undefined) input.issuer = str('issuer')!;
    if (str('audience') !== undefined) input.audience = str('audience')!;
    if (str('allowed-hosts') !== undefined) input.allowedHosts = csv('allowed-hosts')!;
    if (str('required-scopes') !== undefined) input.requiredScopes = csv('required-scopes')!;
    if (values.mtls === true) input.mtls = true;
    if (str('certificate') !== undefined) input.certificate = readCertificate(str('certificate')!);
    if (str('body') !== undefined) input.body = str('body')!;
    let explanation;
    try {
      explanation = await explain(input);
    } catch (e) {
      // unusable input or server options the verifier refuses (a DPoPConfigError)
      if (e instanceof TypeError) throw new UsageError(e.message);
      throw e;
    }
    if (values.json === true) io.stdout(`${JSON.stringify(explanation, null, 2)}\n`);
    else io.stdout(`${formatExplanation(explanation, { method, url })}\n`);
    return explanation.ok ? 0 : 1;
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.stderr(`popkit: ${(e as Error).message}\n\n${USAGE}`);
      return 2;
    }
    throw e;
  }
}
