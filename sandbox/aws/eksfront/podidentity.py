"""EKS Pod Identity associations (served entirely by the front).

Owns: CreatePodIdentityAssociation, DescribePodIdentityAssociation,
ListPodIdentityAssociations, UpdatePodIdentityAssociation, DeletePodIdentityAssociation, and
the associations add-ons own (made and removed through CreateAddon / UpdateAddon / DeleteAddon).

Rules kept:
- the cluster must exist (ResourceNotFoundException); an association is identified by
  ``a-`` + 17 characters and its ARN is ``...:podidentityassociation/<cluster>/<id>``;
- one association per (namespace, service account) per cluster (ResourceInUseException);
  namespace and service account must be valid Kubernetes names; roleArn (and targetRoleArn) must
  be IAM role ARNs; with ``check_dependencies`` on, a role in the same account must exist;
- an association made for an add-on carries the add-on's ARN as ``ownerArn`` and can only be
  changed or removed through the add-on (InvalidRequestException when tried directly);
- ``externalId`` is issued when a targetRoleArn is set; disableSessionTags defaults to false;
- List filters on namespace and serviceAccount and pages like AWS.
"""

import json
import re

from . import clusters, motobridge
from .errors import in_use, invalid_parameter, invalid_request, not_found
from .replies import Reply
from .wire import check_tags, new_uuid, now, page, short_id, with_token

ROLE = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/.+$")
NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
SERVICE_ACCOUNT = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


class Association:
    def __init__(self, cluster, assoc_id, arn, namespace, service_account, role_arn, tags,
                 owner_arn=None, disable_session_tags=False, target_role_arn=None, policy=None):
        self.cluster = cluster
        self.id = assoc_id
        self.arn = arn
        self.namespace = namespace
        self.service_account = service_account
        self.role_arn = role_arn
        self.tags = tags
        self.owner_arn = owner_arn
        self.disable_session_tags = disable_session_tags
        self.target_role_arn = target_role_arn
        self.external_id = new_uuid() if target_role_arn else None
        self.policy = policy
        self.created_at = self.modified_at = now()

    def wire(self):
        doc = {
            "clusterName": self.cluster,
            "namespace": self.namespace,
            "serviceAccount": self.service_account,
            "roleArn": self.role_arn,
            "associationArn": self.arn,
            "associationId": self.id,
            "tags": dict(self.tags),
            "createdAt": self.created_at,
            "modifiedAt": self.modified_at,
            "disableSessionTags": self.disable_session_tags,
        }
        for key, value in (("ownerArn", self.owner_arn), ("targetRoleArn", self.target_role_arn),
                           ("externalId", self.external_id), ("policy", self.policy)):
            if value:
                doc[key] = value
        return doc

    def summary(self):
        doc = {
            "clusterName": self.cluster,
            "namespace": self.namespace,
            "serviceAccount": self.service_account,
            "associationArn": self.arn,
            "associationId": self.id,
        }
        if self.owner_arn:
            doc["ownerArn"] = self.owner_arn
        return doc


def check_role(ctx, arn, member, cluster_name):
    m = ROLE.match(arn or "")
    if not m:
        raise invalid_parameter(f"{member} {arn!r} is not a valid IAM role ARN", clusterName=cluster_name)
    if member == "roleArn" and ctx.config.check_dependencies and m.group(1) == ctx.account and \
            motobridge.role_by_arn(ctx.account, arn) is None:
        raise invalid_parameter(f"The role with ARN {arn} does not exist", clusterName=cluster_name)


def check_unused(rec, namespace, service_account):
    for assoc in rec.pod_identities.values():
        if assoc.namespace == namespace and assoc.service_account == service_account:
            raise in_use(f"Association already exists: {assoc.id}", clusterName=rec.name)


def _check_policy(policy, cluster_name):
    if policy in (None, ""):
        return None
    try:
        json.loads(policy)
    except ValueError:
        raise invalid_parameter("policy must be a JSON IAM policy document", clusterName=cluster_name)
    return policy


