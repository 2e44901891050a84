#!/usr/bin/env python3
"""boto3 (botocore 1.43, AWS JSON 1.0 protocol) against a real `sqsrelay serve` process.

Every assertion states what AWS documents (API reference, Developer Guide, the botocore
model) or what real SQS was recorded doing (LocalStack's AWS-validated snapshot tests,
tests/aws/services/sqs); when the server differs, the test fails. Tests never depend on
message order (standard queues are unordered) and receive in loops where SQS may return
fewer messages per call.

Run: SQSRELAY_BIN=build/release/src/app/sqsrelay python3 tests/interop/test_boto3.py
Slow tests (message retention, ≥ 60 s) run only with SQSRELAY_SLOW_TESTS=1.
"""

import datetime
import json
import os
import signal
import subprocess
import sys
import threading
import time
import unittest
from unittest import mock

import botocore.compat
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from interop_common import (KNOWN_ATTRIBUTE_MD5S, MIB, attributes_size, error_code,  # noqa: E402
                            http_status, make_client, md5_hex, md5_of_attributes,
                            receive_until, unique_name)
from sqsrelay_server import SqsRelayServer, run_start_failure  # noqa: E402

SERVER = None

DEFAULT_ATTRIBUTES = {
    "VisibilityTimeout": "30",
    "MaximumMessageSize": "1048576",
    "MessageRetentionPeriod": "345600",
    "DelaySeconds": "0",
    "ReceiveMessageWaitTimeSeconds": "0",
    "ApproximateNumberOfMessages": "0",
    "ApproximateNumberOfMessagesNotVisible": "0",
    "ApproximateNumberOfMessagesDelayed": "0",
}
QUEUE_ATTRIBUTE_NAMES = sorted(DEFAULT_ATTRIBUTES) + [
    "QueueArn", "CreatedTimestamp", "LastModifiedTimestamp"]


def setUpModule():
    global SERVER
    SERVER = SqsRelayServer().start()


def tearDownModule():
    if SERVER:
        SERVER.cleanup()


class SqsTestCase(unittest.TestCase):
    """Clients bound to the module's server, queue helpers and error assertions."""

    server = None

    @classmethod
    def setUpClass(cls):
        cls.server = cls.server or SERVER
        cls.sqs = make_client(cls.server.endpoint)
        cls.raw = make_client(cls.server.endpoint, validate=False)

    def run(self, result=None):
        # On failure, show what the server logged as a warning or error: it may name the cause.
        before = len(result.failures) + len(result.errors) if result else 0
        out = super().run(result)
        if result and len(result.failures) + len(result.errors) > before and self.server:
            bad = [ln for ln in self.server.log().splitlines()
                   if "[warning]" in ln or "[error]" in ln or "[critical]" in ln][-10:]
            if bad:
                sys.stderr.write("\n    server warnings/errors:\n      " + "\n      ".join(bad)
                                 + "\n")
        return out

    def create_queue(self, prefix="q", attributes=None, tags=None):
        name = unique_name(prefix)
        kwargs = {"QueueName": name}
        if attributes:
            kwargs["Attributes"] = attributes
        if tags:
            kwargs["tags"] = tags
        url = self.sqs.create_queue(**kwargs)["QueueUrl"]
        return name, url

    def attrs(self, url, names=("All",)):
        return self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(names))[
            "Attributes"]

    def wait_for_counts(self, url, timeout=3.0, **expected):
        """Polls the Approximate* counters until they equal `expected` (AWS updates them
        eventually; an exact match is expected from a single-node server)."""
        names = [f"ApproximateNumberOf{k}" if k != "Messages" else "ApproximateNumberOfMessages"
                 for k in expected]
        want = {n: str(v) for n, v in zip(names, expected.values())}
        deadline = time.monotonic() + timeout
        while True:
            have = self.attrs(url, names)
            got = {n: have.get(n) for n in names}
            if got == want or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(got, want)

    def assertSqsError(self, call, code, status=400, shape=None, **kwargs):
        """Asserts `call(**kwargs)` fails with the legacy (Query) error code `code` that
        botocore reads from x-amzn-query-error, the HTTP status, and — for modelled errors —
        the exception class botocore picks from the JSON `__type` shape name."""
        with self.assertRaises(ClientError) as cm:
            call(**kwargs)
        e = cm.exception
        self.assertEqual(error_code(e), code, f"error: {e.response.get('Error')}")
        self.assertEqual(http_status(e), status, f"error: {e.response.get('Error')}")
        self.assertEqual(e.response["Error"].get("Type"), "Sender")
        if shape:
            cls = getattr(self.raw.exceptions, shape)
            self.assertIsInstance(e, cls, f"expected {shape}, got {type(e).__name__} "
                                          f"({e.response.get('Error')})")
        self.assertTrue(e.response["ResponseMetadata"].get("RequestId"),
                        "error responses carry x-amzn-RequestId")
        return e


# ------------------------------------------------------------------------------------------
class SelfCheckTest(unittest.TestCase):
    def test_md5_helper_matches_values_recorded_from_real_sqs(self):
        for attrs, want in KNOWN_ATTRIBUTE_MD5S:
            self.assertEqual(md5_of_attributes(attrs), want, attrs)
        self.assertEqual(md5_hex("msg"), "6e2baaf3b97dbeef01c0043275f9a0e7")


