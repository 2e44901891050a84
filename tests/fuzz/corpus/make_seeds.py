#!/usr/bin/env python3
"""Regenerates the seed corpora in this directory (deterministic; run from anywhere).

  fuzz_query_form/     Query-protocol form bodies as AWS CLI v2.9's botocore serializes them
                       (via src/sqs/testdata/botocore_query.py when /usr/bin/python3 has the
                       CLI; otherwise the bodies already checked in stay)
  fuzz_json_request/   JSON-protocol request bodies (src/sqs/testdata/query_samples.json)
  fuzz_http_request/   raw HTTP/1.1 requests (first byte: piece size for the fuzzer)
  fuzz_message_codec/  message blobs in the store_format.h layout
  fuzz_sigv4_header/   requests signed by botocore at 2015-08-30T12:36:00Z for us-east-1/sqs
                       with AKIDEXAMPLE, in the target's text form; '!'-prefixed copies ask the
                       target to sign them itself
  fuzz_wal_recovery/   small segment files (see fuzz_wal_recovery.cc for the first byte)
"""
import datetime
import json
import os
import struct
import subprocess
import sys
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..", "..")
SAMPLES = os.path.join(ROOT, "src", "sqs", "testdata", "query_samples.json")


def write(target, name, data):
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def query_form():
    script = os.path.join(ROOT, "src", "sqs", "testdata", "botocore_query.py")
    r = subprocess.run(["/usr/bin/python3", script, "serialize", SAMPLES],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print("botocore_query.py unavailable; fuzz_query_form seeds left as they are")
        return
    for name, body in json.loads(r.stdout).items():
        write("fuzz_query_form", name, body)
    write("fuzz_query_form", "bad_escape", "Action=SendMessage&MessageBody=%zz&QueueUrl=%4")
    write("fuzz_query_form", "list_gap",
          "Action=ReceiveMessage&AttributeName.1=All&AttributeName.3=SentTimestamp")


def json_request():
    with open(SAMPLES) as f:
        samples = json.load(f)
    for s in samples:
        write("fuzz_json_request", s["name"], json.dumps(s["request"]))
    write("fuzz_json_request", "deep", '{"a":' * 70 + "1" + "}" * 70)
    write("fuzz_json_request", "attrs_edge", json.dumps({
        "MessageBody": "tab\tnl\ncr\r\ud7ff\ue000\ufffd\U00010000",
        "MessageAttributes": {
            "n": {"DataType": "Number.float", "StringValue": "-1.5e3"},
            "b": {"DataType": "Binary.png", "BinaryValue": "AAEC/w=="},
            "AWS.x": {"DataType": "String", "StringValue": "reserved"},
            "a..b": {"DataType": "Strin", "StringValue": ""}},
        "MessageAttributeNames": ["All", "a.*", "n"]}))


def http_request():
    body = '{"QueueUrl":"http://127.0.0.1:9324/000000000000/q","MessageBody":"hi"}'
    json_req = ("POST / HTTP/1.1\r\nHost: 127.0.0.1:9324\r\n"
                "Content-Type: application/x-amz-json-1.0\r\n"
                "X-Amz-Target: AmazonSQS.SendMessage\r\n"
                f"Content-Length: {len(body)}\r\n\r\n{body}")
    form = "Action=ListQueues&Version=2012-11-05"
    query_req = ("POST / HTTP/1.1\r\nHost: localhost\r\n"
                 "Content-Type: application/x-www-form-urlencoded; charset=utf-8\r\n"
                 f"Content-Length: {len(form)}\r\nConnection: keep-alive\r\n\r\n{form}")
    chunked = ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
               "X-Amz-Target: AmazonSQS.ListQueues\r\n\r\n"
               "2\r\n{}\r\n0;ext=1\r\nTrailer-Field: x\r\n\r\n")
    signed = ("POST / HTTP/1.1\r\nHost: sqs.us-east-1.amazonaws.com\r\n"
              "X-Amz-Date: 20150830T123600Z\r\n"
              "Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/sqs/"
              "aws4_request, SignedHeaders=host;x-amz-date, Signature=" + "0" * 64 + "\r\n"
              "Content-Length: 0\r\n\r\n")
    write("fuzz_http_request", "json_post", b"\x07" + json_req.encode())
    write("fuzz_http_request", "query_post", b"\x3f" + query_req.encode())
    write("fuzz_http_request", "chunked", b"\x01" + chunked.encode())
    write("fuzz_http_request", "health_get",
          b"\x10GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    write("fuzz_http_request", "pipelined",
          b"\x20" + (json_req + query_req + "GET /metrics HTTP/1.0\r\n\r\n").encode())
    write("fuzz_http_request", "signed", b"\x05" + signed.encode())


