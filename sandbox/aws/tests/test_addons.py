"""Add-ons: catalogue, configuration schema, create/describe/list/update/delete."""

import json

import pytest
from botocore.exceptions import ClientError

from conftest import error_code

ADDONS = ["coredns", "eks-pod-identity-agent", "kube-proxy", "vpc-cni"]


def test_describe_addon_versions_catalogue(eks):
    addons = eks.describe_addon_versions(kubernetesVersion="1.35")["addons"]
    assert sorted(a["addonName"] for a in addons) == ADDONS
    for addon in addons:
        assert addon["owner"] == "aws" and addon["publisher"] == "eks"
        defaults = [v["addonVersion"] for v in addon["addonVersions"]
                    if any(c["defaultVersion"] for c in v["compatibilities"])]
        assert len(defaults) == 1, addon["addonName"]
        for version in addon["addonVersions"]:
            assert version["addonVersion"].startswith("v") and "-eksbuild." in version["addonVersion"]
            assert [c["clusterVersion"] for c in version["compatibilities"]] == ["1.35"]


def test_describe_addon_versions_filters_and_pages(eks):
    proxy = eks.describe_addon_versions(addonName="kube-proxy", kubernetesVersion="1.34")["addons"]
    assert len(proxy) == 1
    assert all(v["addonVersion"].startswith("v1.34.") for v in proxy[0]["addonVersions"])
    security = eks.describe_addon_versions(types=["security"])["addons"]
    assert [a["addonName"] for a in security] == ["eks-pod-identity-agent"]
    assert eks.describe_addon_versions(kubernetesVersion="1.10")["addons"] == []
    names = []
    for page in eks.get_paginator("describe_addon_versions").paginate(PaginationConfig={"PageSize": 1}):
        names += [a["addonName"] for a in page["addons"]]
    assert names == ADDONS


def test_describe_addon_configuration(eks):
    version = eks.describe_addon_versions(addonName="coredns", kubernetesVersion="1.35")["addons"][0][
        "addonVersions"][0]["addonVersion"]
    got = eks.describe_addon_configuration(addonName="coredns", addonVersion=version)
    schema = json.loads(got["configurationSchema"])
    props = schema["definitions"][schema["$ref"].split("/")[-1]]["properties"]
    assert {"tolerations", "replicaCount", "resources"} <= set(props)
    cni = eks.describe_addon_configuration(addonName="vpc-cni", addonVersion="v1.20.4-eksbuild.2")
    assert cni["podIdentityConfiguration"][0]["serviceAccount"] == "aws-node"
    with pytest.raises(ClientError) as e:
        eks.describe_addon_configuration(addonName="coredns", addonVersion="v0.0.1-eksbuild.1")
    assert error_code(e) == "InvalidParameterException"


def test_create_addon_uses_default_version(eks, cluster):
    addon = eks.create_addon(clusterName=cluster, addonName="eks-pod-identity-agent",
                             tags={"team": "ci"})["addon"]
    assert addon["status"] == "CREATING"
    default = [v["addonVersion"] for v in eks.describe_addon_versions(
        addonName="eks-pod-identity-agent", kubernetesVersion="1.35")["addons"][0]["addonVersions"]
        if v["compatibilities"][0]["defaultVersion"]][0]
    got = eks.describe_addon(clusterName=cluster, addonName="eks-pod-identity-agent")["addon"]
    assert got["addonVersion"] == default
    assert got["status"] == "ACTIVE"
    assert got["addonArn"].startswith(f"arn:aws:eks:us-east-1:123456789012:addon/{cluster}/eks-pod-identity-agent/")
    assert got["tags"] == {"team": "ci"}
    assert eks.list_addons(clusterName=cluster)["addons"] == ["eks-pod-identity-agent"]


