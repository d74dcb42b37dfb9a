import fs from 'node:fs';

/** How long a backend may stay frozen whatever happens to the test: a stuck test must not wedge the server. */
const THAW_AFTER_MS = 15_000;

/**
 * Runs `body` with these PostgreSQL backends stopped (SIGSTOP), as a silent network partition looks
 * from the client, and thaws them afterwards, or after THAW_AFTER_MS should `body` never finish.
 * Needs the server on this machine (the embedded one, or DATABASE_URL on localhost) and the right
 * to signal it: each pid is checked to be a postgres process first, never a stranger's.
 */
export async function withFrozenBackends<T>(pids: readonly number[], body: () => Promise<T>): Promise<T> {
  for (const pid of pids) {
    let command = '';
    try {
      command = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      // no such process here
    }
    if (command !== 'postgres')
      throw new Error(`backend ${pid} is not a postgres process on this machine: this test needs the PostgreSQL server to run locally`);
  }
  const thaw = () => {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // already gone
      }
    }
  };
  const safety = setTimeout(thaw, THAW_AFTER_MS);
  try {
    for (const pid of pids) process.kill(pid, 'SIGSTOP');
    return await body();
  } finally {
    clearTimeout(safety);
    thaw();
  }
}
