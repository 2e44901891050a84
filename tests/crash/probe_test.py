#!/usr/bin/env python3
"""Deterministic durability probes of `sqsrelay serve`, each aimed at one way an
acknowledgement could be wrong.

The server runs under the sync_tracker.cc shim with every file sync slowed down to
SYNC_DELAY (so a sync is a wide, known window) and its synced sizes logged; a "power cut"
kills it -9 and cuts every WAL segment back to its last synced size.

  latency    every request that changes state must take at least one (slow) sync to answer
  double_delete
             DeleteMessage twice with one receipt handle: the second answer must not come
             before the first delete is durable (else a power cut brings the message back
             although both deletes were acknowledged)
  stale_handle_after_power_cut
             a message received before its send was durable is lost in a power cut; its
             receipt handle, used after the restart, must not delete another, acknowledged
             message that reuses its sequence number

  stale_handle_after_segment_gc
             (no power cut) once the oldest WAL segment was deleted because all of its messages
             were, a restart must not hand out sequence numbers again: an old receipt handle
             (a delete retried across the restart) must not delete a new message

Usage: probe_test.py [probe ...]. Environment: SQSRELAY_BIN, SQSRELAY_SYNC_TRACKER,
CRASH_KEEP=1.
"""

import os
import random
import sys
import threading
import time

from harness import (NO_PREALLOCATION, Connection, ServerProcess, SqsError, TempDir, Unknown, log,
                     power_cut,
                     server_binary, sync_tracker, wal_segments)

SYNC_DELAY = 0.3  # seconds added to every file sync


class Probe:
    def __init__(self, root, name):
        self.workdir = os.path.join(root, name)
        os.makedirs(os.path.join(self.workdir, "data"))
        self.sync_log = os.path.join(self.workdir, "synced.log")
        self.server = ServerProcess(
            server_binary(), os.path.join(self.workdir, "data"), self.workdir,
            env={"LD_PRELOAD": sync_tracker(root), "SQSRELAY_SYNC_LOG": self.sync_log,
                 "SQSRELAY_SYNC_DELAY_US": str(int(SYNC_DELAY * 1e6))},
            # power cuts (see harness.NO_PREALLOCATION), and the segment-GC probe fills a
            # segment to an exact file size
            extra_args=NO_PREALLOCATION)
        self.problems = []

    def start(self):
        return Connection(self.server.start(), timeout=30)

    def power_cut(self):
        """kill -9, then keep only what was synced."""
        self.server.kill9()
        # Keep exactly the synced prefix (a random cut could keep the unsynced record).
        return power_cut(self.server.data_dir, self.sync_log, _KeepNothing())

    def create_queue(self, c, name="probe"):
        return c.call("CreateQueue", {"QueueName": name, "Attributes": {
            "VisibilityTimeout": "60"}})["QueueUrl"]


class _KeepNothing:
    """An rng for power_cut() that always cuts at the synced size."""

    @staticmethod
    def randint(lo, _hi):
        return lo


def timed(c, op, payload):
    t0 = time.monotonic()
    r = c.call(op, payload)
    return r, time.monotonic() - t0


def send_async(endpoint, payload, result):
    """SendMessage on its own connection and thread; result[0] = answer or exception."""
    def run():
        try:
            result.append(Connection(endpoint).call("SendMessage", payload))
        except (Unknown, SqsError) as e:
            result.append(e)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


# ---- probes ------------------------------------------------------------------------------------

def latency(p):
    """Each mutating call's 200 must come after a sync: at least SYNC_DELAY."""
    c = p.start()
    checks = []

    def check(op, payload, must_sync=True):
        r, dt = timed(c, op, payload)
        checks.append((op, dt))
        if must_sync and dt < SYNC_DELAY * 0.9:
            p.problems.append(f"{op} answered 200 after {dt * 1000:.0f} ms, before a sync "
                              f"({SYNC_DELAY * 1000:.0f} ms) could have completed")
        return r

    url = check("CreateQueue", {"QueueName": "lat", "tags": {"a": "1"}})["QueueUrl"]
    check("SetQueueAttributes", {"QueueUrl": url, "Attributes": {"DelaySeconds": "0"}})
    check("TagQueue", {"QueueUrl": url, "Tags": {"b": "2"}})
    check("UntagQueue", {"QueueUrl": url, "TagKeys": ["a"]})
    check("SendMessage", {"QueueUrl": url, "MessageBody": "one"})
    check("SendMessageBatch", {"QueueUrl": url, "Entries": [
        {"Id": str(i), "MessageBody": f"b{i}"} for i in range(5)]})
    msgs = c.call("ReceiveMessage", {"QueueUrl": url, "MaxNumberOfMessages": 10,
                                     "VisibilityTimeout": 60})["Messages"]
    check("DeleteMessage", {"QueueUrl": url, "ReceiptHandle": msgs[0]["ReceiptHandle"]})
    check("DeleteMessageBatch", {"QueueUrl": url, "Entries": [
        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs[1:3])]})
    check("PurgeQueue", {"QueueUrl": url})
    check("DeleteQueue", {"QueueUrl": url})
    c.close()
    p.server.kill9()
    log("    " + ", ".join(f"{op} {dt * 1000:.0f} ms" for op, dt in checks))


