#!/usr/bin/env node
// `popkit`: in the repository (a fresh clone right after `pnpm install`, no build step) it runs
// the CLI from its TypeScript sources through tsx; from the published package, the built dist.
import { existsSync } from 'node:fs';

const source = new URL('../src/cli/main.ts', import.meta.url);
let cli;
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  cli = await import(source.href);
} else {
  cli = await import(new URL('../dist/cli/main.js', import.meta.url).href);
}
process.exitCode = await cli.main(process.argv.slice(2));