def blob(seq, body, attrs=(), trace="", sender="000000000000", delay=0, md5s=True):
    flags = (1 if attrs else 0) | (2 if trace else 0)
    out = struct.pack("<Q", seq) + bytes(range(16)) + struct.pack("<qIB", 1440938160000, delay,
                                                                   flags)
    out += (b"\x11" * 16) + ((b"\x22" * 16) if attrs else b"\0" * 16) + (
        (b"\x33" * 16) if trace else b"\0" * 16)
    for s, fmt in ((sender, "<H"), (trace, "<H"), (body, "<I")):
        b = s.encode()
        out += struct.pack(fmt, len(b)) + b
    out += bytes([len(attrs)])
    for name, type_, binary, value in attrs:
        for s in (name, type_):
            b = s.encode()
            out += struct.pack("<H", len(b)) + b
        out += bytes([1 if binary else 0]) + struct.pack("<I", len(value)) + value
    return out


def message_codec():
    write("fuzz_message_codec", "plain", blob(1, "hello"))
    write("fuzz_message_codec", "attrs", blob(77, "w3-000123|\u00e9\u4e2d", attrs=[
        ("worker", "String", False, b"3"), ("n", "Number", False, b"42"),
        ("bin", "Binary.raw", True, b"\0\1\2\xff")], delay=5))
    write("fuzz_message_codec", "trace", blob(2 ** 40, "x" * 300,
                                              trace="Root=1-5759e988-bd862e3fe1be46a994272793"))
    write("fuzz_message_codec", "truncated", blob(3, "cut here")[:-3])


def sigv4_header():
    try:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
    except ImportError:
        print("botocore unavailable; fuzz_sigv4_header seeds left as they are")
        return
    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    at = datetime.datetime(2015, 8, 30, 12, 36, 0)
    cases = [
        ("json_send", "POST", "http://127.0.0.1:9324/",
         {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.SendMessage"},
         '{"QueueUrl":"http://127.0.0.1:9324/000000000000/q","MessageBody":"hi"}'),
        ("query_list", "POST", "https://sqs.us-east-1.amazonaws.com/",
         {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
         "Action=ListQueues&Version=2012-11-05"),
        ("get_query", "GET", "http://localhost:9324/000000000000/q?Action=GetQueueAttributes"
         "&AttributeName.1=All&Version=2012-11-05", {"X-Custom": "  a   b  "}, ""),
    ]
    for name, method, url, headers, body in cases:
        req = AWSRequest(method=method, url=url, headers=headers, data=body)
        with mock.patch("botocore.auth.get_current_datetime", return_value=at):
            SigV4Auth(creds, "sqs", "us-east-1").add_auth(req)
        p = req.prepare()
        from urllib.parse import urlsplit
        u = urlsplit(p.url)
        target = (u.path or "/") + ("?" + u.query if u.query else "")
        lines = [method, target, f"Host: {u.netloc}"]
        lines += [f"{k}: {v}" for k, v in p.headers.items()]
        text = "\n".join(lines) + "\n\n" + body
        write("fuzz_sigv4_header", name, text)
        unsigned = "\n".join([method, target, f"Host: {u.netloc}"] +
                             [f"{k}: {v}" for k, v in headers.items()]) + "\n\n" + body
        write("fuzz_sigv4_header", name + "_to_sign", "!" + unsigned)
    write("fuzz_sigv4_header", "presigned",
          "GET\n/?Action=ListQueues&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="
          "AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fsqs%2Faws4_request&X-Amz-Date=20150830T123600Z"
          "&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=" + "a" * 64 +
          "\nHost: example.amazonaws.com\n\n")


def wal_recovery():
    import zlib  # only to make varied bytes; the checksums in the seeds are not valid crc32c
    rec = struct.pack("<IIB", zlib.crc32(b"x"), 5, 1) + b"hello"
    write("fuzz_wal_recovery", "one_segment_headered", b"\x04" + rec * 3 + b"\0" * 7)
    write("fuzz_wal_recovery", "three_segments", b"\x1e" + rec * 9)
    write("fuzz_wal_recovery", "torn_header", b"\x00SQRLWAL1\x01\x00")


def main():
    query_form()
    json_request()
    http_request()
    message_codec()
    sigv4_header()
    wal_recovery()


if __name__ == "__main__":
    sys.exit(main())
