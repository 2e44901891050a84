"""Shared pieces of the Python interop suites: clients, names, MD5s as SQS computes them."""

import hashlib
import os
import struct
import time
import uuid

import boto3
import botocore.config
from botocore.exceptions import ClientError

DUMMY_AKID = "AKIDINTEROPTEST"
DUMMY_SECRET = "interop-secret-not-real"
MIB = 1024 * 1024


def unique_name(prefix):
    """A queue name no other test, suite or run uses (≤ 80 chars of [A-Za-z0-9_-])."""
    return f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:10]}"


def make_client(endpoint, region="us-east-1", akid=DUMMY_AKID, secret=DUMMY_SECRET,
                validate=True, read_timeout=60):
    """A boto3 SQS client (AWS JSON 1.0 protocol in botocore 1.43) bound to `endpoint`.

    validate=False turns off botocore's client-side parameter validation so that invalid
    requests reach the server and the server's own error is what the test sees.
    """
    cfg = botocore.config.Config(
        retries={"max_attempts": 1, "mode": "standard"},
        parameter_validation=validate,
        read_timeout=read_timeout,
        connect_timeout=5,
    )
    return boto3.session.Session().client(
        "sqs", endpoint_url=endpoint, region_name=region, aws_access_key_id=akid,
        aws_secret_access_key=secret, config=cfg)


# -- MD5s, computed independently of any SDK, following the SQS documentation -------------
# "Calculating the MD5 message digest for message attributes" (SQS Developer Guide):
# for each attribute, sorted by name: length-prefixed (4-byte big-endian) name, data type,
# then a transport byte (1 = String/Number, 2 = Binary) and the length-prefixed value.

def md5_hex(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.md5(data).hexdigest()


def _length_prefixed(b):
    return struct.pack(">I", len(b)) + b


def md5_of_attributes(attrs):
    """MD5OfMessageAttributes (and MD5OfMessageSystemAttributes) for a boto3-style map."""
    buf = bytearray()
    for name in sorted(attrs):
        a = attrs[name]
        buf += _length_prefixed(name.encode("utf-8"))
        buf += _length_prefixed(a["DataType"].encode("utf-8"))
        if "StringValue" in a:
            buf += b"\x01" + _length_prefixed(a["StringValue"].encode("utf-8"))
        else:
            value = a["BinaryValue"]
            if isinstance(value, str):
                value = value.encode("utf-8")
            buf += b"\x02" + _length_prefixed(bytes(value))
    return hashlib.md5(bytes(buf)).hexdigest()


def attributes_size(attrs):
    """Bytes that message attributes add to the message size: name + type + value."""
    total = 0
    for name, a in attrs.items():
        total += len(name.encode("utf-8")) + len(a["DataType"].encode("utf-8"))
        if "StringValue" in a:
            total += len(a["StringValue"].encode("utf-8"))
        else:
            total += len(a["BinaryValue"])
    return total


# Known answers published with AWS-validated snapshots (localstack tests/aws/services/sqs,
# recorded against real SQS): they pin md5_of_attributes itself before a test relies on it.
KNOWN_ATTRIBUTE_MD5S = [
    ({"Help.Me": {"DataType": "String", "StringValue": "Me"},
      "Hello": {"DataType": "String", "StringValue": "There"},
      "General": {"DataType": "String", "StringValue": "Kenobi"}},
     "4c360f3fdafd970e05fae2f149d997f5"),
    ({"General": {"DataType": "String", "StringValue": "Kenobi"},
      "Hello": {"DataType": "String", "StringValue": "There"}},
     "fca026605781cb4126a1e9044df24232"),
    ({"Foo": {"DataType": "String", "StringValue": "Bar"}},
     "ae7155c6026991b6d54b11589678bf9c"),
    ({"attr1": {"DataType": "Binary", "BinaryValue":
                b"traceparent\x1e00-774062d6c37081a5a0b9b5b88e30627c-2d2482211f6489da-01"}},
     "8cbe4db156db8a94db8b801b7addb984"),
    ({"AWSTraceHeader": {"DataType": "String", "StringValue":
                         "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;"
                         "Sampled=1"}},
     "5ae4d5d7636402d80f4eb6d213245a88"),
]


# -- receive helpers -------------------------------------------------------------------------

def receive_until(client, queue_url, count, timeout=10.0, **kwargs):
    """Receives until `count` messages arrived (SQS may return fewer per call) or timeout."""
    got = []
    deadline = time.monotonic() + timeout
    kwargs.setdefault("MaxNumberOfMessages", 10)
    while len(got) < count and time.monotonic() < deadline:
        kwargs["MaxNumberOfMessages"] = min(10, max(1, count - len(got)))
        resp = client.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1, **kwargs)
        got.extend(resp.get("Messages", []))
    return got


def error_code(exc):
    return exc.response.get("Error", {}).get("Code")


def http_status(exc_or_resp):
    r = exc_or_resp.response if isinstance(exc_or_resp, ClientError) else exc_or_resp
    return r.get("ResponseMetadata", {}).get("HTTPStatusCode")
