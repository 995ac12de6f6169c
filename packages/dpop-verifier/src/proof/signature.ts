/**
 * RFC 9449 §4.3 check 6: the JWS signature verifies with the key of the `jwk` header
 * (RFC 7515 §5.2). Synchronous with `node:crypto`, a promise with WebCrypto.
 * @module
 */
import { decodeBase64url, verifySignature } from '#crypto';
import { refuse } from '../errors.ts';
import type { CompactJws } from './compact.ts';
import type { HeaderEntry } from './policy.ts';

/**
 * Check 6: a signature of the wrong length is refused before the key is used; a platform
 * failure counts as an invalid signature. Throws (or rejects with) `signature`. @internal
 */
export function checkSignature(entry: HeaderEntry, jws: CompactJws): void | Promise<void> {
  const signature = decodeBase64url(jws.signature);
  if (signature.length !== entry.signatureLength) throw refuse('signature');
  let answer: boolean | Promise<boolean>;
  try {
    answer = verifySignature(entry.alg, entry.key, jws.proof.slice(0, jws.signed), signature);
  } catch {
    answer = false;
  }
  if (typeof answer === 'boolean') return signatureValid(answer);
  return answer.then(signatureValid, () => signatureValid(false));
}

function signatureValid(valid: boolean): void {
  if (!valid) throw refuse('signature');
}
