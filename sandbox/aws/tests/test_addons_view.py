"""``GET /sandbox-api/addons``: every EKS add-on as DescribeAddon shows it now (holds applied),
with its configuration values parsed (JSON or YAML), for the Kubernetes simulator to install the
add-ons' workloads from; read-only, untouched by injected faults, empty after a reset."""

import json
import sys
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import REGION, Server, error_code, signed_get, trust, uniq, wait_until

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # eksfront, for the unit tests

FAST = {"Delay": 1, "MaxAttempts": 20}
FIELDS = {"cluster", "addonName", "account", "region", "status", "addonVersion",
          "configurationValues", "configurationValuesRaw", "serviceAccountRoleArn", "namespace",
          "addonArn", "createdAt", "modifiedAt"}


def view(server):
    status, doc = server.request("GET", "/sandbox-api/addons")
    assert status == 200, doc
    assert set(doc) == {"addons"}
    for r in doc["addons"]:
        assert set(r) == FIELDS, r
    return doc["addons"]


def row(server, cluster, addon):
    """The view's row for one add-on, or None when it is not listed."""
    rows = [r for r in view(server) if (r["cluster"], r["addonName"]) == (cluster, addon)]
    assert len(rows) <= 1, rows
    return rows[0] if rows else None


def status_of(server, cluster, addon):
    r = row(server, cluster, addon)
    return r and r["status"]


