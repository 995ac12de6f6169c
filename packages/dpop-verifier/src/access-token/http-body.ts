/**
 * Reading what an authorization server answers (a JWKS, an introspection response) without
 * trusting its size: a broken or hostile endpoint cannot make the verifier buffer without bound.
 * @module
 */

/** The body of `response` as text, at most `maxBytes` (UTF-8, strictly decoded); else throws. @internal */
export async function readBoundedText(response: Response, maxBytes: number): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? NaN);
  if (declared > maxBytes) {
    await response.body?.cancel().catch(() => undefined);
    throw new RangeError(`The response is larger than ${maxBytes} bytes`);
  }
  if (response.body === null) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw new RangeError(`The response is larger than ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
}

/** The body of `response` as a JSON object (not an array), at most `maxBytes`; else throws. @internal */
export async function readJsonObject(
  response: Response,
  maxBytes: number,
): Promise<Record<string, unknown>> {
  const value: unknown = JSON.parse(await readBoundedText(response, maxBytes));
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new TypeError('The response is not a JSON object');
  return value as Record<string, unknown>;
}
