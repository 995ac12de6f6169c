// The measuring loop of the Durable Object and Deno KV store rows, run INSIDE workerd and deno
// (bundled into edge-store-do.ts and edge-store-kv.ts): cases interleaved round by round, each
// round ~`ms` of calls with `inFlight` in flight; ops/s per round and p99 per case.

export interface EdgeCase {
  name: string;
  /** One call (with a fresh key). */
  run: () => Promise<unknown>;
}

export interface EdgeMeasured {
  name: string;
  /** ops/s of each round. */
  rounds: number[];
  /** p99 latency of one call over every round, in ms. */
  p99: number;
}

export async function measureEdge(
  cases: EdgeCase[],
  rounds: number,
  ms: number,
  inFlight: number,
): Promise<EdgeMeasured[]> {
  const out = cases.map((c) => ({ name: c.name, rounds: [] as number[], times: [] as number[] }));
  // warm-up: a round of each, not counted
  for (const c of cases) await Promise.all(Array.from({ length: inFlight * 4 }, () => c.run()));
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < cases.length; i++) {
      const c = cases[i]!;
      const times = out[i]!.times;
      let ops = 0;
      const start = Date.now();
      const end = start + ms;
      await Promise.all(
        Array.from({ length: inFlight }, async () => {
          while (Date.now() < end) {
            const t0 = performance.now();
            await c.run();
            times.push(performance.now() - t0);
            ops++;
          }
        }),
      );
      out[i]!.rounds.push((ops / Math.max(1, Date.now() - start)) * 1000);
    }
  }
  return out.map(({ name, rounds, times }) => {
    const sorted = times.sort((a, b) => a - b);
    return { name, rounds, p99: sorted[Math.floor(sorted.length * 0.99)] ?? 0 };
  });
}

/** Distinct keys of the verifier's shape (43 characters). */
export const keyMaker = (tag: string) => {
  let n = 0;
  return () => `${tag}${(n++).toString(36)}`.padEnd(43, '_');
};
