"""CreateCluster / DescribeCluster / DeleteCluster and node groups through the front."""

import base64

import pytest
from botocore.exceptions import ClientError
from cryptography import x509

from conftest import error_code, uniq


def test_create_cluster_keeps_access_config_and_upgrade_policy(eks, make_cluster):
    created = make_cluster(mode="API", wait=False, upgradePolicy={"supportType": "STANDARD"},
                           accessConfig={"authenticationMode": "API",
                                         "bootstrapClusterCreatorAdminPermissions": False})
    assert created["status"] == "CREATING"
    assert created["accessConfig"] == {"authenticationMode": "API",
                                       "bootstrapClusterCreatorAdminPermissions": False}
    described = eks.describe_cluster(name=created["name"])["cluster"]
    assert described["status"] == "ACTIVE"
    assert described["accessConfig"]["authenticationMode"] == "API"
    assert described["upgradePolicy"] == {"supportType": "STANDARD"}


def test_create_cluster_defaults_follow_eks(eks, make_cluster, world):
    c = make_cluster(mode=None)
    assert c["version"] == "1.35"
    assert c["accessConfig"] == {"authenticationMode": "CONFIG_MAP",
                                 "bootstrapClusterCreatorAdminPermissions": True}
    assert c["upgradePolicy"] == {"supportType": "EXTENDED"}
    vpc = c["resourcesVpcConfig"]
    assert vpc["vpcId"] == world.vpc
    assert vpc["subnetIds"] == world.subnets[:2]
    assert vpc["endpointPublicAccess"] is True and vpc["endpointPrivateAccess"] is False
    assert vpc["publicAccessCidrs"] == ["0.0.0.0/0"]
    assert vpc["clusterSecurityGroupId"].startswith("sg-")
    assert c["kubernetesNetworkConfig"]["ipFamily"] == "ipv4"


def test_cluster_security_group_exists_in_ec2(ec2, make_cluster):
    c = make_cluster()
    sg = c["resourcesVpcConfig"]["clusterSecurityGroupId"]
    groups = ec2.describe_security_groups(GroupIds=[sg])["SecurityGroups"]
    assert groups[0]["VpcId"] == c["resourcesVpcConfig"]["vpcId"]
    tags = {t["Key"]: t["Value"] for t in groups[0]["Tags"]}
    assert tags[f"kubernetes.io/cluster/{c['name']}"] == "owned"


def test_certificate_authority_is_a_real_ca_and_issuers_differ(make_cluster):
    a, b = make_cluster(), make_cluster()
    cert = x509.load_pem_x509_certificate(base64.b64decode(a["certificateAuthority"]["data"]))
    assert cert.subject.rfc4514_string() == "CN=kubernetes"
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert a["certificateAuthority"]["data"] != b["certificateAuthority"]["data"]
    assert a["identity"]["oidc"]["issuer"] != b["identity"]["oidc"]["issuer"]
    assert a["endpoint"].startswith("https://")


def test_create_cluster_rejects_unknown_version_and_duplicates(eks, make_cluster, world):
    with pytest.raises(ClientError) as e:
        make_cluster(version="1.19", wait=False)
    assert error_code(e) == "InvalidParameterException"
    c = make_cluster()
    with pytest.raises(ClientError) as e:
        make_cluster(name=c["name"], wait=False)
    assert error_code(e) == "ResourceInUseException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409


@pytest.mark.parametrize("problem", ["missing-role", "wrong-trust", "missing-subnet", "one-az",
                                     "two-vpcs", "missing-sg"])
def test_create_cluster_checks_dependencies(eks, world, problem):
    kwargs = dict(name=uniq("dep"), roleArn=world.cluster_role,
                  resourcesVpcConfig={"subnetIds": world.subnets[:2]})
    if problem == "missing-role":
        kwargs["roleArn"] = "arn:aws:iam::123456789012:role/nope"
    elif problem == "wrong-trust":
        kwargs["roleArn"] = world.node_role
    elif problem == "missing-subnet":
        kwargs["resourcesVpcConfig"] = {"subnetIds": [world.subnets[0], "subnet-0123456789abcdef0"]}
    elif problem == "one-az":
        kwargs["resourcesVpcConfig"] = {"subnetIds": [world.subnets[0]]}
    elif problem == "two-vpcs":
        kwargs["resourcesVpcConfig"] = {"subnetIds": [world.subnets[0], world.other_subnets[1]]}
    elif problem == "missing-sg":
        kwargs["resourcesVpcConfig"] = {"subnetIds": world.subnets[:2], "securityGroupIds": ["sg-0123456789abcdef0"]}
    with pytest.raises(ClientError) as e:
        eks.create_cluster(**kwargs)
    assert error_code(e) == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        eks.describe_cluster(name=kwargs["name"])
    assert error_code(e) == "ResourceNotFoundException"


