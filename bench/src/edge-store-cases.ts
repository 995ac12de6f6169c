// The Durable Object and Deno KV rows of the `stores` group: each store measured inside its own
// runtime (workerd and deno, the npm binaries tests/runtimes installs) against the raw
// primitive it is built on, 64 in flight, rounds interleaved in that one process
// (edge-store-loop.ts); then what storage each live entry costs. A missing binary skips its
// rows with a message; every process started is stopped.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '@popkit/example-shared/redis';
import { build } from 'esbuild';
import type { EdgeMeasured } from './edge-store-loop.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const here = fileURLToPath(new URL('.', import.meta.url));
const runtimesBin = (name: string) => join(root, 'tests', 'runtimes', 'node_modules', '.bin', name);

export interface EdgeStoreResult {
  /** `raw` then `store`. */
  measured: EdgeMeasured[];
  /** Storage per live entry, in words (for the row's name). */
  perEntry: string;
  /** Bytes on disk per live entry. */
  bytesPerEntry: number;
}

async function bundle(entry: string, conditions: string[], outfile: string) {
  await build({
    entryPoints: [join(here, entry)],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    mainFields: ['module', 'main'],
    conditions,
    external: ['node:*'],
    target: 'es2022',
    outfile,
    logLevel: 'silent',
  });
}

function du(path: string): number {
  const s = statSync(path);
  if (!s.isDirectory()) return s.size;
  return readdirSync(path).reduce((n, name) => n + du(join(path, name)), 0);
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    process.kill(-child.pid, 'SIGKILL'); // its group: `.bin/workerd` is a shim
  } catch {
    // already gone
  }
  await exited;
}

async function listening(port: number, child: ChildProcess, log: () => string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (child.exitCode !== null) throw new Error(`exited: ${log()}`);
    try {
      await fetch(`http://127.0.0.1:${port}/count`);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`did not listen: ${log()}`);
}

/** DurableObjectReplayStore vs a raw storage get + put round trip, in one workerd. */
export async function durableObjectStoreCase(
  rounds: number,
  ms: number,
  log: (s: string) => void,
): Promise<EdgeStoreResult | undefined> {
  const bin = runtimesBin('workerd');
  if (!existsSync(bin)) {
    log(`\n*** workerd not found at ${bin}: its replay store rows SKIPPED (pnpm install) ***\n`);
    return undefined;
  }
  const work = mkdtempSync(join(tmpdir(), 'popkit-bench-do-'));
  let child: ChildProcess | undefined;
  try {
    await bundle(
      'edge-store-do.ts',
      ['workerd', 'worker', 'browser', 'import', 'default'],
      join(work, 'bench.js'),
    );
    mkdirSync(join(work, 'do'));
    const port = await freePort();
    writeFileSync(
      join(work, 'config.capnp'),
      `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "bench", worker = .bench),
    (name = "disk", disk = (path = "${join(work, 'do')}", writable = true)),
  ],
  sockets = [ (name = "http", address = "127.0.0.1:${port}", http = (), service = "bench") ],
);
const bench :Workerd.Worker = (
  modules = [ (name = "bench.js", esModule = embed "bench.js") ],
  compatibilityDate = "2025-01-01",
  bindings = [
    (name = "REPLAY", durableObjectNamespace = "BenchReplayObject"),
    (name = "RAW", durableObjectNamespace = "RawObject"),
  ],
  durableObjectNamespaces = [
    (className = "BenchReplayObject", uniqueKey = "popkit-bench-replay"),
    (className = "RawObject", uniqueKey = "popkit-bench-raw"),
  ],
  durableObjectStorage = (localDisk = "disk"),
);
`,
    );
    let output = '';
    child = spawn(bin, ['serve', join(work, 'config.capnp')], {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    await listening(port, child, () => output);
    const r = await fetch(`http://127.0.0.1:${port}/bench?rounds=${rounds}&ms=${ms}`);
    if (r.status !== 200)
      throw new Error(`workerd bench: HTTP ${r.status}: ${await r.text()} ${output}`);
    const measured = (await r.json()) as EdgeMeasured[];
    const { keys, entries } = (await (await fetch(`http://127.0.0.1:${port}/count`)).json()) as {
      keys: number;
      entries: number;
    };
    const store = readdirSync(join(work, 'do')).find((d) => d.includes('popkit-bench-replay'));
    const bytes = store === undefined ? 0 : du(join(work, 'do', store));
    return {
      measured,
      perEntry: `${(keys / entries).toFixed(2)} storage keys (${entries} live entries)`,
      bytesPerEntry: bytes / entries,
    };
  } finally {
    if (child) await stop(child);
    rmSync(work, { recursive: true, force: true });
  }
}

/** DenoKvReplayStore vs a raw kv.atomic().check().set(), in one deno, on local KV files. */
export async function denoKvStoreCase(
  rounds: number,
  ms: number,
  log: (s: string) => void,
): Promise<EdgeStoreResult | undefined> {
  const bin = runtimesBin('deno');
  if (!existsSync(bin)) {
    log(`\n*** deno not found at ${bin}: its replay store rows SKIPPED (pnpm install) ***\n`);
    return undefined;
  }
  const work = mkdtempSync(join(tmpdir(), 'popkit-bench-kv-'));
  let child: ChildProcess | undefined;
  try {
    const file = join(work, 'bench.mjs');
    await bundle('edge-store-kv.ts', ['deno', 'node', 'import', 'default'], file);
    let out = '';
    let err = '';
    child = spawn(bin, ['run', '--allow-all', '--unstable-kv', '--quiet', file], {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      env: { ...process.env, KV_DIR: work, ROUNDS: String(rounds), MS: String(ms) },
    });
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (err += d));
    const c = child;
    const code = await new Promise<number | null>((r) => c.once('exit', (n) => r(n)));
    if (code !== 0) throw new Error(`deno bench exited ${code}: ${err.slice(-2000)}`);
    const result = JSON.parse(out.trim().split('\n').pop()!) as {
      measured: EdgeMeasured[];
      entries: number;
      rows: number;
      bytes: number;
    };
    return {
      measured: result.measured,
      perEntry: `${(result.rows / result.entries).toFixed(2)} KV rows (${result.entries} live entries)`,
      bytesPerEntry: result.bytes / result.entries,
    };
  } finally {
    if (child) await stop(child);
    rmSync(work, { recursive: true, force: true });
  }
}
