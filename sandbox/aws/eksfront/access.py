"""Access entries and access policies (served entirely by the front).

Owns: CreateAccessEntry, DescribeAccessEntry, ListAccessEntries, UpdateAccessEntry,
DeleteAccessEntry, AssociateAccessPolicy, DisassociateAccessPolicy,
ListAssociatedAccessPolicies, ListAccessPolicies, and the cluster creator's bootstrap entry.

Rules kept:
- the cluster must exist (ResourceNotFoundException) and its authenticationMode must be API or
  API_AND_CONFIG_MAP (InvalidRequestException otherwise);
- one entry per principalArn per cluster (ResourceInUseException); principalArn must be an IAM
  role or user ARN (InvalidParameterException), a role for every node type; with
  ``check_dependencies`` on, a principal in the same account must exist in IAM;
- type is STANDARD unless given (STANDARD, EC2_LINUX, EC2_WINDOWS, EC2, FARGATE_LINUX,
  HYBRID_LINUX, HYPERPOD_LINUX) and never changes; node types take no kubernetesGroups or
  username and EKS fills them in (``system:node:{{EC2PrivateDNSName}}``, ``system:nodes``); a
  STANDARD entry's default username is the principal's ARN (``assumed-role/NAME/{{SessionName}}``
  form for roles); a username may not start with system:, eks:, aws:, amazon: or iam:;
- access policies can only be associated with STANDARD entries, must be one ListAccessPolicies
  lists, and need an accessScope (``cluster`` without namespaces, ``namespace`` with at least one);
  associating an associated policy again replaces its scope;
- deleting an entry drops its associations; deleting the cluster drops its entries.
"""

import re

from . import catalogue, clusters, motobridge
from .errors import in_use, invalid_parameter, invalid_request, not_found
from .replies import Reply
from .wire import check_tags, new_uuid, now, page, with_token

TYPES = ("STANDARD", "EC2_LINUX", "EC2_WINDOWS", "EC2", "FARGATE_LINUX", "HYBRID_LINUX", "HYPERPOD_LINUX")
PRINCIPAL = re.compile(r"^arn:(aws[a-z-]*):iam::(\d{12}):(role|user)/(.+)$")
RESERVED_USER_PREFIXES = ("system:", "eks:", "aws:", "amazon:", "iam:")
NODE_IDENTITY = {
    "EC2_LINUX": ("system:node:{{EC2PrivateDNSName}}", ["system:nodes"]),
    "EC2_WINDOWS": ("system:node:{{EC2PrivateDNSName}}", ["system:nodes", "eks:kube-proxy-windows"]),
    "EC2": ("system:node:{{EC2PrivateDNSName}}", ["system:nodes"]),
    "FARGATE_LINUX": ("system:node:{{SessionName}}", ["system:nodes", "system:node-proxier"]),
    "HYBRID_LINUX": ("system:node:{{SessionName}}", ["system:nodes"]),
    "HYPERPOD_LINUX": ("system:node:hyperpod-{{SessionName}}", ["system:nodes"]),
}


class AccessEntry:
    def __init__(self, cluster, principal_arn, kind, username, groups, arn, tags):
        self.cluster = cluster
        self.principal_arn = principal_arn
        self.type = kind
        self.username = username
        self.groups = groups
        self.arn = arn
        self.tags = tags
        self.created_at = self.modified_at = now()
        self.policies = {}  # policyArn -> wire dict

    def wire(self):
        return {
            "clusterName": self.cluster,
            "principalArn": self.principal_arn,
            "kubernetesGroups": list(self.groups),
            "accessEntryArn": self.arn,
            "createdAt": self.created_at,
            "modifiedAt": self.modified_at,
            "tags": dict(self.tags),
            "username": self.username,
            "type": self.type,
        }


def _cluster(ctx, name):
    moto_cluster, rec = clusters.find(ctx, name)
    mode = clusters.access_config(moto_cluster)["authenticationMode"]
    if mode not in ("API", "API_AND_CONFIG_MAP"):
        raise invalid_request(
            "The cluster's authentication mode must be set to one of [API, API_AND_CONFIG_MAP] "
            "to perform this operation.", clusterName=name)
    return moto_cluster, rec


