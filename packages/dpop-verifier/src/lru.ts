/**
 * A bounded map that evicts the least recently used entry, approximately: Map insertion order
 * is the recency order, and a hit moves its entry to the newest end only once half the capacity
 * has been inserted after it. So a hot entry costs one lookup per hit (no delete and re-insert
 * each time), and an entry that is read survives at least `max / 2` further insertions.
 * `get` and `set` are O(1); the size never exceeds `max`. @internal
 */
export class Lru<K, V> {
  readonly #max: number;
  readonly #refreshAge: number;
  readonly #map = new Map<K, { value: V; stamp: number }>();
  #clock = 0;

  constructor(max: number) {
    this.#max = max;
    this.#refreshAge = Math.floor(max / 2);
  }

  get(key: K): V | undefined {
    const entry = this.#map.get(key);
    if (entry === undefined) return undefined;
    if (this.#clock - entry.stamp >= this.#refreshAge) {
      this.#map.delete(key);
      entry.stamp = ++this.#clock;
      this.#map.set(key, entry);
    }
    return entry.value;
  }

  set(key: K, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, { value, stamp: ++this.#clock });
    if (this.#map.size > this.#max) this.#map.delete(this.#map.keys().next().value as K);
  }

  delete(key: K): void {
    this.#map.delete(key);
  }

  get size(): number {
    return this.#map.size;
  }
}
