#!/usr/bin/env python3
"""Golden fixtures for the protocol codecs, made by botocore itself (the client side of the wire).

Step 1 (requests, signatures):  python3 gen.py requests
    botocore's serializers turn each case's input into the exact HTTP request a client sends
    -> requests.json; SigV4Auth / SigV4QueryAuth sign fixed requests -> sigv4.json.
Step 2 (responses):  SKIFF_UPDATE_GOLDEN=1 cargo test -p skiff-aws-model --test golden
    writes our encoding of each case's output/error -> encoded.json; then
    python3 gen.py responses
    parses every encoded response with botocore's parsers and records what botocore saw
    -> responses.json. `cargo test` then checks our encoding still equals the committed bytes and
    that botocore parsed them back to the case's output (so cargo test needs no Python).
"""
import base64, datetime, json, os, sys
from unittest import mock

import botocore.session, botocore.serialize, botocore.parsers, botocore.model, botocore.auth
import botocore.credentials
from botocore.awsrequest import AWSRequest, HeadersDict, prepare_request_dict, create_request_object

HERE = os.path.dirname(os.path.abspath(__file__))
ENDPOINT = "http://127.0.0.1:4566"
_session = botocore.session.get_session()
_loader = _session.get_component("data_loader")


def model(service):
    return botocore.model.ServiceModel(_loader.load_service_model(service, "service-2"), service_name=service)


