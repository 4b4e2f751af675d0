"""UpdateClusterConfig, UpdateClusterVersion, UpdateNodegroupConfig, UpdateNodegroupVersion,
DescribeUpdate and ListUpdates."""

import json

import pytest
from botocore.exceptions import ClientError

from conftest import error_code


def params(update):
    return {p["type"]: p["value"] for p in update["params"]}


def test_endpoint_update_merges_into_existing_vpc_config(eks, cluster, world):
    before = eks.describe_cluster(name=cluster)["cluster"]["resourcesVpcConfig"]
    update = eks.update_cluster_config(name=cluster, resourcesVpcConfig={
        "endpointPrivateAccess": True, "publicAccessCidrs": ["203.0.113.0/24"]})["update"]
    assert update["type"] == "EndpointAccessUpdate" and update["status"] == "InProgress"
    assert params(update) == {"EndpointPrivateAccess": "true", "PublicAccessCidrs": '["203.0.113.0/24"]'}
    after = eks.describe_cluster(name=cluster)["cluster"]["resourcesVpcConfig"]
    assert after["subnetIds"] == before["subnetIds"] == world.subnets[:2]
    assert after["vpcId"] == before["vpcId"]
    assert after["clusterSecurityGroupId"] == before["clusterSecurityGroupId"]
    assert after["endpointPublicAccess"] is True and after["endpointPrivateAccess"] is True
    assert after["publicAccessCidrs"] == ["203.0.113.0/24"]
    assert eks.describe_update(name=cluster, updateId=update["id"])["update"]["status"] == "Successful"


def test_update_cluster_config_refusals(eks, cluster):
    cases = [
        dict(resourcesVpcConfig={"endpointPrivateAccess": True},
             logging={"clusterLogging": [{"types": ["api"], "enabled": True}]}),
        dict(resourcesVpcConfig={"endpointPublicAccess": True}),            # no change
        dict(resourcesVpcConfig={"endpointPublicAccess": False}),           # would leave no endpoint
        dict(logging={"clusterLogging": [{"types": ["api"], "enabled": False}]}),  # no change
        dict(accessConfig={"authenticationMode": "CONFIG_MAP"}),            # API -> CONFIG_MAP
        dict(upgradePolicy={"supportType": "EXTENDED"}),                    # no change (default)
    ]
    for kwargs in cases:
        with pytest.raises(ClientError) as e:
            eks.update_cluster_config(name=cluster, **kwargs)
        assert error_code(e) == "InvalidParameterException", kwargs
    with pytest.raises(ClientError) as e:
        eks.update_cluster_config(name="no-such-cluster", upgradePolicy={"supportType": "STANDARD"})
    assert error_code(e) == "ResourceNotFoundException"
    assert eks.list_updates(name=cluster)["updateIds"] == []


def test_logging_update_merges_per_type(eks, cluster):
    update = eks.update_cluster_config(name=cluster, logging={"clusterLogging": [
        {"types": ["audit", "api"], "enabled": True}]})["update"]
    assert update["type"] == "LoggingUpdate"
    logging = eks.describe_cluster(name=cluster)["cluster"]["logging"]["clusterLogging"]
    assert {"types": ["api", "audit"], "enabled": True} in logging
    assert {"types": ["authenticator", "controllerManager", "scheduler"], "enabled": False} in logging
    eks.update_cluster_config(name=cluster, logging={"clusterLogging": [{"types": ["api"], "enabled": False}]})
    enabled = [s for s in eks.describe_cluster(name=cluster)["cluster"]["logging"]["clusterLogging"] if s["enabled"]]
    assert enabled == [{"types": ["audit"], "enabled": True}]


def test_access_config_and_upgrade_policy_updates(eks, make_cluster):
    name = make_cluster(mode="CONFIG_MAP")["name"]
    u1 = eks.update_cluster_config(name=name, accessConfig={"authenticationMode": "API_AND_CONFIG_MAP"})["update"]
    assert u1["type"] == "AccessConfigUpdate" and params(u1) == {"AuthenticationMode": "API_AND_CONFIG_MAP"}
    eks.update_cluster_config(name=name, accessConfig={"authenticationMode": "API"})
    u3 = eks.update_cluster_config(name=name, upgradePolicy={"supportType": "STANDARD"})["update"]
    assert u3["type"] == "UpgradePolicyUpdate"
    c = eks.describe_cluster(name=name)["cluster"]
    assert c["accessConfig"]["authenticationMode"] == "API"
    assert c["upgradePolicy"] == {"supportType": "STANDARD"}
    ids = eks.list_updates(name=name)["updateIds"]
    assert len(ids) == 3 and u1["id"] in ids and u3["id"] in ids