def double_delete(p):
    c = p.start()
    url = p.create_queue(c)
    c.call("SendMessage", {"QueueUrl": url, "MessageBody": "deleted-twice"})
    m = c.call("ReceiveMessage", {"QueueUrl": url, "VisibilityTimeout": 60})["Messages"][0]
    payload = {"QueueUrl": url, "ReceiptHandle": m["ReceiptHandle"]}
    first = []

    def first_delete():
        try:
            first.append(timed(c, "DeleteMessage", payload))
        except Unknown:
            pass  # killed by the power cut below
    t = threading.Thread(target=first_delete, daemon=True)
    t.start()
    time.sleep(SYNC_DELAY / 4)  # the first delete is logged and its sync is under way
    c2 = Connection(c.endpoint)
    _, dt = timed(c2, "DeleteMessage", payload)
    acked_early = dt < SYNC_DELAY / 2 and not first
    if acked_early:
        cut = p.power_cut()
    else:  # fixed behaviour: nothing to cut; still restart to check what is on disk
        t.join(5)
        p.server.kill9()
        cut = 0
    t.join(5)
    log(f"    second DeleteMessage answered 200 after {dt * 1000:.0f} ms "
        f"(first still unanswered: {acked_early}); power cut removed {cut} bytes")
    c = p.start()
    back = c.call("ReceiveMessage", {"QueueUrl": url, "WaitTimeSeconds": 1}).get("Messages", [])
    if back:
        p.problems.append(
            "a message whose DeleteMessage was acknowledged (the second of two with one "
            "receipt handle, answered before the first delete was synced) came back after a "
            "power cut")
    c.close()
    p.server.kill9()


def stale_handle_after_power_cut(p):
    c = p.start()
    url = p.create_queue(c)
    c.call("SendMessage", {"QueueUrl": url, "MessageBody": "durable"})
    c.call("DeleteMessage", {"QueueUrl": url, "ReceiptHandle": c.call(
        "ReceiveMessage", {"QueueUrl": url})["Messages"][0]["ReceiptHandle"]})
    # B: sent, received by a long poller before its sync completes, then lost in a power cut.
    poll = []
    poller = threading.Thread(target=lambda: poll.append(c.call("ReceiveMessage", {
        "QueueUrl": url, "WaitTimeSeconds": 5, "VisibilityTimeout": 60})), daemon=True)
    poller.start()
    time.sleep(0.2)
    sent = []
    send_async(c.endpoint, {"QueueUrl": url, "MessageBody": "B-not-durable"}, sent)
    poller.join(SYNC_DELAY * 0.8)
    if not poll or not poll[0].get("Messages"):
        log("    (the poller did not get B before its sync completed; probe inconclusive)")
        p.server.kill9()
        return
    handle_b = poll[0]["Messages"][0]["ReceiptHandle"]
    if any(isinstance(x, dict) for x in sent):
        log("    (B's send was acknowledged before the power cut; probe inconclusive)")
        p.server.kill9()
        return
    cut = p.power_cut()
    log(f"    B was received while its send was still unanswered; power cut removed {cut} "
        f"bytes")
    # After the restart C gets the next sequence number, which B had.
    c = p.start()
    c.call("SendMessage", {"QueueUrl": url, "MessageBody": "C-acknowledged"})
    try:
        c.call("DeleteMessage", {"QueueUrl": url, "ReceiptHandle": handle_b})
        stale = "200"
    except SqsError as e:
        stale = f"{e.status} {e.type}"
    got = [m["Body"] for m in c.call("ReceiveMessage", {
        "QueueUrl": url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 1}).get("Messages", [])]
    log(f"    DeleteMessage with B's old handle answered {stale}; queue now holds {got}")
    if "C-acknowledged" not in got:
        p.problems.append(
            "an acknowledged message (C) was deleted by the receipt handle of another message "
            "(B, received before its send was synced, then lost in a power cut): C reused B's "
            "sequence number and the old handle matched it")
    if "B-not-durable" in got:
        log("    (B survived the power cut: the cut came too late)")
    c.close()
    p.server.kill9()


