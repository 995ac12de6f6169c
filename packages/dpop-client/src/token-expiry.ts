import { parseWWWAuthenticate } from './challenge.ts';
import { DPoPClientError } from './errors.ts';
import { serverAnswer } from './server-answer.ts';
import { LruMap } from './nonce-store.ts';

/** What {@link DPoPFetchOptions.onTokenExpired} is told about the refused access token. */
export interface TokenExpiredContext {
  /** The origin that refused the token. */
  origin: string;
  /** The URL of the refused request. */
  url: string;
  /** The access token that was refused (the application's own; never logged by popkit). */
  accessToken: string;
  /**
   * `true` when the refusal is known to be an expiry: the challenge's `error_description` says
   * "expired", or the token is a JWT whose `exp` has passed by the server's clock (the
   * response's `Date`, else the clock offset learned for the origin). `false`: `invalid_token`
   * for a reason the server did not tell (RFC 6750 §3.1 uses the one code for expired, revoked
   * and malformed tokens).
   */
  expired: boolean;
  /** The challenge's `error_description`, if any. Server text: log it, do not show it as is. */
  description?: string;
}

/** The hook: a new access token for the same key, or nothing when there is none. */
export type OnTokenExpired = (
  context: TokenExpiredContext,
) => string | undefined | null | Promise<string | undefined | null>;

/** Longest access token whose JWT payload is looked at for `exp`. */
const MAX_TOKEN_LENGTH = 16384;
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * The `invalid_token` refusal (RFC 6750 §3.1, RFC 9449 §7.1) in a 401's `WWW-Authenticate`: the
 * DPoP challenge's, else a Bearer challenge's (a server that answers DPoP tokens with Bearer
 * challenges). `undefined` for any other error. @internal
 */
export function invalidTokenChallenge(
  header: string | null | undefined,
): { description?: string } | undefined {
  const challenges = parseWWWAuthenticate(header);
  const chosen =
    challenges.find((c) => c.scheme === 'dpop' && c.params.error !== undefined) ??
    challenges.find((c) => c.scheme === 'bearer' && c.params.error !== undefined);
  if (chosen?.params.error !== 'invalid_token') return undefined;
  const description = chosen.params.error_description;
  return description === undefined ? {} : { description };
}

/** Whether a description says the token expired ("expired", "has expired", "Jwt expired at …"). */
export function saysExpired(description: string | undefined): boolean {
  return description !== undefined && /expired/i.test(description);
}

/**
 * The `exp` of a JWT access token, in seconds, read without verifying anything (the client only
 * uses it to tell an expiry from another refusal); `undefined` for an opaque or malformed token.
 * @internal
 */
export function jwtExp(token: string): number | undefined {
  if (token.length > MAX_TOKEN_LENGTH) return undefined;
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  const bytes = decodeBase64url(parts[1]!);
  if (bytes === undefined) return undefined;
  try {
    let text = '';
    for (const b of bytes) text += String.fromCharCode(b); // exp is ASCII whatever the rest is
    const exp = (JSON.parse(text) as { exp?: unknown } | null)?.exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp : undefined;
  } catch {
    return undefined;
  }
}

function decodeBase64url(s: string): Uint8Array | undefined {
  if (s.length % 4 === 1) return undefined;
  const out = new Uint8Array(Math.floor((s.length * 3) / 4));
  let bits = 0;
  let value = 0;
  let o = 0;
  for (let i = 0; i < s.length; i++) {
    const v = B64.indexOf(s[i]!);
    if (v < 0) return undefined;
    value = (value << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (value >> bits) & 0xff;
    }
  }
  return out.subarray(0, o);
}

/** The error for an expired token no hook replaced. @internal */
export function tokenExpired(response: Response): DPoPClientError {
  return new DPoPClientError(
    'ERR_DPOP_TOKEN_EXPIRED',
    'the access token has expired (401 invalid_token); obtain a new one (onTokenExpired)',
    { response, server: serverAnswer(response) },
  );
}

/**
 * Calls the hook once per refused token: concurrent requests refused with the same token share
 * the call in flight, and a request refused with it shortly after (it was sent before the new
 * token arrived) gets the new token without a second call. @internal
 */
export class TokenRefresher {
  readonly #hook: OnTokenExpired;
  readonly #inFlight = new Map<string, Promise<string | undefined>>();
  readonly #recent = new LruMap<string>(16);

  constructor(hook: OnTokenExpired) {
    this.#hook = hook;
  }

  refresh(context: TokenExpiredContext): Promise<string | undefined> {
    const old = context.accessToken;
    const known = this.#recent.get(old);
    if (known !== undefined) return Promise.resolve(known);
    let pending = this.#inFlight.get(old);
    if (pending === undefined) {
      pending = Promise.resolve()
        .then(() => this.#hook(context))
        .then((next) => {
          if (typeof next !== 'string' || next.length === 0 || next === old) return undefined;
          this.#recent.set(old, next);
          return next;
        });
      this.#inFlight.set(old, pending);
      const clear = () => void this.#inFlight.delete(old);
      pending.then(clear, clear);
    }
    return pending;
  }
}