def test_create_addon_refusals(eks, cluster):
    eks.create_addon(clusterName=cluster, addonName="coredns")
    cases = [
        (dict(addonName="coredns"), "ResourceInUseException"),
        (dict(addonName="no-such-addon"), "InvalidParameterException"),
        (dict(addonName="kube-proxy", addonVersion="v1.29.14-eksbuild.3"), "InvalidParameterException"),
        (dict(addonName="vpc-cni", configurationValues='{"notAKnob": true}'), "InvalidParameterException"),
        (dict(addonName="vpc-cni", configurationValues="[1, 2"), "InvalidParameterException"),
        (dict(addonName="kube-proxy", podIdentityAssociations=[
            {"serviceAccount": "kube-proxy", "roleArn": "arn:aws:iam::123456789012:role/sandbox-pod"}]),
         "InvalidParameterException"),
        (dict(addonName="vpc-cni", serviceAccountRoleArn="arn:aws:iam::123456789012:role/missing"),
         "InvalidParameterException"),
    ]
    for kwargs, code in cases:
        with pytest.raises(ClientError) as e:
            eks.create_addon(clusterName=cluster, **kwargs)
        assert error_code(e) == code, kwargs
    with pytest.raises(ClientError) as e:
        eks.create_addon(clusterName="no-such-cluster", addonName="coredns")
    assert error_code(e) == "ResourceNotFoundException"
    assert eks.list_addons(clusterName=cluster)["addons"] == ["coredns"]


def test_coredns_configuration_tolerating_critical_addons_only(eks, cluster):
    config = json.dumps({"tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}],
                         "replicaCount": 2})
    eks.create_addon(clusterName=cluster, addonName="coredns", configurationValues=config,
                     resolveConflicts="OVERWRITE")
    got = eks.describe_addon(clusterName=cluster, addonName="coredns")["addon"]
    assert json.loads(got["configurationValues"]) == json.loads(config)
    yaml_config = "tolerations:\n- key: CriticalAddonsOnly\n  operator: Exists\n"
    eks.update_addon(clusterName=cluster, addonName="coredns", configurationValues=yaml_config)
    assert eks.describe_addon(clusterName=cluster, addonName="coredns")["addon"][
        "configurationValues"] == yaml_config


def test_vpc_cni_pod_identity_association_owned_by_addon(eks, cluster, world):
    addon = eks.create_addon(clusterName=cluster, addonName="vpc-cni", podIdentityAssociations=[
        {"serviceAccount": "aws-node", "roleArn": world.pod_role}])["addon"]
    assert len(addon["podIdentityAssociations"]) == 1
    assocs = eks.list_pod_identity_associations(clusterName=cluster)["associations"]
    assert len(assocs) == 1
    assert assocs[0]["namespace"] == "kube-system" and assocs[0]["serviceAccount"] == "aws-node"
    assert assocs[0]["ownerArn"] == addon["addonArn"]
    assert assocs[0]["associationArn"] == addon["podIdentityAssociations"][0]
    with pytest.raises(ClientError) as e:
        eks.delete_pod_identity_association(clusterName=cluster, associationId=assocs[0]["associationId"])
    assert error_code(e) == "InvalidRequestException"
    # replace the role through the add-on, then remove the association with an empty list
    eks.update_addon(clusterName=cluster, addonName="vpc-cni", podIdentityAssociations=[
        {"serviceAccount": "aws-node", "roleArn": world.pod_role2}])
    got = eks.describe_pod_identity_association(clusterName=cluster,
                                                associationId=assocs[0]["associationId"])["association"]
    assert got["roleArn"] == world.pod_role2
    eks.update_addon(clusterName=cluster, addonName="vpc-cni", podIdentityAssociations=[])
    assert eks.list_pod_identity_associations(clusterName=cluster)["associations"] == []
    assert eks.describe_addon(clusterName=cluster, addonName="vpc-cni")["addon"]["podIdentityAssociations"] == []


