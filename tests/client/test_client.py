#!/usr/bin/env python3
"""The SQS client end to end, through `sqsrelay queue` and `sqsrelay receive`, against real
servers: the embedded server (`sqsrelay serve`, plain and TLS, with and without SigV4
credentials, with injected faults) and moto_server, an independent SQS implementation.
Credentials come from every provider the chain has: environment, profile files, and a fake
container-credentials endpoint served by this test on loopback.

Run: SQSRELAY_BIN=build/release/src/app/sqsrelay python3 tests/client/test_client.py
"""

import http.client
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "interop"))
from sqsrelay_server import SqsRelayServer, binary_path  # noqa: E402

import boto3  # noqa: E402
import re  # noqa: E402

# The ingest listener's default port may be taken on a shared machine; these tests don't use it.
NO_INGEST = ["--ingest-listen", "off"]
_TLS_ENDPOINT_RE = re.compile(r"SQS endpoint (https?://[0-9.]+:(\d+))")


class TlsServer(SqsRelayServer):
    """sqsrelay_server.SqsRelayServer that also recognises an https:// endpoint line."""

    def _read_output(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace")
            with self._log_lock:
                self._log.append(line)
            if not self._endpoint_seen.is_set():
                m = _TLS_ENDPOINT_RE.search(line)
                if m:
                    self.endpoint = m.group(1)
                    self.port = int(m.group(2))
                    self._endpoint_seen.set()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(tmp):
    """A hermetic environment: no AWS settings from the machine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.path.join(tmp, "no-credentials")
    env["AWS_CONFIG_FILE"] = os.path.join(tmp, "no-config")
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    return env


def start_container_creds(tmp):
    """Serves _ContainerCreds on loopback; returns the server and an environment (base_env)
    pointing the container credentials provider at it, with its authorization token."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ContainerCreds)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    env = base_env(tmp)
    env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = f"http://127.0.0.1:{httpd.server_address[1]}/creds"
    env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = _ContainerCreds.token
    return httpd, env


def sqsrelay(args, env, timeout=60):
    return subprocess.run([binary_path()] + args, env=env, capture_output=True, text=True,
                          timeout=timeout)


def boto(endpoint, key="AKIDTEST", secret="secret", **kw):
    return boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=key, aws_secret_access_key=secret, **kw)


