"""Cluster and node group updates, and the update records behind DescribeUpdate / ListUpdates.

Owns: UpdateClusterConfig, UpdateClusterVersion and AssociateEncryptionConfig (served by the
front, written onto moto's cluster), UpdateNodegroupConfig (checked, forwarded to moto,
recorded), UpdateNodegroupVersion (served by the front), DescribeUpdate and ListUpdates (for
clusters, node groups and add-ons).

Rules kept:
- the object must be ACTIVE: CREATING or DELETING gives InvalidRequestException, an update
  already InProgress gives ResourceInUseException (as EKS refuses concurrent updates);
- UpdateClusterConfig takes one kind of change per call (InvalidParameterException "Only one
  type of update can be allowed." otherwise) and refuses a change that changes nothing;
  resourcesVpcConfig is merged into the existing configuration (moto replaced it), endpoint
  changes (EndpointAccessUpdate) and subnet / security group changes (VpcConfigUpdate) being
  different kinds; logging is merged per log type; accessConfig.authenticationMode only moves
  CONFIG_MAP -> API_AND_CONFIG_MAP -> API; upgradePolicy, zonalShiftConfig, deletionProtection
  and the other members are stored and returned;
- AssociateEncryptionConfig (POST /clusters/{name}/encryption-config/associate) takes one
  configuration of resources ["secrets"] with a KMS key ARN, only on a cluster that has none
  (InvalidRequestException otherwise: EKS can neither change nor remove the key), writes it
  onto the cluster (DescribeCluster shows it) and answers an AssociateEncryptionConfig update
  with an EncryptionConfig param;
- UpdateClusterVersion moves exactly one minor version up, to a version the catalogue offers,
  and (unless ``force``) not while a node group would be more than three minors behind;
- UpdateNodegroupConfig keeps minSize <= desiredSize <= maxSize and EKS's taint effects
  (NO_SCHEDULE, NO_EXECUTE, PREFER_NO_SCHEDULE); its update gets real UpdateParamType params;
- UpdateNodegroupVersion goes to the given version or the cluster's, never newer than the
  cluster nor older than the node group, with the latest AMI release for it unless one is given,
  and refuses a call that changes nothing; a launch template version can be moved too;
- every update is answered InProgress and stays so for the update hold, during which its object
  reports UPDATING; the change itself is visible at once;
- DescribeUpdate finds an update only under the object it belongs to (cluster, ``nodegroupName``
  or ``addonName``): ResourceNotFoundException otherwise.
"""

import copy
import json

from . import catalogue, clusters, motobridge, overlay
from .errors import in_use, invalid_parameter, invalid_request, not_found
from .replies import Reply
from .store import Update
from .wire import new_uuid, page, with_token

LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
AUTH_ORDER = {"CONFIG_MAP": 0, "API_AND_CONFIG_MAP": 1, "API": 2}
# UpdateClusterConfig member -> (update type, param type)
SIMPLE_KINDS = {
    "upgradePolicy": ("UpgradePolicyUpdate", "UpgradePolicy"),
    "zonalShiftConfig": ("ZonalShiftConfigUpdate", "ZonalShiftConfig"),
    "deletionProtection": ("DeletionProtectionUpdate", "DeletionProtection"),
    "remoteNetworkConfig": ("RemoteNetworkConfigUpdate", "RemoteNetworkConfig"),
    "controlPlaneScalingConfig": ("ControlPlaneScalingConfigUpdate", "UpdatedTier"),
    "computeConfig": ("AutoModeUpdate", "ComputeConfig"),
    "storageConfig": ("AutoModeUpdate", "StorageConfig"),
    "kubernetesNetworkConfig": ("AutoModeUpdate", "KubernetesNetworkConfig"),
    "kubeApiServerConfig": ("ControlPlaneComponentConfigUpdate", "KubeApiServerConfig"),
    "kubeSchedulerConfig": ("ControlPlaneComponentConfigUpdate", "KubeSchedulerConfig"),
    "kubeControllerManagerConfig": ("ControlPlaneComponentConfigUpdate", "KubeControllerManagerConfig"),
}


def _text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def settled(rec, life, target, **ids):
    status = life.status(rec.busy(target))
    if status == "UPDATING":
        busy = [u for u in rec.updates_for(target) if u.status == "InProgress"]
        raise in_use(f"Update {busy[0].id} is already in progress", **ids)
    if status != "ACTIVE":
        raise invalid_request(f"The resource is in {status} state and can't be updated", **ids)


