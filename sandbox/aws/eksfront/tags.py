"""Tags on every EKS resource ARN.

Owns: TagResource, UntagResource and ListTagsForResource for clusters, node groups, Fargate
profiles (stored on moto's objects, so Describe calls show them) and add-ons, access entries
and pod identity associations (stored in the front).

Rules kept:
- the ARN decides account and region; an ARN that is not an EKS ARN is a BadRequestException,
  an EKS ARN of nothing that exists is a NotFoundException (404) — the errors the model gives
  these operations;
- keys starting with ``aws:`` are reserved, at most 50 tags per resource (BadRequestException);
- tagging merges, untagging removes the keys given (missing keys are fine).
"""

import re

from . import motobridge
from .errors import EksError
from .replies import Reply

ARN = re.compile(r"^arn:(aws[a-z-]*):eks:([a-z0-9-]+):(\d{12}):([a-z-]+)/(.+)$")


class _Holder:
    """Wraps an object whose tags live in attribute ``tags``."""

    def __init__(self, obj):
        self.obj = obj

    def get(self):
        if getattr(self.obj, "tags", None) is None:
            self.obj.tags = {}
        return self.obj.tags


def _resolve(ctx, arn):
    m = ARN.match(arn or "")
    if not m:
        raise EksError("BadRequestException", f"Invalid ARN: {arn}")
    _, region, account, kind, rest = m.groups()
    parts = rest.split("/")
    cluster_name = parts[0]
    moto_cluster = motobridge.cluster(account, region, cluster_name)
    found = None
    if moto_cluster is not None:
        rec = ctx.store.record(account, region, cluster_name)
        if kind == "cluster" and moto_cluster.arn == arn:
            found = moto_cluster
        elif kind == "nodegroup" and len(parts) >= 2:
            ng = moto_cluster.nodegroups.get(parts[1])
            found = ng if ng is not None and ng.arn == arn else None
        elif kind == "fargateprofile" and len(parts) >= 2:
            fp = moto_cluster.fargate_profiles.get(parts[1])
            found = fp if fp is not None and fp.fargate_profile_arn == arn else None
        elif kind == "addon" and len(parts) >= 2:
            addon = rec.addons.get(parts[1])
            found = addon if addon is not None and addon.arn == arn else None
        elif kind == "access-entry":
            found = next((e for e in rec.access_entries.values() if e.arn == arn), None)
        elif kind == "podidentityassociation" and len(parts) >= 2:
            assoc = rec.pod_identities.get(parts[1])
            found = assoc if assoc is not None and assoc.arn == arn else None
    if found is None:
        raise EksError("NotFoundException", f"Resource was not found: {arn}")
    return _Holder(found)


def _check(tags):
    if not isinstance(tags, dict) or not tags:
        raise EksError("BadRequestException", "tags must be a non-empty map")
    for key in tags:
        if key.lower().startswith("aws:"):
            raise EksError("BadRequestException", f"Tag key {key} uses the reserved prefix aws:")


def tag_resource(ctx):
    holder = _resolve(ctx, ctx.params.get("resourceArn"))
    tags = ctx.body.get("tags")
    _check(tags)
    current = holder.get()
    if len(set(current) | set(tags)) > 50:
        raise EksError("BadRequestException", "A resource can have at most 50 tags")
    current.update(tags)
    return Reply({})


def untag_resource(ctx):
    holder = _resolve(ctx, ctx.params.get("resourceArn"))
    keys = ctx.params.get("tagKeys") or []
    current = holder.get()
    for key in keys:
        current.pop(key, None)
    return Reply({})


def list_tags_for_resource(ctx):
    holder = _resolve(ctx, ctx.params.get("resourceArn"))
    return Reply({"tags": dict(holder.get())})


HANDLERS = {
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "ListTagsForResource": list_tags_for_resource,
}
