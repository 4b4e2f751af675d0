"""Lifecycle holds: CREATING / UPDATING / DELETING last as configured, so waiters really wait."""

import time

import pytest
from botocore.exceptions import ClientError

from conftest import Server, error_code, uniq, wait_until

FAST = {"Delay": 1, "MaxAttempts": 20}


def test_config_endpoint_roundtrip(server):
    status, doc = server.request("GET", "/sandbox-api/config")
    assert status == 200
    assert doc["cluster_create_seconds"] == 0 and doc["check_dependencies"] is True
    doc = server.configure(cluster_create_seconds=3, nodegroup_create_seconds=2, update_seconds=1,
                           delete_seconds=2)
    assert doc["cluster_create_seconds"] == 3 and doc["delete_seconds"] == 2
    assert server.request("POST", "/sandbox-api/config", {"no_such_hold": 1})[0] == 400
    assert server.request("POST", "/sandbox-api/config", {"update_seconds": -1})[0] == 400
    assert server.request("GET", "/sandbox-api/config")[1]["update_seconds"] == 1
    status, doc = server.request("DELETE", "/sandbox-api/config")
    assert status == 200 and doc["cluster_create_seconds"] == 0


def test_holds_from_environment():
    srv = Server(env={"SPAR_SANDBOX_CLUSTER_CREATE_SECONDS": "5", "SPAR_SANDBOX_DELETE_SECONDS": "0.5",
                      "SPAR_SANDBOX_CHECK_DEPENDENCIES": "false"})
    try:
        status, doc = srv.request("GET", "/sandbox-api/config")
        assert doc["cluster_create_seconds"] == 5
        assert doc["delete_seconds"] == 0.5
        assert doc["check_dependencies"] is False
        srv.configure(cluster_create_seconds=1)
        assert srv.request("DELETE", "/sandbox-api/config")[1]["cluster_create_seconds"] == 5
    finally:
        srv.stop()


def test_cluster_stays_creating_for_the_hold(eks, server, make_cluster):
    server.configure(cluster_create_seconds=3)
    start = time.monotonic()
    c = make_cluster(wait=False)
    assert c["status"] == "CREATING"
    assert eks.describe_cluster(name=c["name"])["cluster"]["status"] == "CREATING"
    assert c["name"] in eks.list_clusters()["clusters"]
    eks.get_waiter("cluster_active").wait(name=c["name"], WaiterConfig=FAST)
    assert time.monotonic() - start >= 2.9
    assert eks.describe_cluster(name=c["name"])["cluster"]["status"] == "ACTIVE"


def test_hold_is_fixed_when_the_phase_starts(eks, server, make_cluster):
    server.configure(cluster_create_seconds=60)
    c = make_cluster(wait=False)
    server.configure(cluster_create_seconds=0)
    assert eks.describe_cluster(name=c["name"])["cluster"]["status"] == "CREATING"


def test_sub_resources_wait_for_an_active_cluster(eks, server, make_cluster):
    server.configure(cluster_create_seconds=30)
    name = make_cluster(wait=False)["name"]
    with pytest.raises(ClientError) as e:
        eks.create_addon(clusterName=name, addonName="coredns")
    assert error_code(e) == "InvalidRequestException"
    with pytest.raises(ClientError) as e:
        eks.update_cluster_version(name=name, version="1.35")
    assert error_code(e) == "InvalidRequestException"


def test_nodegroup_stays_creating_for_the_hold(eks, server, cluster, make_nodegroup):
    server.configure(nodegroup_create_seconds=3)
    start = time.monotonic()
    ng = make_nodegroup(cluster, wait=False)
    got = eks.describe_nodegroup(clusterName=cluster, nodegroupName=ng["nodegroupName"])["nodegroup"]
    assert got["status"] == "CREATING"
    eks.get_waiter("nodegroup_active").wait(clusterName=cluster, nodegroupName=ng["nodegroupName"],
                                            WaiterConfig=FAST)
    assert time.monotonic() - start >= 2.9


def test_addon_stays_creating_for_the_hold(eks, server, cluster):
    server.configure(addon_create_seconds=3)
    start = time.monotonic()
    assert eks.create_addon(clusterName=cluster, addonName="coredns")["addon"]["status"] == "CREATING"
    assert eks.describe_addon(clusterName=cluster, addonName="coredns")["addon"]["status"] == "CREATING"
    with pytest.raises(ClientError) as e:
        eks.update_addon(clusterName=cluster, addonName="coredns", configurationValues='{"replicaCount": 3}')
    assert error_code(e) == "ResourceInUseException"
    eks.get_waiter("addon_active").wait(clusterName=cluster, addonName="coredns", WaiterConfig=FAST)
    assert time.monotonic() - start >= 2.9


