/** A client certificate taken from a TLS socket or a trusted proxy header, as DER. */
export interface PresentedCertificate {
  /** The client (leaf) certificate. */
  leaf: Uint8Array;
  /** The rest of the chain, leaf excluded, in the order presented. */
  chain: Uint8Array[];
  /**
   * Whether the TLS layer verified the chain (`socket.authorized`). `undefined` for proxy
   * headers: popkit cannot know; gate `tls_client_auth` on your proxy's own verify signal.
   */
  verified?: boolean;
}

/**
 * Certificates a chain may hold besides the leaf, from a socket or a proxy header: no real
 * client chain is longer, and none longer is read. @internal
 */
export const MAX_CHAIN = 16;
