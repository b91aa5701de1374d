#!/bin/sh
# Run genrec's SASRec (bench/bench_sasrec.c) and the PyTorch reference
# (bench/sasrec_torch.py) side by side on the same leave-one-out split and
# print NDCG@10 of both, their ratio, the training time per epoch of both and
# the speedup.
#
#   bench/bench_sasrec.sh DATA NAME [sasrec.key=value ...]
#
# DATA: a dataset path (e.g. ../shared/data/ml-100k) or
#       synth:USERS:ITEMS:PER_USER[:SEED].
# Environment:
#   BUILD=build        build directory holding bench_sasrec
#   OUT=/tmp/genrec-bench-sasrec   results go to $OUT/NAME/{genrec,torch}.json
#   THREADS=2          threads for both sides
#   TIME_EPOCHS=N      timing only: N training epochs each, no evaluation
#   GATHER=1           PyTorch computes logits only at real positions
#                      (default: every padded position, as common SASRec-CE code)
#   PY=/usr/bin/python3
#   SKIP_TORCH=1       only run genrec (reuses an earlier torch.json if any)
set -eu
if [ $# -lt 2 ]; then
    sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
DATA=$1
NAME=$2
shift 2
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${BUILD:-build}
OUT=${OUT:-/tmp/genrec-bench-sasrec}
THREADS=${THREADS:-2}
PY=${PY:-/usr/bin/python3}
DIR=$OUT/$NAME
mkdir -p "$DIR"

# sasrec.max_len=V -> --max-len V for the PyTorch side (same defaults otherwise)
TORCH_ARGS="--threads $THREADS --max-len 0"
for kv in "$@"; do
    key=${kv%%=*}
    val=${kv#*=}
    case $key in
        sasrec.dim|sasrec.layers|sasrec.heads|sasrec.max_len|sasrec.dropout|sasrec.lr|sasrec.wd|sasrec.batch|sasrec.epochs|sasrec.patience)
            flag=$(echo "${key#sasrec.}" | tr _ -)
            TORCH_ARGS="$TORCH_ARGS --$flag $val" ;;
        *) echo "note: $key has no PyTorch counterpart; passed to genrec only" >&2 ;;
    esac
done
C_ARGS="--threads $THREADS"
if [ -n "${TIME_EPOCHS:-}" ]; then
    C_ARGS="$C_ARGS --time-epochs $TIME_EPOCHS"
    TORCH_ARGS="$TORCH_ARGS --time-epochs $TIME_EPOCHS"
fi
[ -n "${GATHER:-}" ] && TORCH_ARGS="$TORCH_ARGS --gather"

echo "genrec:  $BUILD/bench_sasrec $DATA $DIR $C_ARGS $*" >&2
"$BUILD/bench_sasrec" "$DATA" "$DIR" $C_ARGS "$@" --verbose > "$DIR/genrec.json"
if [ -z "${SKIP_TORCH:-}" ]; then
    echo "pytorch: $PY $HERE/sasrec_torch.py $DIR $TORCH_ARGS" >&2
    "$PY" "$HERE/sasrec_torch.py" "$DIR" $TORCH_ARGS > "$DIR/torch.json"
fi

"$PY" - "$DIR" <<'EOF'
import json, sys
d = sys.argv[1]
c = json.load(open(f"{d}/genrec.json"))
t = json.load(open(f"{d}/torch.json"))
print(f"data: {c['data']}  users {c['n_users']}  items {c['n_items']}  interactions {c['n_inter']}  threads {c['threads']}")
if "test" in c and "test" in t:
    for split in ("valid", "test"):
        cn, tn = c[split]["NDCG@10"], t[split]["NDCG@10"]
        ch, th = c[split]["HR@10"], t[split]["HR@10"]
        print(f"{split:5s} NDCG@10  genrec {cn:.4f}  pytorch {tn:.4f}  ratio {cn / tn if tn else float('nan'):.3f}"
              f"   HR@10 genrec {ch:.4f} pytorch {th:.4f}")
    print(f"epochs   genrec {c['epochs_run']} (best {c['best_epoch']})  pytorch {t['epochs_run']} (best {t['best_epoch']})")
ce, te = c["epoch_seconds"], t["epoch_seconds"]
cc, tc = c["epoch_cpu_seconds"], t["epoch_cpu_seconds"]
g = "  [pytorch --gather]" if t.get("gather") else ""
print(f"epoch wall s  genrec {ce:.3f}  pytorch {te:.3f} (median)  speedup {te / ce:.2f}x{g}")
print(f"epoch cpu s   genrec {cc:.3f}  pytorch {tc:.3f} (median)  ratio {tc / cc:.2f}x")
EOF
