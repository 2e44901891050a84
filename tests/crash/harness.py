"""Shared pieces of the crash suites.

- ServerProcess: one `sqsrelay serve` on a data directory that we start, kill -9 and restart;
  each incarnation listens on a fresh port (port 0) and logs to its own file.
- EndpointBoard: the endpoint workers should talk to, or None while the server is down.
- Connection: a minimal AWS JSON 1.0 SQS client on http.client. A request either gets an
  HTTP answer or raises Unknown (no answer: it may or may not have happened). A Connection
  never reconnects silently, so everything done on one Connection hit the same process.
- WAL helpers for the damage tests: list segments and parse the records of a segment
  (layout: src/wal/wal_format.h, src/server/store_format.h).

Only the Python standard library is used, so the suites run wherever python3 does.
"""

import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

JSON_CT = "application/x-amz-json-1.0"
ENDPOINT_RE = re.compile(r"SQS endpoint http://([0-9.]+):(\d+)")
RECOVERY_RE = re.compile(r"(\d+) corrupt, (\d+) bytes of torn tail truncated")


class StartupFailure(Exception):
    """The server exited or never became healthy: a crash loop as far as a supervisor sees."""


class Unknown(Exception):
    """No HTTP answer (connection refused/reset, timeout): the outcome is unknown."""


class SqsError(Exception):
    def __init__(self, status, type_, message):
        super().__init__(f"HTTP {status} {type_}: {message}")
        self.status = status
        self.type = type_
        self.message = message


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def server_binary():
    b = os.environ.get("SQSRELAY_BIN")
    if not b:
        here = os.path.dirname(os.path.abspath(__file__))
        b = os.path.join(here, "..", "..", "build", "release", "src", "app", "sqsrelay")
    if not os.access(b, os.X_OK):
        sys.exit(f"server binary not found: {b} (set SQSRELAY_BIN)")
    return os.path.abspath(b)


class TempDir:
    """A scratch directory, removed at exit unless the run failed or CRASH_KEEP=1."""

    def __init__(self, prefix):
        self.path = tempfile.mkdtemp(prefix=prefix)
        self.keep = os.environ.get("CRASH_KEEP") == "1"

    def finish(self, ok):
        if ok and not self.keep:
            shutil.rmtree(self.path, ignore_errors=True)
        else:
            log(f"kept scratch directory {self.path}")


