#!/usr/bin/env bash
# Reproduce docs/RESULTS.md: models on the shared datasets under one protocol.
#   bench/results.sh [PROTOCOL] [MODELS] [SUFFIX]   (defaults: loo, pop,bprmf,bm25,sasrec, no suffix)
# Writes docs/results/<dataset>-<protocol><SUFFIX>.json (e.g. SUFFIX=-sasrec) and prints a markdown table of
# every docs/results/*-<protocol>*.json.
# Environment: GENREC_SHARED (default ../shared), GENREC_BIN (default build/genrec),
#   GENREC_DATASETS (default "ml-100k ml-latest-small lastfm amazon-scientific"),
#   GENREC_EVAL_FLAGS (extra flags for genrec eval, e.g. "--threads 1").
set -euo pipefail
cd "$(dirname "$0")/.."
proto=${1:-loo}
models=${2:-pop,bprmf,bm25,sasrec}
suffix=${3:-}
shared=${GENREC_SHARED:-../shared}
bin=${GENREC_BIN:-build/genrec}
for ds in ${GENREC_DATASETS:-ml-100k ml-latest-small lastfm amazon-scientific}; do
  if [ ! -d "$shared/data/$ds" ]; then echo "skip $ds: $shared/data/$ds absent" >&2; continue; fi
  "$bin" eval --data "$shared/data/$ds" --protocol "$proto" --models "$models" --seed 1 \
      --out "docs/results/$ds-$proto$suffix.json" ${GENREC_EVAL_FLAGS:-}
done
/usr/bin/python3 bench/results_table.py docs/results/*-"$proto".json $(ls docs/results/*-"$proto"-*.json 2>/dev/null | grep -v -- '-vs-' || true)
