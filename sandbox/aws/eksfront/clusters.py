"""Clusters and node groups: the parts moto stores, completed and held.

Owns: CreateCluster, DeleteCluster, CreateNodegroup and DeleteNodegroup (moto does the storing;
the front checks first, completes the object afterwards and starts its lifecycle clock), and the
helpers other modules use to find a cluster.

Rules kept:
- CreateCluster: the Kubernetes version must be one the catalogue offers (default
  ``catalogue.DEFAULT_KUBERNETES_VERSION``, not moto's 1.19); ``accessConfig`` (default
  authenticationMode CONFIG_MAP, bootstrapClusterCreatorAdminPermissions true — the EKS API
  defaults) and ``upgradePolicy`` (default EXTENDED) are kept and returned, as are
  zonalShiftConfig, deletionProtection, computeConfig, storageConfig and the control-plane
  component configs; ``resourcesVpcConfig`` is completed as EKS does (vpcId,
  clusterSecurityGroupId, endpointPublicAccess true, endpointPrivateAccess false,
  publicAccessCidrs 0.0.0.0/0); each cluster gets its own OIDC issuer and a real CA
  certificate; with access entries enabled and bootstrap on, the creator gets an access entry
  with AmazonEKSClusterAdminPolicy; ``encryptionConfig`` (one entry, resources ["secrets"], a
  KMS key ARN) is checked and kept as sent; the answer says CREATING;
- with ``check_dependencies`` on (default), what AWS checks and moto skips is checked: the
  cluster role exists and trusts eks.amazonaws.com, subnets exist, share one VPC and span two
  AZs, security groups exist; the node role exists, trusts ec2.amazonaws.com and has
  AmazonEKSWorkerNodePolicy plus AmazonEC2ContainerRegistryReadOnly (or ...PullOnly) attached;
  node group subnets exist in the cluster's VPC;
- CreateNodegroup needs an ACTIVE cluster (InvalidRequestException otherwise), a unique name
  (ResourceInUseException), minSize <= desiredSize <= maxSize; version defaults to the
  cluster's and may not be newer or more than three minors older; amiType defaults to
  AL2023_x86_64_STANDARD and AL2 types are refused from Kubernetes 1.33; releaseVersion
  defaults to the latest for the version; taint effects are EKS's spelling (NO_SCHEDULE,
  NO_EXECUTE, PREFER_NO_SCHEDULE); the answer says CREATING;
- DeleteCluster is refused (ResourceInUseException) while node groups or Fargate profiles
  exist, while an update is in progress, or while it is already being deleted; with
  deletionProtection it is an InvalidRequestException; otherwise the cluster stays DELETING for
  the delete hold, then disappears with everything the front kept for it;
- DeleteNodegroup likewise holds the node group as DELETING; a node group that is DELETING
  still blocks DeleteCluster;
- ListNodegroups / ListFargateProfiles answer ResourceNotFoundException for a missing cluster
  (moto fails with a 500) and are otherwise moto's;
- DescribeClusterVersions answers from the catalogue (support status from today's date; versions
  past extended support only with includeAll or a status filter).
"""

import copy
import random
import re

from botocore import xform_name

from . import access, catalogue, certs, motobridge, overlay
from .errors import cluster_not_found, in_use, invalid_parameter, invalid_request, not_found
from .replies import Reply
from .wire import page, with_token

CLUSTER_NAME = re.compile(r"^[0-9A-Za-z][A-Za-z0-9\-_]{0,99}$")
AUTH_MODES = ("API", "API_AND_CONFIG_MAP", "CONFIG_MAP")
SUPPORT_TYPES = ("STANDARD", "EXTENDED")
# Cluster members moto drops that EKS returns as sent.
KEPT_AS_SENT = ("zonalShiftConfig", "deletionProtection", "computeConfig", "storageConfig",
                "controlPlaneScalingConfig", "kubeApiServerConfig", "kubeSchedulerConfig",
                "kubeControllerManagerConfig", "outpostConfig")
KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)/.+$")
TAINT_EFFECTS = ("NO_SCHEDULE", "NO_EXECUTE", "PREFER_NO_SCHEDULE")
NODE_POLICY = "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy"
ECR_POLICIES = ("arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
                "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly")


# ---- helpers used across modules -------------------------------------------------------------

def find(ctx, name):
    """(moto cluster, front record) or ResourceNotFoundException."""
    moto_cluster = motobridge.cluster(ctx.account, ctx.region, name or "")
    if moto_cluster is None:
        raise cluster_not_found(name)
    return moto_cluster, ctx.store.record(ctx.account, ctx.region, name)


