/** Every 16-character window of each secret: a message containing one leaks part of a secret. */
export function secretWindows(secrets: Iterable<string>, width = 16): Set<string> {
  const out = new Set<string>();
  for (const s of secrets)
    for (let i = 0; i + width <= s.length; i++) out.add(s.slice(i, i + width));
  return out;
}

/** The first leaked window found in `text`, or undefined. */
export function findLeak(text: string, windows: Set<string>, width = 16): string | undefined {
  for (let i = 0; i + width <= text.length; i++) {
    const w = text.slice(i, i + width);
    if (windows.has(w)) return w;
  }
  return undefined;
}

/** Shapes of secrets, for output whose secrets the test does not hold (JWTs, PEM bodies, JWK private members). */
export const SECRET_SHAPES: RegExp[] = [
  /eyJ[A-Za-z0-9_-]{12,}/, // a JWS/JWT header
  /MII[A-Za-z0-9+/]{16,}/, // DER in base64 (certificates, keys)
  /-----BEGIN [A-Z ]*(PRIVATE KEY|CERTIFICATE)-----/,
  /"d"\s*:\s*"[A-Za-z0-9_-]{16,}"/, // a private JWK member
];

/** Captures everything written through console.* while `fn` runs. */
export async function captureConsole<T>(
  fn: () => Promise<T>,
): Promise<{ result: T; output: string }> {
  const methods = ['log', 'info', 'warn', 'error', 'debug'] as const;
  const originals = methods.map((m) => console[m]);
  let output = '';
  for (const m of methods)
    console[m] = (...args: unknown[]) => void (output += `${args.map(String).join(' ')}\n`);
  try {
    return { result: await fn(), output };
  } finally {
    methods.forEach((m, i) => (console[m] = originals[i]!));
  }
}
