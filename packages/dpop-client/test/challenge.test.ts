import { describe, expect, it } from 'vitest';
import { parseWWWAuthenticate } from '../src/index.ts';

describe('parseWWWAuthenticate (RFC 9110 §11.6.1)', () => {
  it('parses several challenges with quoted and token values', () => {
    expect(
      parseWWWAuthenticate(
        'Bearer realm="api", error="invalid_token", DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof", algs="ES256 EdDSA"',
      ),
    ).toEqual([
      { scheme: 'bearer', params: { realm: 'api', error: 'invalid_token' } },
      {
        scheme: 'dpop',
        params: {
          error: 'use_dpop_nonce',
          error_description: 'Resource server requires nonce in DPoP proof',
          algs: 'ES256 EdDSA',
        },
      },
    ]);
  });

  it('handles escapes, commas inside quotes, odd spacing and case', () => {
    const [c] = parseWWWAuthenticate('DPOP   Error = "a\\"b, c" ,ALGS=ES256');
    expect(c).toEqual({ scheme: 'dpop', params: { error: 'a"b, c', algs: 'ES256' } });
  });

  it('parses token68 and bare schemes', () => {
    expect(parseWWWAuthenticate('Negotiate YIIB+w/=, Basic realm="x", Bearer')).toEqual([
      { scheme: 'negotiate', params: {}, token68: 'YIIB+w/=' },
      { scheme: 'basic', params: { realm: 'x' } },
      { scheme: 'bearer', params: {} },
    ]);
    expect(parseWWWAuthenticate('Basic dXNlcg==')).toEqual([
      { scheme: 'basic', params: {}, token68: 'dXNlcg==' },
    ]);
  });

  it('keeps the first of duplicate parameters and ignores prototype keys', () => {
    const [c] = parseWWWAuthenticate(
      'DPoP error="use_dpop_nonce", error="invalid_dpop_proof", __proto__="x"',
    );
    expect(c!.params.error).toBe('use_dpop_nonce');
    expect(Object.getPrototypeOf(c!.params)).toBeNull();
  });

  it('never throws and stays linear on hostile input', () => {
    const hostile = [
      '',
      ',,,,',
      '"unterminated',
      'DPoP error="unterminated',
      'DPoP =====',
      '\u0000\u0001 DPoP error=x',
      'a='.repeat(5000),
      'DPoP ' + 'x=y,'.repeat(4000),
      '"'.repeat(16000),
      'x'.repeat(20000),
    ];
    for (const h of hostile) {
      const start = performance.now();
      expect(() => parseWWWAuthenticate(h)).not.toThrow();
      expect(performance.now() - start).toBeLessThan(200);
    }
    expect(parseWWWAuthenticate(undefined)).toEqual([]);
    expect(parseWWWAuthenticate(42 as never)).toEqual([]);
  });
});
