import { createPublicKey, generateKeyPairSync, sign as nodeSign } from 'node:crypto';
import { EmbeddedJWK, calculateJwkThumbprint, decodeProtectedHeader, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { backend } from '#crypto';
import type { DPoPAlgorithm, DPoPSigner } from '../src/index.ts';
import {
  DPoPClientError,
  SUPPORTED_ALGORITHMS,
  accessTokenHash,
  createProof,
  generateKeyPair,
  publicJwk,
  thumbprint,
} from '../src/index.ts';
import * as web from '../src/crypto/web.ts';

// Ed25519 keys sign with the EdDSA header by default; the Ed25519 spelling has its own test.
const ALGS: DPoPAlgorithm[] = SUPPORTED_ALGORITHMS.filter((a) => a !== 'Ed25519');
const URL_ = 'https://api.example.com/orders?page=2#top';

async function verify(proof: string, algorithms: string[]) {
  return jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms });
}

describe('createProof', () => {
  it('runs on the node:crypto backend under Node', () => {
    expect(backend).toBe('node');
  });

  it.each(ALGS)(
    '%s proofs verify with jose EmbeddedJWK and carry the RFC 9449 claims',
    async (alg) => {
      const keyPair = await generateKeyPair(alg);
      expect(keyPair.privateKey.extractable).toBe(false);
      const proof = await createProof(keyPair, {
        method: 'post',
        url: URL_,
        accessToken: 'tok',
        nonce: 'n-1',
      });
      const { payload, protectedHeader } = await verify(proof, [alg]);
      expect(protectedHeader.typ).toBe('dpop+jwt');
      expect(protectedHeader.alg).toBe(alg);
      expect(Object.keys(protectedHeader.jwk!).sort()).toEqual(
        protectedHeader.jwk!.kty === 'RSA'
          ? ['e', 'kty', 'n']
          : protectedHeader.jwk!.kty === 'EC'
            ? ['crv', 'kty', 'x', 'y']
            : ['crv', 'kty', 'x'],
      );
      expect(payload.htm).toBe('POST');
      expect(payload.htu).toBe('https://api.example.com/orders');
      expect(payload.ath).toBe(await accessTokenHash('tok'));
      expect(payload.nonce).toBe('n-1');
      expect(Math.abs((payload.iat as number) - Date.now() / 1000)).toBeLessThan(5);
      expect(payload.jti).toMatch(/^[A-Za-z0-9_-]{22}$/);
      expect(await thumbprint(keyPair)).toBe(await calculateJwkThumbprint(protectedHeader.jwk!));
    },
  );

  it.each(ALGS)('%s proofs from the WebCrypto backend verify too', async (alg) => {
    const keyPair = await generateKeyPair(alg);
    const signature = await web.signWithCryptoKey(alg, keyPair.privateKey, 'x');
    const jwk = await publicJwk(keyPair);
    const key = createPublicKey({ key: jwk as never, format: 'jwk' });
    const { verify: nodeVerify, constants } = await import('node:crypto');
    const hash = alg === 'EdDSA' ? null : `sha${alg.slice(2)}`;
    const ok = nodeVerify(
      hash,
      new TextEncoder().encode('x'),
      alg.startsWith('PS')
        ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: Number(alg.slice(2)) / 8 }
        : alg.startsWith('ES')
          ? { key, dsaEncoding: 'ieee-p1363' }
          : key,
      signature,
    );
    expect(ok).toBe(true);
  });

  it('omits ath and nonce when not given; jti is unique', async () => {
    const keyPair = await generateKeyPair();
    const a = await verify(await createProof(keyPair, { method: 'GET', url: URL_ }), ['ES256']);
    const b = await verify(await createProof(keyPair, { method: 'GET', url: URL_ }), ['ES256']);
    expect(a.payload).not.toHaveProperty('ath');
    expect(a.payload).not.toHaveProperty('nonce');
    expect(a.payload.jti).not.toBe(b.payload.jti);
  });

  it('emits EdDSA by default and Ed25519 on request', async () => {
    const keyPair = await generateKeyPair('Ed25519');
    expect(
      decodeProtectedHeader(await createProof(keyPair, { method: 'GET', url: URL_ })).alg,
    ).toBe('EdDSA');
    const proof = await createProof(
      keyPair,
      { method: 'GET', url: URL_ },
      { ed25519Alg: 'Ed25519' },
    );
    expect(decodeProtectedHeader(proof).alg).toBe('Ed25519');
    await verify(proof, ['Ed25519']);
  });

  it('extra claims cannot override the protocol claims; iat, jti and clockOffset apply', async () => {
    const keyPair = await generateKeyPair();
    const proof = await createProof(
      keyPair,
      { method: 'GET', url: URL_ },
      {
        iat: 1_700_000_000,
        jti: 'a'.repeat(20),
        claims: {
          htm: 'DELETE',
          htu: 'https://evil/',
          iat: 1,
          jti: 'x',
          ath: 'x',
          nonce: 'x',
          extra: { ok: true },
        },
      },
    );
    const { payload } = await verify(proof, ['ES256']);
    expect(payload).toMatchObject({
      htm: 'GET',
      htu: 'https://api.example.com/orders',
      iat: 1_700_000_000,
      jti: 'a'.repeat(20),
      extra: { ok: true },
    });
    expect(payload).not.toHaveProperty('ath');
    const skewed = await createProof(keyPair, { method: 'GET', url: URL_ }, { clockOffset: 3600 });
    const { payload: p2 } = await verify(skewed, ['ES256']);
    expect((p2.iat as number) - Date.now() / 1000).toBeGreaterThan(3590);
  });

  it('validates its arguments with coded errors that name the argument', async () => {
    const keyPair = await generateKeyPair();
    const cases: Array<[() => Promise<unknown>, string, RegExp]> = [
      [
        () => createProof(keyPair, { method: 'GET BAD', url: URL_ }),
        'ERR_INVALID_ARG_VALUE',
        /"request.method"/,
      ],
      [
        () => createProof(keyPair, { method: 5 as never, url: URL_ }),
        'ERR_INVALID_ARG_TYPE',
        /"request.method"/,
      ],
      [
        () => createProof(keyPair, { method: 'GET', url: '/x' }),
        'ERR_INVALID_ARG_VALUE',
        /"request.url"/,
      ],
      [
        () => createProof(keyPair, { method: 'GET', url: 'wss://x/' }),
        'ERR_INVALID_ARG_VALUE',
        /"request.url"/,
      ],
      [
        () => createProof(keyPair, { method: 'GET', url: URL_, accessToken: '' }),
        'ERR_INVALID_ARG_TYPE',
        /"request.accessToken"/,
      ],
      [
        () => createProof(keyPair, { method: 'GET', url: URL_, nonce: 'a"b' }),
        'ERR_INVALID_ARG_VALUE',
        /"request.nonce"/,
      ],
      [
        () => createProof(keyPair, { method: 'GET', url: URL_ }, { jti: 'short' }),
        'ERR_INVALID_ARG_VALUE',
        /"options.jti"/,
      ],
      [
        () => createProof(keyPair, { method: 'GET', url: URL_ }, { iat: 1.5 }),
        'ERR_INVALID_ARG_VALUE',
        /"options.iat"/,
      ],
      [
        () => createProof(null as never, { method: 'GET', url: URL_ }),
        'ERR_INVALID_ARG_TYPE',
        /"key"/,
      ],
      [() => createProof(keyPair, null as never), 'ERR_INVALID_ARG_TYPE', /"request"/],
    ];
    for (const [fn, code, message] of cases) {
      await expect(fn()).rejects.toMatchObject({ code, message: expect.stringMatching(message) });
    }
  });

  it('rejects keys that cannot make DPoP proofs', async () => {
    const hmac = (await crypto.subtle.generateKey({ name: 'HMAC', hash: 'SHA-256' }, false, [
      'sign',
      'verify',
    ])) as CryptoKey;
    const ecdh = (await crypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, false, [
      'deriveBits',
    ])) as CryptoKeyPair;
    const ok = await generateKeyPair();
    const hiddenPublic = await crypto.subtle.generateKey(
      { name: 'ECDSA', namedCurve: 'P-256' },
      false,
      ['sign', 'verify'],
    );
    const publicOnlyExport = {
      privateKey: hiddenPublic.privateKey,
      publicKey: await crypto.subtle.importKey(
        'jwk',
        await crypto.subtle.exportKey('jwk', hiddenPublic.publicKey),
        { name: 'ECDSA', namedCurve: 'P-256' },
        false,
        ['verify'],
      ),
    };
    for (const key of [
      { privateKey: hmac, publicKey: hmac },
      ecdh,
      { privateKey: ok.publicKey, publicKey: ok.publicKey },
      publicOnlyExport,
    ]) {
      await expect(
        createProof(key as CryptoKeyPair, { method: 'GET', url: URL_ }),
      ).rejects.toBeInstanceOf(DPoPClientError);
    }
    await expect(generateKeyPair('HS256' as never)).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG_VALUE',
    });
    await expect(generateKeyPair('RS256', { modulusLength: 1024 })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG_VALUE',
    });
  });
});