# (service, operation, input, output) in the handler contract's form.
CASES = [
    ("sts", "GetCallerIdentity", {}, {"UserId": "000000000000", "Account": "000000000000", "Arn": "arn:aws:iam::000000000000:root"}),
    ("sts", "AssumeRole", {"RoleArn": "arn:aws:iam::000000000000:role/r", "RoleSessionName": "sess", "DurationSeconds": 900,
                           "Tags": [{"Key": "team", "Value": "a=b/c"}]},
     {"Credentials": {"AccessKeyId": "ASIAEXAMPLE", "SecretAccessKey": "secret", "SessionToken": "tok",
                      "Expiration": "2026-11-23T14:25:00Z"},
      "AssumedRoleUser": {"AssumedRoleId": "AROAEXAMPLE:sess", "Arn": "arn:aws:sts::000000000000:assumed-role/r/sess"}}),
    ("iam", "CreateRole", {"RoleName": "r", "AssumeRolePolicyDocument": "{\"Version\":\"2012-10-17\"}", "MaxSessionDuration": 3600,
                           "Tags": [{"Key": "k", "Value": "v"}]},
     {"Role": {"Path": "/", "RoleName": "r", "RoleId": "AROAEXAMPLE", "Arn": "arn:aws:iam::000000000000:role/r",
               "CreateDate": "2026-11-23T13:25:00Z", "Tags": [{"Key": "k", "Value": "v"}]}}),
    ("iam", "ListRoles", {"PathPrefix": "/", "MaxItems": 10},
     {"Roles": [{"Path": "/", "RoleName": "a", "RoleId": "AROA1", "Arn": "arn:aws:iam::000000000000:role/a", "CreateDate": "2026-11-23T13:25:00.500Z"},
                {"Path": "/", "RoleName": "b", "RoleId": "AROA2", "Arn": "arn:aws:iam::000000000000:role/b", "CreateDate": "2026-11-23T13:25:01Z"}],
      "IsTruncated": False}),
    ("iam", "DeleteRole", {"RoleName": "r"}, {}),
    ("ec2", "CreateVpc", {"CidrBlock": "10.0.0.0/16", "AmazonProvidedIpv6CidrBlock": False,
                          "TagSpecifications": [{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "demo"}, {"Key": "env", "Value": "<dev>"}]}]},
     {"Vpc": {"VpcId": "vpc-0123456789abcdef0", "CidrBlock": "10.0.0.0/16", "State": "pending", "IsDefault": False,
              "OwnerId": "000000000000", "Tags": [{"Key": "Name", "Value": "demo"}]}}),
    ("ec2", "DescribeVpcs", {"Filters": [{"Name": "tag:Name", "Values": ["demo", "x y"]}, {"Name": "state", "Values": ["available"]}],
                             "VpcIds": ["vpc-1", "vpc-2"], "MaxResults": 5},
     {"Vpcs": [{"VpcId": "vpc-1", "CidrBlock": "10.0.0.0/16", "State": "available", "IsDefault": True,
                "CidrBlockAssociationSet": [{"AssociationId": "vpc-cidr-assoc-1", "CidrBlock": "10.0.0.0/16", "CidrBlockState": {"State": "associated"}}]},
               {"VpcId": "vpc-2", "CidrBlock": "10.1.0.0/16", "State": "available", "IsDefault": False}],
      "NextToken": "t"}),
    ("ec2", "RunInstances", {"ImageId": "ami-1", "MinCount": 1, "MaxCount": 2, "InstanceType": "t3.micro",
                             "SecurityGroupIds": ["sg-1"], "UserData": "IyEvYmluL3NoCg==",
                             "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 20, "DeleteOnTermination": True}}]},
     {"ReservationId": "r-1", "OwnerId": "000000000000", "Instances": [{"InstanceId": "i-1", "ImageId": "ami-1",
        "State": {"Code": 0, "Name": "pending"}, "LaunchTime": "2026-11-23T13:25:00Z", "InstanceType": "t3.micro",
        "Placement": {"AvailabilityZone": "us-east-1a"}, "SecurityGroups": [{"GroupId": "sg-1", "GroupName": "default"}]}]}),
    ("elbv2", "CreateLoadBalancer", {"Name": "lb", "Subnets": ["subnet-1", "subnet-2"], "Type": "network", "Scheme": "internal",
                                     "Tags": [{"Key": "k", "Value": "v"}]},
     {"LoadBalancers": [{"LoadBalancerArn": "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/net/lb/1",
                         "DNSName": "lb-1.elb.us-east-1.amazonaws.com", "CreatedTime": "2026-11-23T13:25:00Z",
                         "LoadBalancerName": "lb", "Scheme": "internal", "State": {"Code": "provisioning"}, "Type": "network",
                         "AvailabilityZones": [{"ZoneName": "us-east-1a", "SubnetId": "subnet-1"}]}]}),
    ("autoscaling", "CreateAutoScalingGroup", {"AutoScalingGroupName": "g", "MinSize": 1, "MaxSize": 3, "DesiredCapacity": 2,
                                               "VPCZoneIdentifier": "subnet-1,subnet-2",
                                               "LaunchTemplate": {"LaunchTemplateId": "lt-1", "Version": "$Latest"},
                                               "Tags": [{"Key": "k", "Value": "v", "PropagateAtLaunch": True}]}, {}),
    ("autoscaling", "DescribeAutoScalingGroups", {"AutoScalingGroupNames": ["g"]},
     {"AutoScalingGroups": [{"AutoScalingGroupName": "g", "MinSize": 1, "MaxSize": 3, "DesiredCapacity": 2, "DefaultCooldown": 300,
                             "AvailabilityZones": ["us-east-1a"], "HealthCheckType": "EC2", "CreatedTime": "2026-11-23T13:25:00Z",
                             "Instances": [{"InstanceId": "i-1", "AvailabilityZone": "us-east-1a", "LifecycleState": "InService",
                                            "HealthStatus": "Healthy", "ProtectedFromScaleIn": False}]}]}),
    ("kms", "CreateKey", {"Description": "d", "KeyUsage": "ENCRYPT_DECRYPT", "Tags": [{"TagKey": "k", "TagValue": "v"}]},
     {"KeyMetadata": {"KeyId": "k-1", "Arn": "arn:aws:kms:us-east-1:000000000000:key/k-1", "CreationDate": "2026-11-23T13:25:00Z",
                      "Enabled": True, "KeyState": "Enabled", "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"]}}),
    ("kms", "Encrypt", {"KeyId": "k-1", "Plaintext": "aGVsbG8=", "EncryptionContext": {"a": "b"}},
     {"CiphertextBlob": "AQIDBA==", "KeyId": "arn:aws:kms:us-east-1:000000000000:key/k-1", "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}),
    ("secretsmanager", "CreateSecret", {"Name": "s", "SecretString": "v", "ClientRequestToken": "11111111-1111-1111-1111-111111111111"},
     {"ARN": "arn:aws:secretsmanager:us-east-1:000000000000:secret:s-abcdef", "Name": "s", "VersionId": "11111111-1111-1111-1111-111111111111"}),
    ("ecr", "CreateRepository", {"repositoryName": "app", "imageTagMutability": "IMMUTABLE"},
     {"repository": {"repositoryArn": "arn:aws:ecr:us-east-1:000000000000:repository/app", "registryId": "000000000000",
                     "repositoryName": "app", "repositoryUri": "000000000000.dkr.ecr.us-east-1.localhost/app",
                     "createdAt": "2026-11-23T13:25:00Z", "imageTagMutability": "IMMUTABLE"}}),
    ("eks", "CreateCluster", {"name": "demo", "version": "1.33", "roleArn": "arn:aws:iam::000000000000:role/eks",
                              "resourcesVpcConfig": {"subnetIds": ["subnet-1"], "endpointPublicAccess": True},
                              "tags": {"k": "v"}, "clientRequestToken": "tok"},
     {"cluster": {"name": "demo", "arn": "arn:aws:eks:us-east-1:000000000000:cluster/demo", "createdAt": "2026-11-23T13:25:00Z",
                  "version": "1.33", "status": "CREATING", "tags": {"k": "v"},
                  "resourcesVpcConfig": {"subnetIds": ["subnet-1"], "endpointPublicAccess": True}}}),
    ("eks", "DescribeNodegroup", {"clusterName": "demo", "nodegroupName": "ng 1"},
     {"nodegroup": {"nodegroupName": "ng 1", "clusterName": "demo", "status": "ACTIVE",
                    "scalingConfig": {"minSize": 1, "maxSize": 3, "desiredSize": 2}, "createdAt": "2026-11-23T13:25:00Z"}}),
    ("eks", "ListClusters", {"maxResults": 10, "nextToken": "a/b", "include": ["all"]}, {"clusters": ["demo"], "nextToken": "n"}),
    ("eks", "DeleteCluster", {"name": "demo"}, {"cluster": {"name": "demo", "status": "DELETING"}}),
    ("route53", "CreateHostedZone", {"Name": "example.com", "CallerReference": "ref-1",
                                     "HostedZoneConfig": {"Comment": "c", "PrivateZone": False}},
     {"HostedZone": {"Id": "/hostedzone/Z1", "Name": "example.com.", "CallerReference": "ref-1",
                     "Config": {"Comment": "c", "PrivateZone": False}, "ResourceRecordSetCount": 2},
      "ChangeInfo": {"Id": "/change/C1", "Status": "INSYNC", "SubmittedAt": "2026-11-23T13:25:00Z"},
      "DelegationSet": {"NameServers": ["ns-1.example", "ns-2.example"]},
      "Location": "https://route53.amazonaws.com/2013-04-01/hostedzone/Z1"}),
    ("route53", "ChangeResourceRecordSets", {"HostedZoneId": "Z1", "ChangeBatch": {"Changes": [
        {"Action": "UPSERT", "ResourceRecordSet": {"Name": "a.example.com", "Type": "A", "TTL": 60,
                                                   "ResourceRecords": [{"Value": "10.0.0.1"}, {"Value": "10.0.0.2"}]}}]}},
     {"ChangeInfo": {"Id": "/change/C2", "Status": "PENDING", "SubmittedAt": "2026-11-23T13:25:00Z"}}),
    ("route53", "ListResourceRecordSets", {"HostedZoneId": "Z1", "StartRecordName": "a.example.com", "StartRecordType": "A", "MaxItems": "10"},
     {"ResourceRecordSets": [{"Name": "a.example.com.", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "10.0.0.1"}]}],
      "IsTruncated": False, "MaxItems": "10"}),
]

