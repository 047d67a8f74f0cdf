#!/usr/bin/env bash
# glassbox ÷ PyTorch on the same cores, measured in one run: for each config the two benches
# alternate ROUNDS times (so a burst of load elsewhere hits both), and the best round of each is
# compared. Prints the benches' own JSON lines, then one ratio line per config.
#   bash bench/compare.sh [CONFIGS=A,B] [ROUNDS=3] [STEPS=…] [BACKEND=native] [GENERATE=1]
# STEPS defaults per config: A 100 (a 25 ms step: 5 steps read ~40% slow, still warming up), B 5, C 2.
# Needs Debian's python3-torch (apt-get install python3-torch libopenblas0-openmp). PyTorch runs on
# the OpenMP build of OpenBLAS when it is installed (its own threads are OpenMP's: on the pthread
# build the two thread pools fight and config A runs ~3x slower), as the yardstick was defined.
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIGS=${CONFIGS:-A,B}
ROUNDS=${ROUNDS:-3}
BACKEND=${BACKEND:-native}
THREADS=${GLASSBOX_THREADS:-$(nproc)}
PY=${PYTHON:-/usr/bin/python3}
OPENMP_BLAS=/usr/lib/$(uname -m)-linux-gnu/openblas-openmp
py() { if [ -d "$OPENMP_BLAS" ]; then LD_LIBRARY_PATH="$OPENMP_BLAS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$PY" "$@"; else "$PY" "$@"; fi; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT

for config in ${CONFIGS//,/ }; do
  case "$config" in A) steps=${STEPS:-100} ;; C) steps=${STEPS:-2} ;; *) steps=${STEPS:-5} ;; esac
  for _ in $(seq "$ROUNDS"); do
    npx tsx bench/train.ts --backend "$BACKEND" --only "$config" --steps "$steps" | grep '"config"' | tee -a "$out"
    py bench/pytorch_reference.py --only "$config" --steps "$steps" --threads "$THREADS" | tee -a "$out"
  done
done
if [ "${GENERATE:-1}" = 1 ]; then
  for _ in $(seq "$ROUNDS"); do
    npx tsx bench/generate.ts --backend "$BACKEND" --compare | tee -a "$out"
    py bench/pytorch_reference.py --generate --new-tokens 100 --threads "$THREADS" | tee -a "$out"
  done
fi

node --input-type=module -e '
import { readFileSync } from "node:fs"
const lines = readFileSync(process.argv[1], "utf8").split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l))
const best = (pred) => Math.max(0, ...lines.filter(pred).map((l) => l.tokens_per_s))
for (const config of new Set(lines.filter((l) => l.config && !l.metric).map((l) => l.config))) {
  const ours = best((l) => l.bench === "train" && l.config === config)
  const theirs = best((l) => l.bench === "pytorch" && l.config === config && !l.metric)
  console.log(JSON.stringify({ compare: "train", config, glassbox_tokens_per_s: ours, pytorch_tokens_per_s: theirs, ratio: Number((ours / theirs).toFixed(2)) }))
}
const gOurs = best((l) => l.bench === "generate" && l.compare === true)
const gTheirs = best((l) => l.bench === "pytorch" && l.metric === "generate")
if (gOurs > 0 && gTheirs > 0) console.log(JSON.stringify({ compare: "generate", config: "B", batch: 1, new_tokens: 100, cached: true, glassbox_tokens_per_s: gOurs, pytorch_tokens_per_s: gTheirs, ratio: Number((gOurs / gTheirs).toFixed(2)) }))
' "$out"
