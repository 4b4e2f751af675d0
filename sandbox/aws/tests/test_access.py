"""Access entries and access policies."""

import pytest
from botocore.exceptions import ClientError

from conftest import error_code

ADMIN = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
VIEW = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"


def test_list_access_policies(eks):
    policies = []
    for page in eks.get_paginator("list_access_policies").paginate(PaginationConfig={"PageSize": 5}):
        policies += page["accessPolicies"]
    by_name = {p["name"]: p["arn"] for p in policies}
    assert by_name["AmazonEKSClusterAdminPolicy"] == ADMIN
    assert by_name["AmazonEKSViewPolicy"] == VIEW
    assert len(policies) == len(by_name) >= 10


def test_creator_gets_a_bootstrap_admin_entry(eks, make_cluster):
    name = make_cluster(mode="API_AND_CONFIG_MAP")["name"]
    entries = eks.list_access_entries(clusterName=name)["accessEntries"]
    assert entries == ["arn:aws:iam::123456789012:user/moto"]
    policies = eks.list_associated_access_policies(clusterName=name, principalArn=entries[0])
    assert [p["policyArn"] for p in policies["associatedAccessPolicies"]] == [ADMIN]
    assert policies["associatedAccessPolicies"][0]["accessScope"]["type"] == "cluster"
    bare = make_cluster(accessConfig={"authenticationMode": "API",
                                      "bootstrapClusterCreatorAdminPermissions": False})["name"]
    assert eks.list_access_entries(clusterName=bare)["accessEntries"] == []


def test_access_entries_need_api_authentication_mode(eks, make_cluster, world):
    name = make_cluster(mode="CONFIG_MAP")["name"]
    with pytest.raises(ClientError) as e:
        eks.create_access_entry(clusterName=name, principalArn=world.node_role, type="EC2_LINUX")
    assert error_code(e) == "InvalidRequestException"
    eks.update_cluster_config(name=name, accessConfig={"authenticationMode": "API_AND_CONFIG_MAP"})
    eks.create_access_entry(clusterName=name, principalArn=world.node_role, type="EC2_LINUX")


def test_node_access_entry_for_karpenter_node_role(eks, cluster, world):
    entry = eks.create_access_entry(clusterName=cluster, principalArn=world.node_role,
                                    type="EC2_LINUX")["accessEntry"]
    assert entry["type"] == "EC2_LINUX"
    assert entry["username"] == "system:node:{{EC2PrivateDNSName}}"
    assert entry["kubernetesGroups"] == ["system:nodes"]
    assert entry["accessEntryArn"].startswith(
        f"arn:aws:eks:us-east-1:123456789012:access-entry/{cluster}/role/123456789012/sandbox-node/")
    got = eks.describe_access_entry(clusterName=cluster, principalArn=world.node_role)["accessEntry"]
    assert got == entry
    with pytest.raises(ClientError) as e:  # node entries take no access policies
        eks.associate_access_policy(clusterName=cluster, principalArn=world.node_role, policyArn=VIEW,
                                    accessScope={"type": "cluster"})
    assert error_code(e) == "InvalidRequestException"
    with pytest.raises(ClientError) as e:
        eks.create_access_entry(clusterName=cluster, principalArn=world.node_role, type="EC2_LINUX")
    assert error_code(e) == "ResourceInUseException"


def test_standard_entry_defaults_and_update(eks, cluster, world):
    entry = eks.create_access_entry(clusterName=cluster, principalArn=world.pod_role,
                                    tags={"k": "v"})["accessEntry"]
    assert entry["type"] == "STANDARD"
    assert entry["username"] == "arn:aws:sts::123456789012:assumed-role/sandbox-pod/{{SessionName}}"
    assert entry["kubernetesGroups"] == []
    updated = eks.update_access_entry(clusterName=cluster, principalArn=world.pod_role,
                                      kubernetesGroups=["ci-admins"], username="ci")["accessEntry"]
    assert updated["kubernetesGroups"] == ["ci-admins"] and updated["username"] == "ci"
    assert updated["createdAt"] == entry["createdAt"]
    user = eks.create_access_entry(clusterName=cluster, principalArn=world.user)["accessEntry"]
    assert user["username"] == world.user


@pytest.mark.parametrize("kwargs", [
    dict(principalArn="arn:aws:sts::123456789012:assumed-role/x/y"),
    dict(principalArn="arn:aws:iam::123456789012:role/does-not-exist"),
    dict(principalArn="ROLE", type="EC2_LINUX", kubernetesGroups=["x"]),
    dict(principalArn="USER", type="EC2_LINUX"),
    dict(principalArn="ROLE", type="BANANA"),
    dict(principalArn="ROLE", username="system:admin"),
])
def test_create_access_entry_refusals(eks, cluster, world, kwargs):
    kwargs = dict(kwargs)
    kwargs["principalArn"] = {"ROLE": world.pod_role, "USER": world.user}.get(kwargs["principalArn"],
                                                                             kwargs["principalArn"])
    with pytest.raises(ClientError) as e:
        eks.create_access_entry(clusterName=cluster, **kwargs)
    assert error_code(e) == "InvalidParameterException"


