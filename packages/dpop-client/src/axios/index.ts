/**
 * `@popkit/dpop-client/axios`: DPoP for axios instances, on the same core as `createDPoPFetch`.
 * axios is an optional peer dependency; this module only uses the instance you pass in.
 * @packageDocumentation
 */
import { invalidType } from '../errors.ts';
import { normalizeMethod } from '../htu.ts';
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

interface DPoPConfigState {
  attempt: Attempt;
  origin: string;
  retried: boolean;
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

function setHeader(config: any, name: string, value: string): void {
  if (config.headers && typeof config.headers.set === 'function') config.headers.set(name, value);
  else config.headers = { ...config.headers, [name]: value };
}

/**
 * Adds DPoP to an axios instance with a request and a response interceptor: every request gets
 * a proof (`config.accessToken` or an existing `Authorization: DPoP` header adds `ath`), nonces
 * are kept per origin, and a `use_dpop_nonce` answer (401 challenge or 400 JSON) or a clock
 * rejection is retried exactly once. Returns a function that removes the interceptors.
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
    const origin = new URL(url).origin;
    const attempt = await session.attempt(method, url, origin, accessToken);
    setHeader(config, 'DPoP', attempt.proof);
    const previous: DPoPConfigState | undefined = config[STATE];
    config[STATE] = {
      attempt,
      origin,
      retried: previous?.retried ?? false,
    } satisfies DPoPConfigState;
    return config;
  });

  const onResponse = async (response: any, error?: unknown): Promise<any> => {
    const config = response?.config;
    const state: DPoPConfigState | undefined = config?.[STATE];
    if (!state) return response;
    const reason = await session.inspect(
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
    );
    if (reason !== undefined && !state.retried) {
      session.emit({ type: 'retry', origin: state.origin, reason });
      state.retried = true;
      return instance.request(config);
    }
    if (error !== undefined) throw error;
    return response;
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
