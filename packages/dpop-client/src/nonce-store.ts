import { invalidValue } from './errors.ts';

/**
 * Where {@link createDPoPFetch} keeps the latest `DPoP-Nonce` per origin (RFC 9449 §8, §9).
 * Implement it to persist nonces (e.g. `sessionStorage`, React Native MMKV); methods may be
 * synchronous or return promises.
 */
export interface NonceStore {
  get(origin: string): string | undefined | Promise<string | undefined>;
  set(origin: string, nonce: string): void | Promise<void>;
}

/**
 * A bounded in-memory LRU of nonces per origin (default 100 origins). A server cannot grow it
 * beyond its bound: each nonce is at most 1 KiB and a full store evicts the least recently used.
 */
export class MemoryNonceStore implements NonceStore {
  readonly #max: number;
  readonly #map = new Map<string, string>();

  constructor(options: { maxEntries?: number } = {}) {
    const max = options.maxEntries ?? 100;
    if (!Number.isInteger(max) || max < 1) {
      throw invalidValue('options.maxEntries', 'must be a positive integer');
    }
    this.#max = max;
  }

  get(origin: string): string | undefined {
    const value = this.#map.get(origin);
    if (value !== undefined) {
      this.#map.delete(origin);
      this.#map.set(origin, value);
    }
    return value;
  }

  set(origin: string, nonce: string): void {
    this.#map.delete(origin);
    this.#map.set(origin, nonce);
    if (this.#map.size > this.#max) this.#map.delete(this.#map.keys().next().value as string);
  }

  /** Number of origins held. */
  get size(): number {
    return this.#map.size;
  }
}
