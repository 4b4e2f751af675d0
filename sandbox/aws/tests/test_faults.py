"""Injected faults (``/sandbox-api/faults``): each service's error parses in boto3 with the
code, message and status the rule names; counts go down and spent rules stop firing; a faulted
request never reaches moto; GET, DELETE and reset."""

import json
import urllib.request
import xml.etree.ElementTree as ET

import boto3
import pytest
import shapecheck
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import REGION, Server, error_code, trust, uniq


@pytest.fixture(autouse=True)
def no_faults(server):
    server.request("DELETE", "/sandbox-api/faults")
    yield
    server.request("DELETE", "/sandbox-api/faults")


def client(server, service, strict=True):
    """A boto3 client that makes exactly one attempt (the session's clients retry throttling
    once, which would spend the injected faults unseen); ``strict`` EKS answers are checked
    against the EKS model."""
    c = boto3.client(service, endpoint_url=server.url, region_name=REGION,
                     config=Config(retries={"mode": "standard", "total_max_attempts": 1}))
    if service == "eks" and strict:
        shapecheck.install(c)
    return c


def inject(server, *rules):
    status, doc = server.request("POST", "/sandbox-api/faults", list(rules))
    assert status == 200, doc
    return doc


def faults(server):
    status, doc = server.request("GET", "/sandbox-api/faults")
    assert status == 200, doc
    return doc


def fails(call, **kwargs):
    """The ClientError ``call(**kwargs)`` raises."""
    with pytest.raises(ClientError) as e:
        call(**kwargs)
    return e.value


def check(err, code, message, status):
    assert err.response["Error"]["Code"] == code, err.response
    assert err.response["Error"]["Message"] == message, err.response
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == status, err.response
    assert err.response["ResponseMetadata"]["RequestId"], err.response


def test_endpoint_adds_lists_and_clears_rules(server):
    assert faults(server) == []
    doc = inject(server, {"service": "ec2", "action": "CreateVpc", "code": "RequestLimitExceeded",
                          "message": "Request limit exceeded.", "status": 503, "count": 2},
                 {"service": "iam", "action": "CreateRole", "code": "Throttling"})
    assert doc == [
        {"service": "ec2", "action": "CreateVpc", "code": "RequestLimitExceeded",
         "message": "Request limit exceeded.", "status": 503, "count": 2, "fired": 0, "remaining": 2},
        {"service": "iam", "action": "CreateRole", "code": "Throttling",
         "message": "Fault injected by the spar sandbox", "status": 400, "count": 1, "fired": 0,
         "remaining": 1},
    ]
    # PUT adds too.
    status, doc = server.request("PUT", "/sandbox-api/faults",
                                 [{"service": "sqs", "action": "CreateQueue", "code": "X"}])
    assert status == 200 and len(doc) == 3
    # An invalid rule refuses the whole list: nothing is added.
    for bad in ({"service": "s3", "action": "PutObject", "code": "SlowDown"},
                {"service": "ec2", "action": "CreateVpc"},
                {"service": "ec2", "action": "CreateVpc", "code": "X", "status": 200},
                {"service": "ec2", "action": "CreateVpc", "code": "X", "count": 0},
                {"service": "ec2", "action": "CreateVpc", "code": "X", "when": "always"}):
        status, doc = server.request("POST", "/sandbox-api/faults",
                                     [{"service": "ec2", "action": "DeleteVpc", "code": "X"}, bad])
        assert status == 400 and doc["message"], (bad, doc)
    assert server.request("POST", "/sandbox-api/faults", None)[0] == 200  # empty body: no rules
    assert len(faults(server)) == 3
    status, doc = server.request("DELETE", "/sandbox-api/faults")
    assert status == 200 and doc == []
    assert faults(server) == []


