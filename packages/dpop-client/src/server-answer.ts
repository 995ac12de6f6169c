import { parseWWWAuthenticate } from './challenge.ts';
import { parseHttpDate } from './http-date.ts';

/**
 * What a server said in a refusal, for an application to show or log: the status, the OAuth
 * `error` and `error_description` of its challenge (RFC 6750 §3, RFC 9449 §7.1: the DPoP
 * challenge's, else a Bearer one's), its time from `Date`, and the clock offset that time
 * measures. `error_description` is server text: log it, do not show it as is.
 */
export interface DPoPServerAnswer {
  /** The HTTP status. */
  status: number;
  /** The challenge's `error` (`invalid_token`, `invalid_dpop_proof`, `use_dpop_nonce`, …), if any. */
  error?: string;
  /** The challenge's `error_description`, if any. */
  errorDescription?: string;
  /** The server's time from its `Date` header (ms since the epoch), if it sent a valid one. */
  serverTime?: number;
  /**
   * The server's clock minus this one, in seconds, measured from `Date` when the response
   * arrived (`Date` has a 1 s resolution): positive when the server is ahead.
   */
  clockOffset?: number;
}

/**
 * Reads {@link DPoPServerAnswer} from a response (its headers only: the body is left unread),
 * e.g. a 401 `createDPoPFetch` returned. `DPoPClientError`s built from a response carry it as
 * `server`.
 */
export function serverAnswer(response: Response): DPoPServerAnswer {
  const answer: DPoPServerAnswer = { status: response.status };
  const challenges = parseWWWAuthenticate(response.headers.get('www-authenticate'));
  const chosen =
    challenges.find((c) => c.scheme === 'dpop' && c.params.error !== undefined) ??
    challenges.find((c) => c.params.error !== undefined);
  if (chosen?.params.error !== undefined) answer.error = chosen.params.error;
  if (chosen?.params.error_description !== undefined)
    answer.errorDescription = chosen.params.error_description;
  const serverTime = parseHttpDate(response.headers.get('date'));
  if (serverTime !== undefined) {
    answer.serverTime = serverTime;
    answer.clockOffset = Math.round((serverTime - Date.now()) / 1000);
  }
  return answer;
}
