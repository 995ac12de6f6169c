import type { AccountTable } from './accounts.ts';
import { corrupt } from './accounts.ts';
import { BLOCK_SHIFT } from './memory-size.ts';

/** What {@link verifyTables} reads of a MemoryReplayStore. @internal */
export interface TablesView {
  /** 4 words per slot: fingerprint hi, lo, expiry second (0 = empty), account record. */
  readonly table: Uint32Array;
  readonly slots: number;
  readonly blockMin: Uint32Array;
  readonly used: number;
  readonly accounts: AccountTable;
  /** The home slot of a fingerprint. */
  home(hi: number, lo: number): number;
}

/**
 * Checks every invariant of the store's tables (listed in memory-size.ts) in O(table): each
 * block's minimum bounds its entries, no probe chain has a hole, the used count and each
 * account record's count equal the rows. Throws `InvariantBroken`. For tests only. @internal
 */
export function verifyTables(view: TablesView): void {
  const { table, slots, blockMin, accounts } = view;
  const counts = new Map<number, number>();
  let used = 0;
  for (let i = 0; i < slots; i++) {
    const exp = table[i * 4 + 2]!;
    if (exp === 0) continue;
    used++;
    if (exp < blockMin[i >>> BLOCK_SHIFT]!) throw corrupt('block minimum');
    // no hole between the entry's home and its slot
    for (
      let j = view.home(table[i * 4]!, table[i * 4 + 1]!);
      j !== i;
      j = j + 1 === slots ? 0 : j + 1
    )
      if (table[j * 4 + 2] === 0) throw corrupt('hole in a probe chain');
    const r = table[i * 4 + 3]!;
    counts.set(r, (counts.get(r) ?? 0) + 1);
  }
  if (used !== view.used) throw corrupt('used');
  for (const [r, n] of counts) if (accounts.count(r) !== n) throw corrupt('record count');
  if (counts.size !== accounts.size) throw corrupt('accounts');
  accounts.verify();
}