def usable(ctx, name):
    """Like ``find`` but the cluster must accept new sub-resources (ACTIVE or UPDATING)."""
    moto_cluster, rec = find(ctx, name)
    status = rec.life.status(rec.busy(None))
    if status not in ("ACTIVE", "UPDATING"):
        raise invalid_request(f"Cluster '{name}' is not in ACTIVE status", clusterName=name)
    return moto_cluster, rec


def access_config(moto_cluster):
    cfg = getattr(moto_cluster, "access_config", None)
    if cfg is None:
        cfg = {"authenticationMode": "CONFIG_MAP", "bootstrapClusterCreatorAdminPermissions": True}
        moto_cluster.access_config = cfg
    return cfg


def described(ctx, *segments, status=None):
    """moto's Describe answer for a cluster/node group, optionally with status replaced."""
    got = ctx.moto_get(*segments)
    if not got.ok or status is None:
        return got
    doc = got.json()
    for value in doc.values():
        if isinstance(value, dict):
            value["status"] = status
    return Reply(doc)


def check_encryption_config(config, **ids):
    """``encryptionConfig`` as EKS takes it: one entry, resources ["secrets"], a KMS key ARN."""
    if not isinstance(config, list) or len(config) != 1 or not isinstance(config[0], dict):
        raise invalid_parameter("encryptionConfig must hold exactly one configuration", **ids)
    entry = config[0]
    if list(entry.get("resources") or []) != ["secrets"]:
        raise invalid_parameter("Only 'secrets' resources can be encrypted", **ids)
    key = (entry.get("provider") or {}).get("keyArn") or ""
    if not KMS_KEY_ARN.match(key):
        raise invalid_parameter(f"keyArn {key!r} is not a KMS key ARN", **ids)


def _role_problem(ctx, arn, service):
    role = motobridge.role_by_arn(ctx.account, arn or "")
    if role is None or not motobridge.role_trusts(role, service):
        return (f"Role with arn: {arn}, could not be assumed because it does not exist or the "
                f"trusted entity is not correct")
    return None


# ---- clusters --------------------------------------------------------------------------------

