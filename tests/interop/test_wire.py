#!/usr/bin/env python3
"""Both SQS wire protocols spoken byte-level against a real `sqsrelay serve` process.

AWS JSON 1.0: `X-Amz-Target: AmazonSQS.<Op>`, JSON bodies, errors with `__type`
(`com.amazonaws.sqs#<Shape>`) plus `x-amzn-query-error: <legacy code>;Sender`.
AWS Query: form-encoded (POST or GET), XML replies in namespace
http://queue.amazonaws.com/doc/2012-11-05/, errors as <ErrorResponse><Error>.
Requests are signed with botocore's SigV4 (dummy keys: the server runs without credentials).
"""

import base64
import json
import os
import socket
import subprocess
import sys
import time
import unittest
import urllib.parse
import xml.etree.ElementTree as ET

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from interop_common import (DUMMY_AKID, DUMMY_SECRET, make_client, md5_hex,  # noqa: E402
                            md5_of_attributes, unique_name)
from sqsrelay_server import SqsRelayServer  # noqa: E402

NS = "http://queue.amazonaws.com/doc/2012-11-05/"
Q = "{" + NS + "}"
SERVER = None


def setUpModule():
    global SERVER
    SERVER = SqsRelayServer(in_memory=True).start()


def tearDownModule():
    if SERVER:
        SERVER.cleanup()


def _send(method, url, body=b"", headers=None):
    req = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    SigV4Auth(Credentials(DUMMY_AKID, DUMMY_SECRET), "sqs", "us-east-1").add_auth(req)
    return requests.request(method, req.url, data=body, headers=dict(req.headers.items()),
                            timeout=30)


