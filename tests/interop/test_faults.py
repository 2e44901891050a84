#!/usr/bin/env python3
"""Fault injection and TLS of `sqsrelay serve`, driven by boto3 and raw HTTP.

Each injected fault is checked from the client's side (what the SDK raises or sees) and on
the server's side (the request did or did not take effect, the /metrics counter moved).
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import requests
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

sys.path.insert(0, os.path.dirname(__file__))
from interop_common import make_client, unique_name  # noqa: E402
from sqsrelay_server import SqsRelayServer  # noqa: E402


def metric(server, name):
    text = requests.get(f"{server.endpoint}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return int(line.split()[1])
    raise AssertionError(f"metric {name} missing")


def set_faults(server, spec):
    r = requests.post(f"{server.endpoint}/_sqsrelay/faults", data=spec, timeout=10)
    r.raise_for_status()
    return r.text


def drain_bodies(client, url):
    bodies = []
    while True:
        r = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        msgs = r.get("Messages", [])
        if not msgs:
            return bodies
        bodies += [m["Body"] for m in msgs]
        client.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)])


class FaultInjectionTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = SqsRelayServer(in_memory=True).start()
        cls.client = make_client(cls.server.endpoint)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def setUp(self):
        set_faults(self.server, "")

    def test_partial_failures_do_not_take_effect(self):
        name = unique_name("partial")
        url = self.client.create_queue(QueueName=name)["QueueUrl"]
        set_faults(self.server, f"queue={name},partial=0.5,seed=7\n")
        before = metric(self.server, "sqsrelay_fault_failed_entries_total")
        sent, failed = set(), set()
        for b in range(20):
            entries = [{"Id": f"e{i}", "MessageBody": f"{b}-{i}"} for i in range(10)]
            r = self.client.send_message_batch(QueueUrl=url, Entries=entries)
            ok = {s["Id"] for s in r.get("Successful", [])}
            bad = r.get("Failed", [])
            self.assertEqual(len(ok) + len(bad), 10)
            for f in bad:
                self.assertFalse(f["SenderFault"])
                self.assertEqual(f["Code"], "InternalError")
                failed.add(f"{b}-{f['Id'][1:]}")
            sent |= {f"{b}-{i[1:]}" for i in ok}
        self.assertTrue(sent and failed, "a 0.5 rate over 200 entries fails some, not all")
        self.assertEqual(metric(self.server, "sqsrelay_fault_failed_entries_total") - before,
                         len(failed))
        set_faults(self.server, "")
        self.assertEqual(sorted(drain_bodies(self.client, url)), sorted(sent))

    def test_rule_for_one_queue_leaves_others_alone(self):
        hit, other = unique_name("hit"), unique_name("other")
        hit_url = self.client.create_queue(QueueName=hit)["QueueUrl"]
        other_url = self.client.create_queue(QueueName=other)["QueueUrl"]
        set_faults(self.server, f"queue={hit},throttle=1\n")
        with self.assertRaises(ClientError) as cm:
            self.client.send_message(QueueUrl=hit_url, MessageBody="x")
        self.assertEqual(cm.exception.response["Error"]["Code"], "RequestThrottled")
        self.client.send_message(QueueUrl=other_url, MessageBody="y")
        set_faults(self.server, "")
        self.assertEqual(drain_bodies(self.client, hit_url), [])
        self.assertEqual(drain_bodies(self.client, other_url), ["y"])

    def test_5xx(self):
        url = self.client.create_queue(QueueName=unique_name("err"))["QueueUrl"]
        set_faults(self.server, "error5xx=1\n")
        with self.assertRaises(ClientError) as cm:
            self.client.send_message(QueueUrl=url, MessageBody="x")
        self.assertEqual(cm.exception.response["ResponseMetadata"]["HTTPStatusCode"], 500)
        set_faults(self.server, "")
        self.assertEqual(drain_bodies(self.client, url), [])

    def raw_send(self, url, body):
        """SendMessage over one fresh connection with no retries (an SDK would re-send on a
        dropped connection, which is exactly what drop_after is there to provoke)."""
        return requests.post(self.server.endpoint + "/", timeout=10, data=json.dumps(
            {"QueueUrl": url, "MessageBody": body}), headers={
                "X-Amz-Target": "AmazonSQS.SendMessage",
                "Content-Type": "application/x-amz-json-1.0"})

    def test_drop_before_and_after(self):
        url = self.client.create_queue(QueueName=unique_name("drop"))["QueueUrl"]
        set_faults(self.server, "drop=1\n")
        with self.assertRaises(requests.exceptions.ConnectionError):
            self.raw_send(url, "lost")
        set_faults(self.server, "drop_after=1\n")
        with self.assertRaises(requests.exceptions.ConnectionError):
            self.raw_send(url, "kept")
        set_faults(self.server, "")
        # drop: never took effect; drop_after: took effect although the client saw no answer.
        self.assertEqual(drain_bodies(self.client, url), ["kept"])
        self.assertGreaterEqual(metric(self.server, "sqsrelay_fault_dropped_total"), 1)
        self.assertGreaterEqual(metric(self.server, "sqsrelay_fault_dropped_after_total"), 1)

    def test_sdk_sees_a_dropped_connection(self):
        url = self.client.create_queue(QueueName=unique_name("dropsdk"))["QueueUrl"]
        set_faults(self.server, "drop=1\n")
        with self.assertRaises((ConnectionClosedError, EndpointConnectionError)):
            self.client.send_message(QueueUrl=url, MessageBody="lost")
        set_faults(self.server, "")
        self.assertEqual(drain_bodies(self.client, url), [])

    def test_latency_and_jitter(self):
        set_faults(self.server, "latency=150ms,jitter=100ms\n")
        times = []
        for _ in range(5):
            t0 = time.monotonic()
            self.client.list_queues()
            times.append(time.monotonic() - t0)
        self.assertGreaterEqual(min(times), 0.150)
        self.assertLess(max(times), 2.0)

    def test_admin_endpoint_round_trip_and_errors(self):
        shown = set_faults(self.server, "queue=q1,latency=5ms,partial=0.25\n# note\nthrottle=0.1\n")
        self.assertEqual(shown, "queue=q1,latency=5ms,partial=0.25\nthrottle=0.1\n")
        r = requests.post(f"{self.server.endpoint}/_sqsrelay/faults", data="partial=2\n",
                          timeout=10)
        self.assertEqual(r.status_code, 400)
        self.assertIn("line 1", r.text)
        self.assertIn("partial=2", r.text)
        # The bad spec replaced nothing.
        self.assertIn("throttle=0.1", requests.get(f"{self.server.endpoint}/_sqsrelay/faults",
                                                   timeout=10).text)

    def test_bad_flag_refuses_to_start(self):
        server = SqsRelayServer(in_memory=True, extra_args=["--fault", "latency=fast"],
                                start_timeout=10)
        with self.assertRaises(Exception):
            server.start()
        self.assertIn("latency=fast", server.log())
        server.stop()


def make_certificates(directory):
    """A CA and a server certificate for 127.0.0.1/localhost signed by it."""
    def run(*args):
        subprocess.run(args, check=True, cwd=directory, capture_output=True)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout",
        "ca.key", "-out", "ca.pem", "-subj", "/CN=sqsrelay test CA")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
        "server.csr", "-subj", "/CN=localhost")
    with open(os.path.join(directory, "ext.cnf"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-out", "server.pem", "-extfile", "ext.cnf")


class TlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="sqsrelay-tls-")
        make_certificates(cls.dir)
        cls.server = SqsRelayServer(in_memory=True, extra_args=[
            "--tls-cert", os.path.join(cls.dir, "server.pem"),
            "--tls-key", os.path.join(cls.dir, "server.key")]).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_trusted_ca_works_and_urls_are_https(self):
        self.assertTrue(self.server.endpoint.startswith("https://"))
        import boto3
        c = boto3.session.Session().client(
            "sqs", endpoint_url=self.server.endpoint, region_name="us-east-1",
            aws_access_key_id="a", aws_secret_access_key="b",
            verify=os.path.join(self.dir, "ca.pem"))
        url = c.create_queue(QueueName=unique_name("tls"))["QueueUrl"]
        self.assertTrue(url.startswith("https://"), url)
        c.send_message(QueueUrl=url, MessageBody="over tls")
        self.assertEqual(c.receive_message(QueueUrl=url)["Messages"][0]["Body"], "over tls")

    def test_untrusted_ca_fails(self):
        with self.assertRaises(requests.exceptions.SSLError):
            requests.get(f"{self.server.endpoint}/health", timeout=10)

    def test_plain_http_to_tls_port_is_refused_cleanly(self):
        port = self.server.port
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            data = s.recv(100)
        self.assertNotIn(b"200 OK", data)
        # The server survives it.
        r = requests.get(f"{self.server.endpoint}/health", timeout=10,
                         verify=os.path.join(self.dir, "ca.pem"))
        self.assertEqual(r.status_code, 200)

    def test_missing_key_file_is_a_clear_error(self):
        server = SqsRelayServer(in_memory=True, start_timeout=10, extra_args=[
            "--tls-cert", os.path.join(self.dir, "server.pem"),
            "--tls-key", os.path.join(self.dir, "nope.key")])
        with self.assertRaises(Exception):
            server.start()
        self.assertIn("nope.key", server.log())
        server.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