def _entry(rec, principal_arn):
    entry = rec.access_entries.get(principal_arn)
    if entry is None:
        raise not_found("The specified principalArn could not be found. You can view your "
                        "available access entries with 'list-access-entries'.", clusterName=rec.name)
    return entry


def _default_username(principal_arn):
    m = PRINCIPAL.match(principal_arn)
    part, account, kind, path = m.groups()
    if kind == "role":
        return f"arn:{part}:sts::{account}:assumed-role/{path.rsplit('/', 1)[-1]}/{{{{SessionName}}}}"
    return principal_arn


def _check_username(username, name):
    if username is not None and (username == "" or username.startswith(RESERVED_USER_PREFIXES)):
        raise invalid_parameter(f"username {username!r} is not allowed: it may not be empty or start "
                                f"with {', '.join(RESERVED_USER_PREFIXES)}", clusterName=name)


def _make(ctx, rec, principal_arn, kind, username, groups, tags):
    m = PRINCIPAL.match(principal_arn)
    _, account, pkind, path = m.groups()
    arn = ctx.arn(f"access-entry/{rec.name}/{pkind}/{account}/{path.rsplit('/', 1)[-1]}/{new_uuid()}")
    entry = AccessEntry(rec.name, principal_arn, kind, username, groups, arn, tags)
    rec.access_entries[principal_arn] = entry
    return entry


def bootstrap_creator(ctx, rec, cluster_name):
    """The access entry EKS makes for the cluster creator (bootstrapClusterCreatorAdminPermissions)."""
    principal = motobridge.caller_iam_arn(ctx.account, ctx.region, ctx.access_key)
    if not PRINCIPAL.match(principal):
        return
    entry = _make(ctx, rec, principal, "STANDARD", _default_username(principal), [], {})
    policy = catalogue.access_policy_arn("AmazonEKSClusterAdminPolicy", ctx.partition)
    entry.policies[policy] = {"policyArn": policy, "accessScope": {"type": "cluster", "namespaces": []},
                              "associatedAt": entry.created_at, "modifiedAt": entry.created_at}


def create_access_entry(ctx):
    name = ctx.params.get("clusterName")
    _, rec = _cluster(ctx, name)
    body = ctx.body
    principal = body.get("principalArn") or ""
    m = PRINCIPAL.match(principal)
    if not m:
        raise invalid_parameter(f"The specified principalArn is invalid: {principal!r}", clusterName=name)
    kind = body.get("type") or "STANDARD"
    if kind not in TYPES:
        raise invalid_parameter(f"The specified access entry type {kind} is invalid. Valid types are "
                                f"{', '.join(TYPES)}", clusterName=name)
    if principal in rec.access_entries:
        raise in_use("The specified access entry resource is already in use on this cluster.",
                     clusterName=name)
    if ctx.config.check_dependencies and m.group(2) == ctx.account and \
            not motobridge.principal_exists(ctx.account, principal):
        raise invalid_parameter(f"The specified principalArn {principal} does not exist", clusterName=name)
    groups = body.get("kubernetesGroups")
    username = body.get("username")
    if kind == "STANDARD":
        _check_username(username, name)
        username = username or _default_username(principal)
        groups = list(groups or [])
    else:
        if m.group(3) != "role":
            raise invalid_parameter(f"Access entries of type {kind} need an IAM role principal",
                                    clusterName=name)
        if groups or username:
            raise invalid_parameter(f"kubernetesGroups and username can't be specified for access "
                                    f"entries of type {kind}", clusterName=name)
        username, groups = NODE_IDENTITY[kind][0], list(NODE_IDENTITY[kind][1])
    entry = _make(ctx, rec, principal, kind, username, groups, check_tags(body.get("tags"), clusterName=name))
    return Reply({"accessEntry": entry.wire()})


def describe_access_entry(ctx):
    name = ctx.params.get("clusterName")
    _, rec = _cluster(ctx, name)
    return Reply({"accessEntry": _entry(rec, ctx.params.get("principalArn")).wire()})


def list_access_entries(ctx):
    name = ctx.params.get("clusterName")
    _, rec = _cluster(ctx, name)
    policy = ctx.params.get("associatedPolicyArn")
    arns = sorted(a for a, e in rec.access_entries.items() if not policy or policy in e.policies)
    chunk, token = page(arns, ctx.params)
    return Reply(with_token({"accessEntries": chunk}, token))


