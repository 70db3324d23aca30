/**
 * The known name nearest to one given by hand, for warnings such as "the closest namespace
 * is ai4life" after a typo. Pure: strings in, a string out.
 */

/**
 * Levenshtein distance: the fewest single-character insertions, deletions and
 * substitutions that turn `a` into `b`. Characters are code points, so an accented
 * letter or an emoji counts as one.
 */
export function editDistance(a: string, b: string): number {
  const x = Array.from(a);
  const y = Array.from(b);
  // One row of the classic table at a time: prev[j] is the distance of x[..i) to y[..j).
  let prev = Array.from({ length: y.length + 1 }, (_, j) => j);
  let row = new Array<number>(y.length + 1);
  for (let i = 1; i <= x.length; i++) {
    row[0] = i;
    for (let j = 1; j <= y.length; j++) {
      const substitute = prev[j - 1]! + (x[i - 1] === y[j - 1] ? 0 : 1);
      row[j] = Math.min(substitute, prev[j]! + 1, row[j - 1]! + 1);
    }
    [prev, row] = [row, prev];
  }
  return prev[y.length]!;
}

/**
 * How far a candidate may be from what was typed and still be offered: a third of its
 * characters (at least one). Past that a suggestion is noise: "nobody" is not a typo of
 * a 64-digit user hash, however close the nearest hash happens to be.
 */
export function nearEnough(typed: string, distance: number): boolean {
  return distance <= Math.max(1, Math.ceil(Array.from(typed).length / 3));
}

/**
 * The candidate nearest to `typed`, ignoring case (`AI4Life` is a typo of `ai4life`), or
 * null when none is near enough (see nearEnough). Ties go to the candidate nearer with
 * case, then to the first in code-unit order, so the answer never depends on the order
 * candidates come in.
 */
export function closest(typed: string, candidates: Iterable<string>): string | null {
  const lower = typed.toLowerCase();
  const length = Array.from(lower).length;
  let best: { value: string; distance: number; exact: number } | null = null;
  for (const value of candidates) {
    const folded = value.toLowerCase();
    // The lengths alone bound the distance from below: skip what cannot beat the best.
    if (best && Math.abs(Array.from(folded).length - length) > best.distance) continue;
    const distance = editDistance(lower, folded);
    if (best && distance > best.distance) continue;
    const exact = editDistance(typed, value);
    if (!best || distance < best.distance || exact < best.exact || (exact === best.exact && value < best.value)) best = { value, distance, exact };
  }
  return best && nearEnough(typed, best.distance) ? best.value : null;
}
