/**
 * What must never reach a client: stack frames, source paths, SQL and driver messages, JS error
 * names, schema hints (GQL-2). A match the request itself contains is an echo, not a leak.
 */
export const LEAKS: readonly RegExp[] = [
  /\bat [\w$.<>]+ \(/,
  /\.[jt]s:\d+/,
  /node_modules/,
  /\bSELECT\b/,
  /INSERT INTO/,
  /\bUPDATE "?\w+"? SET\b/,
  /DELETE FROM/,
  /syntax error at or near/,
  /QueryFailedError|EntityNotFound|TypeORMError/,
  /violates (?:unique|foreign key|not-null|check) constraint/,
  /invalid input syntax for|invalid byte sequence|out of range for type/,
  /\bstacktrace\b/,
  /\b(?:TypeError|RangeError|ReferenceError|SyntaxError: Unexpected token)\b/,
  /Maximum call stack/,
  /Did you mean/,
  /\/(?:work|home|usr\/src|app)\/\w/,
];

/** The leaks in `text` that `sent` (what the client itself sent) does not explain. */
export function leaksIn(text: string, sent = ''): string[] {
  const found: string[] = [];
  for (const leak of LEAKS) {
    const match = leak.exec(text);
    if (match && !sent.includes(match[0])) found.push(`${leak}: …${text.slice(Math.max(0, match.index - 60), match.index + 80)}…`);
  }
  return found;
}

/** Runs `work` over `items` with at most `limit` in flight. */
export async function inParallel<T>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next;
      next += 1;
      await work(items[index], index);
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
}
