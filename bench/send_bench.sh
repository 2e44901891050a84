#!/usr/bin/env bash
# Send benchmark: `sqsrelay send` vs a boto3 send_message_batch loop, sqs-producer and
# @aws-sdk/client-sqs with 16 in flight, against one `sqsrelay serve --in-memory`, at 0, 10
# and 20 ms injected latency. Builds sqsrelay (release preset) unless SQSRELAY_BIN is set,
# then runs bench/send_bench.py (arguments go to it; --help). Results:
# bench/results/send_latest.{md,json}.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${SQSRELAY_BIN:-}" ]; then
  [ -f build/release/build.ninja ] || cmake --preset release >/dev/null
  cmake --build build/release --target sqsrelay -j "${BENCH_JOBS:-2}" >/tmp/send-bench-build.log 2>&1 ||
    { tail -30 /tmp/send-bench-build.log >&2; exit 1; }
  export SQSRELAY_BIN=build/release/src/app/sqsrelay
fi
[ -d tests/node/node_modules/sqs-producer ] || { echo "run scripts/setup.sh (npm clients)" >&2; exit 1; }
exec python3 bench/send_bench.py "$@"
