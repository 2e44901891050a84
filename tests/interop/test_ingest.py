#!/usr/bin/env python3
"""HTTP ingest end to end, through the real binaries, read back with boto3.

- `sqsrelay serve`: POSTed JSON arrays / NDJSON land in the embedded queue with the exact
  bodies; an invalid element gets a 400 naming it and stores nothing; with
  --ingest-dead-letter the rest is stored and the element goes to the dead-letter file;
  tokens; /metrics counts it.
- `sqsrelay run -c relay.toml` spooling to a separate `sqsrelay serve`: a durable route and
  an `ack = "delivered"` route (its 200 means the messages are already in the target queue),
  routes with attributes from fields, metrics, SIGTERM.
"""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import requests

sys.path.insert(0, os.path.dirname(__file__))
from interop_common import make_client, unique_name  # noqa: E402
from sqsrelay_server import SqsRelayServer, binary_path  # noqa: E402


def bodies(client, url, expect, timeout=10):
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < expect and time.monotonic() < deadline:
        r = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                   MessageAttributeNames=["All"])
        for m in r.get("Messages", []):
            got.append(m)
            client.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return got


def write_relay_toml(path, spool_dir, endpoints, routes=""):
    """A relay.toml: the spool, `endpoints` ({name: url}; the first is the listener's
    default), one loopback listener with `routes` (TOML text) and a loopback metrics
    listener. Returns `path`."""
    eps = "".join(f'[endpoints.{name}]\nurl = "{url}"\n\n' for name, url in endpoints.items())
    with open(path, "w") as f:
        f.write(f"""[spool]
dir = "{spool_dir}"

{eps}[[sources.http]]
listen = "127.0.0.1:0"
default_endpoint = "{next(iter(endpoints))}"
{routes}
[metrics]
listen = "127.0.0.1:0"
""")
    return path


