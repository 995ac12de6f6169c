#!/usr/bin/env node
// Refreshes the generated sections of README.md: the demo table (runs `pnpm demo`), the interop
// matrix (tests/interop/results/matrix.md) and the runtime table
// (tests/runtimes/results/runtimes.md); and the latest benchmark (bench/results/latest.md) in
// bench/README.md.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

const root = new URL('..', import.meta.url).pathname;
const readmePath = `${root}README.md`;
let readme = readFileSync(readmePath, 'utf8');

function replace(name, body, text = readme) {
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  if (i < 0 || j < 0) return text;
  const next = `${text.slice(0, i + start.length)}\n${body.trim()}\n${text.slice(j)}`;
  if (text === readme) readme = next;
  return next;
}

if (!process.argv.includes('--no-demo')) {
  const out = execFileSync('pnpm', ['--silent', 'demo'], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1' },
  });
  const lines = out.split('\n');
  const tableStart = lines.findIndex((l) => l.startsWith('#    '));
  replace('demo', '```text\n' + lines.slice(tableStart).join('\n').trim() + '\n```');
}
if (existsSync(`${root}bench/results/latest.md`)) {
  const benchReadme = `${root}bench/README.md`;
  const latest = readFileSync(`${root}bench/results/latest.md`, 'utf8');
  writeFileSync(benchReadme, replace('bench', latest, readFileSync(benchReadme, 'utf8')));
}
// Tests write their tables to the ignored test-results/; this script (never a test) keeps the
// tracked copies and the README in step with the latest run.
for (const [section, fresh, tracked] of [
  ['interop', 'test-results/interop/matrix.md', 'tests/interop/results/matrix.md'],
  ['runtimes', 'test-results/runtimes/runtimes.md', 'tests/runtimes/results/runtimes.md'],
]) {
  if (existsSync(`${root}${fresh}`)) {
    let table = readFileSync(`${root}${fresh}`, 'utf8');
    // tests/react-native writes its own row (React Native on Hermes) beside the runtimes table
    const rn = `${root}test-results/runtimes/react-native.md`;
    if (section === 'runtimes' && existsSync(rn))
      table = `${table.trimEnd()}\n${readFileSync(rn, 'utf8').trim()}\n`;
    writeFileSync(`${root}${tracked}`, table);
  }
  if (existsSync(`${root}${tracked}`)) replace(section, readFileSync(`${root}${tracked}`, 'utf8'));
}
writeFileSync(readmePath, readme);
console.log('README.md updated');
