/**
 * `@popkit/dpop-client/axios`: DPoP for axios instances, on the same core as `createDPoPFetch`.
 * axios is an optional peer dependency: this module uses the instance you pass in, and imports
 * `axios` only to resolve a default adapter by name for an instance without `getAdapter`.
 * @packageDocumentation
 */
import { invalidType, rejectUnknownOptions } from '../errors.ts';
import { normalizeMethod, wireOrigin } from '../htu.ts';
import {
  BODY_HEADERS,
  CROSS_ORIGIN_DROPPED,
  browserFollows,
  isOneShot,
  nextHop,
  notReplayable,
} from '../redirect.ts';
import type { Hop } from '../redirect.ts';
import type { DPoPSessionOptions } from '../session.ts';
import { DPoPSession, SESSION_OPTION_NAMES } from '../session.ts';
import type { DPoPKey } from '../signer.ts';

/** The part of an axios instance this adapter uses (structural, so no axios import is needed). */
export interface AxiosLike {
  interceptors: {
    request: {
      use(onFulfilled: (config: any) => any, onRejected?: (error: any) => any): number;
      eject(id: number): void;
    };
    response: {
      use(onFulfilled: (response: any) => any, onRejected?: (error: any) => any): number;
      eject(id: number): void;
    };
  };
  getUri(config?: any): string;
  request(config: any): Promise<any>;
}

/**
 * What this adapter reads from an axios request config, besides axios' own fields. Pass it as
 * `api.get(url, { accessToken } as DPoPAxiosConfig)` or merge it into your config type.
 */
export interface DPoPAxiosConfig {
  /** DPoP-bound access token: sets `Authorization: DPoP …` and the proof's `ath`. */
  accessToken?: string;
}

const AUTH_DPOP = /^dpop[ \t]+(\S+)[ \t]*$/i;
/** follow-redirects' default `maxRedirects`, which axios documents. */
const AXIOS_MAX_REDIRECTS = 21;

/** An axios adapter: a resolved config in, a response (or an `AxiosError`) out. */
type Adapter = (config: any) => Promise<any>;
type GetAdapter = (adapters: unknown, config?: unknown) => Adapter;

/**
 * Each DPoP adapter and the `config.adapter` it wraps, so a config sent again (a caller's retry
 * of `error.config`) is wrapped once, not twice, by this or another `withDPoP`.
 */
const wrapped = new WeakMap<object, unknown>();

let axiosModule: Promise<unknown> | undefined;

/**
 * axios' `getAdapter`, which resolves adapter names (`['xhr', 'http', 'fetch']`). The default
 * `axios` export has it; instances from `axios.create` do not, so axios (the peer dependency)
 * is imported then, once and only when a request needs it.
 */
async function adapterResolver(
  instance: AxiosLike,
): Promise<{ get: GetAdapter; fallback: unknown }> {
  const own = (instance as { getAdapter?: unknown }).getAdapter;
  const defaults = (instance as { defaults?: { adapter?: unknown } }).defaults;
  if (typeof own === 'function') return { get: own as GetAdapter, fallback: defaults?.adapter };
  axiosModule ??= import('axios');
  let mod: any;
  try {
    mod = await axiosModule;
  } catch {
    axiosModule = undefined;
  }
  const get = mod?.getAdapter ?? mod?.default?.getAdapter;
  if (typeof get !== 'function') {
    throw invalidType(
      'config.adapter',
      'an adapter function where the axios package cannot be imported to resolve adapter names',
    );
  }
  return { get, fallback: defaults?.adapter ?? mod?.default?.defaults?.adapter };
}

function headerOf(headers: any, name: string): string | undefined {
  if (!headers) return undefined;
  if (typeof headers.get === 'function') {
    const v = headers.get(name);
    return v == null || v === false ? undefined : String(v);
  }
  for (const k of Object.keys(headers))
    if (k.toLowerCase() === name) return headers[k] === false ? undefined : String(headers[k]);
  return undefined;
}

function setHeader(headers: any, name: string, value: string): void {
  if (typeof headers.set === 'function') headers.set(name, value, true);
  else {
    deleteHeader(headers, name);
    headers[name] = value;
  }
}

function deleteHeader(headers: any, name: string): void {
  if (typeof headers.delete === 'function') headers.delete(name);
  else for (const k of Object.keys(headers)) if (k.toLowerCase() === name) delete headers[k];
}

/** A copy of the request headers for the next request (an `AxiosHeaders` keeps its `false`s). */
function copyHeaders(headers: any): any {
  if (headers && typeof headers.concat === 'function') return headers.concat();
  return { ...headers };
}

/** A plain copy of axios headers, for `beforeRedirect`. */
function plain(headers: any): Record<string, unknown> {
  return { ...headers };
}

