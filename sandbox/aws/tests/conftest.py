"""Fixtures: one sandbox server (``sandbox/aws/serve --port 0``) for the session, boto3 clients
whose EKS responses are checked strictly against the service model, and a shared network and
set of IAM roles. Tests use unique names instead of resetting (a reset costs seconds of moto
re-initialisation); the reset test starts its own server."""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).parent))
import shapecheck  # noqa: E402

HERE = Path(__file__).resolve().parent
SERVE = HERE.parent / "serve"
REGION = "us-east-1"
for _k, _v in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
               ("AWS_DEFAULT_REGION", REGION)):
    os.environ[_k] = _v
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_ENDPOINT_URL", None)


class Server:
    """A running ``sandbox/aws/serve`` process."""

    def __init__(self, env=None):
        full_env = dict(os.environ)
        full_env.update(env or {})
        # stderr (the request log) goes to a file: a pipe nobody reads would fill up and block
        # the server.
        self.log = tempfile.NamedTemporaryFile(prefix="sandbox-aws-", suffix=".log", delete=False)
        self.proc = subprocess.Popen([str(SERVE), "--port", "0"], stdout=subprocess.PIPE,
                                     stderr=self.log, text=True, env=full_env)
        line = self.proc.stdout.readline()
        if "ready" not in line:
            self.proc.kill()
            raise RuntimeError(f"sandbox did not start: {line!r}; see {self.log.name}")
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()
        self.url = line.split()[4]
        assert self.url.startswith("http://127.0.0.1:"), line

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        log = Path(self.log.name)
        if log.stat().st_size:  # keep the log only when the server complained
            print(f"sandbox server log kept: {log}", file=sys.stderr)
        else:
            log.unlink()

    def request(self, method, path, doc=None):
        data = None if doc is None else json.dumps(doc).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        try:
            with urllib.request.urlopen(req) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")

    def configure(self, **values):
        status, doc = self.request("POST", "/sandbox-api/config", values)
        assert status == 200, doc
        return doc

    def client(self, service):
        client = boto3.client(service, endpoint_url=self.url, region_name=REGION,
                              config=Config(retries={"max_attempts": 1}))
        if service == "eks":
            shapecheck.install(client)
        return client


@pytest.fixture(scope="session")
def server():
    srv = Server()
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def default_config(server):
    server.request("DELETE", "/sandbox-api/config")
    yield


@pytest.fixture(scope="session")
def eks(server):
    return server.client("eks")


@pytest.fixture(scope="session")
def ec2(server):
    return server.client("ec2")


@pytest.fixture(scope="session")
def iam(server):
    return server.client("iam")


def uniq(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def trust(service):
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": service},
        "Action": ["sts:AssumeRole", "sts:TagSession"]}]})


class World:
    pass


@pytest.fixture(scope="session")
def world(ec2, iam):
    w = World()
    w.vpc = ec2.create_vpc(CidrBlock="10.10.0.0/16")["Vpc"]["VpcId"]
    w.subnets = [ec2.create_subnet(VpcId=w.vpc, CidrBlock=f"10.10.{i}.0/24",
                                   AvailabilityZone=f"{REGION}{az}")["Subnet"]["SubnetId"]
                 for i, az in enumerate("abc")]
    w.other_vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    w.other_subnets = [ec2.create_subnet(VpcId=w.other_vpc, CidrBlock=f"10.20.{i}.0/24",
                                         AvailabilityZone=f"{REGION}{az}")["Subnet"]["SubnetId"]
                       for i, az in enumerate("ab")]
    w.cluster_role = iam.create_role(RoleName="sandbox-cluster",
                                     AssumeRolePolicyDocument=trust("eks.amazonaws.com"))["Role"]["Arn"]
    iam.attach_role_policy(RoleName="sandbox-cluster",
                           PolicyArn="arn:aws:iam::aws:policy/AmazonEKSClusterPolicy")
    w.node_role = iam.create_role(RoleName="sandbox-node",
                                  AssumeRolePolicyDocument=trust("ec2.amazonaws.com"))["Role"]["Arn"]
    for policy in ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy",
                   "AmazonEC2ContainerRegistryReadOnly", "AmazonSSMManagedInstanceCore"):
        iam.attach_role_policy(RoleName="sandbox-node", PolicyArn=f"arn:aws:iam::aws:policy/{policy}")
    w.bare_node_role = iam.create_role(RoleName="sandbox-bare-node",
                                       AssumeRolePolicyDocument=trust("ec2.amazonaws.com"))["Role"]["Arn"]
    w.pod_role = iam.create_role(RoleName="sandbox-pod",
                                 AssumeRolePolicyDocument=trust("pods.eks.amazonaws.com"))["Role"]["Arn"]
    w.pod_role2 = iam.create_role(RoleName="sandbox-pod2",
                                  AssumeRolePolicyDocument=trust("pods.eks.amazonaws.com"))["Role"]["Arn"]
    w.user = iam.create_user(UserName="sandbox-admin")["User"]["Arn"]
    return w


@pytest.fixture
def make_cluster(eks, world):
    def make(name=None, mode="API", wait=True, **extra):
        name = name or uniq("c")
        kwargs = dict(name=name, roleArn=world.cluster_role,
                      resourcesVpcConfig={"subnetIds": world.subnets[:2]})
        if mode:
            kwargs["accessConfig"] = {"authenticationMode": mode}
        kwargs.update(extra)
        cluster = eks.create_cluster(**kwargs)["cluster"]
        if wait:
            eks.get_waiter("cluster_active").wait(name=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        return cluster
    return make


@pytest.fixture
def cluster(make_cluster):
    return make_cluster()["name"]


@pytest.fixture
def make_nodegroup(eks, world):
    def make(cluster, name=None, wait=True, **extra):
        name = name or uniq("ng")
        kwargs = dict(clusterName=cluster, nodegroupName=name, nodeRole=world.node_role,
                      subnets=world.subnets[:2],
                      scalingConfig={"minSize": 2, "maxSize": 3, "desiredSize": 2})
        kwargs.update(extra)
        ng = eks.create_nodegroup(**kwargs)["nodegroup"]
        if wait:
            eks.get_waiter("nodegroup_active").wait(clusterName=cluster, nodegroupName=name,
                                                    WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        return ng
    return make


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def wait_until(predicate, timeout=15.0, step=0.2):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return False


def signed_get(server, path):
    """GET `path` signed with SigV4 for eks (as an EKS client would sign it); the status."""
    import urllib.request

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    req = AWSRequest(method="GET", url=server.url + path)
    SigV4Auth(Credentials("testing", "testing"), "eks", REGION).add_auth(req)
    with urllib.request.urlopen(urllib.request.Request(server.url + path, headers=dict(req.headers))) as resp:
        return resp.status
