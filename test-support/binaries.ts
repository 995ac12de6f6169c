import type { ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { connect } from 'node:net';
import { findBinary as findOnPath } from '../examples/shared/src/binaries.ts';

/** Absolute path of an executable on PATH (or an absolute path that exists), else undefined. */
export function findBinary(name: string): string | undefined {
  if (!name.startsWith('/')) return findOnPath(name);
  try {
    accessSync(name, constants.X_OK);
    return name;
  } catch {
    return undefined;
  }
}

/**
 * Whether tests that need a real binary can run. Under `CI` a missing binary is a failure whose
 * message names the install command; elsewhere the suite is skipped with a loud warning.
 */
export function requireBinary(name: string, install: string): boolean {
  if (findBinary(name)) return true;
  const message = `${name} is not installed; install it with: ${install}`;
  if (process.env.CI) throw new Error(`${message} (CI must provide it: .ci/run installs it)`);
  console.warn(`\n!!! SKIPPED: ${message}\n`);
  return false;
}

/**
 * Waits until a binary a test started accepts TCP connections on 127.0.0.1:`port`; fails at
 * once if it exits, and after `attempts` tries 50 ms apart, with its output (`log`).
 */
export async function waitForListening(
  port: number,
  child: ChildProcess,
  name: string,
  log: () => string,
  attempts = 100,
): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    if (child.exitCode !== null) throw new Error(`${name} exited: ${log()}`);
    const up = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (up) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${name} did not listen: ${log()}`);
}
