#!/usr/bin/env python3
"""Kill -9 tests of `sqsrelay serve`: what was acknowledged must survive.

  crash_test.py messages   senders, receivers and deleters run while the server is killed
                           and restarted; then every acknowledged send that was not
                           acknowledged-deleted must be drained, and no acknowledged delete
                           may come back.
  crash_test.py powerloss  as `messages`, but after each kill -9 every WAL segment loses a
                           random part of what was written after its last fdatasync (an
                           LD_PRELOAD shim logs synced sizes: sync_tracker.cc), as a power
                           cut may; kill -9 alone keeps the page cache.
  crash_test.py metadata   CreateQueue / SetQueueAttributes / TagQueue / UntagQueue /
                           DeleteQueue run while the server is killed; every acknowledged
                           change must be visible after the restart.

Bookkeeping. A request that got HTTP 200 is acknowledged; one that got no answer is unknown
(it may or may not have happened; both are fine). A delete counts as acknowledged only when
its 200 came from the same server process that handed out the receipt handle (the same or a
sibling keep-alive connection): a handle from an earlier process may be stale, and SQS answers
200 for stale handles without deleting. Receivers retry a delete whose answer was lost against
the restarted server, as SDKs do; such deletes count as "maybe deleted".

Environment: SQSRELAY_BIN (server binary), CRASH_CYCLES (kill -9 cycles, default 6),
CRASH_SEED, CRASH_MIN_S / CRASH_MAX_S (run time between kills), CRASH_SENDERS,
CRASH_RECEIVERS, CRASH_MAX_BACKLOG (senders pause while more acknowledged messages wait; default
100 for powerloss, unlimited otherwise), CRASH_SYNC_DELAY_US (powerloss: extra latency of
every file sync, default 5000), CRASH_KEEP=1 (keep the data dir and logs).
"""

import base64
import json
import os
import random
import struct
import sys
import threading
import time
import traceback
from collections import Counter

from harness import (Connection, EndpointBoard, ServerProcess, SqsError, StartupFailure,
                     TempDir, Unknown, drain, log, md5_hex, md5_of_attributes, parse_segment,
                     NO_PREALLOCATION, power_cut, queue_state, server_binary, sync_tracker,
                     wal_segments)

QUEUE = "crash-q"
QUEUE_ATTRS = {"VisibilityTimeout": "45", "MessageRetentionPeriod": "86400",
               "MaximumMessageSize": "262144"}
QUEUE_TAGS = {"team": "reliability", "purpose": "kill-9"}


def env_int(name, default):
    return int(os.environ.get(name, default))


def env_float(name, default):
    return float(os.environ.get(name, default))


class Chaos:
    """Runs the server and kills it -9 at random moments; workers follow the board."""

    def __init__(self, workdir, rng, power_loss=False):
        os.makedirs(os.path.join(workdir, "data"), exist_ok=True)
        env = None
        extra = ()
        self.sync_log = None
        if power_loss:
            extra = NO_PREALLOCATION
            self.sync_log = os.path.join(workdir, "synced.log")
            env = {"LD_PRELOAD": sync_tracker(workdir), "SQSRELAY_SYNC_LOG": self.sync_log,
                   "SQSRELAY_SYNC_DELAY_US": os.environ.get("CRASH_SYNC_DELAY_US", "5000")}
        self.server = ServerProcess(server_binary(), os.path.join(workdir, "data"), workdir,
                                    env=env, extra_args=extra)
        self.bytes_cut = 0
        self.board = EndpointBoard()
        self.rng = rng
        self.cycles = 0
        self.recovery_lines = []
        self.kill_times = {}  # incarnation -> time.monotonic() of its kill -9

    def start(self):
        ep = self.server.start()
        for line in self.server.log_text().splitlines():
            if "store:" in line:
                self.recovery_lines.append(line.strip())
        self.board.publish(ep)
        return ep

    def kill(self):
        self.board.take_down()
        self.kill_times[self.server.incarnation] = time.monotonic()
        self.server.kill9()
        if self.sync_log:
            self.bytes_cut += power_cut(self.server.data_dir, self.sync_log, self.rng)

    def run(self, cycles, min_s, max_s, progress=None):
        for i in range(cycles):
            time.sleep(self.rng.uniform(min_s, max_s))
            if self.server.exited_unexpectedly():
                raise AssertionError("the server died on its own; log:\n"
                                     + self.server.log_text())
            self.kill()
            self.cycles += 1
            if progress:
                log(f"cycle {i + 1}/{cycles}: killed -9; {progress()}")
            self.start()


