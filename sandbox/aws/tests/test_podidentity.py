"""EKS Pod Identity associations."""

import pytest
from botocore.exceptions import ClientError

from conftest import error_code


def test_pod_identity_lifecycle(eks, cluster, world):
    created = eks.create_pod_identity_association(
        clusterName=cluster, namespace="kube-system", serviceAccount="karpenter",
        roleArn=world.pod_role, tags={"app": "karpenter"})["association"]
    assoc_id = created["associationId"]
    assert assoc_id.startswith("a-") and len(assoc_id) == 19
    assert created["associationArn"] == (
        f"arn:aws:eks:us-east-1:123456789012:podidentityassociation/{cluster}/{assoc_id}")
    assert created["disableSessionTags"] is False
    assert "ownerArn" not in created and "externalId" not in created
    got = eks.describe_pod_identity_association(clusterName=cluster, associationId=assoc_id)["association"]
    assert got == created
    updated = eks.update_pod_identity_association(
        clusterName=cluster, associationId=assoc_id, roleArn=world.pod_role2,
        targetRoleArn="arn:aws:iam::210987654321:role/cross-account", disableSessionTags=True)["association"]
    assert updated["roleArn"] == world.pod_role2
    assert updated["targetRoleArn"] == "arn:aws:iam::210987654321:role/cross-account"
    assert updated["externalId"] and updated["disableSessionTags"] is True
    deleted = eks.delete_pod_identity_association(clusterName=cluster, associationId=assoc_id)["association"]
    assert deleted["associationId"] == assoc_id
    with pytest.raises(ClientError) as e:
        eks.describe_pod_identity_association(clusterName=cluster, associationId=assoc_id)
    assert error_code(e) == "ResourceNotFoundException"


def test_pod_identity_list_filters_and_pages(eks, cluster, world):
    for ns, sa in (("a", "x"), ("a", "y"), ("b", "x"), ("b", "z")):
        eks.create_pod_identity_association(clusterName=cluster, namespace=ns, serviceAccount=sa,
                                            roleArn=world.pod_role)
    assert len(eks.list_pod_identity_associations(clusterName=cluster)["associations"]) == 4
    in_a = eks.list_pod_identity_associations(clusterName=cluster, namespace="a")["associations"]
    assert sorted(a["serviceAccount"] for a in in_a) == ["x", "y"]
    x = eks.list_pod_identity_associations(clusterName=cluster, serviceAccount="x")["associations"]
    assert sorted(a["namespace"] for a in x) == ["a", "b"]
    seen = []
    for page in eks.get_paginator("list_pod_identity_associations").paginate(
            clusterName=cluster, PaginationConfig={"PageSize": 3}):
        seen += page["associations"]
    assert len(seen) == 4 and all(a["clusterName"] == cluster for a in seen)


@pytest.mark.parametrize("kwargs,code", [
    (dict(namespace="kube-system", serviceAccount="dup", roleArn="POD"), "ResourceInUseException"),
    (dict(namespace="kube-system", serviceAccount="s", roleArn="arn:aws:iam::123456789012:role/missing"),
     "InvalidParameterException"),
    (dict(namespace="kube-system", serviceAccount="s", roleArn="arn:aws:iam::123456789012:user/sandbox-admin"),
     "InvalidParameterException"),
    (dict(namespace="Not_A_Namespace", serviceAccount="s", roleArn="POD"), "InvalidParameterException"),
])
def test_pod_identity_refusals(eks, cluster, world, kwargs, code):
    eks.create_pod_identity_association(clusterName=cluster, namespace="kube-system", serviceAccount="dup",
                                        roleArn=world.pod_role)
    kwargs = dict(kwargs)
    if kwargs["roleArn"] == "POD":
        kwargs["roleArn"] = world.pod_role
    with pytest.raises(ClientError) as e:
        eks.create_pod_identity_association(clusterName=cluster, **kwargs)
    assert error_code(e) == code


def test_pod_identity_on_missing_cluster_or_association(eks, cluster, world):
    with pytest.raises(ClientError) as e:
        eks.create_pod_identity_association(clusterName="no-such-cluster", namespace="n", serviceAccount="s",
                                            roleArn=world.pod_role)
    assert error_code(e) == "ResourceNotFoundException"
    for call in (eks.describe_pod_identity_association, eks.delete_pod_identity_association):
        with pytest.raises(ClientError) as e:
            call(clusterName=cluster, associationId="a-00000000000000000")
        assert error_code(e) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        eks.update_pod_identity_association(clusterName=cluster, associationId="a-00000000000000000",
                                            roleArn=world.pod_role)
    assert error_code(e) == "ResourceNotFoundException"