# (service, code, message): an error each protocol must render so botocore reads the same code back.
ERRORS = [
    ("sts", "ValidationError", "1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null"),
    ("iam", "NoSuchEntity", "The role with name r cannot be found."),
    ("ec2", "InvalidVpcID.NotFound", "The vpc ID 'vpc-1' does not exist"),
    ("kms", "NotFoundException", "Key 'k' does not exist"),
    ("eks", "ResourceNotFoundException", "No cluster found for name: demo."),
    ("route53", "NoSuchHostedZone", "No hosted zone found with ID: Z1"),
]


def jsonable(v):
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items() if k != "ResponseMetadata"}
    if isinstance(v, list):
        return [jsonable(x) for x in v]
    if isinstance(v, datetime.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=datetime.timezone.utc)
        return v.astimezone(datetime.timezone.utc).isoformat()
    if isinstance(v, (bytes, bytearray)):
        return base64.b64encode(v).decode()
    return v


def to_botocore_input(shape, v):
    """Contract form -> botocore params (timestamps as datetimes, blobs as bytes)."""
    if shape.type_name == "structure":
        return {k: to_botocore_input(shape.members[k], x) for k, x in v.items()}
    if shape.type_name == "list":
        return [to_botocore_input(shape.member, x) for x in v]
    if shape.type_name == "map":
        return {k: to_botocore_input(shape.value, x) for k, x in v.items()}
    if shape.type_name == "blob":
        return base64.b64decode(v)
    return v


