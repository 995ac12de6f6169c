/**
 * Where the verifier records proof identifiers so that each proof is accepted once
 * (RFC 9449 §11.1). `useOnce` must be atomic insert-if-absent: `true` means first use.
 * It may answer synchronously (memory) or with a promise (Redis). Throwing, or rejecting,
 * makes the verifier refuse the request with a 503 (fail closed), never accept it.
 */
export interface ReplayStore {
  /**
   * @param key hash of (jkt, jti): fixed length, no secrets.
   * @param expiresAt ms since epoch after which the proof could no longer be accepted anyway.
   * @param scope the key thumbprint, for per-key quotas.
   */
  useOnce(key: string, expiresAt: number, scope?: string): boolean | Promise<boolean>;
}

/** A replay store that could not answer: full, unreachable or too slow. */
export class ReplayStoreError extends Error {
  readonly reason: 'replay_store_full' | 'replay_store_error';
  constructor(
    reason: 'replay_store_full' | 'replay_store_error',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ReplayStoreError';
    this.reason = reason;
  }
}
