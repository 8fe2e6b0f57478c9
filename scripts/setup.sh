#!/usr/bin/env bash
# Sets up a Debian 12 machine (as root) for finetorch: system packages, npm
# dependencies, the native build and the TypeScript build. Idempotent: what is
# already there is not done again.
set -euo pipefail
cd "$(dirname "$0")/.."

# libtorch (CPU) + OpenBLAS (without it matmuls run ~35x slower), a compiler
# and CMake for the source build, and the PyTorch/scikit-learn references and
# data sets the tests use; clang-format for `npm run lint`; python3-venv for
# the torch 2.x venv (below).
PACKAGES=(libtorch-dev libopenblas0-pthread g++ make cmake python3-torch python3-torchvision python3-sklearn python3-venv dataset-fashion-mnist wordnet-base clang-format)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# npm ci runs the install script (native build, skipped when up to date) and
# prepare (TypeScript build). Re-run it only when the lock file changed.
stamp=node_modules/.finetorch-lock
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  npm ci --no-audit --no-fund
  cp package-lock.json "$stamp"
else
  node scripts/install.mjs
  npx tsc -p tsconfig.json
fi

# .venv-torch2: PyTorch 2.x with transformers from the machine's local package
# locations, for the tests that compare against transformers itself (npm test
# runs them) and CI's libtorch 2.x leg (scripts/test-torch2.mjs).
# FINETORCH_SETUP_TORCH2=0 skips it (those comparisons then fail as not run).
if [ "${FINETORCH_SETUP_TORCH2:-1}" != 0 ]; then
  if [ -d "${FINETORCH_WHEELS:-/opt/wheels}" ]; then
    node scripts/test-torch2.mjs venv
  else
    echo "setup: no local wheel folder ${FINETORCH_WHEELS:-/opt/wheels} (FINETORCH_WHEELS): .venv-torch2 not made; the comparisons with transformers will not run"
  fi
fi
