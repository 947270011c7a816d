#!/usr/bin/env bash
# Offline preview time against its floor, loading the AWS SDK, measured side by side in one run.
# Usage: scripts/bench/preview.sh [stack] [runs]   (needs hyperfine: apt-get install -y hyperfine)
# Target (issue #2): the preview under 2x the floor.
set -euo pipefail
cd "$(dirname "$0")/../.."
stack="${1:-prod}"
runs="${2:-15}"
command -v hyperfine >/dev/null || { echo "preview.sh: hyperfine is not installed (apt-get install -y hyperfine)" >&2; exit 1; }

json="$(mktemp)"
out="$(mktemp -d)"
trap 'rm -rf "$json" "$out"' EXIT
# The preview exactly as `npm start` runs it (minus npm's own start-up), into a scratch out/.
start=$(node -p "require('./package.json').scripts.start")
hyperfine --style basic --warmup 2 --runs "$runs" --export-json "$json" \
  -n floor "node -e \"require('@pulumi/aws')\"" \
  -n preview "$start --stack $stack --out $out" >&2

node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).results;
const med = (n) => r.find((x) => x.command === n).median;
const [floor, preview] = [med("floor"), med("preview")];
console.log(`stack ${process.argv[2]}: preview median ${preview.toFixed(3)} s, floor median ${floor.toFixed(3)} s, ratio ${(preview / floor).toFixed(2)}x (target < 2x)`);
' "$json" "$stack"
