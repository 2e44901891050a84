#!/usr/bin/env python3
"""The AWS CLI, unchanged, against a real `sqsrelay serve` process.

The same scenarios run with two CLIs that speak different wire protocols:
  * AWS CLI v1 (pip, botocore 1.43)    -> AWS JSON 1.0
  * Debian's AWS CLI v2.9 (/usr/bin/aws) -> AWS Query (form POST, XML replies)
Each call is a subprocess with `--output json`, an isolated config and dummy credentials.
Override the executables with SQSRELAY_AWSCLI_V1 / SQSRELAY_AWSCLI_V2.
"""

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from interop_common import (DUMMY_AKID, DUMMY_SECRET, md5_hex, md5_of_attributes,  # noqa: E402
                            unique_name)
from sqsrelay_server import SqsRelayServer  # noqa: E402

SERVER = None
WORKDIR = None
NOT_FOUND_CODES = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")


def setUpModule():
    global SERVER, WORKDIR
    WORKDIR = tempfile.mkdtemp(prefix="sqsrelay-cli-")
    SERVER = SqsRelayServer().start()


def tearDownModule():
    if SERVER:
        SERVER.cleanup()
    if WORKDIR:
        shutil.rmtree(WORKDIR, ignore_errors=True)


@functools.lru_cache(maxsize=None)
def _version(exe):
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60,
                             env=_env(DUMMY_AKID, DUMMY_SECRET))
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (out.stdout + out.stderr).strip()


@functools.lru_cache(maxsize=None)
def find_cli_v1():
    explicit = os.environ.get("SQSRELAY_AWSCLI_V1")
    if explicit:
        return explicit
    # The pip CLI lives next to the interpreter that runs this suite (pyenv or venv), which
    # avoids the pyenv shim and its dependence on $HOME.
    candidates = [os.path.join(os.path.dirname(sys.executable), "aws"), shutil.which("aws")]
    for c in candidates:
        if c and os.access(c, os.X_OK) and _version(c).startswith("aws-cli/1."):
            return c
    return None


@functools.lru_cache(maxsize=None)
def find_cli_v2():
    explicit = os.environ.get("SQSRELAY_AWSCLI_V2")
    if explicit:
        return explicit
    c = "/usr/bin/aws"
    return c if os.access(c, os.X_OK) and _version(c).startswith("aws-cli/2.") else None


def _env(akid, secret):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    cfg = os.path.join(WORKDIR or tempfile.gettempdir(), "aws-config")
    creds = os.path.join(WORKDIR or tempfile.gettempdir(), "aws-credentials")
    for path in (cfg, creds):
        if not os.path.exists(path):
            open(path, "w").close()
    env.update({
        "AWS_ACCESS_KEY_ID": akid, "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": cfg, "AWS_SHARED_CREDENTIALS_FILE": creds,
        "AWS_PAGER": "", "AWS_EC2_METADATA_DISABLED": "true", "AWS_CLI_AUTO_PROMPT": "off",
        "AWS_MAX_ATTEMPTS": "1", "AWS_RETRY_MODE": "standard",
    })
    return env


class CliResult:
    def __init__(self, proc):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr

    def json(self):
        return json.loads(self.stdout) if self.stdout.strip() else {}


