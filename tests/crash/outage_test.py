#!/usr/bin/env python3
"""SQS outage under load: `sqsrelay run` keeps acknowledging into its spool while the target
server is down, within its disk budget and with flat memory, and delivers everything once the
target is back.

  1. a target `sqsrelay serve` on a fixed port; `sqsrelay run` (HTTP ingest -> spool ->
     sender) pointed at it, with a small spool budget;
  2. load: workers POST JSON arrays; keys of 200-answered requests are acknowledged;
  3. the target is stopped for OUTAGE_SECONDS (default 30) while the load goes on: the
     run process's RSS is sampled, the spool's bytes (from /metrics) must stay within the
     budget; when the budget is reached, ingest answers 503 with Retry-After, never 200;
  4. the target comes back on the same port and data dir; the load stops; the backlog
     drains; every acknowledged key is in the queue (lost must be 0).
Python standard library only.
"""

import http.client
import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import Connection, TempDir, drain, log, server_binary  # noqa: E402
from ingest_crash_test import IngestProcess  # noqa: E402

OUTAGE = float(os.environ.get("OUTAGE_SECONDS", "30"))
BUDGET = 16 << 20
QUEUE = "outage"
BATCH = 100


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def metric(endpoint, name):
    c = http.client.HTTPConnection(*endpoint, timeout=5)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return int(float(line.split()[1]))
    raise AssertionError(f"metric {name} missing")


class Target:
    def __init__(self, port, data_dir, log_dir):
        self.port, self.data_dir, self.log_dir = port, data_dir, log_dir
        self.proc = None
        self.n = 0

    def start(self):
        import subprocess
        self.n += 1
        out = open(os.path.join(self.log_dir, f"target-{self.n}.log"), "wb")
        self.proc = subprocess.Popen(
            [server_binary(), "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir",
             self.data_dir, "--ingest-listen", "off"], stdout=out, stderr=subprocess.STDOUT)
        out.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/health")
                if c.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("target did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)


def main():
    tmp = TempDir("sqsrelay-outage-")
    ok = False
    try:
        port, metrics_port = free_port(), free_port()
        target = Target(port, os.path.join(tmp.path, "target"), tmp.path)
        target.start()
        conn = Connection(("127.0.0.1", port))
        url = conn.call("CreateQueue", {"QueueName": QUEUE})["QueueUrl"]
        cfg = os.path.join(tmp.path, "relay.toml")
        with open(cfg, "w") as f:
            f.write(f"""
[spool]
dir = "{os.path.join(tmp.path, 'spool')}"
disk_budget = "{BUDGET >> 20}MiB"
segment_size = "1MiB"

[endpoints.target]
url = "http://127.0.0.1:{port}"

[[sources.http]]
listen = "127.0.0.1:0"
default_endpoint = "target"

[metrics]
listen = "127.0.0.1:{metrics_port}"
""")
        run = IngestProcess([server_binary(), "run", "-c", cfg], tmp.path, "run")
        ingest = run.start()
        metrics_ep = ("127.0.0.1", metrics_port)

        acked, lock = set(), threading.Lock()
        stats = {"ok": 0, "busy": 0, "bad_busy": 0}
        stop = threading.Event()

        def worker(w):
            c = http.client.HTTPConnection(*ingest, timeout=60)
            n = 0
            while not stop.is_set():
                keys = [f"w{w}-{n + i}" for i in range(BATCH)]
                n += BATCH
                body = json.dumps([{"k": k, "pad": "p" * 300} for k in keys])
                c.request("POST", f"/queues/{QUEUE}/messages", body=body,
                          headers={"Content-Type": "application/json"})
                r = c.getresponse()
                data = r.read()
                with lock:
                    if r.status == 200:
                        stats["ok"] += 1
                        acked.update(keys)
                    elif r.status in (429, 503):
                        stats["busy"] += 1
                        if not r.getheader("Retry-After"):
                            stats["bad_busy"] += 1
                    else:
                        raise AssertionError(f"unexpected {r.status}: {data[:200]!r}")
                if r.status != 200:
                    time.sleep(0.1)
                if r.getheader("Connection", "").lower() == "close":
                    c.close()
                    c = http.client.HTTPConnection(*ingest, timeout=60)

        threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(3)]
        for t in threads:
            t.start()
        time.sleep(1)
        log(f"before the outage: {len(acked)} acknowledged")
        target.stop()
        t0 = time.monotonic()
        rss, spool_bytes = [], []
        while time.monotonic() - t0 < OUTAGE:
            rss.append(rss_kib(run.proc.pid))
            spool_bytes.append(metric(metrics_ep, "sqsrelay_spool_bytes"))
            time.sleep(0.5)
        acked_during = len(acked)
        log(f"outage of {OUTAGE:.0f}s: spool bytes max {max(spool_bytes) >> 20} MiB "
            f"(budget {BUDGET >> 20} MiB), RSS {min(rss) >> 10}..{max(rss) >> 10} MiB, "
            f"{stats['busy']} answered busy")
        target.start()
        stop.set()
        for t in threads:
            t.join(60)
        if max(spool_bytes) > BUDGET:
            raise AssertionError(f"spool exceeded its budget: {max(spool_bytes)} > {BUDGET}")
        if stats["bad_busy"]:
            raise AssertionError(f"{stats['bad_busy']} busy answers without Retry-After")
        # Flat memory: RSS in the second half of the outage is not growing with the backlog.
        half = len(rss) // 2
        if max(rss[half:]) > max(rss[:half]) * 1.25 + 16 * 1024:
            raise AssertionError(f"RSS grew during the outage: {rss}")
        # Drain: everything acknowledged arrives once the target is back.
        conn = Connection(("127.0.0.1", port))
        found = set()
        total = 0
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not acked <= found:
            got = drain(conn, url, empty_polls=2)
            total += len(got)
            found |= {json.loads(m["Body"])["k"] for m in got}
        backlog = metric(metrics_ep, "sqsrelay_spool_backlog_records")
        run.terminate()
        target.stop()
        lost = acked - found
        log(f"acknowledged {len(acked)} ({acked_during} by the end of the outage), found "
            f"{len(found)} distinct ({total} in all), lost {len(lost)}, duplicates "
            f"{total - len(found)}, backlog at the end {backlog}")
        if lost:
            raise AssertionError(f"{len(lost)} acknowledged messages lost")
        if stats["busy"] == 0 and max(spool_bytes) < BUDGET // 2:
            log("note: the outage never filled the spool (fast disk, slow load)")
        ok = True
    finally:
        tmp.finish(ok)
    log("PASS")


if __name__ == "__main__":
    main()
