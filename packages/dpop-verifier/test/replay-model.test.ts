import { describe, expect, it } from 'vitest';
import { underWatchdog } from './model/watchdog.ts';

const MODEL = new URL('./model/replay-model.ts', import.meta.url).pathname;

describe('MemoryReplayStore against a model, under a watchdog', () => {
  it('the watchdog turns a hang into a failure', async () => {
    await expect(underWatchdog(MODEL, 'spin', null, 1000)).rejects.toThrow(/watchdog/);
  });

  it('matches a Map model through inserts, replays, expiries, refusals, full sweeps and record reuse', async () => {
    const { result } = await underWatchdog<{ calls: number; runs: number }>(MODEL, 'modelRuns', {
      seed: 20261202,
      runs: 1000,
    });
    // (reported in the closing note: the number of store calls the model checked)
    console.info(`model test: ${result.runs} runs, ${result.calls} store calls checked`);
    expect(result.calls).toBeGreaterThan(150_000);
  }, 120_000);

  it('keeps its accounts exact when the sweep frees the record of the account being served', async () => {
    const { result } = await underWatchdog<number>(MODEL, 'staleRecordScenario', null);
    expect(result).toBeGreaterThan(600);
  });

  it('fails closed and starts afresh when its tables are corrupted, never spins', async () => {
    const { result } = await underWatchdog<string[]>(MODEL, 'corruptions', null);
    expect(result).toHaveLength(3);
  });
});
