// The README's "Debugging a rejection" output is the CLI's real output: each block after a
// `<!-- generated: popkit explain <fixture> [--json step <step>] -->` marker is what
// `popkit explain` prints for that fixture (the whole text output, or with --json the one step);
// after `<!-- generated: explain-log <fixture> -->`, the line `createDPoPAuth({ explain: 'log' })`
// writes for it (scripts/log-line.ts, run as a process).
// `pnpm --filter @popkit/explain run readme` rewrites the blocks (running the CLI's `main`);
// test/cli.test.ts spawns the bin and checks they are current.
import type { Explanation } from '../src/explain.ts';

const MARKER =
  /<!-- generated: (popkit explain|explain-log) (\S+)( --json step (\S+))? -->\n\n```(?:text|json)\n([\s\S]*?)```/g;

export interface GeneratedBlock {
  /** `cli`: popkit explain's output; `log`: the verifier's explain: 'log' line. */
  kind: 'cli' | 'log';
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
    const body = m[5]!;
    const start = m.index + m[0].length - 3 - body.length;
    return {
      kind: m[1] === 'explain-log' ? 'log' : 'cli',
      fixture: m[2]!,
      step: m[4],
      body,
      start,
      end: start + body.length,
    };
  });
}

/**
 * The block's body from the command's output: the CLI's stdout (the text output, or the --json
 * output), or log-line.ts's stderr.
 */
export function blockBody(block: GeneratedBlock, stdout: string): string {
  if (block.kind === 'log' || block.step === undefined)
    return stdout.endsWith('\n') ? stdout : `${stdout}\n`;
  const steps = (JSON.parse(stdout) as Explanation).steps;
  const step = steps.find((s) => String(s.step) === block.step);
  if (step === undefined) throw new Error(`${block.fixture}: no step ${block.step}`);
  return `${JSON.stringify(step, null, 2)}\n`;
}
