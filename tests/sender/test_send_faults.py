#!/usr/bin/env python3
"""`sqsrelay send` against a real `sqsrelay serve` with injected faults.

One scenario per fault (latency, throttle, error5xx, drop, drop_after, partial) and a mixed
one. Each sends an input file of unique good messages with impossible ones mixed in (bodies
over the queue's MaximumMessageSize, bodies with characters outside SQS's set) and checks:
  - zero loss: after clearing the faults the queue is drained and holds every good body;
  - no re-send of succeeded entries: no body arrives twice (drop_after excepted: a dropped
    connection after the request took effect is ambiguous, so its retry can duplicate; the
    duplicates are counted, bounded by the server's dropped_after count x 10, and printed);
  - the dead-letter file holds exactly the impossible messages, with their reasons;
  - the fault really happened (server /metrics) and the sender saw it (its summary counters);
  - backoff stays within its bounds (the longest wait drawn <= --backoff-cap-ms);
  - exit code 1 (something was dead-lettered), and every message is accounted for.
"""

import collections
import json
import os
import random
import string
import subprocess
import sys
import tempfile
import unittest

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "interop"))
from interop_common import make_client, unique_name  # noqa: E402
from sqsrelay_server import SqsRelayServer, binary_path  # noqa: E402

GOOD = int(os.environ.get("SQSRELAY_SENDER_TEST_MESSAGES", "2000"))
MAX_MESSAGE_SIZE = 2048
BACKOFF_CAP_MS = 200


def metric(server, name):
    text = requests.get(f"{server.endpoint}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return int(float(line.split()[1]))
    raise AssertionError(f"metric {name} missing")


def set_faults(server, spec):
    requests.post(f"{server.endpoint}/_sqsrelay/faults", data=spec, timeout=10).raise_for_status()


def drain(client, url):
    bodies = []
    empty = 0
    while empty < 2:
        r = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                   VisibilityTimeout=600)
        msgs = r.get("Messages", [])
        if not msgs:
            empty += 1
            continue
        empty = 0
        bodies += [m["Body"] for m in msgs]
        r = client.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)])
        assert not r.get("Failed"), r
    return bodies


def make_input(path, tag):
    """Writes the input file; returns (good bodies, oversize bodies, invalid bodies)."""
    rnd = random.Random(tag)
    good, oversize, invalid = [], [], []
    lines = []
    for i in range(GOOD):
        body = f"{tag}-{i}-" + "".join(rnd.choices(string.ascii_letters, k=rnd.randint(20, 300)))
        good.append(body)
        lines.append(body)
        if i % 400 == 7:
            big = f"{tag}-big-{i}-" + "x" * (MAX_MESSAGE_SIZE + 1)
            oversize.append(big)
            lines.append(big)
        if i % 500 == 11:
            bad = f"{tag}-bad-{i}-\x01-control"
            invalid.append(bad)
            lines.append(bad)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return good, oversize, invalid


class SendUnderFaultsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = SqsRelayServer(in_memory=True).start()
        cls.client = make_client(cls.server.endpoint)
        cls.tmp = tempfile.TemporaryDirectory(prefix="sqsrelay-sender-")

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()
        cls.tmp.cleanup()

    def setUp(self):
        set_faults(self.server, "")

    def run_scenario(self, fault, fault_metric=None, extra_args=(), allow_duplicates=False):
        name = unique_name("send")
        url = self.client.create_queue(
            QueueName=name, Attributes={"MaximumMessageSize": str(MAX_MESSAGE_SIZE)})["QueueUrl"]
        path = os.path.join(self.tmp.name, f"{name}.txt")
        dead = os.path.join(self.tmp.name, f"{name}.dead.ndjson")
        good, oversize, invalid = make_input(path, name)
        before = metric(self.server, fault_metric) if fault_metric else 0
        set_faults(self.server, f"queue={name},{fault},seed=11\n")
        cmd = [binary_path(), "--log-level", "error", "send", "--endpoint-url",
               self.server.endpoint, "--queue", name, path, "--dead-letter-file", dead,
               "--summary-json", "--no-progress", "--linger-ms", "2", "--backoff-base-ms", "5",
               "--backoff-cap-ms", str(BACKOFF_CAP_MS), "--drain-timeout", "120", *extra_args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        set_faults(self.server, "")
        self.assertTrue(proc.stdout.strip(), f"no summary; exit {proc.returncode}; stderr:\n"
                        f"{proc.stderr[-3000:]}")
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
        ctx = f"fault {fault}: summary {summary}\nstderr:\n{proc.stderr[-2000:]}"
        self.assertEqual(proc.returncode, 1, ctx)  # dead letters -> non-zero exit

        # Every message accounted for: delivered + dead-lettered == read, nothing abandoned.
        total = len(good) + len(oversize) + len(invalid)
        self.assertEqual(summary["messages"], total, ctx)
        self.assertEqual(summary["delivered"], len(good), ctx)
        self.assertEqual(summary["dead_lettered"], len(oversize) + len(invalid), ctx)
        self.assertEqual(summary["abandoned"], 0, ctx)
        self.assertLessEqual(summary["max_backoff_ms"], BACKOFF_CAP_MS, ctx)

        # The dead-letter file: exactly the impossible messages, with their reasons.
        with open(dead, encoding="utf-8") as f:
            lines = [json.loads(line) for line in f]
        by_reason = collections.defaultdict(set)
        for rec in lines:
            self.assertEqual(rec["queue"], url, rec)
            by_reason[rec["reason"]].add(rec["body"])
        self.assertEqual(len(lines), len(oversize) + len(invalid), ctx)
        self.assertEqual(by_reason["oversize"], set(oversize), ctx)
        self.assertEqual(by_reason["invalid_characters"], set(invalid), ctx)

        # Zero loss, and nothing that succeeded was sent again.
        received = collections.Counter(drain(self.client, url))
        missing = set(good) - set(received)
        self.assertFalse(missing, f"{len(missing)} good messages lost; {ctx}")
        self.assertFalse(set(received) - set(good), "unexpected bodies in the queue")
        duplicates = sum(n - 1 for n in received.values())
        injected = metric(self.server, fault_metric) - before if fault_metric else 0
        if allow_duplicates:
            print(f"\n  {fault}: {duplicates} duplicate deliveries after {injected} ambiguous "
                  f"drops (at most 10 entries each)", file=sys.stderr)
            self.assertLessEqual(duplicates, 10 * injected, ctx)
        else:
            self.assertEqual(duplicates, 0, ctx)
        if fault_metric:
            self.assertGreater(injected, 0, f"the fault never fired; {ctx}")
        return summary

    def test_latency(self):
        s = self.run_scenario("latency=20ms,jitter=5ms", "sqsrelay_fault_delayed_total")
        self.assertGreater(s["max_window"], 16, s)  # the window grew to cover the latency
        self.assertEqual(s["retried"], 0, s)

    def test_throttle(self):
        s = self.run_scenario("throttle=0.2", "sqsrelay_fault_throttled_total")
        self.assertGreater(s["throttled"], 0, s)
        self.assertGreater(s["retried"], 0, s)

    def test_error5xx(self):
        s = self.run_scenario("error5xx=0.2", "sqsrelay_fault_errors5xx_total")
        self.assertGreater(s["request_errors"], 0, s)
        self.assertGreater(s["retried"], 0, s)

    def test_drop(self):
        s = self.run_scenario("drop=0.1", "sqsrelay_fault_dropped_total")
        self.assertGreater(s["request_errors"], 0, s)

    def test_drop_after(self):
        s = self.run_scenario("drop_after=0.1", "sqsrelay_fault_dropped_after_total",
                              allow_duplicates=True)
        self.assertGreater(s["request_errors"], 0, s)

    def test_partial(self):
        s = self.run_scenario("partial=0.3", "sqsrelay_fault_failed_entries_total")
        self.assertGreater(s["entry_failures"], 0, s)
        self.assertEqual(s["request_errors"], 0, s)

    def test_mixed(self):
        self.run_scenario("latency=2ms,jitter=3ms,throttle=0.05,error5xx=0.05,drop=0.03,"
                          "partial=0.1", "sqsrelay_fault_failed_entries_total")


if __name__ == "__main__":
    unittest.main(verbosity=2)
