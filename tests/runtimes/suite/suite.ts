// A runtime-neutral check of the client, the verifier core and the mtls core, bundled for Bun,
// Deno (and Node) and run by the real binary: every algorithm popkit signs, the nonce issuer,
// the replay store, RFC thumbprint vectors, certificate thumbprints and a short speed probe.
// It prints one JSON line; the Node test asserts on it.
import {
  SUPPORTED_ALGORITHMS,
  accessTokenHash,
  createProof,
  generateKeyPair,
  thumbprint,
} from '@popkit/dpop-client';
import {
  DPoPError,
  MemoryReplayStore,
  createNonceIssuer,
  createProofVerifier,
} from '@popkit/dpop-verifier';
import { certificateThumbprint, verifyCertificateBinding } from '@popkit/mtls-binding';

declare const __CERT_PEM__: string;
declare const __CERT_X5T__: string;

const results: Array<{ check: string; ok: boolean; error?: string }> = [];
async function check(name: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
    results.push({ check: name, ok: true });
  } catch (e) {
    results.push({ check: name, ok: false, error: String((e as Error)?.stack ?? e).slice(0, 500) });
  }
}
function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

const url = 'https://api.runtime.example/orders';
const nonces = createNonceIssuer({ secret: 'runtime-suite-nonce-secret-32-bytes!' });
const store = new MemoryReplayStore({ maxEntries: 10_000 });
const verify = createProofVerifier({
  replay: store,
  nonces,
  algorithms: [...SUPPORTED_ALGORITHMS],
});

for (const alg of SUPPORTED_ALGORITHMS) {
  await check(`sign and verify ${alg} (ath, nonce, replay refused)`, async () => {
    const key = await generateKeyPair(alg);
    const nonce = await nonces.current(undefined, store.epoch); // bound to the store's epoch
    const proof = await createProof(key, { method: 'GET', url, accessToken: 'tok', nonce });
    const jkt = await thumbprint(key);
    const ok = await verify(proof, { method: 'GET', url, accessToken: 'tok', jkt });
    assert(ok.jkt === jkt, 'thumbprint mismatch');
    const again = await verify(proof, { method: 'GET', url, accessToken: 'tok', jkt }).then(
      () => 'accepted',
      (e: unknown) => (e instanceof DPoPError ? e.reason : 'crash'),
    );
    assert(again === 'replay', `replay gave ${again}`);
  });
}

await check('many proofs verified in flight at once, every third tampered', async () => {
  const key = await generateKeyPair('ES256');
  const verifyAny = createProofVerifier({ replay: new MemoryReplayStore({ maxEntries: 1000 }) });
  const at = (i: number) => `${url}/${'x'.repeat(i)}`;
  const proofs: string[] = [];
  for (let i = 0; i < 30; i++) {
    const proof = await createProof(key, { method: 'GET', url: at(i) });
    proofs.push(
      i % 3 === 2 ? proof.slice(0, -4) + (proof.endsWith('AAAA') ? 'BBBB' : 'AAAA') : proof,
    );
  }
  const results = await Promise.all(
    proofs.map((proof, i) =>
      verifyAny(proof, { method: 'GET', url: at(i) }).then(
        () => 'ok',
        (e: unknown) => (e instanceof DPoPError ? e.reason : 'crash'),
      ),
    ),
  );
  const wrong = results.filter((r, i) => r !== (i % 3 === 2 ? 'signature' : 'ok'));
  assert(wrong.length === 0, `concurrent verification gave ${results.join(',')}`);
});

await check('nonce issuer: current is valid, garbage is not', async () => {
  const current = await nonces.current();
  assert((await nonces.check(current)).valid, 'current nonce refused');
  assert(!(await nonces.check('A'.repeat(43))).valid, 'garbage nonce accepted');
});

await check('memory replay store: insert-if-absent', async () => {
  const store = new MemoryReplayStore({ maxEntries: 10 });
  assert(store.useOnce('k', Date.now() + 5000, 's') === true, 'first use refused');
  assert(store.useOnce('k', Date.now() + 5000, 's') === false, 'replay accepted');
});

await check('RFC 7638 thumbprint and RFC 9449 ath vectors', async () => {
  const rfc7638 = await thumbprint({
    kty: 'RSA',
    e: 'AQAB',
    n: '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw',
  } as never);
  assert(rfc7638 === 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs', `RFC 7638: ${rfc7638}`);
  const ath = await accessTokenHash('Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU');
  assert(ath === 'fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo', `ath: ${ath}`);
});

await check('mtls core: certificate thumbprint and binding check', async () => {
  const x5t = await certificateThumbprint(__CERT_PEM__);
  assert(x5t === __CERT_X5T__, `x5t#S256 ${x5t}`);
  await verifyCertificateBinding({ cnf: { 'x5t#S256': x5t } }, __CERT_PEM__);
});

// speed probe: createProof + verify, ES256, warm key
const key = await generateKeyPair('ES256');
const jkt = await thumbprint(key);
const probe = createProofVerifier({ replay: false });
let n = 0;
const started = performance.now();
while (performance.now() - started < 1000) {
  const proof = await createProof(key, { method: 'GET', url });
  await probe(proof, { method: 'GET', url, jkt });
  n++;
}
const opsPerSecond = Math.round((n * 1000) / (performance.now() - started));

console.log(JSON.stringify({ results, opsPerSecond }));