def test_ec2_fault_parses_counts_down_and_never_reaches_moto(server):
    ec2 = client(server, "ec2")
    name = uniq("faulted-vpc")
    tags = [{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": name}]}]
    inject(server, {"service": "ec2", "action": "CreateVpc", "code": "RequestLimitExceeded",
                    "message": "Request limit exceeded.", "status": 503, "count": 2})
    # Another EC2 call is not affected.
    ec2.describe_vpcs()
    for remaining in (1, 0):
        err = fails(ec2.create_vpc, CidrBlock="10.77.0.0/16", TagSpecifications=tags)
        check(err, "RequestLimitExceeded", "Request limit exceeded.", 503)
        assert faults(server)[0]["remaining"] == remaining
    named = [{"Name": "tag:Name", "Values": [name]}]
    assert ec2.describe_vpcs(Filters=named)["Vpcs"] == []  # the failed calls made nothing
    vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16", TagSpecifications=tags)["Vpc"]["VpcId"]
    assert [v["VpcId"] for v in ec2.describe_vpcs(Filters=named)["Vpcs"]] == [vpc]
    assert faults(server)[0] == {
        "service": "ec2", "action": "CreateVpc", "code": "RequestLimitExceeded",
        "message": "Request limit exceeded.", "status": 503, "count": 2, "fired": 2, "remaining": 0}


def test_ec2_wire_shape(server):
    inject(server, {"service": "ec2", "action": "DescribeVpcs", "code": "UnauthorizedOperation",
                    "message": "You are not authorized <to> perform this operation.", "status": 403})
    status, headers, body = raw_request(server, "ec2", "POST", "/",
                                        b"Action=DescribeVpcs&Version=2016-11-15",
                                        {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 403
    root = ET.fromstring(body)
    assert root.tag == "Response"
    assert root.findtext("Errors/Error/Code") == "UnauthorizedOperation"
    assert root.findtext("Errors/Error/Message") == "You are not authorized <to> perform this operation."
    assert root.findtext("RequestID")


def test_iam_fault(server):
    iam = client(server, "iam")
    name = uniq("faulted-role")
    inject(server, {"service": "iam", "action": "CreateRole", "code": "Throttling",
                    "message": "Rate exceeded", "status": 400})
    err = fails(iam.create_role, RoleName=name, AssumeRolePolicyDocument=trust("eks.amazonaws.com"))
    check(err, "Throttling", "Rate exceeded", 400)
    assert err.response["Error"]["Type"] == "Sender"
    assert error_code(pytest.raises(ClientError, iam.get_role, RoleName=name)) == "NoSuchEntity"
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust("eks.amazonaws.com"))
    assert iam.get_role(RoleName=name)["Role"]["RoleName"] == name
    assert faults(server)[0]["fired"] == 1


def test_iam_server_error_is_a_receiver_fault(server):
    iam = client(server, "iam")
    inject(server, {"service": "iam", "action": "ListRoles", "code": "ServiceFailure",
                    "message": "internal", "status": 500})
    err = fails(iam.list_roles)
    check(err, "ServiceFailure", "internal", 500)
    assert err.response["Error"]["Type"] == "Receiver"


def test_eks_fault_then_the_cluster_is_made(server, world):
    eks = client(server, "eks")
    # ``eks`` checks every raw answer against the EKS model (shapecheck): the injected error
    # must be one EKS can answer, with its status.
    name = uniq("c")
    message = (f"Role with arn: {world.cluster_role} could not be assumed because it does not "
               "exist or the trusted entities is not correct")
    inject(server, {"service": "eks", "action": "CreateCluster", "code": "InvalidParameterException",
                    "message": message})
    kwargs = dict(name=name, roleArn=world.cluster_role,
                  resourcesVpcConfig={"subnetIds": world.subnets[:2]})
    err = fails(eks.create_cluster, **kwargs)
    check(err, "InvalidParameterException", message, 400)
    assert name not in eks.list_clusters()["clusters"]
    assert eks.create_cluster(**kwargs)["cluster"]["name"] == name
    assert faults(server)[0]["remaining"] == 0


def test_eks_operation_is_the_routes_name(server, cluster):
    # A plain client: ThrottlingException is no EKS model error, so shapecheck would refuse it.
    eks = client(server, "eks", strict=False)
    inject(server, {"service": "eks", "action": "DescribeCluster", "code": "ThrottlingException",
                    "message": "Rate exceeded", "status": 429})
    eks.list_clusters()  # GET /clusters is ListClusters: not faulted
    check(fails(eks.describe_cluster, name=cluster), "ThrottlingException", "Rate exceeded", 429)
    assert eks.describe_cluster(name=cluster)["cluster"]["name"] == cluster


def test_sqs_fault_over_json(server):
    sqs = client(server, "sqs")
    name = uniq("faulted-queue")
    inject(server, {"service": "sqs", "action": "CreateQueue", "code": "RequestThrottled",
                    "message": "Request is throttled.", "status": 400},
           {"service": "sqs", "action": "CreateQueue",
            "code": "AWS.SimpleQueueService.QueueDeletedRecently",
            "message": "You must wait 60 seconds after deleting a queue before you can create "
                       "another queue with the same name."})
    check(fails(sqs.create_queue, QueueName=name), "RequestThrottled", "Request is throttled.", 400)
    err = fails(sqs.create_queue, QueueName=name)
    check(err, "AWS.SimpleQueueService.QueueDeletedRecently", faults(server)[1]["message"], 400)
    assert err.response["Error"]["Type"] == "Sender"
    assert sqs.create_queue(QueueName=name)["QueueUrl"].endswith("/" + name)
    assert [r["fired"] for r in faults(server)] == [1, 1]


def test_sqs_wire_shapes(server):
    inject(server, {"service": "sqs", "action": "CreateQueue", "code": "RequestThrottled",
                    "message": "slow down", "status": 400, "count": 2})
    # awsJson1_0 (today's SDKs): __type plus the query-compatible code header.
    status, headers, body = raw_request(server, "sqs", "POST", "/",
                                        json.dumps({"QueueName": uniq("q")}).encode(),
                                        {"Content-Type": "application/x-amz-json-1.0",
                                         "X-Amz-Target": "AmazonSQS.CreateQueue"})
    assert status == 400
    assert headers["x-amzn-query-error"] == "RequestThrottled;Sender"
    doc = json.loads(body)
    assert doc["__type"].split("#")[-1] == "RequestThrottled" and doc["message"] == "slow down"
    # The query protocol (older SDKs): an ErrorResponse document.
    status, headers, body = raw_request(server, "sqs", "POST", "/",
                                        f"Action=CreateQueue&QueueName={uniq('q')}&Version=2012-11-05".encode(),
                                        {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 400
    ns = {"q": "http://queue.amazonaws.com/doc/2012-11-05/"}
    root = ET.fromstring(body)
    assert root.findtext("q:Error/q:Code", namespaces=ns) == "RequestThrottled"
    assert root.findtext("q:Error/q:Message", namespaces=ns) == "slow down"
    assert root.findtext("q:Error/q:Type", namespaces=ns) == "Sender"
    assert root.findtext("q:RequestId", namespaces=ns)
    assert faults(server)[0]["remaining"] == 0


def test_events_fault(server):
    events = client(server, "events")
    name = uniq("faulted-rule")
    inject(server, {"service": "events", "action": "PutRule", "code": "ThrottlingException",
                    "message": "Rate exceeded", "status": 400})
    check(fails(events.put_rule, Name=name, ScheduleExpression="rate(5 minutes)"),
          "ThrottlingException", "Rate exceeded", 400)
    assert error_code(pytest.raises(ClientError, events.describe_rule, Name=name)) == \
        "ResourceNotFoundException"
    assert events.put_rule(Name=name, ScheduleExpression="rate(5 minutes)")["RuleArn"]
    assert events.describe_rule(Name=name)["Name"] == name


def test_rules_fire_in_order_per_action(server):
    ec2 = client(server, "ec2")
    inject(server,
           {"service": "ec2", "action": "DescribeSubnets", "code": "First", "message": "one"},
           {"service": "ec2", "action": "DescribeVpcs", "code": "Other", "message": "vpcs"},
           {"service": "ec2", "action": "DescribeSubnets", "code": "Second", "message": "two",
            "count": 2})
    check(fails(ec2.describe_subnets), "First", "one", 400)
    check(fails(ec2.describe_subnets), "Second", "two", 400)
    check(fails(ec2.describe_subnets), "Second", "two", 400)
    ec2.describe_subnets()
    assert [(r["code"], r["fired"], r["remaining"]) for r in faults(server)] == [
        ("First", 1, 0), ("Other", 0, 1), ("Second", 2, 0)]
    # Another service's rules never match: an IAM call named DescribeVpcs does not exist, and
    # an ec2 rule does not fault IAM.
    client(server, "iam").list_roles()
    assert faults(server)[1]["remaining"] == 1


def test_reset_clears_faults():
    srv = Server()
    try:
        status, _ = srv.request("POST", "/sandbox-api/faults",
                                [{"service": "ec2", "action": "CreateVpc", "code": "X"}])
        assert status == 200
        assert srv.request("POST", "/moto-api/reset")[0] == 200
        assert srv.request("GET", "/sandbox-api/faults") == (200, [])
        srv.client("ec2").create_vpc(CidrBlock="10.0.0.0/16")  # not faulted any more
    finally:
        srv.stop()


def raw_request(server, service, method, path, body, headers):
    """A SigV4-signed request for ``service``; (status, lower-cased headers, body)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    url = server.url + path
    req = AWSRequest(method=method, url=url, data=body, headers=headers)
    SigV4Auth(Credentials("testing", "testing"), service, "us-east-1").add_auth(req)
    request = urllib.request.Request(url, data=body, method=method, headers=dict(req.headers))
    try:
        with urllib.request.urlopen(request) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()
