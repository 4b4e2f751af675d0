"""The node groups as the Kubernetes simulator needs them: ``GET /sandbox-api/nodegroups``.

Owns: the read-only, cross-cluster listing of every managed node group the emulator holds, as
DescribeNodegroup would show it at this moment, plus what a node's kubelet would know (zones of
its subnets, instance types, taints in Kubernetes spelling). The Kubernetes API simulator
(``sandbox/kube-sim``) polls it and makes, scales and removes its Node objects from it.

Rules kept:
- read-only: the view computes statuses from the clocks (``overlay.nodegroup_status``) instead
  of running ``overlay.tick``, makes no front record, reaps nothing and never asks moto for a
  backend it has not made (``motobridge.all_clusters``, ``subnet_zones``), so reading it changes
  nothing a later AWS call would see;
- status as DescribeNodegroup shows it now: CREATING until the create hold passes, UPDATING
  while an update of it is InProgress, DELETING until the delete hold passes, then absent (a
  node group whose delete hold has passed is left out even before the next EKS call removes
  it); a cluster whose delete hold has passed is left out too;
- every account and region moto holds EKS clusters in, ordered by cluster name, then node
  group name (then account and region, for equal names), so every call orders alike;
- ``taints`` in Kubernetes spelling (EKS's NO_SCHEDULE / NO_EXECUTE / PREFER_NO_SCHEDULE are
  the Kubernetes effects NoSchedule / NoExecute / PreferNoSchedule: EKS API reference ``Taint``,
  and the EKS user guide "Node taints on managed node groups"); ``value`` left out when EKS
  has none (an empty taint value is the same as none in Kubernetes);
- ``instanceTypes``: the node group's, else the instance type of the launch template version
  it uses (EKS reports ``null`` for that case), else ``t3.medium``: "If you don't specify an
  instance type in a launch template or for instanceTypes, then t3.medium is used, by default"
  (EKS API reference, CreateNodegroup ``instanceTypes``, as shipped in botocore's EKS model);
- ``subnets`` with the availability zone moto's EC2 has for each (``null`` when the subnet is
  gone from EC2);
- ``createdAt`` in epoch seconds, as the EKS API's timestamps (``wire``);
- not an AWS service: injected faults never apply (``app`` answers ``/sandbox-api/*`` before
  it looks at faults).
"""

import datetime

from . import motobridge, overlay

# EKS API spelling -> Kubernetes core/v1 TaintEffect.
TAINT_EFFECTS = {
    "NO_SCHEDULE": "NoSchedule",
    "NO_EXECUTE": "NoExecute",
    "PREFER_NO_SCHEDULE": "PreferNoSchedule",
}
DEFAULT_INSTANCE_TYPE = "t3.medium"


def nodegroups(store):
    """``{"nodegroups": [...]}``: every node group of every cluster, as it is now."""
    rows = []
    with store.lock:
        for account, region, moto_cluster in motobridge.all_clusters():
            rec = store.peek(account, region, moto_cluster.name)
            if rec is not None and rec.life.gone():
                continue
            for name, ng in list(moto_cluster.nodegroups.items()):
                status = overlay.nodegroup_status(rec, name)
                if status is not None:
                    rows.append(_row(account, region, moto_cluster.name, ng, status))
    rows.sort(key=lambda r: (r["cluster"], r["nodegroup"], r["account"], r["region"]))
    return {"nodegroups": rows}


def _row(account, region, cluster_name, ng, status):
    scaling = ng.scaling_config or {}
    zones = motobridge.subnet_zones(account, region, list(ng.subnets or []))
    return {
        "cluster": cluster_name,
        "nodegroup": ng.nodegroup_name,
        "account": account,
        "region": region,
        "status": status,
        "desiredSize": scaling.get("desiredSize"),
        "minSize": scaling.get("minSize"),
        "maxSize": scaling.get("maxSize"),
        "instanceTypes": _instance_types(account, region, ng),
        "capacityType": ng.capacity_type,
        "amiType": ng.ami_type,
        "version": ng.version,
        "releaseVersion": ng.release_version,
        "labels": dict(ng.labels or {}),
        "taints": [kube_taint(t) for t in ng.taints or []],
        "subnets": [{"subnetId": s, "availabilityZone": zones.get(s)} for s in ng.subnets or []],
        "nodegroupArn": ng.arn,
        "createdAt": _epoch(ng.created_at),
    }


def kube_taint(taint):
    """An EKS taint (``{"key", "value"?, "effect": "NO_SCHEDULE"}``) in Kubernetes spelling."""
    effect = taint.get("effect")
    out = {"key": taint.get("key"), "effect": TAINT_EFFECTS.get(effect, effect)}
    if taint.get("value"):
        out["value"] = taint["value"]
    return out


def _instance_types(account, region, ng):
    if ng.launch_template:
        from_template = motobridge.launch_template_instance_type(account, region, ng.launch_template)
        if from_template:
            return [from_template]
    return list(ng.instance_types or []) or [DEFAULT_INSTANCE_TYPE]


def _epoch(value):
    """moto keeps naive UTC datetimes; EKS's wire has epoch seconds."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return round(value.timestamp(), 3)
    return value
