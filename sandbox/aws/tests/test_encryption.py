"""Secrets encryption: CreateCluster's encryptionConfig and AssociateEncryptionConfig."""

import json

import pytest
from botocore.exceptions import ClientError

from conftest import error_code

KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
OTHER_KEY = "arn:aws:kms:us-east-1:123456789012:key/0987dcba-09fe-87dc-65ba-ab0987654321"


def secrets(key):
    return [{"resources": ["secrets"], "provider": {"keyArn": key}}]


def test_create_with_encryption_config_reads_back(eks, make_cluster):
    name = make_cluster(encryptionConfig=secrets(KEY))["name"]
    assert eks.describe_cluster(name=name)["cluster"]["encryptionConfig"] == secrets(KEY)


def test_create_refuses_a_bad_encryption_config(eks, make_cluster):
    for config in ([{"resources": ["configmaps"], "provider": {"keyArn": KEY}}],
                   [{"resources": ["secrets"], "provider": {"keyArn": "not-an-arn"}}],
                   secrets(KEY) + secrets(OTHER_KEY)):
        with pytest.raises(ClientError) as e:
            make_cluster(encryptionConfig=config, wait=False)
        assert error_code(e) == "InvalidParameterException", config


def test_associate_adds_encryption_as_an_update(eks, cluster):
    assert not eks.describe_cluster(name=cluster)["cluster"].get("encryptionConfig")
    update = eks.associate_encryption_config(clusterName=cluster, encryptionConfig=secrets(KEY))["update"]
    assert update["type"] == "AssociateEncryptionConfig" and update["status"] == "InProgress"
    assert [p["type"] for p in update["params"]] == ["EncryptionConfig"]
    assert json.loads(update["params"][0]["value"]) == secrets(KEY)
    assert eks.describe_update(name=cluster, updateId=update["id"])["update"]["status"] == "Successful"
    assert update["id"] in eks.list_updates(name=cluster)["updateIds"]
    assert eks.describe_cluster(name=cluster)["cluster"]["encryptionConfig"] == secrets(KEY)
    # EKS cannot change (or remove) the key once set.
    with pytest.raises(ClientError) as e:
        eks.associate_encryption_config(clusterName=cluster, encryptionConfig=secrets(OTHER_KEY))
    assert error_code(e) == "InvalidRequestException"
    assert eks.describe_cluster(name=cluster)["cluster"]["encryptionConfig"] == secrets(KEY)


def test_associate_refusals(eks, server, make_cluster):
    with pytest.raises(ClientError) as e:
        eks.associate_encryption_config(clusterName="no-such-cluster", encryptionConfig=secrets(KEY))
    assert error_code(e) == "ResourceNotFoundException"
    name = make_cluster()["name"]
    with pytest.raises(ClientError) as e:
        eks.associate_encryption_config(clusterName=name, encryptionConfig=[
            {"resources": ["secrets"], "provider": {"keyArn": "arn:aws:s3:::bucket"}}])
    assert error_code(e) == "InvalidParameterException"
    # While another update is in progress: ResourceInUseException, as for every cluster update.
    server.configure(update_seconds=30)
    eks.update_cluster_config(name=name, upgradePolicy={"supportType": "STANDARD"})
    with pytest.raises(ClientError) as e:
        eks.associate_encryption_config(clusterName=name, encryptionConfig=secrets(KEY))
    assert error_code(e) == "ResourceInUseException"
    assert not eks.describe_cluster(name=name)["cluster"].get("encryptionConfig")
