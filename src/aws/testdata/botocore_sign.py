#!/usr/bin/env python3
"""Signs a deterministic corpus of requests with botocore, for sigv4_test.cc's cross-check.

Prints one JSON object per line (ASCII only). Each describes a request exactly as it would go on
the wire after botocore signed it, plus what botocore computed:

  kind               "header" (SigV4Auth) or "presign" (SigV4QueryAuth)
  method, target     request line; target is path + optional '?query', as sent
  headers            [[name, value], ...] as sent, in order (repeats kept); includes Host
  body_b64           body bytes, base64
  region, service, access_key, secret, token, amz_date, expires (presign)
  canonical_request  botocore's canonical request
  signature          botocore's signature (hex)
  input_target, input_headers
                     the request before botocore added its headers / query parameters: what our
                     signer gets when it is compared with botocore
  signer_comparable  whether our signer, given the input, must produce botocore's signature
                     (false when botocore rewrote a Date header or injected UNSIGNED-PAYLOAD)
  expect             "ok", or the verify_errc name our verifier must answer with

Requests are built the way botocore's own serializers build them: path segments percent-encoded
with botocore.utils.percent_encode (plus raw characters that are legal on the wire, dot segments
and empty segments), query strings with percent_encode_sequence (plus bare keys such as "?acl"
that REST request URIs carry). The signing time is fixed by patching
botocore.auth.get_current_datetime, which SigV4Auth.add_auth reads.

Usage: botocore_sign.py [--seed N] [--header-cases N] [--presign-cases N]
"""
import argparse
import base64
import datetime
import hashlib
import json
import random
import sys
from unittest import mock
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth, SigV4QueryAuth, _host_from_url
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.utils import percent_encode, percent_encode_sequence

ENDPOINTS = [
    ("https", "sqs.us-east-1.amazonaws.com"),
    ("https", "sqs.eu-west-1.amazonaws.com"),
    ("https", "example.amazonaws.com:443"),  # default port: not in the signed host
    ("http", "localhost:9324"),
    ("http", "127.0.0.1:4566"),
    ("http", "[::1]:8080"),
    ("https", "relay.internal:8443"),
]
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2", "us-gov-west-1", "cn-north-1"]
SERVICES = ["sqs", "sqs", "sqs", "service", "iam"]
KEYS = [
    ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
    ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("ASIAXYZ0123456789ABC", "a+b/c=d+e/f=g"),
]
TOKENS = [
    "",
    "",
    "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxf"
    "pSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPk"
    "yQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBA"
    "z+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==",
    "FwoGZXIvYXdzEBYaDHs+token/with=odd+chars",
]
# Path segments before encoding: reserved characters, spaces, non-ASCII, dots, '%'.
SEGMENTS = [
    "queue", "123456789012", "my-queue.fifo", "a b", "  lead", "\u1234", "\u65e5\u672c\u8a9e",
    "~user", "a+b", "x=y", "semi;colon", "at@sign", "colon:seg", "dollar$", "bang!", "star*",
    "paren(s)", "comma,", "quote'", "100%", "q?mark", "hash#tag", "amp&", "tab\there", "\U0001f600",
    "caf\u00e9", "UPPER", "-._~", "..x", "x..", ".hidden",
]
# Raw segments that are legal on the wire as they are (RFC 3986 pchar), sent unencoded.
RAW_SEGMENTS = [
    "!$&'()*+,;=:@", "a%2fb", "percent%41", "%2E", "%2e%2E", "p%C3%A9", "~-._", "x:y@z", "a=b",
]
QUERY_NAMES = [
    "Action", "Version", "QueueUrl", "MessageBody", "Attribute.1.Name", "a b", "\u1234", "x+y",
    "k=v", "~tilde", "UPPER", "lower", "MixedCase", "with/slash", "q?mark", "amp&", "pct%",
    "\U0001f600", "empty", "Z", "a", "A", "_under", "-dash", ".dot",
]
QUERY_VALUES = [
    "", "1", "value", "hello world", "a+b", "a=b", "100%", "\u00e9\u00e8", "\u1234\u5678",
    "/path/to?x=y&z", "SendMessage", "2012-11-05", "https://sqs.us-east-1.amazonaws.com/1/q",
    "  spaced  ", "tab\tsep", "*", "~", "'quoted'", "\"dq\"", "<xml>", "\U0001f600",
]
BARE_KEYS = ["acl", "versioning", "tagging", "uploads", "delete", "X"]
VALUE_CHARS = "abcXYZ019 ,;:=/\"'()*+!?&%$#@[]{}|\\^`<>-_.~"
WHITESPACE = [" ", "  ", "\t", " \t ", "   \t\t  "]
RARE_WHITESPACE = ["\x0b", "\x0c", "\r\n ", "\r\n\t", "\x1f"]


def odd_value(rng):
    """An ASCII header value with leading/trailing/inner whitespace runs."""
    words = ["".join(rng.choice(VALUE_CHARS) for _ in range(rng.randint(1, 8)))
             for _ in range(rng.randint(1, 4))]
    out = rng.choice(["", ""] + WHITESPACE)
    for i, w in enumerate(words):
        if i:
            ws = rng.choice(WHITESPACE)
            if rng.random() < 0.1:
                ws = rng.choice(RARE_WHITESPACE)
            out += ws
        out += w.strip()
    return out + rng.choice(["", ""] + WHITESPACE)


