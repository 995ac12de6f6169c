import { Worker } from 'node:worker_threads';
import { build } from 'esbuild';

/**
 * Runs `fn(input)` exported by the TypeScript module `entry` in a worker thread under a
 * watchdog: the module reports progress through the `beat` callback it receives, and the run
 * fails when no beat arrives for `stallMs` (a hang or a spin), terminating the worker. A test
 * that runs code that might loop forever must not block CI: this turns a hang into a failure.
 */
export async function underWatchdog<T>(
  entry: string,
  fn: string,
  input: unknown,
  stallMs = 5_000,
): Promise<{ result: T; beats: number }> {
  const bundle = await build({
    stdin: {
      contents: `import { ${fn} as run } from ${JSON.stringify(entry)};
const { parentPort, workerData } = require('node:worker_threads');
let last = Date.now();
const beat = (n) => { const t = Date.now(); if (t - last > 50) { last = t; parentPort.postMessage({ beat: n }); } };
Promise.resolve().then(() => run(workerData, beat)).then(
  (result) => parentPort.postMessage({ done: true, result }),
  (e) => parentPort.postMessage({ error: String(e && e.stack || e) }));`,
      resolveDir: process.cwd(),
      sourcefile: 'watchdog-entry.ts',
      loader: 'ts',
    },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    write: false,
    logLevel: 'silent',
  });
  const code = bundle.outputFiles[0]!.text;
  const worker = new Worker(code, { eval: true, workerData: input });
  return new Promise((resolve, reject) => {
    let beats = 0;
    let lastBeat = 0;
    let timer = setTimeout(stalled, stallMs);
    function stalled(): void {
      void worker.terminate();
      reject(new Error(`watchdog: no progress for ${stallMs} ms (last beat ${lastBeat}): a hang`));
    }
    worker.on('message', (m: { beat?: number; done?: boolean; result?: T; error?: string }) => {
      if (m.beat !== undefined) {
        beats++;
        lastBeat = m.beat;
        clearTimeout(timer);
        timer = setTimeout(stalled, stallMs);
      } else {
        clearTimeout(timer);
        void worker.terminate();
        if (m.error !== undefined) reject(new Error(m.error));
        else resolve({ result: m.result as T, beats });
      }
    });
    worker.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}
