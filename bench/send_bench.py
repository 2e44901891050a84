#!/usr/bin/env python3
"""Client-side send benchmark, one run against one embedded server (`sqsrelay serve
--in-memory`, pinned to core 0; clients pinned to core 1):

  sqsrelay send      FILE of N lines (200-byte bodies), default options
  boto3 loop         send_message_batch of 10, one call at a time (botocore 1.43)
  sqs-producer       Producer.send of 10-message arrays, one at a time (its own design)
  JS SDK x16         @aws-sdk/client-sqs SendMessageBatch of 10, 16 calls in flight

each at 0, 10 and 20 ms of injected latency (`POST /_sqsrelay/faults latency=...`). The slow
clients stop after --budget seconds (their rate is what counts). Medians of --runs runs.
Writes bench/results/send_latest.{md,json}.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "interop"))
from sqsrelay_server import SqsRelayServer  # noqa: E402

import boto3  # noqa: E402
import botocore.config  # noqa: E402
import requests  # noqa: E402

NODE = os.environ.get("NODE", "node")


def pin(core):
    return ["taskset", "-c", str(core)]


class PinnedServer(SqsRelayServer):
    def command(self):
        return pin(0) + super().command()


def run_sqsrelay(bin_, endpoint, queue, path, n, size, budget):
    out = subprocess.run(pin(1) + [bin_, "--log-level", "warn", "send", "--endpoint-url", endpoint,
                                   "--queue", queue, path, "--summary-json", "--no-progress"],
                         capture_output=True, text=True, timeout=600)
    s = json.loads(out.stdout.strip().splitlines()[-1])
    return {"messages": s["delivered"], "seconds": s["seconds"], "api_calls": s["api_calls"],
            "msgs_per_s": s["msgs_per_s"], "window": s["max_window"]}


def run_boto3(endpoint, url, n, size, budget):
    code = f"""
import boto3, botocore.config, json, time
c = boto3.client("sqs", endpoint_url={endpoint!r}, region_name="us-east-1",
    aws_access_key_id="bench", aws_secret_access_key="bench")
body = lambda i: (str(i).zfill(10) + "x" * {size})[:{size}]
sent = calls = 0; t0 = time.monotonic()
while sent < {n} and time.monotonic() - t0 < {budget}:
    c.send_message_batch(QueueUrl={url!r}, Entries=[{{"Id": str(k), "MessageBody": body(sent + k)}} for k in range(10)])
    sent += 10; calls += 1
s = time.monotonic() - t0
print(json.dumps({{"messages": sent, "seconds": s, "api_calls": calls, "msgs_per_s": sent / s}}))
"""
    out = subprocess.run(pin(1) + [sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_node(mode, conc, endpoint, url, n, size, budget):
    out = subprocess.run(pin(1) + [NODE, os.path.join(HERE, "send_bench_node.mjs"), mode, endpoint,
                                   url, str(n), str(size), str(conc), str(budget)],
                         capture_output=True, text=True, timeout=600,
                         cwd=os.path.join(ROOT, "tests", "node"),
                         env=dict(os.environ, NODE_PATH=os.path.join(ROOT, "tests", "node",
                                                                       "node_modules")))
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=200000)
    ap.add_argument("--size", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--budget", type=float, default=10.0, help="seconds per slow-client run")
    ap.add_argument("--latencies", default="0,10,20")
    ap.add_argument("--clients", default="sqsrelay,boto3,sqs-producer,js-sdk-16")
    args = ap.parse_args()
    bin_ = os.environ.get("SQSRELAY_BIN") or os.path.join(ROOT, "build", "release", "src", "app",
                                                          "sqsrelay")
    tmp = tempfile.mkdtemp(prefix="send-bench-")
    path = os.path.join(tmp, "input.txt")
    with open(path, "w") as f:
        for i in range(args.messages):
            f.write((str(i).zfill(10) + "y" * args.size)[:args.size] + "\n")
    server = PinnedServer(in_memory=True, extra_args=["--threads", "1"])
    server.start()
    client = boto3.client("sqs", endpoint_url=server.endpoint, region_name="us-east-1",
                          aws_access_key_id="bench", aws_secret_access_key="bench",
                          config=botocore.config.Config(retries={"max_attempts": 1}))
    clients = args.clients.split(",")
    results = {}
    try:
        for lat in [int(x) for x in args.latencies.split(",")]:
            for run in range(args.runs):
                for name in clients:
                    q = f"bench-{lat}-{run}-{name}".replace("-16", "")
                    requests.post(f"{server.endpoint}/_sqsrelay/faults", data="").raise_for_status()
                    url = client.create_queue(QueueName=q)["QueueUrl"]
                    spec = f"queue={q},latency={lat}ms\n" if lat else ""
                    requests.post(f"{server.endpoint}/_sqsrelay/faults", data=spec).raise_for_status()
                    if name == "sqsrelay":
                        r = run_sqsrelay(bin_, server.endpoint, q, path, args.messages, args.size,
                                         args.budget)
                    elif name == "boto3":
                        r = run_boto3(server.endpoint, url, args.messages, args.size, args.budget)
                    elif name == "sqs-producer":
                        r = run_node("producer", 1, server.endpoint, url, args.messages,
                                     args.size, args.budget)
                    else:
                        r = run_node("sdk", 16, server.endpoint, url, args.messages, args.size,
                                     args.budget)
                    r["calls_per_message"] = r["api_calls"] / max(r["messages"], 1)
                    results.setdefault(f"{lat}", {}).setdefault(name, []).append(r)
                    print(f"latency {lat} ms run {run + 1} {name}: {r['msgs_per_s']:.0f} msgs/s "
                          f"({r['messages']} msgs, {r['calls_per_message']:.4f} calls/msg)",
                          flush=True)
                    requests.post(f"{server.endpoint}/_sqsrelay/faults", data="").raise_for_status()
                    client.delete_queue(QueueUrl=url)
    finally:
        server.cleanup()
    lines = ["| latency | client | msgs/s (median) | runs | calls/msg | sqsrelay ÷ client |",
             "| --- | --- | --- | --- | --- | --- |"]
    summary = {}
    for lat, per in results.items():
        med = {k: statistics.median(r["msgs_per_s"] for r in v) for k, v in per.items()}
        summary[lat] = med
        for k, v in per.items():
            ratio = med.get("sqsrelay", 0) / med[k] if med[k] else 0
            runs = ", ".join(f"{r['msgs_per_s']:.0f}" for r in v)
            cpm = statistics.median(r["calls_per_message"] for r in v)
            lines.append(f"| {lat} ms | {k} | {med[k]:,.0f} | {runs} | {cpm:.4f} | {ratio:.1f}x |")
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "send_latest.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(HERE, "results", "send_latest.json"), "w") as f:
        json.dump({"args": vars(args), "results": results, "medians": summary}, f, indent=1)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
