"""Injected faults (``/sandbox-api/faults``): each service's error parses in boto3 with the
code, message and status the rule names; counts go down and spent rules stop firing; a faulted
request never reaches moto; rate rules (``"rate"``, ``"seed"``, ``"*"``, the ``throttling``
code) fail a reproducible share of calls with each service's own throttling error and pass the
rest on; GET, DELETE and reset."""

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
    # Strict: ThrottlingException is an EKS model error (HTTP 429), so shapecheck accepts it.
    eks = client(server, "eks")
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


# -- rate rules ----------------------------------------------------------------------------------

THROTTLED = {  # service -> (code, status, message) the "throttling" keyword answers
    "ec2": ("RequestLimitExceeded", 503, "Request limit exceeded."),
    "iam": ("Throttling", 400, "Rate exceeded"),
    "eks": ("ThrottlingException", 429, "Rate exceeded"),
    "sqs": ("RequestThrottled", 400, "The request was denied due to request throttling."),
    "events": ("ThrottlingException", 400, "Rate exceeded"),
}


def one_call(server):
    """service -> a cheap read-only call of it (EKS through the strict model check)."""
    ec2, iam, eks = client(server, "ec2"), client(server, "iam"), client(server, "eks")
    sqs, events = client(server, "sqs"), client(server, "events")
    return {"ec2": ec2.describe_vpcs, "iam": iam.list_roles, "eks": eks.list_clusters,
            "sqs": sqs.list_queues, "events": events.list_rules}


def test_rate_one_throttles_every_call_of_every_service(server):
    doc = inject(server, {"service": "*", "action": "*", "code": "throttling", "rate": 1.0})
    assert doc == [{"service": "*", "action": "*", "code": "throttling", "message": None,
                    "status": None, "rate": 1.0, "seed": None, "seen": 0, "fired": 0}]
    calls = one_call(server)
    for _ in range(3):
        for service, call in calls.items():
            code, status, message = THROTTLED[service]
            # botocore's standard retry mode and the Rust SDK both classify these codes as
            # throttling (one attempt here, so the failure is not retried away).
            err = fails(call)
            check(err, code, message, status)
            if service in ("iam", "sqs"):
                assert err.response["Error"]["Type"] == "Sender", err.response
    # Every operation, not only the ones above.
    check(fails(client(server, "ec2").create_vpc, CidrBlock="10.91.0.0/16"),
          "RequestLimitExceeded", "Request limit exceeded.", 503)
    check(fails(client(server, "sqs").create_queue, QueueName=uniq("q")),
          "RequestThrottled", THROTTLED["sqs"][2], 400)
    # SQS over the query protocol: its ErrorResponse document with the same code.
    status, _, body = raw_request(server, "sqs", "POST", "/",
                                  b"Action=ListQueues&Version=2012-11-05",
                                  {"Content-Type": "application/x-www-form-urlencoded"})
    ns = {"q": "http://queue.amazonaws.com/doc/2012-11-05/"}
    assert status == 400
    assert ET.fromstring(body).findtext("q:Error/q:Code", namespaces=ns) == "RequestThrottled"
    # "*" is every service the front can fault; others (STS, S3) are not matched.
    assert client(server, "sts").get_caller_identity()["Account"]
    [rule] = faults(server)
    assert rule["seen"] == rule["fired"] == 3 * 5 + 3  # a rate rule never runs out


def test_throttling_keyword_takes_a_message_and_works_with_count(server):
    inject(server, {"service": "eks", "action": "*", "code": "throttling", "message": "slow down",
                    "count": 2})
    eks = client(server, "eks")
    for _ in range(2):
        check(fails(eks.list_clusters), "ThrottlingException", "slow down", 429)
    eks.list_clusters()
    assert faults(server)[0]["remaining"] == 0


def test_rate_rule_with_its_own_code_and_action(server):
    inject(server, {"service": "*", "action": "ListRoles", "code": "ServiceFailure",
                    "message": "internal", "status": 500, "rate": 1})
    calls = one_call(server)
    err = fails(calls["iam"])
    check(err, "ServiceFailure", "internal", 500)
    assert err.response["Error"]["Type"] == "Receiver"
    calls["ec2"]()  # another action: not matched
    assert faults(server)[0]["seen"] == 1


def outcomes(server, n, **rule):
    """Adds ``rule`` (throttling every SQS call at a rate), makes ``n`` SQS calls; True where
    a call was throttled."""
    inject(server, dict({"service": "sqs", "action": "*", "code": "throttling"}, **rule))
    sqs = client(server, "sqs")
    seen = []
    for _ in range(n):
        try:
            sqs.list_queues()
            seen.append(False)
        except ClientError as err:
            check(err, "RequestThrottled", THROTTLED["sqs"][2], 400)
            seen.append(True)
    return seen