# ------------------------------------------------------------------------------------------
class QueueLifecycleTest(SqsTestCase):
    def test_create_queue_url_uses_request_host_and_account(self):
        name, url = self.create_queue("life")
        self.assertEqual(url, self.server.queue_url(name))
        self.assertEqual(self.sqs.get_queue_url(QueueName=name)["QueueUrl"], url)

    def test_queue_url_follows_host_header(self):
        local = make_client(f"http://localhost:{self.server.port}")
        name = unique_name("host")
        url = local.create_queue(QueueName=name)["QueueUrl"]
        self.assertEqual(url, f"http://localhost:{self.server.port}/"
                              f"{self.server.account_id}/{name}")
        self.assertEqual(self.sqs.get_queue_url(QueueName=name)["QueueUrl"],
                         self.server.queue_url(name))

    def test_create_queue_is_idempotent_with_equal_attributes(self):
        name, url = self.create_queue("idem", attributes={"VisibilityTimeout": "69",
                                                          "DelaySeconds": "1"})
        same = {"QueueName": name}
        self.assertEqual(self.sqs.create_queue(**same)["QueueUrl"], url)
        self.assertEqual(self.sqs.create_queue(
            QueueName=name, Attributes={"VisibilityTimeout": "69", "DelaySeconds": "1"})[
            "QueueUrl"], url)
        self.assertEqual(self.sqs.create_queue(
            QueueName=name, Attributes={"DelaySeconds": "1"})["QueueUrl"], url)

    def test_create_queue_with_different_attributes_fails(self):
        name, url = self.create_queue("diff", attributes={"DelaySeconds": "1"})
        self.assertSqsError(self.raw.create_queue, "QueueAlreadyExists", shape="QueueNameExists",
                            QueueName=name, Attributes={"DelaySeconds": "2"})
        # After SetQueueAttributes the new values are the ones that compare equal.
        self.sqs.set_queue_attributes(QueueUrl=url, Attributes={"DelaySeconds": "2"})
        self.assertEqual(self.sqs.create_queue(
            QueueName=name, Attributes={"DelaySeconds": "2"})["QueueUrl"], url)

    def test_create_queue_rejects_invalid_names(self):
        for bad in ["bad name", "bad!name", "slash/name", "x" * 81, "dot.name"]:
            with self.subTest(name=bad):
                self.assertSqsError(self.raw.create_queue, "InvalidParameterValue",
                                    QueueName=bad)

    def test_create_queue_accepts_80_char_name(self):
        name = ("n-" + unique_name("long")).ljust(80, "x")[:80]
        url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        self.assertTrue(url.endswith("/" + name))

    def test_standard_queue_name_cannot_end_in_fifo(self):
        self.assertSqsError(self.raw.create_queue, "InvalidParameterValue",
                            QueueName=unique_name("std") + ".fifo")

    def test_fifo_queue_creation_is_unsupported(self):
        self.assertSqsError(self.raw.create_queue, "AWS.SimpleQueueService.UnsupportedOperation",
                            shape="UnsupportedOperation", QueueName=unique_name("f") + ".fifo",
                            Attributes={"FifoQueue": "true"})
        # What SQS answers whether or not it supports FIFO queues:
        self.assertSqsError(self.raw.create_queue, "InvalidParameterValue",
                            QueueName=unique_name("nosuffix"), Attributes={"FifoQueue": "true"})
        _, url = self.create_queue("std")
        for name in ("FifoQueue", "ContentBasedDeduplication"):
            with self.assertRaises(ClientError) as cm:
                self.raw.set_queue_attributes(QueueUrl=url, Attributes={name: "true"})
            self.assertEqual(cm.exception.response["Error"]["Code"], "InvalidAttributeName")
            self.assertEqual(cm.exception.response["Error"]["Message"], f"Unknown Attribute {name}.")

    def test_fifo_only_message_parameters_are_refused_on_standard_queues(self):
        _, url = self.create_queue("nodedup")
        with self.assertRaises(ClientError) as cm:
            self.raw.send_message(QueueUrl=url, MessageBody="x", MessageDeduplicationId="d1")
        self.assertEqual(cm.exception.response["Error"]["Code"], "InvalidParameterValue")
        self.assertEqual(cm.exception.response["Error"]["Message"],
                         "Value d1 for parameter MessageDeduplicationId is invalid. Reason: The "
                         "request include parameter that is not valid for this queue type.")
        self.wait_for_counts(url, Messages=0)

    def test_kms_and_sqs_managed_encryption_exclude_each_other(self):
        _, url = self.create_queue("sse")
        with self.assertRaises(ClientError) as cm:
            self.raw.set_queue_attributes(QueueUrl=url, Attributes={
                "KmsMasterKeyId": "testKeyId", "SqsManagedSseEnabled": "true"})
        self.assertEqual(cm.exception.response["Error"]["Code"], "InvalidAttributeName")
        self.assertIn("either enable KMS SSE or SQS SSE", cm.exception.response["Error"]["Message"])
        self.assertSqsError(self.raw.create_queue, "InvalidAttributeName",
                            QueueName=unique_name("sse2"), Attributes={
                                "KmsMasterKeyId": "k", "SqsManagedSseEnabled": "true"})

    def test_create_queue_attribute_ranges(self):
        out_of_range = {
            "VisibilityTimeout": ["-1", "43201", "abc"],
            "MessageRetentionPeriod": ["59", "1209601"],
            "MaximumMessageSize": ["1023", "1048577"],
            "DelaySeconds": ["-1", "901"],
            "ReceiveMessageWaitTimeSeconds": ["-1", "21"],
        }
        for attr, values in out_of_range.items():
            for v in values:
                with self.subTest(attr=attr, value=v):
                    self.assertSqsError(self.raw.create_queue, "InvalidAttributeValue",
                                        shape="InvalidAttributeValue",
                                        QueueName=unique_name("range"), Attributes={attr: v})

    def test_create_queue_accepts_range_limits(self):
        lows = {"VisibilityTimeout": "0", "MessageRetentionPeriod": "60",
                "MaximumMessageSize": "1024", "DelaySeconds": "0",
                "ReceiveMessageWaitTimeSeconds": "0"}
        highs = {"VisibilityTimeout": "43200", "MessageRetentionPeriod": "1209600",
                 "MaximumMessageSize": "1048576", "DelaySeconds": "900",
                 "ReceiveMessageWaitTimeSeconds": "20"}
        for limits in (lows, highs):
            _, url = self.create_queue("lim", attributes=limits)
            got = self.attrs(url, limits.keys())
            self.assertEqual(got, limits)

    def test_create_queue_unknown_attribute(self):
        self.assertSqsError(self.raw.create_queue, "InvalidAttributeName",
                            shape="InvalidAttributeName", QueueName=unique_name("unk"),
                            Attributes={"NoSuchAttribute": "1"})

    def test_get_queue_url_unknown_queue(self):
        self.assertSqsError(self.raw.get_queue_url, "AWS.SimpleQueueService.NonExistentQueue",
                            shape="QueueDoesNotExist", QueueName=unique_name("missing"))
        # The idiom applications use, with botocore's client-side validation on.
        with self.assertRaises(self.sqs.exceptions.QueueDoesNotExist) as cm:
            self.sqs.get_queue_url(QueueName=unique_name("missing"))
        self.assertEqual(cm.exception.response["Error"]["Code"],
                         "AWS.SimpleQueueService.NonExistentQueue")

    def test_get_queue_url_with_owner_account(self):
        name, url = self.create_queue("owner")
        got = self.sqs.get_queue_url(QueueName=name,
                                     QueueOwnerAWSAccountId=self.server.account_id)
        self.assertEqual(got["QueueUrl"], url)
        other = "123456789012" if self.server.account_id != "123456789012" else "210987654321"
        with self.assertRaises(self.sqs.exceptions.QueueDoesNotExist):
            self.sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=other)

    def test_list_queues_by_prefix(self):
        prefix = unique_name("lp")
        urls = {self.sqs.create_queue(QueueName=f"{prefix}-a{i}")["QueueUrl"] for i in range(3)}
        other = self.sqs.create_queue(QueueName=f"{prefix}x-b")["QueueUrl"]
        got = self.sqs.list_queues(QueueNamePrefix=f"{prefix}-a")
        self.assertEqual(set(got["QueueUrls"]), urls)
        self.assertNotIn("NextToken", got)
        every = self.sqs.list_queues()
        self.assertTrue(urls | {other} <= set(every["QueueUrls"]))
        none = self.sqs.list_queues(QueueNamePrefix=unique_name("nothing"))
        self.assertEqual(none.get("QueueUrls", []), [])

    def test_list_queues_pagination(self):
        prefix = unique_name("pg")
        urls = {self.sqs.create_queue(QueueName=f"{prefix}-{i}")["QueueUrl"] for i in range(5)}
        seen, pages, token = [], [], None
        while True:
            kwargs = {"QueueNamePrefix": prefix, "MaxResults": 2}
            if token:
                kwargs["NextToken"] = token
            page = self.sqs.list_queues(**kwargs)
            pages.append(len(page.get("QueueUrls", [])))
            seen.extend(page.get("QueueUrls", []))
            token = page.get("NextToken")
            if not token:
                break
            self.assertLess(len(pages), 10, "pagination does not terminate")
        self.assertEqual(sorted(seen), sorted(urls), "each queue exactly once")
        self.assertTrue(all(n <= 2 for n in pages), pages)
        self.assertEqual(sum(pages), 5)
        # boto3's paginator drives the same tokens.
        paged = []
        for page in self.sqs.get_paginator("list_queues").paginate(
                QueueNamePrefix=prefix, PaginationConfig={"PageSize": 3}):
            paged.extend(page.get("QueueUrls", []))
        self.assertEqual(sorted(paged), sorted(urls))

    def test_list_queues_max_results_range(self):
        for v in (0, 1001):
            with self.subTest(MaxResults=v):
                self.assertSqsError(self.raw.list_queues, "InvalidParameterValue", MaxResults=v)
        self.sqs.list_queues(MaxResults=1000)

    def test_queue_names_are_case_sensitive(self):
        name, url = self.create_queue("Case")
        self.assertSqsError(self.raw.get_queue_url, "AWS.SimpleQueueService.NonExistentQueue",
                            shape="QueueDoesNotExist", QueueName=name.lower())
        other = self.sqs.create_queue(QueueName=name.lower())["QueueUrl"]
        self.assertNotEqual(other, url)

    def test_delete_queue_then_name_is_reusable(self):
        name, url = self.create_queue("del")
        self.sqs.send_message(QueueUrl=url, MessageBody="before delete")
        self.sqs.delete_queue(QueueUrl=url)
        missing = "AWS.SimpleQueueService.NonExistentQueue"
        self.assertSqsError(self.raw.get_queue_url, missing, shape="QueueDoesNotExist",
                            QueueName=name)
        self.assertSqsError(self.raw.send_message, missing, shape="QueueDoesNotExist",
                            QueueUrl=url, MessageBody="x")
        self.assertSqsError(self.raw.receive_message, missing, shape="QueueDoesNotExist",
                            QueueUrl=url)
        self.assertSqsError(self.raw.get_queue_attributes, missing, shape="QueueDoesNotExist",
                            QueueUrl=url, AttributeNames=["All"])
        self.assertSqsError(self.raw.delete_queue, missing, shape="QueueDoesNotExist",
                            QueueUrl=url)
        self.assertNotIn(url, self.sqs.list_queues(QueueNamePrefix=name).get("QueueUrls", []))
        again = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        self.assertEqual(again, url)
        self.assertEqual(self.sqs.receive_message(QueueUrl=again).get("Messages", []), [])
        self.wait_for_counts(again, Messages=0, MessagesNotVisible=0, MessagesDelayed=0)

    def test_unknown_queue_for_every_queue_action(self):
        url = self.server.queue_url(unique_name("nope"))
        missing = "AWS.SimpleQueueService.NonExistentQueue"
        calls = {
            "set_queue_attributes": dict(Attributes={"DelaySeconds": "1"}),
            "purge_queue": {},
            "tag_queue": dict(Tags={"a": "b"}),
            "untag_queue": dict(TagKeys=["a"]),
            "list_queue_tags": {},
            "send_message_batch": dict(Entries=[{"Id": "a", "MessageBody": "b"}]),
            "delete_message": dict(ReceiptHandle="garbage"),
            "change_message_visibility": dict(ReceiptHandle="garbage", VisibilityTimeout=1),
            "list_dead_letter_source_queues": {},
        }
        for op, kwargs in calls.items():
            with self.subTest(op=op):
                self.assertSqsError(getattr(self.raw, op), missing, shape="QueueDoesNotExist",
                                    QueueUrl=url, **kwargs)


# ------------------------------------------------------------------------------------------
class QueueAttributesTest(SqsTestCase):
    def test_all_attributes_of_a_new_queue(self):
        before = int(time.time())
        name, url = self.create_queue("attrs")
        after = int(time.time())
        got = self.attrs(url)
        for k, v in DEFAULT_ATTRIBUTES.items():
            self.assertEqual(got.get(k), v, k)
        self.assertEqual(got["QueueArn"], self.server.queue_arn(name))
        for ts in ("CreatedTimestamp", "LastModifiedTimestamp"):
            self.assertRegex(got[ts], r"^\d+$", f"{ts} is epoch seconds")
            self.assertTrue(before - 2 <= int(got[ts]) <= after + 2, (ts, got[ts]))
        self.assertNotIn("RedrivePolicy", got)
        self.assertNotIn("FifoQueue", got, "standard queues do not report FifoQueue")

    def test_policy_and_encryption_attributes(self):
        # Documented queue attributes that infrastructure tools (CloudFormation, Terraform,
        # CDK) set on every queue; a new queue reports SqsManagedSseEnabled=true.
        name, url = self.create_queue("pol")
        with self.subTest("SqsManagedSseEnabled default"):
            self.assertEqual(self.attrs(url).get("SqsManagedSseEnabled"), "true")
        policy = json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sqs:SendMessage",
            "Resource": self.server.queue_arn(name)}]})
        with self.subTest("Policy"):
            self.sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})
            self.assertEqual(json.loads(self.attrs(url, ["Policy"])["Policy"]),
                             json.loads(policy))
        with self.subTest("KMS attributes"):
            kms = {"KmsMasterKeyId": "alias/aws/sqs", "KmsDataKeyReusePeriodSeconds": "600"}
            self.sqs.set_queue_attributes(QueueUrl=url, Attributes=kms)
            self.assertEqual(self.attrs(url, kms.keys()), kms)
            # One kind of server-side encryption per queue: KMS turned SSE-SQS off.
            self.assertEqual(self.attrs(url, ["SqsManagedSseEnabled"]),
                             {"SqsManagedSseEnabled": "false"})

    def test_each_attribute_name_alone(self):
        name, url = self.create_queue("each")
        for n in QUEUE_ATTRIBUTE_NAMES:
            with self.subTest(attribute=n):
                self.assertEqual(list(self.attrs(url, [n]).keys()), [n])

    def test_no_attribute_names_returns_no_attributes(self):
        _, url = self.create_queue("none")
        resp = self.sqs.get_queue_attributes(QueueUrl=url)
        self.assertEqual(resp.get("Attributes", {}), {})

    def test_unknown_attribute_name(self):
        _, url = self.create_queue("unk")
        e = self.assertSqsError(self.raw.get_queue_attributes, "InvalidAttributeName",
                                shape="InvalidAttributeName", QueueUrl=url,
                                AttributeNames=["Foobar"])
        self.assertEqual(e.response["Error"]["Message"], "Unknown Attribute Foobar.")

    def test_set_queue_attributes_round_trip_and_last_modified(self):
        _, url = self.create_queue("set")
        first = self.attrs(url)
        time.sleep(1.1)
        change = {"VisibilityTimeout": "69", "MaximumMessageSize": "2048",
                  "DelaySeconds": "42", "MessageRetentionPeriod": "604800",
                  "ReceiveMessageWaitTimeSeconds": "3"}
        self.sqs.set_queue_attributes(QueueUrl=url, Attributes=change)
        got = self.attrs(url)
        for k, v in change.items():
            self.assertEqual(got[k], v, k)
        self.assertEqual(got["CreatedTimestamp"], first["CreatedTimestamp"])
        self.assertGreater(int(got["LastModifiedTimestamp"]),
                           int(first["LastModifiedTimestamp"]))

    def test_set_queue_attributes_errors(self):
        _, url = self.create_queue("seterr")
        for attr, v in [("VisibilityTimeout", "43201"), ("MessageRetentionPeriod", "59"),
                        ("MaximumMessageSize", "1048577"), ("DelaySeconds", "901"),
                        ("ReceiveMessageWaitTimeSeconds", "21"), ("DelaySeconds", "x")]:
            with self.subTest(attr=attr, value=v):
                self.assertSqsError(self.raw.set_queue_attributes, "InvalidAttributeValue",
                                    shape="InvalidAttributeValue", QueueUrl=url,
                                    Attributes={attr: v})
        for attr in ["NoSuchAttribute", "QueueArn", "ApproximateNumberOfMessages",
                     "CreatedTimestamp"]:
            with self.subTest(attr=attr):
                self.assertSqsError(self.raw.set_queue_attributes, "InvalidAttributeName",
                                    shape="InvalidAttributeName", QueueUrl=url,
                                    Attributes={attr: "1"})
        self.assertEqual(self.attrs(url, ["VisibilityTimeout"])["VisibilityTimeout"], "30",
                         "a rejected SetQueueAttributes changes nothing")

    def test_approximate_counters(self):
        _, url = self.create_queue("cnt")
        for i in range(3):
            self.sqs.send_message(QueueUrl=url, MessageBody=f"visible {i}")
        self.sqs.send_message(QueueUrl=url, MessageBody="delayed", DelaySeconds=60)
        self.wait_for_counts(url, Messages=3, MessagesNotVisible=0, MessagesDelayed=1)
        got = receive_until(self.sqs, url, 2, VisibilityTimeout=60)
        self.assertEqual(len(got), 2)
        self.wait_for_counts(url, Messages=1, MessagesNotVisible=2, MessagesDelayed=1)
        self.sqs.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])
        self.wait_for_counts(url, Messages=1, MessagesNotVisible=1, MessagesDelayed=1)