def create_cluster(ctx):
    body = dict(ctx.body)
    name = body.get("name") or ""
    if not CLUSTER_NAME.match(name):
        raise invalid_parameter(f"Invalid cluster name: '{name}'", clusterName=name or None)
    if motobridge.cluster(ctx.account, ctx.region, name) is not None:
        raise in_use(f"Cluster already exists with name: {name}", clusterName=name)
    version = body.get("version") or catalogue.DEFAULT_KUBERNETES_VERSION
    if version not in catalogue.KUBERNETES_VERSIONS:
        raise invalid_parameter(f"unsupported Kubernetes version {version}", clusterName=name)
    body["version"] = version
    if not body.get("roleArn"):
        raise invalid_parameter("roleArn is required", clusterName=name)
    vpc_req = body.get("resourcesVpcConfig")
    if not isinstance(vpc_req, dict):
        raise invalid_parameter("resourcesVpcConfig is required", clusterName=name)
    acfg = body.get("accessConfig") or {}
    mode = acfg.get("authenticationMode", "CONFIG_MAP")
    if mode not in AUTH_MODES:
        raise invalid_parameter(f"Unsupported authentication mode {mode}", clusterName=name)
    bootstrap = acfg.get("bootstrapClusterCreatorAdminPermissions", True)
    support = (body.get("upgradePolicy") or {}).get("supportType", "EXTENDED")
    if support not in SUPPORT_TYPES:
        raise invalid_parameter(f"Unsupported upgrade policy support type {support}", clusterName=name)

    if body.get("encryptionConfig") is not None:
        check_encryption_config(body["encryptionConfig"], clusterName=name)

    subnet_ids = list(vpc_req.get("subnetIds") or [])
    found = motobridge.subnets(ctx.account, ctx.region, subnet_ids)
    if ctx.config.check_dependencies:
        problem = _role_problem(ctx, body["roleArn"], "eks.amazonaws.com")
        if problem:
            raise invalid_parameter(problem, clusterName=name)
        missing = [s for s in subnet_ids if s not in found]
        if missing:
            raise invalid_parameter(f"The subnet ID(s) {', '.join(missing)} do not exist", clusterName=name)
        if len({vpc for vpc, _ in found.values()}) > 1:
            raise invalid_parameter("Subnets must all be in the same VPC", clusterName=name)
        if len({az for _, az in found.values()}) < 2:
            raise invalid_parameter("Subnets specified must be in at least two different AZs",
                                    clusterName=name)
        sg_missing = motobridge.security_groups_missing(ctx.account, ctx.region,
                                                        vpc_req.get("securityGroupIds") or [])
        if sg_missing:
            raise invalid_parameter(f"Security group(s) {sg_missing} do not exist", clusterName=name)

    got = ctx.forward(body)
    if not got.ok:
        return got
    moto_cluster = motobridge.cluster(ctx.account, ctx.region, name)
    rec = ctx.store.new_record(ctx.account, ctx.region, name,
                               ctx.config.hold("cluster", "create"))

    moto_cluster.access_config = {"authenticationMode": mode,
                                  "bootstrapClusterCreatorAdminPermissions": bool(bootstrap)}
    moto_cluster.upgrade_policy = {"supportType": support}
    for member in KEPT_AS_SENT:
        if member in body:
            setattr(moto_cluster, xform_name(member), copy.deepcopy(body[member]))
    moto_cluster.logging = copy.deepcopy(moto_cluster.logging)
    vpc_id = next(iter({vpc for vpc, _ in found.values()}), None)
    vpc = {
        "subnetIds": subnet_ids,
        "securityGroupIds": list(vpc_req.get("securityGroupIds") or []),
        "endpointPublicAccess": vpc_req.get("endpointPublicAccess", True),
        "endpointPrivateAccess": vpc_req.get("endpointPrivateAccess", False),
        "publicAccessCidrs": list(vpc_req.get("publicAccessCidrs") or ["0.0.0.0/0"]),
    }
    if vpc_id:
        vpc["vpcId"] = vpc_id
        sg_name = f"eks-cluster-sg-{name}-{random.randint(10**9, 10**10 - 1)}"
        try:
            rec.security_group_id = motobridge.create_security_group(
                ctx.account, ctx.region, vpc_id, sg_name,
                "EKS created security group applied to ENI that is attached to EKS Control Plane "
                "master nodes, as well as any managed workloads.",
                {"Name": sg_name, f"kubernetes.io/cluster/{name}": "owned",
                 "aws:eks:cluster-name": name})
            motobridge.allow_all_from_itself(ctx.account, ctx.region, rec.security_group_id)
            vpc["clusterSecurityGroupId"] = rec.security_group_id
        except Exception:
            rec.security_group_id = None
    if "controlPlaneEgressMode" in vpc_req:
        vpc["controlPlaneEgressMode"] = vpc_req["controlPlaneEgressMode"]
    moto_cluster.resources_vpc_config = vpc
    knc = {"serviceIpv4Cidr": "172.20.0.0/16", "ipFamily": "ipv4",
           "elasticLoadBalancing": {"enabled": False}}
    knc.update(copy.deepcopy(body.get("kubernetesNetworkConfig") or {}))
    moto_cluster.kubernetes_network_config = knc
    issuer_id = "".join(random.choice("0123456789ABCDEF") for _ in range(32))
    moto_cluster.identity = {"oidc": {"issuer": f"https://oidc.eks.{ctx.region}.amazonaws.com/id/{issuer_id}"}}
    moto_cluster.certificate_authority = {"data": certs.cluster_ca_data()}
    moto_cluster.platformVersion = catalogue.platform_version(version)
    moto_cluster.health = {"issues": []}
    if bootstrap and mode != "CONFIG_MAP":
        access.bootstrap_creator(ctx, rec, name)
    overlay.apply(rec, moto_cluster)
    return described(ctx, "clusters", name, status="CREATING")


def delete_cluster(ctx):
    name = ctx.params.get("name")
    moto_cluster, rec = find(ctx, name)
    if rec.life.deleting:
        raise in_use(f"Cluster {name} is already being deleted", clusterName=name)
    if getattr(moto_cluster, "deletion_protection", False):
        raise invalid_request(f"Cannot delete cluster {name} because deletion protection is enabled",
                              clusterName=name)
    if moto_cluster.nodegroups:
        raise in_use("Cluster has nodegroups attached", clusterName=name,
                     nodegroupName=",".join(sorted(moto_cluster.nodegroups)))
    if moto_cluster.fargate_profiles:
        raise in_use("Cluster has fargate profiles attached", clusterName=name)
    busy = [u for u in rec.updates_for(None) if u.status == "InProgress"]
    if busy:
        raise in_use(f"Cannot delete because cluster {name} currently has update {busy[0].id} in progress",
                     clusterName=name)
    rec.life.start_delete(ctx.config.hold("cluster", "delete"))
    overlay.apply(rec, moto_cluster)
    return described(ctx, "clusters", name, status="DELETING")


