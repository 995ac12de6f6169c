// The grant records of the minimal authorization server: one-time authorization codes and
// rotating refresh tokens grouped in families, with reuse detection (RFC 6749 §4.1.2, OAuth 2.0
// Security BCP RFC 9700 §4.14). In memory here; the interface is what a database-backed store
// needs to offer. Codes and refresh tokens are kept under their SHA-256, never in clear.
import { createHash, randomBytes } from 'node:crypto';

/** An authorization code as the authorization endpoint recorded it. */
export interface CodeRecord {
  clientId: string;
  redirectUri: string;
  /** The PKCE `code_challenge` (method S256 only). */
  codeChallenge: string;
  /** `dpop_jkt` of the authorization request (RFC 9449 §10), when the client sent one. */
  dpopJkt?: string;
  subject: string;
  scope: string;
  /** ms since epoch. */
  expiresAt: number;
  /** The token family this code starts: revoked if the code is ever used twice. */
  familyId: string;
}

/** A refresh token, DPoP-bound (public clients must have bound refresh tokens, RFC 9449 §5). */
export interface RefreshTokenRecord {
  familyId: string;
  clientId: string;
  /** The `jkt` the refresh token is bound to. */
  jkt: string;
  subject: string;
  scope: string;
  /** ms since epoch. */
  expiresAt: number;
}

/** What the token endpoint reads and, only after the proof is committed, changes. */
export interface GrantStore {
  /** Records a fresh code (the authorization endpoint). */
  saveCode(code: string, record: CodeRecord): Promise<void>;
  /** Read-only: the code's record, used or not (`used` tells), or `undefined`. */
  findCode(code: string | undefined): Promise<Readonly<CodeRecord & { used: boolean }> | undefined>;
  /**
   * Compare-and-set: marks the code used if nobody did, and answers whether this call did. Of
   * two requests racing on one code, exactly one gets `true`. SQL:
   * `UPDATE codes SET used = true WHERE hash = $1 AND NOT used` (one row updated: this call won).
   */
  consumeCode(code: string): Promise<boolean>;
  /** Records a fresh refresh token (the first of a family, from a code). */
  saveRefreshToken(token: string, record: RefreshTokenRecord): Promise<void>;
  /** Read-only: the token's record, rotated or not (`rotated` tells), or `undefined`. */
  findRefreshToken(
    token: string | undefined,
  ): Promise<Readonly<RefreshTokenRecord & { rotated: boolean }> | undefined>;
  /**
   * Compare-and-set: if `token` is not rotated yet and its family is not revoked, marks it
   * rotated and records `next` in the same step, and answers `true`; else changes nothing and
   * answers `false` (a reuse, or a family revoked meanwhile). `next` joins `token`'s family.
   * One transaction in a database.
   */
  rotateRefreshToken(token: string, next: string, record: RefreshTokenRecord): Promise<boolean>;
  /** Read-only. */
  isRevoked(familyId: string): Promise<boolean>;
  /** Revokes every refresh token of the family, now and later (reuse detection). Idempotent. */
  revokeFamily(familyId: string): Promise<void>;
}

const hash = (value: string): string => createHash('sha256').update(value).digest('base64url');

/** A fresh 256-bit opaque value: codes, refresh tokens, family ids. */
export const newOpaqueValue = (): string => randomBytes(32).toString('base64url');

/**
 * The in-memory {@link GrantStore}. Each method completes its check and its change with no
 * `await` in between, which is what makes them atomic in one Node process.
 */
export function createMemoryGrantStore(): GrantStore {
  const codes = new Map<string, CodeRecord & { used: boolean }>();
  const refreshTokens = new Map<string, RefreshTokenRecord & { rotated: boolean }>();
  const revoked = new Set<string>();
  return {
    async saveCode(code, record) {
      codes.set(hash(code), { ...record, used: false });
    },
    async findCode(code) {
      const record = code === undefined ? undefined : codes.get(hash(code));
      return record && { ...record };
    },
    async consumeCode(code) {
      const record = codes.get(hash(code));
      if (!record || record.used) return false;
      record.used = true;
      return true;
    },
    async saveRefreshToken(token, record) {
      refreshTokens.set(hash(token), { ...record, rotated: false });
    },
    async findRefreshToken(token) {
      const record = token === undefined ? undefined : refreshTokens.get(hash(token));
      return record && { ...record };
    },
    async rotateRefreshToken(token, next, record) {
      const current = refreshTokens.get(hash(token));
      if (!current || current.rotated || revoked.has(current.familyId)) return false;
      current.rotated = true;
      refreshTokens.set(hash(next), { ...record, familyId: current.familyId, rotated: false });
      return true;
    },
    async isRevoked(familyId) {
      return revoked.has(familyId);
    },
    async revokeFamily(familyId) {
      revoked.add(familyId);
    },
  };
}
