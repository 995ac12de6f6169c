#!/usr/bin/env node
// `popkit`: runs the CLI from its TypeScript sources through tsx (a dependency), so it works in
// a fresh clone right after `pnpm install`, with no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
