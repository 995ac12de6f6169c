import { dpopChallengeError } from './challenge.ts';
import { invalidType, invalidValue } from './errors.ts';
import type { OptionNames } from './options.ts';
import { parseHttpDate } from './http-date.ts';
import type { NonceStore } from './nonce-store.ts';
import { LruMap, MemoryNonceStore } from './nonce-store.ts';
import { createProof, isValidNonce } from './proof.ts';
import type { DPoPKey } from './signer.ts';

/** Something a {@link createDPoPFetch} wrapper did, for logs and metrics. Never holds secrets. */
export type DPoPFetchEvent =
  | { type: 'nonce'; origin: string }
  | {
      type: 'retry';
      origin: string;
      reason: 'use_dpop_nonce' | 'clock_offset' | 'token_refreshed';
    }
  | { type: 'clock-offset'; origin: string; offset: number }
  | { type: 'redirect'; origin: string; to: string }
  | { type: 'not-retried'; origin: string; reason: 'same_nonce' | 'body_not_replayable' };

/** Options shared by the fetch and axios wrappers. */
export interface DPoPSessionOptions {
  /** Where nonces are kept per origin. Default: `new MemoryNonceStore({ maxEntries: 100 })`. */
  nonceStore?: NonceStore;
  /** Header `alg` for Ed25519 keys. Default `EdDSA`. */
  ed25519Alg?: 'EdDSA' | 'Ed25519';
  /** Called for each nonce, retry and clock-offset change (no secrets). */
  onEvent?: (event: DPoPFetchEvent) => void;
  /**
   * Learn the server clock offset from `Date` when a proof is rejected. Default `true`. The
   * offset applies only to the origin whose response carried the `Date`, and one over 24 hours
   * is ignored.
   */
  learnClockOffset?: boolean;
}

/** The names of {@link DPoPSessionOptions}, for the unknown-option check. @internal */
export const SESSION_OPTION_NAMES = {
  nonceStore: true,
  ed25519Alg: true,
  onEvent: true,
  learnClockOffset: true,
} as const satisfies OptionNames<DPoPSessionOptions>;

/** Offsets under this many seconds are treated as "in sync" (Date has 1 s resolution). */
const CLOCK_SLACK = 5;
/**
 * Largest clock offset applied (seconds). It covers a device clock set to the wrong time zone
 * (up to a day) but not a `Date` months off: an offset makes the client sign proofs dated in
 * the server's "future", which whoever controls that response could keep and use later
 * (pre-generated proofs, RFC 9449 §11.1); beyond a day it is no longer a plausible clock error.
 */
const MAX_OFFSET = 24 * 3600;
const MAX_ORIGINS = 100;

/** What the wrapper needs to know about a response to decide on the one retry. @internal */
export interface ResponseView {
  status: number;
  header(name: string): string | null | undefined;
  /** The `error` member of a JSON body, read lazily and bounded. */
  jsonError(): Promise<string | undefined>;
}

/** The proof and what it was made with, for one attempt. @internal */
export interface Attempt {
  proof: string;
  nonce: string | undefined;
  offset: number;
}

/**
 * The transport-independent core of the DPoP fetch and axios wrappers: nonces per origin, clock
 * offset per origin, and the retry decision (RFC 9449 §8 and §9). @internal
 */
export class DPoPSession {
  readonly #key: DPoPKey;
  readonly #nonces: NonceStore;
  readonly #offsets = new LruMap<number>(MAX_ORIGINS);
  readonly #ed25519Alg: 'EdDSA' | 'Ed25519' | undefined;
  readonly #onEvent: ((event: DPoPFetchEvent) => void) | undefined;
  readonly #learnClock: boolean;

  constructor(key: DPoPKey, options: DPoPSessionOptions = {}) {
    if (key === null || typeof key !== 'object')
      throw invalidType('key', 'a CryptoKeyPair or a DPoPSigner');
    if (options === null || typeof options !== 'object') throw invalidType('options', 'an object');
    const { nonceStore, ed25519Alg, onEvent, learnClockOffset = true } = options;
    if (
      nonceStore !== undefined &&
      (typeof nonceStore?.get !== 'function' || typeof nonceStore?.set !== 'function')
    ) {
      throw invalidType('options.nonceStore', 'an object with get and set methods');
    }
    if (ed25519Alg !== undefined && ed25519Alg !== 'EdDSA' && ed25519Alg !== 'Ed25519') {
      throw invalidValue('options.ed25519Alg', 'must be "EdDSA" or "Ed25519"');
    }
    if (onEvent !== undefined && typeof onEvent !== 'function')
      throw invalidType('options.onEvent', 'a function');
    this.#key = key;
    this.#nonces = nonceStore ?? new MemoryNonceStore();
    this.#ed25519Alg = ed25519Alg;
    this.#onEvent = onEvent;
    this.#learnClock = learnClockOffset !== false;
  }

