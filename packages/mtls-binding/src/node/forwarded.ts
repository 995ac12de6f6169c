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