# ---- messages ----------------------------------------------------------------------------------

class Ledger:
    def __init__(self):
        self.mu = threading.Lock()
        self.attempted = {}          # key -> full body
        self.acked = {}              # key -> (MessageId, MD5OfMessageAttributes or None)
        self.send_unknown = 0
        self.send_failed_entries = Counter()
        self.received = set()
        self.confirmed_deleted = set()
        self.how_deleted = {}        # key -> how the acknowledged delete was made (diagnostics)
        self.delete_log = []         # (key, handle seq, handle epoch, receive gen, delete gen,
                                     #  op, answer) for every delete answered with 200
        self.maybe_deleted = set()
        self.delete_unknown = 0
        self.left_inflight = 0
        self.receives = Counter()    # "empty" / "messages" / "unknown" answers to ReceiveMessage
        self.slowest = Counter()     # op -> longest time to a 200 (seconds)
        self.problems = []           # contract violations seen while running
        self.errors = Counter()      # error answers by type

    def problem(self, msg):
        with self.mu:
            if len(self.problems) < 50:
                self.problems.append(msg)

    def error(self, where, e):
        with self.mu:
            self.errors[f"{where}:{e.status}:{e.type}"] += 1


def decode_handle(h):
    """(seq, epoch) of a sqsrelay receipt handle (queue id, seq, gen, epoch), for
    diagnostics only; (None, None) when it has another shape."""
    try:
        raw = base64.b64decode(h)
        _qid, seq, _gen, epoch = struct.unpack("<QQII", raw)
        return seq, epoch
    except (ValueError, struct.error):
        return None, None


def key_of(body):
    return body.split("|", 1)[0]


class Worker(threading.Thread):
    def __init__(self, board, ledger, url, seed):
        super().__init__(daemon=True)
        self.board, self.ledger, self.url = board, ledger, url
        self.rng = random.Random(seed)
        self.conn = None
        self.crash = None  # traceback of an unexpected exception: a test bug, fails the run

    def run(self):
        try:
            self.work()
        except Exception:  # noqa: BLE001 - reported by the verifier
            self.crash = traceback.format_exc()

    def connect(self, n=1):
        """(Re)connects n sibling connections to the current server; False when stopping."""
        while True:
            got = self.board.wait()
            if got is None:
                return False
            ep, gen = got
            try:
                self.conns = [Connection(ep, gen=gen) for _ in range(n)]
                self.conn = self.conns[0]
                return True
            except Unknown:
                time.sleep(0.05)

    def alive(self):
        return self.conn is not None and all(c.alive for c in self.conns)