# ---- node groups -----------------------------------------------------------------------------

def create_nodegroup(ctx):
    cluster_name = ctx.params.get("clusterName")
    body = dict(ctx.body)
    ng_name = body.get("nodegroupName") or ""
    moto_cluster, rec = find(ctx, cluster_name)
    if ng_name in moto_cluster.nodegroups:
        raise in_use(f"NodeGroup already exists with name {ng_name} and cluster name {cluster_name}",
                     clusterName=cluster_name, nodegroupName=ng_name)
    if rec.life.status(rec.busy(None)) != "ACTIVE":
        raise invalid_request(f"Cluster '{cluster_name}' is not in ACTIVE status",
                              clusterName=cluster_name, nodegroupName=ng_name)
    ids = dict(clusterName=cluster_name, nodegroupName=ng_name)
    if not ng_name:
        raise invalid_parameter("nodegroupName is required", **ids)
    for member in ("nodeRole", "subnets"):
        if not body.get(member):
            raise invalid_parameter(f"{member} is required", **ids)

    scaling = dict(body.get("scalingConfig") or {"minSize": 1, "maxSize": 2, "desiredSize": 2})
    lo, hi = scaling.get("minSize", 1), scaling.get("maxSize", 2)
    desired = scaling.get("desiredSize", lo)
    scaling.update(minSize=lo, maxSize=hi, desiredSize=desired)
    check_scaling(scaling, ids)
    body["scalingConfig"] = scaling
    check_taints(body.get("taints"), ids)

    cluster_minor = catalogue.minor(moto_cluster.version)
    version = body.get("version") or moto_cluster.version
    v_minor = catalogue.minor(version)
    if v_minor is None or version not in catalogue.KUBERNETES_VERSIONS or (
            cluster_minor is not None and not cluster_minor - 3 <= v_minor <= cluster_minor):
        raise invalid_parameter(
            f"Requested Nodegroup Kubernetes version {version} is not supported with cluster "
            f"version {moto_cluster.version}", **ids)
    body["version"] = version
    custom_ami = bool(body.get("launchTemplate")) and body.get("amiType") == "CUSTOM"
    ami = body.get("amiType") or "AL2023_x86_64_STANDARD"
    if ami.startswith("AL2_") and v_minor >= 33:
        raise invalid_parameter(f"AMI type {ami} is not supported for Kubernetes version {version}", **ids)
    body["amiType"] = ami
    if not custom_ami and not body.get("releaseVersion"):
        body["releaseVersion"] = catalogue.release_version(version)

    if ctx.config.check_dependencies:
        role = motobridge.role_by_arn(ctx.account, body["nodeRole"])
        problem = _role_problem(ctx, body["nodeRole"], "ec2.amazonaws.com")
        if problem:
            raise invalid_parameter(problem, **ids)
        attached = set(getattr(role, "managed_policies", {}) or {})
        if NODE_POLICY not in attached or not attached.intersection(ECR_POLICIES):
            raise invalid_parameter(
                "The provided role doesn't have the Amazon EKS Managed Policies associated with it. "
                f"Please ensure the following policies [{NODE_POLICY}, {ECR_POLICIES[0]}] are attached",
                **ids)
        found = motobridge.subnets(ctx.account, ctx.region, body["subnets"])
        missing = [s for s in body["subnets"] if s not in found]
        if missing:
            raise invalid_parameter(f"The subnet ID(s) {', '.join(missing)} do not exist", **ids)
        cluster_vpc = (moto_cluster.resources_vpc_config or {}).get("vpcId")
        outside = [s for s, (vpc, _) in found.items() if cluster_vpc and vpc != cluster_vpc]
        if outside:
            raise invalid_parameter(f"Subnets {outside} are not in the VPC of cluster {cluster_name}", **ids)

    got = ctx.forward(body)
    if not got.ok:
        return got
    ng = moto_cluster.nodegroups[ng_name]
    # moto shares mutable defaults between node groups and adds remote access nobody asked for.
    ng.scaling_config = copy.deepcopy(scaling)
    ng.labels = copy.deepcopy(ng.labels or {})
    ng.taints = copy.deepcopy(ng.taints or [])
    ng.health = {"issues": []}
    if not body.get("remoteAccess"):
        ng.remote_access = None
        ng.resources = {"autoScalingGroups": ng.resources["autoScalingGroups"]}
    if body.get("launchTemplate"):
        ng.disk_size = None
    else:
        ng.disk_size = int(body.get("diskSize") or 20)
    ng.update_config = copy.deepcopy(body.get("updateConfig") or {"maxUnavailable": 1})
    if body.get("nodeRepairConfig"):
        ng.node_repair_config = copy.deepcopy(body["nodeRepairConfig"])
    from .store import Life
    rec.nodegroups[ng_name] = Life(ctx.config.hold("nodegroup", "create"))
    overlay.apply(rec, moto_cluster)
    return described(ctx, "clusters", cluster_name, "node-groups", ng_name, status="CREATING")