class EmbeddedServer(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sqsrelay-client-")
        cls.server = SqsRelayServer(in_memory=True, extra_args=NO_INGEST).start()
        cls.endpoint = cls.server.endpoint

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def run_ok(self, args, env=None):
        r = sqsrelay(args, env or base_env(self.tmp))
        self.assertEqual(r.returncode, 0, f"{args}: {r.stderr}")
        return r.stdout

    def test_queue_commands_lifecycle(self):
        ep = ["--endpoint-url", self.endpoint]
        url = self.run_ok(["queue", "create", "lifecycle", "--attr", "VisibilityTimeout=42",
                           "--attr", "MaximumMessageSize=4096", "--tag", "team=core"] + ep).strip()
        self.assertEqual(url, self.server.queue_url("lifecycle"))
        self.assertIn(url, self.run_ok(["queue", "list", "--prefix", "life"] + ep).split())
        self.assertEqual(self.run_ok(["queue", "url", "lifecycle"] + ep).strip(), url)
        attrs = json.loads(self.run_ok(["queue", "attrs", "lifecycle"] + ep))
        self.assertEqual(attrs["VisibilityTimeout"], "42")
        self.assertEqual(attrs["MaximumMessageSize"], "4096")
        self.run_ok(["queue", "set", url, "--attr", "VisibilityTimeout=7"])  # URL: no endpoint flag
        one = json.loads(self.run_ok(["queue", "attrs", url, "--name", "VisibilityTimeout"]))
        self.assertEqual(one, {"VisibilityTimeout": "7"})
        boto(self.endpoint).send_message(QueueUrl=url, MessageBody="x")
        self.run_ok(["queue", "purge", "lifecycle"] + ep)
        attrs = json.loads(self.run_ok(["queue", "attrs", "lifecycle"] + ep))
        self.assertEqual(attrs["ApproximateNumberOfMessages"], "0")
        self.run_ok(["queue", "delete", "lifecycle"] + ep)
        self.assertNotIn(url, self.run_ok(["queue", "list"] + ep).split())

    def test_repeatable_flags_before_the_positional_queue_take_one_value_each(self):
        ep = ["--endpoint-url", self.endpoint]
        url = self.run_ok(["queue", "create", "--attr", "VisibilityTimeout=5", "--tag", "t=1",
                           "--attr", "DelaySeconds=1", "flags-first"] + ep).strip()
        self.assertEqual(url, self.server.queue_url("flags-first"))
        self.run_ok(["queue", "set", "--attr", "VisibilityTimeout=9", url])
        one = json.loads(self.run_ok(["queue", "attrs", "--name", "VisibilityTimeout",
                                      "--name", "DelaySeconds", url]))
        self.assertEqual(one, {"VisibilityTimeout": "9", "DelaySeconds": "1"})
        self.run_ok(["queue", "delete", url])

    def test_usage_errors_exit_2_and_help_exits_0(self):
        env = base_env(self.tmp)
        for args in (["receive", "--queue", "q", "--wait", "30"],  # out of range
                     ["send"],                                    # --queue missing
                     ["queue", "list", "--no-such-flag"],
                     ["--log-level", "bogus", "queue", "list"],
                     []):                                         # no subcommand
            r = sqsrelay(args, env)
            self.assertEqual(r.returncode, 2, f"{args}: {r.stderr}")
            self.assertTrue(r.stderr.strip(), args)
        for args in (["--help"], ["send", "--help"], ["queue", "create", "--help"]):
            r = sqsrelay(args, env)
            self.assertEqual(r.returncode, 0, f"{args}: {r.stderr}")
            self.assertIn("Usage", r.stdout)

    def test_errors_and_exit_codes(self):
        ep = ["--endpoint-url", self.endpoint]
        r = sqsrelay(["queue", "attrs", "does-not-exist"] + ep, base_env(self.tmp))
        self.assertEqual(r.returncode, 1)
        self.assertIn("QueueDoesNotExist", r.stderr)
        self.assertIn(self.endpoint, r.stderr)
        r = sqsrelay(["queue", "create", "bad", "--attr", "novalue"] + ep, base_env(self.tmp))
        self.assertEqual(r.returncode, 2)
        self.assertIn("KEY=VALUE", r.stderr)
        r = sqsrelay(["queue", "list", "--endpoint-url", "ftp://x"], base_env(self.tmp))
        self.assertEqual(r.returncode, 2)
        self.assertIn("--endpoint-url", r.stderr)
        port = free_port()  # nothing listens there
        r = sqsrelay(["queue", "list", "--endpoint-url", f"http://127.0.0.1:{port}"],
                     base_env(self.tmp))
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"127.0.0.1:{port}", r.stderr)

    def test_a_queue_url_of_any_path_gives_the_endpoint(self):
        # http://HOST:PORT/NAME (no account segment) is a URL: its host is the endpoint too.
        boto(self.endpoint).create_queue(QueueName="oneseg")
        short = f"{self.endpoint}/oneseg"
        attrs = json.loads(self.run_ok(["queue", "attrs", short]))
        self.assertIn("QueueArn", attrs)
        r = subprocess.run([binary_path(), "send", "--queue", short, "--no-progress",
                            "--drain-timeout", "20"], input="x\n", env=base_env(self.tmp),
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = self.run_ok(["receive", "--queue", short, "--max", "1"])
        self.assertEqual(json.loads(out)["Body"], "x")
        for no_name in (self.endpoint, self.endpoint + "/"):
            r = sqsrelay(["queue", "attrs", no_name], base_env(self.tmp))
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("names no queue", r.stderr)

    def test_ignore_configured_endpoint_urls_in_the_config_file(self):
        boto(self.endpoint).create_queue(QueueName="ignorecfg")
        url = self.server.queue_url("ignorecfg")
        config = os.path.join(self.tmp, "config-ignore")
        dead = free_port()
        with open(config, "w") as f:  # a configured endpoint where nothing listens
            f.write(f"[default]\nignore_configured_endpoint_urls = true\n"
                    f"endpoint_url = http://127.0.0.1:{dead}\n")
        env = base_env(self.tmp)
        env["AWS_CONFIG_FILE"] = config
        self.run_ok(["queue", "attrs", url], env)  # the queue URL's endpoint, not the file's
        env["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"] = "false"  # the environment wins
        r = sqsrelay(["queue", "attrs", url, "--read-timeout", "2", "--connect-timeout", "2"],
                     env)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(f"127.0.0.1:{dead}", r.stderr)

    def test_receive_prints_ndjson_and_deletes(self):
        c = boto(self.endpoint)
        url = c.create_queue(QueueName="recv")["QueueUrl"]
        sent = {}
        for i in range(23):
            body = json.dumps({"n": i, "text": "héllo \"quoted\"\n"})
            r = c.send_message(QueueUrl=url, MessageBody=body, MessageAttributes={
                "kind": {"DataType": "String", "StringValue": f"k{i}"},
                "raw": {"DataType": "Binary", "BinaryValue": bytes([0, i, 255])}})
            sent[r["MessageId"]] = body
        env = base_env(self.tmp)
        env["AWS_ENDPOINT_URL_SQS"] = self.endpoint  # endpoint from the environment
        out = self.run_ok(["receive", "--queue", "recv", "--max", "0", "--delete",
                           "--visibility", "60"], env)
        lines = [json.loads(l) for l in out.splitlines()]
        self.assertEqual(len(lines), 23)
        for m in lines:
            self.assertEqual(sent[m["MessageId"]], m["Body"])
            self.assertTrue(m["ReceiptHandle"])
            self.assertIn("SentTimestamp", m["Attributes"])
            n = json.loads(m["Body"])["n"]
            self.assertEqual(m["MessageAttributes"]["kind"],
                             {"DataType": "String", "StringValue": f"k{n}"})
            self.assertEqual(m["MessageAttributes"]["raw"]["DataType"], "Binary")
        attrs = c.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        self.assertEqual(attrs["ApproximateNumberOfMessages"], "0")
        self.assertEqual(attrs["ApproximateNumberOfMessagesNotVisible"], "0")

    def test_receive_without_delete_leaves_messages_in_flight(self):
        c = boto(self.endpoint)
        url = c.create_queue(QueueName="peek")["QueueUrl"]
        for i in range(3):
            c.send_message(QueueUrl=url, MessageBody=f"m{i}")
        out = self.run_ok(["receive", "--queue", url, "--max", "2"])  # endpoint from the URL
        self.assertEqual(len(out.splitlines()), 2)
        attrs = c.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        self.assertEqual(attrs["ApproximateNumberOfMessagesNotVisible"], "2")
        # An empty queue with a long poll ends after the wait, printing nothing.
        c.purge_queue(QueueUrl=url)
        start = time.monotonic()
        out = self.run_ok(["receive", "--queue", url, "--wait", "1"])
        self.assertEqual(out, "")
        self.assertGreaterEqual(time.monotonic() - start, 0.9)


class _ContainerCreds(http.server.BaseHTTPRequestHandler):
    token = "container-token"
    creds = {}
    hits = 0

    def do_GET(self):  # noqa: N802
        type(self).hits += 1
        if self.headers.get("Authorization") != self.token or self.path != "/creds":
            self.send_response(403)
            self.end_headers()
            return
        body = json.dumps(self.creds).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


class _PathLoggingProxy(http.server.BaseHTTPRequestHandler):
    """Forwards each POST unchanged to `upstream` and records the path it was sent to."""
    upstream = None
    paths = []

    def do_POST(self):  # noqa: N802
        type(self).paths.append(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        conn = http.client.HTTPConnection(*self.upstream, timeout=10)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
        conn.request("POST", self.path, body=body, headers=headers)
        res = conn.getresponse()
        data = res.read()
        self.send_response(res.status)
        for k, v in res.getheaders():
            if k.lower() not in ("connection", "transfer-encoding", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        conn.close()

    def log_message(self, *a):
        pass


class SignedServer(unittest.TestCase):
    """The embedded server with SigV4 credentials: the client must sign correctly, with
    credentials from each provider."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sqsrelay-client-")
        cls.server = SqsRelayServer(in_memory=True,
                                    credentials=[("AKIDSIGNED", "signed-secret"),
                                                 ("ASIATEMP", "temp-secret")],
                                    extra_args=NO_INGEST).start()
        boto(cls.server.endpoint, "AKIDSIGNED", "signed-secret").create_queue(QueueName="signed")

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def list_with(self, env, extra=()):
        return sqsrelay(["queue", "list", "--endpoint-url", self.server.endpoint] + list(extra),
                        env)

    def test_environment_credentials(self):
        env = base_env(self.tmp)
        env.update(AWS_ACCESS_KEY_ID="AKIDSIGNED", AWS_SECRET_ACCESS_KEY="signed-secret")
        r = self.list_with(env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("/signed", r.stdout)
        env["AWS_SECRET_ACCESS_KEY"] = "wrong"
        r = self.list_with(env)
        self.assertEqual(r.returncode, 1)
        self.assertIn("SignatureDoesNotMatch", r.stderr)
        self.assertNotIn("wrong", r.stderr.replace("SignatureDoesNotMatch", ""))

    def test_placeholder_credentials_are_refused_by_a_server_with_keys(self):
        r = self.list_with(base_env(self.tmp))
        self.assertEqual(r.returncode, 1)
        self.assertIn("InvalidClientTokenId", r.stderr)

    def test_profile_credentials(self):
        creds = os.path.join(self.tmp, "credentials")
        with open(creds, "w") as f:
            f.write("[default]\naws_access_key_id = nope\naws_secret_access_key = nope\n"
                    "[relay]\naws_access_key_id = AKIDSIGNED\n"
                    "aws_secret_access_key = signed-secret\n")
        env = base_env(self.tmp)
        env["AWS_SHARED_CREDENTIALS_FILE"] = creds
        env["AWS_PROFILE"] = "relay"
        r = self.list_with(env)
        self.assertEqual(r.returncode, 0, r.stderr)
        del env["AWS_PROFILE"]
        r = self.list_with(env, ["--profile", "relay"])
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_an_endpoint_path_is_requested_and_signed(self):
        # Through a proxy that keeps the path: the server verifies the signature over the path
        # it receives, so a path sent but not signed (or the reverse) fails.
        _PathLoggingProxy.upstream = ("127.0.0.1", self.server.port)
        _PathLoggingProxy.paths = []
        proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PathLoggingProxy)
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        try:
            env = base_env(self.tmp)
            env.update(AWS_ACCESS_KEY_ID="AKIDSIGNED", AWS_SECRET_ACCESS_KEY="signed-secret")
            base = f"http://127.0.0.1:{proxy.server_address[1]}"
            r = sqsrelay(["queue", "url", "signed", "--endpoint-url", base + "/sub/path"], env)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(_PathLoggingProxy.paths, ["/sub/path"])
            env["AWS_ENDPOINT_URL_SQS"] = base + "/sub/path/"  # kept as written: no "//"
            r = sqsrelay(["queue", "attrs", "signed"], env)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(set(_PathLoggingProxy.paths[1:]), {"/sub/path/"})
        finally:
            proxy.shutdown()
            proxy.server_close()

    def test_a_named_profile_that_does_not_exist_is_a_setup_error(self):
        _ContainerCreds.creds = {"AccessKeyId": "AKIDSIGNED", "SecretAccessKey": "signed-secret"}
        httpd, env = start_container_creds(self.tmp)
        try:
            self.assertEqual(self.list_with(env).returncode, 0)  # implicit default: container
            before = _ContainerCreds.hits
            ep = ["--endpoint-url", self.server.endpoint]
            typo_env = dict(env, AWS_PROFILE="typo")
            for args, e in ((["queue", "list", "--profile", "typo"] + ep, env),
                            (["queue", "list"] + ep, typo_env),
                            (["receive", "--queue", "signed"] + ep, typo_env),
                            (["send", "--queue", "signed", "--no-progress"] + ep, typo_env)):
                r = subprocess.run([binary_path()] + args, input="x\n", env=e,
                                   capture_output=True, text=True, timeout=60)
                self.assertEqual(r.returncode, 2, f"{args}: {r.stderr}")
                self.assertIn("the config profile (typo) could not be found", r.stderr)
            self.assertEqual(_ContainerCreds.hits, before)  # never fell through
        finally:
            httpd.shutdown()
            httpd.server_close()

    def test_short_lived_container_credentials_are_not_refetched_per_call(self):
        # Credentials expiring in 2 minutes are inside the 5-minute refresh window from the
        # start: they are refreshed at most every 30 s, not on every call.
        _ContainerCreds.creds = {"AccessKeyId": "AKIDSIGNED", "SecretAccessKey": "signed-secret",
                                 "Expiration": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                             time.gmtime(time.time() + 120))}
        httpd, env = start_container_creds(self.tmp)
        try:
            before = _ContainerCreds.hits
            lines = "".join(f"m{i}\n" for i in range(3000))
            start = time.monotonic()
            r = subprocess.run([binary_path(), "send", "--queue", "signed", "--no-progress",
                                "--endpoint-url", self.server.endpoint], input=lines, env=env,
                               capture_output=True, text=True, timeout=120)
            elapsed = time.monotonic() - start
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertLessEqual(_ContainerCreds.hits - before, 1 + int(elapsed // 30),
                                 f"{elapsed:.1f} s")
        finally:
            httpd.shutdown()
            httpd.server_close()

    def test_container_credentials_with_session_token(self):
        # The server knows ASIATEMP without a token requirement; the client still sends the
        # session token it got, signed, which the server accepts.
        _ContainerCreds.creds = {"AccessKeyId": "ASIATEMP", "SecretAccessKey": "temp-secret",
                                 "Token": "session-token",
                                 "Expiration": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                             time.gmtime(time.time() + 3600))}
        httpd, env = start_container_creds(self.tmp)
        try:
            before = _ContainerCreds.hits
            r = self.list_with(env)
            self.assertEqual(_ContainerCreds.hits, before + 1)
            # Either accepted (server ignores tokens) or refused for the token: never a
            # signature mismatch, which would mean we signed wrongly.
            self.assertNotIn("SignatureDoesNotMatch", r.stderr)
            if r.returncode == 0:
                self.assertIn("/signed", r.stdout)
            env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = "bad"
            r = self.list_with(env)
            self.assertEqual(r.returncode, 1)
            self.assertIn("container", r.stderr)
            self.assertIn("403", r.stderr)
        finally:
            httpd.shutdown()
            httpd.server_close()


class FaultInjection(unittest.TestCase):
    def test_throttling_is_reported_with_its_code(self):
        tmp = tempfile.mkdtemp(prefix="sqsrelay-client-")
        server = SqsRelayServer(in_memory=True, extra_args=NO_INGEST + ["--fault", "throttle=1.0"]).start()
        try:
            r = sqsrelay(["queue", "list", "--endpoint-url", server.endpoint], base_env(tmp))
            self.assertEqual(r.returncode, 1)
            self.assertIn("RequestThrottled", r.stderr)
        finally:
            server.cleanup()
            shutil.rmtree(tmp, ignore_errors=True)

    def test_commands_retry_throttling_and_5xx(self):
        # Like the SDKs, receive and queue retry a failed call (4 attempts, jittered backoff):
        # with a third of all calls failing, every message is printed once and deleted.
        tmp = tempfile.mkdtemp(prefix="sqsrelay-client-")
        server = SqsRelayServer(in_memory=True, extra_args=NO_INGEST + [
            "--fault", "queue=flaky,throttle=0.15,error5xx=0.2,seed=3"]).start()
        try:
            env = base_env(tmp)
            ep = ["--endpoint-url", server.endpoint]
            c = boto(server.endpoint)
            url = c.create_queue(QueueName="flaky")["QueueUrl"]
            # boto3 retries too (its standard mode), so the setup gets through.
            for i in range(0, 40, 10):
                c.send_message_batch(QueueUrl=url, Entries=[
                    {"Id": str(j), "MessageBody": f"m{i + j}"} for j in range(10)])
            r = sqsrelay(["queue", "attrs", "flaky"] + ep, env)
            self.assertEqual(r.returncode, 0, r.stderr)
            r = sqsrelay(["receive", "--queue", "flaky", "--max", "0", "--delete"] + ep, env)
            self.assertEqual(r.returncode, 0, r.stderr)
            bodies = sorted(json.loads(l)["Body"] for l in r.stdout.splitlines())
            self.assertEqual(bodies, sorted(f"m{i}" for i in range(40)))
            attrs = c.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            self.assertEqual(attrs["ApproximateNumberOfMessages"], "0")
            self.assertEqual(attrs["ApproximateNumberOfMessagesNotVisible"], "0")
        finally:
            server.cleanup()
            shutil.rmtree(tmp, ignore_errors=True)


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True)


def make_pki(d):
    """A CA, a server certificate for 127.0.0.1/localhost signed by it, and one for another
    host name signed by it too."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.pem", "-days", "2", "-subj", "/CN=sqsrelay test CA", cwd=d)
    for name, san in (("good", "IP:127.0.0.1,DNS:localhost"), ("wrong", "DNS:wrong.example")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
                f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
        with open(os.path.join(d, f"{name}.ext"), "w") as f:
            f.write(f"subjectAltName={san}\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile",
                f"{name}.ext", cwd=d)


class Tls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sqsrelay-client-tls-")
        make_pki(cls.tmp)
        p = lambda n: os.path.join(cls.tmp, n)  # noqa: E731
        cls.good = TlsServer(in_memory=True, extra_args=NO_INGEST + ["--tls-cert", p("good.pem"),
                                                          "--tls-key", p("good.key")]).start()
        cls.wrong = TlsServer(in_memory=True, extra_args=NO_INGEST + ["--tls-cert", p("wrong.pem"),
                                                           "--tls-key", p("wrong.key")]).start()
        cls.ca = p("ca.pem")

    @classmethod
    def tearDownClass(cls):
        cls.good.cleanup()
        cls.wrong.cleanup()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_trusted_ca_works(self):
        self.assertTrue(self.good.endpoint.startswith("https://"), self.good.endpoint)
        env = base_env(self.tmp)
        r = sqsrelay(["queue", "create", "tls-q", "--endpoint-url", self.good.endpoint,
                      "--ca-bundle", self.ca], env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.strip().endswith("/tls-q"))
        env["AWS_CA_BUNDLE"] = self.ca  # the same through the environment
        r = sqsrelay(["queue", "list", "--endpoint-url", self.good.endpoint], env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("/tls-q", r.stdout)
        localhost = self.good.endpoint.replace("127.0.0.1", "localhost")  # DNS name + SNI
        r = sqsrelay(["queue", "list", "--endpoint-url", localhost], env)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_send_trusts_the_ca_bundle_of_the_environment_and_config_file(self):
        env = base_env(self.tmp)
        r = sqsrelay(["queue", "create", "tls-send", "--endpoint-url", self.good.endpoint,
                      "--ca-bundle", self.ca], env)
        self.assertEqual(r.returncode, 0, r.stderr)
        url = r.stdout.strip()
        send = [binary_path(), "send", "--queue", url, "--no-progress", "-"]
        env["AWS_CA_BUNDLE"] = self.ca  # the endpoint comes from the queue URL
        r = subprocess.run(send, env=env, input="a\n", capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        env = base_env(self.tmp)
        with open(env["AWS_CONFIG_FILE"] + "-ca", "w") as f:
            f.write(f"[default]\nca_bundle = {self.ca}\n")
        env["AWS_CONFIG_FILE"] += "-ca"
        r = subprocess.run(send, env=env, input="b\n", capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = sqsrelay(["receive", "--queue", url, "--max", "0", "--delete", "--ca-bundle",
                      self.ca], base_env(self.tmp))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sorted(json.loads(x)["Body"] for x in r.stdout.splitlines()),
                         ["a", "b"])

    def test_untrusted_certificate_fails_clearly(self):
        r = sqsrelay(["queue", "list", "--endpoint-url", self.good.endpoint], base_env(self.tmp))
        self.assertEqual(r.returncode, 1)
        self.assertIn("certificate verification failed", r.stderr)
        self.assertIn(f"127.0.0.1:{self.good.port}", r.stderr)
        self.assertTrue("self-signed" in r.stderr or "local issuer" in r.stderr, r.stderr)

    def test_host_name_mismatch_fails(self):
        r = sqsrelay(["queue", "list", "--endpoint-url", self.wrong.endpoint,
                      "--ca-bundle", self.ca], base_env(self.tmp))
        self.assertEqual(r.returncode, 1)
        self.assertIn("certificate verification failed", r.stderr)
        self.assertIn("mismatch", r.stderr)

    def test_no_verify_ssl_skips_verification(self):
        r = sqsrelay(["queue", "list", "--endpoint-url", self.wrong.endpoint, "--no-verify-ssl"],
                     base_env(self.tmp))
        self.assertEqual(r.returncode, 0, r.stderr)


class Moto(unittest.TestCase):
    """Cross-check against moto_server, an SQS implementation that shares no code with us."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sqsrelay-client-moto-")
        moto = shutil.which("moto_server")
        if not moto:
            raise unittest.SkipTest("moto_server not installed")
        cls.port = free_port()
        cls.proc = subprocess.Popen([moto, "-p", str(cls.port)], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        cls.endpoint = f"http://127.0.0.1:{cls.port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", cls.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        cls.proc.kill()
        raise RuntimeError("moto_server did not start")

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        cls.proc.wait(10)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_queue_and_receive_against_moto(self):
        env = base_env(self.tmp)
        env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
        ep = ["--endpoint-url", self.endpoint]
        r = sqsrelay(["queue", "create", "moto-q", "--attr", "VisibilityTimeout=33"] + ep, env)
        self.assertEqual(r.returncode, 0, r.stderr)
        url = r.stdout.strip()
        self.assertTrue(url.endswith("/moto-q"), url)
        r = sqsrelay(["queue", "attrs", "moto-q"] + ep, env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["VisibilityTimeout"], "33")
        c = boto(self.endpoint, "testing", "testing")
        for i in range(12):
            c.send_message(QueueUrl=url, MessageBody=f"moto {i}", MessageAttributes={
                "i": {"DataType": "Number", "StringValue": str(i)}})
        r = sqsrelay(["receive", "--queue", "moto-q", "--max", "0", "--delete"] + ep, env)
        self.assertEqual(r.returncode, 0, r.stderr)
        got = sorted(json.loads(l)["Body"] for l in r.stdout.splitlines())
        self.assertEqual(got, sorted(f"moto {i}" for i in range(12)))
        r = sqsrelay(["queue", "list"] + ep, env)
        self.assertIn(url, r.stdout.split())
        r = sqsrelay(["queue", "attrs", "missing-q"] + ep, env)
        self.assertEqual(r.returncode, 1)
        self.assertIn("QueueDoesNotExist", r.stderr)
        r = sqsrelay(["queue", "delete", url], env)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_send_to_a_fifo_queue_keeps_each_group_in_order(self):
        """moto has FIFO queues (the embedded server has none yet): `send` with a group field
        delivers every message once, each group in input order."""
        env = base_env(self.tmp)
        env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
        ep = ["--endpoint-url", self.endpoint]
        r = sqsrelay(["queue", "create", "orders.fifo", "--attr", "FifoQueue=true",
                      "--attr", "ContentBasedDeduplication=true"] + ep, env)
        self.assertEqual(r.returncode, 0, r.stderr)
        url = r.stdout.strip()
        lines = [json.dumps({"g": f"dev{i % 3}", "n": i}) for i in range(90)]
        r = subprocess.run([binary_path(), "send", "--queue", url, "--group-field", "$.g",
                            "--no-progress"] + ep, env=env, input="\n".join(lines) + "\n",
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        c = boto(self.endpoint, "testing", "testing")
        got = {}
        for _ in range(100):
            resp = c.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                     AttributeNames=["MessageGroupId"])
            msgs = resp.get("Messages", [])
            if not msgs:
                break
            for m in msgs:
                body = json.loads(m["Body"])
                self.assertEqual(m["Attributes"]["MessageGroupId"], body["g"])
                got.setdefault(body["g"], []).append(body["n"])
            c.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)])
        self.assertEqual(got, {f"dev{g}": list(range(g, 90, 3)) for g in range(3)})


if __name__ == "__main__":
    unittest.main(verbosity=2)
