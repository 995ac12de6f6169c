import { REFUSALS } from '../errors.ts';

/**
 * Where the verifier records proof identifiers so that each proof is accepted once
 * (RFC 9449 §11.1). `useOnce` must be atomic insert-if-absent: `true` means first use.
 * It may answer synchronously (memory) or with a promise (Redis). Throwing, or rejecting,
 * makes the verifier refuse the request with a 503 (fail closed), never accept it.
 */
export interface ReplayStore {
  /**
   * @param key hash of (jkt, jti): fixed length, no secrets.
   * @param expiresAt ms since epoch after which the proof could no longer be accepted anyway:
   *   the entry must live until then, and need not live longer.
   * @param scope the key thumbprint, the unit of fairness when the store is under pressure.
   */
  useOnce(key: string, expiresAt: number, scope?: string): boolean | Promise<boolean>;
  /** Fill level and refusals, when the store can tell (reported through `onResult`). */
  stats?(): ReplayStoreStats;
  /**
   * When the store started remembering (ms since the epoch), if it can forget on a restart
   * (an in-process store). The verifier then refuses proofs whose `iat` is older: a proof
   * accepted before the restart cannot be accepted again. Omit for a store that survives
   * restarts of the servers using it.
   */
  readonly since?: number;
  /**
   * Changes whenever the store may have forgotten entries (a new process, a reset). The
   * verifier binds its server nonces to it, so a nonce issued before a restart is refused with
   * `use_dpop_nonce` and a fresh one (the client retries once).
   */
  readonly epoch?: string;
}

/** What a replay store reports about itself, for metrics. */
export interface ReplayStoreStats {
  /** Entries held now. */
  entries: number;
  /** Most entries it can hold. */
  capacity: number;
  /** `entries / capacity`, from 0 to 1. */
  fill: number;
  /** Key thumbprints holding entries. */
  keys: number;
  /** Proofs refused since start because the store was full. */
  refusedFull: number;
  /** Proofs refused since start because their key held more than its fair share. */
  refusedOverShare: number;
  /** Bytes of memory the store's tables use. */
  bytes: number;
}

/** Why a replay store could not record a proof. */
export type ReplayStoreFailure = 'replay_store_full' | 'replay_over_share' | 'replay_store_error';

/**
 * A replay store that could not answer: full, over a key's share, unreachable or too slow.
 * `code` is the OAuth error the verifier answers with (`server_error`, HTTP 503, retryable:
 * it fails closed); `reason` says why, and becomes the refusal's `reason`.
 */
export class ReplayStoreError extends Error {
  readonly code: 'server_error';
  readonly reason: ReplayStoreFailure;
  constructor(reason: ReplayStoreFailure, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ReplayStoreError';
    this.code = REFUSALS[reason][0] as 'server_error';
    this.reason = reason;
  }
}
