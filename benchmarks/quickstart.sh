#!/usr/bin/env bash
# Prints the README's quick-start transcript as a fresh checkout and a fresh cache produce it (the README's
# block is pasted from this output, never typed). Usage: bash benchmarks/quickstart.sh  (uses .venv/bin)
set -euo pipefail
BIN="$(cd "$(dirname "$0")/.." && pwd)/.venv/bin"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
export EMBEDREC_CACHE="$work/cache" PATH="$BIN:$PATH"
run() { echo "\$ $1"; eval "$1" 2>&1 | grep -v "^MovieLens\|^$" || true; echo; }
run "embedrec ingest ml-100k"
start=$(date +%s%N)
run "embedrec train --format table"
echo "(train: $(( ($(date +%s%N) - start) / 1000000 )) ms wall as a fresh process, load $(cut -d' ' -f1 /proc/loadavg))" >&2
run "embedrec history --user 196 -k 3 --format table"
run "embedrec recommend --user 196 -k 5 --format table"
run "embedrec recommend --user 196 -k 3 --explain 2 --format table"
run 'embedrec recommend --movie "star wars" -k 3 --format table'
run 'embedrec recommend --liked "star wars,empire strikes back" -k 3 --format table'
