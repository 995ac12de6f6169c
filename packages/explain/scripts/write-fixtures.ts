// Writes fixtures/<name>.json from fixtures/fixtures.ts (deterministic: run it after changing
// the generator; test/fixtures.test.ts checks the files match).
import { writeFileSync } from 'node:fs';
import { buildFixtures } from '../fixtures/fixtures.ts';

const dir = new URL('../fixtures/', import.meta.url);
for (const fixture of buildFixtures())
  writeFileSync(new URL(`${fixture.name}.json`, dir), `${JSON.stringify(fixture, null, 2)}\n`);
console.log(`wrote ${buildFixtures().length} fixtures`);
