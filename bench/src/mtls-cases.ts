// mTLS: certificateThumbprint from PEM, DER, and a live TLS socket.
import { X509Certificate } from 'node:crypto';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { connect } from 'node:tls';
import { certificateThumbprint } from '@popkit/mtls-binding';
import { certificateThumbprintSource, peerCertificate } from '@popkit/mtls-binding/node';
import { createTestPki } from '@popkit/example-shared/pki';
import type { Case } from './harness.ts';

export async function mtlsCases(): Promise<{ cases: Case[]; stop(): Promise<void> }> {
  const pki = await createTestPki();
  const pem = pki.clientA.certPem;
  const der = new X509Certificate(pem).raw;
  let serverSide: TLSSocket | undefined;
  const server = createServer({
    key: pki.server.keyPem,
    cert: pki.server.certPem,
    ca: [pki.ca.certPem, pki.intermediate.certPem],
    requestCert: true,
    rejectUnauthorized: false,
  });
  server.on('secureConnection', (socket) => (serverSide = socket));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = connect({
    port: (server.address() as AddressInfo).port,
    host: '127.0.0.1',
    cert: pem,
    key: pki.clientA.keyPem,
    ca: pki.ca.certPem,
    servername: 'localhost',
  });
  await new Promise((r) => client.once('secureConnect', r));
  while (!serverSide) await new Promise((r) => setTimeout(r, 5));
  const socket = serverSide;
  const fromSocket = certificateThumbprintSource({ from: 'socket' });
  return {
    cases: [
      { name: 'certificateThumbprint(PEM)', run: () => certificateThumbprint(pem) },
      { name: 'certificateThumbprint(DER)', run: () => certificateThumbprint(der) },
      {
        name: 'certificateThumbprint(peerCertificate(socket).leaf)',
        run: () => certificateThumbprint(peerCertificate(socket)!.leaf),
      },
      {
        name: 'certificateThumbprintSource({ from: socket }), per request on a kept-alive connection',
        run: () => fromSocket({ headers: {}, socket }),
      },
    ],
    stop: async () => {
      client.destroy();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