def update_access_entry(ctx):
    name = ctx.params.get("clusterName")
    _, rec = _cluster(ctx, name)
    entry = _entry(rec, ctx.params.get("principalArn"))
    groups = ctx.body.get("kubernetesGroups")
    username = ctx.body.get("username")
    if entry.type != "STANDARD" and (groups is not None or username is not None):
        raise invalid_parameter(f"kubernetesGroups and username can't be changed for access entries "
                                f"of type {entry.type}", clusterName=name)
    if username is not None:
        _check_username(username, name)
        entry.username = username
    if groups is not None:
        entry.groups = list(groups)
    entry.modified_at = now()
    return Reply({"accessEntry": entry.wire()})


def delete_access_entry(ctx):
    name = ctx.params.get("clusterName")
    _, rec = _cluster(ctx, name)
    entry = _entry(rec, ctx.params.get("principalArn"))
    rec.access_entries.pop(entry.principal_arn, None)
    return Reply({})


def associate_access_policy(ctx):
    name = ctx.params.get("clusterName")
    _, rec = _cluster(ctx, name)
    entry = _entry(rec, ctx.params.get("principalArn"))
    policy = ctx.body.get("policyArn") or ""
    if policy not in {p["arn"] for p in catalogue.access_policies(ctx.partition)}:
        raise invalid_parameter(f"The specified policyArn {policy!r} is invalid", clusterName=name)
    if entry.type != "STANDARD":
        raise invalid_request(f"Access policies can't be associated with access entries of type "
                              f"{entry.type}", clusterName=name)
    scope = ctx.body.get("accessScope")
    if not isinstance(scope, dict) or scope.get("type") not in ("cluster", "namespace"):
        raise invalid_parameter("accessScope.type must be cluster or namespace", clusterName=name)
    namespaces = list(scope.get("namespaces") or [])
    if scope["type"] == "cluster" and namespaces:
        raise invalid_parameter("namespaces can't be specified for an access scope of type cluster",
                                clusterName=name)
    if scope["type"] == "namespace" and not namespaces:
        raise invalid_parameter("At least one namespace is required for an access scope of type "
                                "namespace", clusterName=name)
    at = now()
    previous = entry.policies.get(policy)
    entry.policies[policy] = {
        "policyArn": policy,
        "accessScope": {"type": scope["type"], "namespaces": namespaces},
        "associatedAt": previous["associatedAt"] if previous else at,
        "modifiedAt": at,
    }
    return Reply({"clusterName": name, "principalArn": entry.principal_arn,
                  "associatedAccessPolicy": dict(entry.policies[policy])})


def disassociate_access_policy(ctx):
    name = ctx.params.get("clusterName")
    _, rec = _cluster(ctx, name)
    entry = _entry(rec, ctx.params.get("principalArn"))
    policy = ctx.params.get("policyArn")
    if policy not in entry.policies:
        raise not_found(f"The specified policyArn {policy} is not associated with this access entry",
                        clusterName=name)
    entry.policies.pop(policy)
    return Reply({})


def list_associated_access_policies(ctx):
    name = ctx.params.get("clusterName")
    _, rec = _cluster(ctx, name)
    entry = _entry(rec, ctx.params.get("principalArn"))
    policies = [dict(entry.policies[k]) for k in sorted(entry.policies)]
    chunk, token = page(policies, ctx.params)
    return Reply(with_token({"clusterName": name, "principalArn": entry.principal_arn,
                             "associatedAccessPolicies": chunk}, token))


def list_access_policies(ctx):
    chunk, token = page(catalogue.access_policies(ctx.partition), ctx.params)
    return Reply(with_token({"accessPolicies": chunk}, token))


HANDLERS = {
    "CreateAccessEntry": create_access_entry,
    "DescribeAccessEntry": describe_access_entry,
    "ListAccessEntries": list_access_entries,
    "UpdateAccessEntry": update_access_entry,
    "DeleteAccessEntry": delete_access_entry,
    "AssociateAccessPolicy": associate_access_policy,
    "DisassociateAccessPolicy": disassociate_access_policy,
    "ListAssociatedAccessPolicies": list_associated_access_policies,
    "ListAccessPolicies": list_access_policies,
}
