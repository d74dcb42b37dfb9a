import { StoreWrites } from '../../../src/files/store-writes';

/** A promise and its resolve, to finish a write when the test says so. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

describe('StoreWrites', () => {
  it('runs at most its limit at once, the others in the order they came, and frees a slot on failure', async () => {
    const writes = new StoreWrites(2);
    let running = 0;
    let most = 0;
    const started: number[] = [];
    const gates = Array.from({ length: 5 }, gate);
    const all = gates.map((each, index) =>
      writes.run(async () => {
        started.push(index);
        running += 1;
        most = Math.max(most, running);
        await each.promise;
        running -= 1;
        if (index === 1) throw new Error('the store refused');
        return index;
      }),
    );
    await Promise.resolve();
    expect(started).toEqual([0, 1]);
    gates[1].open();
    await expect(all[1]).rejects.toThrow('the store refused');
    expect(started).toEqual([0, 1, 2]);
    for (const each of gates) each.open();
    expect(await Promise.all([all[0], all[2], all[3], all[4]])).toEqual([0, 2, 3, 4]);
    expect(started).toEqual([0, 1, 2, 3, 4]);
    expect(most).toBe(2);
  });
});
