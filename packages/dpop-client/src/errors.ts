import { unknownOption } from './options.ts';
import type { DPoPServerAnswer } from './server-answer.ts';
/**
 * Stable codes of {@link DPoPClientError}, the errors of `@popkit/dpop-client` at run time.
 * A bad argument is a {@link DPoPArgumentError} instead (a `TypeError` with the Node-style
 * `ERR_INVALID_ARG_TYPE` / `ERR_INVALID_ARG_VALUE`, spelled as in the verifier's and
 * mtls-binding's argument errors).
 *
 * - `ERR_DPOP_KEY_UNSUPPORTED`: the key cannot sign DPoP proofs (wrong type, usage, size,
 *   algorithm, or a public key that cannot be exported and no `publicJwk`).
 * - `ERR_DPOP_SIGNER`: an external {@link DPoPSigner} failed or returned a malformed signature.
 * - `ERR_DPOP_BODY_NOT_REPLAYABLE`: the server asked for a new nonce, or redirected with 307/308,
 *   but the request body was a one-shot stream, so the request could not be sent again.
 * - `ERR_DPOP_REDIRECT`: a redirect that cannot be followed safely: more than the hop limit, a
 *   `Location` that is not an `http(s)` URL or carries userinfo, or a runtime that hides the
 *   redirect (an opaque-redirect response to `redirect: 'follow'`).
 * - `ERR_DPOP_STORAGE`: the browser key store failed.
 * - `ERR_DPOP_NO_RANDOM`: the runtime has no CSPRNG (`crypto.getRandomValues`) and the signer
 *   provides no `randomBytes` (React Native without `react-native-get-random-values` or
 *   `expo-crypto`). popkit never falls back to `Math.random`.
 * - `ERR_DPOP_NO_WEBCRYPTO`: a `CryptoKeyPair` (or SHA-256 outside the `react-native` build) was
 *   used where the runtime has no `crypto.subtle`; use a `DPoPSigner`.
 * - `ERR_DPOP_TOKEN_EXPIRED`: `createDPoPFetch` got a 401 `invalid_token` for an access token
 *   that has expired (the challenge says so, or the JWT's `exp` has passed by the server's
 *   clock) and no new token came from `onTokenExpired` (none configured, or it returned
 *   nothing, or the new one was refused as expired too). `response` is the 401.
 */
export type DPoPClientErrorCode =
  | 'ERR_DPOP_KEY_UNSUPPORTED'
  | 'ERR_DPOP_SIGNER'
  | 'ERR_DPOP_BODY_NOT_REPLAYABLE'
  | 'ERR_DPOP_REDIRECT'
  | 'ERR_DPOP_STORAGE'
  | 'ERR_DPOP_NO_RANDOM'
  | 'ERR_DPOP_NO_WEBCRYPTO'
  | 'ERR_DPOP_TOKEN_EXPIRED';

/**
 * The one error class of `@popkit/dpop-client`. Match on `code`, never on `message`.
 * Messages name the bad argument but never contain a key, token or proof.
 */
export class DPoPClientError extends Error {
  readonly code: DPoPClientErrorCode;
  /**
   * The server response, for `ERR_DPOP_BODY_NOT_REPLAYABLE`, `ERR_DPOP_REDIRECT` and
   * `ERR_DPOP_TOKEN_EXPIRED` from `createDPoPFetch` (the response that was not retried or not
   * followed; its body is unread). `server` says what it said.
   */
  readonly response?: Response;
  /**
   * What the server said, for the errors that carry `response`: its status, its challenge's
   * `error` and `error_description`, its time from `Date` and the clock offset that measures
   * (see {@link DPoPServerAnswer}), so an application can show why without parsing headers.
   */
  readonly server?: DPoPServerAnswer;

  constructor(
    code: DPoPClientErrorCode,
    message: string,
    // (`server` is read from `response` by the code that has one, `createDPoPFetch`: reading
    // it here would put the challenge and date parsers into every bundle that signs a proof)
    options?: { cause?: unknown; response?: Response; server?: DPoPServerAnswer },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DPoPClientError';
    this.code = code;
    if (options?.response) this.response = options.response;
    if (options?.server) this.server = options.server;
  }
}

/** `TypeError` with a Node-style `code`, thrown for arguments of the wrong type or value. */
export class DPoPArgumentError extends TypeError {
  readonly code: 'ERR_INVALID_ARG_TYPE' | 'ERR_INVALID_ARG_VALUE';
  constructor(code: 'ERR_INVALID_ARG_TYPE' | 'ERR_INVALID_ARG_VALUE', message: string) {
    super(message);
    this.name = 'TypeError';
    this.code = code;
  }
}

/**
 * Throws for the first option name of `options` its factory does not know, naming the closest
 * known one (a misspelt option would otherwise be ignored silently). @internal
 */
export function rejectUnknownOptions(
  options: object,
  known: Readonly<Record<string, true>>,
  where: string,
): void {
  const found = unknownOption(options, known);
  if (found === undefined) return;
  throw invalidValue(
    `options.${found.name}`,
    `is not an option of ${where}${found.near === undefined ? '' : `: did you mean "options.${found.near}"?`}`,
  );
}

/** @internal */
export function invalidType(name: string, expected: string): DPoPArgumentError {
  return new DPoPArgumentError('ERR_INVALID_ARG_TYPE', `"${name}" must be ${expected}`);
}

/** @internal */
export function invalidValue(name: string, why: string): DPoPArgumentError {
  return new DPoPArgumentError('ERR_INVALID_ARG_VALUE', `"${name}" ${why}`);
}
