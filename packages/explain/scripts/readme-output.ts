// The README's "Debugging a rejection" output is the CLI's real output: each block after a
// `<!-- generated: popkit explain <fixture> [--json step <step>] -->` marker is what
// `popkit explain` prints for that fixture (the whole text output, or with --json the one step).
// `pnpm --filter @popkit/explain run readme` rewrites the blocks (running the CLI's `main`);
// test/cli.test.ts spawns the bin and checks they are current.
import type { Explanation } from '../src/explain.ts';

const MARKER =
  /<!-- generated: popkit explain (\S+)( --json step (\S+))? -->\n\n```(?:text|json)\n([\s\S]*?)```/g;

export interface GeneratedBlock {
  fixture: string;
  /** The step shown, for a --json block. */
  step: string | undefined;
  body: string;
  /** Where the body starts and ends in the README. */
  start: number;
  end: number;
}

/** The generated blocks of a README. */
export function generatedBlocks(readme: string): GeneratedBlock[] {
  return [...readme.matchAll(MARKER)].map((m) => {
    const start = m.index + m[0].length - 3 - m[4]!.length;
    return {
      fixture: m[1]!,
      step: m[3],
      body: m[4]!,
      start,
      end: start + m[4]!.length,
    };
  });
}

/** The block's body from the CLI's stdout (the text output, or the --json output). */
export function blockBody(block: GeneratedBlock, stdout: string): string {
  if (block.step === undefined) return stdout.endsWith('\n') ? stdout : `${stdout}\n`;
  const steps = (JSON.parse(stdout) as Explanation).steps;
  const step = steps.find((s) => String(s.step) === block.step);
  if (step === undefined) throw new Error(`${block.fixture}: no step ${block.step}`);
  return `${JSON.stringify(step, null, 2)}\n`;
}
