import { FreshCall } from '../../../src/db/fresh-call';

/** A call whose every run the test finishes by hand, so the order of events is the test's. */
function controlledCall() {
  const runs: { finish: () => void; startedAfter: number }[] = [];
  let asked = 0;
  const fresh = new FreshCall(
    () =>
      new Promise<void>((resolve) => {
        runs.push({ finish: resolve, startedAfter: asked });
      }),
  );
  const ask = () => {
    asked += 1;
    const question = asked;
    let answered = false;
    const answer = fresh.run().then(() => {
      answered = true;
    });
    return { question, answer, answered: () => answered };
  };
  return { runs, ask };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('FreshCall', () => {
  it('runs at once when idle, and a caller is answered by that run', async () => {
    const { runs, ask } = controlledCall();
    const first = ask();
    expect(runs).toHaveLength(1);
    runs[0].finish();
    await first.answer;
    expect(first.answered()).toBe(true);
  });

  it('never answers a caller with a run that started before it asked', async () => {
    const { runs, ask } = controlledCall();
    const early = ask();
    const late = [ask(), ask(), ask()];
    expect(runs).toHaveLength(1); // the late ones wait; they do not start runs of their own
    runs[0].finish();
    await early.answer;
    await settle();
    expect(late.map((caller) => caller.answered())).toEqual([false, false, false]);
    // One queued run, started after all three asked, answers them all.
    expect(runs).toHaveLength(2);
    expect(runs[1].startedAfter).toBe(4);
    runs[1].finish();
    await Promise.all(late.map((caller) => caller.answer));
  });

  it('keeps at most one run in flight and one queued, however many callers arrive', async () => {
    const { runs, ask } = controlledCall();
    const callers = Array.from({ length: 100 }, () => ask());
    expect(runs).toHaveLength(1);
    runs[0].finish();
    await settle();
    expect(runs).toHaveLength(2);
    const during = ask(); // arrives while the second run is in flight: needs a third
    runs[1].finish();
    await Promise.all(callers.map((caller) => caller.answer));
    await settle();
    expect(during.answered()).toBe(false);
    expect(runs).toHaveLength(3);
    runs[2].finish();
    await during.answer;
  });

  it("passes a failed run's rejection to its callers, and still starts the queued run", async () => {
    let runs = 0;
    const fresh = new FreshCall(async () => {
      runs += 1;
      if (runs === 1) throw new Error('first run failed');
    });
    const first = fresh.run();
    const queued = fresh.run();
    await expect(first).rejects.toThrow('first run failed');
    await expect(queued).resolves.toBeUndefined();
    expect(runs).toBe(2);
  });
});
