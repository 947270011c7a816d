#!/usr/bin/env bash
# Offline preview time against its floor, loading the AWS SDK, measured side by side in one run.
# Usage: scripts/bench/preview.sh [--smoke] [stack] [runs]   (needs hyperfine: apt-get install -y hyperfine)
#   --smoke: one run each, no warm-up (the suite's check that the bench still runs; no figure).
# Prints the ratio and the cost per resource: the preview's median over the stack's resources,
# and what it adds to the floor per resource (the part that grows with the estate).
# Target (issue #2, #22): the preview under 2x the floor.
set -euo pipefail
cd "$(dirname "$0")/../.."
warmup=2
if [ "${1:-}" = --smoke ]; then warmup=0; shift; set -- "${1:-prod}" 1; fi
stack="${1:-prod}"
runs="${2:-15}"
command -v hyperfine >/dev/null || { echo "preview.sh: hyperfine is not installed (apt-get install -y hyperfine)" >&2; exit 1; }

json="$(mktemp)"
out="$(mktemp -d)"
trap 'rm -rf "$json" "$out"' EXIT
# The preview exactly as `npm start` runs it (minus npm's own start-up), into a scratch out/.
start=$(node -p "require('./package.json').scripts.start")
hyperfine --style basic --warmup "$warmup" --runs "$runs" --export-json "$json" \
  -n floor "node -e \"require('@pulumi/aws')\"" \
  -n preview "$start --stack $stack --out $out" >&2

node -e '
const fs = require("fs");
const r = JSON.parse(fs.readFileSync(process.argv[1], "utf8")).results;
const med = (n) => r.find((x) => x.command === n).median;
const [floor, preview] = [med("floor"), med("preview")];
const n = JSON.parse(fs.readFileSync(process.argv[3], "utf8")).resources.length;
const ms = (s) => (1000 * s / n).toFixed(2);
console.log(`stack ${process.argv[2]}: ${n} resources, preview median ${preview.toFixed(3)} s, floor median ${floor.toFixed(3)} s, ratio ${(preview / floor).toFixed(2)}x (target < 2x); per resource ${ms(preview)} ms, ${ms(preview - floor)} ms above the floor`);
' "$json" "$stack" "$out/$stack/plan.json"
