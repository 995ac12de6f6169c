#!/usr/bin/env node
// Project rules a formatter cannot see. Exits non-zero with one line per violation.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const problems = [];

function walk(dir, out = []) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, out);
    else if (/\.(ts|mts|js|mjs)$/.test(name)) out.push(path);
  }
  return out;
}

// Node-only modules inside otherwise browser-facing packages.
const NODE_ONLY = [
  /packages\/dpop-client\/src\/crypto\/node\.ts$/,
  /packages\/dpop-client\/src\/mcp\/node-key-store\.ts$/,
  /packages\/dpop-verifier\/src\/crypto\/node\.ts$/,
  /packages\/dpop-verifier\/src\/(express|fastify|redis)\//,
  /packages\/dpop-verifier\/src\/replay\/redis\.ts$/,
  /packages\/mtls-binding\/src\/node\//,
  /packages\/explain\/src\/cli\//,
];

for (const file of walk(join(root, 'packages'))) {
  const rel = relative(root, file);
  const text = readFileSync(file, 'utf8');
  if (/\/src\//.test(rel)) {
    if (/^export \* from/m.test(text)) problems.push(`${rel}: "export *" (use an explicit barrel)`);
    if (!NODE_ONLY.some((re) => re.test(rel))) {
      if (/from ['"]node:|require\(['"]node:/.test(text))
        problems.push(`${rel}: node: import in a browser-facing module`);
      if (/\bBuffer\./.test(text)) problems.push(`${rel}: Buffer in a browser-facing module`);
    }
    if (/console\.(log|info|debug)\(/.test(text))
      problems.push(`${rel}: console logging in library code`);
  }
}
for (const file of walk(root)) {
  const rel = relative(root, file);
  if (!/\.test\.ts$/.test(rel)) continue;
  const text = readFileSync(file, 'utf8');
  if (/\b(it|test|describe)\.(only|skip|todo)\(|\bxit\(|\bxdescribe\(/.test(text)) {
    problems.push(`${rel}: focused or skipped test`);
  }
}
// The offline explain page is generated from the verifier's check sources and committed: a
// change to those sources without a rebuild is caught here, before a commit, not only in CI.
{
  const { buildPage } = await import('../packages/explain/scripts/build-page.mjs');
  const page = join(root, 'packages/explain/page/index.html');
  if (readFileSync(page, 'utf8') !== (await buildPage()))
    problems.push(
      'packages/explain/page/index.html is stale: run `pnpm --filter @popkit/explain run build:page`',
    );
}
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log('lint: project rules ok');
