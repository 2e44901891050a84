#!/usr/bin/env python3
"""Damaged-WAL recovery tests of `sqsrelay serve`.

Each scenario, on a fresh data directory:
  1. acknowledged traffic (sends, deletes, a last send), then kill -9;
  2. damage the WAL: garbage after the tail, a torn last record, a torn or empty next
     segment, stray files, or one corrupted record in the middle of the segment;
  3. restart: the server must start (no crash loop) and report the truncation/corruption;
  4. more acknowledged sends, kill -9, restart again;
  5. drain: every acknowledged, undeleted message must be there, except those in the record
     that was damaged on purpose (a damaged delete record may bring its messages back).

Usage: wal_damage_test.py [scenario ...]   (default: all). Environment: SQSRELAY_BIN,
CRASH_SEED, CRASH_KEEP=1.
"""

import os
import random
import struct
import sys
import time

from harness import (DELETE_BATCH, RECOVERY_RE, SEND_BATCH, Connection, ServerProcess,
                     StartupFailure, TempDir, drain, log, parse_segment, queue_state,
                     server_binary, wal_segments)

QUEUE_ATTRS = {"VisibilityTimeout": "30", "DelaySeconds": "0"}
QUEUE_TAGS = {"suite": "wal-damage"}


class Traffic:
    """Acknowledged traffic with an exact model (no kills while it runs)."""

    def __init__(self, conn, url, rng):
        self.conn, self.url, self.rng = conn, url, rng
        self.acked = set()
        self.deleted = set()

    def send(self, prefix, batches):
        for b in range(batches):
            keys = [f"{prefix}-{b:04d}-{i}" for i in range(self.rng.randint(1, 10))]
            r = self.conn.call("SendMessageBatch", {"QueueUrl": self.url, "Entries": [
                {"Id": str(i), "MessageBody": k} for i, k in enumerate(keys)]})
            assert not r.get("Failed"), r
            self.acked.update(keys)

    def delete_some(self, n):
        while n > 0:
            r = self.conn.call("ReceiveMessage", {"QueueUrl": self.url, "MaxNumberOfMessages": 10,
                                                  "VisibilityTimeout": 120})
            msgs = [m for m in r.get("Messages", []) if self.rng.random() < 0.6][:n]
            if not msgs:
                continue
            d = self.conn.call("DeleteMessageBatch", {"QueueUrl": self.url, "Entries": [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)]})
            assert not d.get("Failed"), d
            self.deleted.update(m["Body"] for m in msgs)
            n -= len(msgs)


class Damage:
    """What a scenario did: which acknowledged messages may be lost or come back, and what the
    recovery log line must show."""

    def __init__(self, expect=None):
        self.expect = expect  # "truncated", "corrupt", "clean" (nothing reported) or None
        self.may_lose = set()
        self.may_return = set()


def newest_segment(data):
    segs = wal_segments(data)
    assert segs, "no WAL segment found"
    return segs[-1]


def seq_to_key(records):
    return {seq: body for r in records for seq, body in r.bodies}


def segment_header(number):
    # magic | u32 version | u32 number | u32 masked crc32c (not needed for a torn prefix)
    return b"SQRLWAL1" + struct.pack("<II", 1, number)


def append(path, data):
    with open(path, "ab") as f:
        f.write(data)


def flip(path, offset, rng):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([b ^ (1 << rng.randint(0, 7))]))


def middle_record(records, type_):
    """A record of `type_` near the middle, with intact records after it."""
    idx = [i for i, r in enumerate(records) if r.type == type_ and 0 < i < len(records) - 2]
    assert idx, f"no record of type {type_} in the middle"
    return records[idx[len(idx) // 2]]


def lose(d, records, rec):
    d.may_lose.update(b for _, b in rec.bodies)
    keys = seq_to_key(records)
    d.may_return.update(keys[s] for s in rec.deleted_seqs if s in keys)


# ---- scenarios: each damages the stopped server's data dir and returns a Damage ----------------

def tail_garbage(data, rng):
    append(newest_segment(data)[1], bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 4096))))
    return Damage("truncated")


def tail_zeros(data, rng):
    # Zeros after the last record are how a preallocated segment ends: the clean end of
    # the data, so nothing is lost and nothing is reported as damage.
    append(newest_segment(data)[1], b"\0" * 4096)
    return Damage("clean")


def tail_torn_header(data, rng):
    append(newest_segment(data)[1], os.urandom(5))
    return Damage("truncated")


def tail_huge_length(data, rng):
    append(newest_segment(data)[1], struct.pack("<IIB", 0x12345678, 1 << 20, SEND_BATCH)
           + os.urandom(100))
    return Damage("truncated")


