#!/usr/bin/env node
// Builds one package (run from its folder): cleans dist/ (so nothing stale ships), compiles the
// browser-safe core and the Node-only files, then rewrites the relative `.ts` import specifiers
// that TypeScript keeps in declaration files to `.js`, so consumers on any TypeScript that reads
// `exports` (4.7+) resolve popkit's types instead of silently getting `any`.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dist = join(process.cwd(), 'dist');
rmSync(dist, { recursive: true, force: true });
const tsc = (args) => execFileSync('tsc', args, { stdio: 'inherit' });
tsc(['-p', 'tsconfig.build.json']);
tsc(['-p', 'tsconfig.node.json', '--noEmit', 'false', '--outDir', 'dist', '--declaration']);

const SPECIFIER = /(from\s+|import\(\s*|import\s+)(['"])(\.{1,2}\/[^'"]+)\.ts\2/g;
let rewritten = 0;
const walk = (dir) => {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (name.endsWith('.d.ts')) {
      const text = readFileSync(path, 'utf8');
      const next = text.replace(SPECIFIER, (_m, head, q, spec) => `${head}${q}${spec}.js${q}`);
      if (next !== text) {
        writeFileSync(path, next);
        rewritten++;
      }
    }
  }
};
walk(dist);
if (/\.ts['"]/.test(readFileSync(join(dist, 'index.d.ts'), 'utf8')))
  throw new Error('a .ts specifier is left in dist/index.d.ts');
console.log(`built ${process.cwd().split('/').pop()}: ${rewritten} declaration files rewritten`);
