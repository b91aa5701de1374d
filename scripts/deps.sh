#!/usr/bin/env bash
# Install the Debian packages genrec needs, only those that are missing.
#   scripts/deps.sh build   - compiler, CMake, OpenBLAS, zlib (enough for the demo)
#   scripts/deps.sh test    - build + clang/libFuzzer (fuzz runs) + python3-torch/numpy (reference checks)
set -euo pipefail
set_name=${1:-build}
pkgs=(gcc g++ make cmake libopenblas-dev zlib1g-dev pkg-config)
if [ "$set_name" = test ]; then
  pkgs+=(clang libclang-rt-14-dev python3 python3-numpy python3-torch)
fi
missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "genrec: installing missing Debian packages: ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