def make_path(rng):
    if rng.random() < 0.12:
        return rng.choice(["", "/", "//", "/./", "/..", "/a/..", "/a/b/../..", "/a/./b/"])
    segs = []
    for _ in range(rng.randint(1, 5)):
        r = rng.random()
        if r < 0.45:
            segs.append(percent_encode(rng.choice(SEGMENTS)))  # botocore rest path label
        elif r < 0.6:
            # greedy label: slashes inside the value stay
            segs.append(percent_encode(rng.choice(SEGMENTS) + "/" + rng.choice(SEGMENTS),
                                       safe="/~"))
        elif r < 0.75:
            segs.append(rng.choice(RAW_SEGMENTS))
        elif r < 0.9:
            segs.append(rng.choice([".", "..", "", "."]))
        else:
            segs.append(rng.choice(["queue", "x", "1"]))
    path = "/" + "/".join(segs)
    if rng.random() < 0.25:
        path += "/"
    if rng.random() < 0.1:
        path = "/" + path
    return path


def make_pairs(rng, unique):
    names = rng.sample(QUERY_NAMES, rng.randint(1, 6))
    pairs = []
    for name in names:
        for _ in range(1 if unique else rng.choice([1, 1, 1, 2, 3])):
            pairs.append((name, rng.choice(QUERY_VALUES)))
    rng.shuffle(pairs)
    return pairs


def make_query(rng):
    """A query as botocore's serializers produce it, or None for no '?' at all."""
    r = rng.random()
    if r < 0.2:
        return None
    parts = []
    if rng.random() < 0.2:
        parts.append(rng.choice(BARE_KEYS))
    if r > 0.25:
        parts.append(percent_encode_sequence(make_pairs(rng, unique=False)))
    if rng.random() < 0.1:
        parts.append(rng.choice(BARE_KEYS))
    return "&".join(p for p in parts if p)


def make_headers(rng, method):
    headers = []
    if method in ("POST", "PUT") and rng.random() < 0.6:
        headers.append(("Content-Type", rng.choice([
            "application/x-www-form-urlencoded; charset=utf-8", "application/x-amz-json-1.0",
            "text/plain;  charset = utf-8"])))
    pool = [
        lambda: ("X-Amz-Target", "AmazonSQS." + rng.choice(["SendMessage", "ReceiveMessage"])),
        lambda: ("X-Custom", odd_value(rng)),
        lambda: (rng.choice(["x-MiXeD-CaSe", "X-MIXED-CASE", "x-mixed-case"]), odd_value(rng)),
        lambda: ("My-Header1", odd_value(rng)),
        lambda: ("User-Agent", "Boto3/1.34.0 Python/3.11.7 Linux/6.1 Botocore/1.43.11"),
        lambda: ("X-Amzn-Trace-Id", "Root=1-5759e988-bd862e3fe1be46a994272793"),
        lambda: ("Accept", "*/*"),
        lambda: ("X-Amz-Meta-Tabs", "a\tb\t\tc"),
        lambda: ("Expect", "100-continue"),
        lambda: ("Empty-Value", rng.choice(["", " ", "\t"])),
        lambda: ("x-amz-user-agent", odd_value(rng)),
    ]
    for _ in range(rng.randint(0, 5)):
        headers.append(rng.choice(pool)())
    if rng.random() < 0.3:  # a repeated header name, differently cased
        name = rng.choice(["My-Header1", "X-Dup"])
        for _ in range(rng.randint(2, 4)):
            headers.append((rng.choice([name, name.lower(), name.upper()]), odd_value(rng)))
    rng.shuffle(headers)
    return headers


def make_body(rng, method):
    r = rng.random()
    if r < 0.35 and method in ("GET", "DELETE"):
        return b""
    if r < 0.45:
        return b""
    if r < 0.65:
        return ("Action=SendMessage&MessageBody=" + percent_encode("hello world \u1234")).encode()
    if r < 0.8:
        return json.dumps({"QueueUrl": "https://q", "MessageBody": "\u00e9 \U0001f600"}).encode()
    if r < 0.97:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 600)))
    return bytes(rng.randrange(256) for _ in range(70000))


def make_time(rng):
    choice = rng.random()
    if choice < 0.1:
        return datetime.datetime(2015, 8, 30, 12, 36, 0)
    if choice < 0.15:
        return datetime.datetime(2024, 2, 29, 23, 59, 59)
    if choice < 0.2:
        return datetime.datetime(2030, 12, 31, 23, 59, 59)
    start = datetime.datetime(2012, 1, 1)
    return start + datetime.timedelta(seconds=rng.randrange(20 * 365 * 86400))


def wire_target(url):
    """What botocore's HTTP layer sends as the request-target for this URL."""
    parts = urlsplit(url)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return target


