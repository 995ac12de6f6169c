import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Absolute path of an executable on PATH (or an absolute path that exists), else undefined. */
export function findBinary(name: string): string | undefined {
  const candidates = name.startsWith('/')
    ? [name]
    : (process.env.PATH ?? '').split(delimiter).map((dir) => join(dir, name));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // keep looking
    }
  }
  return undefined;
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
