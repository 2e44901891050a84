#!/usr/bin/env bash
# The main job: set up, build (release) and start `sqsrelay serve` on its embedded default.
# Extra arguments go to `sqsrelay serve` (e.g. --listen 127.0.0.1:9324 --data-dir DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake --preset release >/dev/null
cmake --build build/release --target sqsrelay -j "$(nproc)"
exec build/release/src/app/sqsrelay serve "$@"
