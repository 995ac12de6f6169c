/**
 * The access token's confirmation (`cnf`) against the request: `jkt` needs the `DPoP` scheme
 * and a proof by that key (RFC 9449 §6.1, §7; a bound token sent as `Bearer` is a downgrade),
 * `x5t#S256` the client certificate it names (RFC 8705 §3); any other member is refused; a
 * token bound both ways needs both.
 * @module
 */
import type { TokenClaims } from '../access-token.ts';
import { refuse } from '../errors.ts';
import { timingSafeEqual } from '../timing-safe.ts';
import type { AuthPolicy } from './types.ts';

const THUMBPRINT = /^[A-Za-z0-9_-]{43}$/;
const KNOWN_CNF = new Set(['jkt', 'x5t#S256']);

/** What a token is bound to, once the form of its `cnf` is checked. @internal */
export interface Confirmation {
  jkt: string | undefined;
  x5t: string | undefined;
}

/**
 * Checks the token's `cnf` against the scheme it came with; returns its members (well-formed
 * thumbprints). Synchronous. @internal
 */
export function checkConfirmation(
  policy: AuthPolicy,
  scheme: 'DPoP' | 'Bearer',
  claims: TokenClaims,
): Confirmation {
  const cnf = claims.cnf;
  const members = cnf !== null && typeof cnf === 'object' ? Object.keys(cnf) : undefined;
  if (cnf !== undefined && (members === undefined || Array.isArray(cnf) || members.length === 0))
    throw refuse('cnf_malformed');
  if (members !== undefined) {
    for (const member of members) if (!KNOWN_CNF.has(member)) throw refuse('cnf_unknown');
  }
  const jkt = cnf?.jkt;
  const x5t = cnf?.['x5t#S256'];
  if (scheme === 'DPoP') {
    if (typeof jkt !== 'string' || !THUMBPRINT.test(jkt))
      throw refuse(jkt === undefined ? 'token_not_bound' : 'cnf_malformed', {
        description: 'The access token is not bound to a DPoP key',
      });
  } else if (jkt !== undefined) {
    throw refuse('downgrade');
  } else if (x5t === undefined && !policy.allowUnboundBearer) {
    throw refuse('token_not_bound', {
      description: 'This resource requires a sender-constrained access token (DPoP or mTLS)',
    });
  }
  // The certificate binding first: a comparison, cheaper than a proof signature.
  if (x5t !== undefined && (typeof x5t !== 'string' || !THUMBPRINT.test(x5t)))
    throw refuse('cnf_malformed', {
      description: 'The access token certificate confirmation is malformed',
    });
  return { jkt: jkt as string | undefined, x5t: x5t as string | undefined };
}

/**
 * RFC 8705 §3: the presented certificate's thumbprint (as `certificate` reported it) is the
 * bound one, in constant time. @internal
 */
export function checkCertificate(presented: unknown, x5t: string): void {
  if (presented === undefined) throw refuse('certificate_missing');
  if (typeof presented !== 'string' || !timingSafeEqual(presented, x5t))
    throw refuse('certificate_mismatch');
}

/**
 * The replay store's unit of fairness for a token (see `ProofExpectation.account`): its
 * subject, else its client, else none (the proof key then). An account costs an attacker a
 * registration; a key costs nothing. @internal
 */
export function accountOf(claims: TokenClaims): string | undefined {
  const {
    iss,
    sub,
    client_id: client,
  } = claims as {
    iss?: unknown;
    sub?: unknown;
    client_id?: unknown;
  };
  // (qualified by the issuer: a subject is unique per issuer, RFC 7519 §4.1.2)
  const issuer = typeof iss === 'string' ? iss : '';
  if (typeof sub === 'string' && sub.length > 0) return `sub:${issuer}\n${sub}`;
  if (typeof client === 'string' && client.length > 0) return `client:${issuer}\n${client}`;
  return undefined;
}