def test_vpc_config_update_replaces_subnets_and_groups(eks, ec2, cluster, world):
    sg = ec2.create_security_group(GroupName=f"{cluster}-extra", Description="x", VpcId=world.vpc)["GroupId"]
    update = eks.update_cluster_config(name=cluster, resourcesVpcConfig={
        "subnetIds": world.subnets[1:], "securityGroupIds": [sg]})["update"]
    assert update["type"] == "VpcConfigUpdate"
    assert json.loads(params(update)["Subnets"]) == world.subnets[1:]
    vpc = eks.describe_cluster(name=cluster)["cluster"]["resourcesVpcConfig"]
    assert vpc["subnetIds"] == world.subnets[1:] and vpc["securityGroupIds"] == [sg]
    assert vpc["endpointPublicAccess"] is True
    with pytest.raises(ClientError) as e:
        eks.update_cluster_config(name=cluster, resourcesVpcConfig={"subnetIds": world.other_subnets})
    assert error_code(e) == "InvalidParameterException"


def test_update_cluster_version_one_minor_at_a_time(eks, make_cluster):
    name = make_cluster(version="1.33")["name"]
    for bad in ("1.35", "1.33", "1.32", "2.0"):
        with pytest.raises(ClientError) as e:
            eks.update_cluster_version(name=name, version=bad)
        assert error_code(e) == "InvalidParameterException", bad
    update = eks.update_cluster_version(name=name, version="1.34")["update"]
    assert update["type"] == "VersionUpdate" and update["status"] == "InProgress"
    assert params(update)["Version"] == "1.34"
    assert eks.describe_update(name=name, updateId=update["id"])["update"]["status"] == "Successful"
    c = eks.describe_cluster(name=name)["cluster"]
    assert c["version"] == "1.34" and c["status"] == "ACTIVE"
    assert eks.list_updates(name=name)["updateIds"] == [update["id"]]


def test_cluster_version_update_respects_node_skew(eks, make_cluster, make_nodegroup):
    name = make_cluster(version="1.34")["name"]
    make_nodegroup(name, version="1.31")
    with pytest.raises(ClientError) as e:
        eks.update_cluster_version(name=name, version="1.35")
    assert error_code(e) == "InvalidRequestException"
    eks.update_cluster_version(name=name, version="1.35", force=True)


def test_nodegroup_config_update_is_recorded(eks, cluster, make_nodegroup):
    ng = make_nodegroup(cluster, labels={"a": "1", "b": "2"})["nodegroupName"]
    update = eks.update_nodegroup_config(
        clusterName=cluster, nodegroupName=ng,
        labels={"addOrUpdateLabels": {"c": "3"}, "removeLabels": ["a"]},
        taints={"addOrUpdateTaints": [{"key": "CriticalAddonsOnly", "value": "true", "effect": "NO_SCHEDULE"}]},
        scalingConfig={"minSize": 1, "maxSize": 4, "desiredSize": 3},
        updateConfig={"maxUnavailable": 2})["update"]
    assert update["type"] == "ConfigUpdate" and update["status"] == "InProgress"
    p = params(update)
    assert json.loads(p["LabelsToAdd"]) == {"c": "3"} and json.loads(p["LabelsToRemove"]) == ["a"]
    assert (p["MinSize"], p["MaxSize"], p["DesiredSize"], p["MaxUnavailable"]) == ("1", "4", "3", "2")
    got = eks.describe_update(name=cluster, updateId=update["id"], nodegroupName=ng)["update"]
    assert got["id"] == update["id"] and got["status"] == "Successful"
    assert eks.list_updates(name=cluster, nodegroupName=ng)["updateIds"] == [update["id"]]
    with pytest.raises(ClientError) as e:  # a node group update is not a cluster update
        eks.describe_update(name=cluster, updateId=update["id"])
    assert error_code(e) == "ResourceNotFoundException"
    n = eks.describe_nodegroup(clusterName=cluster, nodegroupName=ng)["nodegroup"]
    assert n["labels"] == {"b": "2", "c": "3"}
    assert n["scalingConfig"] == {"minSize": 1, "maxSize": 4, "desiredSize": 3}
    assert n["taints"][0]["effect"] == "NO_SCHEDULE"


def test_nodegroup_scaling_is_not_shared_between_nodegroups(eks, cluster, make_nodegroup):
    first = make_nodegroup(cluster)["nodegroupName"]
    second = make_nodegroup(cluster)["nodegroupName"]
    eks.update_nodegroup_config(clusterName=cluster, nodegroupName=first, scalingConfig={"desiredSize": 3})
    assert eks.describe_nodegroup(clusterName=cluster, nodegroupName=second)["nodegroup"][
        "scalingConfig"]["desiredSize"] == 2


