#!/usr/bin/python3
"""Test oracle for src/sqs/query_codec: the Query-protocol serializer and parser of the botocore
that Debian's AWS CLI v2.9 bundles (awscli/botocore, importable once `awscli` is imported).

    botocore_query.py serialize SAMPLES.json
        For every case whose action the CLI's SQS model knows, serialize case["request"] (a
        JSON-protocol request; blobs as base64 text) exactly as the CLI would put it on the wire.
        Prints {"<case name>": "<form body>", ...}.
    botocore_query.py parse RESPONSES.json
        RESPONSES.json is [{"name", "action", "xml", "status"}]. Parses each XML body with the
        CLI's QueryParser for the action's output shape (or as an error when status >= 300).
        Prints {"<name>": <parsed dict; blobs as base64 text>, ...}.

Exits 77 when the CLI's botocore is not importable, so the C++ test can skip.
Run it with the interpreter the CLI uses (/usr/bin/python3 on Debian).
"""
import base64
import json
import sys

try:
    import awscli  # noqa: F401  (installs the alias that makes the bundled `botocore` importable)
    import botocore.awsrequest
    import botocore.loaders
    import botocore.model
    import botocore.parsers
    import botocore.serialize
except ImportError as e:
    print('AWS CLI botocore not importable: %s' % e, file=sys.stderr)
    sys.exit(77)


def load_service_model():
    loader = botocore.loaders.create_loader()
    model = loader.load_service_model('sqs', 'service-2', api_version='2012-11-05')
    if model['metadata']['protocol'] != 'query':
        print('the CLI SQS model is not the Query-protocol one', file=sys.stderr)
        sys.exit(77)
    return botocore.model.ServiceModel(model, service_name='sqs')


def to_botocore(value, shape):
    """JSON-protocol value -> botocore input (blobs become bytes)."""
    if shape.type_name == 'structure':
        return {k: to_botocore(v, shape.members[k]) for k, v in value.items()}
    if shape.type_name == 'list':
        return [to_botocore(v, shape.member) for v in value]
    if shape.type_name == 'map':
        return {k: to_botocore(v, shape.value) for k, v in value.items()}
    if shape.type_name == 'blob':
        return base64.b64decode(value, validate=True)
    return value


def to_json(value):
    """botocore output -> JSON-protocol value (bytes become base64 text)."""
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode('ascii')
    return value


def serialize(service, cases):
    serializer = botocore.serialize.QuerySerializer()
    out = {}
    for case in cases:
        if case['action'] not in service.operation_names:
            continue
        op = service.operation_model(case['action'])
        params = to_botocore(case['request'], op.input_shape)
        request = serializer.serialize_to_request(params, op)
        wire = botocore.awsrequest.AWSRequest(
            method='POST', url='https://sqs.example/', data=request['body']).prepare()
        out[case['name']] = wire.body
    return out


def parse(service, responses):
    parser = botocore.parsers.QueryParser()
    out = {}
    for r in responses:
        shape = None
        if r['status'] < 300 and r['action'] in service.operation_names:
            shape = service.operation_model(r['action']).output_shape
        parsed = parser.parse({'body': r['xml'].encode('utf-8'), 'headers': {},
                               'status_code': r['status']}, shape)
        metadata = parsed.pop('ResponseMetadata', {})
        parsed['RequestId'] = metadata.get('RequestId')
        out[r['name']] = to_json(parsed)
    return out


def main():
    command, path = sys.argv[1], sys.argv[2]
    with open(path, encoding='utf-8') as f:
        data = json.load(f)
    service = load_service_model()
    result = serialize(service, data) if command == 'serialize' else parse(service, data)
    json.dump(result, sys.stdout, ensure_ascii=True)


if __name__ == '__main__':
    main()