def start_run(cfg, *extra):
    """Starts `sqsrelay run -c cfg`; returns the process and its ingest and metrics URLs."""
    proc = subprocess.Popen([binary_path(), "run", "-c", cfg, *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    ingest = metrics = None
    deadline = time.monotonic() + 30
    lines = []
    while (ingest is None or metrics is None) and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if m := re.search(r"ingest '[^']*' on (http://\S+)", line):
            ingest = m.group(1)
        if m := re.search(r"metrics on (http://\S+)/metrics", line):
            metrics = m.group(1)
    if not (ingest and metrics):
        proc.kill()
        proc.wait()
        proc.stdout.close()
        raise AssertionError("sqsrelay run did not start:\n" + "".join(lines))
    return proc, ingest, metrics


def stop_run(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    proc.stdout.close()


class ServeIngestTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="sqsrelay-ingest-")
        cls.dlf = os.path.join(cls.dir, "dead.ndjson")
        cls.server = SqsRelayServer(ingest=True, extra_args=[
            "--ingest-dead-letter", "--dead-letter-file", cls.dlf]).start()
        cls.strict = SqsRelayServer(ingest=True, in_memory=True).start()
        cls.client = make_client(cls.server.endpoint)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.strict.stop()

    def test_array_and_ndjson_bodies_arrive_exactly(self):
        q = unique_name("ingest")
        r = requests.post(f"{self.server.ingest_endpoint}/queues/{q}/messages",
                          json=[{"ident": "dev-1", "speed": 42}, "plain", [1, 2]], timeout=10)
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.json()["accepted"], 3)
        r = requests.post(f"{self.server.ingest_endpoint}/queues/{q}/messages",
                          data='{"n":1}\n{"n": 2}\n',
                          headers={"Content-Type": "application/x-ndjson"}, timeout=10)
        self.assertEqual(r.status_code, 200, r.text)
        url = self.client.get_queue_url(QueueName=q)["QueueUrl"]
        got = sorted(m["Body"] for m in bodies(self.client, url, 5))
        self.assertEqual(got, sorted(['{"ident":"dev-1","speed":42}', "plain", "[1,2]",
                                      '{"n":1}', '{"n":2}']))

    def test_chunked_ndjson_stream(self):
        # A streamed upload (requests sends a generator with Transfer-Encoding: chunked, as
        # Go's, Node's and curl's streaming uploads do); lines may split across chunks.
        q = unique_name("chunked")
        lines = [json.dumps({"n": i}) + "\n" for i in range(50)]
        text = "".join(lines).encode()
        pieces = [text[i:i + 37] for i in range(0, len(text), 37)]
        r = requests.post(f"{self.server.ingest_endpoint}/queues/{q}/messages", data=iter(pieces),
                          headers={"Content-Type": "application/x-ndjson"}, timeout=10)
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.json()["accepted"], 50)
        url = self.client.get_queue_url(QueueName=q)["QueueUrl"]
        got = sorted(json.loads(m["Body"])["n"] for m in bodies(self.client, url, 50))
        self.assertEqual(got, list(range(50)))
        # Over the body limit while streaming: 413, nothing stored.
        big = SqsRelayServer(ingest=True, in_memory=True,
                             extra_args=["--max-body-bytes", "1000"]).start()
        try:
            r = requests.post(f"{big.ingest_endpoint}/queues/{q}/messages",
                              data=iter([b"[" + b"1," * 600, b"1]"]), timeout=10)
            self.assertEqual(r.status_code, 413, r.text)
        finally:
            big.stop()

    def test_compressed_bodies_are_refused_by_name(self):
        import gzip
        import socket
        q = unique_name("gz")
        body = gzip.compress(b'[{"a":1}]')
        # Content-Encoding: the body arrives whole, but compressed: 415, naming the encoding.
        r = requests.post(f"{self.server.ingest_endpoint}/queues/{q}/messages", data=body,
                          headers={"Content-Type": "application/json",
                                   "Content-Encoding": "gzip"}, timeout=10)
        self.assertEqual(r.status_code, 415, r.text)
        self.assertEqual(r.json()["error"], "unsupported_encoding")
        self.assertIn("gzip", r.json()["message"])
        # Transfer-Encoding: gzip, chunked: a coding nobody would undo: 501 (RFC 9112 §6.1).
        host, port = self.server.ingest_endpoint.split("//")[1].split(":")
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(f"POST /queues/{q}/messages HTTP/1.1\r\nHost: x\r\n"
                      "Content-Type: application/json\r\n"
                      "Transfer-Encoding: gzip, chunked\r\n\r\n".encode() +
                      f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")
            reply = s.recv(4096)
        self.assertTrue(reply.startswith(b"HTTP/1.1 501 "), reply)
        with self.assertRaises(Exception):  # nothing was stored, not even the queue
            self.client.get_queue_url(QueueName=q)

    def test_invalid_element_rejects_the_request_by_default(self):
        q = unique_name("strict")
        r = requests.post(f"{self.strict.ingest_endpoint}/queues/{q}/messages",
                          data='[{"ok":1}, "bad\\u0001"]',
                          headers={"Content-Type": "application/json"}, timeout=10)
        self.assertEqual(r.status_code, 400)
        err = r.json()["errors"][0]
        self.assertEqual(err["index"], 1)
        self.assertEqual(err["reason"], "invalid_characters")
        c = make_client(self.strict.endpoint)
        try:
            url = c.get_queue_url(QueueName=q)["QueueUrl"]
            self.assertEqual(bodies(c, url, 1, timeout=2), [])
        except c.exceptions.QueueDoesNotExist:
            pass  # nothing was stored, not even the queue

    def test_dead_letter_policy_stores_the_rest(self):
        q = unique_name("dl")
        r = requests.post(f"{self.server.ingest_endpoint}/queues/{q}/messages",
                          data='[{"ok":1}, "bad\\u0001", {"ok":2}, "", {"ok":3}]',
                          headers={"Content-Type": "application/json"}, timeout=10)
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.json()["accepted"], 3)
        url = self.client.get_queue_url(QueueName=q)["QueueUrl"]
        self.assertEqual(sorted(m["Body"] for m in bodies(self.client, url, 3)),
                         ['{"ok":1}', '{"ok":2}', '{"ok":3}'])
        with open(self.dlf) as f:
            lines = [json.loads(line) for line in f if q in line]
        self.assertEqual(len(lines), 2)
        self.assertEqual({l["queue"] for l in lines}, {q})
        by_code = {l["code"]: l for l in lines}
        self.assertEqual(set(by_code), {"invalid_characters", "empty_body"})
        self.assertEqual(by_code["invalid_characters"]["reason"], "invalid_characters")
        self.assertEqual(by_code["empty_body"]["reason"], "empty_body")
        # The detail names the element once ("element 1 at byte 10: ...").
        self.assertEqual(by_code["invalid_characters"]["detail"].count("element 1 at byte"), 1,
                         by_code["invalid_characters"]["detail"])

    def test_a_message_the_queue_refuses_is_reported_not_hidden_in_a_200(self):
        # The queue's MaximumMessageSize (1024) is below the route's limit: the queue refuses
        # element 0. reject routes answer 502 naming it; dead_letter routes 200 with the report.
        for srv, status in ((self.strict, 502), (self.server, 200)):
            client = make_client(srv.endpoint)
            q = unique_name("small")
            url = client.create_queue(QueueName=q,
                                      Attributes={"MaximumMessageSize": "1024"})["QueueUrl"]
            r = requests.post(f"{srv.ingest_endpoint}/queues/{q}/messages", timeout=10,
                              json=[{"a": "x" * 2000}, {"a": 1}])
            self.assertEqual(r.status_code, status, r.text)
            j = r.json()
            self.assertEqual([(e["index"], e["reason"]) for e in j["errors"]],
                             [(0, "not_delivered")], r.text)
            self.assertIn("must be shorter than 1024 bytes", j["errors"][0]["message"])
            if status == 200:
                self.assertEqual((j["accepted"], j["dead_lettered"]), (1, 1))
            else:
                self.assertEqual((j["delivered"], j["dead_lettered"]), (1, 1))
            self.assertEqual([m["Body"] for m in bodies(client, url, 1)], ['{"a":1}'])

    def test_metrics_count_ingest(self):
        q = unique_name("m")
        requests.post(f"{self.server.ingest_endpoint}/queues/{q}/messages", json=[1, 2, 3],
                      timeout=10).raise_for_status()
        text = requests.get(f"{self.server.endpoint}/metrics", timeout=10).text
        m = re.search(r"^sqsrelay_ingest_store_messages_total (\d+)$", text, re.M)
        self.assertTrue(m, text[-2000:])
        self.assertGreaterEqual(int(m.group(1)), 3)

    def test_tokens(self):
        with tempfile.NamedTemporaryFile("w", suffix=".tokens", delete=False) as f:
            f.write("# ingest tokens\ns3cret-token\n")
        server = SqsRelayServer(ingest=True, in_memory=True,
                                extra_args=["--ingest-token-file", f.name]).start()
        try:
            u = f"{server.ingest_endpoint}/queues/{unique_name('t')}/messages"
            self.assertEqual(requests.post(u, json=[1], timeout=10).status_code, 401)
            self.assertEqual(requests.post(u, json=[1], timeout=10, headers={
                "Authorization": "Bearer wrong"}).status_code, 401)
            r = requests.post(u, json=[1], timeout=10,
                              headers={"Authorization": "Bearer s3cret-token"})
            self.assertEqual(r.status_code, 200, r.text)
            self.assertNotIn("s3cret-token", server.log())
        finally:
            server.stop()