class CliScenarios:
    """Scenarios shared by both CLIs; subclasses set `exe_finder` and `protocol`."""

    exe_finder = None
    protocol = None
    akid, secret = DUMMY_AKID, DUMMY_SECRET

    @classmethod
    def setUpClass(cls):
        cls.exe = cls.exe_finder()
        if not cls.exe:
            raise AssertionError(f"{cls.__name__}: the CLI for the {cls.protocol} protocol is "
                                 "not installed (see SQSRELAY_AWSCLI_V1/V2)")
        cls.server = SERVER
        cls.endpoint = SERVER.endpoint

    def aws(self, *args, check=True):
        cmd = [self.exe, "--endpoint-url", self.endpoint, "--output", "json", "sqs"] + [
            str(a) for a in args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                              env=_env(self.akid, self.secret))
        r = CliResult(proc)
        if check:
            self.assertEqual(r.rc, 0, f"{' '.join(cmd[4:])}\nstdout: {r.stdout}\n"
                                      f"stderr: {r.stderr}")
        return r

    def aws_json(self, *args):
        return self.aws(*args).json()

    def assertCliError(self, codes, *args):
        r = self.aws(*args, check=False)
        self.assertNotEqual(r.rc, 0, f"expected a failure: {r.stdout}")
        codes = (codes,) if isinstance(codes, str) else codes
        self.assertTrue(any(f"({c})" in r.stderr for c in codes),
                        f"expected one of {codes} in stderr: {r.stderr}")
        return r

    def write(self, name, obj):
        path = os.path.join(WORKDIR, f"{unique_name(name)}.json")
        with open(path, "w") as f:
            json.dump(obj, f)
        return "file://" + path

    def create(self, prefix, *extra):
        name = unique_name(f"cli{self.protocol}-{prefix}")
        url = self.aws_json("create-queue", "--queue-name", name, *extra)["QueueUrl"]
        return name, url

    def receive_all(self, url, count, *extra, timeout=15):
        got, deadline = [], time.monotonic() + timeout
        while len(got) < count and time.monotonic() < deadline:
            out = self.aws_json("receive-message", "--queue-url", url,
                                "--max-number-of-messages", min(10, count - len(got)),
                                "--wait-time-seconds", 1, *extra)
            got.extend(out.get("Messages", []))
        return got

    # -- scenarios ---------------------------------------------------------------------------

    def test_queue_lifecycle(self):
        name, url = self.create("life", "--attributes", "VisibilityTimeout=5,DelaySeconds=0")
        self.assertEqual(url, self.server.queue_url(name))
        self.assertEqual(self.aws_json("get-queue-url", "--queue-name", name)["QueueUrl"], url)
        listed = self.aws_json("list-queues", "--queue-name-prefix", name)
        self.assertEqual(listed.get("QueueUrls"), [url])
        attrs = self.aws_json("get-queue-attributes", "--queue-url", url,
                              "--attribute-names", "All")["Attributes"]
        self.assertEqual(attrs["VisibilityTimeout"], "5")
        self.assertEqual(attrs["MaximumMessageSize"], "1048576")
        self.assertEqual(attrs["QueueArn"], self.server.queue_arn(name))
        self.aws("set-queue-attributes", "--queue-url", url, "--attributes",
                 "VisibilityTimeout=17,MessageRetentionPeriod=7200")
        attrs = self.aws_json("get-queue-attributes", "--queue-url", url, "--attribute-names",
                              "VisibilityTimeout", "MessageRetentionPeriod")["Attributes"]
        self.assertEqual(attrs, {"VisibilityTimeout": "17", "MessageRetentionPeriod": "7200"})
        self.assertCliError("QueueAlreadyExists", "create-queue", "--queue-name", name,
                            "--attributes", "VisibilityTimeout=99")
        self.aws("delete-queue", "--queue-url", url)
        self.assertCliError(NOT_FOUND_CODES, "send-message", "--queue-url", url,
                            "--message-body", "x")

    def test_tags(self):
        _, url = self.create("tags", "--tags", "team=core,env=test")
        self.assertEqual(self.aws_json("list-queue-tags", "--queue-url", url)["Tags"],
                         {"team": "core", "env": "test"})
        self.aws("tag-queue", "--queue-url", url, "--tags", "team=edge,extra=1")
        self.assertEqual(self.aws_json("list-queue-tags", "--queue-url", url)["Tags"],
                         {"team": "edge", "env": "test", "extra": "1"})
        self.aws("untag-queue", "--queue-url", url, "--tag-keys", "env", "extra")
        self.assertEqual(self.aws_json("list-queue-tags", "--queue-url", url)["Tags"],
                         {"team": "edge"})

    def test_messages(self):
        _, url = self.create("msg")
        attrs = {"s": {"DataType": "String", "StringValue": "hello wörld"},
                 "n": {"DataType": "Number", "StringValue": "42"},
                 "f": {"DataType": "Number.float", "StringValue": "2.5"}}
        body = 'single "quoted" <body> & more'
        sent = self.aws_json("send-message", "--queue-url", url, "--message-body", body,
                             "--message-attributes", json.dumps(attrs))
        self.assertEqual(sent["MD5OfMessageBody"], md5_hex(body))
        self.assertEqual(sent["MD5OfMessageAttributes"], md5_of_attributes(attrs))
        entries = [{"Id": f"e{i}", "MessageBody": f"batch {i}"} for i in range(3)]
        batch = self.aws_json("send-message-batch", "--queue-url", url, "--entries",
                              self.write("entries", entries))
        self.assertEqual(sorted(e["Id"] for e in batch["Successful"]), ["e0", "e1", "e2"])
        self.assertEqual(batch.get("Failed", []), [])
        for e in batch["Successful"]:
            self.assertEqual(e["MD5OfMessageBody"], md5_hex(f"batch {e['Id'][1:]}"))

        got = self.receive_all(url, 4, "--attribute-names", "All",
                               "--message-attribute-names", "All")
        self.assertEqual(sorted(m["Body"] for m in got),
                         sorted([body] + [f"batch {i}" for i in range(3)]))
        by_body = {m["Body"]: m for m in got}
        single = by_body[body]
        self.assertEqual(single["MessageId"], sent["MessageId"])
        self.assertEqual(single["MessageAttributes"], attrs)
        self.assertEqual(single["MD5OfMessageAttributes"], md5_of_attributes(attrs))
        self.assertEqual(single["Attributes"]["ApproximateReceiveCount"], "1")
        for k in ("SentTimestamp", "ApproximateFirstReceiveTimestamp", "SenderId"):
            self.assertIn(k, single["Attributes"])
        for m in got:
            self.assertEqual(m["MD5OfBody"], md5_hex(m["Body"]))

        # Visibility: make two visible again, one with each action.
        b0, b1, b2 = (by_body[f"batch {i}"] for i in range(3))
        self.aws("change-message-visibility", "--queue-url", url, "--receipt-handle",
                 b0["ReceiptHandle"], "--visibility-timeout", 0)
        cmv = self.aws_json("change-message-visibility-batch", "--queue-url", url, "--entries",
                            self.write("cmv", [{"Id": "c1", "ReceiptHandle": b1["ReceiptHandle"],
                                                "VisibilityTimeout": 0}]))
        self.assertEqual([e["Id"] for e in cmv["Successful"]], ["c1"])
        again = self.receive_all(url, 2)
        self.assertEqual(sorted(m["Body"] for m in again), ["batch 0", "batch 1"])

        self.aws("delete-message", "--queue-url", url, "--receipt-handle",
                 single["ReceiptHandle"])
        dele = self.aws_json("delete-message-batch", "--queue-url", url, "--entries", self.write(
            "del", [{"Id": f"d{i}", "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(again + [b2])]))
        self.assertEqual(sorted(e["Id"] for e in dele["Successful"]), ["d0", "d1", "d2"])
        self.assertEqual(dele.get("Failed", []), [])
        counts = self.aws_json("get-queue-attributes", "--queue-url", url, "--attribute-names",
                               "ApproximateNumberOfMessages",
                               "ApproximateNumberOfMessagesNotVisible")["Attributes"]
        self.assertEqual(counts, {"ApproximateNumberOfMessages": "0",
                                  "ApproximateNumberOfMessagesNotVisible": "0"})

    def test_purge(self):
        _, url = self.create("purge")
        self.aws("send-message-batch", "--queue-url", url, "--entries", self.write(
            "purge", [{"Id": f"p{i}", "MessageBody": f"p{i}"} for i in range(3)]))
        self.aws("purge-queue", "--queue-url", url)
        n = self.aws_json("get-queue-attributes", "--queue-url", url, "--attribute-names",
                          "ApproximateNumberOfMessages")["Attributes"]
        self.assertEqual(n, {"ApproximateNumberOfMessages": "0"})

    def test_dead_letter_source_queues(self):
        dlq_name, dlq = self.create("dlq")
        policy = json.dumps({"deadLetterTargetArn": self.server.queue_arn(dlq_name),
                             "maxReceiveCount": 3})
        _, src = self.create("src", "--attributes",
                             self.write("attrs", {"RedrivePolicy": policy}))
        out = self.aws_json("list-dead-letter-source-queues", "--queue-url", dlq)
        self.assertEqual(out["queueUrls"], [src])
        got = json.loads(self.aws_json("get-queue-attributes", "--queue-url", src,
                                       "--attribute-names", "RedrivePolicy")
                         ["Attributes"]["RedrivePolicy"])
        self.assertEqual(got, json.loads(policy))

    def test_errors(self):
        _, url = self.create("err")
        self.assertCliError(NOT_FOUND_CODES, "get-queue-url", "--queue-name",
                            unique_name("missing"))
        self.assertCliError("ReceiptHandleIsInvalid", "delete-message", "--queue-url", url,
                            "--receipt-handle", "garbage")
        self.assertCliError("InvalidParameterValue", "receive-message", "--queue-url", url,
                            "--max-number-of-messages", 11)
        self.assertCliError("AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
                            "send-message-batch", "--queue-url", url, "--entries",
                            self.write("dup", [{"Id": "x", "MessageBody": "a"},
                                               {"Id": "x", "MessageBody": "b"}]))
        self.assertCliError("InvalidAttributeValue", "set-queue-attributes", "--queue-url", url,
                            "--attributes", "VisibilityTimeout=43201")
        self.assertCliError("AWS.SimpleQueueService.UnsupportedOperation", "create-queue",
                            "--queue-name", unique_name("fifo") + ".fifo", "--attributes",
                            "FifoQueue=true")


class AwsCliV1JsonTest(CliScenarios, unittest.TestCase):
    exe_finder = staticmethod(find_cli_v1)
    protocol = "json"


class AwsCliV2QueryTest(CliScenarios, unittest.TestCase):
    exe_finder = staticmethod(find_cli_v2)
    protocol = "query"


class CliSigV4Test(unittest.TestCase):
    """Both CLIs sign requests (JSON body / form body) that a --credentials-file server checks."""

    AKID, SECRET = "AKIDCLISIGV4TEST", "cli-secret/+="

    @classmethod
    def setUpClass(cls):
        cls.server = SqsRelayServer(in_memory=True, credentials=[(cls.AKID, cls.SECRET)])
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def run_cli(self, exe, secret, *args):
        cmd = [exe, "--endpoint-url", self.server.endpoint, "--output", "json", "sqs"] + list(
            args)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                              env=_env(self.AKID, secret))

    def test_signatures(self):
        for label, finder in (("v1-json", find_cli_v1), ("v2-query", find_cli_v2)):
            exe = finder()
            self.assertIsNotNone(exe, f"{label} CLI not installed")
            with self.subTest(cli=label):
                name = unique_name(f"sig-{label}")
                ok = self.run_cli(exe, self.SECRET, "create-queue", "--queue-name", name)
                self.assertEqual(ok.returncode, 0, ok.stderr)
                url = json.loads(ok.stdout)["QueueUrl"]
                ok = self.run_cli(exe, self.SECRET, "send-message", "--queue-url", url,
                                  "--message-body", "signed body with spaces & symbols=+/")
                self.assertEqual(ok.returncode, 0, ok.stderr)
                bad = self.run_cli(exe, "wrong-secret", "list-queues")
                self.assertNotEqual(bad.returncode, 0)
                self.assertIn("(SignatureDoesNotMatch)", bad.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
