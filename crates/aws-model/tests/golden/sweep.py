#!/usr/bin/env python3
"""Conformance sweep over every operation of every embedded model (1,481 of them).

For each operation a value is generated for its input and output shapes (every member filled, two
list items, one map entry, depth-limited). Then:

    python3 sweep.py requests      botocore serialises each input  -> sweep-requests.json.gz
    SKIFF_UPDATE_GOLDEN=1 cargo test -p skiff-aws-model --test sweep
                                   our encoding of each output     -> sweep-encoded.json (not committed)
    python3 sweep.py responses     botocore parses each encoding, checks it equals the output,
                                   and records the body's SHA-256  -> sweep-responses.json.gz

`cargo test` decodes every request (without constraint checks: generated strings do not satisfy
every pattern) and checks our encodings still hash to what botocore accepted.
"""
import base64, datetime, gzip, hashlib, json, os, sys

import botocore.session, botocore.serialize, botocore.parsers, botocore.model
from botocore.awsrequest import HeadersDict, prepare_request_dict, create_request_object

from gen import model, wire, jsonable, to_botocore_input

HERE = os.path.dirname(os.path.abspath(__file__))
SERVICES = ["ec2", "eks", "iam", "sts", "autoscaling", "elbv2", "route53", "ecr", "kms", "secretsmanager", "logs", "efs"]
TS = "2026-11-23T13:25:00Z"


def gen(shape, name, depth, location=None):
    t = shape.type_name
    if t == "structure":
        if depth > 3:
            return None
        out = {}
        for k, m in shape.members.items():
            loc = m.serialization.get("location")
            # Header-bound timestamps/lists and querystring maps are rare; skip what the wire cannot carry.
            if loc in ("headers",) or (loc and m.type_name in ("structure",)):
                continue
            if m.serialization.get("eventheaderlocation") or m.type_name == "structure" and m.serialization.get("payload"):
                continue
            v = gen(m, k, depth + 1, loc)
            if v is not None:
                out[k] = v
        # An empty nested structure has no wire form in the query protocols.
        return out if out or depth == 0 else None
    if t == "list":
        if depth > 4:
            return None
        items = [gen(shape.member, name, depth + 1) for _ in range(2)]
        items = [i for i in items if i is not None]
        return items or None
    if t == "map":
        if depth > 4:
            return None
        v = gen(shape.value, name, depth + 1)
        return {"k1": v} if v is not None else None
    if t == "string":
        if shape.enum:
            return shape.enum[0]
        n = max(shape.metadata.get("min", 1), 1)
        s = (name + "-value")[: max(n, 3)]
        return (s * n)[: max(n, len(s))] if len(s) < n else s
    if t in ("integer", "long"):
        lo = shape.metadata.get("min", 1)
        return int(max(lo, 1)) if shape.metadata.get("max", 10**9) >= max(lo, 1) else int(lo)
    if t in ("float", "double"):
        return 1.5
    if t == "boolean":
        return True
    if t == "timestamp":
        return TS
    if t == "blob":
        return base64.b64encode(b"hi").decode()
    return None


def cases():
    for service in SERVICES:
        m = model(service)
        for op_name in m.operation_names:
            op = m.operation_model(op_name)
            if op.has_event_stream_output:
                continue  # StartLiveTail: an event stream, not a response body (Skiff does not serve it)
            inp = gen(op.input_shape, "", 0) if op.input_shape else {}
            out = gen(op.output_shape, "", 0) if op.output_shape else {}
            yield service, m, op, inp or {}, out or {}


def requests():
    rows = []
    for service, m, op, inp, out in cases():
        ser = botocore.serialize.create_serializer(m.metadata["protocol"], include_validation=False)
        req = ser.serialize_to_request(to_botocore_input(op.input_shape, inp) if op.input_shape else {}, op)
        prepare_request_dict(req, endpoint_url="http://127.0.0.1:4566")
        prepared = create_request_object(req).prepare()
        rows.append({"service": service, "operation": op.name, "input": inp, "output": out, "wire": wire(prepared)})
    with gzip.open(os.path.join(HERE, "sweep-requests.json.gz"), "wt") as f:
        json.dump(rows, f, separators=(",", ":"))
    print("wrote sweep-requests.json.gz", len(rows))


def same(a, b):
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, str) and isinstance(b, str) and "T" in a and "T" in b:
        try:
            pa = datetime.datetime.fromisoformat(a.replace("Z", "+00:00"))
            pb = datetime.datetime.fromisoformat(b.replace("Z", "+00:00"))
            return pa == pb
        except ValueError:
            pass
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return float(a) == float(b)
    return a == b


def responses():
    encoded = json.load(open(os.path.join(HERE, "sweep-encoded.json")))
    rows, bad = [], 0
    for e in encoded:
        m = model(e["service"])
        op = m.operation_model(e["operation"])
        parser = botocore.parsers.create_parser(m.metadata["protocol"])
        resp = {"status_code": e["status"], "headers": HeadersDict(e["headers"]), "body": e["body"].encode()}
        parsed = jsonable(parser.parse(resp, op.output_shape)) if op.output_shape else {}
        ok = same(parsed, e["expected"])
        if not ok:
            bad += 1
            print("MISMATCH", e["service"], e["operation"], json.dumps(parsed)[:300], json.dumps(e["expected"])[:300])
        rows.append({"service": e["service"], "operation": e["operation"], "ok": ok,
                     "sha256": hashlib.sha256(e["body"].encode()).hexdigest()})
    with gzip.open(os.path.join(HERE, "sweep-responses.json.gz"), "wt") as f:
        json.dump(rows, f, separators=(",", ":"))
    print("wrote sweep-responses.json.gz", len(rows), "mismatches", bad)


if __name__ == "__main__":
    {"requests": requests, "responses": responses}[sys.argv[1]]()
