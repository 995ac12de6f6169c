import { hash } from 'node:crypto';
import { MtlsArgumentError } from '../errors.ts';
import { bytesEqual } from '../ip.ts';
import { pemCertificates } from '../pem.ts';
import type { PresentedCertificate } from './forwarded.ts';
import { MAX_CHAIN } from './forwarded.ts';
import { proxyError } from './proxy-error.ts';
import type { XfccElement, XfccField, XfccKey } from './xfcc.ts';
import { parseXfcc } from './xfcc.ts';

/**
 * Envoy's `set_current_client_cert_details` for the element popkit reads: which fields that
 * Envoy was configured to write. Copy it from Envoy's configuration; popkit refuses an element
 * whose fields differ from what Envoy writes for it (`By` and `Hash` are always written).
 *
 * @see https://www.envoyproxy.io/docs/envoy/latest/api-v3/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto#extensions-filters-network-http-connection-manager-v3-httpconnectionmanager-setcurrentclientcertdetails
 */
export interface EnvoyClientCertDetails {
  /** `Cert="…"`: the client certificate, URL-encoded PEM. */
  cert?: boolean;
  /** `Chain="…"`: the whole chain, leaf first, URL-encoded PEM. */
  chain?: boolean;
  /** `Subject="…"`: the certificate's subject DN (RFC 2253, escaped by Envoy). */
  subject?: boolean;
  /** `URI=…`, one per URI SAN (`URI=` when none): written unescaped, chosen by the client. */
  uri?: boolean;
  /** `DNS=…`, one per DNS SAN: written unescaped, chosen by the client. */
  dns?: boolean;
}

/** The configuration of Envoy's element, checked and frozen. @internal */
interface EnvoyPlan {
  /** Index from the start (0) or from the end (negative). */
  readonly element: number;
  readonly details: Readonly<Required<EnvoyClientCertDetails>>;
}

/** Furthest element from the end that can be chosen (`element: -16`). */
export const MAX_ELEMENT_FROM_END = 16;
/** `By` fields one element may hold: one per URI SAN of Envoy's own certificate. */
const MAX_BY = 16;
const DETAILS: ReadonlyArray<keyof EnvoyClientCertDetails> = [
  'cert',
  'chain',
  'subject',
  'uri',
  'dns',
];

const argument = (message: string) => new MtlsArgumentError('ERR_INVALID_ARG_VALUE', message);

/**
 * Checks the Envoy options when a certificate source is built, and refuses configurations in
 * which a client certificate could choose which certificate is read:
 *
 * - `element: 0` (default): the first element, the one the edge Envoy writes with
 *   `forward_client_cert_details: SANITIZE_SET`. Any `details`: its `By`, `Hash`, `Cert` and
 *   `Chain` fields come before every value the client chooses (`Subject` is escaped by Envoy;
 *   `URI` and `DNS` come last), so the certificate read is the one Envoy hashed.
 * - `element: -1` … `-16`: counted from the end, for Envoys that append with `APPEND_FORWARD`
 *   (everything before the chosen element is the client's own text). Only without `uri` and
 *   `dns`: Envoy writes SANs unescaped, so a SAN holding `,Hash=…;Cert="<victim>"` makes the
 *   boundary of the last element the client's choice, and no parser can tell the two apart.
 * - A positive `element` is refused: the elements after the first can be forged the same way
 *   by the SANs of the first.
 *
 * @internal
 */
export function envoyPlan(element: unknown, details: unknown): EnvoyPlan {
  const index = element === undefined ? 0 : element;
  if (
    typeof index !== 'number' ||
    !Number.isInteger(index) ||
    index > 0 ||
    index < -MAX_ELEMENT_FROM_END
  )
    throw argument(
      `"element" must be 0 (the first element: the edge Envoy uses SANITIZE_SET) or from -1 to -${MAX_ELEMENT_FROM_END} (counted from the end: each Envoy appends one with APPEND_FORWARD)`,
    );
  const given = details === undefined ? { cert: true } : details;
  if (given === null || typeof given !== 'object' || Array.isArray(given))
    throw new MtlsArgumentError(
      'ERR_INVALID_ARG_TYPE',
      '"details" must be an object like Envoy\'s set_current_client_cert_details',
    );
  for (const key of Object.keys(given)) {
    if (!(DETAILS as readonly string[]).includes(key))
      throw argument(`"details" may hold only ${DETAILS.join(', ')}`);
    const value = (given as Record<string, unknown>)[key];
    if (value !== undefined && typeof value !== 'boolean')
      throw argument(`"details.${key}" must be a boolean`);
  }
  const d = given as EnvoyClientCertDetails;
  const plan = Object.freeze({
    cert: d.cert === true,
    chain: d.chain === true,
    subject: d.subject === true,
    uri: d.uri === true,
    dns: d.dns === true,
  });
  if (!plan.cert && !plan.chain)
    throw argument('"details" must include cert or chain: without them Envoy sends no certificate');
  if (index < 0 && (plan.uri || plan.dns))
    throw argument(
      '"details" with uri or dns need element 0 (SANITIZE_SET): Envoy writes SANs unescaped, so in an appended element a client certificate can forge where the element begins',
    );
  return Object.freeze({ element: index, details: plan });
}

