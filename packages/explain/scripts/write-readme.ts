// Rewrites the README's generated output blocks (see readme-output.ts) by running the CLI.
import { readFileSync, writeFileSync } from 'node:fs';
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
