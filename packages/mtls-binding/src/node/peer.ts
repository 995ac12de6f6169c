import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import type { PresentedCertificate } from './forwarded.ts';
import { MAX_CHAIN } from './forwarded.ts';

/** Something that holds a TLS socket: the socket itself, a request (`req.socket`), or `{ socket }`. */
export type SocketSource = TLSSocket | { readonly socket: unknown };

function socketOf(source: SocketSource): TLSSocket | undefined {
  const candidate = (
    typeof (source as TLSSocket)?.getPeerCertificate === 'function'
      ? source
      : (source as { socket?: unknown })?.socket
  ) as TLSSocket | undefined;
  return typeof candidate?.getPeerCertificate === 'function' ? candidate : undefined;
}

/**
 * The client certificate presented on a TLS connection, with its chain, or `undefined` when the
 * connection is not TLS or the client sent none (`getPeerCertificate()` then returns `{}`).
 * Walks the issuer chain without looping on self-signed certificates, whose
 * `issuerCertificate` points back to themselves.
 *
 * @example
 * ```ts
 * https.createServer({ key, cert, ca, requestCert: true, rejectUnauthorized: false }, (req, res) => {
 *   const presented = peerCertificate(req); // { leaf, chain, verified: req.socket.authorized }
 * });
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc8705#section-3
 */
export function peerCertificate(source: SocketSource): PresentedCertificate | undefined {
  const socket = socketOf(source);
  if (socket === undefined) return undefined;
  const cert = socket.getPeerCertificate(true) as
    DetailedPeerCertificate | Record<string, never> | null;
  if (!cert || !(cert as DetailedPeerCertificate).raw) return undefined;
  const leafCert = cert as DetailedPeerCertificate;
  const chain: Uint8Array[] = [];
  const seen = new Set<string>([leafCert.fingerprint256]);
  let current = leafCert.issuerCertificate;
  while (current && current.raw && !seen.has(current.fingerprint256) && chain.length < MAX_CHAIN) {
    seen.add(current.fingerprint256);
    chain.push(new Uint8Array(current.raw));
    current = current.issuerCertificate;
  }
  return { leaf: new Uint8Array(leafCert.raw), chain, verified: socket.authorized === true };
}