/** The `error` member of a JSON error body as an adapter returns it (before transformResponse). */
function jsonErrorOf(data: unknown): string | undefined {
  if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) {
    if (data.byteLength > 16384 || typeof TextDecoder !== 'function') return undefined;
    data = new TextDecoder().decode(data);
  }
  if (typeof data === 'string') {
    if (data.length > 16384) return undefined;
    try {
      data = JSON.parse(data);
    } catch {
      return undefined;
    }
  }
  const error = (data as { error?: unknown } | null | undefined)?.error;
  return typeof error === 'string' ? error : undefined;
}

/** Releases the body of a response that is not returned (`responseType: 'stream'`). */
function discard(response: any): void {
  const data = response?.data;
  try {
    if (typeof data?.destroy === 'function') data.destroy();
    else if (typeof ReadableStream !== 'undefined' && data instanceof ReadableStream)
      data.cancel().catch(() => {});
  } catch {
    // nothing to release
  }
}

/**
 * Adds DPoP to an axios instance: every request gets a proof (`config.accessToken` or an
 * `Authorization: DPoP` header, also one set by an interceptor, adds `ath`), nonces are kept per
 * origin, and a `use_dpop_nonce` answer (401 challenge or 400 JSON) or a clock rejection is
 * retried exactly once. Returns a function that stops it for later requests.
 *
 * All of it happens below axios' interceptors: a request interceptor wraps `config.adapter`
 * (yours, or axios' default resolved with `getAdapter`; for an instance from `axios.create` the
 * `axios` package is imported to resolve it), and the wrapped adapter signs, retries and follows
 * redirects. Your request interceptors run once per call and your response interceptors see
 * only the final response (`response.config` is the call's config), as with plain axios.
 *
 * Redirects: outside browsers axios (follow-redirects) would send the same proof to every hop
 * and drop only `Authorization` and `Cookie` on another host, so the adapter sends each request
 * with `maxRedirects: 0` and follows redirects itself, with the Fetch standard's rules and the
 * caller's `maxRedirects` as the limit (default 21; `0` returns the 3xx as axios does): a new
 * proof for each hop on the first request's origin, and none, with no `Authorization`,
 * `Cookie`, `auth` or `sensitiveHeaders`, once the chain has left it. A `beforeRedirect` hook is
 * called before each hop with follow-redirects' arguments (throw to stop; changes to the
 * options are not applied). In a browser XHR follows redirects itself; nothing is learned from
 * a response whose `responseURL` is on another origin.
 *
 * @example
 * ```ts
 * import axios from 'axios';
 * import { withDPoP } from '@popkit/dpop-client/axios';
 * const api = axios.create({ baseURL: 'https://api.example.com' });
 * withDPoP(api, keyPair);
 * await api.get('/orders', { accessToken });
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-8
 * @see https://fetch.spec.whatwg.org/#http-redirect-fetch
 */
