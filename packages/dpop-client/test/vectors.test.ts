import { calculateJwkThumbprint, decodeJwt, decodeProtectedHeader } from 'jose';
import { describe, expect, it } from 'vitest';
import { accessTokenHash, thumbprint } from '../src/index.ts';
import {
  RFC7638_JWK,
  RFC7638_THUMBPRINT,
  RFC9449_ACCESS_TOKEN,
  RFC9449_ATH,
  RFC9449_JKT,
  RFC9449_JWK,
  RFC9449_PROOF,
} from '../../../test-vectors/rfc.ts';
import * as web from '../src/crypto/web.ts';

describe('RFC vectors', () => {
  it('RFC 7638 §3.1 thumbprint', async () => {
    expect(await thumbprint(RFC7638_JWK)).toBe(RFC7638_THUMBPRINT);
  });

  it('RFC 9449 §6.1 jkt of the example key, also from the example proof header', async () => {
    expect(await thumbprint(RFC9449_JWK)).toBe(RFC9449_JKT);
    const header = decodeProtectedHeader(RFC9449_PROOF);
    expect(await thumbprint(header.jwk as Record<string, unknown>)).toBe(RFC9449_JKT);
    expect(await calculateJwkThumbprint(RFC9449_JWK)).toBe(RFC9449_JKT);
    expect(decodeJwt(RFC9449_PROOF).htu).toBe('https://server.example.com/token');
  });

  it('RFC 9449 §7.1 ath of the example token (node and web backends agree)', async () => {
    expect(await accessTokenHash(RFC9449_ACCESS_TOKEN)).toBe(RFC9449_ATH);
    expect(await web.sha256Base64url(RFC9449_ACCESS_TOKEN)).toBe(RFC9449_ATH);
  });

  it('thumbprint ignores optional and private members but needs required ones', async () => {
    expect(await thumbprint({ ...RFC9449_JWK, kid: 'x', use: 'sig' })).toBe(RFC9449_JKT);
    await expect(thumbprint({ kty: 'EC', crv: 'P-256', x: RFC9449_JWK.x })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG_VALUE',
    });
    await expect(thumbprint({ kty: 'oct', k: 'abc' })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG_VALUE',
    });
  });
});
