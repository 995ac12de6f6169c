import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate, SubjectAlternativeName, id_ce_subjectAltName } from '@peculiar/asn1-x509';
import type { DistinguishedName } from './dn.ts';
import { invalidCertificate } from './errors.ts';

/** What the matchers need from a certificate, parsed once. @internal */
export interface ParsedCertificate {
  /** Subject RDNs in ASN.1 order. */
  subject: DistinguishedName;
  san: { dns: string[]; uri: string[]; email: string[]; ip: string[] };
}

/** Parses a DER certificate's subject and SAN with @peculiar/asn1-x509. @internal */
export function parseCertificate(der: Uint8Array): ParsedCertificate {
  let cert: Certificate;
  try {
    cert = AsnConvert.parse(der, Certificate);
  } catch (cause) {
    throw invalidCertificate('the certificate cannot be parsed', cause);
  }
  const subject = cert.tbsCertificate.subject.map((rdn) =>
    rdn.map((attr) => ({ type: attr.type, value: attr.value.toString() })),
  );
  const san: ParsedCertificate['san'] = { dns: [], uri: [], email: [], ip: [] };
  const ext = cert.tbsCertificate.extensions?.find((e) => e.extnID === id_ce_subjectAltName);
  if (ext) {
    let names: SubjectAlternativeName;
    try {
      names = AsnConvert.parse(ext.extnValue, SubjectAlternativeName);
    } catch (cause) {
      throw invalidCertificate('the certificate subjectAltName cannot be parsed', cause);
    }
    for (const name of names) {
      if (name.dNSName !== undefined) san.dns.push(name.dNSName);
      if (name.uniformResourceIdentifier !== undefined)
        san.uri.push(name.uniformResourceIdentifier);
      if (name.rfc822Name !== undefined) san.email.push(name.rfc822Name);
      if (name.iPAddress !== undefined) san.ip.push(name.iPAddress);
    }
  }
  return { subject, san };
}