# ------------------------------------------------------------------------------------------
class MessageTest(SqsTestCase):
    def test_send_receive_delete(self):
        _, url = self.create_queue("msg")
        body = 'hello "sqs" &amp; <xml> \r\n\t done'
        sent = self.sqs.send_message(QueueUrl=url, MessageBody=body)
        self.assertEqual(sent["MD5OfMessageBody"], md5_hex(body))
        self.assertNotIn("MD5OfMessageAttributes", sent)
        self.assertNotIn("SequenceNumber", sent, "standard queues have no sequence numbers")
        self.assertRegex(sent["MessageId"],
                         r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
        got = self.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2)["Messages"]
        self.assertEqual(len(got), 1)
        m = got[0]
        self.assertEqual(m["Body"], body)
        self.assertEqual(m["MessageId"], sent["MessageId"])
        self.assertEqual(m["MD5OfBody"], md5_hex(body))
        self.assertTrue(m["ReceiptHandle"])
        self.assertNotIn("Attributes", m, "no system attributes unless asked for")
        self.assertNotIn("MessageAttributes", m)
        self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        self.assertEqual(self.sqs.receive_message(QueueUrl=url).get("Messages", []), [])
        self.wait_for_counts(url, Messages=0, MessagesNotVisible=0)

    def test_request_ids(self):
        _, url = self.create_queue("rid")
        a = self.sqs.send_message(QueueUrl=url, MessageBody="a")["ResponseMetadata"]
        b = self.sqs.send_message(QueueUrl=url, MessageBody="b")["ResponseMetadata"]
        self.assertTrue(a["RequestId"])
        self.assertEqual(a["HTTPHeaders"].get("x-amzn-requestid"), a["RequestId"])
        self.assertNotEqual(a["RequestId"], b["RequestId"])

    def test_unicode_bodies_round_trip(self):
        _, url = self.create_queue("uni")
        bodies = ["tab\there", "line\nfeed", "cr\rreturn", "é ü ß 日本語",
                  "\ue000 private use", "\ufffd replacement", "emoji \U0001F600 \U0010FFFF",
                  "\ud7ff edge"]
        for b in bodies:
            sent = self.sqs.send_message(QueueUrl=url, MessageBody=b)
            self.assertEqual(sent["MD5OfMessageBody"], md5_hex(b), repr(b))
        got = receive_until(self.sqs, url, len(bodies))
        self.assertEqual(sorted(m["Body"] for m in got), sorted(bodies))
        for m in got:
            self.assertEqual(m["MD5OfBody"], md5_hex(m["Body"]))

    def test_invalid_body_characters(self):
        _, url = self.create_queue("badchar")
        for bad in ["nul \x00", "bs \x08", "us \x1f", "noncharacter \uffff", "\ufffe"]:
            with self.subTest(body=repr(bad)):
                self.assertSqsError(self.raw.send_message, "InvalidMessageContents",
                                    shape="InvalidMessageContents", QueueUrl=url,
                                    MessageBody=bad)
        self.wait_for_counts(url, Messages=0)

    def test_empty_body_is_rejected(self):
        _, url = self.create_queue("empty")
        self.assertSqsError(self.raw.send_message, "MissingParameter", QueueUrl=url,
                            MessageBody="")

    def test_message_group_id_on_a_standard_queue(self):
        # Fair queues: a standard queue keeps a MessageGroupId and returns it on receive.
        _, url = self.create_queue("fair")
        group = "tenant-42:A/b_c.~!"
        self.sqs.send_message(QueueUrl=url, MessageBody="g", MessageGroupId=group)
        self.sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": "1", "MessageBody": "b", "MessageGroupId": "x" * 128},
            {"Id": "2", "MessageBody": "none"}])
        for bad in ("g" * 129, "sp ace", "tab\t", "é"):
            self.assertSqsError(self.raw.send_message, "InvalidParameterValue", QueueUrl=url,
                                MessageBody="x", MessageGroupId=bad)
        got = receive_until(self.sqs, url, 3, MessageSystemAttributeNames=["MessageGroupId"])
        by_body = {m["Body"]: m.get("Attributes", {}).get("MessageGroupId") for m in got}
        self.assertEqual(by_body, {"g": group, "b": "x" * 128, "none": None})

    def test_system_attributes(self):
        _, url = self.create_queue("sys")
        t0 = int(time.time() * 1000)
        self.sqs.send_message(QueueUrl=url, MessageBody="sys")
        first = self.sqs.receive_message(QueueUrl=url, MessageSystemAttributeNames=["All"],
                                         VisibilityTimeout=0, WaitTimeSeconds=2)["Messages"][0]
        a = first["Attributes"]
        for k in ("SentTimestamp", "ApproximateReceiveCount",
                  "ApproximateFirstReceiveTimestamp", "SenderId"):
            self.assertIn(k, a)
        self.assertEqual(a["ApproximateReceiveCount"], "1")
        self.assertRegex(a["SentTimestamp"], r"^\d+$", "epoch milliseconds")
        self.assertTrue(t0 - 2000 <= int(a["SentTimestamp"]) <= t0 + 5000, a)
        self.assertGreaterEqual(int(a["ApproximateFirstReceiveTimestamp"]),
                                int(a["SentTimestamp"]))
        self.assertTrue(a["SenderId"])
        # The legacy AttributeNames parameter still works, and counts go up per receive.
        second = self.sqs.receive_message(QueueUrl=url, AttributeNames=["All"],
                                          VisibilityTimeout=0)["Messages"][0]["Attributes"]
        self.assertEqual(second["ApproximateReceiveCount"], "2")
        self.assertEqual(second["ApproximateFirstReceiveTimestamp"],
                         a["ApproximateFirstReceiveTimestamp"])
        self.assertEqual(second["SentTimestamp"], a["SentTimestamp"])
        only = self.sqs.receive_message(QueueUrl=url, MessageSystemAttributeNames=[
            "ApproximateReceiveCount"])["Messages"][0]["Attributes"]
        self.assertEqual(only, {"ApproximateReceiveCount": "3"})

    def test_aws_trace_header(self):
        _, url = self.create_queue("trace")
        trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
        user = {"timestamp": {"DataType": "Number", "StringValue": "1493147359900"}}
        system = {"AWSTraceHeader": {"DataType": "String", "StringValue": trace}}
        plain = self.sqs.send_message(QueueUrl=url, MessageBody="t", MessageAttributes=user)
        traced = self.sqs.send_message(QueueUrl=url, MessageBody="t", MessageAttributes=user,
                                       MessageSystemAttributes=system)
        self.assertEqual(plain["MD5OfMessageAttributes"], traced["MD5OfMessageAttributes"],
                         "system attributes do not change MD5OfMessageAttributes")
        self.assertEqual(plain["MD5OfMessageAttributes"], md5_of_attributes(user))
        self.assertNotIn("MD5OfMessageSystemAttributes", plain)
        self.assertEqual(traced["MD5OfMessageSystemAttributes"], md5_of_attributes(system))
        got = receive_until(self.sqs, url, 2, MessageSystemAttributeNames=["All"])
        by_id = {m["MessageId"]: m for m in got}
        self.assertEqual(by_id[traced["MessageId"]]["Attributes"].get("AWSTraceHeader"), trace)
        self.assertNotIn("AWSTraceHeader", by_id[plain["MessageId"]]["Attributes"])

    def test_x_amzn_trace_id_header_becomes_aws_trace_header(self):
        # What X-Ray-instrumented producers send: the header applies to every message of the
        # call unless a message sets AWSTraceHeader itself.
        _, url = self.create_queue("tracehdr")
        header = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"
        own = "Root=1-00000000-000000000000000000000001;Sampled=0"

        def add_header(request, **_):
            request.headers["X-Amzn-Trace-Id"] = header
        events = self.sqs.meta.events
        events.register("before-sign.sqs.SendMessageBatch", add_header)
        try:
            self.sqs.send_message_batch(QueueUrl=url, Entries=[
                {"Id": "plain", "MessageBody": "plain"},
                {"Id": "own", "MessageBody": "own", "MessageSystemAttributes": {
                    "AWSTraceHeader": {"DataType": "String", "StringValue": own}}}])
        finally:
            events.unregister("before-sign.sqs.SendMessageBatch", add_header)
        got = receive_until(self.sqs, url, 2, MessageSystemAttributeNames=["AWSTraceHeader"])
        by_body = {m["Body"]: m["Attributes"].get("AWSTraceHeader") for m in got}
        self.assertEqual(by_body, {"plain": header, "own": own})

    def test_message_attributes_all_types_and_md5(self):
        _, url = self.create_queue("mattr")
        attrs = {
            "str": {"DataType": "String", "StringValue": "héllo wörld"},
            "num": {"DataType": "Number", "StringValue": "-12.5e3"},
            "int": {"DataType": "Number.int", "StringValue": "42"},
            "flt": {"DataType": "Number.float", "StringValue": "3.14159"},
            "lbl": {"DataType": "String.custom-label", "StringValue": "x"},
            "bin": {"DataType": "Binary", "BinaryValue": bytes(range(256))},
            "gif": {"DataType": "Binary.gif", "BinaryValue": b"GIF89a\x00\x01"},
            "a.b-c_D": {"DataType": "String", "StringValue": "dotted name"},
        }
        sent = self.sqs.send_message(QueueUrl=url, MessageBody="attrs", MessageAttributes=attrs)
        self.assertEqual(sent["MD5OfMessageAttributes"], md5_of_attributes(attrs))
        m = self.sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"],
                                     WaitTimeSeconds=2)["Messages"][0]
        self.assertEqual(m["MessageAttributes"], attrs)
        self.assertEqual(m["MD5OfMessageAttributes"], md5_of_attributes(attrs))

    def test_message_attribute_name_filters(self):
        _, url = self.create_queue("filter", attributes={"VisibilityTimeout": "0"})
        attrs = {"Help.Me": {"DataType": "String", "StringValue": "Me"},
                 "Hello": {"DataType": "String", "StringValue": "There"},
                 "General": {"DataType": "String", "StringValue": "Kenobi"}}
        sent = self.sqs.send_message(QueueUrl=url, MessageBody="msg", MessageAttributes=attrs)
        self.assertEqual(sent["MD5OfMessageAttributes"], "4c360f3fdafd970e05fae2f149d997f5")

        def receive(names):
            return self.sqs.receive_message(QueueUrl=url, MessageAttributeNames=names,
                                            WaitTimeSeconds=2)["Messages"][0]

        cases = [
            (["All"], attrs),
            ([".*"], attrs),
            (["*"], attrs),  # AWS answers every attribute here too (LocalStack's AWS snapshot)
            (["Hello", "General"], {k: attrs[k] for k in ("Hello", "General")}),
            (["Foo", "Hello"], {"Hello": attrs["Hello"]}),
            (["Hel.*"], {k: attrs[k] for k in ("Hello", "Help.Me")}),
            (["Foo", "Help"], {}),
            ([], {}),
        ]
        for names, want in cases:
            with self.subTest(names=names):
                m = receive(names)
                if want:
                    self.assertEqual(m.get("MessageAttributes"), want)
                    self.assertEqual(m.get("MD5OfMessageAttributes"), md5_of_attributes(want),
                                     "MD5 covers only the attributes returned")
                else:
                    self.assertNotIn("MessageAttributes", m)
                    self.assertNotIn("MD5OfMessageAttributes", m)

    def test_message_attribute_validation(self):
        _, url = self.create_queue("mattrerr")
        ok = {"DataType": "String", "StringValue": "v"}
        ten = {f"a{i}": ok for i in range(10)}
        self.sqs.send_message(QueueUrl=url, MessageBody="ten is fine", MessageAttributes=ten)
        # Letters of any script are alphanumeric to SQS (AWS-validated in LocalStack's suite).
        self.sqs.send_message(QueueUrl=url, MessageBody="x",
                              MessageAttributes={"attr.1øßä": ok, "中文": ok})
        with self.assertRaises(ClientError) as cm:
            self.raw.send_message(QueueUrl=url, MessageBody="x", MessageAttributes={
                "ErrorDetails": {"DataType": "String", "StringValue": ""}})
        self.assertEqual(cm.exception.response["Error"]["Message"],  # SQS's words
                         "Message (user) attribute 'ErrorDetails' must contain a non-empty value "
                         "of type 'String'.")
        bad_sets = {
            "eleven attributes": {f"a{i}": ok for i in range(11)},
            "AWS. prefix": {"AWS.reserved": ok},
            "Amazon. prefix (any case)": {"aMaZoN.reserved": ok},
            "leading dot": {".lead": ok},
            "trailing dot": {"trail.": ok},
            "double dot": {"a..b": ok},
            "space in name": {"bad name": ok},
            "punctuation in name": {"bad!name": ok},
            "section sign in name": {"bad§name": ok},
            "name over 256 chars": {"L" * 257: ok},
            "empty string value": {"e": {"DataType": "String", "StringValue": ""}},
            "unknown type": {"t": {"DataType": "Invalid", "StringValue": "v"}},
            "number not numeric": {"n": {"DataType": "Number", "StringValue": "abc"}},
            "control char in value": {"c": {"DataType": "String", "StringValue": "x\x08y"}},
            "empty binary": {"b": {"DataType": "Binary", "BinaryValue": b""}},
        }
        for what, attrs in bad_sets.items():
            with self.subTest(what):
                self.assertSqsError(self.raw.send_message, "InvalidParameterValue", QueueUrl=url,
                                    MessageBody="x", MessageAttributes=attrs)
        self.wait_for_counts(url, Messages=2)

    def test_maximum_message_size_default_1mib(self):
        _, url = self.create_queue("big")
        body = "a" * MIB
        sent = self.sqs.send_message(QueueUrl=url, MessageBody=body)
        self.assertEqual(sent["MD5OfMessageBody"], md5_hex(body))
        self.assertSqsError(self.raw.send_message, "InvalidParameterValue", QueueUrl=url,
                            MessageBody="a" * (MIB + 1))
        m = self.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2)["Messages"][0]
        self.assertEqual(len(m["Body"]), MIB)
        self.assertEqual(m["MD5OfBody"], md5_hex(body))

    def test_size_counts_utf8_bytes_and_attributes(self):
        _, url = self.create_queue("bytes")
        self.sqs.send_message(QueueUrl=url, MessageBody="é" * (MIB // 2))  # exactly 1 MiB
        self.assertSqsError(self.raw.send_message, "InvalidParameterValue", QueueUrl=url,
                            MessageBody="é" * (MIB // 2) + "a")
        attrs = {"k": {"DataType": "String", "StringValue": "x"},
                 "b": {"DataType": "Binary", "BinaryValue": b"\x00\x01\x02"}}
        room = MIB - attributes_size(attrs)
        self.sqs.send_message(QueueUrl=url, MessageBody="a" * room, MessageAttributes=attrs)
        self.assertSqsError(self.raw.send_message, "InvalidParameterValue", QueueUrl=url,
                            MessageBody="a" * (room + 1), MessageAttributes=attrs)

    def test_queue_maximum_message_size(self):
        _, url = self.create_queue("small", attributes={"MaximumMessageSize": "1024"})
        self.sqs.send_message(QueueUrl=url, MessageBody="a" * 1024)
        self.assertSqsError(self.raw.send_message, "InvalidParameterValue", QueueUrl=url,
                            MessageBody="a" * 1025)
        attrs = {"k": {"DataType": "String", "StringValue": "x"}}
        self.assertSqsError(self.raw.send_message, "InvalidParameterValue", QueueUrl=url,
                            MessageBody="a" * (1024 - attributes_size(attrs) + 1),
                            MessageAttributes=attrs)

    def test_receive_parameter_validation(self):
        _, url = self.create_queue("rcverr")
        for kwargs in [dict(MaxNumberOfMessages=0), dict(MaxNumberOfMessages=11),
                       dict(WaitTimeSeconds=21), dict(WaitTimeSeconds=-1),
                       dict(VisibilityTimeout=43201), dict(VisibilityTimeout=-1)]:
            with self.subTest(**kwargs):
                self.assertSqsError(self.raw.receive_message, "InvalidParameterValue",
                                    QueueUrl=url, **kwargs)

    def test_max_number_of_messages(self):
        _, url = self.create_queue("many")
        for i in range(15):
            self.sqs.send_message(QueueUrl=url, MessageBody=f"m{i}")
        first = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                         WaitTimeSeconds=1)["Messages"]
        self.assertTrue(1 <= len(first) <= 10, len(first))
        one = self.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
        self.assertEqual(len(one), 1, "MaxNumberOfMessages defaults to 1")
        rest = receive_until(self.sqs, url, 15 - len(first) - 1)
        bodies = [m["Body"] for m in first + one + rest]
        self.assertEqual(sorted(bodies), sorted(f"m{i}" for i in range(15)))
        self.assertEqual(len(set(m["MessageId"] for m in first + one + rest)), 15)

    def test_concurrent_receivers_lose_nothing(self):
        _, url = self.create_queue("conc")
        total = 60
        for start in range(0, total, 10):
            self.sqs.send_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "MessageBody": f"c{i}"} for i in range(start, start + 10)])
        got, lock = [], threading.Lock()

        def worker():
            c = make_client(self.server.endpoint)
            empty = 0
            while empty < 2:
                r = c.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                      VisibilityTimeout=120).get("Messages", [])
                empty = 0 if r else empty + 1
                if r:
                    c.delete_message_batch(QueueUrl=url, Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(r)])
                with lock:
                    got.extend(m["Body"] for m in r)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        # Standard queues deliver at least once: duplicates are allowed, losses are not.
        self.assertEqual(set(got), {f"c{i}" for i in range(total)})
        self.wait_for_counts(url, Messages=0, MessagesNotVisible=0)

    def test_new_receipt_handle_on_every_receive(self):
        _, url = self.create_queue("rh")
        self.sqs.send_message(QueueUrl=url, MessageBody="x")
        handles = []
        for _ in range(3):
            m = self.sqs.receive_message(QueueUrl=url, VisibilityTimeout=0,
                                         WaitTimeSeconds=1)["Messages"][0]
            handles.append(m["ReceiptHandle"])
        self.assertEqual(len(set(handles)), 3)
        # The newest handle deletes the message.
        self.sqs.delete_message(QueueUrl=url, ReceiptHandle=handles[-1])
        self.wait_for_counts(url, Messages=0, MessagesNotVisible=0)

    def test_delete_message_errors_and_idempotence(self):
        _, url = self.create_queue("delmsg")
        self.assertSqsError(self.raw.delete_message, "ReceiptHandleIsInvalid",
                            shape="ReceiptHandleIsInvalid", QueueUrl=url,
                            ReceiptHandle="garbage")
        self.sqs.send_message(QueueUrl=url, MessageBody="x")
        m = self.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"][0]
        for _ in range(3):  # deleting an already deleted message succeeds
            self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    def test_delete_with_handle_whose_visibility_expired(self):
        _, url = self.create_queue("stale")
        self.sqs.send_message(QueueUrl=url, MessageBody="x")
        m = self.sqs.receive_message(QueueUrl=url, VisibilityTimeout=1,
                                     WaitTimeSeconds=1)["Messages"][0]
        time.sleep(1.5)
        self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        self.wait_for_counts(url, Messages=0, MessagesNotVisible=0)


