#!/bin/bash
# Server CPU time per message (user+system of the server process from /proc/PID/stat) over a
# fixed number of messages: the A/B measure that survives a shared, noisy machine.
# usage: bench/cpu_per_msg.sh SQSRELAY_BIN mem|dur [MESSAGES=200000] [THREADS=2] [CONNS=32]
# env: SQS_LOAD (default build/release/bench/sqs_load), METRICS=1 (print the store's sync
# and append counters), VERBOSE=1 (print sqs_load's JSON), SERVE_ARGS (more `serve` flags,
# e.g. "--wal-write-behind false --wal-preallocate false" for an A/B).
BIN=$1; MODE=$2; N=${3:-200000}; TH=${4:-2}; C=${5:-32}
LOAD=${SQS_LOAD:-$(dirname "$0")/../build/release/bench/sqs_load}
PORT=$((20000 + RANDOM % 20000))
D=$(mktemp -d /tmp/cpu_per_msg.XXXX)
EXTRA="--data-dir $D/data"; [ "$MODE" = mem ] && EXTRA="--in-memory"
# shellcheck disable=SC2086  # SERVE_ARGS is a list of flags
taskset -c 0 $BIN --log-level warn serve --listen 127.0.0.1:$PORT $EXTRA --threads $TH $SERVE_ARGS > $D/log 2>&1 &
SPID=$!
for i in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:$PORT/health && break; sleep 0.1; done
URL=$(taskset -c 1 $LOAD -p $PORT -m create-queue | python3 -c 'import sys,json; print(json.loads(sys.stdin.read())["queue_url"])' 2>/dev/null)
[ -z "$URL" ] && URL=http://127.0.0.1:$PORT/000000000000/bench
cpu() { awk '{print $14+$15, $14, $15}' /proc/$SPID/stat; }
metric() { curl -s http://127.0.0.1:$PORT/metrics | grep -E "$1" ; }
for phase in send-batch receive-delete; do
  read t0 u0 s0 < <(cpu)
  out=$(taskset -c 1 $LOAD -p $PORT -m $phase -q $URL -c $C -n $N -w 0)
  read t1 u1 s1 < <(cpu)
  msgs=$(echo "$out" | python3 -c 'import sys,json; d=json.loads(sys.stdin.read()); print(d.get("messages", d.get("ok_messages",0)))' 2>/dev/null)
  rate=$(echo "$out" | python3 -c 'import sys,json; d=json.loads(sys.stdin.read()); print(int(d.get("msgs_per_s",0)), d.get("p50_ms",""), d.get("p99_ms",""), d.get("errors",""))' 2>/dev/null)
  hz=$(getconf CLK_TCK)
  python3 -c "
t=($t1-$t0)/$hz; u=($u1-$u0)/$hz; s=($s1-$s0)/$hz; m=$msgs or 1
print(f'$MODE $phase th=$TH msgs={m} cpu={t*1e6/m:.2f}us/msg user={u*1e6/m:.2f} sys={s*1e6/m:.2f} rate/p50/p99/err=$rate')"
  [ -n "$VERBOSE" ] && echo "$out"
done
[ -n "$METRICS" ] && curl -s http://127.0.0.1:$PORT/metrics | grep -iE "sync|append|wal" | head -20
grep VmHWM /proc/$SPID/status
kill $SPID; wait $SPID 2>/dev/null
rm -rf $D
