/**
 * `@popkit/dpop-client/axios`: DPoP for axios instances, on the same core as `createDPoPFetch`.
 * axios is an optional peer dependency; this module only uses the instance you pass in.
 * @packageDocumentation
 */
import { invalidType } from '../errors.ts';
import { normalizeMethod } from '../htu.ts';
import {
  BODY_HEADERS,
  CROSS_ORIGIN_DROPPED,
  browserFollows,
  isOneShot,
  nextHop,
  notReplayable,
} from '../redirect.ts';
import type { Attempt, DPoPSessionOptions } from '../session.ts';
import { DPoPSession } from '../session.ts';
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

// A string key: axios' mergeConfig drops symbol keys when a config is sent again.
const STATE = '__popkitDPoP';
const AUTH_DPOP = /^dpop[ \t]+(\S+)[ \t]*$/i;
/** follow-redirects' default `maxRedirects`, which axios documents. */
const AXIOS_MAX_REDIRECTS = 21;

interface DPoPConfigState {
  /** The proof sent, unless the chain has left its origin (then nothing is signed). */
  attempt?: Attempt;
  /** The origin of the chain's first request. */
  origin: string;
  retried: boolean;
  /** Whether this adapter follows redirects (outside browsers) instead of axios. */
  follow: boolean;
  /** Redirects allowed: the caller's `maxRedirects`. */
  max: number;
  hops: number;
}

function headerOf(headers: any, name: string): string | undefined {
  if (!headers) return undefined;
  if (typeof headers.get === 'function') {
    const v = headers.get(name);
    return v == null ? undefined : String(v);
  }
  for (const k of Object.keys(headers)) if (k.toLowerCase() === name) return String(headers[k]);
  return undefined;
}

/** Sets a header; `false` is axios' "do not send", which also overrides instance defaults. */
function setHeader(config: any, name: string, value: string | false): void {
  const headers = config.headers;
  if (headers && typeof headers.set === 'function') headers.set(name, value, true);
  else {
    const next = { ...headers };
    for (const k of Object.keys(next)) if (k.toLowerCase() === name.toLowerCase()) delete next[k];
    next[name] = value;
    config.headers = next;
  }
}

/** A plain copy of axios headers (as axios' mergeConfig makes it: `false` values kept). */
function plain(headers: any): Record<string, unknown> {
  return { ...headers };
}

