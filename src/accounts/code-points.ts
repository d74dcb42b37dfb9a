/** Characters as NIST counts them: code points, where String.length would count an emoji as two. */
export function codePointCount(text: string): number {
  let count = 0;
  for (const _codePoint of text) count += 1;
  return count;
}
