import { MemoryReplayStore } from '../src/index.ts';
import { replayStoreContract } from './replay-contract.ts';

// One in-process store is shared by both "instances"; it counts expiries in whole seconds.
replayStoreContract('MemoryReplayStore', async () => {
  const store = new MemoryReplayStore({ maxEntries: 50_000 });
  return {
    a: store,
    b: store,
    size: async () => store.size,
    lateMs: 1000,
    close: async () => undefined,
  };
});