class Sender(Worker):
    def __init__(self, wid, *a, max_backlog=0):
        super().__init__(*a)
        self.wid = wid
        self.n = 0
        self.max_backlog = max_backlog  # pause while more acked messages wait (0: never)

    def backlog_full(self):
        led = self.ledger
        with led.mu:
            # Rough: messages left in flight on purpose wait for the next restart, so they
            # do not count (they may later count twice, which only loosens the brake).
            return len(led.acked) - len(led.confirmed_deleted) - len(
                led.maybe_deleted) - led.left_inflight > self.max_backlog

    def make_entry(self, i):
        key = f"w{self.wid}-{self.n:06d}"
        self.n += 1
        pad = self.rng.choice([0, 0, 10, 200, 3000])
        body = key if pad == 0 else key + "|" + "".join(
            self.rng.choice("abcdefghij\u00e9\u4e2d") for _ in range(pad))
        e = {"Id": f"e{i}", "MessageBody": body}
        if self.rng.random() < 0.3:
            e["MessageAttributes"] = {
                "worker": {"DataType": "String", "StringValue": str(self.wid)},
                "n": {"DataType": "Number", "StringValue": str(self.n)}}
        if self.rng.random() < 0.05:
            e["DelaySeconds"] = 1
        return key, body, e

    def work(self):
        led = self.ledger
        while not self.board.stopping:
            if not self.alive() and not self.connect():
                return
            if self.max_backlog and self.backlog_full():
                time.sleep(0.005)
                continue
            single = self.rng.random() < 0.2
            entries = [self.make_entry(i) for i in range(1 if single else self.rng.randint(1, 10))]
            with led.mu:
                for key, body, _ in entries:
                    led.attempted[key] = body
            t0 = time.monotonic()
            try:
                if single:
                    e = dict(entries[0][2])
                    del e["Id"]
                    r = self.conn.call("SendMessage", dict(QueueUrl=self.url, **e))
                    ok = {"e0": r}
                    failed = []
                else:
                    r = self.conn.call("SendMessageBatch", {
                        "QueueUrl": self.url, "Entries": [e for _, _, e in entries]})
                    ok = {s["Id"]: s for s in r.get("Successful", [])}
                    failed = r.get("Failed", [])
            except Unknown:
                with led.mu:
                    led.send_unknown += len(entries)
                continue
            except SqsError as e:
                led.error("send", e)
                continue
            with led.mu:
                op = "SendMessage" if single else "SendMessageBatch"
                led.slowest[op] = max(led.slowest[op], time.monotonic() - t0)
            for f in failed:
                with led.mu:
                    led.send_failed_entries[f.get("Code", "?")] += 1
            self.record(entries, ok)

    def record(self, entries, ok):
        led = self.ledger
        for key, body, e in entries:
            s = ok.get(e["Id"])
            if s is None:
                continue
            if s.get("MD5OfMessageBody") != md5_hex(body):
                led.problem(f"{key}: MD5OfMessageBody {s.get('MD5OfMessageBody')} is wrong")
            md5a = None
            if "MessageAttributes" in e:
                md5a = md5_of_attributes(e["MessageAttributes"])
                if s.get("MD5OfMessageAttributes") != md5a:
                    led.problem(f"{key}: MD5OfMessageAttributes is wrong")
            with led.mu:
                led.acked[key] = (s.get("MessageId"), md5a)