def tail_bad_crc_record(data, rng):
    path = newest_segment(data)[1]
    records, _ = parse_segment(path)
    last = records[-1]
    with open(path, "rb") as f:
        f.seek(last.offset)
        copy = bytearray(f.read(last.size))
    copy[-1] ^= 0x40
    append(path, bytes(copy))
    return Damage("truncated")


def tail_cut_last_record(data, rng):
    path = newest_segment(data)[1]
    records, _ = parse_segment(path)
    last = records[-1]
    assert last.type == SEND_BATCH
    os.truncate(path, last.offset + rng.randint(1, last.size - 1))
    d = Damage("truncated")
    lose(d, records, last)
    return d


def torn_next_segment(data, rng):
    n, path = newest_segment(data)
    with open(os.path.join(os.path.dirname(path), f"wal-{n + 1:08d}.log"), "wb") as f:
        f.write(segment_header(n + 1)[:rng.randint(1, 15)])
    return Damage("truncated")


def empty_next_segment(data, rng):
    n, path = newest_segment(data)
    open(os.path.join(os.path.dirname(path), f"wal-{n + 1:08d}.log"), "wb").close()
    return Damage()


def stray_files(data, rng):
    wal = os.path.join(data, "wal")
    with open(os.path.join(wal, "notes.txt"), "w") as f:
        f.write("not a segment\n")
    with open(os.path.join(wal, "wal-00000007.log.tmp"), "wb") as f:
        f.write(os.urandom(64))
    os.mkdir(os.path.join(wal, "wal-00000099.log"))
    return Damage()


def middle_payload_flip(data, rng):
    path = newest_segment(data)[1]
    records, _ = parse_segment(path)
    rec = middle_record(records, SEND_BATCH)
    flip(path, rec.offset + 9 + rng.randrange(len(rec.payload)), rng)
    d = Damage("corrupt")
    lose(d, records, rec)
    return d


def middle_length_flip(data, rng):
    path = newest_segment(data)[1]
    records, _ = parse_segment(path)
    rec = middle_record(records, SEND_BATCH)
    flip(path, rec.offset + 4 + rng.randrange(4), rng)
    d = Damage("corrupt")
    lose(d, records, rec)
    return d


def middle_crc_flip(data, rng):
    path = newest_segment(data)[1]
    records, _ = parse_segment(path)
    rec = middle_record(records, SEND_BATCH)
    flip(path, rec.offset + rng.randrange(4), rng)
    d = Damage("corrupt")
    lose(d, records, rec)
    return d


def set_length(path, rec, length):
    with open(path, "r+b") as f:
        f.seek(rec.offset + 4)
        f.write(struct.pack("<I", length))


def middle_length_to_later_record(data, rng):
    """The damaged record's length now points exactly at the start of a record three further
    on; the two intact records in between must still be recovered."""
    path = newest_segment(data)[1]
    records, _ = parse_segment(path)
    i = records.index(middle_record(records[:-4], SEND_BATCH))
    set_length(path, records[i], records[i + 3].offset - records[i].offset - 9)
    d = Damage("corrupt")
    lose(d, records, records[i])
    return d


def middle_length_to_end_of_file(data, rng):
    """The damaged record's length points exactly at the end of the file, where the records
    appended after the restart will start. Recovery must not change its mind about the
    intact records after the damage once new records fill that spot."""
    path = newest_segment(data)[1]
    records, size = parse_segment(path)
    rec = middle_record(records, SEND_BATCH)
    set_length(path, rec, size - rec.offset - 9)
    d = Damage("corrupt")
    lose(d, records, rec)
    return d


def middle_delete_record_flip(data, rng):
    path = newest_segment(data)[1]
    records, _ = parse_segment(path)
    rec = middle_record(records, DELETE_BATCH)
    flip(path, rec.offset + 9 + rng.randrange(len(rec.payload)), rng)
    d = Damage("corrupt")
    lose(d, records, rec)
    return d