def _record(ctx, rec, kind, params, target=None):
    update = Update(new_uuid(), kind, params, ctx.config.hold("cluster", "update"), target=target)
    rec.updates.append(update)
    return Reply({"update": update.wire(status="InProgress")})


# ---- clusters --------------------------------------------------------------------------------

def update_cluster_config(ctx):
    name = ctx.params.get("name")
    moto_cluster, rec = clusters.find(ctx, name)
    ids = dict(clusterName=name)
    settled(rec, rec.life, None, **ids)
    body = {k: v for k, v in ctx.body.items() if k != "clientRequestToken" and v is not None}
    kinds = {}
    for member, value in body.items():
        if member == "resourcesVpcConfig":
            if any(k in value for k in ("endpointPublicAccess", "endpointPrivateAccess", "publicAccessCidrs")):
                kinds["EndpointAccessUpdate"] = member
            if any(k in value for k in ("subnetIds", "securityGroupIds")):
                kinds["VpcConfigUpdate"] = member
            if "controlPlaneEgressMode" in value:
                kinds["ControlPlaneEgressUpdate"] = member
        elif member == "logging":
            kinds["LoggingUpdate"] = member
        elif member == "accessConfig":
            kinds["AccessConfigUpdate"] = member
        elif member in SIMPLE_KINDS:
            kinds[SIMPLE_KINDS[member][0]] = member
        else:
            raise invalid_parameter(f"Unknown cluster configuration member {member}", **ids)
    if not kinds:
        raise invalid_parameter("No changes were requested", **ids)
    if len(kinds) > 1:
        raise invalid_parameter("Only one type of update can be allowed.", **ids)
    kind = next(iter(kinds))

    if kind == "EndpointAccessUpdate":
        current = moto_cluster.resources_vpc_config or {}
        req = body["resourcesVpcConfig"]
        merged = dict(current)
        params = []
        for member, ptype in (("endpointPublicAccess", "EndpointPublicAccess"),
                              ("endpointPrivateAccess", "EndpointPrivateAccess"),
                              ("publicAccessCidrs", "PublicAccessCidrs")):
            if member in req:
                merged[member] = list(req[member]) if member == "publicAccessCidrs" else bool(req[member])
                params.append({"type": ptype, "value": _text(merged[member])})
        if not merged.get("endpointPublicAccess") and not merged.get("endpointPrivateAccess"):
            raise invalid_parameter("At least one of endpointPublicAccess and endpointPrivateAccess "
                                    "must be enabled", **ids)
        if all(merged.get(k) == current.get(k) for k in
               ("endpointPublicAccess", "endpointPrivateAccess", "publicAccessCidrs")):
            raise invalid_parameter(
                "Cluster is already at the desired configuration with endpointPrivateAccess: "
                f"{_text(current.get('endpointPrivateAccess'))} , endpointPublicAccess: "
                f"{_text(current.get('endpointPublicAccess'))}, and Public Endpoint Restrictions: "
                f"{', '.join(current.get('publicAccessCidrs') or [])}", **ids)
        moto_cluster.resources_vpc_config = merged
        return _record(ctx, rec, kind, params)

    if kind == "VpcConfigUpdate":
        current = moto_cluster.resources_vpc_config or {}
        req = body["resourcesVpcConfig"]
        merged = dict(current)
        params = []
        if "subnetIds" in req:
            subnet_ids = list(req["subnetIds"])
            if ctx.config.check_dependencies:
                found = motobridge.subnets(ctx.account, ctx.region, subnet_ids)
                missing = [s for s in subnet_ids if s not in found]
                if missing:
                    raise invalid_parameter(f"The subnet ID(s) {', '.join(missing)} do not exist", **ids)
                if any(current.get("vpcId") and vpc != current["vpcId"] for vpc, _ in found.values()):
                    raise invalid_parameter("Subnets must be in the cluster's VPC", **ids)
            merged["subnetIds"] = subnet_ids
            params.append({"type": "Subnets", "value": json.dumps(subnet_ids)})
        if "securityGroupIds" in req:
            groups = list(req["securityGroupIds"])
            if ctx.config.check_dependencies:
                missing = motobridge.security_groups_missing(ctx.account, ctx.region, groups)
                if missing:
                    raise invalid_parameter(f"Security group(s) {missing} do not exist", **ids)
            merged["securityGroupIds"] = groups
            params.append({"type": "SecurityGroups", "value": json.dumps(groups)})
        if merged == current:
            raise invalid_parameter("Cluster is already at the desired VPC configuration", **ids)
        moto_cluster.resources_vpc_config = merged
        return _record(ctx, rec, kind, params)

    if kind == "ControlPlaneEgressUpdate":
        merged = dict(moto_cluster.resources_vpc_config or {})
        mode = body["resourcesVpcConfig"]["controlPlaneEgressMode"]
        if merged.get("controlPlaneEgressMode") == mode:
            raise invalid_parameter("Cluster is already at the desired control plane egress mode", **ids)
        merged["controlPlaneEgressMode"] = mode
        moto_cluster.resources_vpc_config = merged
        return _record(ctx, rec, kind, [{"type": "ControlPlaneEgressMode", "value": mode}])

    if kind == "LoggingUpdate":
        setups = (body["logging"] or {}).get("clusterLogging") or []
        state = {}
        for setup in (moto_cluster.logging or {}).get("clusterLogging", []):
            for t in setup.get("types", []):
                state[t] = bool(setup.get("enabled"))
        before = dict(state)
        for setup in setups:
            for t in setup.get("types", []):
                if t not in LOG_TYPES:
                    raise invalid_parameter(f"Unknown log type {t}; valid types are {', '.join(LOG_TYPES)}", **ids)
                state[t] = bool(setup.get("enabled"))
        if state == before:
            raise invalid_parameter("No changes needed for the logging config provided", **ids)
        enabled = [t for t in LOG_TYPES if state.get(t)]
        disabled = [t for t in LOG_TYPES if not state.get(t)]
        moto_cluster.logging = {"clusterLogging": [s for s in (
            {"types": enabled, "enabled": True} if enabled else None,
            {"types": disabled, "enabled": False} if disabled else None) if s]}
        return _record(ctx, rec, kind, [{"type": "ClusterLogging", "value": json.dumps(setups)}])

    if kind == "AccessConfigUpdate":
        cfg = clusters.access_config(moto_cluster)
        mode = (body["accessConfig"] or {}).get("authenticationMode")
        if mode not in AUTH_ORDER:
            raise invalid_parameter(f"Unsupported authentication mode {mode}", **ids)
        if AUTH_ORDER[mode] <= AUTH_ORDER[cfg["authenticationMode"]]:
            raise invalid_parameter(f"Unsupported authentication mode update from "
                                    f"{cfg['authenticationMode']} to {mode}", **ids)
        cfg["authenticationMode"] = mode
        return _record(ctx, rec, kind, [{"type": "AuthenticationMode", "value": mode}])

    member = kinds[kind]
    value = body[member]
    attr = {"deletionProtection": "deletion_protection"}.get(member)
    from botocore import xform_name
    attr = attr or xform_name(member)
    current = getattr(moto_cluster, attr, None)
    if member == "upgradePolicy":
        if value.get("supportType") not in ("STANDARD", "EXTENDED"):
            raise invalid_parameter(f"Unsupported upgrade policy support type {value.get('supportType')}", **ids)
        merged = {"supportType": value["supportType"]}
        param_value = value["supportType"]
    elif isinstance(value, dict) and isinstance(current, dict):
        merged = copy.deepcopy(current)
        merged.update(copy.deepcopy(value))
        param_value = _text(value)
    else:
        merged = copy.deepcopy(value)
        param_value = _text(value)
    if merged == current:
        raise invalid_parameter(f"Cluster is already at the desired {member}", **ids)
    setattr(moto_cluster, attr, merged)
    return _record(ctx, rec, kind, [{"type": SIMPLE_KINDS[member][1], "value": param_value}])