def wire(prepared):
    split = prepared.url.split("?", 1)
    path = split[0][len(ENDPOINT):] or "/"
    body = prepared.body or b""
    if isinstance(body, str):
        body = body.encode()
    return {"method": prepared.method, "path": path, "query": split[1] if len(split) > 1 else "",
            "headers": {k: v.decode() if isinstance(v, bytes) else v for k, v in prepared.headers.items()},
            "body": body.decode()}


def requests():
    out = []
    for service, op_name, inp, outp in CASES:
        m = model(service)
        op = m.operation_model(op_name)
        ser = botocore.serialize.create_serializer(m.metadata["protocol"], include_validation=True)
        req = ser.serialize_to_request(to_botocore_input(op.input_shape, inp) if op.input_shape else {}, op)
        prepare_request_dict(req, endpoint_url=ENDPOINT)
        prepared = create_request_object(req).prepare()
        out.append({"service": service, "operation": op_name, "input": inp, "output": outp, "wire": wire(prepared)})
    dump("requests.json", out)
    dump("errors.json", [{"service": s, "code": c, "message": m} for s, c, m in ERRORS])
    sigv4()


def sigv4():
    creds = botocore.credentials.Credentials("test", "test")
    fixed = datetime.datetime(2026, 11, 23, 13, 20, 0)
    out = []
    with mock.patch("botocore.auth.get_current_datetime", return_value=fixed):
        def sign(name, auth, method, url, body=b"", headers=None, now="2026-11-23T13:25:00Z"):
            r = AWSRequest(method=method, url=url, data=body, headers=headers or {})
            auth.add_auth(r)
            p = r.prepare()
            out.append({"name": name, "now": now, "wire": wire_abs(p)})
        sign("sts query POST", botocore.auth.SigV4Auth(creds, "sts", "us-east-1"), "POST", ENDPOINT + "/",
             b"Action=GetCallerIdentity&Version=2011-06-15", {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
        sign("eks rest-json path with space and query", botocore.auth.SigV4Auth(creds, "eks", "eu-west-1"), "GET",
             ENDPOINT + "/clusters/a%20b/node-groups?maxResults=5&nextToken=a%2Fb")
        tok = botocore.credentials.Credentials("ASIAEXAMPLE", "s3cr3t", "session-token")
        sign("kms json with session token", botocore.auth.SigV4Auth(tok, "kms", "us-west-2"), "POST", ENDPOINT + "/",
             b'{"KeyId": "k"}', {"X-Amz-Target": "TrentService.DescribeKey", "Content-Type": "application/x-amz-json-1.1"})
        sign("presigned sts get-caller-identity (eks token)", botocore.auth.SigV4QueryAuth(creds, "sts", "us-east-1", expires=60),
             "GET", "https://sts.us-east-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15", headers={"x-k8s-aws-id": "demo"},
             now="2026-11-23T13:20:30Z")
    dump("sigv4.json", out)


def wire_abs(prepared):
    url = prepared.url
    scheme_rest = url.split("://", 1)[1]
    host, _, rest = scheme_rest.partition("/")
    path, _, query = ("/" + rest).partition("?")
    body = prepared.body or b""
    if isinstance(body, str):
        body = body.encode()
    headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in prepared.headers.items()}
    headers.setdefault("host", host)
    return {"url": url, "method": prepared.method, "path": path, "query": query, "headers": headers, "body": body.decode()}


def responses():
    encoded = json.load(open(os.path.join(HERE, "encoded.json")))
    out = []
    for e in encoded:
        m = model(e["service"])
        parser = botocore.parsers.create_parser(m.metadata["protocol"])
        resp = {"status_code": e["status"], "headers": HeadersDict(e["headers"]), "body": e["body"].encode()}
        if "operation" in e:
            op = m.operation_model(e["operation"])
            parsed = parser.parse(resp, op.output_shape)
        else:
            # Any operation will do for an error: the parser reads the error envelope only.
            op = m.operation_model(sorted(m.operation_names)[0])
            parsed = parser.parse(resp, op.output_shape)
            parsed = {"Code": parsed["Error"]["Code"], "Message": parsed["Error"]["Message"],
                      "HTTPStatusCode": parsed["ResponseMetadata"]["HTTPStatusCode"]}
        out.append(dict(e, botocore_parsed=jsonable(parsed)))
    dump("responses.json", out)


def dump(name, data):
    with open(os.path.join(HERE, name), "w") as f:
        json.dump(data, f, indent=1, sort_keys=False)
        f.write("\n")
    print("wrote", name, len(data))


if __name__ == "__main__":
    {"requests": requests, "responses": responses}[sys.argv[1]]()
