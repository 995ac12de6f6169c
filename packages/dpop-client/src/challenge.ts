/** One challenge of a `WWW-Authenticate` header (RFC 9110 §11.6.1). */
export interface AuthChallenge {
  /** The auth scheme, lower-cased (`dpop`, `bearer`, ...). */
  scheme: string;
  /** Auth parameters; names lower-cased, quoted values unescaped. */
  params: Record<string, string>;
  /** A token68 value, when the challenge carries one instead of parameters. */
  token68?: string;
}

/** Longest header value parsed; longer values yield no challenges. */
export const MAX_CHALLENGE_HEADER_LENGTH = 16384;
const MAX_CHALLENGES = 32;
const MAX_PARAMS = 32;

function isTchar(c: number): boolean {
  // RFC 9110 §5.6.2 tchar
  return (
    (c >= 0x30 && c <= 0x39) ||
    (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x61 && c <= 0x7a) ||
    c === 0x21 ||
    (c >= 0x23 && c <= 0x27) ||
    c === 0x2a ||
    c === 0x2b ||
    c === 0x2d ||
    c === 0x2e ||
    c === 0x5e ||
    c === 0x5f ||
    c === 0x60 ||
    c === 0x7c ||
    c === 0x7e
  );
}

/**
 * Parses a `WWW-Authenticate` value into its challenges (RFC 9110 §11.6.1), handling several
 * challenges in one header (`Bearer realm="x", DPoP error="use_dpop_nonce", algs="ES256"`),
 * case-insensitive schemes and parameter names, quoted strings with escapes, and token68.
 * Never throws and runs in linear time; malformed input yields the challenges parsed so far.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-11.6.1
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-7.1
 */
export function parseWWWAuthenticate(header: string | null | undefined): AuthChallenge[] {
  const out: AuthChallenge[] = [];
  if (typeof header !== 'string' || header.length > MAX_CHALLENGE_HEADER_LENGTH) return out;
  const s = header;
  const n = s.length;
  let i = 0;
  const skipWs = (): void => {
    while (i < n && (s[i] === ' ' || s[i] === '\t')) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < n && isTchar(s.charCodeAt(i))) i++;
    return s.slice(start, i);
  };
  while (i < n && out.length < MAX_CHALLENGES) {
    while (i < n && (s[i] === ',' || s[i] === ' ' || s[i] === '\t')) i++;
    const scheme = readToken();
    if (scheme === '') {
      if (i < n) i++; // skip a stray character and resynchronise
      continue;
    }
    const challenge: AuthChallenge = { scheme: scheme.toLowerCase(), params: Object.create(null) };
    out.push(challenge);
    skipWs();
    let count = 0;
    while (i < n && count < MAX_PARAMS) {
      const start = i;
      const name = readToken();
      if (name === '') break;
      skipWs();
      if (s[i] !== '=') {
        // A token not followed by "=" starts the next challenge.
        i = start;
        break;
      }
      i++;
      if (s[i] === '=' || (skipWs(), i >= n || s[i] === ',')) {
        // "abc=" or "abc==" is token68, not a parameter.
        let t68 = `${name}=`;
        while (s[i] === '=') {
          t68 += '=';
          i++;
        }
        if (count === 0) challenge.token68 = t68;
        break;
      }
      let value: string;
      if (s[i] === '"') {
        i++;
        value = '';
        let closed = false;
        while (i < n) {
          const ch = s[i]!;
          if (ch === '\\' && i + 1 < n) {
            value += s[i + 1];
            i += 2;
          } else if (ch === '"') {
            i++;
            closed = true;
            break;
          } else {
            value += ch;
            i++;
          }
        }
        if (!closed) return out; // unterminated quoted string: stop
      } else {
        value = readToken();
      }
      const key = name.toLowerCase();
      if (!(key in challenge.params)) challenge.params[key] = value; // first one wins
      count++;
      skipWs();
      if (s[i] === ',') {
        i++;
        skipWs();
      } else if (i < n) {
        // Garbage after a parameter: skip to the next comma.
        while (i < n && s[i] !== ',') i++;
      }
    }
    if (count === 0 && challenge.token68 === undefined) {
      // token68 without "=" padding, e.g. `Basic dXNlcg`
      const start = i;
      while (i < n && s[i] !== ',' && s[i] !== ' ') i++;
      if (i > start) challenge.token68 = s.slice(start, i);
    }
  }
  return out;
}

/** The `error` of the DPoP challenge in a `WWW-Authenticate` value, if any. @internal */
export function dpopChallengeError(header: string | null | undefined): string | undefined {
  for (const c of parseWWWAuthenticate(header)) {
    if (c.scheme === 'dpop') return c.params.error;
  }
  return undefined;
}