/**
 * Adds DPoP to an axios instance with a request and a response interceptor: every request gets
 * a proof (`config.accessToken` or an existing `Authorization: DPoP` header adds `ath`), nonces
 * are kept per origin, and a `use_dpop_nonce` answer (401 challenge or 400 JSON) or a clock
 * rejection is retried exactly once. Returns a function that removes the interceptors.
 *
 * Redirects: outside browsers axios (follow-redirects) would send the same proof to every hop
 * and drop only `Authorization` and `Cookie` on another host, so the adapter sets
 * `maxRedirects: 0` and follows them itself, with the Fetch standard's rules and the caller's
 * `maxRedirects` as the limit (default 21; `0` returns the 3xx as axios does): a new proof for
 * each hop on the first request's origin, and none, with no `Authorization`, `Cookie`, `auth`
 * or `sensitiveHeaders`, once the chain has left it. A `beforeRedirect` hook is called before
 * each hop with follow-redirects' arguments (throw to stop; changes to the options are not
 * applied). In a browser XHR follows redirects itself; nothing is learned from a response whose
 * `responseURL` is on another origin.
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
  const session = new DPoPSession(key, options);

  const requestId = instance.interceptors.request.use(async (config: any) => {
    const previous: DPoPConfigState | undefined = config[STATE];
    if (previous && !previous.attempt) return config; // a hop off the origin: sent unsigned
    const url = instance.getUri(config);
    const method = normalizeMethod(config.method ?? 'GET', 'config.method');
    config.method = method;
    let accessToken: string | undefined = config.accessToken;
    if (accessToken !== undefined) {
      if (typeof accessToken !== 'string' || accessToken.length === 0) {
        throw invalidType('config.accessToken', 'a non-empty string');
      }
      setHeader(config, 'Authorization', `DPoP ${accessToken}`);
    } else {
      const match = AUTH_DPOP.exec(headerOf(config.headers, 'authorization') ?? '');
      if (match) accessToken = match[1];
    }
    const origin = previous?.origin ?? new URL(url).origin;
    const attempt = await session.attempt(method, url, origin, accessToken);
    setHeader(config, 'DPoP', attempt.proof);
    const state: DPoPConfigState = previous
      ? { ...previous, attempt }
      : {
          attempt,
          origin,
          retried: false,
          follow: config.maxRedirects !== 0 && !browserFollows(),
          max: config.maxRedirects ?? AXIOS_MAX_REDIRECTS,
          hops: 0,
        };
    if (state.follow) config.maxRedirects = 0;
    config[STATE] = state;
    return config;
  });

  const onResponse = async (response: any, error?: unknown): Promise<any> => {
    const config = response?.config;
    const state: DPoPConfigState | undefined = config?.[STATE];
    if (!state) {
      if (error !== undefined) throw error;
      return response;
    }
    // Where a browser's XHR followed a redirect: learn only from the origin the proof was for.
    const landed: unknown = response.request?.responseURL ?? response.request?.res?.responseUrl;
    const reason =
      state.attempt &&
      (!landed || typeof landed !== 'string' || landed.startsWith(`${state.origin}/`))
        ? await session.inspect(
            state.origin,
            {
              status: state.retried ? 0 : response.status,
              header: (name) => headerOf(response.headers, name),
              jsonError: async () => {
                let data = response.data;
                if (typeof data === 'string' && data.length <= 16384) {
                  try {
                    data = JSON.parse(data);
                  } catch {
                    return undefined;
                  }
                }
                return typeof data?.error === 'string' ? data.error : undefined;
              },
            },
            state.attempt,
          )
        : undefined;
    if (reason !== undefined) {
      if (isOneShot(config.data)) {
        session.emit({ type: 'not-retried', origin: state.origin, reason: 'body_not_replayable' });
        throw notReplayable('a nonce challenge (the nonce is stored)', {
          cause: error ?? response,
        });
      }
      session.emit({ type: 'retry', origin: state.origin, reason });
      state.retried = true;
      return instance.request(config);
    }
    const url = instance.getUri(config);
    const hop = state.follow
      ? nextHop(
          response.status,
          headerOf(response.headers, 'location'),
          {
            url,
            method: normalizeMethod(config.method ?? 'GET'),
            hops: state.hops,
            max: state.max,
          },
          isOneShot(config.data),
        )
      : undefined;
    if (!hop) {
      if (error !== undefined) throw error;
      return response;
    }
    session.emit({ type: 'redirect', origin: state.origin, to: hop.origin });
    const next = {
      ...config,
      url: hop.url,
      baseURL: '',
      // the Location is the whole URL: no params again (an empty URLSearchParams is not merged
      // with the instance's default params, an empty object would be)
      params: new URLSearchParams(),
      method: hop.method,
      headers: plain(config.headers),
      [STATE]: { ...state, hops: state.hops + 1 } satisfies DPoPConfigState,
    };
    if (hop.dropBody) {
      next.data = undefined;
      for (const name of BODY_HEADERS) setHeader(next, name, false);
    }
    if (hop.origin !== state.origin) {
      delete next[STATE].attempt;
      next.auth = null;
      const sensitive: unknown = config.sensitiveHeaders;
      for (const name of [...CROSS_ORIGIN_DROPPED, ...(Array.isArray(sensitive) ? sensitive : [])])
        setHeader(next, String(name), false);
    }
    if (typeof config.beforeRedirect === 'function') {
      const target = new URL(hop.url);
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
        { url, method: config.method, headers: plain(config.headers) },
      );
    }
    return instance.request(next);
  };

  const responseId = instance.interceptors.response.use(
    (response: any) => onResponse(response),
    async (error: any) => {
      if (!error?.response) throw error;
      return onResponse(error.response, error);
    },
  );

  return () => {
    instance.interceptors.request.eject(requestId);
    instance.interceptors.response.eject(responseId);
  };
}
