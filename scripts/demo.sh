#!/usr/bin/env bash
# Build genrec and run the demo on the embedded synthetic world.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh build
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target genrec_cli
./build/genrec demo "$@"