def update_cluster_version(ctx):
    name = ctx.params.get("name")
    moto_cluster, rec = clusters.find(ctx, name)
    ids = dict(clusterName=name)
    settled(rec, rec.life, None, **ids)
    version = ctx.body.get("version") or ""
    current = moto_cluster.version
    if version not in catalogue.KUBERNETES_VERSIONS:
        raise invalid_parameter(f"unsupported Kubernetes version {version}", **ids)
    if catalogue.minor(version) != (catalogue.minor(current) or 0) + 1:
        raise invalid_parameter(f"Unsupported Kubernetes minor version update from {current} to {version}", **ids)
    if not ctx.body.get("force"):
        behind = [n for n, ng in moto_cluster.nodegroups.items()
                  if (catalogue.minor(ng.version) or 0) < catalogue.minor(version) - 3]
        if behind:
            raise invalid_request(f"Node groups {behind} would be more than three minor versions behind "
                                  f"{version}; update them first or use force", **ids)
    moto_cluster.version = version
    moto_cluster.platformVersion = catalogue.platform_version(version)
    return _record(ctx, rec, "VersionUpdate", [
        {"type": "Version", "value": version},
        {"type": "PlatformVersion", "value": moto_cluster.platformVersion},
    ])


def associate_encryption_config(ctx):
    name = ctx.params.get("clusterName")
    moto_cluster, rec = clusters.find(ctx, name)
    ids = dict(clusterName=name)
    settled(rec, rec.life, None, **ids)
    config = ctx.body.get("encryptionConfig")
    clusters.check_encryption_config(config, **ids)
    if getattr(moto_cluster, "encryption_config", None):
        raise invalid_request("Encryption is already enabled on the cluster; EKS cannot change "
                              "or remove it", **ids)
    config = [{"resources": ["secrets"], "provider": {"keyArn": config[0]["provider"]["keyArn"]}}]
    moto_cluster.encryption_config = config
    return _record(ctx, rec, "AssociateEncryptionConfig",
                   [{"type": "EncryptionConfig", "value": json.dumps(config)}])


