#!/bin/sh
# GEMM benchmark, OpenBLAS measured both with OPENBLAS_CORETYPE (and
# OPENBLAS_L2_SIZE) as this environment sets them and with both unset; genrec's
# own kernel does not depend on them, so the second run measures OpenBLAS only.
#
#   bench/bench_gemm.sh [seconds_per_case (0.6)] [max_threads (1)] [filter]
#
# Environment: BUILD=build (directory holding bench_gemm).
# When OPENBLAS_CORETYPE is not set here, the first run is the unset one and
# the second sets OPENBLAS_CORETYPE=Haswell (what some hosts of this project
# set), so that both configurations are still measured.
set -eu
BUILD=${BUILD:-build}
SECS=${1:-0.6}
THREADS=${2:-1}
FILTER=${3:-}
echo "== run 1: OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)} (as in the environment)"
"$BUILD/bench_gemm" "$SECS" "$THREADS" all "$FILTER"
echo
if [ -n "${OPENBLAS_CORETYPE:-}" ] || [ -n "${OPENBLAS_L2_SIZE:-}" ]; then
    echo "== run 2: OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (OpenBLAS only)"
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$BUILD/bench_gemm" "$SECS" "$THREADS" blas "$FILTER"
else
    echo "== run 2: OPENBLAS_CORETYPE=Haswell (unset in this environment; OpenBLAS only)"
    OPENBLAS_CORETYPE=Haswell "$BUILD/bench_gemm" "$SECS" "$THREADS" blas "$FILTER"
fi
