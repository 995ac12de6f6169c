// What Envoy writes into x-forwarded-client-cert, re-stated from its behaviour (not its code) so
// tests can play Envoy: ConnectionManagerUtility::mutateXfccRequestHeader
// (source/common/http/conn_manager_utility.cc) and the connection info's URL-encoded PEM.
import 'reflect-metadata';
import { X509Certificate, createHash } from 'node:crypto';
import * as x509 from '@peculiar/x509';

/** Envoy's `set_current_client_cert_details`. */
export interface Details {
  cert?: boolean;
  chain?: boolean;
  subject?: boolean;
  uri?: boolean;
  dns?: boolean;
}

/** A client certificate as the TLS layer hands it to Envoy: the leaf, then what the client sent. */
export interface Peer {
  certPem: string;
  chainPems?: string[];
}

/** Envoy's URL-encoded PEM: newline, space, `+`, `/` and `=` escaped, nothing else. */
export const envoyUrlEncode = (pem: string): string =>
  pem.replace(
    /[\n +/=]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`,
  );

/** SHA-256 of the DER, lower-case hex: Envoy's `Hash`. */
export const envoyHash = (pem: string): string =>
  createHash('sha256').update(new X509Certificate(pem).raw).digest('hex');

const SHORT_NAMES: Record<string, string> = {
  '0.9.2342.19200300.100.1.1': 'UID',
  E: 'emailAddress',
};

/** One attribute value printed with RFC 2253 escapes, as BoringSSL's XN_FLAG_RFC2253 does. */
function rfc2253Value(value: string): string {
  const bytes = new TextEncoder().encode(value);
  let out = '';
  bytes.forEach((c, i) => {
    const ch = String.fromCharCode(c);
    if (c < 0x20 || c >= 0x7f) out += `\\${c.toString(16).toUpperCase().padStart(2, '0')}`;
    else if (
      ch === '\\' ||
      ch === '"' ||
      ',+<>;'.includes(ch) ||
      (i === 0 && (ch === ' ' || ch === '#')) ||
      (i === bytes.length - 1 && ch === ' ')
    )
      out += `\\${ch}`;
    else out += ch;
  });
  return out;
}

/** The subject as Envoy's `subjectPeerCertificate()` prints it: RFC 2253, last RDN first. */
export function envoySubject(pem: string): string {
  const rdns = new x509.X509Certificate(pem).subjectName.toJSON();
  return [...rdns]
    .reverse()
    .map((rdn) =>
      Object.entries(rdn)
        .flatMap(([type, values]) =>
          values.map((v) => `${SHORT_NAMES[type] ?? type}=${rfc2253Value(v)}`),
        )
        .join('+'),
    )
    .join(',');
}

function sans(pem: string): { uri: string[]; dns: string[] } {
  const ext = new x509.X509Certificate(pem).getExtension(x509.SubjectAlternativeNameExtension);
  const names = ext?.names.items ?? [];
  return {
    uri: names.filter((n) => n.type === 'url').map((n) => n.value),
    dns: names.filter((n) => n.type === 'dns').map((n) => n.value),
  };
}

/**
 * How SAN values are written: `false`, raw, as Envoy does; `'special'`, for the Envoy the red
 * team describes, quoted (with `"` and `\` escaped) when they hold `,`, `;`, `=` or `"`;
 * `'always'`, every one quoted (what a forged element looks like).
 */
export type SanQuoting = false | 'special' | 'always';

function san(value: string, quoting: SanQuoting): string {
  return quoting === 'always' || (quoting === 'special' && /[,;="\\]/.test(value))
    ? `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`
    : value;
}

/**
 * The XFCC element Envoy writes for a client certificate: `By` for each URI SAN of Envoy's own
 * certificate, `Hash`, then the configured details in Envoy's fixed order (`Cert`, `Chain`,
 * `Subject`, `URI`, `DNS`). `Cert`, `Chain` and `Subject` quoted; SANs unescaped (one field
 * each; `URI=` when there is none).
 */
export function envoyElement(
  peer: Peer,
  details: Details,
  options: { by?: string[]; quoteSans?: SanQuoting } = {},
): string {
  const { by = ['spiffe://cluster.local/ns/edge/sa/envoy'], quoteSans = false } = options;
  const fields = by.map((uri) => `By=${san(uri, quoteSans)}`);
  fields.push(`Hash=${envoyHash(peer.certPem)}`);
  if (details.cert) fields.push(`Cert="${envoyUrlEncode(peer.certPem)}"`);
  if (details.chain)
    fields.push(
      `Chain="${[peer.certPem, ...(peer.chainPems ?? [])].map(envoyUrlEncode).join('')}"`,
    );
  if (details.subject) fields.push(`Subject="${envoySubject(peer.certPem)}"`);
  const names = sans(peer.certPem);
  if (details.uri)
    fields.push(
      ...(names.uri.length ? names.uri.map((u) => `URI=${san(u, quoteSans)}`) : ['URI=']),
    );
  if (details.dns) fields.push(...names.dns.map((d) => `DNS=${san(d, quoteSans)}`));
  return fields.join(';');
}

/**
 * `forward_client_cert_details`: `SANITIZE_SET` replaces whatever the client sent with Envoy's
 * element; `APPEND_FORWARD` keeps it and appends the element after a comma.
 */
export function forward(
  mode: 'SANITIZE_SET' | 'APPEND_FORWARD',
  incoming: string | undefined,
  element: string,
): string {
  return mode === 'APPEND_FORWARD' && incoming ? `${incoming},${element}` : element;
}