def test_dependency_checks_can_be_switched_off(eks, server, world):
    server.configure(check_dependencies=False)
    name = uniq("loose")
    c = eks.create_cluster(name=name, roleArn="arn:aws:iam::123456789012:role/nope",
                           resourcesVpcConfig={"subnetIds": ["subnet-1", "subnet-2"]})["cluster"]
    assert c["name"] == name
    assert "vpcId" not in c["resourcesVpcConfig"]


def test_describe_missing_cluster_is_resource_not_found(eks):
    with pytest.raises(ClientError) as e:
        eks.describe_cluster(name="no-such-cluster")
    assert error_code(e) == "ResourceNotFoundException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_list_clusters_includes_new_cluster(eks, cluster):
    names = []
    for page in eks.get_paginator("list_clusters").paginate(PaginationConfig={"PageSize": 2}):
        names += page["clusters"]
    assert cluster in names


def test_nodegroup_create_defaults_and_checks(eks, cluster, make_nodegroup):
    ng = make_nodegroup(cluster, wait=False)
    assert ng["status"] == "CREATING"
    assert ng["version"] == "1.35"
    assert ng["amiType"] == "AL2023_x86_64_STANDARD"
    assert ng["releaseVersion"].startswith("1.35.")
    assert "remoteAccess" not in ng
    assert ng["scalingConfig"] == {"minSize": 2, "maxSize": 3, "desiredSize": 2}
    again = eks.describe_nodegroup(clusterName=cluster, nodegroupName=ng["nodegroupName"])["nodegroup"]
    assert again["status"] == "ACTIVE"
    with pytest.raises(ClientError) as e:
        make_nodegroup(cluster, name=ng["nodegroupName"], wait=False)
    assert error_code(e) == "ResourceInUseException"


def test_nodegroup_with_taints_and_labels(eks, cluster, make_nodegroup):
    ng = make_nodegroup(cluster, taints=[{"key": "CriticalAddonsOnly", "value": "true", "effect": "NO_SCHEDULE"}],
                        labels={"karpenter.sh/controller": "true"}, instanceTypes=["m7g.large"],
                        amiType="AL2023_ARM_64_STANDARD")
    got = eks.describe_nodegroup(clusterName=cluster, nodegroupName=ng["nodegroupName"])["nodegroup"]
    assert got["taints"] == [{"key": "CriticalAddonsOnly", "value": "true", "effect": "NO_SCHEDULE"}]
    assert got["labels"] == {"karpenter.sh/controller": "true"}
    assert got["amiType"] == "AL2023_ARM_64_STANDARD"


@pytest.mark.parametrize("problem,code", [
    ("kubernetes-taint-spelling", "InvalidParameterException"),
    ("desired-above-max", "InvalidParameterException"),
    ("al2-on-1.35", "InvalidParameterException"),
    ("newer-than-cluster", "InvalidParameterException"),
    ("role-without-policies", "InvalidParameterException"),
    ("subnet-in-other-vpc", "InvalidParameterException"),
    ("missing-cluster", "ResourceNotFoundException"),
])
def test_nodegroup_create_refusals(eks, cluster, world, make_nodegroup, problem, code):
    kwargs = {}
    target = cluster
    if problem == "kubernetes-taint-spelling":
        kwargs["taints"] = [{"key": "CriticalAddonsOnly", "value": "true", "effect": "NoSchedule"}]
    elif problem == "desired-above-max":
        kwargs["scalingConfig"] = {"minSize": 1, "maxSize": 2, "desiredSize": 3}
    elif problem == "al2-on-1.35":
        kwargs["amiType"] = "AL2_x86_64"
    elif problem == "newer-than-cluster":
        kwargs["version"] = "1.36"
    elif problem == "role-without-policies":
        kwargs["nodeRole"] = world.bare_node_role
    elif problem == "subnet-in-other-vpc":
        kwargs["subnets"] = world.other_subnets
    elif problem == "missing-cluster":
        target = "no-such-cluster"
    with pytest.raises(ClientError) as e:
        make_nodegroup(target, wait=False, **kwargs)
    assert error_code(e) == code


def test_nodegroup_needs_active_cluster(eks, server, make_cluster, make_nodegroup):
    server.configure(cluster_create_seconds=30)
    c = make_cluster(wait=False)
    with pytest.raises(ClientError) as e:
        make_nodegroup(c["name"], wait=False)
    assert error_code(e) == "InvalidRequestException"