# ------------------------------------------------------------------------------------------
class VisibilityTest(SqsTestCase):
    def test_queue_visibility_timeout_expiry(self):
        _, url = self.create_queue("vis", attributes={"VisibilityTimeout": "1"})
        self.sqs.send_message(QueueUrl=url, MessageBody="x")
        first = self.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"][0]
        t0 = time.monotonic()
        self.assertEqual(self.sqs.receive_message(QueueUrl=url).get("Messages", []), [],
                         "in flight: invisible")
        self.wait_for_counts(url, Messages=0, MessagesNotVisible=1)
        again = self.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5,
                                         AttributeNames=["ApproximateReceiveCount"])
        elapsed = time.monotonic() - t0
        self.assertEqual(len(again.get("Messages", [])), 1, "visible again after 1 s")
        self.assertLess(elapsed, 3.5, "a long poll returns once the message is visible again")
        m = again["Messages"][0]
        self.assertEqual(m["MessageId"], first["MessageId"])
        self.assertNotEqual(m["ReceiptHandle"], first["ReceiptHandle"])
        self.assertEqual(m["Attributes"]["ApproximateReceiveCount"], "2")

    def test_receive_visibility_override(self):
        _, url = self.create_queue("visov")  # queue default 30 s
        self.sqs.send_message(QueueUrl=url, MessageBody="x")
        self.sqs.receive_message(QueueUrl=url, VisibilityTimeout=1, WaitTimeSeconds=1)
        self.assertEqual(self.sqs.receive_message(QueueUrl=url).get("Messages", []), [])
        t0 = time.monotonic()
        again = self.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)
        self.assertEqual(len(again.get("Messages", [])), 1, "1 s override, not the queue's 30 s")
        self.assertLess(time.monotonic() - t0, 3.5)

    def test_receive_with_zero_visibility(self):
        _, url = self.create_queue("vis0")
        self.sqs.send_message(QueueUrl=url, MessageBody="x")
        a = self.sqs.receive_message(QueueUrl=url, VisibilityTimeout=0, WaitTimeSeconds=1)
        b = self.sqs.receive_message(QueueUrl=url)
        self.assertEqual(len(a["Messages"]), 1)
        self.assertEqual(len(b.get("Messages", [])), 1)
        self.assertEqual(self.sqs.receive_message(QueueUrl=url).get("Messages", []), [],
                         "the second receive used the queue's 30 s")

    def test_change_message_visibility(self):
        _, url = self.create_queue("cmv")
        self.sqs.send_message(QueueUrl=url, MessageBody="x")
        m = self.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"][0]
        self.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"],
                                           VisibilityTimeout=0)
        again = self.sqs.receive_message(QueueUrl=url, VisibilityTimeout=1, WaitTimeSeconds=1)
        self.assertEqual(again["Messages"][0]["MessageId"], m["MessageId"])
        handle = again["Messages"][0]["ReceiptHandle"]
        # Extend before the 1 s runs out: stays hidden past the original deadline.
        self.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle,
                                           VisibilityTimeout=4)
        time.sleep(1.5)
        self.assertEqual(self.sqs.receive_message(QueueUrl=url).get("Messages", []), [])
        self.assertSqsError(self.raw.change_message_visibility, "InvalidParameterValue",
                            QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=43201)

    def test_visibility_cannot_exceed_12_hours_from_receipt(self):
        # "The maximum is 12 hours" counted from the receive: extending a message received a
        # second ago by 43200 s goes past it and is rejected; a smaller extension is fine.
        _, url = self.create_queue("12h")
        self.sqs.send_message(QueueUrl=url, MessageBody="x")
        m = self.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"][0]
        time.sleep(1.2)
        self.assertSqsError(self.raw.change_message_visibility, "InvalidParameterValue",
                            QueueUrl=url, ReceiptHandle=m["ReceiptHandle"],
                            VisibilityTimeout=43200)
        self.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"],
                                           VisibilityTimeout=43000)

    def test_change_visibility_of_message_not_in_flight(self):
        _, url = self.create_queue("notinflight")
        self.sqs.send_message(QueueUrl=url, MessageBody="x")
        m = self.sqs.receive_message(QueueUrl=url, VisibilityTimeout=1,
                                     WaitTimeSeconds=1)["Messages"][0]
        time.sleep(1.5)  # visible again, not received since
        # SQS answers 200 and changes nothing (recorded against AWS in LocalStack's suite).
        self.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"],
                                           VisibilityTimeout=30)
        again = self.sqs.receive_message(QueueUrl=url, VisibilityTimeout=0).get("Messages", [])
        self.assertEqual(len(again), 1, "the change did not hide the message")
        # A handle from an earlier receive still changes the message in flight.
        self.sqs.receive_message(QueueUrl=url, VisibilityTimeout=300)
        self.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"],
                                           VisibilityTimeout=0)
        self.assertEqual(len(self.sqs.receive_message(QueueUrl=url).get("Messages", [])), 1)

    def test_change_visibility_errors(self):
        _, url = self.create_queue("cmverr")
        self.assertSqsError(self.raw.change_message_visibility, "ReceiptHandleIsInvalid",
                            shape="ReceiptHandleIsInvalid", QueueUrl=url,
                            ReceiptHandle="garbage", VisibilityTimeout=10)
        self.sqs.send_message(QueueUrl=url, MessageBody="x")
        m = self.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"][0]
        self.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"],
                                           VisibilityTimeout=42)
        self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        # Recorded from real SQS: InvalidParameterValue, "Message does not exist or is not
        # available for visibility timeout change."
        self.assertSqsError(self.raw.change_message_visibility, "InvalidParameterValue",
                            QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=42)


