/**
 * Slots for outbound calls (token introspection), shared fairly: a flood from one source cannot
 * take the slots that other sources' requests need. @internal
 *
 * - Up to `slots` calls run at once. Tokens seen active before ("known") may use every slot and
 *   wait in a priority line; tokens never seen may use all but `reserved` of them, so returning
 *   users are served whatever strangers send.
 * - When no slot is free, a request waits in its source's line (at most `perSource` waiting per
 *   source, `maxWaiting` in all, each at most `maxWaitMs`); a freed slot goes to the next source
 *   in turn (round robin), so each source gets an equal share of the calls, however fast it
 *   sends. Past those bounds the request is refused at once (the caller answers 503).
 *
 * Every line is bounded, every waiter has a deadline, and a refusal costs no call.
 */
export class FairSlots {
  readonly #unknownMax: number;
  readonly #perSource: number;
  readonly #maxWaiting: number;
  readonly #maxWaitMs: number;
  #free: number;
  #knownRunning = 0;
  #unknownRunning = 0;
  #waiting = 0;
  readonly #priority: Waiter[] = [];
  /** Waiters by source; Map order is the round-robin ring (a served source moves to the end). */
  readonly #lines = new Map<string, Waiter[]>();

  constructor(options: {
    slots: number;
    reserved: number;
    perSource: number;
    maxWaiting: number;
    maxWaitMs: number;
  }) {
    this.#free = options.slots;
    this.#unknownMax = Math.max(1, options.slots - options.reserved);
    this.#perSource = options.perSource;
    this.#maxWaiting = options.maxWaiting;
    this.#maxWaitMs = options.maxWaitMs;
  }

  /**
   * Takes a slot: `true` at once, a promise that resolves when one is granted, or `false` when
   * the request must be refused (its line is full, or it would wait past the deadline). Call
   * {@link release} with the same `known` once the call is over.
   */
  acquire(source: string, known: boolean): boolean | Promise<boolean> {
    if (this.#grantable(known) && (known || this.#lines.size === 0)) {
      this.#take(known);
      return true;
    }
    // (known tokens have a line of their own: strangers' waiters never shut them out)
    if (known ? this.#priority.length >= this.#maxWaiting : this.#waiting >= this.#maxWaiting)
      return false;
    let line: Waiter[] | undefined;
    if (!known) {
      line = this.#lines.get(source);
      if (line !== undefined && line.length >= this.#perSource) return false;
    }
    return new Promise<boolean>((resolve) => {
      const waiter: Waiter = { resolve, known, source, timer: undefined };
      waiter.timer = setTimeout(() => this.#expire(waiter), this.#maxWaitMs);
      (waiter.timer as { unref?: () => void }).unref?.();
      if (known) this.#priority.push(waiter);
      else if ((this.#waiting++, line !== undefined)) line.push(waiter);
      else this.#lines.set(source, [waiter]);
    });
  }

  /** Gives back a slot taken with `known`, and hands it to the next waiter in turn. */
  release(known: boolean): void {
    this.#free++;
    if (known) this.#knownRunning--;
    else this.#unknownRunning--;
    this.#dispatch();
  }

  #grantable(known: boolean): boolean {
    return this.#free > 0 && (known || this.#unknownRunning < this.#unknownMax);
  }

  #take(known: boolean): void {
    this.#free--;
    if (known) this.#knownRunning++;
    else this.#unknownRunning++;
  }

  /** Grants free slots: the priority line first, then one source at a time, in turn. */
  #dispatch(): void {
    while (this.#free > 0) {
      const next = this.#priority.shift();
      if (next !== undefined) {
        this.#grant(next);
        continue;
      }
      if (!this.#grantable(false) || this.#lines.size === 0) return;
      const [source, line] = this.#lines.entries().next().value as [string, Waiter[]];
      const waiter = line.shift()!;
      this.#lines.delete(source);
      if (line.length > 0) this.#lines.set(source, line); // to the end of the ring
      this.#grant(waiter);
    }
  }

  #grant(waiter: Waiter): void {
    clearTimeout(waiter.timer);
    if (!waiter.known) this.#waiting--;
    this.#take(waiter.known);
    waiter.resolve(true);
  }

  /** A waiter's deadline passed: out of its line, refused. */
  #expire(waiter: Waiter): void {
    const line = waiter.known ? this.#priority : this.#lines.get(waiter.source);
    const at = line?.indexOf(waiter) ?? -1;
    if (at < 0) return;
    line!.splice(at, 1);
    if (!waiter.known) {
      if (line!.length === 0) this.#lines.delete(waiter.source);
      this.#waiting--;
    }
    waiter.resolve(false);
  }
}

interface Waiter {
  resolve: (granted: boolean) => void;
  known: boolean;
  source: string;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/**
 * The source a request comes from, for fair shares: the peer address of its connection (an
 * IPv6 address by its /48, the block one site gets: a /64 each costs an attacker nothing), or
 * `''` when the adapter has none.
 * Behind a proxy every request has the proxy's address: pass `sourceOf` to read the client's
 * address from a header the proxy sets. @internal
 */
export function peerSource(request: { socket?: unknown }): string {
  const address = (request.socket as { remoteAddress?: unknown } | undefined)?.remoteAddress;
  if (typeof address !== 'string') return '';
  if (address.startsWith('::ffff:') && address.includes('.')) return address.slice(7);
  if (!address.includes(':')) return address;
  // expand enough to take the first four groups (the /64)
  const [head = '', tail] = address.split('::', 2) as [string, string | undefined];
  const groups = head === '' ? [] : head.split(':');
  if (tail !== undefined) {
    const rest = tail === '' ? [] : tail.split(':');
    while (groups.length + rest.length < 8) groups.push('0');
    groups.push(...rest);
  }
  return `${groups.slice(0, 3).join(':')}::/48`;
}