/** A signer whose private key never leaves this closure, like a Secure Enclave key. */
function hardwareSigner(alg: 'ES256' | 'EdDSA', encoding: 'raw' | 'der'): DPoPSigner {
  const { privateKey, publicKey } =
    alg === 'ES256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : generateKeyPairSync('ed25519');
  const jwk = publicKey.export({ format: 'jwk' });
  return {
    alg,
    publicJwk: jwk,
    signatureEncoding: encoding,
    async sign(input) {
      if (alg === 'EdDSA') return new Uint8Array(nodeSign(null, input, privateKey));
      return new Uint8Array(
        nodeSign('sha256', input, {
          key: privateKey,
          dsaEncoding: encoding === 'der' ? 'der' : 'ieee-p1363',
        }),
      );
    },
  };
}

describe('DPoPSigner (hardware / KMS keys)', () => {
  it.each([
    ['ES256', 'raw'],
    ['ES256', 'der'],
    ['EdDSA', 'raw'],
  ] as const)('%s signer returning %s signatures makes valid proofs', async (alg, encoding) => {
    const signer = hardwareSigner(alg, encoding);
    for (let i = 0; i < 20; i++) {
      const proof = await createProof(signer, { method: 'GET', url: URL_ });
      await verify(proof, [alg]);
    }
    expect(await thumbprint(signer)).toBe(await calculateJwkThumbprint(signer.publicJwk as never));
  });

  it('rejects a signer with a private JWK, a wrong alg, or a failing sign', async () => {
    const signer = hardwareSigner('ES256', 'raw');
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const privateJwk = privateKey.export({ format: 'jwk' });
    await expect(
      createProof(
        { ...signer, sign: signer.sign, publicJwk: privateJwk },
        { method: 'GET', url: URL_ },
      ),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(
      createProof({ ...signer, sign: signer.sign, alg: 'RS256' }, { method: 'GET', url: URL_ }),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    const failing: DPoPSigner = {
      ...signer,
      sign: async () => {
        throw new Error('user cancelled biometric prompt');
      },
    };
    await expect(createProof(failing, { method: 'GET', url: URL_ })).rejects.toMatchObject({
      code: 'ERR_DPOP_SIGNER',
    });
    const garbage: DPoPSigner = {
      ...signer,
      signatureEncoding: 'der',
      sign: async () => new Uint8Array(64),
    };
    await expect(createProof(garbage, { method: 'GET', url: URL_ })).rejects.toMatchObject({
      code: 'ERR_DPOP_SIGNER',
    });
  });
});
