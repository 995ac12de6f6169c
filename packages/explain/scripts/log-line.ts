// Runs one fixture through createDPoPAuth({ explain: 'log' }): the verifier writes its log line
// (console.warn, to stderr). `node --import tsx scripts/log-line.ts <fixture>`; the README's
// example line is this output (see readme-output.ts).
import { buildFixtures } from '../fixtures/fixtures.ts';
import { verdict } from '../test/helpers.ts';

const name = process.argv[2];
const fixture = buildFixtures().find((f) => f.name === name);
if (fixture === undefined || fixture.verifier !== 'auth') throw new Error(`no fixture ${name}`);
await verdict(fixture, { explain: 'log' });