class Receiver(Worker):
    """Receives with a long visibility timeout and deletes most of what it got; leaves some
    messages in flight (they must come back after the next restart). Sometimes deletes one
    handle twice at once on two connections (both answers must wait for the sync)."""

    def work(self):
        led = self.ledger
        while not self.board.stopping:
            if not self.alive() and not self.connect(2):
                return
            t0 = time.monotonic()
            try:
                r = self.conn.call("ReceiveMessage", {
                    "QueueUrl": self.url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 1,
                    "VisibilityTimeout": 300})
                with led.mu:
                    led.slowest["ReceiveMessage"] = max(led.slowest["ReceiveMessage"],
                                                        time.monotonic() - t0)
            except Unknown:
                with led.mu:
                    led.receives["unknown"] += 1
                continue
            except SqsError as e:
                led.error("receive", e)
                time.sleep(0.1)
                continue
            msgs = r.get("Messages", [])
            with led.mu:
                led.receives["messages" if msgs else "empty"] += 1
            self.check(msgs)
            keep = [m for m in msgs if self.rng.random() >= 0.1]
            with led.mu:
                led.left_inflight += len(msgs) - len(keep)
            if keep:
                self.delete(keep, self.conn)

    def check(self, msgs):
        led = self.ledger
        for m in msgs:
            key = key_of(m["Body"])
            with led.mu:
                sent = led.attempted.get(key)
                led.received.add(key)
            if sent is None or sent != m["Body"]:
                led.problem(f"received a body never sent or altered: {m['Body'][:60]!r}")
            if m.get("MD5OfBody") != md5_hex(m["Body"]):
                led.problem(f"{key}: MD5OfBody is wrong on receive")

    def delete(self, msgs, rconn):
        """Deletes msgs, received on rconn. Only a 200 that comes from rconn's process (rconn
        itself or its sibling) acknowledges a delete."""
        mode = self.rng.random()
        keys = [key_of(m["Body"]) for m in msgs]
        if mode < 0.2 and len(self.conns) == 2 and self.conn is rconn:
            self.delete_twice(msgs[0], keys[0])
            msgs, keys = msgs[1:], keys[1:]
        if not msgs:
            return
        if mode < 0.4:
            for m, k in zip(msgs, keys):
                self.delete_with_retry("DeleteMessage", {
                    "QueueUrl": self.url, "ReceiptHandle": m["ReceiptHandle"]}, [k], [None],
                    rconn)
        else:
            entries = [{"Id": f"d{i}", "ReceiptHandle": m["ReceiptHandle"]}
                       for i, m in enumerate(msgs)]
            self.delete_with_retry("DeleteMessageBatch", {
                "QueueUrl": self.url, "Entries": entries}, keys, [e["Id"] for e in entries],
                rconn)

    def outcome(self, r, keys, ids, confirmed, op, handles, recv_gen, conn):
        led = self.ledger
        ok = {s["Id"] for s in r.get("Successful", [])} if ids[0] is not None else None
        with led.mu:
            for k, i, h in zip(keys, ids, handles):
                if ok is None or i in ok:
                    seq, epoch = decode_handle(h)
                    led.delete_log.append((k, seq, epoch, recv_gen, conn.gen, op,
                                           "acked" if confirmed else "retry-200"))
        for f in r.get("Failed", []):
            led.problem(f"delete entry failed: {f}")
        with led.mu:
            for k, i in zip(keys, ids):
                if ok is None or i in ok:
                    (led.confirmed_deleted if confirmed else led.maybe_deleted).add(k)
                    if confirmed:
                        led.how_deleted[k] = f"{op} on incarnation {conn.gen} at " \
                                             f"{time.monotonic():.3f}"

    def delete_with_retry(self, op, payload, keys, ids, rconn):
        """First on the receiving connection; after a lost answer up to 3 more tries on the
        restarted server with the same (now old) handles, with an SDK-like pause. A lost
        answer makes the messages "maybe deleted" whatever happens next."""
        led = self.ledger
        conn, confirmed = rconn, True
        recv_gen = conn.gen
        handles = [payload["ReceiptHandle"]] if "ReceiptHandle" in payload else [
            e["ReceiptHandle"] for e in payload["Entries"]]
        for attempt in range(4):
            if not conn.alive:  # gone before this request: straight to the new server
                if not self.alive() and not self.connect(2):
                    return
                conn, confirmed = self.conn, False
            t0 = time.monotonic()
            try:
                r = conn.call(op, payload)
                with led.mu:
                    led.slowest[op] = max(led.slowest[op], time.monotonic() - t0)
                self.outcome(r, keys, ids, confirmed, op, handles, recv_gen, conn)
                return
            except Unknown:
                with led.mu:
                    led.delete_unknown += 1
                    led.maybe_deleted.update(keys)
            except SqsError as e:
                led.error("delete", e)
                return
            if attempt == 3 or not self.connect(2):
                return
            time.sleep(self.rng.uniform(0.2, 0.8))  # SDK-like backoff
            conn, confirmed = self.conn, False

    def delete_twice(self, m, key):
        """DeleteMessage with one handle on both sibling connections at once."""
        led = self.ledger
        payload = {"QueueUrl": self.url, "ReceiptHandle": m["ReceiptHandle"]}
        sent = []
        for c in self.conns:
            try:
                c.c.request("POST", "/", body=json.dumps(payload).encode(), headers={
                    "Content-Type": "application/x-amz-json-1.0",
                    "X-Amz-Target": "AmazonSQS.DeleteMessage"})
                sent.append(c)
            except Exception:  # noqa: BLE001 - OSError, or HTTPException on a closed one
                c.close()
                with led.mu:
                    led.maybe_deleted.add(key)
        for c in sent:
            try:
                resp = c.c.getresponse()
                resp.read()
                if resp.will_close:
                    c.close()
            except Exception:  # noqa: BLE001 - any failure is an unknown outcome
                c.close()
                with led.mu:
                    led.delete_unknown += 1
                    led.maybe_deleted.add(key)
                continue
            if resp.status == 200:
                with led.mu:
                    seq, epoch = decode_handle(m["ReceiptHandle"])
                    led.delete_log.append((key, seq, epoch, c.gen, c.gen, "DeleteMessage x2",
                                           "acked"))
                    led.confirmed_deleted.add(key)
                    led.how_deleted[key] = (
                        f"DeleteMessage twice at once, 200 on connection "
                        f"{self.conns.index(c) + 1} of 2, incarnation {c.gen} at "
                        f"{time.monotonic():.3f}")
            else:
                led.problem(f"double delete answered {resp.status}")


