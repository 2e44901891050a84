#!/usr/bin/env python3
"""The message store's disk fills up under `sqsrelay serve`: a real filesystem (a small
tmpfs), real ENOSPC.

  1. SendMessageBatch of 10 x 50 KB until the disk is full: every failure is a 503
     ServiceUnavailable (retryable), never a 200 for data not on disk, never another error;
  2. while full: reads work; DeleteMessage(Batch) answer 503 (not ReceiptHandleIsInvalid,
     which would tell the client to give up on good handles); /healthz answers 503 naming
     the cause; /metrics shows sqsrelay_store_failed 1 and the refusals; the log says, once,
     at error level, what happened and what to do;
  3. kill -9 and restart on the still-full disk: the server starts, and every acknowledged
     message is there;
  4. space is freed (tmpfs remounted larger): sends work again and the queue drains to
     exactly the acknowledged messages plus the new one.

Needs permission to mount a tmpfs (root, as in CI); without it the test is skipped (exit 77).
Python standard library only.
"""

import http.client
import os
import re
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import (Connection, ServerProcess, SqsError, TempDir, drain, log,  # noqa: E402
                     server_binary)

SKIP = 77
BODY_BYTES = 50_000


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get(endpoint, path):
    c = http.client.HTTPConnection(*endpoint, timeout=5)
    c.request("GET", path)
    r = c.getresponse()
    data = r.read().decode(errors="replace")
    c.close()
    return r.status, data


def metric(text, name):
    m = re.search(rf"^{name} (\d+)$", text, re.M)
    return int(m.group(1)) if m else None


def expect_503(what, fn):
    try:
        fn()
    except SqsError as e:
        if e.status != 503 or e.type != "ServiceUnavailable":
            raise AssertionError(f"{what}: expected 503 ServiceUnavailable, got {e}")
        return
    raise AssertionError(f"{what}: succeeded on a full disk")


def main():
    tmp = TempDir("sqsrelay-diskfull-")
    mnt = os.path.join(tmp.path, "mnt")
    os.mkdir(mnt)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", mnt],
                       capture_output=True, text=True)
    if r.returncode != 0:
        log(f"SKIP: cannot mount a tmpfs ({r.stderr.strip()}): needs root")
        tmp.finish(True)
        return SKIP
    ingest_port = free_port()
    srv = ServerProcess(server_binary(), os.path.join(mnt, "data"), tmp.path,
                        extra_args=["--ingest-listen", f"127.0.0.1:{ingest_port}"])
    srv.ingest_port = ingest_port
    ok = False
    try:
        ep = srv.start()
        c = Connection(ep)
        url = c.call("CreateQueue", {"QueueName": "full"})["QueueUrl"]

        # 1. Fill the disk.
        acked, attempted = set(), set()
        refusals = 0
        for i in range(10_000):
            keys = [f"{i}.{j}" for j in range(10)]
            attempted.update(keys)
            entries = [{"Id": str(j), "MessageBody": k + ":" + "x" * BODY_BYTES}
                       for j, k in enumerate(keys)]
            try:
                res = c.call("SendMessageBatch", {"QueueUrl": url, "Entries": entries})
            except SqsError as e:
                if e.status != 503 or e.type != "ServiceUnavailable":
                    raise AssertionError(f"send on a full disk: expected 503, got {e}")
                refusals += 1
                if refusals == 3:
                    break
                continue
            if res.get("Failed"):
                raise AssertionError(f"unexpected per-entry failures: {res['Failed']}")
            acked.update(keys)
        assert refusals == 3, "the 24 MiB disk never filled"
        log(f"disk full after {len(acked)} acknowledged messages")

        # 2. Full: reads work, deletes are refused retryably, health and metrics tell.
        attrs = c.call("GetQueueAttributes", {"QueueUrl": url, "AttributeNames": ["All"]})
        visible = int(attrs["Attributes"]["ApproximateNumberOfMessages"])
        assert visible >= len(acked), f"{visible} visible < {len(acked)} acknowledged"
        msgs = c.call("ReceiveMessage", {"QueueUrl": url, "MaxNumberOfMessages": 10,
                                         "VisibilityTimeout": 1}).get("Messages", [])
        assert len(msgs) == 10, f"receive on a full disk returned {len(msgs)}"
        expect_503("DeleteMessageBatch", lambda: c.call("DeleteMessageBatch", {
            "QueueUrl": url, "Entries": [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                         for i, m in enumerate(msgs)]}))
        expect_503("DeleteMessage", lambda: c.call("DeleteMessage", {
            "QueueUrl": url, "ReceiptHandle": msgs[0]["ReceiptHandle"]}))
        status, body = get(ep, "/healthz")
        assert status == 503 and "No space left on device" in body, (status, body)
        status, text = get(ep, "/metrics")
        assert metric(text, "sqsrelay_store_failed") == 1, "sqsrelay_store_failed is not 1"
        assert (metric(text, "sqsrelay_server_store_refusals_total") or 0) >= 5, text
        assert (metric(text, "sqsrelay_store_write_errors_total") or 0) >= 1, text
        errors = [line for line in srv.log_text().splitlines()
                  if "[error] store: the message log failed" in line]
        assert len(errors) == 1, f"expected one error line about the store, got {errors}"
        # The HTTP ingest of the same server: 503 with Retry-After, never a 200.
        ic = http.client.HTTPConnection("127.0.0.1", srv.ingest_port, timeout=10)
        ic.request("POST", "/queues/full/messages", body='[{"a":1},{"a":2}]',
                   headers={"Content-Type": "application/json"})
        ir = ic.getresponse()
        idata = ir.read()
        ic.close()
        assert ir.status == 503 and ir.getheader("Retry-After"), (ir.status, idata)
        status, body = get(("127.0.0.1", srv.ingest_port), "/healthz")
        assert status == 503 and "message store failed" in body, (status, body)
        c.close()

        # 3. Restart on the full disk: starts, keeps every acknowledged message.
        srv.kill9()
        ep = srv.start()
        c = Connection(ep)
        attrs = c.call("GetQueueAttributes", {"QueueUrl": url, "AttributeNames": ["All"]})
        after = int(attrs["Attributes"]["ApproximateNumberOfMessages"])
        assert after >= len(acked), f"after restart {after} < {len(acked)} acknowledged"

        # 4. Space freed: writes work again; the queue holds exactly what it should.
        subprocess.run(["mount", "-o", "remount,size=96m", mnt], check=True)
        status, _ = get(ep, "/healthz")
        assert status == 200, f"/healthz {status} after restart"
        c.call("SendMessage", {"QueueUrl": url, "MessageBody": "after:"})
        got = [m["Body"].split(":", 1)[0] for m in drain(c, url)]
        got_set = set(got)
        lost = acked - got_set
        strays = got_set - attempted - {"after"}
        assert not lost, f"{len(lost)} acknowledged messages lost, e.g. {sorted(lost)[:5]}"
        assert not strays, f"messages never sent: {sorted(strays)[:5]}"
        assert "after" in got_set, "the send after freeing space is missing"
        log(f"PASS: {len(acked)} acknowledged, {len(got)} drained "
            f"({len(got_set - acked - {'after'})} refused sends stored anyway), 0 lost")
        c.close()
        ok = True
        return 0
    finally:
        srv.kill9()
        subprocess.run(["umount", mnt], check=False)
        tmp.finish(ok)


if __name__ == "__main__":
    sys.exit(main())
