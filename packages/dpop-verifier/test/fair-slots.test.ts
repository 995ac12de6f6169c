import { describe, expect, it } from 'vitest';
import { FairSlots, peerSource } from '../src/fair-slots.ts';

const slots = (over: Partial<ConstructorParameters<typeof FairSlots>[0]> = {}) =>
  new FairSlots({ slots: 4, reserved: 1, perSource: 2, maxWaiting: 8, maxWaitMs: 200, ...over });

describe('FairSlots (introspection calls shared fairly)', () => {
  it('grants at once while slots are free; strangers never take the reserved ones', () => {
    const s = slots();
    expect([s.acquire('a', false), s.acquire('a', false), s.acquire('b', false)]).toEqual([
      true,
      true,
      true,
    ]);
    // the fourth slot is kept for known tokens
    expect(s.acquire('c', false)).toBeInstanceOf(Promise);
    expect(s.acquire('k', true)).toBe(true);
  });

  it('hands freed slots to the sources in turn, not to the one that sends most', async () => {
    const s = slots({ slots: 1, reserved: 0, perSource: 4, maxWaiting: 100, maxWaitMs: 1000 });
    expect(s.acquire('flood', false)).toBe(true);
    const order: string[] = [];
    const wait = (source: string) =>
      (s.acquire(source, false) as Promise<boolean>).then((ok) => {
        order.push(`${source}:${ok}`);
        return ok;
      });
    // the flood queues four, then two users arrive
    const flood = [wait('flood'), wait('flood'), wait('flood'), wait('flood')];
    expect(s.acquire('flood', false)).toBe(false); // its line is full: refused at once
    const users = [wait('u1'), wait('u2')];
    for (let i = 0; i < 6; i++) {
      s.release(false);
      await Promise.resolve();
    }
    await Promise.all([...flood, ...users]);
    // one flood request, then each user, before the flood's next ones
    expect(order.slice(0, 3)).toEqual(['flood:true', 'u1:true', 'u2:true']);
  });

  it('known tokens go first when a slot frees', async () => {
    const s = slots({ slots: 1, reserved: 0 });
    expect(s.acquire('a', false)).toBe(true);
    const order: string[] = [];
    const stranger = (s.acquire('b', false) as Promise<boolean>).then(() => order.push('stranger'));
    const known = (s.acquire('c', true) as Promise<boolean>).then(() => order.push('known'));
    s.release(false);
    await known;
    s.release(true);
    await stranger;
    expect(order).toEqual(['known', 'stranger']);
  });

  it("strangers' waiters never shut out known tokens: the priority line has its own bound", async () => {
    const s = slots({ slots: 1, reserved: 0, perSource: 1, maxWaiting: 2, maxWaitMs: 1000 });
    expect(s.acquire('a', false)).toBe(true);
    const strangers = [s.acquire('b', false), s.acquire('c', false)];
    expect(s.acquire('d', false)).toBe(false); // the strangers' line is full
    const known = s.acquire('e', true);
    expect(known).toBeInstanceOf(Promise);
    s.release(false);
    expect(await known).toBe(true);
    s.release(true);
    s.release(false);
    expect(await Promise.all(strangers)).toEqual([true, true]);
  });

  it('every waiter has a deadline, and the total line is bounded', async () => {
    const s = slots({ slots: 1, reserved: 0, perSource: 10, maxWaiting: 3, maxWaitMs: 50 });
    expect(s.acquire('a', false)).toBe(true);
    const waiting = [s.acquire('b', false), s.acquire('c', false), s.acquire('d', false)];
    expect(s.acquire('e', false)).toBe(false);
    expect(await Promise.all(waiting)).toEqual([false, false, false]);
    // the slot still works afterwards
    s.release(false);
    expect(s.acquire('f', false)).toBe(true);
  });
});

describe('peerSource', () => {
  it('groups IPv6 by /64, unwraps IPv4-mapped addresses, and has none without a socket', () => {
    expect(peerSource({ socket: { remoteAddress: '203.0.113.7' } })).toBe('203.0.113.7');
    expect(peerSource({ socket: { remoteAddress: '::ffff:203.0.113.7' } })).toBe('203.0.113.7');
    expect(peerSource({ socket: { remoteAddress: '2001:db8:1:2:aaaa::1' } })).toBe(
      '2001:db8:1::/48',
    );
    expect(peerSource({ socket: { remoteAddress: '2001:db8:1:ffff::1' } })).toBe('2001:db8:1::/48');
    expect(peerSource({ socket: { remoteAddress: '2001:db8::1' } })).toBe('2001:db8:0::/48');
    expect(peerSource({ socket: { remoteAddress: '::1' } })).toBe('0:0:0::/48');
    expect(peerSource({})).toBe('');
  });
});
