import { invalidValue } from './errors.ts';

/**
 * Where {@link createDPoPFetch} keeps the latest `DPoP-Nonce` per origin (RFC 9449 §8, §9).
 * Implement it to persist nonces (e.g. `sessionStorage`, React Native MMKV); methods may be
 * synchronous or return promises. The wrapper only stores nonces from origins the application
 * itself called (never from an origin it was redirected to), but a store that persists them
 * should still be bounded.
 */
export interface NonceStore {
  get(origin: string): string | undefined | Promise<string | undefined>;
  set(origin: string, nonce: string): void | Promise<void>;
}

/** A `Map` of at most `max` entries that evicts the least recently used. @internal */
export class LruMap<V> {
  readonly #max: number;
  readonly #map = new Map<string, V>();

  constructor(max: number) {
    this.#max = max;
  }

  get(key: string): V | undefined {
    const value = this.#map.get(key);
    if (value !== undefined) {
      this.#map.delete(key);
      this.#map.set(key, value);
    }
    return value;
  }

  set(key: string, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    if (this.#map.size > this.#max) this.#map.delete(this.#map.keys().next().value as string);
  }

  /** Number of keys held. */
  get size(): number {
    return this.#map.size;
  }
}

/**
 * A bounded in-memory LRU of nonces per origin (default 100 origins). A server cannot grow it
 * beyond its bound: each nonce is at most 1 KiB and a full store evicts the least recently used.
 */
export class MemoryNonceStore extends LruMap<string> implements NonceStore {
  constructor(options: { maxEntries?: number } = {}) {
    const max = options.maxEntries ?? 100;
    if (!Number.isInteger(max) || max < 1) {
      throw invalidValue('options.maxEntries', 'must be a positive integer');
    }
    super(max);
  }
}
