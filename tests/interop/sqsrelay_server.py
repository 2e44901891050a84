#!/usr/bin/env python3
"""Starts and stops a real `sqsrelay serve` process for the interop suites.

Library use (Python suites):

    with SqsRelayServer() as server:          # port 0, fresh temp data dir
        boto3.client("sqs", endpoint_url=server.endpoint, ...)

Wrapper use (suites in other languages, e.g. the Node one):

    python3 sqsrelay_server.py [--in-memory] -- node --test suite.test.mjs

runs the command with SQSRELAY_ENDPOINT (and SQSRELAY_ACCOUNT_ID, SQSRELAY_REGION) set,
stops the server afterwards and exits with the command's status.

The binary comes from $SQSRELAY_BIN, else build/release/src/app/sqsrelay under the repository
root. Every server this module starts is stopped at interpreter exit even when a test fails
(SIGTERM, then SIGKILL after a grace period), so no test leaves a process behind.
"""

import argparse
import atexit
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_BIN = os.path.join(REPO_ROOT, "build", "release", "src", "app", "sqsrelay")
DEFAULT_ACCOUNT_ID = "000000000000"
DEFAULT_REGION = "us-east-1"

_ENDPOINT_RE = re.compile(r"SQS endpoint (https?://[0-9.]+:(\d+))")
_INGEST_RE = re.compile(r"ingest endpoint (http://[0-9.]+:(\d+))")
_live_servers = set()
_live_lock = threading.Lock()


def binary_path():
    return os.environ.get("SQSRELAY_BIN") or DEFAULT_BIN


def _orphan_guard():
    """A prefix that makes the kernel SIGTERM the server if this process dies without
    cleaning up (e.g. SIGKILLed by a ctest timeout): util-linux `setpriv --pdeathsig`."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []


class ServerError(RuntimeError):
    pass


class SqsRelayServer:
    """One `sqsrelay serve` child process listening on 127.0.0.1 with an OS-chosen port.

    Owns its temp data dir unless `data_dir` is given (restart tests pass the same dir to a
    second instance). Not thread-safe; one test drives it.
    """

    def __init__(self, data_dir=None, in_memory=False, credentials=None, account_id=None,
                 region=None, listen="127.0.0.1:0", extra_args=(), start_timeout=30.0,
                 ingest=False):
        # ingest=True: also the HTTP ingest listener on an OS-chosen port (ingest_endpoint);
        # otherwise it is off, so that servers running side by side do not compete for 8080.
        self.ingest = ingest
        self.ingest_endpoint = None
        self.in_memory = in_memory
        self.account_id = account_id or DEFAULT_ACCOUNT_ID
        self.region = region or DEFAULT_REGION
        self.listen = listen
        self.extra_args = list(extra_args)
        self.start_timeout = start_timeout
        self._owned_dir = None
        if data_dir is None and not in_memory:
            self._owned_dir = tempfile.mkdtemp(prefix="sqsrelay-interop-")
            data_dir = os.path.join(self._owned_dir, "data")
        self.data_dir = data_dir
        self.credentials_file = None
        if credentials:
            if self._owned_dir is None:
                self._owned_dir = tempfile.mkdtemp(prefix="sqsrelay-interop-")
            self.credentials_file = os.path.join(self._owned_dir, "credentials")
            with open(self.credentials_file, "w") as f:
                for akid, secret in credentials:
                    f.write(f"{akid}:{secret}\n")
        self.proc = None
        self.endpoint = None
        self.port = None
        self._log = []
        self._log_lock = threading.Lock()
        self._reader = None
        self._endpoint_seen = threading.Event()

    # -- lifecycle -------------------------------------------------------------------------

    def command(self):
        cmd = [binary_path(), "serve", "--listen", self.listen,
               "--account-id", self.account_id, "--region", self.region]
        if self.in_memory:
            cmd.append("--in-memory")
        else:
            cmd += ["--data-dir", self.data_dir]
        if self.credentials_file:
            cmd += ["--credentials-file", self.credentials_file]
        if not any(a == "--ingest-listen" for a in self.extra_args):
            cmd += ["--ingest-listen", "127.0.0.1:0" if self.ingest else "off"]
        return cmd + self.extra_args

    def start(self):
        binary = binary_path()
        if not os.access(binary, os.X_OK):
            raise ServerError(f"sqsrelay binary not found or not executable: {binary} "
                              "(set SQSRELAY_BIN)")
        env = dict(os.environ)
        env.pop("SQSRELAY_CREDENTIALS", None)  # hermetic: only what this object configures
        self.proc = subprocess.Popen(_orphan_guard() + self.command(), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=env)
        with _live_lock:
            _live_servers.add(self)
        self._reader = threading.Thread(target=self._read_output, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + self.start_timeout
        while not self._endpoint_seen.wait(0.05):
            if self.proc.poll() is not None:
                self._reader.join(2)
                raise ServerError(f"sqsrelay exited with {self.proc.returncode} before "
                                  f"listening:\n{self.log()}")
            if time.monotonic() > deadline:
                self.stop()
                raise ServerError(f"sqsrelay did not log its endpoint within "
                                  f"{self.start_timeout}s:\n{self.log()}")
        while self.ingest and self.ingest_endpoint is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise ServerError(f"sqsrelay did not log its ingest endpoint:\n{self.log()}")
            time.sleep(0.02)
        return self

    def _read_output(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace")
            with self._log_lock:
                self._log.append(line)
            mi = _INGEST_RE.search(line)
            if mi:
                self.ingest_endpoint = mi.group(1)
            if not self._endpoint_seen.is_set():
                m = _ENDPOINT_RE.search(line)
                if m:
                    self.endpoint = m.group(1)
                    self.port = int(m.group(2))
                    self._endpoint_seen.set()

    def stop(self, sig=signal.SIGTERM, grace=10.0):
        """Stops the process; returns its exit code (negative for a signal)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self._reader:
            self._reader.join(5)
        if self.proc.stdout and not (self._reader and self._reader.is_alive()):
            self.proc.stdout.close()
        with _live_lock:
            _live_servers.discard(self)
        return self.proc.returncode

    def kill(self):
        return self.stop(sig=signal.SIGKILL, grace=10.0)

    def cleanup(self):
        self.stop()
        if self._owned_dir:
            shutil.rmtree(self._owned_dir, ignore_errors=True)
            self._owned_dir = None

    def log(self):
        with self._log_lock:
            return "".join(self._log)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()
        return False

    # -- helpers for tests ------------------------------------------------------------------

    def queue_url(self, name, host=None):
        host = host or f"127.0.0.1:{self.port}"
        return f"http://{host}/{self.account_id}/{name}"

    def queue_arn(self, name):
        return f"arn:aws:sqs:{self.region}:{self.account_id}:{name}"


