import { DPoPClientError } from './errors.ts';
import { serverAnswer } from './server-answer.ts';

/**
 * Most redirects `createDPoPFetch` follows, as `fetch` does (Fetch standard, HTTP-redirect fetch
 * step 7: the 21st redirect is a network error).
 * @internal
 */
export const MAX_REDIRECTS = 20;

/**
 * Request headers dropped when the request goes to another origin. `Authorization` is what the
 * Fetch standard drops (HTTP-redirect fetch step 13, "CORS non-wildcard request-header name");
 * `DPoP` is this library's addition (a proof for one origin is useless, and only a liability,
 * anywhere else, RFC 9449 §11.1); cookies and proxy credentials are dropped as undici does.
 * @internal
 */
export const CROSS_ORIGIN_DROPPED = ['authorization', 'dpop', 'cookie', 'proxy-authorization'];

/**
 * Headers that describe a request body, dropped when a redirect turns the request into a `GET`
 * (Fetch standard, "request-body-header name", plus `Content-Length` as undici does: axios
 * sets it on the config, and a GET announcing a body would hang).
 * @internal
 */
export const BODY_HEADERS = [
  'content-encoding',
  'content-language',
  'content-location',
  'content-type',
  'content-length',
];

/**
 * Whether a request body can be read only once: a `ReadableStream`, an async iterable or a
 * Node stream (anything with `pipe`, e.g. `form-data`). Strings, bytes, `Blob`, `FormData` and
 * `URLSearchParams` can be sent again.
 * @internal
 */
export function isOneShot(body: unknown): boolean {
  return (
    (typeof ReadableStream !== 'undefined' && body instanceof ReadableStream) ||
    (typeof body === 'object' &&
      body !== null &&
      (Symbol.asyncIterator in body || typeof (body as { pipe?: unknown }).pipe === 'function'))
  );
}

/** The next request of a redirect chain. @internal */
export interface Hop {
  /** Absolute URL of the next request (the `Location`, resolved against the current URL). */
  url: string;
  /** Its method: `GET` after a 303 (unless `GET`/`HEAD`), or after a 301/302 of a `POST`. */
  method: string;
  /** Its origin. */
  origin: string;
  /** Whether the body and its headers are dropped (the method became `GET`). */
  dropBody: boolean;
}

/**
 * Whether this runtime's `fetch` hides redirects: in a browser window or worker
 * `redirect: 'manual'` yields an opaque-redirect response (status 0, no `Location`), so the
 * browser has to follow redirects itself. Node, Deno, Bun and Workers return the real 3xx.
 * @internal
 */
export function browserFollows(): boolean {
  const g = globalThis as { document?: unknown; importScripts?: unknown };
  return typeof g.document === 'object' || typeof g.importScripts === 'function';
}

/** @internal */
export function redirectError(message: string, response?: Response): DPoPClientError {
  return new DPoPClientError('ERR_DPOP_REDIRECT', message, {
    response,
    server: response && serverAnswer(response),
  });
}

/** `ERR_DPOP_BODY_NOT_REPLAYABLE`: the request had to be sent again, `after` what. @internal */
export function notReplayable(
  after: string,
  options: { response?: Response | undefined; cause?: unknown },
): DPoPClientError {
  const { response } = options;
  return new DPoPClientError(
    'ERR_DPOP_BODY_NOT_REPLAYABLE',
    `the request body is a one-shot stream, not sent again after ${after}; send it again yourself`,
    { ...options, server: response && serverAnswer(response) },
  );
}

/**
 * Where a response redirects the request, with the Fetch standard's HTTP-redirect fetch
 * semantics, or `undefined` when it is not a redirect to follow (not 301/302/303/307/308, or
 * no `Location`). Throws `ERR_DPOP_REDIRECT` after `max` hops or for a `Location` that is not an
 * `http(s)` URL without userinfo, and `ERR_DPOP_BODY_NOT_REPLAYABLE` when the request must be
 * re-sent with a one-shot body (anything but a 303).
 *
 * @see https://fetch.spec.whatwg.org/#http-redirect-fetch
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-15.4
 * @internal
 */
export function nextHop(
  status: number,
  location: string | null | undefined,
  current: { url: string; method: string; hops: number; max: number },
  oneShotBody: boolean,
  response?: Response,
): Hop | undefined {
  if (location == null || ![301, 302, 303, 307, 308].includes(status)) return undefined;
  let target: URL | undefined;
  try {
    target = new URL(location, current.url);
  } catch {
    // not a URL: a network error, as fetch
  }
  if (
    !target ||
    (target.protocol !== 'https:' && target.protocol !== 'http:') ||
    target.username ||
    target.password
  ) {
    throw redirectError('bad redirect Location (http(s) only, no userinfo)', response);
  }
  if (current.hops >= current.max) throw redirectError('too many redirects', response);
  if (status !== 303 && oneShotBody) {
    throw notReplayable(`a ${status} redirect`, { response });
  }
  const { method } = current;
  const dropBody =
    (status === 303 && method !== 'GET' && method !== 'HEAD') ||
    (status < 303 && method === 'POST');
  return {
    url: target.href,
    origin: target.origin,
    method: dropBody ? 'GET' : method,
    dropBody,
  };
}
