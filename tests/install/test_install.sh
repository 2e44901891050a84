#!/usr/bin/env bash
# test_install.sh BUILD_DIR EXAMPLES_DIR: install BUILD_DIR into a scratch prefix, build the
# examples against the installed package only, and run the producer example end to end
# against the installed `sqsrelay serve`.
set -euo pipefail
build=$1
examples=$2
work=$(mktemp -d)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

cmake --install "$build" --prefix "$work/prefix" >/dev/null
for f in bin/sqsrelay bin/sqsrelay-spool include/sqsrelay/producer.h \
         lib/cmake/sqsrelay/sqsrelayConfig.cmake lib/cmake/sqsrelay/sqsrelayConfigVersion.cmake; do
  [ -e "$work/prefix/$f" ] || { echo "FAIL: $f was not installed"; exit 1; }
done
version=$("$work/prefix/bin/sqsrelay" --version)
[[ "$version" =~ ^sqsrelay\ [0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "FAIL: --version said '$version'"; exit 1; }
# Internal module headers must not leak into the installed include directory.
if [ "$(find "$work/prefix/include" -type f | wc -l)" != 1 ]; then
  echo "FAIL: unexpected installed headers:"; find "$work/prefix/include" -type f; exit 1
fi

# The consumer project sees only the prefix: no path into the source or build tree.
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S "$examples" -B "$work/consumer" "${gen[@]}" -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/consumer" >/dev/null

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$work/prefix/bin/sqsrelay" serve --in-memory --listen "127.0.0.1:$port" \
  --ingest-listen 127.0.0.1:0 >"$work/server.log" 2>&1 &
server_pid=$!
endpoint="http://127.0.0.1:$port"
for _ in $(seq 100); do
  "$work/prefix/bin/sqsrelay" queue list --endpoint-url "$endpoint" >/dev/null 2>&1 && break
  sleep 0.1
done
"$work/prefix/bin/sqsrelay" queue create installed --endpoint-url "$endpoint" >/dev/null

cd "$work"
out=$("$work/consumer/producer_example" installed 2000 "$endpoint")
echo "$out"
grep -q '^2001 delivered, 1 dead-lettered' <<<"$out" || { echo "FAIL: wrong outcome counts"; exit 1; }
grep -q '"reason"' "$work/producer_example.dead.ndjson" \
  || { echo "FAIL: the invalid message is not in the dead-letter file"; exit 1; }
depth=$(python3 - "$endpoint" <<'PY'
import sys, boto3
c = boto3.client("sqs", endpoint_url=sys.argv[1], region_name="us-east-1",
                 aws_access_key_id="x", aws_secret_access_key="x")
url = c.get_queue_url(QueueName="installed")["QueueUrl"]
print(c.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
      ["Attributes"]["ApproximateNumberOfMessages"])
PY
)
[ "$depth" = 2001 ] || { echo "FAIL: queue holds $depth messages, expected 2001"; exit 1; }
echo "PASS: installed package built the example; 2001 messages in the queue"
