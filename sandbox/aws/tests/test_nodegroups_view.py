"""``GET /sandbox-api/nodegroups``: every managed node group as DescribeNodegroup shows it now
(holds applied), with its subnets' zones, instance types and Kubernetes-spelled taints, for the
Kubernetes simulator to make Nodes from; read-only, untouched by injected faults, empty after a
reset."""

import datetime
import sys
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import REGION, Server, error_code, signed_get, trust, uniq, wait_until

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # eksfront, for the unit test

FAST = {"Delay": 1, "MaxAttempts": 20}


def view(server):
    status, doc = server.request("GET", "/sandbox-api/nodegroups")
    assert status == 200, doc
    assert set(doc) == {"nodegroups"}
    return doc["nodegroups"]


def row(server, cluster, nodegroup):
    """The view's row for one node group, or None when it is not listed."""
    rows = [r for r in view(server) if (r["cluster"], r["nodegroup"]) == (cluster, nodegroup)]
    assert len(rows) <= 1, rows
    return rows[0] if rows else None


def status_of(server, cluster, nodegroup):
    r = row(server, cluster, nodegroup)
    return r and r["status"]


def test_nodegroup_lifecycle_as_the_simulator_sees_it(eks, server, world, cluster, make_nodegroup):
    server.configure(nodegroup_create_seconds=3)
    ng = make_nodegroup(
        cluster, wait=False, instanceTypes=["m6i.large", "m6a.large"], capacityType="ON_DEMAND",
        scalingConfig={"minSize": 1, "maxSize": 3, "desiredSize": 2},
        labels={"role": "critical"},
        taints=[{"key": "CriticalAddonsOnly", "value": "true", "effect": "NO_SCHEDULE"},
                {"key": "dedicated", "effect": "NO_EXECUTE"},
                {"key": "soft", "value": "x", "effect": "PREFER_NO_SCHEDULE"}])
    name = ng["nodegroupName"]
    got = row(server, cluster, name)
    described = eks.describe_nodegroup(clusterName=cluster, nodegroupName=name)["nodegroup"]
    assert got["status"] == described["status"] == "CREATING"
    assert got == {
        "cluster": cluster, "nodegroup": name, "account": "123456789012", "region": REGION,
        "status": "CREATING", "desiredSize": 2, "minSize": 1, "maxSize": 3,
        "instanceTypes": ["m6i.large", "m6a.large"], "capacityType": "ON_DEMAND",
        "amiType": "AL2023_x86_64_STANDARD", "version": described["version"],
        "releaseVersion": described["releaseVersion"], "labels": {"role": "critical"},
        "taints": [{"key": "CriticalAddonsOnly", "value": "true", "effect": "NoSchedule"},
                   {"key": "dedicated", "effect": "NoExecute"},
                   {"key": "soft", "value": "x", "effect": "PreferNoSchedule"}],
        "subnets": [{"subnetId": world.subnets[0], "availabilityZone": f"{REGION}a"},
                    {"subnetId": world.subnets[1], "availabilityZone": f"{REGION}b"}],
        "nodegroupArn": described["nodegroupArn"],
        "createdAt": got["createdAt"],
    }
    created = described["createdAt"]  # botocore parses EKS's epoch seconds to an aware datetime
    assert abs(got["createdAt"] - created.timestamp()) < 0.01
    assert abs(got["createdAt"] - datetime.datetime.now(datetime.timezone.utc).timestamp()) < 60

    # ACTIVE once the hold has passed: the view alone (no EKS call) sees it
    assert wait_until(lambda: status_of(server, cluster, name) == "ACTIVE", timeout=10)
    assert eks.describe_nodegroup(clusterName=cluster, nodegroupName=name)["nodegroup"]["status"] == "ACTIVE"

    # scaling shows at once; the node group is UPDATING for the update hold
    server.configure(update_seconds=2)
    eks.update_nodegroup_config(clusterName=cluster, nodegroupName=name,
                                scalingConfig={"desiredSize": 3})
    got = row(server, cluster, name)
    assert (got["status"], got["desiredSize"], got["minSize"], got["maxSize"]) == ("UPDATING", 3, 1, 3)
    assert wait_until(lambda: status_of(server, cluster, name) == "ACTIVE", timeout=10)
    eks.update_nodegroup_config(clusterName=cluster, nodegroupName=name,
                                scalingConfig={"minSize": 0, "desiredSize": 0})
    got = row(server, cluster, name)
    assert (got["desiredSize"], got["minSize"]) == (0, 0)
    eks.get_waiter("nodegroup_active").wait(clusterName=cluster, nodegroupName=name, WaiterConfig=FAST)

    # DELETING for the delete hold, then gone (before any EKS call removes it)
    server.configure(nodegroup_delete_seconds=2)
    eks.delete_nodegroup(clusterName=cluster, nodegroupName=name)
    assert status_of(server, cluster, name) == "DELETING"
    assert eks.describe_nodegroup(clusterName=cluster, nodegroupName=name)["nodegroup"]["status"] == "DELETING"
    assert wait_until(lambda: row(server, cluster, name) is None, timeout=10)
    eks.get_waiter("nodegroup_deleted").wait(clusterName=cluster, nodegroupName=name, WaiterConfig=FAST)
    assert row(server, cluster, name) is None