def run_messages(power_loss=False):
    seed = env_int("CRASH_SEED", int(time.time()))
    cycles = env_int("CRASH_CYCLES", 6)
    rng = random.Random(seed)
    tmp = TempDir("sqsrelay-crash-")
    log(f"messages{' with power-loss emulation' if power_loss else ''}: seed {seed}, "
        f"{cycles} cycles, dir {tmp.path}")
    chaos = Chaos(tmp.path, rng, power_loss)
    ok = False
    try:
        ep = chaos.start()
        c = Connection(ep)
        url = c.call("CreateQueue", {"QueueName": QUEUE, "Attributes": QUEUE_ATTRS,
                                     "tags": QUEUE_TAGS})["QueueUrl"]
        c.close()
        led = Ledger()
        # Power-loss runs keep the queue short, so receivers get messages whose send is
        # still being synced (the case a power cut can take back).
        backlog = env_int("CRASH_MAX_BACKLOG", 100 if power_loss else 0)
        workers = [Sender(i, chaos.board, led, url, seed * 100 + i, max_backlog=backlog)
                   for i in range(env_int("CRASH_SENDERS", 2 if power_loss else 3))]
        workers += [Receiver(chaos.board, led, url, seed * 100 + 50 + i)
                    for i in range(env_int("CRASH_RECEIVERS", 4 if power_loss else 3))]
        for w in workers:
            w.start()
        chaos.run(cycles, env_float("CRASH_MIN_S", 0.3), env_float("CRASH_MAX_S", 2.5),
                  lambda: f"acked sends {len(led.acked)}, acked deletes "
                          f"{len(led.confirmed_deleted)}, receives {dict(led.receives)}")
        time.sleep(rng.uniform(0.3, 1.5))
        chaos.kill()  # the last kill also lands mid-traffic
        chaos.board.stop()
        for w in workers:
            w.join(60)
        ok = verify_messages(chaos, led, url, workers)
    except StartupFailure as e:
        log(f"FAIL: the server did not come back (crash loop): {e}")
    finally:
        chaos.server.kill9()
        tmp.finish(ok)
    return ok


