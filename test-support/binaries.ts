import { accessSync, constants } from 'node:fs';
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
