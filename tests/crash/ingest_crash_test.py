#!/usr/bin/env python3
"""HTTP ingest under kill -9: every message that got a 200 is in its queue afterwards.

Two targets:
  embedded  `sqsrelay serve` with its ingest listener (POSTed arrays go straight into the
            embedded queues); the serve process is SIGKILLed again and again.
  relay     `sqsrelay run -c relay.toml` (ingest -> spool -> sender) sending to a separate
            `sqsrelay serve`; the run process is SIGKILLed again and again, the target stays.

Load: WORKERS threads POST JSON arrays of BATCH messages over keep-alive connections, each
message a unique key. A key counts as acknowledged only when its request got a 200 with
{"accepted": BATCH}. After the last kill the process is started once more and drained (for
the relay: until its spool backlog is 0); then the queue is read out.
Report: acknowledged, found, lost (must be 0), duplicates (allowed: at least once).

Usage: ingest_crash_test.py embedded|relay   (CRASH_CYCLES=N, default 20; the CI runs 20;
       a soak: CRASH_CYCLES=200 python3 tests/crash/ingest_crash_test.py relay)
Python standard library only.
"""

import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import (Connection, EndpointBoard, ServerProcess, TempDir, drain, health,  # noqa: E402
                     log, server_binary)

CYCLES = int(os.environ.get("CRASH_CYCLES", "20"))
WORKERS = int(os.environ.get("CRASH_WORKERS", "4"))
BATCH = 20
PAUSE = float(os.environ.get("CRASH_PAUSE", "0.02"))  # between a worker's requests
QUEUE = "ingest-crash"
INGEST_RE = re.compile(r"ingest (?:endpoint|'[^']*' on) http://([0-9.]+):(\d+)")


class IngestProcess:
    """A process with an ingest listener that we start, SIGKILL and restart."""

    def __init__(self, cmd, log_dir, name):
        self.cmd = cmd
        self.log_dir = log_dir
        self.name = name
        self.proc = None
        self.incarnation = 0

    def log_path(self):
        return os.path.join(self.log_dir, f"{self.name}-{self.incarnation}.log")

    def log_text(self):
        try:
            with open(self.log_path(), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def start(self, timeout=30.0):
        self.incarnation += 1
        out = open(self.log_path(), "wb")
        self.proc = subprocess.Popen(self.cmd, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode} at "
                                     f"startup (a crash loop):\n{self.log_text()}")
            m = INGEST_RE.search(self.log_text())
            if m and health((m.group(1), int(m.group(2))), "/healthz"):
                return (m.group(1), int(m.group(2)))
            time.sleep(0.02)
        raise AssertionError(f"{self.name} not healthy in {timeout}s:\n{self.log_text()}")

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        if self.proc:
            self.proc.wait()
        self.proc = None

    def terminate(self, timeout=60):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill9()
                raise AssertionError(f"{self.name} did not stop on SIGTERM in {timeout}s")
        rc = self.proc.returncode if self.proc else 0
        self.proc = None
        return rc