# ------------------------------------------------------------------------------------------
class DelayAndPollingTest(SqsTestCase):
    def test_message_delay(self):
        _, url = self.create_queue("delay")
        self.sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=2)
        t0 = time.monotonic()
        self.assertEqual(self.sqs.receive_message(QueueUrl=url).get("Messages", []), [])
        self.wait_for_counts(url, Messages=0, MessagesDelayed=1)
        got = self.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=6)
        elapsed = time.monotonic() - t0
        self.assertEqual([m["Body"] for m in got.get("Messages", [])], ["later"])
        self.assertGreater(elapsed, 1.5, "not before the delay")
        self.assertLess(elapsed, 4.5, "a long poll returns once the delay has passed")

    def test_queue_delay_and_per_message_override(self):
        _, url = self.create_queue("qdelay", attributes={"DelaySeconds": "60"})
        self.sqs.send_message(QueueUrl=url, MessageBody="queue default")
        self.sqs.send_message(QueueUrl=url, MessageBody="now", DelaySeconds=0)
        got = self.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1, MaxNumberOfMessages=10)
        self.assertEqual([m["Body"] for m in got.get("Messages", [])], ["now"])
        self.wait_for_counts(url, MessagesDelayed=1)

    def test_delay_validation(self):
        _, url = self.create_queue("delayerr")
        for v in (-1, 901):
            with self.subTest(delay=v):
                self.assertSqsError(self.raw.send_message, "InvalidParameterValue",
                                    QueueUrl=url, MessageBody="x", DelaySeconds=v)
        self.sqs.send_message(QueueUrl=url, MessageBody="x", DelaySeconds=900)

    def test_long_poll_returns_when_message_arrives(self):
        _, url = self.create_queue("lp")
        sender = make_client(self.server.endpoint)
        timer = threading.Timer(0.5, lambda: sender.send_message(QueueUrl=url,
                                                                 MessageBody="wake"))
        t0 = time.monotonic()
        timer.start()
        try:
            got = self.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)
        finally:
            timer.join()
        elapsed = time.monotonic() - t0
        self.assertEqual([m["Body"] for m in got.get("Messages", [])], ["wake"])
        self.assertGreaterEqual(elapsed, 0.4)
        self.assertLess(elapsed, 2.0, f"returned after {elapsed:.2f}s, not ~0.5s")

    def test_long_poll_times_out_empty(self):
        _, url = self.create_queue("lpempty")
        t0 = time.monotonic()
        got = self.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)
        elapsed = time.monotonic() - t0
        self.assertEqual(got.get("Messages", []), [])
        self.assertGreaterEqual(elapsed, 0.9)
        self.assertLess(elapsed, 3.0)

    def test_queue_receive_wait_time_applies(self):
        _, url = self.create_queue("lpq", attributes={"ReceiveMessageWaitTimeSeconds": "2"})
        t0 = time.monotonic()
        self.sqs.receive_message(QueueUrl=url)
        self.assertGreaterEqual(time.monotonic() - t0, 1.8, "queue default long poll")
        t0 = time.monotonic()
        self.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)
        self.assertLess(time.monotonic() - t0, 1.0, "WaitTimeSeconds=0 overrides")

    def test_long_poll_with_messages_present_does_not_block(self):
        _, url = self.create_queue("lpnb")
        self.sqs.send_message(QueueUrl=url, MessageBody="a")
        self.sqs.send_message(QueueUrl=url, MessageBody="b")
        t0 = time.monotonic()
        got = self.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5, MaxNumberOfMessages=3)
        self.assertGreaterEqual(len(got.get("Messages", [])), 1)
        self.assertLess(time.monotonic() - t0, 2.0)


# ------------------------------------------------------------------------------------------
class PurgeTest(SqsTestCase):
    def test_purge_removes_visible_in_flight_and_delayed(self):
        _, url = self.create_queue("purge")
        for i in range(3):
            self.sqs.send_message(QueueUrl=url, MessageBody=f"v{i}")
        self.sqs.send_message(QueueUrl=url, MessageBody="delayed", DelaySeconds=2)
        inflight = receive_until(self.sqs, url, 1, VisibilityTimeout=2)
        self.assertEqual(len(inflight), 1)
        self.sqs.purge_queue(QueueUrl=url)
        self.wait_for_counts(url, Messages=0, MessagesNotVisible=0, MessagesDelayed=0)
        time.sleep(2.2)  # past the visibility timeout and the delay
        self.assertEqual(self.sqs.receive_message(QueueUrl=url,
                                                  WaitTimeSeconds=1).get("Messages", []), [])
        self.sqs.send_message(QueueUrl=url, MessageBody="after purge")
        got = self.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2)
        self.assertEqual([m["Body"] for m in got["Messages"]], ["after purge"])

    def test_second_purge_within_60s(self):
        _, url = self.create_queue("purge2")
        self.sqs.purge_queue(QueueUrl=url)
        self.assertSqsError(self.raw.purge_queue, "AWS.SimpleQueueService.PurgeQueueInProgress",
                            status=403, shape="PurgeQueueInProgress", QueueUrl=url)