def verify_messages(chaos, led, url, workers):
    ep = chaos.server.start()
    c = Connection(ep)
    problems = list(led.problems)
    problems += [f"worker crashed: {w.crash}" for w in workers if w.crash]
    attrs, tags = queue_state(c, url)
    for k, v in QUEUE_ATTRS.items():
        if attrs.get(k) != v:
            problems.append(f"queue attribute {k} = {attrs.get(k)!r}, expected {v!r}")
    if tags != QUEUE_TAGS:
        problems.append(f"queue tags {tags!r}, expected {QUEUE_TAGS!r}")
    not_visible = int(attrs.get("ApproximateNumberOfMessagesNotVisible", "-1"))
    if not_visible != 0:
        problems.append(f"{not_visible} messages still in flight right after the restart")
    visible_at_start = int(attrs.get("ApproximateNumberOfMessages", "0")) + int(
        attrs.get("ApproximateNumberOfMessagesDelayed", "0"))
    drained = drain(c, url)
    c.close()

    seen = Counter(key_of(m["Body"]) for m in drained)
    by_key = {key_of(m["Body"]): m for m in drained}
    acked = set(led.acked)
    expected = acked - led.confirmed_deleted - led.maybe_deleted
    lost = sorted(expected - set(seen))
    resurrected = sorted(led.confirmed_deleted & set(seen))
    phantom = sorted(k for k in seen if k not in led.attempted)
    dups = sum(n - 1 for n in seen.values())
    for k, m in by_key.items():
        if k in led.attempted and m["Body"] != led.attempted[k]:
            problems.append(f"{k}: body changed across restarts")
        if k in led.acked:
            mid, md5a = led.acked[k]
            if m.get("MessageId") != mid:
                problems.append(f"{k}: MessageId {m.get('MessageId')} != acked {mid}")
            if md5a and m.get("MD5OfMessageAttributes") != md5a:
                problems.append(f"{k}: message attributes changed across restarts")
    unacked_found = len(set(seen) - acked)
    vanished = len(led.received - acked - set(seen) - led.confirmed_deleted - led.maybe_deleted)

    log("---- messages crash test results")
    log(f"cycles (kill -9)         {chaos.cycles + 1}")
    log(f"sends attempted          {len(led.attempted)}  (unknown outcome {led.send_unknown},"
        f" failed entries {dict(led.send_failed_entries)})")
    log(f"acked sends              {len(acked)}")
    log(f"acked deletes            {len(led.confirmed_deleted)}  (maybe deleted after a retry "
        f"on a restarted server {len(led.maybe_deleted - led.confirmed_deleted)}, unknown "
        f"delete answers {led.delete_unknown})")
    log(f"left in flight on purpose {led.left_inflight}")
    log(f"visible after restart    {visible_at_start}")
    log(f"drained                  {len(drained)}  (of which unacked sends {unacked_found})")
    log(f"duplicates in drain      {dups}")
    log(f"received then vanished   {vanished}  (seen by a receiver, never acked, gone after "
        f"restart: reads of not-yet-durable sends)")
    log(f"error answers            {dict(led.errors)}")
    log(f"slowest 200 (s)          "
        f"{ {op: round(t, 2) for op, t in sorted(led.slowest.items())} }")
    log(f"startup seconds          max {max(chaos.server.startup_seconds):.2f}")
    if chaos.sync_log:
        log(f"unsynced bytes cut       {chaos.bytes_cut}  (power-loss emulation)")
    log(f"LOST                     {len(lost)}  {lost[:20]}")
    log(f"RESURRECTED              {len(resurrected)}  {resurrected[:20]}")
    log(f"PHANTOM                  {len(phantom)}  {phantom[:20]}")
    for k in resurrected[:10]:
        log(f"resurrected {k}: delete acknowledged by {led.how_deleted.get(k)}")
    log(f"kill -9 times by incarnation: "
        f"{ {i: round(t, 3) for i, t in chaos.kill_times.items()} }")
    if lost:
        explain_lost(chaos, led, lost)
    for line in chaos.recovery_lines[-3:]:
        log(f"recovery: {line}")
    for p in problems[:20]:
        log(f"PROBLEM: {p}")
    if not acked:
        problems.append("no send was acknowledged: the test exercised nothing")
    ok = not lost and not resurrected and not phantom and not problems
    log("PASS" if ok else "FAIL")
    return ok


def explain_lost(chaos, led, lost):
    """For each lost message: its seq in the WAL, and any delete that used a receipt handle
    naming that seq for another message (a handle whose seq was reused after a restart)."""
    seqs = {}
    try:
        for _, path in wal_segments(chaos.server.data_dir):
            for rec in parse_segment(path)[0]:
                for seq, body in rec.bodies:
                    seqs.setdefault(key_of(body), []).append(seq)
    except (OSError, AssertionError, ValueError) as e:
        log(f"(cannot read the WAL for diagnostics: {e})")
        return
    by_seq = {}
    for entry in led.delete_log:
        by_seq.setdefault(entry[1], []).append(entry)
    for k in lost[:10]:
        log(f"lost {k}: seq {seqs.get(k)} in the WAL; received by a receiver: "
            f"{k in led.received}")
        for seq in seqs.get(k, []):
            for (dk, _, epoch, rgen, dgen, op, ans) in by_seq.get(seq, []):
                log(f"    seq {seq} was deleted with a handle for {dk} (epoch {epoch:#x}, "
                    f"received on incarnation {rgen}, {op} on incarnation {dgen}: {ans})")


