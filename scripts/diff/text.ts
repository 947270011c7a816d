// A unified diff of two texts, line by line (`diff -u` layout, 3 lines of context). Pure. Used by
// `npm run promote` (the stack file it rewrites) and `npm run diff` (host files).

/** Longest-common-subsequence edit script: [" ", line] kept, ["-", line] removed, ["+", line] added. */
function edits(a: string[], b: string[]): [" " | "-" | "+", string][] {
  // Files here are small (stack files, host configs): the quadratic table is fine.
  const n = a.length, m = b.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  const out: [" " | "-" | "+", string][] = [];
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) { out.push([" ", a[i]]); i++; j++; }
    // Removals before additions, as diff -u prints them.
    else if (i < n && (j === m || lcs[i + 1][j] >= lcs[i][j + 1])) out.push(["-", a[i++]]);
    else out.push(["+", b[j++]]);
  }
  return out;
}

const linesOf = (t: string) => (t === "" ? [] : t.replace(/\n$/, "").split("\n"));

/** `diff -u` of two texts; "" when they are equal. */
export function unifiedDiff(before: string, after: string, nameBefore: string, nameAfter = nameBefore, context = 3): string {
  if (before === after) return "";
  const script = edits(linesOf(before), linesOf(after));
  const changed = script.map(([op], k) => (op !== " " ? k : -1)).filter((k) => k >= 0);
  // Group changes whose context windows touch into hunks.
  const hunks: [number, number][] = [];
  for (const k of changed) {
    const last = hunks[hunks.length - 1];
    if (last && k - context <= last[1] + context) last[1] = k;
    else hunks.push([k, k]);
  }
  const out = [`--- ${nameBefore}`, `+++ ${nameAfter}`];
  for (const [first, lastChange] of hunks) {
    const start = Math.max(0, first - context), end = Math.min(script.length - 1, lastChange + context);
    let aLine = 1, bLine = 1;
    for (let k = 0; k < start; k++) {
      if (script[k][0] !== "+") aLine++;
      if (script[k][0] !== "-") bLine++;
    }
    const body = script.slice(start, end + 1);
    const aCount = body.filter(([op]) => op !== "+").length, bCount = body.filter(([op]) => op !== "-").length;
    // diff -u's ranges: "start,count", the count left out when it is 1, "start-1,0" when empty.
    const range = (line: number, count: number) => (count === 0 ? `${line - 1},0` : count === 1 ? `${line}` : `${line},${count}`);
    out.push(`@@ -${range(aLine, aCount)} +${range(bLine, bCount)} @@`);
    for (const [op, line] of body) out.push(`${op}${line}`);
  }
  return out.join("\n") + "\n";
}
