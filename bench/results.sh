#!/usr/bin/env bash
# Reproduce docs/RESULTS.md: every baseline on every shared dataset under a protocol.
#   bench/results.sh [PROTOCOL] [MODELS]     (defaults: loo, pop,bprmf,bm25,sasrec)
# Writes docs/results/<dataset>-<protocol>.json and prints a markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
proto=${1:-loo}
models=${2:-pop,bprmf,bm25,sasrec}
shared=${GENREC_SHARED:-../shared}
bin=${GENREC_BIN:-build/genrec}
for ds in ml-100k ml-latest-small lastfm amazon-scientific; do
  if [ ! -d "$shared/data/$ds" ]; then echo "skip $ds: $shared/data/$ds absent" >&2; continue; fi
  "$bin" eval --data "$shared/data/$ds" --protocol "$proto" --models "$models" --seed 1 \
      --out "docs/results/$ds-$proto.json" ${GENREC_EVAL_FLAGS:-}
done
/usr/bin/python3 bench/results_table.py docs/results/*-"$proto".json
