/**
 * Unknown option names, found when a factory is built: a misspelt option (`onTokenExpred`) or
 * one from another library would otherwise be ignored silently, and the code would run with
 * the default the developer meant to change. Shared by popkit's packages (the verifier imports
 * it from `@popkit/dpop-client/internal`); not part of the public API.
 * @module
 */

/**
 * The option names of an options type, each `true`: declared beside the type with
 * `satisfies OptionNames<Options>`, so that adding an option to the type without listing it
 * (or listing one the type lacks) does not compile. @internal
 */
export type OptionNames<T> = { readonly [K in keyof T]-?: true };

/** Longest option name quoted back in an error (names come from the developer's code). */
const MAX_QUOTED = 64;

/** An option name no known one matches: printable and bounded, with the nearest known name. */
export interface UnknownOption {
  name: string;
  near: string | undefined;
}

/**
 * The first own enumerable key of `options` that is not in `known`, quoted printable and
 * bounded, with the closest known option when one is near (see {@link closest}). @internal
 */
export function unknownOption(
  options: object,
  known: Readonly<Record<string, true>>,
): UnknownOption | undefined {
  for (const name of Object.keys(options)) {
    if (Object.hasOwn(known, name)) continue;
    return { name: quote(name), near: closest(name, Object.keys(known)) };
  }
  return undefined;
}

/** The name as it may appear in a message: printable, bounded. */
function quote(name: string): string {
  // eslint-disable-next-line no-control-regex
  const printable = name.replace(/[\u0000-\u001f\u007f-\u009f"\\]/g, '?');
  return printable.length > MAX_QUOTED ? `${printable.slice(0, MAX_QUOTED)}…` : printable;
}

/**
 * The known name nearest to `name` (case-insensitive optimal string alignment distance: an
 * insertion, deletion, substitution or swap of two neighbours counts 1), when it is at most
 * `max(2, length / 3)` away, the longer name's length; ties go to the first in `known`.
 * @internal
 */
export function closest(name: string, known: readonly string[]): string | undefined {
  if (name.length > MAX_QUOTED * 2) return undefined; // nothing sensible is that long
  const lower = name.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const near = Math.max(2, Math.floor(Math.max(name.length, candidate.length) / 3));
    const limit = Math.min(near + 1, bestDistance);
    const distance = editDistance(lower, candidate.toLowerCase(), limit);
    if (distance < limit) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/**
 * Optimal string alignment distance between `a` and `b`, or any value >= `limit` once it is
 * known to reach it (rows are abandoned early). O(|a| * |b|) time, O(|b|) memory per row.
 * @internal
 */
export function editDistance(a: string, b: string, limit = Infinity): number {
  if (Math.abs(a.length - b.length) >= limit) return limit;
  let before = new Array<number>(b.length + 1).fill(0); // row i - 2
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j); // row i - 1
  let current = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    current[0] = i;
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d = Math.min(d, before[j - 2]! + 1);
      current[j] = d;
      if (d < rowMin) rowMin = d;
    }
    if (rowMin >= limit) return limit;
    [before, previous, current] = [previous, current, before];
  }
  return previous[b.length]!;
}