def test_access_policy_association_lifecycle(eks, cluster, world):
    eks.create_access_entry(clusterName=cluster, principalArn=world.pod_role)
    got = eks.associate_access_policy(clusterName=cluster, principalArn=world.pod_role, policyArn=VIEW,
                                      accessScope={"type": "namespace", "namespaces": ["ci"]})
    assert got["clusterName"] == cluster and got["principalArn"] == world.pod_role
    assert got["associatedAccessPolicy"]["accessScope"] == {"type": "namespace", "namespaces": ["ci"]}
    again = eks.associate_access_policy(clusterName=cluster, principalArn=world.pod_role, policyArn=VIEW,
                                        accessScope={"type": "cluster"})["associatedAccessPolicy"]
    assert again["accessScope"] == {"type": "cluster", "namespaces": []}
    assert again["associatedAt"] == got["associatedAccessPolicy"]["associatedAt"]
    listed = eks.list_associated_access_policies(clusterName=cluster, principalArn=world.pod_role)
    assert [p["policyArn"] for p in listed["associatedAccessPolicies"]] == [VIEW]
    assert eks.list_access_entries(clusterName=cluster, associatedPolicyArn=VIEW)["accessEntries"] == [
        world.pod_role]
    for scope in ({"type": "namespace"}, {"type": "cluster", "namespaces": ["x"]}):
        with pytest.raises(ClientError) as e:
            eks.associate_access_policy(clusterName=cluster, principalArn=world.pod_role, policyArn=VIEW,
                                        accessScope=scope)
        assert error_code(e) == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        eks.associate_access_policy(clusterName=cluster, principalArn=world.pod_role,
                                    policyArn="arn:aws:eks::aws:cluster-access-policy/Nope",
                                    accessScope={"type": "cluster"})
    assert error_code(e) == "InvalidParameterException"
    eks.disassociate_access_policy(clusterName=cluster, principalArn=world.pod_role, policyArn=VIEW)
    assert eks.list_associated_access_policies(clusterName=cluster, principalArn=world.pod_role)[
        "associatedAccessPolicies"] == []
    with pytest.raises(ClientError) as e:
        eks.disassociate_access_policy(clusterName=cluster, principalArn=world.pod_role, policyArn=VIEW)
    assert error_code(e) == "ResourceNotFoundException"


def test_delete_access_entry(eks, cluster, world):
    eks.create_access_entry(clusterName=cluster, principalArn=world.pod_role)
    eks.delete_access_entry(clusterName=cluster, principalArn=world.pod_role)
    for call in (lambda: eks.describe_access_entry(clusterName=cluster, principalArn=world.pod_role),
                 lambda: eks.delete_access_entry(clusterName=cluster, principalArn=world.pod_role),
                 lambda: eks.update_access_entry(clusterName=cluster, principalArn=world.pod_role,
                                                 username="x"),
                 lambda: eks.list_access_entries(clusterName="no-such-cluster")):
        with pytest.raises(ClientError) as e:
            call()
        assert error_code(e) == "ResourceNotFoundException"


def test_list_access_entries_pages(eks, cluster, world, iam):
    arns = []
    for i in range(5):
        arns.append(iam.create_role(RoleName=f"{cluster}-r{i}", AssumeRolePolicyDocument="{}")["Role"]["Arn"])
        eks.create_access_entry(clusterName=cluster, principalArn=arns[-1])
    seen = []
    for page in eks.get_paginator("list_access_entries").paginate(
            clusterName=cluster, PaginationConfig={"PageSize": 2}):
        assert len(page["accessEntries"]) <= 2
        seen += page["accessEntries"]
    assert sorted(seen) == sorted(arns + ["arn:aws:iam::123456789012:user/moto"])  # + the creator


def test_role_with_path_in_principal_arn(eks, cluster, iam):
    arn = iam.create_role(RoleName=f"{cluster}-pathed", Path="/team/ci/",
                          AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    assert "/team/ci/" in arn
    eks.create_access_entry(clusterName=cluster, principalArn=arn)
    assert eks.describe_access_entry(clusterName=cluster, principalArn=arn)["accessEntry"]["principalArn"] == arn
    eks.delete_access_entry(clusterName=cluster, principalArn=arn)