class ServerProcess:
    def __init__(self, binary, data_dir, log_dir, threads=2, env=None, extra_args=()):
        self.binary = binary
        self.extra_args = list(extra_args)
        self.data_dir = data_dir
        self.log_dir = log_dir
        self.threads = threads
        self.env = dict(os.environ, **(env or {}))
        self.proc = None
        self.incarnation = 0
        self.port = None
        self.startup_seconds = []

    def log_path(self, n=None):
        return os.path.join(self.log_dir, f"server-{self.incarnation if n is None else n}.log")

    def log_text(self, n=None):
        try:
            with open(self.log_path(n), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def start(self, timeout=30.0):
        """Starts a new incarnation; returns (host, port) once /health answers 200."""
        assert self.proc is None
        self.incarnation += 1
        t0 = time.monotonic()
        out = open(self.log_path(), "wb")
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", self.data_dir,
             "--threads", str(self.threads),
             *([] if "--ingest-listen" in self.extra_args else ["--ingest-listen", "off"]),
             *self.extra_args],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env)
        out.close()
        deadline = t0 + timeout
        endpoint = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.proc = None
                raise StartupFailure(f"server exited with {rc} during startup; log:\n"
                                     + self.log_text())
            m = ENDPOINT_RE.search(self.log_text())
            if m:
                endpoint = (m.group(1), int(m.group(2)))
                if health(endpoint):
                    self.port = endpoint[1]
                    self.startup_seconds.append(time.monotonic() - t0)
                    return endpoint
            time.sleep(0.02)
        self.kill9()
        raise StartupFailure(f"server not healthy after {timeout}s; log:\n" + self.log_text())

    def kill9(self):
        if self.proc is None:
            return
        try:
            os.kill(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.proc = None

    def exited_unexpectedly(self):
        return self.proc is not None and self.proc.poll() is not None


def health(endpoint, path="/health"):
    try:
        c = http.client.HTTPConnection(*endpoint, timeout=2)
        c.request("GET", path)
        ok = c.getresponse().status == 200
        c.close()
        return ok
    except (OSError, http.client.HTTPException):
        return False


class EndpointBoard:
    """The current endpoint and its generation; None while the server is down."""

    def __init__(self):
        self._cv = threading.Condition()
        self._endpoint = None
        self._gen = 0
        self.stopping = False

    def publish(self, endpoint):
        with self._cv:
            self._endpoint = endpoint
            self._gen += 1
            self._cv.notify_all()

    def take_down(self):
        with self._cv:
            self._endpoint = None

    def stop(self):
        with self._cv:
            self.stopping = True
            self._cv.notify_all()

    def wait(self):
        """(endpoint, gen), or None once stop() was called."""
        with self._cv:
            while self._endpoint is None and not self.stopping:
                self._cv.wait(0.5)
            if self.stopping:
                return None
            return self._endpoint, self._gen


class Connection:
    """One keep-alive HTTP connection to one server process; never reconnects by itself."""

    def __init__(self, endpoint, timeout=30.0, gen=0):
        self.endpoint = endpoint
        self.gen = gen
        self.c = http.client.HTTPConnection(*endpoint, timeout=timeout)
        try:
            self.c.connect()
        except OSError as e:
            raise Unknown(f"connect: {e}") from None
        self.c.auto_open = 0
        self.alive = True

    def close(self):
        self.alive = False
        self.c.close()

    def call(self, op, payload):
        """The result object of a 200; SqsError for an error answer; Unknown for none."""
        if not self.alive:
            raise Unknown("connection closed")
        body = json.dumps(payload).encode()
        try:
            self.c.request("POST", "/", body=body, headers={
                "Content-Type": JSON_CT, "X-Amz-Target": f"AmazonSQS.{op}"})
            resp = self.c.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as e:
            self.close()
            raise Unknown(f"{op}: {type(e).__name__}: {e}") from None
        if resp.will_close:
            self.close()
        try:
            obj = json.loads(data) if data else {}
        except ValueError:
            obj = {"__type": "unparsable", "message": data[:200].decode(errors="replace")}
        if resp.status != 200:
            raise SqsError(resp.status, str(obj.get("__type", "")).split("#")[-1],
                           obj.get("message", ""))
        return obj


def md5_hex(data):
    return hashlib.md5(data.encode() if isinstance(data, str) else data).hexdigest()


def md5_of_attributes(attrs):
    """MD5OfMessageAttributes as SQS defines it, for {name: {DataType, StringValue}}."""
    buf = b""
    for name in sorted(attrs):
        a = attrs[name]
        for part in (name, a["DataType"]):
            p = part.encode()
            buf += struct.pack(">I", len(p)) + p
        if "StringValue" in a:
            v = a["StringValue"].encode()
            buf += b"\x01" + struct.pack(">I", len(v)) + v
        else:
            import base64
            v = base64.b64decode(a["BinaryValue"])
            buf += b"\x02" + struct.pack(">I", len(v)) + v
    return hashlib.md5(buf).hexdigest()


def queue_state(conn, url):
    """(attributes, tags) of a queue."""
    attrs = conn.call("GetQueueAttributes", {"QueueUrl": url, "AttributeNames": ["All"]})
    tags = conn.call("ListQueueTags", {"QueueUrl": url})
    return attrs.get("Attributes", {}), tags.get("Tags", {})


def drain(conn, url, visibility=10, empty_polls=3):
    """Receives and deletes until the queue is empty. Returns the received messages in order
    (each a dict from the ReceiveMessage answer). Fails loudly on anything unexpected."""
    got = []
    empties = 0
    while empties < empty_polls:
        r = conn.call("ReceiveMessage", {
            "QueueUrl": url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 1,
            "VisibilityTimeout": visibility, "MessageAttributeNames": ["All"],
            "AttributeNames": ["All"]})
        msgs = r.get("Messages", [])
        if not msgs:
            a, _ = queue_state(conn, url)
            pending = sum(int(a.get(k, "0")) for k in (
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed"))
            empties = empties + 1 if pending == 0 else 0
            continue
        empties = 0
        got.extend(msgs)
        d = conn.call("DeleteMessageBatch", {"QueueUrl": url, "Entries": [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)]})
        if d.get("Failed"):
            raise AssertionError(f"drain: delete failed: {d['Failed']}")
    return got


# ---- WAL layout (src/wal/wal_format.h, src/server/store_format.h) ----------------------------

SEGMENT_HEADER = 20
RECORD_HEADER = 9
SEGMENT_RE = re.compile(r"^wal-(\d{8})\.log$")
SEND_BATCH, DELETE_BATCH, MOVE, PURGE = 1, 2, 3, 4


def wal_segments(data_dir):
    """[(number, path)] of the segment files, oldest first."""
    d = os.path.join(data_dir, "wal")
    out = []
    for name in os.listdir(d):
        m = SEGMENT_RE.match(name)
        if m and os.path.isfile(os.path.join(d, name)):
            out.append((int(m.group(1)), os.path.join(d, name)))
    return sorted(out)


class Record:
    def __init__(self, offset, type_, payload):
        self.offset = offset          # file offset of the record header
        self.type = type_
        self.payload = payload
        self.size = RECORD_HEADER + len(payload)
        self.bodies = []              # send_batch: [(seq, body)]
        self.deleted_seqs = []        # delete_batch


def parse_segment(path):
    """The records of an intact segment, in order. Raises AssertionError if the file does not
    look like the documented layout (the test then needs updating with the format)."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"SQRLWAL1", f"{path}: unexpected segment magic {data[:8]!r}"
    pos = SEGMENT_HEADER
    records = []
    while pos + RECORD_HEADER <= len(data):
        crc, length, type_ = struct.unpack_from("<IIB", data, pos)
        if crc == 0 and length == 0 and type_ == 0:
            break  # zeros: the end of a preallocated segment's data (docs/wal_format.md)
        end = pos + RECORD_HEADER + length
        if end > len(data):
            break
        rec = Record(pos, type_, data[pos + RECORD_HEADER:end])
        decode_payload(rec)
        records.append(rec)
        pos = end
    return records, len(data)


def decode_payload(rec):
    p = rec.payload
    if rec.type == SEND_BATCH:
        _qid, count = struct.unpack_from("<QH", p, 0)
        at = 10
        for _ in range(count):
            (blen,) = struct.unpack_from("<I", p, at)
            blob = p[at + 4:at + 4 + blen]
            at += 4 + blen
            rec.bodies.append(decode_blob(blob))
    elif rec.type == DELETE_BATCH:
        _qid, count = struct.unpack_from("<QH", p, 0)
        rec.deleted_seqs = list(struct.unpack_from(f"<{count}Q", p, 10))


def decode_blob(blob):
    (seq,) = struct.unpack_from("<Q", blob, 0)
    at = 8 + 16 + 8 + 4 + 1 + 48
    (n,) = struct.unpack_from("<H", blob, at)   # sender id
    at += 2 + n
    (n,) = struct.unpack_from("<H", blob, at)   # AWSTraceHeader
    at += 2 + n
    (n,) = struct.unpack_from("<I", blob, at)
    return seq, blob[at + 4:at + 4 + n].decode()


# ---- power-loss emulation (sync_tracker.cc) ------------------------------------------------------

def sync_tracker(workdir):
    """Path of the LD_PRELOAD shim: $SQSRELAY_SYNC_TRACKER, else compiled here with c++."""
    lib = os.environ.get("SQSRELAY_SYNC_TRACKER")
    if lib and os.path.exists(lib):
        return lib
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sync_tracker.cc")
    lib = os.path.join(workdir, "sync_tracker.so")
    cxx = os.environ.get("CXX", "c++")
    subprocess.run([cxx, "-std=c++17", "-O2", "-shared", "-fPIC", "-o", lib, src, "-ldl"],
                   check=True)
    return lib


# The power cut below knows what is synced by file size, so it cannot see unsynced records
# inside a preallocated segment (a file of zeros written and synced at full size before
# use). Servers whose data dir gets power cuts run without preallocation; the WAL's model
# test (src/wal/wal_model_test.cc) cuts power at every system call with preallocated
# segments, tracking content rather than sizes.
NO_PREALLOCATION = ("--wal-preallocate", "false")


def power_cut(data_dir, sync_log, rng):
    """After a kill -9: cuts every WAL segment back to a random point between its last synced
    size (from the shim's log) and its current size, like a power cut that keeps only part of
    the unsynced tail. A segment never synced keeps none of it. Returns the bytes cut."""
    synced = {}
    try:
        with open(sync_log) as f:
            for line in f:
                size, path = line.rstrip("\n").split(" ", 1)
                synced[os.path.realpath(path)] = int(size)
    except FileNotFoundError:
        pass
    cut = 0
    for _, path in wal_segments(data_dir):
        size = os.path.getsize(path)
        keep = min(synced.get(os.path.realpath(path), 0), size)
        if size > keep:
            new = rng.randint(keep, size - 1)
            os.truncate(path, new)
            cut += size - new
    return cut
