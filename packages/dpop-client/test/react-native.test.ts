// The React Native branch of the client, unit by unit in Node: the pure SHA-256 against the
// FIPS 180-4 examples, the randomness rules, and the WHATWG URL serialisation popkit applies
// where the platform's URL does not. tests/react-native runs all of it on the Hermes VM.
import { createHash, randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { DPoPSigner } from '../src/index.ts';
import { DPoPClientError, createProof, generateKeyPair, publicJwk } from '../src/index.ts';
import * as native from '../src/crypto/native.ts';
import { sha256 } from '../src/crypto/sha256.ts';
import * as web from '../src/crypto/web.ts';
import { wireHtu } from '../src/htu.ts';
import { parseWireUrl } from '../src/wire-url.ts';
import { resolveProofKey } from '../src/keys.ts';
import { utf8 } from '../src/base64url.ts';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const ascii = (text: string) => new TextEncoder().encode(text);

/** FIPS 180-4 / NIST CSRC "Examples with intermediate values" (SHA256.pdf, SHA2_Additional). */
export const SHA256_VECTORS: Array<[string, string]> = [
  ['abc', 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'],
  ['', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
  [
    'abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq',
    '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
  ],
  [
    'abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu',
    'cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1',
  ],
  ['a'.repeat(1_000_000), 'cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0'],
];

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('pure SHA-256 (the react-native branch of #crypto)', () => {
  it.each(
    SHA256_VECTORS.map(([m, d]) => [
      m.length > 60 ? `${m.slice(0, 12)}… (${m.length} bytes)` : JSON.stringify(m),
      m,
      d,
    ]),
  )('FIPS 180-4: %s', (_label, message, digest) => {
    expect(hex(sha256(ascii(message)))).toBe(digest);
  });

  it('agrees with node:crypto at every padding boundary and on random input', () => {
    for (let n = 0; n <= 200; n++) {
      const data = randomBytes(n);
      expect(hex(sha256(data))).toBe(createHash('sha256').update(data).digest('hex'));
    }
    const big = randomBytes(70_001);
    expect(hex(sha256(big))).toBe(createHash('sha256').update(big).digest('hex'));
  });

  it('native.ts hashes without crypto.subtle, and uses it where a polyfill installs it', async () => {
    const token = 'Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU'; // RFC 9449 §7.1
    const expected = 'fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo';
    expect(await native.sha256Base64url(token)).toBe(expected);
    vi.stubGlobal('crypto', { getRandomValues: (b: Uint8Array) => b });
    const sync = native.sha256Base64url(token);
    expect(typeof sync).toBe('string'); // the pure path: no subtle
    expect(sync).toBe(expected);
    await expect(web.sha256Base64url(token)).rejects.toMatchObject({
      code: 'ERR_DPOP_NO_WEBCRYPTO',
    });
  });

  it('the UTF-8 fallback for Hermes without TextEncoder matches TextEncoder', async () => {
    const text = 'a\u00e9\u20ac\u{1F600}\ud800x';
    vi.stubGlobal('TextEncoder', undefined);
    vi.resetModules();
    const { utf8: fallback } = await import('../src/base64url.ts');
    vi.unstubAllGlobals();
    expect(hex(fallback(text))).toBe(hex(new TextEncoder().encode(text)));
    expect(hex(utf8(text))).toBe(hex(new TextEncoder().encode(text)));
  });

  it('UTF-8 into the shared buffer agrees with TextEncoder, and a kept copy survives the next call', () => {
    const encoder = new TextEncoder();
    const long = 'eyJ0eXAiOiJkcG9wK2p3dCJ9.'.repeat(40);
    // ASCII; non-ASCII after a long ASCII prefix and at the very end; U+007F and U+0080; lone
    // surrogates (U+FFFD)
    const texts = [
      '',
      long,
      `${long}\u00e9${long}`,
      `${long}\u{1F600}`,
      '\u007f\u0080',
      `${long}\udc00`,
    ];
    for (const text of texts) {
      const want = hex(encoder.encode(text));
      expect(hex(utf8(text, true))).toBe(want);
      expect(hex(utf8(text))).toBe(want);
    }
    // a transient view is of the shared buffer; a non-transient copy survives the next call
    const kept = utf8('kept');
    utf8('overwritten', true);
    expect(new TextDecoder().decode(kept)).toBe('kept');
  });
});

describe('randomness without crypto.getRandomValues', () => {
  const jwk = {
    kty: 'EC',
    crv: 'P-256',
    x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU',
    y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0',
  };
  const signer = (extra: Partial<DPoPSigner> = {}): DPoPSigner => ({
    alg: 'ES256',
    publicJwk: jwk,
    sign: () => new Uint8Array(64),
    ...extra,
  });

  it('the web and react-native backends report no CSPRNG instead of a ReferenceError', () => {
    vi.stubGlobal('crypto', undefined);
    expect(web.randomId()).toBeUndefined();
    expect(native.randomId()).toBeUndefined();
    vi.unstubAllGlobals();
    expect(web.randomId()).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });

  it('ERR_DPOP_NO_RANDOM names the packages to install; never Math.random', async () => {
    const spy = vi.spyOn(Math, 'random');
    const key = await resolveProofKey(signer());
    const error = await key.randomId().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DPoPClientError);
    expect(error).toMatchObject({ code: 'ERR_DPOP_NO_RANDOM' });
    expect((error as Error).message).toContain('react-native-get-random-values');
    expect((error as Error).message).toContain('expo-crypto');
    expect(spy).not.toHaveBeenCalled();
    spy.mockRestore();
  });

  it('a signer with randomBytes provides the jti', async () => {
    const bytes = new Uint8Array(16).fill(7);
    const key = await resolveProofKey(signer({ randomBytes: async (n) => bytes.slice(0, n) }));
    expect(await key.randomId()).toBe(Buffer.from(bytes).toString('base64url'));
    const short = await resolveProofKey(signer({ randomBytes: () => new Uint8Array(8) }));
    await expect(short.randomId()).rejects.toMatchObject({ code: 'ERR_DPOP_SIGNER' });
  });

  it('a given jti needs no randomness at all', async () => {
    const pair = await generateKeyPair();
    const proof = await createProof(
      { alg: 'ES256', publicJwk: await publicJwk(pair), sign: () => new Uint8Array(64) },
      { method: 'GET', url: 'https://a.example/' },
      { jti: 'a-given-jti-of-16+chars' },
    );
    expect(JSON.parse(Buffer.from(proof.split('.')[1]!, 'base64url').toString())).toMatchObject({
      jti: 'a-given-jti-of-16+chars',
    });
  });
});

/** Spellings where a URL polyfill that returns the input as written would sign the wrong htu. */
export const WIRE_SPELLINGS = [
  'https://API.example.com:443/a/b',
  'HTTPS://Api.Example.COM/a/./b/../c',
  'http://api.example.com:80/x/%2e%2E/y?q=1#f',
  'https://api.example.com:8443/a%7eb/%7E',
  'https://api.example.com',
  'https://api.example.com?x',
  'https://api.example.com#x/y',
  'https://api.example.com:/a',
  'https://api.example.com:0443/a',
  'https://EX.com:00080/',
  '  https://a.example/b\t/c  ',
  'https:\\\\a.example\\b\\..\\c',
  'HTTPS:api.example.com/x',
  'https://a.example/a b/caf\u00e9/\u{1F600}/"<>`{}^|',
  'https://a.example/b/./',
  'https://a.example/b/..',
  'https://a.example/%2e/b/.%2E/c',
  'https://a.example.//x',
  'https://b\u00fccher.example/x',
  'https://M\u00fcnchen.Example/x',
  'https://\u24b6.com/',
  'https://xn--bcher-kva.example./',
  'https://\u4f8b\u3002\u30c6\u30b9\u30c8/',
  'https://a%2Eexample/x',
  'https://[2001:DB8::1]/x',
  'https://[2001:db8:0:0:0:0:0:1]:443/x',
  'https://[::ffff:1.2.3.4]/',
  'https://[1:0:0:2:0:0:0:3]/',
  'https://[0:0:0:0:0:0:0:1]:8443/',
  'https://[::]/',
  'https://127.0.0.1:8080/x',
  'https://0x7f.1/',
  'https://2130706433/',
  'https://0177.0.0.1/',
  'https://127.1/',
  'http://1.2.3.4./',
];

const INVALID = [
  'https://',
  'https://a.example:99999/',
  'https://a.example:12a/',
  'https://[1:2/',
  'https://[1::2::3]/',
  'https://a b.example/',
  'https://a<b/',
  'https://256.0.0.1/',
  'https://1.2.3.4.5/',
  'https://0x100000000/',
  'not a url',
  '/relative',
];

describe('parseWireUrl: the WHATWG serialisation without a WHATWG URL', () => {
  it('outside the react-native branch a non-WHATWG URL is refused, not mis-signed', async () => {
    vi.resetModules();
    const htu = await import('../src/htu.ts'); // the WHATWG check runs at first use
    vi.stubGlobal('URL', class {});
    const attempt = () => htu.wireHtu('https://API.example.com:443/');
    let error: unknown;
    try {
      attempt();
    } catch (e) {
      error = e;
    }
    vi.unstubAllGlobals();
    expect(String(error)).toMatch(/react-native/);
  });

  it.each(WIRE_SPELLINGS)('%j serialises as Node’s URL does', (input) => {
    const u = new URL(input);
    expect(parseWireUrl(input)).toEqual({
      protocol: u.protocol,
      host: u.host,
      pathname: u.pathname,
      userinfo: false,
    });
  });

  it.each(INVALID)('%j is no URL (as for Node’s URL)', (input) => {
    expect(() => new URL(input)).toThrow();
    expect(parseWireUrl(input)).toBeUndefined();
  });

  it('userinfo is reported, other schemes come back for the caller to refuse', () => {
    expect(parseWireUrl('https://u:p@a.example/')?.userinfo).toBe(true);
    expect(parseWireUrl('FTP://a.example/')?.protocol).toBe('ftp:');
  });

  it('wireHtu uses it when the global URL is React Native’s (input kept as written)', async () => {
    class AsWritten {
      constructor(readonly href: string) {}
      get protocol() {
        return /^[a-z]+:/i.exec(this.href)?.[0] ?? '';
      }
      get host() {
        return /^https?:\/\/([^/?#]+)/i.exec(this.href)?.[1] ?? '';
      }
      get pathname() {
        return /^https?:\/\/[^/]+(\/[^?#]*)?/i.exec(this.href)?.[1] ?? '/';
      }
      username = '';
      password = '';
    }
    vi.stubGlobal('URL', AsWritten);
    vi.resetModules();
    vi.doMock('#wire-url', () => import('../src/wire-url.ts')); // the react-native branch
    const htu = await import('../src/htu.ts');
    const out = WIRE_SPELLINGS.map((s) => htu.wireHtu(s));
    const asObject = htu.wireHtu(new AsWritten('https://API.example.com:443/a/./b') as never);
    vi.unstubAllGlobals();
    vi.doUnmock('#wire-url');
    expect(out).toEqual(WIRE_SPELLINGS.map((s) => wireHtu(s)));
    expect(asObject).toBe('https://api.example.com/a/b');
  });
});