export function withDPoP(
  instance: AxiosLike,
  key: DPoPKey,
  options: DPoPSessionOptions = {},
): () => void {
  if (
    instance === null ||
    (typeof instance !== 'object' && typeof instance !== 'function') ||
    !instance.interceptors
  ) {
    throw invalidType('instance', 'an axios instance');
  }
  if (options !== null && typeof options === 'object')
    rejectUnknownOptions(options, SESSION_OPTION_NAMES, 'withDPoP');
  const session = new DPoPSession(key, options);

  /** One call, below the interceptors: `config` is what axios hands its adapter. */
  async function dispatch(config: any, chosen: unknown): Promise<any> {
    let inner: Adapter;
    if (typeof chosen === 'function') inner = chosen as Adapter;
    else {
      const { get, fallback } = await adapterResolver(instance);
      inner = get(chosen || fallback, config);
    }
    let url = instance.getUri(config);
    const raw: unknown = config.method ?? 'get';
    // axios' adapters send the method upper-cased
    let method = normalizeMethod(
      typeof raw === 'string' ? raw.toUpperCase() : (raw as string),
      'config.method',
    );
    const origin = wireOrigin(url, 'config.url');
    config.headers = config.headers ?? {};
    let accessToken: string | undefined = config.accessToken;
    if (accessToken !== undefined) {
      if (typeof accessToken !== 'string' || accessToken.length === 0) {
        throw invalidType('config.accessToken', 'a non-empty string');
      }
      setHeader(config.headers, 'Authorization', `DPoP ${accessToken}`);
    } else {
      const match = AUTH_DPOP.exec(headerOf(config.headers, 'authorization') ?? '');
      if (match) accessToken = match[1];
    }
    const follow = config.maxRedirects !== 0 && !browserFollows();
    const max: number = config.maxRedirects ?? AXIOS_MAX_REDIRECTS;
    // The request of each hop; the first is the call's own config, unless redirects are ours.
    let current = follow
      ? {
          ...config,
          maxRedirects: 0,
          beforeRedirect: undefined,
          // axios' fetch adapter before it mapped `maxRedirects: 0` to this
          fetchOptions: { ...config.fetchOptions, redirect: 'manual' },
        }
      : config;
    let signed = true; // false once the chain has left the origin
    let retried = false;
    let hops = 0;

    // What the caller gets, as from plain axios: the call's config on the response and error.
    const settle = (response: any, error: unknown): any => {
      if (hops > 0) {
        const res = response.request?.res;
        if (res && typeof res === 'object' && res.responseUrl === undefined) res.responseUrl = url;
      }
      response.config = config;
      if (error === undefined) return response;
      (error as { config?: unknown }).config = config;
      throw error;
    };

    for (;;) {
      const attempt = signed ? await session.attempt(method, url, origin, accessToken) : undefined;
      if (attempt) setHeader(current.headers, 'DPoP', attempt.proof);
      let response: any;
      let error: unknown;
      try {
        response = await inner(current);
      } catch (e) {
        if (!(e as { response?: unknown } | null)?.response) {
          if ((e as { isAxiosError?: unknown } | null)?.isAxiosError === true)
            (e as { config?: unknown }).config = config;
          throw e;
        }
        error = e;
        response = (e as { response: unknown }).response;
      }

      // Where a browser's XHR followed a redirect: learn only from the origin the proof was for.
      const landed: unknown = response.request?.responseURL ?? response.request?.res?.responseUrl;
      const reason =
        attempt && (!landed || typeof landed !== 'string' || landed.startsWith(`${origin}/`))
          ? await session.inspect(
              origin,
              {
                status: retried ? 0 : response.status,
                header: (name) => headerOf(response.headers, name),
                jsonError: async () => jsonErrorOf(response.data),
              },
              attempt,
            )
          : undefined;
      if (reason !== undefined) {
        if (isOneShot(current.data)) {
          session.emit({ type: 'not-retried', origin, reason: 'body_not_replayable' });
          response.config = config;
          throw notReplayable('a nonce challenge (the nonce is stored)', {
            cause: error ?? response,
          });
        }
        session.emit({ type: 'retry', origin, reason });
        retried = true;
        discard(response);
        continue;
      }

      let hop: Hop | undefined;
      try {
        hop = follow
          ? nextHop(
              response.status,
              headerOf(response.headers, 'location'),
              { url, method, hops, max },
              isOneShot(current.data),
            )
          : undefined;
      } catch (e) {
        discard(response);
        throw e;
      }
      if (!hop) return settle(response, error);
      session.emit({ type: 'redirect', origin, to: hop.origin });
      const next = {
        ...current,
        url: hop.url,
        baseURL: '',
        params: undefined, // the Location is the whole URL
        method: hop.method,
        headers: copyHeaders(current.headers),
      };
      if (hop.dropBody) {
        next.data = undefined;
        for (const name of BODY_HEADERS) deleteHeader(next.headers, name);
      }
      if (hop.origin !== origin) signed = false;
      if (!signed) {
        next.auth = undefined;
        const sensitive: unknown = config.sensitiveHeaders;
        for (const name of [
          ...CROSS_ORIGIN_DROPPED,
          ...(Array.isArray(sensitive) ? sensitive : []),
        ])
          deleteHeader(next.headers, String(name).toLowerCase());
      }
      if (typeof config.beforeRedirect === 'function') {
        const target = new URL(hop.url);
        try {
          config.beforeRedirect(
            {
              href: hop.url,
              protocol: target.protocol,
              hostname: target.hostname,
              host: target.host,
              port: target.port,
              path: target.pathname + target.search,
              method: hop.method,
              headers: plain(next.headers),
            },
            { headers: plain(response.headers), statusCode: response.status },
            { url, method, headers: plain(current.headers) },
          );
        } catch (e) {
          discard(response);
          throw e;
        }
      }
      discard(response);
      hops++;
      current = next;
      url = hop.url;
      method = hop.method;
    }
  }

  const requestId = instance.interceptors.request.use((config: any) => {
    const previous: unknown = config.adapter;
    const chosen =
      typeof previous === 'function' && wrapped.has(previous) ? wrapped.get(previous) : previous;
    const adapter: Adapter = (resolved) => dispatch(resolved, chosen);
    wrapped.set(adapter, chosen);
    config.adapter = adapter;
    return config;
  });

  return () => {
    instance.interceptors.request.eject(requestId);
  };
}