def test_cluster_update_holds_updating(eks, server, cluster):
    server.configure(update_seconds=3)
    update = eks.update_cluster_config(
        name=cluster, resourcesVpcConfig={"endpointPrivateAccess": True})["update"]
    assert update["status"] == "InProgress"
    assert eks.describe_cluster(name=cluster)["cluster"]["status"] == "UPDATING"
    assert eks.describe_update(name=cluster, updateId=update["id"])["update"]["status"] == "InProgress"
    with pytest.raises(ClientError) as e:
        eks.update_cluster_config(name=cluster, logging={"clusterLogging": [{"types": ["api"], "enabled": True}]})
    assert error_code(e) == "ResourceInUseException"
    with pytest.raises(ClientError) as e:
        eks.delete_cluster(name=cluster)
    assert error_code(e) == "ResourceInUseException"
    assert wait_until(lambda: eks.describe_update(name=cluster, updateId=update["id"])["update"]["status"]
                      == "Successful")
    assert eks.describe_cluster(name=cluster)["cluster"]["status"] == "ACTIVE"


def test_nodegroup_update_holds_updating(eks, server, cluster, make_nodegroup):
    ng = make_nodegroup(cluster)["nodegroupName"]
    server.configure(update_seconds=3)
    update = eks.update_nodegroup_config(clusterName=cluster, nodegroupName=ng,
                                         scalingConfig={"desiredSize": 3})["update"]
    assert update["status"] == "InProgress"
    got = eks.describe_nodegroup(clusterName=cluster, nodegroupName=ng)["nodegroup"]
    assert got["status"] == "UPDATING"
    assert got["scalingConfig"]["desiredSize"] == 3
    with pytest.raises(ClientError) as e:
        eks.update_nodegroup_version(clusterName=cluster, nodegroupName=ng, releaseVersion="1.35.1-20270101")
    assert error_code(e) == "ResourceInUseException"
    eks.get_waiter("nodegroup_active").wait(clusterName=cluster, nodegroupName=ng, WaiterConfig=FAST)
    got = eks.describe_update(name=cluster, updateId=update["id"], nodegroupName=ng)["update"]
    assert got["status"] == "Successful"


def test_cluster_delete_hold(eks, server, make_cluster):
    name = make_cluster()["name"]
    server.configure(delete_seconds=3)
    start = time.monotonic()
    assert eks.delete_cluster(name=name)["cluster"]["status"] == "DELETING"
    assert eks.describe_cluster(name=name)["cluster"]["status"] == "DELETING"
    assert name in eks.list_clusters()["clusters"]
    with pytest.raises(ClientError) as e:
        eks.delete_cluster(name=name)
    assert error_code(e) == "ResourceInUseException"
    with pytest.raises(ClientError) as e:
        eks.create_addon(clusterName=name, addonName="coredns")
    assert error_code(e) == "InvalidRequestException"
    eks.get_waiter("cluster_deleted").wait(name=name, WaiterConfig=FAST)
    assert time.monotonic() - start >= 2.9
    assert name not in eks.list_clusters()["clusters"]


def test_deleting_nodegroup_still_blocks_cluster_delete(eks, server, cluster, make_nodegroup):
    ng = make_nodegroup(cluster)["nodegroupName"]
    server.configure(nodegroup_delete_seconds=3, cluster_delete_seconds=0)
    eks.delete_nodegroup(clusterName=cluster, nodegroupName=ng)
    got = eks.describe_nodegroup(clusterName=cluster, nodegroupName=ng)["nodegroup"]
    assert got["status"] == "DELETING"
    assert ng in eks.list_nodegroups(clusterName=cluster)["nodegroups"]
    with pytest.raises(ClientError) as e:
        eks.delete_cluster(name=cluster)
    assert error_code(e) == "ResourceInUseException"
    eks.get_waiter("nodegroup_deleted").wait(clusterName=cluster, nodegroupName=ng, WaiterConfig=FAST)
    eks.delete_cluster(name=cluster)
    with pytest.raises(ClientError) as e:  # cluster_delete_seconds=0 overrides delete_seconds
        eks.describe_cluster(name=cluster)
    assert error_code(e) == "ResourceNotFoundException"


def test_addon_delete_hold(eks, server, cluster):
    eks.create_addon(clusterName=cluster, addonName="kube-proxy")
    server.configure(addon_delete_seconds=3)
    assert eks.delete_addon(clusterName=cluster, addonName="kube-proxy")["addon"]["status"] == "DELETING"
    assert eks.describe_addon(clusterName=cluster, addonName="kube-proxy")["addon"]["status"] == "DELETING"
    assert eks.list_addons(clusterName=cluster)["addons"] == ["kube-proxy"]
    eks.get_waiter("addon_deleted").wait(clusterName=cluster, addonName="kube-proxy", WaiterConfig=FAST)
    assert eks.list_addons(clusterName=cluster)["addons"] == []