def test_delete_cluster_refused_while_nodegroups_exist(eks, cluster, make_nodegroup):
    ng = make_nodegroup(cluster)
    with pytest.raises(ClientError) as e:
        eks.delete_cluster(name=cluster)
    assert error_code(e) == "ResourceInUseException"
    deleted = eks.delete_nodegroup(clusterName=cluster, nodegroupName=ng["nodegroupName"])["nodegroup"]
    assert deleted["status"] == "DELETING"
    eks.get_waiter("nodegroup_deleted").wait(clusterName=cluster, nodegroupName=ng["nodegroupName"],
                                             WaiterConfig={"Delay": 1, "MaxAttempts": 10})
    assert eks.delete_cluster(name=cluster)["cluster"]["status"] == "DELETING"
    eks.get_waiter("cluster_deleted").wait(name=cluster, WaiterConfig={"Delay": 1, "MaxAttempts": 10})


def test_delete_cluster_removes_its_sub_resources_and_security_group(eks, ec2, cluster, world):
    sg = eks.describe_cluster(name=cluster)["cluster"]["resourcesVpcConfig"]["clusterSecurityGroupId"]
    eks.create_addon(clusterName=cluster, addonName="kube-proxy")
    eks.create_pod_identity_association(clusterName=cluster, namespace="ns", serviceAccount="sa",
                                        roleArn=world.pod_role)
    eks.create_access_entry(clusterName=cluster, principalArn=world.node_role, type="EC2_LINUX")
    eks.delete_cluster(name=cluster)
    eks.get_waiter("cluster_deleted").wait(name=cluster, WaiterConfig={"Delay": 1, "MaxAttempts": 10})
    assert sg not in [g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]]
    # same name again: a fresh cluster with nothing left over
    eks.create_cluster(name=cluster, roleArn=world.cluster_role,
                       resourcesVpcConfig={"subnetIds": world.subnets[:2]},
                       accessConfig={"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": False})
    assert eks.list_addons(clusterName=cluster)["addons"] == []
    assert eks.list_pod_identity_associations(clusterName=cluster)["associations"] == []
    assert eks.list_access_entries(clusterName=cluster)["accessEntries"] == []


def test_deletion_protection_blocks_delete(eks, make_cluster):
    c = make_cluster(deletionProtection=True)
    assert c["deletionProtection"] is True
    with pytest.raises(ClientError) as e:
        eks.delete_cluster(name=c["name"])
    assert error_code(e) == "InvalidRequestException"
    eks.update_cluster_config(name=c["name"], deletionProtection=False)
    assert eks.delete_cluster(name=c["name"])["cluster"]["status"] == "DELETING"


def test_fargate_profiles_still_forwarded_to_moto(eks, cluster, world):
    fp = eks.create_fargate_profile(fargateProfileName="fp", clusterName=cluster,
                                    podExecutionRoleArn=world.node_role, subnets=world.subnets[:2],
                                    selectors=[{"namespace": "default"}])["fargateProfile"]
    assert fp["status"] == "ACTIVE"
    with pytest.raises(ClientError) as e:
        eks.delete_cluster(name=cluster)
    assert error_code(e) == "ResourceInUseException"
    eks.delete_fargate_profile(clusterName=cluster, fargateProfileName="fp")


def test_list_in_missing_cluster_is_resource_not_found(eks):
    for call in (eks.list_nodegroups, eks.list_fargate_profiles, eks.list_addons, eks.list_updates):
        kwargs = {"name": "no-such-cluster"} if call == eks.list_updates else {"clusterName": "no-such-cluster"}
        with pytest.raises(ClientError) as e:
            call(**kwargs)
        assert error_code(e) == "ResourceNotFoundException"


def test_describe_cluster_versions(eks):
    versions = eks.describe_cluster_versions()["clusterVersions"]
    names = [v["clusterVersion"] for v in versions]
    assert "1.35" in names and names == sorted(names, key=lambda v: int(v.split(".")[1]), reverse=True)
    assert [v["clusterVersion"] for v in versions if v["defaultVersion"]] == ["1.35"]
    assert all(v["versionStatus"] != "UNSUPPORTED" for v in versions)
    only = eks.describe_cluster_versions(defaultOnly=True)["clusterVersions"]
    assert [v["clusterVersion"] for v in only] == ["1.35"]
    assert only[0]["kubernetesPatchVersion"].startswith("1.35.")
    picked = eks.describe_cluster_versions(clusterVersions=["1.34", "1.33"], includeAll=True)["clusterVersions"]
    assert [v["clusterVersion"] for v in picked] == ["1.34", "1.33"]
