import { Agent, fetch as undiciFetch } from 'undici';

/** A fetch that trusts the demo CA (and presents no client certificate). */
export function fetchTrusting(caPem: string): typeof globalThis.fetch {
  const agent = new Agent({ connect: { ca: caPem } });
  return ((input: string | URL | Request, init?: RequestInit) =>
    undiciFetch(
      input as never,
      { ...(init as object), dispatcher: agent } as never,
    )) as unknown as typeof globalThis.fetch;
}