# ---- metadata ----------------------------------------------------------------------------------

SETTABLE = {
    "VisibilityTimeout": lambda r: str(r.randint(0, 43200)),
    "DelaySeconds": lambda r: str(r.randint(0, 900)),
    "MaximumMessageSize": lambda r: str(r.randint(1024, 262144)),
    "MessageRetentionPeriod": lambda r: str(r.randint(60, 1209600)),
    "ReceiveMessageWaitTimeSeconds": lambda r: str(r.randint(0, 20)),
}
TAG_KEYS = ["k0", "k1", "k2", "k3"]


class QueueModel:
    """What may be true of one queue: a set of possible values per fact. A change with an
    acknowledged answer narrows the set to the new value; an unknown one adds it."""

    def __init__(self, name, attrs, tags):
        self.name = name
        self.exists = {False}
        self.attrs = {k: {v} for k, v in attrs.items()}
        self.tags = {k: {tags.get(k)} for k in TAG_KEYS}

    def change(self, facts, key, value, known):
        facts[key] = {value} if known else facts[key] | {value}


class MetaWorker(Worker):
    def __init__(self, wid, board, models, seed):
        super().__init__(board, None, None, seed)
        self.wid = wid
        self.models = models
        self.unknown = 0
        self.acked = 0
        self.problems = []

    def call(self, op, payload):
        """The answer, or None for an unknown outcome (after reconnecting); raises on stop."""
        while True:
            if not self.alive() and not self.connect():
                raise InterruptedError
            try:
                r = self.conn.call(op, payload)
                self.acked += 1
                return r
            except Unknown:
                self.unknown += 1
                return None

    def work(self):
        try:
            n = 0
            while not self.board.stopping:
                self.queue_life(f"meta-w{self.wid}-{n:03d}")
                n += 1
        except InterruptedError:
            pass

    def queue_life(self, name):
        r = self.rng
        attrs = {k: f(r) for k, f in SETTABLE.items()}
        tags = {k: f"v{r.randint(0, 99)}" for k in TAG_KEYS if r.random() < 0.5}
        m = QueueModel(name, attrs, tags)
        self.models.append(m)
        url = self.ensure_created(m, attrs, tags)
        for _ in range(r.randint(3, 12)):
            self.random_change(m, url)
        if r.random() < 0.4:
            self.ensure_deleted(m, url)

    def ensure_created(self, m, attrs, tags):
        while True:
            try:
                res = self.call("CreateQueue", {"QueueName": m.name, "Attributes": attrs,
                                                "tags": tags})
            except SqsError as e:
                self.problems.append(f"CreateQueue {m.name}: {e}")
                raise InterruptedError from None
            if res is not None:
                m.exists = {True}
                return res["QueueUrl"]
            m.exists = {True, False}  # retried below with identical arguments (idempotent)

    def ensure_deleted(self, m, url):
        while True:
            try:
                res = self.call("DeleteQueue", {"QueueUrl": url})
            except SqsError as e:
                if e.type in ("QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue"):
                    m.exists = {False}
                    return
                self.problems.append(f"DeleteQueue {m.name}: {e}")
                return
            if res is not None:
                m.exists = {False}
                return
            m.exists = {True, False}

    def random_change(self, m, url):
        r = self.rng
        op = r.random()
        if op < 0.45:
            k = r.choice(list(SETTABLE))
            v = SETTABLE[k](r)
            facts, call = m.attrs, ("SetQueueAttributes", {"QueueUrl": url, "Attributes": {k: v}})
        elif op < 0.8:
            k, v = r.choice(TAG_KEYS), f"v{r.randint(0, 99)}"
            facts, call = m.tags, ("TagQueue", {"QueueUrl": url, "Tags": {k: v}})
        else:
            k, v = r.choice(TAG_KEYS), None
            facts, call = m.tags, ("UntagQueue", {"QueueUrl": url, "TagKeys": [k]})
        try:
            known = self.call(*call) is not None
        except SqsError as e:
            self.problems.append(f"{m.name}: {call[0]} answered {e}")
            known = False  # a 5xx may have reached the disk
        m.change(facts, k, v, known)


