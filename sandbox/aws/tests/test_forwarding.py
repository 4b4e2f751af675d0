"""Everything that is not the front's business reaches moto unchanged; reset clears both; the
wire format of errors."""

import json
import urllib.request

import pytest
from botocore.exceptions import ClientError

from conftest import Server, error_code, trust, uniq


def test_ec2_calls_are_forwarded(ec2):
    vpc = ec2.create_vpc(CidrBlock="10.99.0.0/16", TagSpecifications=[
        {"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "fwd"}]}])["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    found = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["fwd"]}])["Vpcs"]
    assert vpc in [v["VpcId"] for v in found]
    with pytest.raises(ClientError) as e:
        ec2.create_subnet(VpcId=vpc, CidrBlock="10.98.0.0/24")
    assert error_code(e) == "InvalidSubnet.Range"


def test_iam_role_with_managed_policy_is_forwarded(iam):
    name = uniq("fwd-role")
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust("eks.amazonaws.com"))
    iam.attach_role_policy(RoleName=name, PolicyArn="arn:aws:iam::aws:policy/AmazonEKSClusterPolicy")
    attached = iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["AmazonEKSClusterPolicy"]
    with pytest.raises(ClientError) as e:
        iam.attach_role_policy(RoleName=name, PolicyArn="arn:aws:iam::aws:policy/NoSuchPolicy")
    assert error_code(e) in ("NoSuchEntity", "NoSuchEntityException")


def test_sts_is_forwarded(server):
    ident = server.client("sts").get_caller_identity()
    assert ident["Account"] == "123456789012"


def test_eks_operation_nobody_emulates_gets_a_json_error(eks, cluster):
    with pytest.raises(ClientError) as e:
        eks.list_insights(clusterName=cluster)
    assert error_code(e) == "InvalidRequestException"
    assert "not emulated" in e.value.response["Error"]["Message"]


def test_error_wire_format(server, cluster):
    # Raw request: the error code must be in the x-amzn-ErrorType header and the body.
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    url = f"{server.url}/clusters/{cluster}/addons/coredns"
    req = AWSRequest(method="GET", url=url)
    SigV4Auth(Credentials("testing", "testing"), "eks", "us-east-1").add_auth(req)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(urllib.request.Request(url, headers=dict(req.headers)))
    assert e.value.code == 404
    assert e.value.headers["x-amzn-ErrorType"] == "ResourceNotFoundException"
    body = json.loads(e.value.read())
    assert body["__type"] == "ResourceNotFoundException"
    assert body["clusterName"] == cluster and body["addonName"] == "coredns" and body["message"]


def test_reset_clears_moto_and_the_front():
    srv = Server()
    try:
        eks, iam, ec2 = srv.client("eks"), srv.client("iam"), srv.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24",
                                     AvailabilityZone=f"us-east-1{az}")["Subnet"]["SubnetId"]
                   for i, az in enumerate("ab")]
        role = iam.create_role(RoleName="r", AssumeRolePolicyDocument=trust("eks.amazonaws.com"))["Role"]["Arn"]
        eks.create_cluster(name="c", roleArn=role, resourcesVpcConfig={"subnetIds": subnets},
                           accessConfig={"authenticationMode": "API"})
        eks.create_addon(clusterName="c", addonName="coredns")
        srv.configure(update_seconds=7)
        status, _ = srv.request("POST", "/moto-api/reset")
        assert status == 200
        assert eks.list_clusters()["clusters"] == []
        with pytest.raises(ClientError):
            iam.get_role(RoleName="r")
        assert srv.request("GET", "/sandbox-api/config")[1]["update_seconds"] == 7  # settings survive
        # the same names again: nothing of the old cluster's add-ons or entries survives
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24",
                                     AvailabilityZone=f"us-east-1{az}")["Subnet"]["SubnetId"]
                   for i, az in enumerate("ab")]
        role = iam.create_role(RoleName="r", AssumeRolePolicyDocument=trust("eks.amazonaws.com"))["Role"]["Arn"]
        eks.create_cluster(name="c", roleArn=role, resourcesVpcConfig={"subnetIds": subnets},
                           accessConfig={"authenticationMode": "API",
                                         "bootstrapClusterCreatorAdminPermissions": False})
        assert eks.list_addons(clusterName="c")["addons"] == []
        assert eks.list_access_entries(clusterName="c")["accessEntries"] == []
    finally:
        srv.stop()


def test_health_endpoint(server):
    assert server.request("GET", "/sandbox-api/health") == (200, {"status": "ok"})


def test_s3_get_bucket_versioning_has_the_root_s3_answers_with(server):
    # boto3 ignores the root element's name, so the check is on the raw answer: strict SDKs
    # (Rust, Go) refuse moto's own `GetBucketVersioningResponse` root.
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    s3 = server.client("s3")
    bucket = uniq("versioned")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    url = f"{server.url}/{bucket}?versioning"
    req = AWSRequest(method="GET", url=url)
    SigV4Auth(Credentials("testing", "testing"), "s3", "us-east-1").add_auth(req)
    with urllib.request.urlopen(urllib.request.Request(url, headers=dict(req.headers))) as r:
        body = r.read()
        assert int(r.headers["Content-Length"]) == len(body)
    assert b"<VersioningConfiguration" in body and b"</VersioningConfiguration>" in body, body
    assert b"<Status>Enabled</Status>" in body, body