# ---- node groups -----------------------------------------------------------------------------

def update_nodegroup_config(ctx):
    cluster_name, ng_name = ctx.params.get("clusterName"), ctx.params.get("nodegroupName")
    _, rec, ng = clusters.find_nodegroup(ctx, cluster_name, ng_name)
    ids = dict(clusterName=cluster_name, nodegroupName=ng_name)
    from .store import Life
    settled(rec, rec.nodegroups.setdefault(ng_name, Life(0.0)), ("nodegroup", ng_name), **ids)
    body = ctx.body
    params = []
    labels = body.get("labels") or {}
    taints = body.get("taints") or {}
    scaling = body.get("scalingConfig") or {}
    if not any(body.get(k) for k in ("labels", "taints", "scalingConfig", "updateConfig", "nodeRepairConfig")):
        raise invalid_parameter("No changes were requested", **ids)
    clusters.check_taints(taints.get("addOrUpdateTaints"), ids)
    merged = dict(ng.scaling_config or {})
    merged.update(scaling)
    clusters.check_scaling(merged, ids)
    got = ctx.forward()
    if not got.ok:
        return got
    if labels.get("addOrUpdateLabels"):
        params.append({"type": "LabelsToAdd", "value": json.dumps(labels["addOrUpdateLabels"])})
    if labels.get("removeLabels"):
        params.append({"type": "LabelsToRemove", "value": json.dumps(labels["removeLabels"])})
    if taints.get("addOrUpdateTaints"):
        params.append({"type": "TaintsToAdd", "value": json.dumps(taints["addOrUpdateTaints"])})
    if taints.get("removeTaints"):
        params.append({"type": "TaintsToRemove", "value": json.dumps(taints["removeTaints"])})
    for member, ptype in (("minSize", "MinSize"), ("maxSize", "MaxSize"), ("desiredSize", "DesiredSize")):
        if member in scaling:
            params.append({"type": ptype, "value": str(scaling[member])})
    for member, ptype in (("maxUnavailable", "MaxUnavailable"),
                          ("maxUnavailablePercentage", "MaxUnavailablePercentage"),
                          ("updateStrategy", "UpdateStrategy")):
        if member in (body.get("updateConfig") or {}):
            params.append({"type": ptype, "value": str(body["updateConfig"][member])})
    if "enabled" in (body.get("nodeRepairConfig") or {}):
        params.append({"type": "NodeRepairEnabled", "value": _text(body["nodeRepairConfig"]["enabled"])})
    reply = _record(ctx, rec, "ConfigUpdate", params, target=("nodegroup", ng_name))
    overlay.apply(rec)
    return reply