class RunPipelineTest(unittest.TestCase):
    def test_run_durable_and_delivered_routes(self):
        target = SqsRelayServer(in_memory=True).start()
        tmp = tempfile.mkdtemp(prefix="sqsrelay-run-")
        cfg = write_relay_toml(
            os.path.join(tmp, "relay.toml"), os.path.join(tmp, "spool"),
            {"target": target.endpoint, "spare": target.endpoint}, """
[[sources.http.routes]]
path = "/flespi"
queue = "telemetry"
endpoint = "target"
ack = "delivered"
attributes = [{ field = "ident", name = "device", type = "String" }]
""")
        proc = subprocess.Popen([binary_path(), "run", "-c", cfg], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        try:
            ingest = metrics = None
            deadline = time.monotonic() + 30
            lines = []
            while (ingest is None or metrics is None) and time.monotonic() < deadline:
                line = proc.stdout.readline()
                if not line:
                    break
                lines.append(line)
                if m := re.search(r"ingest '[^']*' on (http://\S+)", line):
                    ingest = m.group(1)
                if m := re.search(r"metrics on (http://\S+)/metrics", line):
                    metrics = m.group(1)
            self.assertTrue(ingest and metrics, "".join(lines))
            client = make_client(target.endpoint)
            url = client.create_queue(QueueName="telemetry")["QueueUrl"]
            # ack = delivered: when the 200 arrives, the messages are in the target queue.
            r = requests.post(f"{ingest}/flespi", timeout=30, json=[
                {"ident": "dev-1", "v": 1}, {"ident": "dev-2", "v": 2}])
            self.assertEqual(r.status_code, 200, r.text)
            attrs = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
            self.assertEqual(attrs["Attributes"]["ApproximateNumberOfMessages"], "2")
            got = bodies(client, url, 2)
            self.assertEqual(sorted(m["MessageAttributes"]["device"]["StringValue"]
                                    for m in got), ["dev-1", "dev-2"])
            # Durable route: the 200 means spooled; delivery follows.
            q2 = unique_name("spooled")
            url2 = client.create_queue(QueueName=q2)["QueueUrl"]
            r = requests.post(f"{ingest}/queues/{q2}/messages", timeout=30,
                              data="\n".join(json.dumps({"i": i}) for i in range(500)),
                              headers={"Content-Type": "application/x-ndjson"})
            self.assertEqual(r.status_code, 200, r.text)
            self.assertEqual(len(bodies(client, url2, 500, timeout=30)), 500)
            text = requests.get(f"{metrics}/metrics", timeout=10).text
            self.assertRegex(text, r"sqsrelay_relay_delivered_total 502\b")
            self.assertIn("sqsrelay_spool_fsyncs_total", text)
            # Prometheus' text format: one HELP/TYPE per family, one sample per endpoint.
            families = re.findall(r"^# TYPE (\S+)", text, re.M)
            self.assertEqual(len(families), len(set(families)), text)
            self.assertRegex(text, r'\nsqsrelay_sender_api_calls_total\{endpoint="target"\} [1-9]')
            self.assertRegex(text, r'\nsqsrelay_sender_api_calls_total\{endpoint="spare"\} 0\n')
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(60), 0)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            target.stop()

    def test_run_delivered_route_reports_what_sqs_did_not_take(self):
        """ack = delivered: a message SQS refuses (here: over the queue's MaximumMessageSize)
        is dead-lettered; the answer says so instead of a plain 200."""
        target = SqsRelayServer(in_memory=True).start()
        tmp = tempfile.mkdtemp(prefix="sqsrelay-run-")
        cfg = write_relay_toml(os.path.join(tmp, "relay.toml"), os.path.join(tmp, "spool"),
                               {"target": target.endpoint}, """
[[sources.http.routes]]
path = "/small-delivered"
queue = "small"
endpoint = "target"
ack = "delivered"

[[sources.http.routes]]
path = "/small-report"
queue = "small"
endpoint = "target"
ack = "delivered"
on_invalid = "dead_letter"
""")
        client = make_client(target.endpoint)
        url = client.create_queue(QueueName="small",
                                  Attributes={"MaximumMessageSize": "1024"})["QueueUrl"]
        proc, ingest, metrics = start_run(cfg)
        try:
            big = "s" * 2000
            # on_invalid = reject: not a 200 (the client keeps the request), naming index 0.
            r = requests.post(f"{ingest}/small-delivered", timeout=30, json=[big, "ok"])
            self.assertEqual(r.status_code, 502, r.text)
            j = r.json()
            self.assertEqual(j["error"], "not_delivered")
            self.assertEqual((j["delivered"], j["dead_lettered"]), (1, 1))
            self.assertEqual([(e["index"], e["reason"]) for e in j["errors"]],
                             [(0, "not_delivered")])
            self.assertIn("MessageTooLong", j["errors"][0]["message"])
            # on_invalid = dead_letter: 200 with the per-index report.
            r = requests.post(f"{ingest}/small-report", timeout=30, json=["ok2", big])
            self.assertEqual(r.status_code, 200, r.text)
            j = r.json()
            self.assertEqual((j["accepted"], j["dead_lettered"]), (1, 1))
            self.assertEqual([(e["index"], e["reason"]) for e in j["errors"]],
                             [(1, "not_delivered")])
            got = sorted(m["Body"] for m in bodies(client, url, 2))
            self.assertEqual(got, ["ok", "ok2"])
            text = requests.get(f"{metrics}/metrics", timeout=10).text
            self.assertRegex(text, r"\nsqsrelay_relay_ack_undelivered_total 2\n")
            self.assertRegex(text, r"\nsqsrelay_ingest_messages_undelivered_total(\{[^}]*\})? 2\n")
            self.assertRegex(text, r'\nsqsrelay_ingest_responses_total\{[^}]*code="502"\} 1\n')
        finally:
            stop_run(proc)
            target.stop()

    def test_run_delivered_route_at_shutdown_answers_503_and_keeps_the_data(self):
        """SIGTERM while an ack = delivered request waits for an SQS that is down: the client
        gets a 503 with Retry-After before the shutdown deadline (not a closed connection),
        and the spooled messages reach the queue after the restart."""
        import socket
        import threading
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()  # nothing listens here until the target starts below
        tmp = tempfile.mkdtemp(prefix="sqsrelay-run-")
        cfg = write_relay_toml(os.path.join(tmp, "relay.toml"), os.path.join(tmp, "spool"),
                               {"target": f"http://127.0.0.1:{port}"}, """
[[sources.http.routes]]
path = "/delivered"
queue = "later"
endpoint = "target"
ack = "delivered"
""")
        proc, ingest, _ = start_run(cfg, "--shutdown-timeout", "4")
        answer = {}

        def post():
            try:
                answer["r"] = requests.post(f"{ingest}/delivered", timeout=30,
                                            json=[{"n": 1}, {"n": 2}])
            except requests.RequestException as e:
                answer["error"] = e

        t = threading.Thread(target=post)
        t.start()
        try:
            time.sleep(1.0)  # the request is spooled and waits for the (absent) target
            self.assertTrue(t.is_alive(), answer)
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            t.join(30)
            took = time.monotonic() - started
            self.assertIn("r", answer, answer.get("error"))
            r = answer["r"]
            self.assertEqual(r.status_code, 503, r.text)
            self.assertGreaterEqual(int(r.headers["Retry-After"]), 1)
            self.assertIn("shutting down", r.text)
            self.assertLess(took, 4.0, "answered before the shutdown deadline")
            self.assertEqual(proc.wait(30), 0)
        finally:
            stop_run(proc)
        # The data stayed spooled: with the target up, the next run delivers it.
        target = SqsRelayServer(in_memory=True, listen=f"127.0.0.1:{port}").start()
        client = make_client(target.endpoint)
        url = client.create_queue(QueueName="later")["QueueUrl"]
        proc, _, _ = start_run(cfg)
        try:
            got = sorted(json.loads(m["Body"])["n"] for m in bodies(client, url, 2, timeout=30))
            self.assertEqual(got, [1, 2])
        finally:
            stop_run(proc)
            target.stop()

    def test_run_reports_a_spool_it_cannot_open(self):
        """A spool that cannot be opened (the path is a file; another instance holds it) is a
        clear error and exit 1, never a crash."""
        tmp = tempfile.mkdtemp(prefix="sqsrelay-run-")
        not_a_dir = os.path.join(tmp, "file")
        open(not_a_dir, "w").close()

        def config(name, spool_dir):
            return write_relay_toml(os.path.join(tmp, name), spool_dir,
                                    {"target": "http://127.0.0.1:9"})

        p = subprocess.run([binary_path(), "run", "-c", config("a.toml", not_a_dir)],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("Not a directory", p.stdout + p.stderr)
        spool = os.path.join(tmp, "spool")
        first, _, _ = start_run(config("b.toml", spool))
        try:
            p = subprocess.run([binary_path(), "run", "-c", config("c.toml", spool)],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            self.assertIn("locked", p.stdout + p.stderr)
            self.assertIsNone(first.poll(), "the first instance keeps running")
        finally:
            stop_run(first)


class ServeShutdownTest(unittest.TestCase):
    def test_sigterm_lets_a_request_whose_body_is_arriving_finish(self):
        """serve on SIGTERM: a request whose header arrived and whose body is still on its way
        is answered (and stored) before the process exits, within --shutdown-timeout."""
        import socket
        srv = SqsRelayServer(ingest=True, extra_args=["--shutdown-timeout", "10"]).start()
        try:
            host, port = srv.ingest_endpoint.split("//")[1].split(":")
            s = socket.create_connection((host, int(port)))
            s.sendall(b"POST /queues/late/messages HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Type: application/json\r\nContent-Length: 7\r\n\r\n[1,")
            time.sleep(0.3)
            srv.proc.send_signal(signal.SIGTERM)
            time.sleep(1.0)
            self.assertIsNone(srv.proc.poll(), "still finishing the request")
            s.sendall(b"2,3]")
            s.settimeout(10)
            reply = b""
            while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                reply += chunk
            s.close()
            self.assertIn(b" 200 ", reply.split(b"\r\n")[0], reply)
            self.assertIn(b'"accepted":3', reply)
            self.assertEqual(srv.proc.wait(15), 0)
            # Stored: a restart on the same data dir has the three messages.
            again = SqsRelayServer(data_dir=srv.data_dir).start()
            try:
                client = make_client(again.endpoint)
                url = client.get_queue_url(QueueName="late")["QueueUrl"]
                got = sorted(m["Body"] for m in bodies(client, url, 3))
                self.assertEqual(got, ["1", "2", "3"])
            finally:
                again.stop()
        finally:
            srv.stop()
            srv.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