def test_label_and_taint_updates_show(eks, server, cluster, make_nodegroup):
    name = make_nodegroup(cluster, labels={"a": "1"},
                          taints=[{"key": "k", "value": "v", "effect": "NO_SCHEDULE"}])["nodegroupName"]
    eks.update_nodegroup_config(clusterName=cluster, nodegroupName=name,
                                labels={"addOrUpdateLabels": {"b": "2"}, "removeLabels": ["a"]})
    eks.get_waiter("nodegroup_active").wait(clusterName=cluster, nodegroupName=name, WaiterConfig=FAST)
    eks.update_nodegroup_config(clusterName=cluster, nodegroupName=name, taints={
        "addOrUpdateTaints": [{"key": "gpu", "effect": "PREFER_NO_SCHEDULE"}],
        "removeTaints": [{"key": "k", "value": "v", "effect": "NO_SCHEDULE"}]})
    got = row(server, cluster, name)
    assert got["labels"] == {"b": "2"}
    assert got["taints"] == [{"key": "gpu", "effect": "PreferNoSchedule"}]


def test_default_instance_type_is_t3_medium(server, cluster, make_nodegroup):
    name = make_nodegroup(cluster)["nodegroupName"]
    got = row(server, cluster, name)
    assert got["instanceTypes"] == ["t3.medium"]
    assert got["capacityType"] == "ON_DEMAND"
    assert got["labels"] == {} and got["taints"] == []


def test_launch_template_instance_type(ec2, server, cluster, make_nodegroup):
    lt = ec2.create_launch_template(LaunchTemplateName=uniq("lt"), LaunchTemplateData={
        "InstanceType": "c7i.xlarge"})["LaunchTemplate"]
    ec2.create_launch_template_version(LaunchTemplateId=lt["LaunchTemplateId"],
                                       LaunchTemplateData={"InstanceType": "c7i.2xlarge"})
    first = make_nodegroup(cluster, launchTemplate={"id": lt["LaunchTemplateId"], "version": "1"})
    default = make_nodegroup(cluster, launchTemplate={"name": lt["LaunchTemplateName"]})
    latest = make_nodegroup(cluster, launchTemplate={"id": lt["LaunchTemplateId"], "version": "$Latest"})
    assert row(server, cluster, first["nodegroupName"])["instanceTypes"] == ["c7i.xlarge"]
    assert row(server, cluster, default["nodegroupName"])["instanceTypes"] == ["c7i.xlarge"]
    assert row(server, cluster, latest["nodegroupName"])["instanceTypes"] == ["c7i.2xlarge"]


def test_ordered_by_cluster_then_nodegroup_and_stable(server, make_cluster, make_nodegroup):
    base = uniq("order")
    second, first = make_cluster(name=f"{base}-b")["name"], make_cluster(name=f"{base}-a")["name"]
    for cluster in (second, first):
        for ng in ("zeta", "alpha", "mid"):
            make_nodegroup(cluster, name=ng)
    rows = view(server)
    keys = [(r["cluster"], r["nodegroup"], r["account"], r["region"]) for r in rows]
    assert keys == sorted(keys)
    mine = [(r["cluster"], r["nodegroup"]) for r in rows if r["cluster"].startswith(base)]
    assert mine == [(c, n) for c in (first, second) for n in ("alpha", "mid", "zeta")]
    assert view(server) == rows


def test_read_only_and_not_eks(server):
    assert server.request("POST", "/sandbox-api/nodegroups", {})[0] == 405
    assert server.request("DELETE", "/sandbox-api/nodegroups")[0] == 405