def make(ctx, rec, namespace, service_account, role_arn, tags=None, owner_arn=None,
         disable_session_tags=False, target_role_arn=None, policy=None):
    """Create and store an association (callers have checked everything)."""
    assoc_id = short_id("a-")
    assoc = Association(rec.name, assoc_id, ctx.arn(f"podidentityassociation/{rec.name}/{assoc_id}"),
                        namespace, service_account, role_arn, tags or {}, owner_arn,
                        bool(disable_session_tags), target_role_arn or None, policy)
    rec.pod_identities[assoc_id] = assoc
    return assoc


def _find(ctx):
    name = ctx.params.get("clusterName")
    _, rec = clusters.find(ctx, name)
    assoc = rec.pod_identities.get(ctx.params.get("associationId"))
    if assoc is None:
        raise not_found(f"No Pod Identity Association found for id: {ctx.params.get('associationId')}",
                        clusterName=name)
    return rec, assoc


def _not_owned(assoc, action):
    if assoc.owner_arn:
        raise invalid_request(f"Pod Identity Association {assoc.id} is owned by {assoc.owner_arn} and "
                              f"can't be {action} directly; use UpdateAddon", clusterName=assoc.cluster)


def create(ctx):
    name = ctx.params.get("clusterName")
    _, rec = clusters.usable(ctx, name)
    body = ctx.body
    namespace, sa = body.get("namespace") or "", body.get("serviceAccount") or ""
    if not NAMESPACE.match(namespace) or len(namespace) > 63:
        raise invalid_parameter(f"Invalid namespace {namespace!r}", clusterName=name)
    if not SERVICE_ACCOUNT.match(sa) or len(sa) > 253:
        raise invalid_parameter(f"Invalid serviceAccount {sa!r}", clusterName=name)
    check_role(ctx, body.get("roleArn"), "roleArn", name)
    if body.get("targetRoleArn"):
        check_role(ctx, body["targetRoleArn"], "targetRoleArn", name)
    check_unused(rec, namespace, sa)
    assoc = make(ctx, rec, namespace, sa, body["roleArn"], check_tags(body.get("tags"), clusterName=name),
                 disable_session_tags=body.get("disableSessionTags", False),
                 target_role_arn=body.get("targetRoleArn"), policy=_check_policy(body.get("policy"), name))
    return Reply({"association": assoc.wire()})


def describe(ctx):
    _, assoc = _find(ctx)
    return Reply({"association": assoc.wire()})


def list_(ctx):
    name = ctx.params.get("clusterName")
    _, rec = clusters.find(ctx, name)
    ns, sa = ctx.params.get("namespace"), ctx.params.get("serviceAccount")
    found = [a for a in rec.pod_identities.values()
             if (not ns or a.namespace == ns) and (not sa or a.service_account == sa)]
    found.sort(key=lambda a: (a.namespace, a.service_account, a.id))
    chunk, token = page([a.summary() for a in found], ctx.params)
    return Reply(with_token({"associations": chunk}, token))


def update(ctx):
    rec, assoc = _find(ctx)
    _not_owned(assoc, "updated")
    body = ctx.body
    if body.get("roleArn"):
        check_role(ctx, body["roleArn"], "roleArn", rec.name)
        assoc.role_arn = body["roleArn"]
    if "targetRoleArn" in body:
        target = body["targetRoleArn"] or None
        if target:
            check_role(ctx, target, "targetRoleArn", rec.name)
            if target != assoc.target_role_arn:
                assoc.external_id = new_uuid()
        else:
            assoc.external_id = None
        assoc.target_role_arn = target
    if body.get("disableSessionTags") is not None:
        assoc.disable_session_tags = bool(body["disableSessionTags"])
    if "policy" in body:
        assoc.policy = _check_policy(body["policy"], rec.name)
    assoc.modified_at = now()
    return Reply({"association": assoc.wire()})


def delete(ctx):
    rec, assoc = _find(ctx)
    _not_owned(assoc, "deleted")
    rec.pod_identities.pop(assoc.id, None)
    return Reply({"association": assoc.wire()})


HANDLERS = {
    "CreatePodIdentityAssociation": create,
    "DescribePodIdentityAssociation": describe,
    "ListPodIdentityAssociations": list_,
    "UpdatePodIdentityAssociation": update,
    "DeletePodIdentityAssociation": delete,
}