def test_nodegroup_config_update_refusals(eks, cluster, make_nodegroup):
    ng = make_nodegroup(cluster)["nodegroupName"]
    for kwargs in (dict(scalingConfig={"desiredSize": 9}),
                   dict(scalingConfig={"minSize": 3, "desiredSize": 2}),
                   dict(taints={"addOrUpdateTaints": [{"key": "k", "effect": "NoExecute"}]}),
                   dict()):
        with pytest.raises(ClientError) as e:
            eks.update_nodegroup_config(clusterName=cluster, nodegroupName=ng, **kwargs)
        assert error_code(e) == "InvalidParameterException", kwargs
    with pytest.raises(ClientError) as e:
        eks.update_nodegroup_config(clusterName=cluster, nodegroupName="nope", scalingConfig={"desiredSize": 2})
    assert error_code(e) == "ResourceNotFoundException"
    assert eks.list_updates(name=cluster, nodegroupName=ng)["updateIds"] == []


def test_nodegroup_version_update(eks, make_cluster, make_nodegroup):
    name = make_cluster(version="1.34")["name"]
    ng = make_nodegroup(name)
    assert ng["version"] == "1.34"
    with pytest.raises(ClientError) as e:  # already at the latest AMI for 1.34
        eks.update_nodegroup_version(clusterName=name, nodegroupName=ng["nodegroupName"])
    assert error_code(e) == "InvalidParameterException"
    with pytest.raises(ClientError) as e:  # newer than the cluster
        eks.update_nodegroup_version(clusterName=name, nodegroupName=ng["nodegroupName"], version="1.35")
    assert error_code(e) == "InvalidParameterException"
    eks.update_cluster_version(name=name, version="1.35")
    update = eks.update_nodegroup_version(clusterName=name, nodegroupName=ng["nodegroupName"])["update"]
    assert update["type"] == "VersionUpdate"
    assert params(update)["Version"] == "1.35" and params(update)["ReleaseVersion"].startswith("1.35.")
    got = eks.describe_nodegroup(clusterName=name, nodegroupName=ng["nodegroupName"])["nodegroup"]
    assert got["version"] == "1.35" and got["releaseVersion"] == params(update)["ReleaseVersion"]
    pinned = eks.update_nodegroup_version(clusterName=name, nodegroupName=ng["nodegroupName"],
                                          releaseVersion="1.35.1-20270105")["update"]
    assert params(pinned) == {"ReleaseVersion": "1.35.1-20270105"}
    ids = eks.list_updates(name=name, nodegroupName=ng["nodegroupName"])["updateIds"]
    assert ids == [update["id"], pinned["id"]]


def test_nodegroup_launch_template_version_update(eks, ec2, cluster, make_nodegroup):
    lt = ec2.create_launch_template(LaunchTemplateName=f"{cluster}-lt", LaunchTemplateData={
        "InstanceType": "m7g.large"})["LaunchTemplate"]
    ec2.create_launch_template_version(LaunchTemplateId=lt["LaunchTemplateId"], LaunchTemplateData={
        "InstanceType": "m7g.xlarge"})
    ng = make_nodegroup(cluster, launchTemplate={"id": lt["LaunchTemplateId"], "version": "1"})
    update = eks.update_nodegroup_version(clusterName=cluster, nodegroupName=ng["nodegroupName"],
                                          launchTemplate={"id": lt["LaunchTemplateId"], "version": "2"})["update"]
    assert params(update)["LaunchTemplateVersion"] == "2"
    got = eks.describe_nodegroup(clusterName=cluster, nodegroupName=ng["nodegroupName"])["nodegroup"]
    assert got["launchTemplate"]["version"] == "2"


def test_describe_and_list_updates_not_found(eks, cluster):
    for kwargs in (dict(name=cluster, updateId="00000000-0000-0000-0000-000000000000"),
                   dict(name="no-such-cluster", updateId="x"),
                   dict(name=cluster, updateId="x", nodegroupName="nope"),
                   dict(name=cluster, updateId="x", addonName="coredns")):
        with pytest.raises(ClientError) as e:
            eks.describe_update(**kwargs)
        assert error_code(e) == "ResourceNotFoundException", kwargs
    with pytest.raises(ClientError) as e:
        eks.list_updates(name="no-such-cluster")
    assert error_code(e) == "ResourceNotFoundException"


def test_list_updates_pages(eks, cluster):
    ids = []
    for cidr in ("198.51.100.0/24", "198.51.101.0/24", "198.51.102.0/24"):
        ids.append(eks.update_cluster_config(name=cluster, resourcesVpcConfig={
            "publicAccessCidrs": [cidr]})["update"]["id"])
    seen = []
    for page in eks.get_paginator("list_updates").paginate(name=cluster, PaginationConfig={"PageSize": 2}):
        seen += page["updateIds"]
    assert seen == ids