def run_metadata():
    seed = env_int("CRASH_SEED", int(time.time()))
    cycles = env_int("CRASH_CYCLES", 6)
    rng = random.Random(seed)
    tmp = TempDir("sqsrelay-crash-meta-")
    log(f"metadata: seed {seed}, {cycles} cycles, dir {tmp.path}")
    chaos = Chaos(tmp.path, rng)
    ok = False
    try:
        chaos.start()
        workers = [MetaWorker(i, chaos.board, [], seed * 100 + i) for i in range(3)]
        for w in workers:
            w.start()
        chaos.run(cycles, env_float("CRASH_MIN_S", 0.3), env_float("CRASH_MAX_S", 2.0),
                  lambda: f"acked changes {sum(w.acked for w in workers)}")
        time.sleep(rng.uniform(0.2, 1.0))
        chaos.kill()
        chaos.board.stop()
        for w in workers:
            w.join(60)
        ok = verify_metadata(chaos, workers)
    except StartupFailure as e:
        log(f"FAIL: the server did not come back (crash loop): {e}")
    finally:
        chaos.server.kill9()
        tmp.finish(ok)
    return ok


def verify_metadata(chaos, workers):
    ep = chaos.server.start()
    c = Connection(ep)
    problems = [p for w in workers for p in w.problems]
    problems += [f"worker crashed: {w.crash}" for w in workers if w.crash]
    listed, token = [], None
    while True:
        req = {"QueueNamePrefix": "meta-", "MaxResults": 1000}
        if token:
            req["NextToken"] = token
        page = c.call("ListQueues", req)
        listed += page.get("QueueUrls", [])
        token = page.get("NextToken")
        if not token:
            break
    present = {u.rsplit("/", 1)[-1]: u for u in listed}
    models = {m.name: m for w in workers for m in w.models}
    checked = 0
    for name in sorted(set(present) - set(models)):
        problems.append(f"queue {name} exists but was never created")
    for name, m in sorted(models.items()):
        exists = name in present
        if exists not in m.exists:
            problems.append(f"{name}: exists={exists}, expected one of {m.exists}")
            continue
        if not exists:
            continue
        attrs, tags = queue_state(c, present[name])
        for k, allowed in m.attrs.items():
            if attrs.get(k) not in allowed:
                problems.append(f"{name}: {k}={attrs.get(k)!r}, expected one of {allowed}")
        for k, allowed in m.tags.items():
            if tags.get(k) not in allowed:
                problems.append(f"{name}: tag {k}={tags.get(k)!r}, expected one of {allowed}")
        checked += 1
    c.close()
    log("---- metadata crash test results")
    log(f"cycles (kill -9)   {chaos.cycles + 1}")
    log(f"acked changes      {sum(w.acked for w in workers)}")
    log(f"unknown outcomes   {sum(w.unknown for w in workers)}")
    log(f"queues modelled    {len(models)} (present {len(present)}, checked {checked})")
    for p in problems[:30]:
        log(f"PROBLEM: {p}")
    ok = not problems and sum(w.acked for w in workers) > 0
    log("PASS" if ok else "FAIL")
    return ok


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "messages"
    runs = {"messages": run_messages, "metadata": run_metadata,
            "powerloss": lambda: run_messages(power_loss=True)}
    if mode not in runs:
        sys.exit(f"usage: {sys.argv[0]} [{'|'.join(runs)}]")
    sys.exit(0 if runs[mode]() else 1)


if __name__ == "__main__":
    main()