def middle_zeroed_page(data, rng):
    path = newest_segment(data)[1]
    records, size = parse_segment(path)
    start = records[len(records) // 3].offset + 3
    end = min(start + 4096, records[-2].offset)
    with open(path, "r+b") as f:
        f.seek(start)
        f.write(b"\0" * (end - start))
    d = Damage("corrupt")
    for r in records:
        if r.offset < end and r.offset + r.size > start:
            lose(d, records, r)
    return d


SCENARIOS = [tail_garbage, tail_zeros, tail_torn_header, tail_huge_length, tail_bad_crc_record,
             tail_cut_last_record, torn_next_segment, empty_next_segment, stray_files,
             middle_payload_flip, middle_length_flip, middle_crc_flip,
             middle_length_to_later_record, middle_length_to_end_of_file,
             middle_delete_record_flip, middle_zeroed_page]


def recovery_numbers(text):
    """(corrupt, truncated) from the server's store line, or None when it is not there."""
    m = RECOVERY_RE.search(text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def run_scenario(fn, seed, root):
    rng = random.Random(seed)
    workdir = os.path.join(root, fn.__name__)
    data = os.path.join(workdir, "data")
    os.makedirs(data)
    srv = ServerProcess(server_binary(), data, workdir)
    problems = []
    try:
        c = Connection(srv.start())
        url = c.call("CreateQueue", {"QueueName": "damage", "Attributes": QUEUE_ATTRS,
                                     "tags": QUEUE_TAGS})["QueueUrl"]
        t = Traffic(c, url, rng)
        t.send("a", 30)
        t.delete_some(40)
        t.send("z", 3)  # the last records are sends
        c.close()
        srv.kill9()

        d = fn(data, rng)

        c = Connection(srv.start())  # StartupFailure here is a crash loop
        nums = recovery_numbers(srv.log_text())
        if nums is None:
            problems.append("no recovery line with corrupt/truncated counts in the log")
        elif d.expect == "truncated" and nums[1] == 0:
            problems.append(f"torn tail not reported (log: {nums[1]} bytes truncated)")
        elif d.expect == "corrupt" and nums[0] == 0:
            problems.append(f"corruption not reported (log: {nums[0]} corrupt)")
        elif d.expect == "clean" and nums != (0, 0):
            problems.append(f"damage reported where there is none (log: {nums})")
        if nums is not None:
            line = next(l for l in srv.log_text().splitlines() if RECOVERY_RE.search(l))
            if (nums != (0, 0)) != ("[warning]" in line):
                problems.append(f"damage must be logged as a warning, and only damage: {line}")
        a1, _ = queue_state(c, url)
        after_first = int(a1.get("ApproximateNumberOfMessages", "-1"))
        t.conn = c
        t.send("b", 10)
        c.close()
        srv.kill9()

        c = Connection(srv.start())
        attrs, tags = queue_state(c, url)
        for k, v in QUEUE_ATTRS.items():
            if attrs.get(k) != v:
                problems.append(f"attribute {k}={attrs.get(k)!r}, expected {v!r}")
        if tags != QUEUE_TAGS:
            problems.append(f"tags {tags!r}, expected {QUEUE_TAGS!r}")
        got = [m["Body"] for m in drain(c, url)]
        c.close()
        seen = set(got)
        must = t.acked - t.deleted - d.may_lose
        lost = sorted(must - seen)
        back = sorted((t.deleted & seen) - d.may_return)
        phantom = sorted(seen - t.acked)
        dups = len(got) - len(seen)
        lost_allowed = len(d.may_lose - seen)
        if lost:
            problems.append(f"LOST {len(lost)}: {lost[:10]}")
        if back:
            problems.append(f"RESURRECTED {len(back)}: {back[:10]}")
        if phantom:
            problems.append(f"PHANTOM {len(phantom)}: {phantom[:10]}")
        if dups:
            problems.append(f"{dups} duplicates in the drain")
        summary = (f"acked {len(t.acked)}, deleted {len(t.deleted)}, messages after the first "
                   f"recovery {after_first}, drained {len(got)}, "
                   f"lost in the damaged record {lost_allowed} (allowed), returned deletes "
                   f"{len(t.deleted & seen)} (allowed {len(d.may_return)}), log corrupt/truncated"
                   f" {nums}")
    except StartupFailure as e:
        problems.append(f"server did not start after the damage (crash loop): {e}")
        summary = "-"
    except Exception as e:  # noqa: BLE001 - report and go on with the next scenario
        problems.append(f"{type(e).__name__}: {e}")
        summary = "-"
    finally:
        srv.kill9()
    status = "PASS" if not problems else "FAIL"
    log(f"{status} {fn.__name__}: {summary}")
    for p in problems:
        log(f"    {p}")
    return not problems


def main():
    names = sys.argv[1:]
    chosen = [s for s in SCENARIOS if not names or s.__name__ in names]
    if names and len(chosen) != len(names):
        sys.exit(f"unknown scenario; known: {[s.__name__ for s in SCENARIOS]}")
    seed = int(os.environ.get("CRASH_SEED", int(time.time())))
    tmp = TempDir("sqsrelay-wal-damage-")
    log(f"wal damage: seed {seed}, dir {tmp.path}")
    results = [run_scenario(fn, seed + i, tmp.path) for i, fn in enumerate(chosen)]
    ok = all(results)
    log(f"{sum(results)}/{len(results)} scenarios passed")
    tmp.finish(ok)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
