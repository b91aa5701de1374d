#!/bin/sh
# Language-model training throughput: genrec vs PyTorch eager (fp32), back to
# back on the same threads, for a ~10M-parameter GPT-2 and Llama config.
#
#   bench/bench_lm_train.sh [BUILD_DIR] [REPS] [THREADS]
#
# PYTHON (default /usr/bin/python3, Debian torch 1.13) picks the interpreter.
# BUILD_DIR (default build) must hold bench_lm_train. Each configuration runs
# REPS times (default 2) alternating genrec and PyTorch; the summary gives
# every tokens/s figure and the ratio of the medians. Set CPUS (e.g.
# CPUS=0,1) to pin both programs to those cores with taskset. Extra
# arguments for both programs can be given in BENCH_ARGS (e.g.
# BENCH_ARGS="--steps 6 --skip 2").
set -eu
BUILD=${1:-build}
REPS=${2:-2}
THREADS=${3:-2}
PY=${PYTHON:-/usr/bin/python3}
HERE=$(cd "$(dirname "$0")" && pwd)
ARGS=${BENCH_ARGS:-"--steps 8 --skip 2"}
PIN=""
if [ -n "${CPUS:-}" ]; then PIN="taskset -c $CPUS"; fi
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS
COMMON="--layers 6 --dim 384 --heads 6 --ctx 256 --vocab 8192 --batch 4 --threads $THREADS $ARGS"
OUT=$(mktemp -d)
for arch in gpt2 llama; do
  case $arch in
    gpt2) CFG="--arch gpt2 $COMMON" ;;
    llama) CFG="--arch llama --ff 1024 --kv-heads 2 $COMMON" ;;
  esac
  r=1
  while [ "$r" -le "$REPS" ]; do
    echo "== $arch rep $r: genrec"
    $PIN "$BUILD/bench_lm_train" $CFG | tee "$OUT/g-$arch-$r.txt"
    echo "== $arch rep $r: torch"
    $PIN "$PY" "$HERE/lm_train_torch.py" $CFG | tee "$OUT/t-$arch-$r.txt"
    r=$((r + 1))
  done
done
echo
echo "== summary (tokens/s; ratio = median genrec / median torch)"
for arch in gpt2 llama; do
  g=$(grep -h '^RESULT' "$OUT"/g-$arch-*.txt | sed 's/.*tok_s=\([0-9.]*\).*/\1/' | sort -n | tr '\n' ' ')
  t=$(grep -h '^RESULT' "$OUT"/t-$arch-*.txt | sed 's/.*tok_s=\([0-9.]*\).*/\1/' | sort -n | tr '\n' ' ')
  echo "$arch genrec: $g | torch: $t" | awk -v g="$g" -v t="$t" '
    function med(s,  a, n) { n = split(s, a, " "); return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
    { print $0 " | ratio " sprintf("%.2f", med(g) / med(t)) }'
  grep -h '^memory' "$OUT"/g-$arch-1.txt | sed "s/^/$arch genrec /"
done
rm -rf "$OUT"