  /** Signs a proof for one attempt with the stored nonce and clock offset of the origin. */
  async attempt(
    method: string,
    url: string,
    origin: string,
    accessToken?: string,
  ): Promise<Attempt> {
    const stored = await this.#nonces.get(origin);
    const nonce = isValidNonce(stored) ? stored : undefined;
    const offset = this.#offsets.get(origin) ?? 0;
    const proof = await createProof(
      this.#key,
      {
        method,
        url,
        ...(accessToken === undefined ? {} : { accessToken }),
        ...(nonce === undefined ? {} : { nonce }),
      },
      { clockOffset: offset, ...(this.#ed25519Alg ? { ed25519Alg: this.#ed25519Alg } : {}) },
    );
    return { proof, nonce, offset };
  }

  /**
   * Records the response's `DPoP-Nonce` and, for a rejected proof, the server clock, under
   * `origin`; returns whether the request deserves its single retry. The caller passes only
   * responses from `origin` itself to a request that carried this session's proof for it.
   */
  async inspect(
    origin: string,
    response: ResponseView,
    sent: Attempt,
  ): Promise<'use_dpop_nonce' | 'clock_offset' | undefined> {
    const fresh = response.header('dpop-nonce');
    let newNonce: string | undefined;
    if (fresh != null && isValidNonce(fresh) && fresh !== sent.nonce) {
      newNonce = fresh;
      await this.#nonces.set(origin, fresh);
      this.#emit({ type: 'nonce', origin });
    }
    if (response.status !== 401 && response.status !== 400) return undefined;
    let error = dpopChallengeError(response.header('www-authenticate'));
    if (error === undefined && response.status === 400) {
      const type = response.header('content-type') ?? '';
      if (/\bjson\b/i.test(type)) error = await response.jsonError();
    }
    if (error !== 'use_dpop_nonce' && error !== 'invalid_dpop_proof') return undefined;
    const offsetChanged = this.#learnOffset(origin, response.header('date'), sent.offset);
    if (error === 'use_dpop_nonce') {
      if (newNonce !== undefined) return 'use_dpop_nonce';
      // The nonce was right but the proof's iat was not (a server that answers a stale iat
      // with use_dpop_nonce and its current nonce, as popkit's does): the clock is the fix.
      if (offsetChanged) return 'clock_offset';
      this.#emit({ type: 'not-retried', origin, reason: 'same_nonce' });
      return undefined;
    }
    return offsetChanged ? 'clock_offset' : undefined;
  }

  /** The clock offset (seconds) applied to proofs for `origin`. */
  offset(origin: string): number {
    return this.#offsets.get(origin) ?? 0;
  }

  emit(event: DPoPFetchEvent): void {
    this.#emit(event);
  }

  #emit(event: DPoPFetchEvent): void {
    try {
      this.#onEvent?.(event);
    } catch {
      // a failing observer must not break requests
    }
  }

  #learnOffset(origin: string, date: string | null | undefined, used: number): boolean {
    if (!this.#learnClock || !date) return false;
    const server = parseHttpDate(date);
    if (server === undefined) return false;
    let offset = Math.round((server - Date.now()) / 1000);
    if (Math.abs(offset) > MAX_OFFSET) return false;
    if (Math.abs(offset) < CLOCK_SLACK) offset = 0;
    if (Math.abs(offset - used) < CLOCK_SLACK) return false;
    this.#offsets.set(origin, offset);
    this.#emit({ type: 'clock-offset', origin, offset });
    return true;
  }
}

/** Reads at most `limit` bytes of a JSON body and returns its string `error` member. @internal */
export async function boundedJsonError(
  body: ReadableStream<Uint8Array> | null,
  text?: () => Promise<string>,
  limit = 16384,
): Promise<string | undefined> {
  if (body === null) {
    if (text === undefined) return undefined;
    try {
      const t = await text();
      return t.length > limit ? undefined : jsonErrorOf(t);
    } catch {
      return undefined;
    }
  }
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > limit) return undefined;
      chunks.push(value);
    }
  } catch {
    return undefined;
  } finally {
    reader.releaseLock();
  }
  const bytes = new Uint8Array(size);
  let o = 0;
  for (const c of chunks) {
    bytes.set(c, o);
    o += c.byteLength;
  }
  // Hermes has no TextDecoder: the `error` codes are ASCII, so bytes as code units do there.
  return jsonErrorOf(
    typeof TextDecoder === 'function'
      ? new TextDecoder().decode(bytes)
      : String.fromCharCode.apply(null, Array.from(bytes)),
  );
}

function jsonErrorOf(text: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(text);
    const error = (parsed as { error?: unknown } | null)?.error;
    return typeof error === 'string' ? error : undefined;
  } catch {
    return undefined;
  }
}