def check_scaling(scaling, ids):
    lo, hi, desired = scaling.get("minSize"), scaling.get("maxSize"), scaling.get("desiredSize")
    if not all(isinstance(v, int) for v in (lo, hi, desired)):
        raise invalid_parameter("scalingConfig sizes must be integers", **ids)
    if lo < 0 or hi < 1:
        raise invalid_parameter("Minimum capacity must be >= 0 and maximum capacity >= 1", **ids)
    if lo > hi:
        raise invalid_parameter(f"Minimum capacity {lo} can't be greater than maximum capacity {hi}", **ids)
    if desired > hi:
        raise invalid_parameter(f"Desired capacity {desired} can't be greater than max size {hi}", **ids)
    if desired < lo:
        raise invalid_parameter(f"Desired capacity {desired} can't be lower than min size {lo}", **ids)


def check_taints(taints, ids):
    for taint in taints or []:
        if not taint.get("key"):
            raise invalid_parameter("Taint key is required", **ids)
        if taint.get("effect") not in TAINT_EFFECTS:
            raise invalid_parameter(f"Taint effect {taint.get('effect')!r} is invalid; valid effects are "
                                    f"{', '.join(TAINT_EFFECTS)}", **ids)


def find_nodegroup(ctx, cluster_name, ng_name):
    moto_cluster, rec = find(ctx, cluster_name)
    ng = moto_cluster.nodegroups.get(ng_name)
    if ng is None:
        raise not_found(f"No node group found for name: {ng_name}.",
                        clusterName=cluster_name, nodegroupName=ng_name)
    return moto_cluster, rec, ng


def delete_nodegroup(ctx):
    cluster_name = ctx.params.get("clusterName")
    ng_name = ctx.params.get("nodegroupName")
    moto_cluster, rec, _ = find_nodegroup(ctx, cluster_name, ng_name)
    from .store import Life
    life = rec.nodegroups.setdefault(ng_name, Life(0.0))
    ids = dict(clusterName=cluster_name, nodegroupName=ng_name)
    if life.deleting:
        raise in_use(f"Nodegroup {ng_name} is already being deleted", **ids)
    busy = [u for u in rec.updates_for(("nodegroup", ng_name)) if u.status == "InProgress"]
    if busy:
        raise in_use(f"Nodegroup {ng_name} has update {busy[0].id} in progress", **ids)
    life.start_delete(ctx.config.hold("nodegroup", "delete"))
    overlay.apply(rec, moto_cluster)
    return described(ctx, "clusters", cluster_name, "node-groups", ng_name, status="DELETING")


def list_in_cluster(ctx):
    """ListNodegroups / ListFargateProfiles: moto fails (500) on a missing cluster; answer
    ResourceNotFoundException first, then let moto list."""
    find(ctx, ctx.params.get("clusterName"))
    return ctx.forward()


def describe_cluster_versions(ctx):
    p = ctx.params
    rows = catalogue.cluster_versions()
    if p.get("clusterType") and p["clusterType"] != "eks":
        rows = []
    if p.get("clusterVersions"):
        rows = [r for r in rows if r["clusterVersion"] in p["clusterVersions"]]
    if p.get("defaultOnly"):
        rows = [r for r in rows if r["defaultVersion"]]
    if p.get("versionStatus"):
        rows = [r for r in rows if r["versionStatus"] == p["versionStatus"]]
    if p.get("status"):
        rows = [r for r in rows if r["status"] == p["status"]]
    if not p.get("includeAll") and not p.get("versionStatus") and not p.get("status"):
        rows = [r for r in rows if r["versionStatus"] != "UNSUPPORTED"]
    chunk, token = page(rows, p)
    return Reply(with_token({"clusterVersions": chunk}, token))


HANDLERS = {
    "ListNodegroups": list_in_cluster,
    "ListFargateProfiles": list_in_cluster,
    "DescribeClusterVersions": describe_cluster_versions,
    "CreateCluster": create_cluster,
    "DeleteCluster": delete_cluster,
    "CreateNodegroup": create_nodegroup,
    "DeleteNodegroup": delete_nodegroup,
}