def update_nodegroup_version(ctx):
    cluster_name, ng_name = ctx.params.get("clusterName"), ctx.params.get("nodegroupName")
    moto_cluster, rec, ng = clusters.find_nodegroup(ctx, cluster_name, ng_name)
    ids = dict(clusterName=cluster_name, nodegroupName=ng_name)
    from .store import Life
    settled(rec, rec.nodegroups.setdefault(ng_name, Life(0.0)), ("nodegroup", ng_name), **ids)
    body = ctx.body
    version = body.get("version") or moto_cluster.version
    if version not in catalogue.KUBERNETES_VERSIONS:
        raise invalid_parameter(f"unsupported Kubernetes version {version}", **ids)
    if catalogue.minor(version) > catalogue.minor(moto_cluster.version):
        raise invalid_parameter(f"Requested Nodegroup Kubernetes version {version} is newer than the "
                                f"cluster version {moto_cluster.version}", **ids)
    if catalogue.minor(version) < (catalogue.minor(ng.version) or 0):
        raise invalid_parameter(f"Requested Nodegroup Kubernetes version {version} is older than the "
                                f"node group's version {ng.version}", **ids)
    custom_ami = ng.ami_type == "CUSTOM"
    release = None if custom_ami else (body.get("releaseVersion") or catalogue.release_version(version))
    lt_req = body.get("launchTemplate")
    lt = dict(ng.launch_template or {})
    if lt_req:
        if not lt:
            raise invalid_parameter("Node group was not created with a launch template", **ids)
        if (lt_req.get("id") and lt_req["id"] != lt.get("id")) or \
                (lt_req.get("name") and lt_req["name"] != lt.get("name")):
            raise invalid_parameter("The launch template must be the one the node group uses", **ids)
    params = []
    if version != ng.version:
        params.append({"type": "Version", "value": version})
    if release and release != ng.release_version:
        params.append({"type": "ReleaseVersion", "value": release})
    if lt_req and lt_req.get("version") and str(lt_req["version"]) != str(lt.get("version")):
        params.append({"type": "LaunchTemplateName", "value": lt.get("name", "")})
        params.append({"type": "LaunchTemplateVersion", "value": str(lt_req["version"])})
    if not params:
        raise invalid_parameter(f"Nodegroup {ng_name} is already at version {ng.version} with release "
                                f"{ng.release_version}", **ids)
    ng.version = version
    if release:
        ng.release_version = release
    if lt_req and lt_req.get("version"):
        lt["version"] = str(lt_req["version"])
        ng.launch_template = lt
    reply = _record(ctx, rec, "VersionUpdate", params, target=("nodegroup", ng_name))
    overlay.apply(rec)
    return reply


# ---- reading updates -------------------------------------------------------------------------

def _target(ctx, moto_cluster, rec):
    ng_name, addon_name = ctx.params.get("nodegroupName"), ctx.params.get("addonName")
    if ng_name:
        if ng_name not in moto_cluster.nodegroups:
            raise not_found(f"No node group found for name: {ng_name}.", clusterName=rec.name,
                            nodegroupName=ng_name)
        return ("nodegroup", ng_name)
    if addon_name:
        if addon_name not in rec.addons:
            raise not_found(f"No addon: {addon_name} found in cluster: {rec.name}", clusterName=rec.name,
                            addonName=addon_name)
        return ("addon", addon_name)
    return None


def describe_update(ctx):
    name = ctx.params.get("name")
    moto_cluster, rec = clusters.find(ctx, name)
    target = _target(ctx, moto_cluster, rec)
    update_id = ctx.params.get("updateId")
    for update in rec.updates_for(target):
        if update.id == update_id:
            return Reply({"update": update.wire()})
    raise not_found(f"No update found for ID: {update_id}", clusterName=name,
                    nodegroupName=ctx.params.get("nodegroupName"), addonName=ctx.params.get("addonName"))


def list_updates(ctx):
    name = ctx.params.get("name")
    moto_cluster, rec = clusters.find(ctx, name)
    target = _target(ctx, moto_cluster, rec)
    chunk, token = page([u.id for u in rec.updates_for(target)], ctx.params)
    return Reply(with_token({"updateIds": chunk}, token))


HANDLERS = {
    "UpdateClusterConfig": update_cluster_config,
    "UpdateClusterVersion": update_cluster_version,
    "AssociateEncryptionConfig": associate_encryption_config,
    "UpdateNodegroupConfig": update_nodegroup_config,
    "UpdateNodegroupVersion": update_nodegroup_version,
    "DescribeUpdate": describe_update,
    "ListUpdates": list_updates,
}
