// Rewrites the README's generated output blocks (see readme-output.ts) by running the CLI.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { main } from '../src/cli/main.ts';
import { buildFixtures } from '../fixtures/fixtures.ts';
import { cliArgs } from '../test/helpers.ts';
import { blockBody, generatedBlocks } from './readme-output.ts';

const file = new URL('../README.md', import.meta.url);
let readme = readFileSync(file, 'utf8');
const fixtures = new Map(buildFixtures().map((f) => [f.name, f]));
for (const block of generatedBlocks(readme).reverse()) {
  const fixture = fixtures.get(block.fixture);
  if (fixture === undefined) throw new Error(`no fixture ${block.fixture}`);
  if (block.kind === 'log') {
    const script = fileURLToPath(new URL('log-line.ts', import.meta.url));
    const { stderr, status } = spawnSync('node', ['--import', 'tsx', script, block.fixture], {
      encoding: 'utf8',
      cwd: fileURLToPath(new URL('..', import.meta.url)),
    });
    if (status !== 0) throw new Error(`log-line.ts ${block.fixture}: ${stderr}`);
    readme = readme.slice(0, block.start) + blockBody(block, stderr) + readme.slice(block.end);
    continue;
  }
  const args = cliArgs(fixture).filter((a) => block.step !== undefined || a !== '--json');
  let stdout = '';
  await main(args, {
    stdout: (t) => (stdout += t),
    stderr: (t) => process.stderr.write(t),
    stdin: () => Promise.resolve(''),
  });
  readme = readme.slice(0, block.start) + blockBody(block, stdout) + readme.slice(block.end);
}
writeFileSync(file, readme);
console.log(`README: ${generatedBlocks(readme).length} generated blocks written`);