def json_call(op, payload):
    return _send("POST", SERVER.endpoint + "/", json.dumps(payload).encode(), {
        "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"AmazonSQS.{op}"})


def query_call(params, url=None, method="POST"):
    params = dict(params)
    params.setdefault("Version", "2012-11-05")
    url = url or SERVER.endpoint + "/"
    if method == "GET":
        return _send("GET", url + "?" + urllib.parse.urlencode(params))
    return _send("POST", url, urllib.parse.urlencode(params).encode(),
                 {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def xml(resp):
    return ET.fromstring(resp.content)


class WireTestCase(unittest.TestCase):
    def create_queue(self, prefix="w"):
        name = unique_name(prefix)
        r = json_call("CreateQueue", {"QueueName": name})
        self.assertEqual(r.status_code, 200, r.text)
        return name, r.json()["QueueUrl"]

    def assertJsonError(self, r, shape, legacy, status=400):
        self.assertEqual(r.status_code, status, r.text)
        self.assertTrue(r.headers.get("Content-Type", "").startswith(
            "application/x-amz-json-1.0"), r.headers.get("Content-Type"))
        body = r.json()
        self.assertEqual(body.get("__type"), f"com.amazonaws.sqs#{shape}", body)
        self.assertEqual(r.headers.get("x-amzn-query-error"), f"{legacy};Sender")
        self.assertTrue(body.get("message") or body.get("Message"), body)
        self.assertTrue(r.headers.get("x-amzn-RequestId"))

    def assertQueryError(self, r, code, status=400):
        self.assertEqual(r.status_code, status, r.text)
        root = xml(r)
        self.assertEqual(root.tag, Q + "ErrorResponse", r.text)
        err = root.find(Q + "Error")
        self.assertIsNotNone(err, r.text)
        self.assertEqual(err.findtext(Q + "Type"), "Sender", r.text)
        self.assertEqual(err.findtext(Q + "Code"), code, r.text)
        self.assertTrue(err.findtext(Q + "Message"), r.text)
        self.assertTrue(root.findtext(Q + "RequestId"), r.text)
        self.assertTrue(r.headers.get("x-amzn-RequestId"))
        return err


class JsonProtocolTest(WireTestCase):
    def test_success_headers_and_body(self):
        r = json_call("CreateQueue", {"QueueName": unique_name("json")})
        self.assertEqual(r.status_code, 200, r.text)
        self.assertTrue(r.headers["Content-Type"].startswith("application/x-amz-json-1.0"))
        self.assertTrue(r.headers.get("x-amzn-RequestId"))
        self.assertTrue(r.json()["QueueUrl"].startswith(SERVER.endpoint + "/"))

    def test_modelled_error(self):
        r = json_call("GetQueueUrl", {"QueueName": unique_name("absent")})
        self.assertJsonError(r, "QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue")

    def test_errors_carry_legacy_codes(self):
        _, url = self.create_queue()
        cases = [
            ("ReceiveMessage", {"QueueUrl": url, "MaxNumberOfMessages": 11},
             "InvalidParameterValue"),
            ("DeleteMessage", {"QueueUrl": url, "ReceiptHandle": "garbage"},
             "ReceiptHandleIsInvalid"),
            ("SendMessageBatch", {"QueueUrl": url, "Entries": []},
             "AWS.SimpleQueueService.EmptyBatchRequest"),
            ("SendMessage", {"QueueUrl": url, "MessageBody": "\u0000"}, "InvalidMessageContents"),
            ("GetQueueAttributes", {"QueueUrl": url, "AttributeNames": ["Foobar"]},
             "InvalidAttributeName"),
        ]
        for op, payload, legacy in cases:
            with self.subTest(op=op):
                r = json_call(op, payload)
                self.assertEqual(r.status_code, 400, r.text)
                self.assertEqual(r.headers.get("x-amzn-query-error"), f"{legacy};Sender", r.text)
                self.assertTrue(r.json().get("__type", "").startswith("com.amazonaws.sqs#"),
                                r.text)
        # Unmodelled errors: the shape names SQS sends (LocalStack's AWS-recorded snapshots).
        r = json_call("ReceiveMessage", {"QueueUrl": url, "MaxNumberOfMessages": 11})
        self.assertEqual(r.json()["__type"], "com.amazonaws.sqs#InvalidParameterValueException")
        r = json_call("SendMessage", {"QueueUrl": url})
        self.assertEqual(r.headers.get("x-amzn-query-error"), "MissingParameter;Sender")
        self.assertEqual(r.json()["__type"], "com.amazonaws.sqs#MissingRequiredParameterException")

    def test_unknown_operation(self):
        # AWS's common errors name InvalidAction (400) for an unknown action; JSON services
        # built on Coral answer UnknownOperationException. Either is a clear client error.
        r = json_call("FooBar", {})
        self.assertIn(r.status_code, (400, 404), r.text)
        self.assertRegex(r.json().get("__type", ""), r"(InvalidAction|UnknownOperationException)$",
                         r.text)
        self.assertTrue(r.headers.get("x-amzn-RequestId"))

    def test_json_posted_to_queue_url_path(self):
        # Some SDKs (aws-sdk-ruby >= 1.71) send JSON requests to the queue URL itself.
        _, url = self.create_queue("jpath")
        r = _send("POST", url, json.dumps({"QueueUrl": url, "MessageBody": "to path"}).encode(),
                  {"Content-Type": "application/x-amz-json-1.0",
                   "X-Amz-Target": "AmazonSQS.SendMessage"})
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.json()["MD5OfMessageBody"], md5_hex("to path"))

    def test_chunked_request_bodies(self):
        # requests sends a generator body with Transfer-Encoding: chunked (unsigned: this
        # server has no credentials configured).
        name, url = self.create_queue("chunked")
        parts = [b"Action=SendMessage&QueueUrl=", urllib.parse.quote(url, safe="").encode(),
                 b"&MessageBody=", b"in%20", b"three%20", b"chunks"]
        r = requests.post(SERVER.endpoint + "/", data=iter(parts), timeout=30,
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(xml(r).find(Q + "SendMessageResult").findtext(Q + "MD5OfMessageBody"),
                         md5_hex("in three chunks"))
        # JSON protocol, and a keep-alive connection that goes on after the chunked request.
        with requests.Session() as s:
            body = json.dumps({"QueueUrl": url, "MessageBody": "json chunks"}).encode()
            hdr = {"Content-Type": "application/x-amz-json-1.0",
                   "X-Amz-Target": "AmazonSQS.SendMessage"}
            r = s.post(SERVER.endpoint + "/", data=iter([body[:7], body[7:]]), headers=hdr,
                       timeout=30)
            self.assertEqual(r.json()["MD5OfMessageBody"], md5_hex("json chunks"), r.text)
            r = s.post(SERVER.endpoint + "/", data=json.dumps({"QueueUrl": url}), timeout=30,
                       headers={**hdr, "X-Amz-Target": "AmazonSQS.GetQueueAttributes"})
            self.assertEqual(r.status_code, 200, r.text)
        # Malformed chunk framing: 400, nothing stored.
        with socket.create_connection(("127.0.0.1", SERVER.port), timeout=10) as c:
            c.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                      b"Content-Type: application/x-www-form-urlencoded\r\n\r\nzz\r\n")
            reply = c.recv(65536)
        self.assertTrue(reply.startswith(b"HTTP/1.1 400"), reply)
        self.assertIn(b"chunked", reply)
        # Any other transfer coding leaves the length unknown: refused, not guessed.
        for te in (b"gzip", b"chunked, gzip"):
            with socket.create_connection(("127.0.0.1", SERVER.port), timeout=10) as c:
                c.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + te +
                          b"\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n"
                          b"Action=ListQueues")
                reply = c.recv(65536)
            self.assertTrue(reply.startswith(b"HTTP/1.1 400"), reply)
            self.assertIn(b"Transfer-Encoding", reply)
        r = json_call("GetQueueAttributes", {"QueueUrl": url,
                                             "AttributeNames": ["ApproximateNumberOfMessages"]})
        self.assertEqual(r.json()["Attributes"]["ApproximateNumberOfMessages"], "2")

    def test_malformed_json(self):
        r = _send("POST", SERVER.endpoint + "/", b"{not json", {
            "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.ListQueues"})
        self.assertEqual(r.status_code, 400, r.text)
        self.assertTrue(r.headers.get("x-amzn-RequestId"))

    def test_empty_receive_and_binary_attributes(self):
        _, url = self.create_queue()
        r = json_call("ReceiveMessage", {"QueueUrl": url})
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.json().get("Messages", []), [])
        raw = bytes([0, 1, 2, 250, 255])
        b64 = base64.b64encode(raw).decode()
        attrs = {"bin": {"DataType": "Binary", "BinaryValue": b64}}
        r = json_call("SendMessage", {"QueueUrl": url, "MessageBody": "b",
                                      "MessageAttributes": attrs})
        self.assertEqual(r.status_code, 200, r.text)
        want = md5_of_attributes({"bin": {"DataType": "Binary", "BinaryValue": raw}})
        self.assertEqual(r.json()["MD5OfMessageAttributes"], want)
        r = json_call("ReceiveMessage", {"QueueUrl": url, "MessageAttributeNames": ["All"]})
        m = r.json()["Messages"][0]
        self.assertEqual(m["MessageAttributes"]["bin"]["BinaryValue"], b64)
        self.assertEqual(m["MD5OfMessageAttributes"], want)


class QueryProtocolTest(WireTestCase):
    def test_create_queue_xml(self):
        name = unique_name("q")
        r = query_call({"Action": "CreateQueue", "QueueName": name,
                        "Attribute.1.Name": "VisibilityTimeout", "Attribute.1.Value": "12"})
        self.assertEqual(r.status_code, 200, r.text)
        self.assertIn("xml", r.headers.get("Content-Type", ""))
        root = xml(r)
        self.assertEqual(root.tag, Q + "CreateQueueResponse")
        url = root.findtext(f"{Q}CreateQueueResult/{Q}QueueUrl")
        self.assertEqual(url, SERVER.queue_url(name))
        self.assertTrue(root.findtext(f"{Q}ResponseMetadata/{Q}RequestId"))
        self.assertTrue(r.headers.get("x-amzn-RequestId"))
        r = query_call({"Action": "GetQueueAttributes", "QueueUrl": url,
                        "AttributeName.1": "VisibilityTimeout"})
        attrs = {a.findtext(Q + "Name"): a.findtext(Q + "Value")
                 for a in xml(r).iter(Q + "Attribute")}
        self.assertEqual(attrs, {"VisibilityTimeout": "12"})

    def test_error_response(self):
        r = query_call({"Action": "GetQueueUrl", "QueueName": unique_name("absent")})
        err = self.assertQueryError(r, "AWS.SimpleQueueService.NonExistentQueue")
        # SQS's Query wording (recorded against AWS); the JSON protocol says it without "for
        # this wsdl version".
        self.assertEqual(err.findtext(Q + "Message"),
                         "The specified queue does not exist for this wsdl version.")
        r = json_call("GetQueueUrl", {"QueueName": unique_name("absent")})
        self.assertEqual(r.json()["message"], "The specified queue does not exist.")

    def test_endpoint_actions_are_refused_on_a_queue_url(self):
        name, url = self.create_queue("endpoint-only")
        for action, extra in (("ListQueues", {}), ("CreateQueue", {"QueueName": "x" + name})):
            for method in ("GET", "POST"):
                err = self.assertQueryError(query_call({"Action": action, **extra}, url=url,
                                                       method=method), "InvalidAction")
                self.assertEqual(err.findtext(Q + "Message"),
                                 f"The action {action} is not valid for this endpoint.")
        self.assertEqual(json_call("GetQueueUrl", {"QueueName": "x" + name}).status_code, 400,
                         "nothing was created")
        r = query_call({"Action": "GetQueueUrl", "QueueName": name}, url=url)
        self.assertEqual(r.status_code, 200, r.text)

    def test_invalid_action_and_missing_parameter(self):
        _, url = self.create_queue()
        self.assertQueryError(query_call({"Action": "FooBar"}), "InvalidAction")
        self.assertQueryError(query_call({"Action": "SendMessage"}, url=url), "MissingParameter")

    def test_bare_get_of_a_queue_url(self):
        # AWS answers a GET with no query at all with 404 UnknownOperationException; a form
        # without Action (GET with other parameters, or any POST) is 400 MissingAction.
        _, url = self.create_queue()
        self.assertQueryError(requests.get(url, timeout=10), "UnknownOperationException", 404)
        self.assertQueryError(query_call({"QueueName": "x"}, url=url, method="GET"),
                              "MissingAction")
        self.assertQueryError(query_call({}, url=url), "MissingAction")

    def test_running_out_of_file_descriptors_neither_spins_nor_floods_the_log(self):
        # Idle connections beyond the process's descriptor limit: accept() fails with EMFILE
        # while it lasts. The server pauses between tries, warns at most every 10 s, keeps
        # serving the connections it has and accepts again once descriptors are free.
        with SqsRelayServer(in_memory=True) as srv:
            subprocess.run(["prlimit", f"--pid={srv.proc.pid}", "--nofile=64:64"], check=True)
            socks = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(120)]
            try:
                cpu0 = cpu_seconds(srv.proc.pid)
                time.sleep(2)
                cpu = cpu_seconds(srv.proc.pid) - cpu0
            finally:
                for s in socks:
                    s.close()
            warnings = srv.log().count("accept failed")
            self.assertGreaterEqual(warnings, 1, srv.log())
            self.assertLessEqual(warnings, 2, "one warning per 10 s, not one per try")
            self.assertLess(cpu, 0.5, f"{cpu:.2f} s of CPU in 2 s: the accept loop spins")
            client = make_client(srv.endpoint)
            deadline = time.monotonic() + 10
            while True:  # the closed connections free their descriptors
                try:
                    client.list_queues()
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)

    def test_unknown_attribute(self):
        _, url = self.create_queue()
        err = self.assertQueryError(query_call({"Action": "GetQueueAttributes", "QueueUrl": url,
                                                "AttributeName.1": "Foobar"}),
                                    "InvalidAttributeName")
        self.assertEqual(err.findtext(Q + "Message"), "Unknown Attribute Foobar.")

    def test_get_request(self):
        name, url = self.create_queue("get")
        r = query_call({"Action": "ListQueues", "QueueNamePrefix": name}, method="GET")
        self.assertEqual(r.status_code, 200, r.text)
        root = xml(r)
        self.assertEqual(root.tag, Q + "ListQueuesResponse")
        self.assertEqual([u.text for u in root.iter(Q + "QueueUrl")], [url])

    def test_queue_url_as_endpoint(self):
        _, url = self.create_queue("path")
        r = query_call({"Action": "SendMessage", "MessageBody": "via path"}, url=url)
        self.assertEqual(r.status_code, 200, r.text)
        res = xml(r).find(Q + "SendMessageResult")
        self.assertEqual(res.findtext(Q + "MD5OfMessageBody"), md5_hex("via path"))
        self.assertTrue(res.findtext(Q + "MessageId"))
        r = query_call({"Action": "ReceiveMessage", "WaitTimeSeconds": "1"}, url=url)
        self.assertEqual([b.text for b in xml(r).iter(Q + "Body")], ["via path"])

    def test_empty_receive(self):
        _, url = self.create_queue()
        r = query_call({"Action": "ReceiveMessage", "QueueUrl": url})
        self.assertEqual(r.status_code, 200, r.text)
        res = xml(r).find(Q + "ReceiveMessageResult")
        self.assertIsNotNone(res, r.text)
        self.assertEqual(list(res), [])

    def test_attributes_batches_and_escaping(self):
        _, url = self.create_queue("qa")
        body = "<xml> & \"quotes\" 'apos' \r\n crlf \r cr \t tab é"
        raw = b"\x00\xffbin"
        r = query_call({
            "Action": "SendMessage", "QueueUrl": url, "MessageBody": body,
            "MessageAttribute.1.Name": "s", "MessageAttribute.1.Value.DataType": "String",
            "MessageAttribute.1.Value.StringValue": "v<&>",
            "MessageAttribute.2.Name": "b", "MessageAttribute.2.Value.DataType": "Binary",
            "MessageAttribute.2.Value.BinaryValue": base64.b64encode(raw).decode(),
            "MessageAttribute.3.Name": "n", "MessageAttribute.3.Value.DataType": "Number.float",
            "MessageAttribute.3.Value.StringValue": "1.5"})
        self.assertEqual(r.status_code, 200, r.text)
        attrs = {"s": {"DataType": "String", "StringValue": "v<&>"},
                 "b": {"DataType": "Binary", "BinaryValue": raw},
                 "n": {"DataType": "Number.float", "StringValue": "1.5"}}
        res = xml(r).find(Q + "SendMessageResult")
        self.assertEqual(res.findtext(Q + "MD5OfMessageBody"), md5_hex(body))
        self.assertEqual(res.findtext(Q + "MD5OfMessageAttributes"), md5_of_attributes(attrs))
        r = query_call({"Action": "ReceiveMessage", "QueueUrl": url, "AttributeName.1": "All",
                        "MessageAttributeName.1": "All", "WaitTimeSeconds": "1"})
        msg = xml(r).find(f"{Q}ReceiveMessageResult/{Q}Message")
        self.assertIsNotNone(msg, r.text)
        self.assertEqual(msg.findtext(Q + "Body"), body, "XML escaping keeps the body exact")
        self.assertEqual(msg.findtext(Q + "MD5OfBody"), md5_hex(body))
        self.assertEqual(msg.findtext(Q + "MD5OfMessageAttributes"), md5_of_attributes(attrs))
        sysattrs = {a.findtext(Q + "Name"): a.findtext(Q + "Value")
                    for a in msg.findall(Q + "Attribute")}
        self.assertEqual(sysattrs.get("ApproximateReceiveCount"), "1")
        self.assertIn("SentTimestamp", sysattrs)
        got = {}
        for a in msg.findall(Q + "MessageAttribute"):
            v = a.find(Q + "Value")
            entry = {"DataType": v.findtext(Q + "DataType")}
            if v.find(Q + "BinaryValue") is not None:
                entry["BinaryValue"] = base64.b64decode(v.findtext(Q + "BinaryValue"))
            else:
                entry["StringValue"] = v.findtext(Q + "StringValue")
            got[a.findtext(Q + "Name")] = entry
        self.assertEqual(got, attrs)
        handle = msg.findtext(Q + "ReceiptHandle")

        r = query_call({"Action": "SendMessageBatch", "QueueUrl": url,
                        "SendMessageBatchRequestEntry.1.Id": "one",
                        "SendMessageBatchRequestEntry.1.MessageBody": "b1",
                        "SendMessageBatchRequestEntry.2.Id": "two",
                        "SendMessageBatchRequestEntry.2.MessageBody": "b2",
                        "SendMessageBatchRequestEntry.2.DelaySeconds": "0"})
        self.assertEqual(r.status_code, 200, r.text)
        entries = xml(r).findall(f"{Q}SendMessageBatchResult/{Q}SendMessageBatchResultEntry")
        self.assertEqual(sorted(e.findtext(Q + "Id") for e in entries), ["one", "two"])
        r = query_call({"Action": "ChangeMessageVisibilityBatch", "QueueUrl": url,
                        "ChangeMessageVisibilityBatchRequestEntry.1.Id": "c",
                        "ChangeMessageVisibilityBatchRequestEntry.1.ReceiptHandle": handle,
                        "ChangeMessageVisibilityBatchRequestEntry.1.VisibilityTimeout": "0"})
        self.assertEqual(r.status_code, 200, r.text)
        ok = xml(r).findall(f"{Q}ChangeMessageVisibilityBatchResult/"
                            f"{Q}ChangeMessageVisibilityBatchResultEntry")
        self.assertEqual([e.findtext(Q + "Id") for e in ok], ["c"])
        r = query_call({"Action": "DeleteMessageBatch", "QueueUrl": url,
                        "DeleteMessageBatchRequestEntry.1.Id": "d",
                        "DeleteMessageBatchRequestEntry.1.ReceiptHandle": handle,
                        "DeleteMessageBatchRequestEntry.2.Id": "bad",
                        "DeleteMessageBatchRequestEntry.2.ReceiptHandle": "garbage"})
        self.assertEqual(r.status_code, 200, r.text)
        res = xml(r).find(Q + "DeleteMessageBatchResult")
        self.assertEqual([e.findtext(Q + "Id") for e in
                          res.findall(Q + "DeleteMessageBatchResultEntry")], ["d"])
        failed = res.findall(Q + "BatchResultErrorEntry")
        self.assertEqual([(f.findtext(Q + "Id"), f.findtext(Q + "Code"),
                           f.findtext(Q + "SenderFault")) for f in failed],
                         [("bad", "ReceiptHandleIsInvalid", "true")])

    def test_unicode_trace_header_and_invalid_characters(self):
        _, url = self.create_queue("qu")
        body = "emoji \U0001F600 private \ue000 cjk 日本 nbsp \u00a0"
        trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
        r = query_call({"Action": "SendMessage", "QueueUrl": url, "MessageBody": body,
                        "MessageSystemAttribute.1.Name": "AWSTraceHeader",
                        "MessageSystemAttribute.1.Value.DataType": "String",
                        "MessageSystemAttribute.1.Value.StringValue": trace})
        self.assertEqual(r.status_code, 200, r.text)
        res = xml(r).find(Q + "SendMessageResult")
        self.assertEqual(res.findtext(Q + "MD5OfMessageBody"), md5_hex(body))
        self.assertEqual(res.findtext(Q + "MD5OfMessageSystemAttributes"),
                         "5ae4d5d7636402d80f4eb6d213245a88")
        r = query_call({"Action": "ReceiveMessage", "QueueUrl": url,
                        "MessageSystemAttributeName.1": "AWSTraceHeader", "WaitTimeSeconds": "1"})
        msg = xml(r).find(f"{Q}ReceiveMessageResult/{Q}Message")
        self.assertEqual(msg.findtext(Q + "Body"), body)
        attrs = {a.findtext(Q + "Name"): a.findtext(Q + "Value")
                 for a in msg.findall(Q + "Attribute")}
        self.assertEqual(attrs, {"AWSTraceHeader": trace})
        for bad in ["nul \x00", "nonchar \uffff"]:
            with self.subTest(body=repr(bad)):
                self.assertQueryError(query_call({"Action": "SendMessage", "QueueUrl": url,
                                                  "MessageBody": bad}),
                                      "InvalidMessageContents")

    def test_batch_errors(self):
        _, url = self.create_queue()
        self.assertQueryError(query_call({"Action": "SendMessageBatch", "QueueUrl": url}),
                              "AWS.SimpleQueueService.EmptyBatchRequest")
        self.assertQueryError(query_call({"Action": "DeleteMessageBatch", "QueueUrl": url,
                                          "DeleteMessageBatchRequestEntry.1.Id": "x",
                                          "DeleteMessageBatchRequestEntry.1.ReceiptHandle": "h",
                                          "DeleteMessageBatchRequestEntry.2.Id": "x",
                                          "DeleteMessageBatchRequestEntry.2.ReceiptHandle": "h"}),
                              "AWS.SimpleQueueService.BatchEntryIdsNotDistinct")

    def test_tags_and_dead_letter_sources(self):
        name, url = self.create_queue("qt")
        r = query_call({"Action": "TagQueue", "QueueUrl": url, "Tag.1.Key": "k",
                        "Tag.1.Value": "v"})
        self.assertEqual(r.status_code, 200, r.text)
        r = query_call({"Action": "ListQueueTags", "QueueUrl": url})
        tags = {t.findtext(Q + "Key"): t.findtext(Q + "Value") for t in xml(r).iter(Q + "Tag")}
        self.assertEqual(tags, {"k": "v"})
        r = query_call({"Action": "UntagQueue", "QueueUrl": url, "TagKey.1": "k"})
        self.assertEqual(r.status_code, 200, r.text)
        r = query_call({"Action": "ListQueueTags", "QueueUrl": url})
        self.assertEqual(list(xml(r).iter(Q + "Tag")), [])
        policy = json.dumps({"deadLetterTargetArn": SERVER.queue_arn(name),
                             "maxReceiveCount": 3})
        src_name = unique_name("qsrc")
        r = query_call({"Action": "CreateQueue", "QueueName": src_name,
                        "Attribute.1.Name": "RedrivePolicy", "Attribute.1.Value": policy})
        self.assertEqual(r.status_code, 200, r.text)
        r = query_call({"Action": "ListDeadLetterSourceQueues", "QueueUrl": url})
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual([u.text for u in xml(r).iter(Q + "QueueUrl")],
                         [SERVER.queue_url(src_name)])

    def test_unindexed_forms_of_the_api_reference_examples(self):
        # The API reference's own samples: `Tag.Key=...` (TagQueue), `Attribute.Name=...`
        # (SetQueueAttributes), `AttributeName=All` (GetQueueAttributes, ReceiveMessage).
        _, url = self.create_queue("qu")
        r = query_call({"Action": "TagQueue", "Tag.Key": "QueueType", "Tag.Value": "Production"},
                       url=url + "/")
        self.assertEqual(r.status_code, 200, r.text)
        r = query_call({"Action": "ListQueueTags", "QueueUrl": url})
        tags = {t.findtext(Q + "Key"): t.findtext(Q + "Value") for t in xml(r).iter(Q + "Tag")}
        self.assertEqual(tags, {"QueueType": "Production"})
        r = query_call({"Action": "SetQueueAttributes", "QueueUrl": url,
                        "Attribute.Name": "VisibilityTimeout", "Attribute.Value": "45"})
        self.assertEqual(r.status_code, 200, r.text)
        r = query_call({"Action": "GetQueueAttributes", "QueueUrl": url, "AttributeName": "All"})
        attrs = {a.findtext(Q + "Name"): a.findtext(Q + "Value")
                 for a in xml(r).iter(Q + "Attribute")}
        self.assertEqual(attrs.get("VisibilityTimeout"), "45")
        self.assertIn("QueueArn", attrs)
        query_call({"Action": "SendMessage", "QueueUrl": url, "MessageBody": "hi"})
        r = query_call({"Action": "ReceiveMessage", "QueueUrl": url, "AttributeName": "All",
                        "WaitTimeSeconds": "2"})
        names = {a.findtext(Q + "Name") for a in xml(r).iter(Q + "Attribute")}
        self.assertIn("SentTimestamp", names)