def test_injected_faults_do_not_apply(server, cluster, make_nodegroup):
    name = make_nodegroup(cluster)["nodegroupName"]
    before = view(server)
    once = boto3.client("eks", endpoint_url=server.url, region_name=REGION,
                        config=Config(retries={"mode": "standard", "total_max_attempts": 1}))
    status, doc = server.request("POST", "/sandbox-api/faults",
                                 [{"service": "*", "action": "*", "code": "throttling", "rate": 1}])
    assert status == 200, doc
    try:
        with pytest.raises(ClientError) as e:  # the rule is live: every AWS call is throttled
            once.describe_nodegroup(clusterName=cluster, nodegroupName=name)
        assert error_code(e) == "ThrottlingException"
        for _ in range(3):
            assert view(server) == before
        # a request signed for eks but sent to the sandbox endpoint is not faulted either
        assert signed_get(server, "/sandbox-api/nodegroups") == 200
        rules = server.request("GET", "/sandbox-api/faults")[1]
        assert rules[0]["seen"] == 1 and rules[0]["fired"] == 1  # only the DescribeNodegroup
    finally:
        server.request("DELETE", "/sandbox-api/faults")



def test_reset_empties_the_view():
    srv = Server()
    try:
        eks, iam, ec2 = srv.client("eks"), srv.client("iam"), srv.client("ec2")
        assert view(srv) == []
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24",
                                     AvailabilityZone=f"{REGION}{az}")["Subnet"]["SubnetId"]
                   for i, az in enumerate("ab")]
        role = iam.create_role(RoleName="c", AssumeRolePolicyDocument=trust("eks.amazonaws.com"))["Role"]["Arn"]
        node = iam.create_role(RoleName="n", AssumeRolePolicyDocument=trust("ec2.amazonaws.com"))["Role"]["Arn"]
        for policy in ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryReadOnly"):
            iam.attach_role_policy(RoleName="n", PolicyArn=f"arn:aws:iam::aws:policy/{policy}")
        eks.create_cluster(name="c", roleArn=role, resourcesVpcConfig={"subnetIds": subnets})
        eks.get_waiter("cluster_active").wait(name="c", WaiterConfig=FAST)
        srv.configure(nodegroup_create_seconds=30)
        eks.create_nodegroup(clusterName="c", nodegroupName="ng", nodeRole=node, subnets=subnets)
        assert [(r["cluster"], r["nodegroup"], r["status"]) for r in view(srv)] == [("c", "ng", "CREATING")]
        assert srv.request("POST", "/moto-api/reset")[0] == 200
        assert view(srv) == []
    finally:
        srv.stop()


def test_view_changes_nothing():
    """In-process: reading the view makes no front record, reaps no node group whose delete hold
    has passed (it is only left out), and makes no EC2 backend moto has not made."""
    from moto.ec2.models import ec2_backends
    from moto.eks.models import eks_backends

    from eksfront import nodegroups_view
    from eksfront.store import Life, Store

    account, region = "210987654321", "eu-west-3"
    backend = eks_backends[account][region]
    backend.create_cluster(name="seen", role_arn="arn:aws:iam::210987654321:role/r",
                           resources_vpc_config={"subnetIds": []})
    backend.create_cluster(name="unseen", role_arn="arn:aws:iam::210987654321:role/r",
                           resources_vpc_config={"subnetIds": []})
    for cluster in ("seen", "unseen"):
        for ng in ("gone", "kept"):
            backend.create_nodegroup(cluster_name=cluster, node_role="arn:aws:iam::210987654321:role/n",
                                     nodegroup_name=ng, subnets=["subnet-nope"])
    dict.pop(ec2_backends, account, None)  # moto's Nodegroup() looks up EC2; forget that
    store = Store()
    rec = store.new_record(account, region, "seen", 0.0)
    rec.nodegroups["gone"] = Life(0.0)
    rec.nodegroups["gone"].start_delete(0.0)
    rec.nodegroups["kept"] = Life(60.0)

    rows = [r for r in nodegroups_view.nodegroups(store)["nodegroups"] if r["account"] == account]
    assert [(r["cluster"], r["nodegroup"], r["status"]) for r in rows] == [
        ("seen", "kept", "CREATING"), ("unseen", "gone", "ACTIVE"), ("unseen", "kept", "ACTIVE")]
    assert rows[0]["subnets"] == [{"subnetId": "subnet-nope", "availabilityZone": None}]
    assert set(backend.clusters["seen"].nodegroups) == {"gone", "kept"}  # not reaped
    assert set(rec.nodegroups) == {"gone", "kept"}
    assert store.peek(account, region, "unseen") is None  # no record made
    assert account not in dict.keys(ec2_backends)  # no EC2 backend made