const fail = (defect: string, cause?: unknown) =>
  proxyError(`the x-forwarded-client-cert ${defect}`, cause);

/** Envoy's `Hash`: SHA-256 of the DER, lower-case hex. */
function isHash(value: string): boolean {
  if (value.length !== 64) return false;
  for (let i = 0; i < 64; i++) {
    const c = value.charCodeAt(i);
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
  }
  return true;
}

/**
 * The characters of Envoy's URL-encoded PEM: it escapes newline, space, `+`, `/` and `=` as
 * `%XX`, so a value holds only letters, digits, `-` and `%`.
 */
function isUrlEncodedPem(value: string): boolean {
  if (value.length === 0) return false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (!(
      (c >= 0x30 && c <= 0x39) ||
      (c >= 0x41 && c <= 0x5a) ||
      (c >= 0x61 && c <= 0x7a) ||
      c === 0x2d ||
      c === 0x25
    ))
      return false;
  }
  return true;
}

function pemBlocks(field: XfccField, what: string, max: number): Uint8Array[] {
  if (!isUrlEncodedPem(field.value)) throw fail(`${what} is not URL-encoded PEM`);
  let text: string;
  try {
    text = decodeURIComponent(field.value);
  } catch (cause) {
    throw fail(`${what} is not valid percent-encoding`, cause);
  }
  try {
    return pemCertificates(text, max);
  } catch (cause) {
    throw fail(`${what} is not a PEM certificate (or holds too many)`, cause);
  }
}

/**
 * Checks that an element has exactly the fields Envoy writes for `details`, in Envoy's order
 * (`By`…, `Hash`, `Cert`, `Chain`, `Subject`, `URI`…, `DNS`…), quoted as Envoy quotes them,
 * and returns the `Hash`, `Cert` and `Chain` fields.
 */
function envoyFields(
  fields: XfccElement,
  details: EnvoyPlan['details'],
): { hash: string; cert?: XfccField; chain?: XfccField } {
  let i = 0;
  const next = (key: XfccKey, quoted: boolean | undefined): XfccField => {
    const field = fields[i];
    if (
      field === undefined ||
      field.key !== key ||
      (quoted !== undefined && field.quoted !== quoted)
    )
      throw fail('element does not have the fields Envoy writes for the configured details');
    i++;
    return field;
  };
  let by = 0;
  while (fields[i]?.key === 'by') {
    if (++by > MAX_BY) throw fail('element has too many By fields');
    i++;
  }
  const hashField = next('hash', false);
  if (!isHash(hashField.value)) throw fail('Hash is not a SHA-256 hex digest');
  const cert = details.cert ? next('cert', true) : undefined;
  const chain = details.chain ? next('chain', true) : undefined;
  if (details.subject) next('subject', true);
  if (details.uri) {
    next('uri', undefined); // Envoy writes "URI=" even for a certificate without URI SANs
    while (fields[i]?.key === 'uri') i++;
  }
  if (details.dns) while (fields[i]?.key === 'dns') i++;
  if (i !== fields.length)
    throw fail('element does not have the fields Envoy writes for the configured details');
  return { hash: hashField.value, cert, chain };
}

/**
 * Reads the client certificate from an `x-forwarded-client-cert` value for a checked plan
 * ({@link envoyPlan}): the whole header is tokenized strictly ({@link parseXfcc}), the chosen
 * element must have exactly Envoy's fields, `Cert` must hold one certificate, `Chain` must
 * start with it, and the leaf's SHA-256 must equal the element's `Hash`. Counted from the end,
 * no element before the chosen one may hold `URI` or `DNS` fields.
 *
 * @see https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_conn_man/headers#x-forwarded-client-cert
 * @internal
 */
export function readEnvoyCertificate(header: string, plan: EnvoyPlan): PresentedCertificate {
  const elements = parseXfcc(header);
  const index = plan.element < 0 ? elements.length + plan.element : plan.element;
  const chosen = elements[index];
  if (chosen === undefined) throw fail('header has no element at the configured position');
  // Counted from the end, the elements before the chosen one are the client's own text (or the
  // element of an Envoy that forwards SANs while `details` says it does not): a URI or DNS
  // field there is how a SAN would smuggle in the element read, so none is accepted.
  for (let e = 0; e < index; e++)
    for (const field of elements[e]!)
      if (field.key === 'uri' || field.key === 'dns')
        throw fail('header has SAN fields before the configured element');
  const fields = envoyFields(chosen, plan.details);
  const cert = fields.cert && pemBlocks(fields.cert, 'Cert', 1);
  const chain = fields.chain && pemBlocks(fields.chain, 'Chain', MAX_CHAIN + 1);
  const leaf = cert ? cert[0]! : chain![0]!;
  if (cert && chain && !bytesEqual(chain[0]!, leaf))
    throw fail('Chain does not start with the Cert certificate');
  if (hash('sha256', leaf, 'hex') !== fields.hash)
    throw fail('certificate does not match its Hash');
  return { leaf, chain: chain ? chain.slice(1) : [] };
}