class Load:
    def __init__(self, board):
        self.board = board
        self.acked = set()
        self.lock = threading.Lock()
        self.requests = self.ok = self.refused = 0
        self.threads = [threading.Thread(target=self.worker, args=(w,), daemon=True)
                        for w in range(WORKERS)]

    def start(self):
        for t in self.threads:
            t.start()

    def stop(self):
        self.board.stop()
        for t in self.threads:
            t.join(60)

    def worker(self, w):
        n = 0
        conn = None
        gen = -1
        while True:
            got = self.board.wait()
            if got is None:
                return
            endpoint, g = got
            if conn is None or g != gen:
                if conn:
                    conn.close()
                conn = http.client.HTTPConnection(*endpoint, timeout=30)
                gen = g
            keys = [f"w{w}-{n + i}" for i in range(BATCH)]
            n += BATCH
            body = json.dumps([{"k": k, "pad": "x" * 120} for k in keys])
            try:
                conn.request("POST", f"/queues/{QUEUE}/messages", body=body,
                             headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = None
                with self.lock:
                    self.requests += 1
                time.sleep(0.01)
                continue
            with self.lock:
                self.requests += 1
                if resp.status == 200:
                    if json.loads(data).get("accepted") != BATCH:
                        raise AssertionError(f"200 with {data!r}")
                    self.ok += 1
                    self.acked.update(keys)
                else:
                    self.refused += 1
            time.sleep(0.05 if resp.status != 200 else PAUSE)


def crash_cycles(proc, board, load):
    rng = random.Random(int(os.environ.get("CRASH_SEED", "7")))
    for cycle in range(CYCLES):
        endpoint = proc.start()
        board.publish(endpoint)
        time.sleep(rng.uniform(0.2, 0.8))
        proc.kill9()
        board.take_down()
        if (cycle + 1) % 5 == 0:
            log(f"cycle {cycle + 1}/{CYCLES}: {len(load.acked)} acknowledged, "
                f"{load.requests} requests, {load.refused} refused")


def count(messages):
    keys = [json.loads(m["Body"])["k"] for m in messages]
    return keys, set(keys)


def report(acked, keys, found):
    lost = acked - found
    dups = len(keys) - len(found)
    log(f"acknowledged {len(acked)}, found {len(found)} distinct ({len(keys)} in all), "
        f"lost {len(lost)}, duplicates {dups}")
    if lost:
        raise AssertionError(f"{len(lost)} acknowledged messages lost, e.g. {sorted(lost)[:5]}")
    if len(acked) < BATCH * CYCLES:
        raise AssertionError(f"too little load to mean anything: {len(acked)} acknowledged")


def run_embedded(tmp):
    data = os.path.join(tmp.path, "data")
    proc = IngestProcess([server_binary(), "serve", "--listen", "127.0.0.1:0", "--data-dir", data,
                          "--ingest-listen", "127.0.0.1:0"], tmp.path, "serve")
    board = EndpointBoard()
    load = Load(board)
    load.start()
    crash_cycles(proc, board, load)
    load.stop()
    # Restart once more and read everything out through the SQS API.
    server = ServerProcess(server_binary(), data, tmp.path)
    endpoint = server.start()
    conn = Connection(endpoint)
    url = conn.call("GetQueueUrl", {"QueueName": QUEUE})["QueueUrl"]
    keys, found = count(drain(conn, url))
    server.kill9()
    report(load.acked, keys, found)


def run_relay(tmp):
    target = ServerProcess(server_binary(), os.path.join(tmp.path, "target"), tmp.path)
    host, port = target.start()
    conn = Connection((host, port))
    url = conn.call("CreateQueue", {"QueueName": QUEUE})["QueueUrl"]
    cfg = os.path.join(tmp.path, "relay.toml")
    with open(cfg, "w") as f:
        f.write(f"""
[spool]
dir = "{os.path.join(tmp.path, 'spool')}"

[endpoints.target]
url = "http://{host}:{port}"

[[sources.http]]
listen = "127.0.0.1:0"
default_endpoint = "target"

[metrics]
listen = ""
""")
    proc = IngestProcess([server_binary(), "run", "-c", cfg], tmp.path, "run")
    board = EndpointBoard()
    load = Load(board)
    load.start()
    crash_cycles(proc, board, load)
    load.stop()
    # Restart once more and let it deliver the backlog, then stop it with SIGTERM.
    proc.start()
    conn.close()  # idle through the cycles: the server's 60 s idle timeout may have closed it
    conn = Connection((host, port))
    deadline = time.monotonic() + 120
    keys, found = [], set()
    while time.monotonic() < deadline:
        batch = drain(conn, url, empty_polls=2)
        k, f = count(batch)
        keys += k
        found |= f
        if load.acked <= found:
            break
    rc = proc.terminate()
    if rc != 0:
        raise AssertionError(f"run exited with {rc} on SIGTERM:\n{proc.log_text()}")
    k, f = count(drain(conn, url, empty_polls=2))
    keys += k
    found |= f
    target.kill9()
    report(load.acked, keys, found)


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "embedded"
    tmp = TempDir(f"sqsrelay-ingest-crash-{mode}-")
    ok = False
    try:
        {"embedded": run_embedded, "relay": run_relay}[mode](tmp)
        ok = True
    finally:
        tmp.finish(ok)
    log("PASS")


if __name__ == "__main__":
    main()
