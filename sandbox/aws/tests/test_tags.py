"""TagResource / UntagResource / ListTagsForResource on every EKS ARN kind."""

import pytest
from botocore.exceptions import ClientError

from conftest import error_code


def test_tags_on_every_resource_kind(eks, cluster, world, make_nodegroup):
    arns = {
        "cluster": eks.describe_cluster(name=cluster)["cluster"]["arn"],
        "nodegroup": make_nodegroup(cluster, tags={"created": "yes"})["nodegroupArn"],
        "addon": eks.create_addon(clusterName=cluster, addonName="coredns")["addon"]["addonArn"],
        "access-entry": eks.create_access_entry(clusterName=cluster, principalArn=world.node_role,
                                                type="EC2_LINUX")["accessEntry"]["accessEntryArn"],
        "pod-identity": eks.create_pod_identity_association(
            clusterName=cluster, namespace="kube-system", serviceAccount="karpenter",
            roleArn=world.pod_role)["association"]["associationArn"],
    }
    for kind, arn in arns.items():
        eks.tag_resource(resourceArn=arn, tags={"team": "ci", "kind": kind})
        tags = eks.list_tags_for_resource(resourceArn=arn)["tags"]
        assert tags["team"] == "ci" and tags["kind"] == kind, kind
        eks.untag_resource(resourceArn=arn, tagKeys=["team", "not-there"])
        assert "team" not in eks.list_tags_for_resource(resourceArn=arn)["tags"], kind
    ng = eks.list_nodegroups(clusterName=cluster)["nodegroups"][0]
    assert eks.describe_nodegroup(clusterName=cluster, nodegroupName=ng)["nodegroup"]["tags"] == {
        "created": "yes", "kind": "nodegroup"}
    assert eks.describe_addon(clusterName=cluster, addonName="coredns")["addon"]["tags"] == {"kind": "addon"}
    assert eks.describe_cluster(name=cluster)["cluster"]["tags"] == {"kind": "cluster"}


def test_tag_errors(eks, cluster):
    arn = eks.describe_cluster(name=cluster)["cluster"]["arn"]
    with pytest.raises(ClientError) as e:
        eks.tag_resource(resourceArn=arn.replace(cluster, "no-such-cluster"), tags={"a": "b"})
    assert error_code(e) == "NotFoundException"
    with pytest.raises(ClientError) as e:
        eks.list_tags_for_resource(resourceArn=f"{arn.replace(':cluster/', ':addon/')}/coredns/0000")
    assert error_code(e) == "NotFoundException"
    with pytest.raises(ClientError) as e:
        eks.list_tags_for_resource(resourceArn="arn:aws:iam::123456789012:role/sandbox-node")
    assert error_code(e) == "BadRequestException"
    with pytest.raises(ClientError) as e:
        eks.tag_resource(resourceArn=arn, tags={"aws:reserved": "x"})
    assert error_code(e) == "BadRequestException"