# ------------------------------------------------------------------------------------------
class DeadLetterTest(SqsTestCase):
    def test_redrive_after_max_receive_count(self):
        dlq_name, dlq = self.create_queue("dlq")
        dlq_arn = self.attrs(dlq, ["QueueArn"])["QueueArn"]
        self.assertEqual(dlq_arn, self.server.queue_arn(dlq_name))
        policy = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}
        _, src = self.create_queue("src", attributes={"RedrivePolicy": json.dumps(policy)})
        self.assertEqual(json.loads(self.attrs(src, ["RedrivePolicy"])["RedrivePolicy"]),
                         policy)
        attrs = {"k": {"DataType": "String", "StringValue": "v"}}
        sent = self.sqs.send_message(QueueUrl=src, MessageBody="poison", MessageAttributes=attrs)
        for n in (1, 2):
            got = self.sqs.receive_message(QueueUrl=src, VisibilityTimeout=0, WaitTimeSeconds=1,
                                           AttributeNames=["ApproximateReceiveCount"])
            self.assertEqual(len(got.get("Messages", [])), 1, f"receive {n}")
            self.assertEqual(got["Messages"][0]["Attributes"]["ApproximateReceiveCount"], str(n))
        third = self.sqs.receive_message(QueueUrl=src, WaitTimeSeconds=1)
        self.assertEqual(third.get("Messages", []), [], "moved instead of a third delivery")
        moved = self.sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=3,
                                         MessageAttributeNames=["All"],
                                         MessageSystemAttributeNames=["DeadLetterQueueSourceArn"]
                                         )["Messages"]
        self.assertEqual(len(moved), 1)
        self.assertEqual(moved[0]["Attributes"],
                         {"DeadLetterQueueSourceArn": self.attrs(src, ["QueueArn"])["QueueArn"]})
        self.assertEqual(moved[0]["MessageId"], sent["MessageId"])
        self.assertEqual(moved[0]["Body"], "poison")
        self.assertEqual(moved[0]["MessageAttributes"], attrs)
        self.assertEqual(moved[0]["MD5OfMessageAttributes"], md5_of_attributes(attrs))
        self.wait_for_counts(src, Messages=0, MessagesNotVisible=0)

    def test_redrive_by_visibility_expiry(self):
        _, dlq = self.create_queue("dlq2")
        policy = {"deadLetterTargetArn": self.attrs(dlq, ["QueueArn"])["QueueArn"],
                  "maxReceiveCount": 1}
        _, src = self.create_queue("src2", attributes={"RedrivePolicy": json.dumps(policy),
                                                       "VisibilityTimeout": "1"})
        self.sqs.send_message(QueueUrl=src, MessageBody="once")
        self.assertEqual(len(self.sqs.receive_message(QueueUrl=src,
                                                      WaitTimeSeconds=1)["Messages"]), 1)
        time.sleep(1.3)
        self.assertEqual(self.sqs.receive_message(QueueUrl=src,
                                                  WaitTimeSeconds=1).get("Messages", []), [])
        got = self.sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=3)["Messages"]
        self.assertEqual([m["Body"] for m in got], ["once"])

    def test_list_dead_letter_source_queues(self):
        _, dlq = self.create_queue("dlqsrc")
        arn = self.attrs(dlq, ["QueueArn"])["QueueArn"]
        policy = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 5})
        sources = {self.create_queue("s", attributes={"RedrivePolicy": policy})[1]
                   for _ in range(3)}
        got = self.sqs.list_dead_letter_source_queues(QueueUrl=dlq)
        self.assertEqual(set(got["queueUrls"]), sources)
        pages, token = [], None
        while True:
            kwargs = {"QueueUrl": dlq, "MaxResults": 2}
            if token:
                kwargs["NextToken"] = token
            page = self.sqs.list_dead_letter_source_queues(**kwargs)
            pages.extend(page["queueUrls"])
            self.assertLessEqual(len(page["queueUrls"]), 2)
            token = page.get("NextToken")
            if not token:
                break
        self.assertEqual(sorted(pages), sorted(sources))
        _, lonely = self.create_queue("lonely")
        self.assertEqual(self.sqs.list_dead_letter_source_queues(QueueUrl=lonely)["queueUrls"],
                         [])

    def test_redrive_policy_validation(self):
        _, src = self.create_queue("rpv")
        # Recorded from real SQS: "Value {...} for parameter RedrivePolicy is invalid. Reason:
        # Invalid value for deadLetterTargetArn."
        dummy = json.dumps({"deadLetterTargetArn": "dummy", "maxReceiveCount": 42})
        with self.assertRaises(ClientError) as cm:
            self.raw.set_queue_attributes(QueueUrl=src, Attributes={"RedrivePolicy": dummy})
        self.assertEqual(cm.exception.response["Error"]["Code"], "InvalidParameterValue")
        self.assertEqual(cm.exception.response["Error"]["Message"],
                         f"Value {dummy} for parameter RedrivePolicy is invalid. Reason: "
                         "Invalid value for deadLetterTargetArn.")
        _, dlq = self.create_queue("rpv-dlq")
        arn = self.attrs(dlq, ["QueueArn"])["QueueArn"]
        # AWS-validated in LocalStack's suite: each is InvalidParameterValue.
        for policy in ({"deadLetterTargetArn": arn}, {"maxReceiveCount": "42"},
                       {"deadLetterTargetArn": arn, "maxReceiveCount": "invalid"},
                       {"deadLetterTargetArn": arn, "maxReceiveCount": 0},
                       {"deadLetterTargetArn": arn, "maxReceiveCount": 1001},
                       {"deadLetterTargetArn": arn, "maxReceiveCount": 5, "extra": 1}):
            self.assertSqsError(self.raw.set_queue_attributes, "InvalidParameterValue",
                                QueueUrl=src, Attributes={"RedrivePolicy": json.dumps(policy)})
        self.assertEqual(self.attrs(src, ["All"]).get("RedrivePolicy"), None, "nothing was set")
        self.sqs.set_queue_attributes(QueueUrl=src, Attributes={"RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": arn, "maxReceiveCount": "42"})})
        self.assertEqual(json.loads(self.attrs(src, ["RedrivePolicy"])["RedrivePolicy"]),
                         {"deadLetterTargetArn": arn, "maxReceiveCount": 42})
        with self.assertRaises(ClientError) as cm:
            self.raw.set_queue_attributes(QueueUrl=src, Attributes={"RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": self.server.queue_arn(unique_name("ghost")),
                 "maxReceiveCount": 3})})
        self.assertEqual(http_status(cm.exception), 400, "a DLQ that does not exist")

    def test_redrive_allow_policy(self):
        _, dlq = self.create_queue("allow")
        dlq_arn = self.attrs(dlq, ["QueueArn"])["QueueArn"]
        allowed_name, allowed = self.create_queue("allowed")
        allowed_arn = self.server.queue_arn(allowed_name)
        allow = {"redrivePermission": "byQueue", "sourceQueueArns": [allowed_arn]}
        self.sqs.set_queue_attributes(QueueUrl=dlq,
                                      Attributes={"RedriveAllowPolicy": json.dumps(allow)})
        self.assertEqual(json.loads(self.attrs(dlq, ["RedriveAllowPolicy"])["RedriveAllowPolicy"]),
                         allow)
        policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})
        self.sqs.set_queue_attributes(QueueUrl=allowed, Attributes={"RedrivePolicy": policy})
        _, other = self.create_queue("notallowed")
        with self.assertRaises(ClientError) as cm:  # "byQueue: only the listed sources"
            self.raw.set_queue_attributes(QueueUrl=other, Attributes={"RedrivePolicy": policy})
        self.assertEqual(http_status(cm.exception), 400)
        deny = {"redrivePermission": "denyAll"}
        _, closed = self.create_queue("deny", attributes={"RedriveAllowPolicy": json.dumps(deny)})
        closed_arn = self.attrs(closed, ["QueueArn"])["QueueArn"]
        with self.assertRaises(ClientError) as cm:
            self.raw.set_queue_attributes(QueueUrl=other, Attributes={"RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": closed_arn, "maxReceiveCount": 3})})
        self.assertEqual(http_status(cm.exception), 400)


# ------------------------------------------------------------------------------------------
@unittest.skipUnless(os.environ.get("SQSRELAY_SLOW_TESTS") == "1",
                     "retention needs ≥ 60 s; set SQSRELAY_SLOW_TESTS=1")
class RetentionTest(SqsTestCase):
    def test_expired_messages_disappear(self):
        _, url = self.create_queue("ret", attributes={"MessageRetentionPeriod": "60"})
        self.sqs.send_message(QueueUrl=url, MessageBody="short-lived")
        keep_name, keep = self.create_queue("keep")
        self.sqs.send_message(QueueUrl=keep, MessageBody="long-lived")
        self.wait_for_counts(url, Messages=1)
        time.sleep(61)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if self.attrs(url, ["ApproximateNumberOfMessages"])[
                    "ApproximateNumberOfMessages"] == "0":
                break
            time.sleep(0.5)
        self.assertEqual(self.sqs.receive_message(QueueUrl=url,
                                                  WaitTimeSeconds=1).get("Messages", []), [])
        self.wait_for_counts(url, Messages=0, MessagesNotVisible=0)
        self.wait_for_counts(keep, Messages=1)


