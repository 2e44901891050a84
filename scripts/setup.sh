#!/usr/bin/env bash
# Installs everything sqsrelay needs to build, test and benchmark, from Debian's packages
# and the npm registry only. Idempotent: re-running it installs nothing that is present.
set -euo pipefail
cd "$(dirname "$0")/.."

debs=(
  build-essential cmake ninja-build pkg-config git
  libboost1.81-dev libboost-system1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libsimdjson-dev libtomlplusplus-dev libcli11-dev libspdlog-dev libfmt-dev libssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev libgoogle-perftools-dev
  clang-14 libclang-rt-14-dev clang-format clang-tidy
  awscli wrk python3 curl procps util-linux
)
# Node.js and npm: the machine's own if present (Debian's npm conflicts with other installs).
command -v node >/dev/null 2>&1 || debs+=(nodejs)
command -v npm >/dev/null 2>&1 || debs+=(npm)

missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  echo "setup: installing Debian packages: ${missing[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm test clients and peers (interop tests and benchmarks), pinned by package-lock.json.
if [ ! -d tests/node/node_modules ] || [ tests/node/package.json -nt tests/node/node_modules ]; then
  echo "setup: installing npm test clients"
  (cd tests/node && npm ci --no-audit --no-fund --loglevel=error 2>/dev/null ||
    npm install --no-audit --no-fund --loglevel=error)
  touch tests/node/node_modules
fi
echo "setup: done"
