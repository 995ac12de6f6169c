import { URL, URLSearchParams } from 'react-native/Libraries/Blob/URL';
import { Headers, Request, Response } from 'whatwg-fetch';

globalThis.URL = URL;
globalThis.URLSearchParams = URLSearchParams;
globalThis.Headers = Headers;
globalThis.Request = Request;
globalThis.Response = Response;

// Hermes in React Native 0.74+ has TextEncoder; the VM on npm (0.12) predates it. The test
// signer (@noble/curves) needs it at load; popkit does not (its own UTF-8 fallback is tested in
// packages/dpop-client/test/react-native.test.ts).
if (typeof globalThis.TextEncoder !== 'function') {
  globalThis.TextEncoder = class TextEncoder {
    encode(text) {
      const s = unescape(encodeURIComponent(text));
      const out = new Uint8Array(s.length);
      for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
      return out;
    }
  };
}
