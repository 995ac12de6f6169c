// The same app without react-native-get-random-values: no crypto global at all.
import './globals.js';
import { run } from './app.js';

run(globalThis.__popkitTestInput).then(
  () => print('{"type":"done"}'),
  (e) => print(JSON.stringify({ type: 'crash', message: String(e && e.stack) })),
);
