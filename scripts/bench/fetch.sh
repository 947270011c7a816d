#!/usr/bin/env bash
# `nourishctl release fetch` of the sample app: this checkout's nourishctl against a base commit's,
# measured side by side in one run, alternating (issue 9: pip as the app user, the artifact checks
# and the env-file parser must not make a release slower).
# Usage: scripts/bench/fetch.sh [base-ref] [runs]   (default: d71adfb, the code before issue 9; 4 runs)
set -euo pipefail
cd "$(dirname "$0")/../.."
base="${1:-d71adfb}"
runs="${2:-4}"
work="$(mktemp -d)"
trap 'git worktree remove --force "$work/base" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git worktree add --quiet --detach "$work/base" "$base"
tar -czf "$work/app.tar.gz" -C test/fixtures/dusangire .
sha=$(sha256sum "$work/app.tar.gz" | cut -d' ' -f1)
for impl in base ours; do
  mkdir -p "$work/$impl-root/etc/nourish-link"
  printf 'ROLE=app\nDOMAIN=app.test\nKEEP_RELEASES=50\n' > "$work/$impl-root/etc/nourish-link/host.env"
done
declare -A total=([base]=0 [ours]=0)
for ((i = 1; i <= runs; i++)); do
  for impl in base ours; do
    if [ "$impl" = base ]; then ctl="$work/base/scripts/host/nourishctl"; else ctl=scripts/host/nourishctl; fi
    t0=$EPOCHREALTIME
    NOURISH_ROOT="$work/$impl-root" bash "$ctl" release fetch "1.0.$i" --file "$work/app.tar.gz" --sha256 "$sha" >/dev/null \
      || { echo "fetch.sh: $impl fetch 1.0.$i failed" >&2; exit 1; }
    total[$impl]=$(awk -v a="${total[$impl]}" -v s="$t0" -v e="$EPOCHREALTIME" 'BEGIN { print a + e - s }')
  done
done
awk -v b="${total[base]}" -v o="${total[ours]}" -v n="$runs" -v ref="$base" 'BEGIN {
  printf "release fetch, %d runs each: ours %.2f s, base %s %.2f s (mean), ratio %.2fx\n", n, o / n, ref, b / n, o / b }'