def test_pod_identity_conflict_with_existing_association(eks, cluster, world):
    eks.create_pod_identity_association(clusterName=cluster, namespace="kube-system",
                                        serviceAccount="aws-node", roleArn=world.pod_role)
    with pytest.raises(ClientError) as e:
        eks.create_addon(clusterName=cluster, addonName="vpc-cni", podIdentityAssociations=[
            {"serviceAccount": "aws-node", "roleArn": world.pod_role}])
    assert error_code(e) == "ResourceInUseException"
    assert eks.list_addons(clusterName=cluster)["addons"] == []


def test_update_addon_records_an_update(eks, cluster, world):
    eks.create_addon(clusterName=cluster, addonName="vpc-cni", addonVersion="v1.19.6-eksbuild.7")
    update = eks.update_addon(clusterName=cluster, addonName="vpc-cni", addonVersion="v1.21.1-eksbuild.1",
                              resolveConflicts="PRESERVE", serviceAccountRoleArn=world.pod_role,
                              configurationValues='{"env": {"ENABLE_PREFIX_DELEGATION": "true"}}')["update"]
    assert update["type"] == "AddonUpdate" and update["status"] == "InProgress"
    params = {p["type"]: p["value"] for p in update["params"]}
    assert params["AddonVersion"] == "v1.21.1-eksbuild.1"
    assert params["ResolveConflicts"] == "PRESERVE"
    assert params["ServiceAccountRoleArn"] == world.pod_role
    got = eks.describe_update(name=cluster, updateId=update["id"], addonName="vpc-cni")["update"]
    assert got["status"] == "Successful"
    assert eks.list_updates(name=cluster, addonName="vpc-cni")["updateIds"] == [update["id"]]
    assert eks.list_updates(name=cluster)["updateIds"] == []
    with pytest.raises(ClientError) as e:  # an add-on update is not a cluster update
        eks.describe_update(name=cluster, updateId=update["id"])
    assert error_code(e) == "ResourceNotFoundException"
    addon = eks.describe_addon(clusterName=cluster, addonName="vpc-cni")["addon"]
    assert addon["addonVersion"] == "v1.21.1-eksbuild.1"
    assert addon["serviceAccountRoleArn"] == world.pod_role
    with pytest.raises(ClientError) as e:
        eks.update_addon(clusterName=cluster, addonName="vpc-cni", addonVersion="v1.20.4-eksbuild.2")
    assert error_code(e) == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        eks.update_addon(clusterName=cluster, addonName="vpc-cni", configurationValues='{"env": {"bad key": "x"}}')
    assert error_code(e) == "InvalidParameterException"


def test_update_and_delete_missing_addon(eks, cluster):
    with pytest.raises(ClientError) as e:
        eks.update_addon(clusterName=cluster, addonName="coredns", addonVersion="v1.12.4-eksbuild.1")
    assert error_code(e) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        eks.delete_addon(clusterName=cluster, addonName="coredns")
    assert error_code(e) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        eks.describe_addon(clusterName=cluster, addonName="coredns")
    assert error_code(e) == "ResourceNotFoundException"


def test_delete_addon_removes_owned_associations(eks, cluster, world):
    eks.create_addon(clusterName=cluster, addonName="vpc-cni", podIdentityAssociations=[
        {"serviceAccount": "aws-node", "roleArn": world.pod_role}])
    assert eks.delete_addon(clusterName=cluster, addonName="vpc-cni", preserve=True)["addon"]["status"] == "DELETING"
    with pytest.raises(ClientError) as e:
        eks.describe_addon(clusterName=cluster, addonName="vpc-cni")
    assert error_code(e) == "ResourceNotFoundException"
    assert eks.list_pod_identity_associations(clusterName=cluster)["associations"] == []


def test_addon_catalogue_follows_cluster_version(eks, make_cluster):
    c = make_cluster(version="1.33")
    addon = eks.create_addon(clusterName=c["name"], addonName="kube-proxy")["addon"]
    assert addon["addonVersion"].startswith("v1.33.")
    with pytest.raises(ClientError) as e:
        eks.create_addon(clusterName=c["name"], addonName="coredns", addonVersion="v1.11.4-eksbuild.14")
    assert error_code(e) == "InvalidParameterException"