def test_addon_lifecycle_as_the_simulator_sees_it(eks, server, cluster):
    server.configure(addon_create_seconds=3)
    config = {"replicaCount": 2,
              "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}]}
    raw = json.dumps(config)
    eks.create_addon(clusterName=cluster, addonName="coredns", addonVersion="v1.12.4-eksbuild.1",
                     configurationValues=raw)
    got = row(server, cluster, "coredns")
    described = eks.describe_addon(clusterName=cluster, addonName="coredns")["addon"]
    assert got["status"] == described["status"] == "CREATING"
    assert got == {
        "cluster": cluster, "addonName": "coredns", "account": "123456789012", "region": REGION,
        "status": "CREATING", "addonVersion": "v1.12.4-eksbuild.1",
        "configurationValues": config, "configurationValuesRaw": raw,
        "serviceAccountRoleArn": None, "namespace": "kube-system",
        "addonArn": described["addonArn"],
        "createdAt": got["createdAt"], "modifiedAt": got["modifiedAt"],
    }
    assert described["configurationValues"] == raw
    assert abs(got["createdAt"] - described["createdAt"].timestamp()) < 0.01
    assert abs(got["modifiedAt"] - described["modifiedAt"].timestamp()) < 0.01

    # ACTIVE once the hold has passed: the view alone (no EKS call) sees it
    assert wait_until(lambda: status_of(server, cluster, "coredns") == "ACTIVE", timeout=10)
    assert eks.describe_addon(clusterName=cluster, addonName="coredns")["addon"]["status"] == "ACTIVE"

    # an update shows at once (new values, new version); UPDATING for the update hold
    server.configure(update_seconds=2)
    yaml_raw = "replicaCount: 3\ntolerations:\n- key: CriticalAddonsOnly\n  operator: Exists\n"
    eks.update_addon(clusterName=cluster, addonName="coredns", addonVersion="v1.13.1-eksbuild.1",
                     configurationValues=yaml_raw)
    got = row(server, cluster, "coredns")
    assert got["status"] == "UPDATING"
    assert got["addonVersion"] == "v1.13.1-eksbuild.1"
    assert got["configurationValues"] == {
        "replicaCount": 3, "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}]}
    assert got["configurationValuesRaw"] == yaml_raw
    described = eks.describe_addon(clusterName=cluster, addonName="coredns")["addon"]
    assert described["status"] == "UPDATING" and described["configurationValues"] == yaml_raw
    assert wait_until(lambda: status_of(server, cluster, "coredns") == "ACTIVE", timeout=10)

    # "" clears the values
    server.configure(update_seconds=0)
    eks.update_addon(clusterName=cluster, addonName="coredns", configurationValues="")
    got = row(server, cluster, "coredns")
    assert (got["configurationValues"], got["configurationValuesRaw"]) == (None, None)
    assert "configurationValues" not in eks.describe_addon(clusterName=cluster, addonName="coredns")["addon"]

    # DELETING for the delete hold, then gone (before any EKS call removes it)
    server.configure(addon_delete_seconds=2)
    eks.delete_addon(clusterName=cluster, addonName="coredns")
    assert status_of(server, cluster, "coredns") == "DELETING"
    assert eks.describe_addon(clusterName=cluster, addonName="coredns")["addon"]["status"] == "DELETING"
    assert wait_until(lambda: row(server, cluster, "coredns") is None, timeout=10)
    with pytest.raises(ClientError) as e:
        eks.describe_addon(clusterName=cluster, addonName="coredns")
    assert error_code(e) == "ResourceNotFoundException"
    assert row(server, cluster, "coredns") is None


def test_yaml_configuration_values(eks, server, cluster):
    raw = ("# vpc-cni with prefix delegation\n"
           "env:\n  ENABLE_PREFIX_DELEGATION: \"true\"\n  WARM_PREFIX_TARGET: '1'\n"
           "enableNetworkPolicy: \"true\"\n"
           "tolerations:\n  - operator: Exists\n")
    eks.create_addon(clusterName=cluster, addonName="vpc-cni", configurationValues=raw)
    got = row(server, cluster, "vpc-cni")
    assert got["configurationValues"] == {
        "env": {"ENABLE_PREFIX_DELEGATION": "true", "WARM_PREFIX_TARGET": "1"},
        "enableNetworkPolicy": "true", "tolerations": [{"operator": "Exists"}]}
    assert got["configurationValuesRaw"] == raw


def test_role_and_namespace_and_no_values(eks, server, make_cluster, world):
    cluster = make_cluster()["name"]
    eks.create_addon(clusterName=cluster, addonName="vpc-cni", serviceAccountRoleArn=world.pod_role)
    eks.create_addon(clusterName=cluster, addonName="eks-pod-identity-agent",
                     namespaceConfig={"namespace": "pod-identity"})
    cni = row(server, cluster, "vpc-cni")
    assert cni["serviceAccountRoleArn"] == world.pod_role
    assert (cni["configurationValues"], cni["configurationValuesRaw"]) == (None, None)
    assert cni["namespace"] == "kube-system"
    agent = row(server, cluster, "eks-pod-identity-agent")
    assert agent["serviceAccountRoleArn"] is None
    assert agent["namespace"] == "pod-identity"
    default = eks.describe_addon(clusterName=cluster, addonName="eks-pod-identity-agent")["addon"]["addonVersion"]
    assert agent["addonVersion"] == default


def test_ordered_by_cluster_then_addon_and_stable(eks, server, make_cluster):
    base = uniq("order")
    second, first = make_cluster(name=f"{base}-b")["name"], make_cluster(name=f"{base}-a")["name"]
    for cluster in (second, first):
        for addon in ("vpc-cni", "coredns", "kube-proxy"):
            eks.create_addon(clusterName=cluster, addonName=addon)
    rows = view(server)
    keys = [(r["cluster"], r["addonName"], r["account"], r["region"]) for r in rows]
    assert keys == sorted(keys)
    mine = [(r["cluster"], r["addonName"]) for r in rows if r["cluster"].startswith(base)]
    assert mine == [(c, a) for c in (first, second) for a in ("coredns", "kube-proxy", "vpc-cni")]
    assert view(server) == rows


def test_read_only_and_not_eks(server):
    assert server.request("POST", "/sandbox-api/addons", {})[0] == 405
    assert server.request("PUT", "/sandbox-api/addons", {})[0] == 405
    assert server.request("DELETE", "/sandbox-api/addons")[0] == 405


def test_injected_faults_do_not_apply(eks, server, cluster):
    eks.create_addon(clusterName=cluster, addonName="kube-proxy")
    before = view(server)
    assert any(r["cluster"] == cluster for r in before)
    once = boto3.client("eks", endpoint_url=server.url, region_name=REGION,
                        config=Config(retries={"mode": "standard", "total_max_attempts": 1}))
    status, doc = server.request("POST", "/sandbox-api/faults",
                                 [{"service": "*", "action": "*", "code": "throttling", "rate": 1}])
    assert status == 200, doc
    try:
        with pytest.raises(ClientError) as e:  # the rule is live: every AWS call is throttled
            once.describe_addon(clusterName=cluster, addonName="kube-proxy")
        assert error_code(e) == "ThrottlingException"
        for _ in range(3):
            assert view(server) == before
        # a request signed for eks but sent to the sandbox endpoint is not faulted either
        assert signed_get(server, "/sandbox-api/addons") == 200
        rules = server.request("GET", "/sandbox-api/faults")[1]
        assert rules[0]["seen"] == 1 and rules[0]["fired"] == 1  # only the DescribeAddon
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
        eks.create_cluster(name="c", roleArn=role, resourcesVpcConfig={"subnetIds": subnets})
        eks.get_waiter("cluster_active").wait(name="c", WaiterConfig=FAST)
        srv.configure(addon_create_seconds=30)
        eks.create_addon(clusterName="c", addonName="coredns", configurationValues='{"replicaCount": 1}')
        assert [(r["cluster"], r["addonName"], r["status"], r["configurationValues"]) for r in view(srv)] == [
            ("c", "coredns", "CREATING", {"replicaCount": 1})]
        assert srv.request("POST", "/moto-api/reset")[0] == 200
        assert view(srv) == []
    finally:
        srv.stop()


def test_parse_configuration():
    from eksfront.addons_view import parse_configuration

    assert parse_configuration(None) is None
    assert parse_configuration("") is None
    assert parse_configuration("  \n") is None
    assert parse_configuration('{"replicaCount": 2}') == {"replicaCount": 2}
    assert parse_configuration("replicaCount: 2\nnodeSelector: {a: b}\n") == {
        "replicaCount": 2, "nodeSelector": {"a": "b"}}
    assert parse_configuration("[1, 2") is None           # neither JSON nor YAML
    assert parse_configuration("key: [unclosed") is None  # YAML error
    assert parse_configuration("[1, 2]") is None          # not an object
    assert parse_configuration("just a string") is None
    assert parse_configuration("when: 2024-01-02\n") is None   # a YAML date is no JSON value
    assert parse_configuration("1: one\n") is None            # nor is a non-string key
    assert parse_configuration("x: .nan\n") is None


def test_view_changes_nothing():
    """In-process (accounts of its own: moto's backends are process-wide, shared with
    test_nodegroups_view): reading the view makes no front record, reaps no add-on whose delete
    hold has passed (it is only left out), skips records moto no longer holds, makes no moto
    backend, and orders equal names by account then region."""
    from moto.eks.models import eks_backends

    from eksfront import addons_view
    from eksfront.addons import Addon
    from eksfront.store import Store

    store = Store()
    made = []
    for account, region in (("510987654321", "eu-west-3"), ("410987654321", "eu-west-3"),
                            ("410987654321", "ap-south-1")):
        eks_backends[account][region].create_cluster(
            name="same", role_arn=f"arn:aws:iam::{account}:role/r", resources_vpc_config={"subnetIds": []})
        rec = store.new_record(account, region, "same", 0.0)
        for name, hold in (("kube-proxy", 0.0), ("coredns", 60.0)):
            rec.addons[name] = Addon("same", name, f"arn:aws:eks:{region}:{account}:addon/same/{name}/x",
                                     "v1", "kube-system", False, hold)
        made.append(rec)
    gone = made[0].addons["kube-proxy"]
    gone.life.start_delete(0.0)
    eks_backends["410987654321"]["eu-west-3"].create_cluster(
        name="unseen", role_arn="arn:aws:iam::410987654321:role/r", resources_vpc_config={"subnetIds": []})
    orphan = store.new_record("410987654321", "eu-west-3", "dropped-by-moto", 0.0)
    orphan.addons["coredns"] = Addon("dropped-by-moto", "coredns", "arn:x", "v1", "kube-system", False, 0.0)
    accounts_before = set(dict.keys(eks_backends))

    rows = [r for r in addons_view.addons(store)["addons"]
            if r["account"] in ("410987654321", "510987654321")]
    assert [(r["cluster"], r["addonName"], r["account"], r["region"], r["status"]) for r in rows] == [
        ("same", "coredns", "410987654321", "ap-south-1", "CREATING"),
        ("same", "coredns", "410987654321", "eu-west-3", "CREATING"),
        ("same", "coredns", "510987654321", "eu-west-3", "CREATING"),
        ("same", "kube-proxy", "410987654321", "ap-south-1", "ACTIVE"),
        ("same", "kube-proxy", "410987654321", "eu-west-3", "ACTIVE"),
    ]
    assert made[0].addons["kube-proxy"] is gone  # not reaped
    assert store.peek("410987654321", "eu-west-3", "unseen") is None  # no record made
    assert store.peek("410987654321", "eu-west-3", "dropped-by-moto") is orphan  # not dropped
    assert set(dict.keys(eks_backends)) == accounts_before  # no backend made
