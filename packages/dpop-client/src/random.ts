import { DPoPClientError } from './errors.ts';

/**
 * Fills `bytes` from the platform CSPRNG, `crypto.getRandomValues` (browsers, Node, Deno, Bun,
 * Workers; on React Native as `react-native-get-random-values` or `expo-crypto` installs it).
 * Returns `false` when the runtime has none; never falls back to `Math.random`. @internal
 */
export function fillRandom(bytes: Uint8Array): boolean {
  const c = (globalThis as { crypto?: { getRandomValues?: unknown } }).crypto;
  if (c === undefined || c === null || typeof c.getRandomValues !== 'function') return false;
  (c as Crypto).getRandomValues(bytes as Uint8Array<ArrayBuffer>);
  return true;
}

/** The typed error for a runtime without a CSPRNG. @internal */
export function noRandom(): DPoPClientError {
  return new DPoPClientError(
    'ERR_DPOP_NO_RANDOM',
    'this runtime has no crypto.getRandomValues: on React Native install ' +
      'react-native-get-random-values (import it first) or expo-crypto, ' +
      'or give the DPoPSigner a randomBytes(length) backed by the platform CSPRNG',
  );
}