class CrossProtocolTest(WireTestCase):
    def test_json_to_query_and_back(self):
        _, url = self.create_queue("x")
        sqs = make_client(SERVER.endpoint)
        attrs = {"bin": {"DataType": "Binary", "BinaryValue": b"\x01\x02"},
                 "str": {"DataType": "String", "StringValue": "s"}}
        sent = sqs.send_message(QueueUrl=url, MessageBody="from json", MessageAttributes=attrs)
        r = query_call({"Action": "ReceiveMessage", "QueueUrl": url,
                        "MessageAttributeName.1": "All", "WaitTimeSeconds": "1"})
        msg = xml(r).find(f"{Q}ReceiveMessageResult/{Q}Message")
        self.assertEqual(msg.findtext(Q + "MessageId"), sent["MessageId"])
        self.assertEqual(msg.findtext(Q + "MD5OfMessageAttributes"),
                         sent["MD5OfMessageAttributes"])
        query_call({"Action": "DeleteMessage", "QueueUrl": url,
                    "ReceiptHandle": msg.findtext(Q + "ReceiptHandle")})
        r = query_call({"Action": "SendMessage", "QueueUrl": url, "MessageBody": "from query"})
        mid = xml(r).findtext(f"{Q}SendMessageResult/{Q}MessageId")
        got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
        self.assertEqual([(m["MessageId"], m["Body"]) for m in got], [(mid, "from query")])


if __name__ == "__main__":
    unittest.main(verbosity=2)
