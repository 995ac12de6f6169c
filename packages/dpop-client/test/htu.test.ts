import { describe, expect, it } from 'vitest';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createProof, generateKeyPair, normalizeHtu, wireHtu } from '../src/index.ts';

const EQUIVALENT: Array<[string, string]> = [
  ['https://api.example.com/a', 'https://api.example.com/a'],
  ['HTTPS://API.EXAMPLE.COM/a', 'https://api.example.com/a'],
  ['https://Api.Example.Com/Path', 'https://api.example.com/Path'], // path case kept
  ['https://api.example.com:443/a', 'https://api.example.com/a'],
  ['http://api.example.com:80/a', 'http://api.example.com/a'],
  ['https://api.example.com:8443/a', 'https://api.example.com:8443/a'],
  ['http://api.example.com:443/a', 'http://api.example.com:443/a'],
  ['https://api.example.com', 'https://api.example.com/'],
  ['https://api.example.com?x=1', 'https://api.example.com/'],
  ['https://api.example.com/a?b=c&d=e', 'https://api.example.com/a'],
  ['https://api.example.com/a#frag', 'https://api.example.com/a'],
  ['https://api.example.com/a?q#f', 'https://api.example.com/a'],
  ['https://api.example.com/a/./b/../c', 'https://api.example.com/a/c'],
  ['https://api.example.com/a/%2e%2E/c', 'https://api.example.com/c'],
  ['https://api.example.com/%7Euser', 'https://api.example.com/~user'],
  ['https://api.example.com/%7euser', 'https://api.example.com/~user'],
  ['https://api.example.com/a%2fb', 'https://api.example.com/a%2Fb'],
  ['https://api.example.com/%41%42c', 'https://api.example.com/ABc'],
  ['https://api.example.com/caf\u00e9', 'https://api.example.com/caf%C3%A9'],
  ['https://api.example.com/a b', 'https://api.example.com/a%20b'],
  ['https://[2001:DB8::1]/x', 'https://[2001:db8::1]/x'],
  ['https://[2001:db8:0:0:0:0:0:1]:443/x', 'https://[2001:db8::1]/x'],
  ['https://127.0.0.1:8080/x', 'https://127.0.0.1:8080/x'],
  ['https://b\u00fccher.example/x', 'https://xn--bcher-kva.example/x'],
  ['https://api.example.com/a/', 'https://api.example.com/a/'], // trailing slash significant
  ['https://api.example.com//a', 'https://api.example.com//a'],
];

const REJECTED: Array<[string, string]> = [
  ['/relative/path', 'must be an absolute http(s) URL'],
  ['ftp://api.example.com/a', 'must be an absolute http(s) URL'],
  ['javascript:alert(1)', 'must be an absolute http(s) URL'],
  ['https://user:pass@api.example.com/a', 'must not contain userinfo'],
  ['https://user@api.example.com/a', 'must not contain userinfo'],
  ['https://', 'must be an absolute http(s) URL'],
  [`https://api.example.com/${'a'.repeat(9000)}`, 'is too long'],
];

/** [input, as sent on the wire (what createProof signs), normalised (what verifiers compare)] */
const WIRE: Array<[string, string, string]> = [
  [
    'https://api.example.com/%7Euser',
    'https://api.example.com/%7Euser',
    'https://api.example.com/~user',
  ],
  [
    'https://api.example.com/%7euser',
    'https://api.example.com/%7euser',
    'https://api.example.com/~user',
  ],
  [
    'https://api.example.com/%41%42c',
    'https://api.example.com/%41%42c',
    'https://api.example.com/ABc',
  ],
  [
    'https://api.example.com/a%2fb',
    'https://api.example.com/a%2fb',
    'https://api.example.com/a%2Fb',
  ],
  [
    'https://api.example.com/caf\u00e9',
    'https://api.example.com/caf%C3%A9',
    'https://api.example.com/caf%C3%A9',
  ],
  ['HTTPS://API.EXAMPLE.COM:443/a?q#f', 'https://api.example.com/a', 'https://api.example.com/a'],
  [
    'https://api.example.com/a/./b/../c',
    'https://api.example.com/a/c',
    'https://api.example.com/a/c',
  ],
  [
    'https://[2001:DB8:0:0:0:0:0:1]:8443/x',
    'https://[2001:db8::1]:8443/x',
    'https://[2001:db8::1]:8443/x',
  ],
  ['https://api.example.com./x', 'https://api.example.com./x', 'https://api.example.com./x'],
  [
    'https://b\u00fccher.example',
    'https://xn--bcher-kva.example/',
    'https://xn--bcher-kva.example/',
  ],
];

describe('wireHtu: the htu a client signs is the URL as fetch sends it', () => {
  it.each(WIRE)('%s -> wire %s, normalised %s', (input, wire, normalized) => {
    expect(wireHtu(input)).toBe(wire);
    expect(normalizeHtu(wire)).toBe(normalized);
    expect(normalizeHtu(input)).toBe(normalized);
  });

  it('createProof signs the wire spelling; the path is exactly what a real server receives', async () => {
    const received: string[] = [];
    const server = createServer((req, res) => {
      received.push(req.url!);
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const key = await generateKeyPair();
    try {
      for (const path of [
        '/a%7Eb',
        '/a%7eb',
        '/caf\u00e9/%e2%82%ac',
        '/a/./b/../c',
        '/%41%42?q=1',
        '/x y',
      ]) {
        const url = `${origin}${path}`;
        await fetch(url);
        const onWire = received.pop()!.split('?')[0]!;
        const proof = await createProof(key, { method: 'GET', url });
        const { htu } = JSON.parse(Buffer.from(proof.split('.')[1]!, 'base64url').toString());
        expect([path, htu]).toEqual([path, `${origin}${onWire}`]);
      }
    } finally {
      server.close();
    }
  });
});

describe('normalizeHtu', () => {
  it.each(EQUIVALENT)('%s -> %s', (input, expected) => {
    expect(normalizeHtu(input)).toBe(expected);
    expect(normalizeHtu(expected)).toBe(expected); // idempotent
  });

  it.each(REJECTED)('rejects %s', (input, message) => {
    expect(() => normalizeHtu(input)).toThrow(message);
    try {
      normalizeHtu(input);
    } catch (error) {
      expect(error).toBeInstanceOf(TypeError);
      expect((error as { code: string }).code).toBe('ERR_INVALID_ARG_VALUE');
    }
  });

  it('keeps different resources different', () => {
    const distinct = [
      'https://api.example.com/a',
      'https://api.example.com/A',
      'https://api.example.com/a/',
      'http://api.example.com/a',
      'https://api.example.com:8443/a',
      'https://api.example.org/a',
      'https://api.example.com/a%2Fb',
      'https://api.example.com/a/b',
    ].map((u) => normalizeHtu(u));
    expect(new Set(distinct).size).toBe(distinct.length);
  });

  it('accepts URL objects and rejects non-strings', () => {
    expect(normalizeHtu(new URL('https://EXAMPLE.com:443'))).toBe('https://example.com/');
    expect(() => normalizeHtu(42 as unknown as string)).toThrow('"url" must be a string or URL');
  });
});