# ------------------------------------------------------------------------------------------
class BatchTest(SqsTestCase):
    def test_send_message_batch(self):
        _, url = self.create_queue("batch")
        attrs = {"n": {"DataType": "Number", "StringValue": "7"},
                 "b": {"DataType": "Binary", "BinaryValue": b"\xff\x00"}}
        entries = [{"Id": f"id-{i}", "MessageBody": f"body {i}"} for i in range(9)]
        entries.append({"Id": "with_attrs", "MessageBody": "attrs", "MessageAttributes": attrs,
                        "DelaySeconds": 0})
        resp = self.sqs.send_message_batch(QueueUrl=url, Entries=entries)
        self.assertEqual(resp.get("Failed", []), [])
        ok = {e["Id"]: e for e in resp["Successful"]}
        self.assertEqual(set(ok), {e["Id"] for e in entries})
        for e in entries:
            self.assertEqual(ok[e["Id"]]["MD5OfMessageBody"], md5_hex(e["MessageBody"]))
            self.assertTrue(ok[e["Id"]]["MessageId"])
        self.assertEqual(ok["with_attrs"]["MD5OfMessageAttributes"], md5_of_attributes(attrs))
        self.assertNotIn("MD5OfMessageAttributes", ok["id-0"])
        got = receive_until(self.sqs, url, 10, MessageAttributeNames=["All"])
        self.assertEqual(sorted(m["MessageId"] for m in got),
                         sorted(e["MessageId"] for e in resp["Successful"]))
        by_body = {m["Body"]: m for m in got}
        self.assertEqual(by_body["attrs"]["MessageAttributes"], attrs)

    def test_send_batch_partial_failure(self):
        _, url = self.create_queue("partial")
        entries = [{"Id": str(i), "MessageBody": str(i)} for i in range(9)]
        entries.append({"Id": "9", "MessageBody": "\x01"})
        resp = self.sqs.send_message_batch(QueueUrl=url, Entries=entries)
        self.assertEqual(http_status(resp), 200)
        self.assertEqual(len(resp["Successful"]), 9)
        self.assertEqual(len(resp["Failed"]), 1)
        failed = resp["Failed"][0]
        self.assertEqual(failed["Id"], "9")
        self.assertEqual(failed["Code"], "InvalidMessageContents")
        self.assertIs(failed["SenderFault"], True)
        self.assertTrue(failed.get("Message"))
        got = receive_until(self.sqs, url, 9)
        self.assertEqual(sorted(m["Body"] for m in got), [str(i) for i in range(9)])

    def test_batch_request_errors_for_all_batch_actions(self):
        _, url = self.create_queue("batcherr")
        send = lambda i, **kw: dict({"Id": i, "MessageBody": "b"}, **kw)  # noqa: E731
        dele = lambda i: {"Id": i, "ReceiptHandle": "h"}  # noqa: E731
        cmv = lambda i: {"Id": i, "ReceiptHandle": "h", "VisibilityTimeout": 1}  # noqa: E731
        actions = [(self.raw.send_message_batch, send), (self.raw.delete_message_batch, dele),
                   (self.raw.change_message_visibility_batch, cmv)]
        for call, entry in actions:
            name = call.__name__
            with self.subTest(action=name, case="empty"):
                self.assertSqsError(call, "AWS.SimpleQueueService.EmptyBatchRequest",
                                    shape="EmptyBatchRequest", QueueUrl=url, Entries=[])
            with self.subTest(action=name, case="11 entries"):
                self.assertSqsError(call, "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
                                    shape="TooManyEntriesInBatchRequest", QueueUrl=url,
                                    Entries=[entry(f"e{i}") for i in range(11)])
            with self.subTest(action=name, case="duplicate ids"):
                self.assertSqsError(call, "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
                                    shape="BatchEntryIdsNotDistinct", QueueUrl=url,
                                    Entries=[entry("same"), entry("same")])
            for bad in ["", "invalid:id", "x" * 81, "sp ace"]:
                with self.subTest(action=name, case="bad id", id=bad):
                    self.assertSqsError(call, "AWS.SimpleQueueService.InvalidBatchEntryId",
                                        shape="InvalidBatchEntryId", QueueUrl=url,
                                        Entries=[entry(bad)])
        ok = self.sqs.send_message_batch(QueueUrl=url, Entries=[send("A-z_0-9" + "x" * 73)])
        self.assertEqual(len(ok["Successful"]), 1, "80-char ids of [A-Za-z0-9_-] are valid")
        self.wait_for_counts(url, Messages=1)

    def test_batch_request_too_long(self):
        _, url = self.create_queue("toolong")
        half = MIB // 2
        ok = self.sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": "a", "MessageBody": "a" * half}, {"Id": "b", "MessageBody": "b" * half}])
        self.assertEqual(len(ok["Successful"]), 2, "exactly 1 MiB in total is allowed")
        self.assertSqsError(self.raw.send_message_batch,
                            "AWS.SimpleQueueService.BatchRequestTooLong",
                            shape="BatchRequestTooLong", QueueUrl=url, Entries=[
                                {"Id": "a", "MessageBody": "a" * half},
                                {"Id": "b", "MessageBody": "b" * (half + 1)}])
        attrs = {"k": {"DataType": "String", "StringValue": "x"}}
        self.assertSqsError(self.raw.send_message_batch,
                            "AWS.SimpleQueueService.BatchRequestTooLong",
                            shape="BatchRequestTooLong", QueueUrl=url, Entries=[
                                {"Id": "a", "MessageBody": "a" * (MIB - attributes_size(attrs)),
                                 "MessageAttributes": attrs},
                                {"Id": "b", "MessageBody": "b"}])
        # Entries that fail on their own still count toward the total: one oversize entry
        # makes the whole call fail (nothing of the batch is stored).
        for entries in ([{"Id": "a", "MessageBody": "a" * (MIB + 1)}],
                        [{"Id": "a", "MessageBody": "a" * (MIB + 1)},
                         {"Id": "b", "MessageBody": "small"}]):
            self.assertSqsError(self.raw.send_message_batch,
                                "AWS.SimpleQueueService.BatchRequestTooLong",
                                shape="BatchRequestTooLong", QueueUrl=url, Entries=entries)
        self.wait_for_counts(url, Messages=2)

    def test_delete_message_batch(self):
        _, url = self.create_queue("delbatch")
        self.sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "MessageBody": f"m{i}"} for i in range(4)])
        got = receive_until(self.sqs, url, 4)
        self.assertEqual(len(got), 4)
        entries = [{"Id": f"d{i}", "ReceiptHandle": m["ReceiptHandle"]}
                   for i, m in enumerate(got)]
        entries.append({"Id": "bogus", "ReceiptHandle": "garbage"})
        resp = self.sqs.delete_message_batch(QueueUrl=url, Entries=entries)
        self.assertEqual(sorted(e["Id"] for e in resp["Successful"]),
                         [f"d{i}" for i in range(4)])
        self.assertEqual(len(resp["Failed"]), 1)
        self.assertEqual(resp["Failed"][0]["Id"], "bogus")
        self.assertEqual(resp["Failed"][0]["Code"], "ReceiptHandleIsInvalid")
        self.assertIs(resp["Failed"][0]["SenderFault"], True)
        self.wait_for_counts(url, Messages=0, MessagesNotVisible=0)

    def test_change_message_visibility_batch(self):
        _, url = self.create_queue("cmvbatch")
        self.sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "MessageBody": f"m{i}"} for i in range(3)])
        got = receive_until(self.sqs, url, 3)
        self.assertEqual(len(got), 3)
        entries = [{"Id": f"c{i}", "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                   for i, m in enumerate(got)]
        entries.append({"Id": "bogus", "ReceiptHandle": "garbage", "VisibilityTimeout": 0})
        resp = self.sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)
        self.assertEqual(sorted(e["Id"] for e in resp["Successful"]), ["c0", "c1", "c2"])
        self.assertEqual([(f["Id"], f["Code"], f["SenderFault"]) for f in resp["Failed"]],
                         [("bogus", "ReceiptHandleIsInvalid", True)])
        again = receive_until(self.sqs, url, 3)
        self.assertEqual(sorted(m["MessageId"] for m in again),
                         sorted(m["MessageId"] for m in got), "visible again at once")


# ------------------------------------------------------------------------------------------
class TagsTest(SqsTestCase):
    def test_tag_lifecycle(self):
        _, url = self.create_queue("tags", tags={"team": "core", "env": "test"})
        self.assertEqual(self.sqs.list_queue_tags(QueueUrl=url)["Tags"],
                         {"team": "core", "env": "test"})
        self.sqs.tag_queue(QueueUrl=url, Tags={"team": "edge", "empty": "", "Case": "1",
                                               "case": "2"})
        self.assertEqual(self.sqs.list_queue_tags(QueueUrl=url)["Tags"],
                         {"team": "edge", "env": "test", "empty": "", "Case": "1", "case": "2"})
        self.sqs.untag_queue(QueueUrl=url, TagKeys=["env", "not-there", "Case"])
        self.assertEqual(self.sqs.list_queue_tags(QueueUrl=url)["Tags"],
                         {"team": "edge", "empty": "", "case": "2"})
        self.sqs.untag_queue(QueueUrl=url, TagKeys=["team", "empty", "case"])
        self.assertNotIn("Tags", self.sqs.list_queue_tags(QueueUrl=url))

    def test_tag_limits(self):
        _, url = self.create_queue("taglimits")
        ok = {"k" * 128: "v" * 256, "ключ é": "значение", "a_b.c:d/e=f+g-h@i j": ""}
        self.sqs.tag_queue(QueueUrl=url, Tags=ok)
        self.assertEqual(self.sqs.list_queue_tags(QueueUrl=url)["Tags"], ok)
        for bad in ({"k" * 129: "v"}, {"k": "v" * 257}, {"aws:owner": "me"}, {"semi;colon": "v"},
                    {"k": "bad*value"}):
            self.assertSqsError(self.raw.tag_queue, "InvalidParameterValue",
                                QueueUrl=url, Tags=bad)
        self.assertSqsError(self.raw.tag_queue, "MissingParameter", QueueUrl=url, Tags={})
        self.assertSqsError(self.raw.create_queue, "InvalidParameterValue",
                            QueueName=unique_name("badtags"), tags={"aws:x": "1"})
        self.assertEqual(self.sqs.list_queue_tags(QueueUrl=url)["Tags"], ok)

    def test_new_queue_has_no_tags(self):
        _, url = self.create_queue("notags")
        self.assertNotIn("Tags", self.sqs.list_queue_tags(QueueUrl=url))


# ------------------------------------------------------------------------------------------
class UnsupportedActionsTest(SqsTestCase):
    def test_permissions_and_move_tasks_answer_unsupported(self):
        _, url = self.create_queue("unsup")
        _, dlq = self.create_queue("unsupdlq")
        dlq_arn = self.attrs(dlq, ["QueueArn"])["QueueArn"]
        code = "AWS.SimpleQueueService.UnsupportedOperation"
        calls = [
            (self.raw.add_permission, dict(QueueUrl=url, Label="l",
                                           AWSAccountIds=[self.server.account_id],
                                           Actions=["SendMessage"])),
            (self.raw.remove_permission, dict(QueueUrl=url, Label="l")),
            (self.raw.start_message_move_task, dict(SourceArn=dlq_arn)),
            (self.raw.list_message_move_tasks, dict(SourceArn=dlq_arn)),
            (self.raw.cancel_message_move_task, dict(TaskHandle="dGFzaw==")),
        ]
        for call, kwargs in calls:
            with self.subTest(action=call.__name__):
                self.assertSqsError(call, code, shape="UnsupportedOperation", **kwargs)


# ------------------------------------------------------------------------------------------
def signed_request(endpoint, body, headers, akid, secret, region="us-east-1", service="sqs",
                   shift=datetime.timedelta(0), path="/"):
    """Signs a POST with botocore's SigV4Auth at now+shift; returns (url, headers, body)."""
    req = AWSRequest(method="POST", url=endpoint + path, data=body, headers=dict(headers))
    real_now = botocore.compat.get_current_datetime
    with mock.patch("botocore.auth.get_current_datetime",
                    side_effect=lambda *a, **kw: real_now(*a, **kw) + shift):
        SigV4Auth(Credentials(akid, secret), service, region).add_auth(req)
    return req.url, dict(req.headers.items()), body


def json_error_code(resp):
    """The error code the way botocore reads it: x-amzn-query-error first, then __type."""
    q = resp.headers.get("x-amzn-query-error")
    if q and ";" in q:
        return q.split(";")[0]
    try:
        t = resp.json().get("__type", "")
    except ValueError:
        return None
    return t.rsplit("#", 1)[-1]


class SigV4Test(unittest.TestCase):
    AKID, SECRET = "AKIDSIGV4TEST0001", "s3cr3t/with+chars=="
    AKID2, SECRET2 = "AKIDSIGV4TEST0002", "another-secret"

    @classmethod
    def setUpClass(cls):
        cls.server = SqsRelayServer(in_memory=True, credentials=[(cls.AKID, cls.SECRET),
                                                                 (cls.AKID2, cls.SECRET2)])
        cls.server.start()
        cls.endpoint = cls.server.endpoint

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def client(self, akid=None, secret=None, region="us-east-1"):
        return make_client(self.endpoint, akid=akid or self.AKID, secret=secret or self.SECRET,
                           region=region)

    def json_request(self, target, payload, **sign):
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/x-amz-json-1.0",
                   "X-Amz-Target": f"AmazonSQS.{target}"}
        url, headers, body = signed_request(self.endpoint, body, headers,
                                            sign.pop("akid", self.AKID),
                                            sign.pop("secret", self.SECRET), **sign)
        return url, headers, body

    def test_right_keys_work_for_every_configured_key(self):
        for akid, secret in [(self.AKID, self.SECRET), (self.AKID2, self.SECRET2)]:
            c = self.client(akid, secret)
            name = unique_name("sig")
            url = c.create_queue(QueueName=name)["QueueUrl"]
            c.send_message(QueueUrl=url, MessageBody="signed")
            got = c.receive_message(QueueUrl=url, WaitTimeSeconds=2)["Messages"]
            self.assertEqual(got[0]["Body"], "signed")

    def test_wrong_secret(self):
        with self.assertRaises(ClientError) as cm:
            self.client(secret="wrong-secret").list_queues()
        self.assertEqual(error_code(cm.exception), "SignatureDoesNotMatch")
        self.assertEqual(http_status(cm.exception), 403)

    def test_secret_of_another_key(self):
        with self.assertRaises(ClientError) as cm:
            self.client(self.AKID, self.SECRET2).list_queues()
        self.assertEqual(error_code(cm.exception), "SignatureDoesNotMatch")

    def test_unknown_access_key(self):
        with self.assertRaises(ClientError) as cm:
            self.client(akid="AKIDUNKNOWN000000").list_queues()
        self.assertEqual(error_code(cm.exception), "InvalidClientTokenId")
        self.assertEqual(http_status(cm.exception), 403)

    def test_missing_authentication(self):
        r = requests.post(self.endpoint + "/", data=b"{}", headers={
            "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.ListQueues"},
            timeout=10)
        self.assertEqual(r.status_code, 403, r.text)
        self.assertEqual(json_error_code(r), "MissingAuthenticationToken", r.text)
        self.assertTrue(r.headers.get("x-amzn-RequestId"))
        q = requests.post(self.endpoint + "/", data={"Action": "ListQueues",
                                                     "Version": "2012-11-05"}, timeout=10)
        self.assertEqual(q.status_code, 403, q.text)
        self.assertIn("<Code>MissingAuthenticationToken</Code>", q.text)

    def test_signature_16_minutes_old_is_rejected(self):
        for shift in (datetime.timedelta(minutes=-16), datetime.timedelta(minutes=16)):
            with self.subTest(shift=str(shift)):
                url, headers, body = self.json_request("ListQueues", {}, shift=shift)
                r = requests.post(url, data=body, headers=headers, timeout=10)
                self.assertEqual(r.status_code, 403, r.text)
                self.assertEqual(json_error_code(r), "SignatureDoesNotMatch", r.text)

    def test_signature_14_minutes_old_is_accepted(self):
        url, headers, body = self.json_request("ListQueues", {},
                                               shift=datetime.timedelta(minutes=-14))
        r = requests.post(url, data=body, headers=headers, timeout=10)
        self.assertEqual(r.status_code, 200, r.text)

    def test_manually_signed_request_is_accepted(self):
        url, headers, body = self.json_request("CreateQueue", {"QueueName": unique_name("man")})
        r = requests.post(url, data=body, headers=headers, timeout=10)
        self.assertEqual(r.status_code, 200, r.text)
        self.assertIn("QueueUrl", r.json())

    def test_tampered_body(self):
        url, headers, body = self.json_request("CreateQueue", {"QueueName": "original"})
        r = requests.post(url, data=body.replace(b"original", b"tampered"), headers=headers,
                          timeout=10)
        self.assertEqual(r.status_code, 403, r.text)
        self.assertEqual(json_error_code(r), "SignatureDoesNotMatch")

    def test_host_header_is_signed(self):
        url, headers, body = self.json_request("ListQueues", {})
        headers["Host"] = "evil.example:1234"
        r = requests.post(url, data=body, headers=headers, timeout=10)
        self.assertEqual(r.status_code, 403, r.text)
        self.assertEqual(json_error_code(r), "SignatureDoesNotMatch")

    def test_wrong_scope(self):
        for sign in ({"region": "us-west-2"}, {"service": "sns"}):
            with self.subTest(**sign):
                url, headers, body = self.json_request("ListQueues", {}, **sign)
                r = requests.post(url, data=body, headers=headers, timeout=10)
                self.assertEqual(r.status_code, 403, r.text)
                self.assertEqual(json_error_code(r), "SignatureDoesNotMatch", r.text)

    def test_query_protocol_signed_form(self):
        form = f"Action=CreateQueue&QueueName={unique_name('qsig')}&Version=2012-11-05"
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        url, h, body = signed_request(self.endpoint, form.encode(), headers, self.AKID,
                                      self.SECRET)
        r = requests.post(url, data=body, headers=h, timeout=10)
        self.assertEqual(r.status_code, 200, r.text)
        self.assertIn("<QueueUrl>", r.text)
        url, h, body = signed_request(self.endpoint, form.encode(), headers, self.AKID,
                                      "wrong")
        r = requests.post(url, data=body, headers=h, timeout=10)
        self.assertEqual(r.status_code, 403, r.text)
        self.assertIn("<Code>SignatureDoesNotMatch</Code>", r.text)
        self.assertIn("<Type>Sender</Type>", r.text)