def test_seeded_rate_fails_a_reproducible_share(server):
    first = outcomes(server, 200, rate=0.5, seed=7)
    assert 60 <= sum(first) <= 140, sum(first)
    # Calls of other services do not reach the rule.
    client(server, "iam").list_roles()
    [rule] = faults(server)
    assert (rule["rate"], rule["seed"], rule["seen"], rule["fired"]) == (0.5, 7, 200, sum(first))
    # The same seed after the rules are cleared: the same sequence.
    server.request("DELETE", "/sandbox-api/faults")
    assert outcomes(server, 200, rate=0.5, seed=7) == first
    # Another seed: another sequence, about as often.
    server.request("DELETE", "/sandbox-api/faults")
    other = outcomes(server, 200, rate=0.5, seed=8)
    assert other != first and 60 <= sum(other) <= 140
    # Without a seed: still about the rate.
    server.request("DELETE", "/sandbox-api/faults")
    assert 60 <= sum(outcomes(server, 200, rate=0.5)) <= 140


def test_a_rate_rule_that_does_not_fire_lets_the_call_on(server):
    ec2 = client(server, "ec2")
    # Order as for count rules: the count rule added first takes the first two calls.
    inject(server,
           {"service": "ec2", "action": "DescribeVpcs", "code": "First", "message": "one",
            "count": 2},
           {"service": "ec2", "action": "*", "code": "throttling", "rate": 0.5, "seed": 3},
           {"service": "ec2", "action": "DescribeVpcs", "code": "Later", "message": "after"})
    check(fails(ec2.describe_vpcs), "First", "one", 400)
    check(fails(ec2.describe_vpcs), "First", "one", 400)
    codes = []
    for _ in range(40):
        try:
            ec2.describe_vpcs()
            codes.append(None)
        except ClientError as err:
            codes.append(err.response["Error"]["Code"])
    # A call the rate rule lets through reaches the next rule: the first one fails with it,
    # then the count rule is spent and calls reach moto.
    passed = [c for c in codes if c != "RequestLimitExceeded"]
    assert passed[0] == "Later" and set(passed[1:]) == {None}, codes
    first, rate, later = faults(server)
    assert (first["fired"], first["remaining"]) == (2, 0)
    assert rate["seen"] == 40 and rate["fired"] == codes.count("RequestLimitExceeded")
    assert (later["fired"], later["remaining"]) == (1, 0)


def test_rate_rule_validation(server):
    good = {"service": "ec2", "action": "DeleteVpc", "code": "X"}
    for bad in ({"service": "*", "action": "*", "code": "throttling", "rate": 0.1, "count": 2},
                {"service": "*", "action": "*", "code": "throttling", "rate": 0},
                {"service": "*", "action": "*", "code": "throttling", "rate": -0.1},
                {"service": "*", "action": "*", "code": "throttling", "rate": 1.5},
                {"service": "*", "action": "*", "code": "throttling", "rate": "0.1"},
                {"service": "*", "action": "*", "code": "throttling", "rate": True},
                {"service": "*", "action": "*", "code": "throttling", "rate": None},
                {"service": "*", "action": "*", "code": "throttling", "rate": 0.5, "seed": "7"},
                {"service": "*", "action": "*", "code": "throttling", "rate": 0.5, "seed": 1.5},
                {"service": "*", "action": "*", "code": "throttling", "seed": 7},
                {"service": "*", "action": "*", "code": "throttling", "status": 429, "rate": 1},
                {"service": "*", "action": "*", "code": "throttling", "message": None, "rate": 1},
                {"service": "s3", "action": "*", "code": "throttling", "rate": 0.1},
                {"service": "any", "action": "*", "code": "throttling", "rate": 0.1},
                {"action": "*", "code": "throttling", "rate": 0.1}):
        status, doc = server.request("POST", "/sandbox-api/faults", [good, bad])
        assert status == 400 and doc["message"], (bad, doc)
    assert faults(server) == []
    # Neither count nor rate: a count of 1, as before.
    assert inject(server, good)[0]["count"] == 1


def test_delete_removes_rate_rules(server):
    inject(server, {"service": "*", "action": "*", "code": "throttling", "rate": 1.0},
           {"service": "iam", "action": "*", "code": "throttling", "rate": 0.2, "seed": 1})
    calls = one_call(server)
    check(fails(calls["sqs"]), *[THROTTLED["sqs"][i] for i in (0, 2, 1)])
    status, doc = server.request("DELETE", "/sandbox-api/faults")
    assert status == 200 and doc == [] and faults(server) == []
    for call in calls.values():
        call()