@atexit.register
def _stop_all():
    with _live_lock:
        servers = list(_live_servers)
    for s in servers:
        try:
            s.stop(grace=5.0)
        except Exception:  # best effort at exit
            pass


def run_start_failure(args, timeout=15.0):
    """Runs `sqsrelay serve ARGS` expecting it to refuse to start. Returns (code, output)."""
    env = dict(os.environ)
    env.pop("SQSRELAY_CREDENTIALS", None)
    proc = subprocess.Popen(_orphan_guard() + [binary_path(), "serve"] + list(args),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env=env)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        return None, out.decode("utf-8", "replace")
    return proc.returncode, out.decode("utf-8", "replace")


def _main(argv):
    parser = argparse.ArgumentParser(
        description="Run a command against a fresh sqsrelay server (SQSRELAY_ENDPOINT is set).")
    parser.add_argument("--in-memory", action="store_true")
    parser.add_argument("--account-id")
    parser.add_argument("--region")
    parser.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        parser.error("missing command after --")
    server = SqsRelayServer(in_memory=args.in_memory, account_id=args.account_id,
                            region=args.region)
    try:
        server.start()
    except ServerError as e:
        print(f"sqsrelay_server: {e}", file=sys.stderr)
        return 1
    env = dict(os.environ, SQSRELAY_ENDPOINT=server.endpoint,
               SQSRELAY_ACCOUNT_ID=server.account_id, SQSRELAY_REGION=server.region)
    child = subprocess.Popen(cmd, env=env)
    forwarded = {}

    def forward(sig, _frame):
        forwarded[sig] = True
        child.send_signal(sig)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    try:
        code = child.wait()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        server_code = server.stop()
        server.cleanup()
    if server_code not in (0, None):
        print(f"sqsrelay_server: server exited with {server_code}; its log:\n{server.log()}",
              file=sys.stderr)
        return code or 1
    if code != 0 and os.environ.get("SQSRELAY_SHOW_SERVER_LOG", "1") == "1":
        tail = server.log().splitlines()[-40:]
        print("sqsrelay_server: last server log lines:\n" + "\n".join(tail), file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
