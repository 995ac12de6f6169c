// React Native's globals, installed as an app gets them: the URL polyfill (setUpXHR.js does
// polyfillGlobal('URL', ...)), whatwg-fetch's Headers/Response (Libraries/Network/fetch.js), and
// crypto.getRandomValues from react-native-get-random-values, imported first as its README says.
import 'react-native-get-random-values';
import './globals.js';
import { run } from './app.js';

run(globalThis.__popkitTestInput).then(
  () => print('{"type":"done"}'),
  (e) => print(JSON.stringify({ type: 'crash', message: String(e && e.stack) })),
);
