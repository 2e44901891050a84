#!/usr/bin/env python3
"""`sqsrelay send` input formats, field mapping, bad input and setup errors, and the C++
producer example, against a real `sqsrelay serve` (received with boto3)."""

import json
import os
import socket
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "interop"))
from interop_common import make_client, unique_name  # noqa: E402
from sqsrelay_server import SqsRelayServer, binary_path  # noqa: E402


def receive_all(client, url):
    out = []
    empty = 0
    while empty < 2:
        r = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                   MessageAttributeNames=["All"], AttributeNames=["All"],
                                   VisibilityTimeout=600)
        msgs = r.get("Messages", [])
        if not msgs:
            empty += 1
            continue
        empty = 0
        out += msgs
        client.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)])
    return out


class SendCliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = SqsRelayServer(in_memory=True).start()
        cls.client = make_client(cls.server.endpoint)
        cls.tmp = tempfile.TemporaryDirectory(prefix="sqsrelay-send-cli-")

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()
        cls.tmp.cleanup()

    def send(self, queue, data, *args, stdin=True, cwd=None):
        cmd = [binary_path(), "--log-level", "error", "send", "--endpoint-url",
               self.server.endpoint, "--queue", queue, "--summary-json", *args]
        # The working directory is where the default dead-letter file goes.
        proc = subprocess.run(cmd, input=data.encode() if stdin else None, capture_output=True,
                              timeout=120, cwd=cwd or self.tmp.name)
        out = proc.stdout.decode()
        summary = json.loads(out.strip().splitlines()[-1]) if out.strip() else None
        return proc.returncode, summary, proc.stderr.decode()

    def test_ndjson_with_attributes_and_group_ids(self):
        # A standard queue: MessageGroupId is allowed there too (fair queues).
        name = unique_name("groups")
        url = self.client.create_queue(QueueName=name)["QueueUrl"]
        lines = [json.dumps({"tenant": f"t{i % 3}", "type": "order", "n": i, "pad": "  x  "})
                 for i in range(25)]
        code, s, err = self.send(name, "\n".join(lines) + "\n", "--attr-field",
                                 "type=String:$.type", "--attr-field", "n=$.n",
                                 "--group-field", "$.tenant")
        self.assertEqual(code, 0, err)
        self.assertEqual(s["delivered"], 25)
        msgs = receive_all(self.client, url)
        self.assertEqual(len(msgs), 25)
        by_n = {}
        for m in msgs:
            body = json.loads(m["Body"])
            self.assertNotIn(" :", m["Body"])  # compact JSON, string contents untouched
            self.assertEqual(body["pad"], "  x  ")
            # The embedded server has no FIFO queues yet and does not echo MessageGroupId on
            # standard ones; the field mapping itself is covered by message_reader_test.
            if "MessageGroupId" in m["Attributes"]:
                self.assertEqual(m["Attributes"]["MessageGroupId"], body["tenant"])
            self.assertEqual(m["MessageAttributes"]["type"],
                             {"StringValue": "order", "DataType": "String"})
            self.assertEqual(m["MessageAttributes"]["n"]["DataType"], "Number")
            by_n[body["n"]] = m["MessageAttributes"]["n"]["StringValue"]
        self.assertEqual(by_n, {i: str(i) for i in range(25)})

    def test_json_array_file_with_a_bad_element(self):
        name = unique_name("arr")
        url = self.client.create_queue(QueueName=name)["QueueUrl"]
        path = os.path.join(self.tmp.name, name + ".json")
        dead = os.path.join(self.tmp.name, name + ".dead.ndjson")
        with open(path, "w") as f:
            f.write('[\n {"a": 1},\n {"b": [1, 2]},\n {"broken": },\n "text",\n 42\n]\n')
        code, s, err = self.send(name, "", path, "--dead-letter-file", dead, stdin=False)
        self.assertEqual(code, 1, err)  # a bad record is reported, the rest delivered
        self.assertIn("line 4", err)
        self.assertIn("invalid JSON", err)
        self.assertEqual(s["delivered"], 4)
        self.assertEqual(s["input_errors"], 1)
        bodies = sorted(m["Body"] for m in receive_all(self.client, url))
        self.assertEqual(bodies, sorted(['{"a":1}', '{"b":[1,2]}', '"text"', "42"]))
        with open(dead) as f:
            recs = [json.loads(line) for line in f]
        self.assertEqual(len(recs), 1)
        self.assertEqual(recs[0]["reason"], "invalid_input")
        self.assertEqual(recs[0]["body"], '{"broken": }')

    def test_plain_lines_and_failures_printed_without_a_dead_letter_file(self):
        name = unique_name("lines")
        url = self.client.create_queue(QueueName=name)["QueueUrl"]
        cwd = tempfile.mkdtemp(dir=self.tmp.name)
        bad = "".join(f"bad\x02{i}\n" for i in range(25))
        code, s, err = self.send(name, "one\ntwo\n\nbad\x02\nthree\n" + bad, cwd=cwd)
        self.assertEqual(code, 1)
        self.assertIn("line 4: dead-lettered: invalid_characters", err)
        self.assertIn("6 more failures not shown", err)  # 26 failed, 20 printed
        self.assertEqual((s["delivered"], s["dead_lettered"]), (3, 26))
        self.assertEqual(sorted(m["Body"] for m in receive_all(self.client, url)),
                         ["one", "three", "two"])
        # Nothing is only counted: all 26 are in the default dead-letter file.
        default = os.path.join(cwd, "sqsrelay-dead-letters.ndjson")
        self.assertIn("dead letters: sqsrelay-dead-letters.ndjson", err)
        with open(default) as f:
            recs = [json.loads(line) for line in f]
        self.assertEqual(sorted(r["body"] for r in recs),
                         sorted(["bad\x02"] + [f"bad\x02{i}" for i in range(25)]))
        self.assertEqual({r["reason"] for r in recs}, {"invalid_characters"})

    def test_the_default_dead_letter_file_is_removed_when_nothing_failed(self):
        name = unique_name("clean")
        self.client.create_queue(QueueName=name)
        cwd = tempfile.mkdtemp(dir=self.tmp.name)
        code, s, err = self.send(name, "a\nb\n", cwd=cwd)
        self.assertEqual(code, 0, err)
        self.assertEqual(os.listdir(cwd), [])
        # One that was there before is kept, even if this run added nothing.
        open(os.path.join(cwd, "sqsrelay-dead-letters.ndjson"), "w").close()
        code, s, err = self.send(name, "c\n", cwd=cwd)
        self.assertEqual(code, 0, err)
        self.assertEqual(os.listdir(cwd), ["sqsrelay-dead-letters.ndjson"])

    def test_missing_queue_given_as_a_url_is_a_setup_error(self):
        url = f"{self.server.endpoint}/000000000000/{unique_name('nope')}"
        code, s, err = self.send(url, "x\n")
        self.assertEqual(code, 2, err)
        self.assertIsNone(s)
        self.assertIn("QueueDoesNotExist", err)
        missing_dlq = f"{self.server.endpoint}/000000000000/{unique_name('no-dlq')}"
        name = unique_name("dlq-url-check")
        self.client.create_queue(QueueName=name)
        code, s, err = self.send(name, "x\n", "--dead-letter-queue", missing_dlq)
        self.assertEqual(code, 2, err)
        self.assertIn("--dead-letter-queue", err)

    def test_nonsense_numbers_are_usage_errors(self):
        name = unique_name("flags")
        self.client.create_queue(QueueName=name)
        for flag, value in (("--max-in-flight", "0"), ("--read-timeout", "0"),
                            ("--connect-timeout", "-1"), ("--drain-timeout", "-5"),
                            ("--linger-ms", "-1")):
            code, s, err = self.send(name, "x\n", flag, value)
            self.assertEqual(code, 2, f"{flag} {value}: {err}")
            self.assertIn(flag, err)

    def test_everything_delivered_exits_zero_with_a_summary(self):
        name = unique_name("ok")
        url = self.client.create_queue(QueueName=name)["QueueUrl"]
        code, s, err = self.send(name, "".join(f"m{i}\n" for i in range(1000)))
        self.assertEqual(code, 0, err)
        self.assertEqual(s["delivered"], 1000)
        self.assertLessEqual(s["calls_per_message"], 0.101)
        self.assertIn("1000 delivered", err)
        self.assertIn("API calls", err)
        self.assertEqual(len(receive_all(self.client, url)), 1000)

    def test_missing_queue_is_a_clear_setup_error(self):
        code, s, err = self.send(unique_name("nope"), "x\n")
        self.assertEqual(code, 2)
        self.assertIsNone(s)
        self.assertIn("nope", err)

    def test_missing_dead_letter_queue_is_found_before_anything_is_sent(self):
        name = unique_name("dlq-check")
        url = self.client.create_queue(QueueName=name)["QueueUrl"]
        missing = unique_name("no-dlq")
        code, s, err = self.send(name, "x\n", "--dead-letter-queue", missing)
        self.assertEqual(code, 2)
        self.assertIsNone(s)
        self.assertIn(f"--dead-letter-queue {missing}", err)
        self.assertIn("QueueDoesNotExist", err)
        self.assertEqual(receive_all(self.client, url), [], "nothing sent")

    def test_unreachable_endpoint_is_reported_at_once(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]  # nothing listens there
        cmd = [binary_path(), "send", "--endpoint-url", f"http://127.0.0.1:{port}",
               "--queue", "q"]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            proc.stdin.write(b"x\n")
            proc.stdin.close()
            first = proc.stderr.readline().decode()  # before the retries run out
            self.assertIn(f"127.0.0.1:{port}", first)
            self.assertIn("retrying", first)
            self.assertIsNone(proc.poll(), "still retrying, not yet given up")
        finally:
            proc.kill()
            proc.wait()
            proc.stderr.close()

    def test_bad_field_spec_is_a_usage_error(self):
        code, _, err = self.send("q", "{}\n", "--attr-field", "novalue")
        self.assertEqual(code, 2)
        self.assertIn("NAME=[TYPE:]PATH", err)

    def send_env(self, queue, data, env_extra, *args):
        """Runs send with no --endpoint-url, in an environment without endpoint settings."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("AWS_") and k != "HOME"}
        env["HOME"] = self.tmp.name  # no ~/.aws of the machine running the tests
        env.update(env_extra)
        cmd = [binary_path(), "--log-level", "error", "send", "--queue", queue,
               "--summary-json", *args]
        return subprocess.run(cmd, input=data.encode(), capture_output=True, timeout=120,
                              env=env)

    def test_endpoint_comes_from_the_queue_url(self):
        name = unique_name("byurl")
        url = self.client.create_queue(QueueName=name)["QueueUrl"]
        proc = self.send_env(url, "hi\n", {})
        self.assertEqual(proc.returncode, 0, proc.stderr.decode())
        self.assertEqual([m["Body"] for m in receive_all(self.client, url)], ["hi"])

    def test_endpoint_comes_from_the_config_file_unless_ignored(self):
        name = unique_name("bycfg")
        url = self.client.create_queue(QueueName=name)["QueueUrl"]
        good = os.path.join(self.tmp.name, "config-good")
        with open(good, "w") as f:
            f.write(f"[default]\nendpoint_url = {self.server.endpoint}\n")
        proc = self.send_env(name, "cfg\n", {"AWS_CONFIG_FILE": good})
        self.assertEqual(proc.returncode, 0, proc.stderr.decode())
        # A configured endpoint nobody listens on, ignored: the queue URL's endpoint is used.
        bad = os.path.join(self.tmp.name, "config-bad")
        with open(bad, "w") as f:
            f.write("[default]\nendpoint_url = http://127.0.0.1:1\n")
        proc = self.send_env(url, "ign\n", {"AWS_CONFIG_FILE": bad,
                                            "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"})
        self.assertEqual(proc.returncode, 0, proc.stderr.decode())
        self.assertEqual(sorted(m["Body"] for m in receive_all(self.client, url)),
                         ["cfg", "ign"])

    def test_attr_field_before_the_input_file_takes_one_value(self):
        name = unique_name("attrpos")
        url = self.client.create_queue(QueueName=name)["QueueUrl"]
        path = os.path.join(self.tmp.name, "events.ndjson")
        with open(path, "w") as f:
            f.write('{"type":"a"}\n')
        code, s, err = self.send(name, "", "--attr-field", "t=$.type", path, stdin=False)
        self.assertEqual(code, 0, err)
        msgs = receive_all(self.client, url)
        self.assertEqual([m["MessageAttributes"]["t"]["StringValue"] for m in msgs], ["a"])

    def test_unknown_attribute_type_is_a_usage_error(self):
        code, s, err = self.send("q", '{"x":1}\n', "--attr-field", "a=string:$.x")
        self.assertEqual(code, 2, err)
        self.assertIsNone(s)
        self.assertIn("unknown attribute type 'string'", err)

    def test_producer_example(self):
        example = os.environ.get("SQSRELAY_PRODUCER_EXAMPLE")
        if not example:
            self.skipTest("SQSRELAY_PRODUCER_EXAMPLE not set")
        name = unique_name("example")
        url = self.client.create_queue(QueueName=name)["QueueUrl"]
        proc = subprocess.run([example, name, "500", self.server.endpoint], cwd=self.tmp.name,
                              capture_output=True, text=True, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertIn("invalid message: invalid_characters", proc.stdout)
        self.assertIn("501 delivered, 1 dead-lettered", proc.stdout)
        self.assertEqual(len(receive_all(self.client, url)), 501)
        with open(os.path.join(self.tmp.name, "producer_example.dead.ndjson")) as f:
            self.assertEqual(json.loads(f.readline())["body"], "bad\x01")


class DrainTimeoutTest(unittest.TestCase):
    """Requests still in flight when the drain timeout abandons the rest (a slow server)."""

    @classmethod
    def setUpClass(cls):
        cls.server = SqsRelayServer(in_memory=True,
                                    extra_args=["--fault", "latency=50ms"]).start()
        cls.client = make_client(cls.server.endpoint)

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def test_abandoning_with_requests_in_flight_exits_1_with_the_summary(self):
        name = unique_name("drain")
        self.client.create_queue(QueueName=name)
        data = "".join(f"x{i}\n" for i in range(20000)).encode()
        # The shutdown used to destroy in-flight request coroutines after the HTTP pool they
        # point into (SIGSEGV or a double free in most runs): run it several times.
        for _ in range(4):
            proc = subprocess.run(
                [binary_path(), "--log-level", "error", "send", "--endpoint-url",
                 self.server.endpoint, "--queue", name, "--max-in-flight", "4",
                 "--drain-timeout", "1", "--summary-json"],
                input=data, capture_output=True, timeout=120)
            err = proc.stderr.decode()
            self.assertEqual(proc.returncode, 1, err[-2000:])
            s = json.loads(proc.stdout.decode().strip().splitlines()[-1])
            self.assertEqual(s["messages"], 20000)
            self.assertGreater(s["abandoned"], 0)
            self.assertEqual(s["delivered"] + s["abandoned"], 20000)
            self.assertIn("abandoned", err)

    def test_abandoned_messages_go_to_the_dead_letter_file(self):
        name = unique_name("drain-dl")
        url = self.client.create_queue(QueueName=name)["QueueUrl"]
        with tempfile.TemporaryDirectory(prefix="sqsrelay-drain-") as d:
            dead = os.path.join(d, "dead.ndjson")
            bodies = [f"y{i}" for i in range(3000)]
            proc = subprocess.run(
                [binary_path(), "--log-level", "error", "send", "--endpoint-url",
                 self.server.endpoint, "--queue", name, "--max-in-flight", "2",
                 "--drain-timeout", "0.5", "--summary-json", "--dead-letter-file", dead],
                input=("\n".join(bodies) + "\n").encode(), capture_output=True, timeout=120)
            err = proc.stderr.decode()
            self.assertEqual(proc.returncode, 1, err[-2000:])
            s = json.loads(proc.stdout.decode().strip().splitlines()[-1])
            self.assertGreater(s["abandoned"], 0)
            self.assertIn(dead, err)
            with open(dead) as f:
                recs = [json.loads(line) for line in f]
        self.assertEqual(len(recs), s["abandoned"])
        self.assertEqual({r["reason"] for r in recs}, {"abandoned"})
        # Nothing lost: every body was delivered or is in the file (an abandoned request
        # may still have reached the server, so the two may overlap).
        got = {m["Body"] for m in receive_all(self.client, url)} | {r["body"] for r in recs}
        self.assertEqual(got, set(bodies))


if __name__ == "__main__":
    unittest.main(verbosity=2)
