// A real Prometheus server (Debian's `prometheus`) on 127.0.0.1 with a generated config, in a
// temporary directory, stopped by its process group; and a small client for its HTTP API.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findBinary } from '@popkit/example-shared/binaries';
import { freePort } from '@popkit/example-shared/redis';
import type { Target } from './stack.ts';

export const PROMETHEUS_INSTALL = 'apt-get update && apt-get install -y prometheus';

/** The shipped rule files. */
export const RULE_FILES = ['recording.yml', 'alerts.yml'].map((f) =>
  fileURLToPath(new URL(`../prometheus/${f}`, import.meta.url)),
);

export interface PrometheusServer {
  url: string;
  pid: number;
  dir: string;
  /** The server's output so far (for failure messages). */
  log(): string;
  /** GET /api/v1/<path>; throws unless `status` is `success`. */
  api<T = unknown>(path: string, params?: Record<string, string>): Promise<T>;
  /** An instant query: its result vector (or scalar as one sample). */
  query(expr: string, time?: number): Promise<InstantSample[]>;
  stop(): Promise<void>;
}

export interface InstantSample {
  metric: Record<string, string>;
  value: [number, string];
}

/** Prometheus's scrape config for the targets, with the CA for the HTTPS ones. */
export function prometheusConfig(
  targets: Target[],
  caFile: string,
  ruleFiles: string[],
  interval = '1s',
): string {
  const lines = [
    'global:',
    `  scrape_interval: ${interval}`,
    `  evaluation_interval: ${interval}`,
    'rule_files:',
    ...ruleFiles.map((f) => `  - ${JSON.stringify(f)}`),
    'scrape_configs:',
  ];
  for (const t of targets) {
    lines.push(
      `  - job_name: ${JSON.stringify(t.job)}`,
      `    scheme: ${t.scheme}`,
      ...(t.scheme === 'https'
        ? ['    tls_config:', `      ca_file: ${JSON.stringify(caFile)}`]
        : []),
      '    static_configs:',
      `      - targets: [${JSON.stringify(t.address)}]`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** Starts Prometheus scraping `targets` every second, loading the shipped rules. */
export async function startPrometheus(
  targets: Target[],
  caPem: string,
  options: { ruleFiles?: string[]; retention?: string } = {},
): Promise<PrometheusServer> {
  const binary = findBinary('prometheus');
  if (!binary)
    throw new Error(`prometheus is not installed; install it with: ${PROMETHEUS_INSTALL}`);
  const dir = mkdtempSync(join(tmpdir(), 'popkit-prometheus-'));
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, caPem);
  const config = join(dir, 'prometheus.yml');
  writeFileSync(config, prometheusConfig(targets, caFile, options.ruleFiles ?? RULE_FILES));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let output = '';
  const child: ChildProcess = spawn(
    binary,
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      `--storage.tsdb.retention.time=${options.retention ?? '1d'}`,
      '--log.level=warn',
    ],
    // its own process group, so stop() reaches anything it starts
    { detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {
        /* already gone */
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }, 10_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const api = async <T>(path: string, params: Record<string, string> = {}): Promise<T> => {
    const res = await fetch(`${url}/api/v1/${path}?${new URLSearchParams(params)}`);
    const body = (await res.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success')
      throw new Error(`Prometheus ${path} ${JSON.stringify(params)}: ${body.error}`);
    return body.data;
  };
  try {
    for (let i = 0; ; i++) {
      if (child.exitCode !== null) throw new Error(`prometheus exited: ${output}`);
      const ready = await fetch(`${url}/-/ready`).then(
        (r) => r.ok,
        () => false,
      );
      if (ready) break;
      if (i > 300) throw new Error(`prometheus did not become ready: ${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    url,
    pid: child.pid!,
    dir,
    log: () => output,
    api,
    query: async (expr, time) => {
      const data = await api<{ resultType: string; result: unknown }>('query', {
        query: expr,
        ...(time === undefined ? {} : { time: String(time) }),
      });
      if (data.resultType === 'scalar')
        return [{ metric: {}, value: data.result as [number, string] }];
      return data.result as InstantSample[];
    },
    stop,
  };
}