SEGMENT_BYTES = 64 << 20  # service_options::segment_bytes, the roll threshold


def wal_size(p):
    segs = wal_segments(p.server.data_dir)
    return segs[-1][0], os.path.getsize(segs[-1][1])


def stale_handle_after_segment_gc(p):
    """Fills segment 1 so exactly that the first delete record rolls to segment 2; deletes
    everything (segment 1 is then garbage-collected); restarts; sends C; retries an old
    delete."""
    p.server.env.pop("LD_PRELOAD", None)  # real disk speed, no power cut needed
    c = p.start()
    url = c.call("CreateQueue", {"QueueName": "gc", "Attributes": {
        "MaximumMessageSize": "1048576", "VisibilityTimeout": "600"}})["QueueUrl"]
    body = 1000000
    while wal_size(p)[1] < SEGMENT_BYTES - 2 * body:
        c.call("SendMessage", {"QueueUrl": url, "MessageBody": "x" * body})
    before = wal_size(p)[1]
    c.call("SendMessage", {"QueueUrl": url, "MessageBody": "y" * 1000})
    overhead = wal_size(p)[1] - before - 1000
    while True:  # leave 50 bytes: a 10-entry delete record (99 bytes) will not fit
        left = SEGMENT_BYTES - wal_size(p)[1] - overhead - 50
        if left <= 0:
            break
        c.call("SendMessage", {"QueueUrl": url, "MessageBody": "z" * min(left, body)})
    if wal_size(p)[0] != 1:
        log("    (could not fill segment 1 exactly; probe inconclusive)")
        return
    handles = []
    while True:
        msgs = c.call("ReceiveMessage", {"QueueUrl": url, "MaxNumberOfMessages": 10}).get(
            "Messages", [])
        if not msgs:
            break
        handles += [m["ReceiptHandle"] for m in msgs]
        c.call("DeleteMessageBatch", {"QueueUrl": url, "Entries": [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)]})
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and wal_segments(p.server.data_dir)[0][0] == 1:
        time.sleep(0.2)
    segs = [n for n, _ in wal_segments(p.server.data_dir)]
    log(f"    {len(handles)} messages sent and deleted; segments now {segs}")
    if 1 in segs:
        log("    (segment 1 was not deleted; probe inconclusive)")
        return
    c.close()
    p.server.kill9()
    c = p.start()
    c.call("SendMessage", {"QueueUrl": url, "MessageBody": "C-acknowledged"})
    # A consumer whose DeleteMessage answers were lost in the restart retries them.
    answers = []
    for h in handles[:20]:
        try:
            c.call("DeleteMessage", {"QueueUrl": url, "ReceiptHandle": h})
            answers.append("200")
        except SqsError as e:
            answers.append(e.type)
    got = [m["Body"] for m in c.call("ReceiveMessage", {
        "QueueUrl": url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 1}).get("Messages", [])]
    log(f"    retried 20 old deletes after the restart: {sorted(set(answers))}; queue holds "
        f"{got}")
    if "C-acknowledged" not in got:
        p.problems.append(
            "after the restart the sequence numbers started again (the segment holding the "
            "highest ones was deleted), and a retried DeleteMessage with a pre-restart receipt "
            "handle deleted a new, acknowledged message")
    c.close()


PROBES = [latency, double_delete, stale_handle_after_power_cut, stale_handle_after_segment_gc]


def main():
    names = sys.argv[1:]
    chosen = [f for f in PROBES if not names or f.__name__ in names]
    tmp = TempDir("sqsrelay-probes-")
    random.seed(1)
    results = []
    for fn in chosen:
        p = Probe(tmp.path, fn.__name__)
        log(f"{fn.__name__}:")
        try:
            fn(p)
        except Exception as e:  # noqa: BLE001 - report and continue with the next probe
            p.problems.append(f"{type(e).__name__}: {e}")
        finally:
            p.server.kill9()
        for q in p.problems:
            log(f"    PROBLEM: {q}")
        log(f"    {'PASS' if not p.problems else 'FAIL'}")
        results.append(not p.problems)
    ok = all(results)
    log(f"{sum(results)}/{len(results)} probes passed")
    tmp.finish(ok)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