# ------------------------------------------------------------------------------------------
class RestartTest(unittest.TestCase):
    """State written before a clean stop (SIGTERM) is all there after a restart."""

    def setUp(self):
        self.first = SqsRelayServer()
        self.addCleanup(self.first.cleanup)
        self.first.start()

    def restart(self):
        code = self.first.stop()
        self.assertEqual(code, 0, f"clean exit on SIGTERM; log:\n{self.first.log()}")
        second = SqsRelayServer(data_dir=self.first.data_dir)
        self.addCleanup(second.cleanup)
        second.start()
        return second, make_client(second.endpoint)

    def test_queues_attributes_tags_and_messages_survive(self):
        c = make_client(self.first.endpoint)
        name = unique_name("durable")
        qattrs = {"VisibilityTimeout": "45", "DelaySeconds": "0", "MaximumMessageSize": "4096",
                  "MessageRetentionPeriod": "86400", "ReceiveMessageWaitTimeSeconds": "1"}
        url = c.create_queue(QueueName=name, Attributes=qattrs, tags={"t": "1"})["QueueUrl"]
        c.tag_queue(QueueUrl=url, Tags={"u": "2"})
        dlq_name = unique_name("durable-dlq")
        dlq = c.create_queue(QueueName=dlq_name)["QueueUrl"]
        policy = {"deadLetterTargetArn": self.first.queue_arn(dlq_name), "maxReceiveCount": 4}
        c.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": json.dumps(policy)})
        gone = unique_name("gone")
        c.delete_queue(QueueUrl=c.create_queue(QueueName=gone)["QueueUrl"])
        mattrs = {"s": {"DataType": "String", "StringValue": "v"},
                  "b": {"DataType": "Binary", "BinaryValue": b"\x00\xff"}}
        sent = {}
        for i in range(5):
            r = c.send_message(QueueUrl=url, MessageBody=f"m{i}", MessageAttributes=mattrs)
            sent[r["MessageId"]] = f"m{i}"
        deleted = c.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"][0]
        c.delete_message(QueueUrl=url, ReceiptHandle=deleted["ReceiptHandle"])
        del sent[deleted["MessageId"]]
        before = c.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]

        second, c2 = self.restart()
        url2 = second.queue_url(name)
        self.assertEqual(c2.get_queue_url(QueueName=name)["QueueUrl"], url2)
        with self.assertRaises(c2.exceptions.QueueDoesNotExist, msg="deleted stays deleted"):
            c2.get_queue_url(QueueName=gone)
        after = c2.get_queue_attributes(QueueUrl=url2, AttributeNames=["All"])["Attributes"]
        for k in list(qattrs) + ["CreatedTimestamp", "LastModifiedTimestamp", "QueueArn"]:
            self.assertEqual(after[k], before[k], k)
        self.assertEqual(json.loads(after["RedrivePolicy"]), policy)
        self.assertEqual(after["ApproximateNumberOfMessages"], "4")
        self.assertEqual(c2.list_queue_tags(QueueUrl=url2)["Tags"], {"t": "1", "u": "2"})
        got = receive_until(c2, url2, 4, MessageAttributeNames=["All"])
        self.assertEqual({m["MessageId"]: m["Body"] for m in got}, sent)
        for m in got:
            self.assertEqual(m["MessageAttributes"], mattrs)
            self.assertEqual(m["MD5OfMessageAttributes"], md5_of_attributes(mattrs))
            self.assertEqual(m["MD5OfBody"], md5_hex(m["Body"]))

    def test_receive_count_and_delay_survive(self):
        c = make_client(self.first.endpoint)
        name = unique_name("counts")
        url = c.create_queue(QueueName=name)["QueueUrl"]
        c.send_message(QueueUrl=url, MessageBody="received once")
        c.send_message(QueueUrl=url, MessageBody="delayed", DelaySeconds=600)
        c.receive_message(QueueUrl=url, VisibilityTimeout=0, WaitTimeSeconds=1)
        second, c2 = self.restart()
        url2 = second.queue_url(name)
        attrs = c2.get_queue_attributes(QueueUrl=url2, AttributeNames=["All"])["Attributes"]
        self.assertEqual(attrs["ApproximateNumberOfMessagesDelayed"], "1",
                         "a delayed message stays delayed")
        m = c2.receive_message(QueueUrl=url2, WaitTimeSeconds=2,
                               AttributeNames=["All"])["Messages"]
        self.assertEqual([x["Body"] for x in m], ["received once"])
        self.assertEqual(m[0]["Attributes"]["ApproximateReceiveCount"], "2")


    def test_receive_counts_survive_kill_9_after_an_idle_moment(self):
        """Receive records need no sync of their own, but they reach the file within moments,
        so a killed server (not a power loss) keeps them and maxReceiveCount still counts."""
        c = make_client(self.first.endpoint)
        name, dlq_name = unique_name("kcount"), unique_name("kcount-dlq")
        dlq = c.create_queue(QueueName=dlq_name)["QueueUrl"]
        policy = {"deadLetterTargetArn": self.first.queue_arn(dlq_name), "maxReceiveCount": 2}
        url = c.create_queue(QueueName=name,
                             Attributes={"RedrivePolicy": json.dumps(policy)})["QueueUrl"]
        c.send_message(QueueUrl=url, MessageBody="poison")
        for _ in range(2):
            got = c.receive_message(QueueUrl=url, VisibilityTimeout=0, WaitTimeSeconds=1)
            self.assertEqual(len(got.get("Messages", [])), 1)
        time.sleep(0.5)  # nothing else is written meanwhile
        self.first.kill()
        second = SqsRelayServer(data_dir=self.first.data_dir)
        self.addCleanup(second.cleanup)
        second.start()
        c2 = make_client(second.endpoint)
        # Its third receive exceeds maxReceiveCount: the message moves to the DLQ instead.
        self.assertEqual(c2.receive_message(QueueUrl=second.queue_url(name),
                                            WaitTimeSeconds=1).get("Messages", []), [],
                         f"the receive counts were lost; log:\n{second.log()}")
        moved = c2.receive_message(QueueUrl=second.queue_url(dlq_name), WaitTimeSeconds=2,
                                   AttributeNames=["All"])["Messages"]
        self.assertEqual([m["Body"] for m in moved], ["poison"])
        self.assertEqual(moved[0]["Attributes"]["ApproximateReceiveCount"], "3")

# ------------------------------------------------------------------------------------------
class ServerOptionsTest(unittest.TestCase):
    def test_account_and_region_flags(self):
        with SqsRelayServer(in_memory=True, account_id="123456789012",
                            region="eu-west-1") as s:
            c = make_client(s.endpoint, region="eu-west-1")
            name = unique_name("acct")
            url = c.create_queue(QueueName=name)["QueueUrl"]
            self.assertEqual(url, f"http://127.0.0.1:{s.port}/123456789012/{name}")
            arn = c.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
                "Attributes"]["QueueArn"]
            self.assertEqual(arn, f"arn:aws:sqs:eu-west-1:123456789012:{name}")

    def test_refuses_non_loopback_without_credentials(self):
        code, out = run_start_failure(["--listen", "0.0.0.0:0", "--in-memory"])
        self.assertEqual(code, 2, out)
        self.assertIn("credentials", out.lower())

    def test_metrics_are_for_loopback_peers_unless_allowed(self):
        lan = [a for a in subprocess.run(["hostname", "-I"], capture_output=True, text=True)
               .stdout.split() if ":" not in a and not a.startswith("127.")]
        if not lan:
            self.skipTest("this machine has no non-loopback IPv4 address")
        for extra, remote_status in (((), 403), (("--metrics-remote",), 200)):
            s = SqsRelayServer(in_memory=True, listen="0.0.0.0:0", extra_args=extra,
                               credentials=[("AKIDMETRICS", "secret")])
            self.addCleanup(s.cleanup)
            s.start()
            local = requests.get(f"http://127.0.0.1:{s.port}/metrics", timeout=10)
            self.assertEqual(local.status_code, 200)
            self.assertIn("sqsrelay_server_requests_total", local.text)
            remote = requests.get(f"http://{lan[0]}:{s.port}/metrics", timeout=10)
            self.assertEqual(remote.status_code, remote_status, f"{extra}: {remote.text}")
            if remote_status == 403:
                self.assertIn("--metrics-remote", remote.text)
                self.assertNotIn("sqsrelay_", remote.text)
            health = requests.get(f"http://{lan[0]}:{s.port}/healthz", timeout=10)
            self.assertEqual(health.status_code, 200)
            s.stop()

    def test_sigterm_exits_cleanly(self):
        s = SqsRelayServer(in_memory=True)
        self.addCleanup(s.cleanup)
        s.start()
        make_client(s.endpoint).list_queues()
        self.assertEqual(s.stop(signal.SIGTERM), 0, s.log())


if __name__ == "__main__":
    unittest.main(verbosity=2)