def sign(request, signer, when):
    with mock.patch("botocore.auth.get_current_datetime", return_value=when):
        canonical = [None]
        original = signer.canonical_request

        def capture(req):
            canonical[0] = original(req)
            return canonical[0]

        signer.canonical_request = capture
        signer.add_auth(request)
        return canonical[0]


def wire_headers(request, url):
    headers = [[n, v] for n, v in request.headers.items()]
    if not any(n.lower() == "host" for n, _ in headers):
        headers.insert(0, ["Host", _host_from_url(url)])
    length = request.prepare().headers.get("Content-Length")
    if length is not None:
        headers.append(["Content-Length", length])
    return headers


def common_case(rng):
    scheme, netloc = rng.choice(ENDPOINTS)
    access_key, secret = rng.choice(KEYS)
    return {
        "base": f"{scheme}://{netloc}",
        "region": rng.choice(REGIONS),
        "service": rng.choice(SERVICES),
        "access_key": access_key,
        "secret": secret,
        "token": rng.choice(TOKENS),
        "when": make_time(rng),
    }


def header_case(rng):
    c = common_case(rng)
    method = rng.choice(["GET", "POST", "PUT", "DELETE"])
    query = make_query(rng)
    url = c["base"] + make_path(rng) + ("" if query is None else "?" + query)
    headers = make_headers(rng, method)
    if rng.random() < 0.15:
        headers.append((rng.choice(["Host", "host", "HOST"]), _host_from_url(url)))
    body = make_body(rng, method)
    expect, comparable = "ok", True
    context = {}
    r = rng.random()
    if r < 0.12:
        headers.append((rng.choice(["X-Amz-Content-SHA256", "x-amz-content-sha256"]),
                        hashlib.sha256(body).hexdigest()))
    elif r < 0.16 and url.startswith("https"):
        context["payload_signing_enabled"] = False  # botocore sends UNSIGNED-PAYLOAD
        expect, comparable = "content_sha256_mismatch", False
    if rng.random() < 0.08:
        headers.append(("Date", "Thu, 01 Jan 1970 00:00:00 GMT"))  # botocore rewrites it
        comparable = False
    input_headers = [[n, v] for n, v in headers]
    if not any(n.lower() == "host" for n, _ in input_headers):
        input_headers.insert(0, ["Host", _host_from_url(url)])

    request = AWSRequest(method=method, url=url, data=body)
    for name, value in headers:
        request.headers[name] = value  # HTTPHeaders appends: repeats are kept
    request.context.update(context)
    creds = Credentials(c["access_key"], c["secret"], c["token"] or None)
    signer = SigV4Auth(creds, c["service"], c["region"])
    canonical = sign(request, signer, c["when"])
    authorization = request.headers["Authorization"]
    return {
        "kind": "header", "method": method, "target": wire_target(url),
        "headers": wire_headers(request, url), "body_b64": base64.b64encode(body).decode(),
        "region": c["region"], "service": c["service"], "access_key": c["access_key"],
        "secret": c["secret"], "token": c["token"],
        "amz_date": c["when"].strftime("%Y%m%dT%H%M%SZ"), "expires": 0,
        "canonical_request": canonical, "signature": authorization.rsplit("=", 1)[1],
        "authorization": authorization, "input_target": wire_target(url),
        "input_headers": input_headers, "signer_comparable": comparable, "expect": expect,
    }


def presign_case(rng):
    c = common_case(rng)
    pairs = make_pairs(rng, unique=True) if rng.random() < 0.7 else []
    path = make_path(rng) or "/"
    url = c["base"] + path + ("?" + percent_encode_sequence(pairs) if pairs else "")
    headers = [h for h in make_headers(rng, "GET") if h[0].lower() != "expect"]
    expires = rng.choice([60, 900, 3600, 86400, 604800])
    input_headers = [[n, v] for n, v in headers]
    input_headers.insert(0, ["Host", _host_from_url(url)])

    request = AWSRequest(method="GET", url=url)
    for name, value in headers:
        request.headers[name] = value
    creds = Credentials(c["access_key"], c["secret"], c["token"] or None)
    signer = SigV4QueryAuth(creds, c["service"], c["region"], expires=expires)
    canonical = sign(request, signer, c["when"])
    return {
        "kind": "presign", "method": "GET", "target": wire_target(request.url),
        "headers": wire_headers(request, url), "body_b64": "",
        "region": c["region"], "service": c["service"], "access_key": c["access_key"],
        "secret": c["secret"], "token": c["token"],
        "amz_date": c["when"].strftime("%Y%m%dT%H%M%SZ"), "expires": expires,
        "canonical_request": canonical, "signature": request.url.rsplit("=", 1)[1],
        "authorization": "", "input_target": wire_target(url), "input_headers": input_headers,
        "signer_comparable": True, "expect": "ok",
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=20150830)
    parser.add_argument("--header-cases", type=int, default=400)
    parser.add_argument("--presign-cases", type=int, default=80)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    for i in range(args.header_cases + args.presign_cases):
        case = header_case(rng) if i < args.header_cases else presign_case(rng)
        case["id"] = i
        sys.stdout.write(json.dumps(case, ensure_ascii=True) + "\n")


if __name__ == "__main__":
    main()
