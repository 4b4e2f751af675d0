"""The only module that touches moto's in-process internals.

Owns: finding moto's EKS, EC2, IAM and STS objects for the (account, region) of a request, and
the few direct writes the front makes to them (status, extra cluster fields, deletion after a
hold, the cluster security group, a gateway VPC endpoint's routes).

Rules kept:
- account and region are worked out the way moto does it (``MOTO_ACCOUNT_ID``, then the
  ``x-moto-account-id`` header, then the access key; region from the SigV4 credential scope),
  so the front and moto always look at the same backend;
- nothing here answers a request: callers decide what an absent object means;
- the readers behind ``/sandbox-api/nodegroups`` and ``/sandbox-api/addons`` (``all_clusters``,
  ``subnet_zones``, ``launch_template_instance_type``) never make a backend moto has not made
  yet.
"""

import json
import os
import re

from moto.core import DEFAULT_ACCOUNT_ID
from moto.ec2.models import ec2_backends
from moto.eks.models import eks_backends
from moto.iam.models import get_account_id_from, iam_backends
from moto.sts.models import sts_backends

_SCOPE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
_HOST = re.compile(r"^eks\.([a-z0-9-]+)\.amazonaws\.com")


def request_scope(environ):
    """(service, region, access_key) from the SigV4 Authorization header, or Nones."""
    m = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if m:
        return m.group(3), m.group(2), m.group(1)
    host = environ.get("HTTP_HOST", "")
    h = _HOST.match(host)
    if h:
        return "eks", h.group(1), None
    return None, None, None


def account_for(environ, access_key):
    if "MOTO_ACCOUNT_ID" in os.environ:
        return os.environ["MOTO_ACCOUNT_ID"]
    header = environ.get("HTTP_X_MOTO_ACCOUNT_ID")
    if header:
        return header
    if access_key:
        return get_account_id_from(access_key)
    return DEFAULT_ACCOUNT_ID


def partition(region):
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


# ---- EKS -------------------------------------------------------------------------------------

def eks(account, region):
    return eks_backends[account][region]


def cluster(account, region, name):
    return eks(account, region).clusters.get(name)


def all_clusters():
    """[(account, region, moto cluster)] of every EKS backend that exists, without creating
    any (moto makes a backend on first lookup; iterating what is there does not)."""
    found = []
    for account, per_region in list(eks_backends.items()):
        for region, backend in list(per_region.items()):
            for c in list(backend.clusters.values()):
                found.append((account, region, c))
    return found


def nodegroup(account, region, cluster_name, name):
    c = cluster(account, region, cluster_name)
    return c.nodegroups.get(name) if c else None


def delete_cluster(account, region, name):
    backend = eks(account, region)
    if name in backend.clusters:
        backend.clusters.pop(name)
        backend.cluster_count -= 1


def delete_nodegroup(account, region, cluster_name, name):
    c = cluster(account, region, cluster_name)
    if c and name in c.nodegroups:
        c.nodegroups.pop(name)
        c.nodegroup_count -= 1


# ---- IAM / STS -------------------------------------------------------------------------------

def _iam(account, region="us-east-1"):
    return iam_backends[account][partition(region)]


def role_by_arn(account, arn):
    try:
        return _iam(account).get_role_by_arn(arn)
    except Exception:
        return None


def user_by_arn(account, arn):
    name = arn.rsplit("/", 1)[-1]
    try:
        user = _iam(account).get_user(name)
    except Exception:
        return None
    return user if user.arn == arn else None


def principal_exists(account, arn):
    if ":role/" in arn:
        return role_by_arn(account, arn) is not None
    if ":user/" in arn:
        return user_by_arn(account, arn) is not None
    return False


def role_trusts(role, service):
    """True when the role's trust policy lets ``service`` assume it."""
    doc = role.assume_role_policy_document
    if isinstance(doc, str):
        try:
            doc = json.loads(doc)
        except ValueError:
            return False
    statements = doc.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    for st in statements:
        if st.get("Effect") != "Allow":
            continue
        actions = st.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if not any(a in ("sts:AssumeRole", "sts:*", "*") for a in actions):
            continue
        services = (st.get("Principal") or {}).get("Service", [])
        services = [services] if isinstance(services, str) else services
        if service in services:
            return True
    return False


def caller_iam_arn(account, region, access_key):
    """The IAM principal (user or role ARN) behind the request's credentials, as EKS records
    the cluster creator."""
    try:
        _, arn, _ = sts_backends[account][partition(region)].get_caller_identity(access_key or "", region)
    except Exception:
        arn = f"arn:{partition(region)}:sts::{account}:user/moto"
    m = re.match(r"arn:([^:]+):sts::(\d+):assumed-role/([^/]+)/", arn)
    if m:
        return f"arn:{m.group(1)}:iam::{m.group(2)}:role/{m.group(3)}"
    m = re.match(r"arn:([^:]+):(?:sts|iam)::(\d+):user/(.+)$", arn)
    if m:
        return f"arn:{m.group(1)}:iam::{m.group(2)}:user/{m.group(3)}"
    return arn


# ---- EC2 -------------------------------------------------------------------------------------

def _ec2(account, region):
    return ec2_backends[account][region]


def subnets(account, region, ids):
    """{id: (vpc_id, availability_zone)} for the subnets that exist."""
    found = {}
    backend = _ec2(account, region)
    for sid in ids:
        try:
            s = backend.get_subnet(sid)
        except Exception:
            continue
        found[sid] = (s.vpc_id, s.availability_zone)
    return found


def _existing_ec2(account, region):
    """The EC2 backend of (account, region) if moto has made it, else None: a plain ``dict.get``
    creates nothing, where ``ec2_backends[account][region]`` would make a backend (with its
    default VPC) on first sight."""
    per_region = dict.get(ec2_backends, account)
    return dict.get(per_region, region) if per_region is not None else None


def subnet_zones(account, region, ids):
    """{id: availability zone} for the subnets that exist; reads only, creates nothing."""
    backend = _existing_ec2(account, region)
    if backend is None:
        return {}
    found = {}
    for sid in ids:
        try:
            found[sid] = backend.get_subnet(sid).availability_zone
        except Exception:
            continue
    return found


def launch_template_instance_type(account, region, spec):
    """The instance type set in the launch template version a node group uses (``spec``: its
    ``launchTemplate``, id or name plus optional version, default the template's default
    version), or None when there is none to be found; reads only."""
    backend = _existing_ec2(account, region)
    if backend is None or not spec:
        return None
    template_id = spec.get("id") or backend.launch_template_name_to_ids.get(spec.get("name") or "")
    template = backend.launch_templates.get(template_id or "")
    if template is None:
        return None
    try:
        version = template.get_version(spec.get("version") or "$Default")
    except Exception:
        return None
    return version.data.get("InstanceType") or None


def security_groups_missing(account, region, ids):
    backend = _ec2(account, region)
    return [g for g in ids if backend.get_security_group_from_id(g) is None]


def vpc_exists(account, region, vpc_id):
    try:
        return bool(_ec2(account, region).get_vpc(vpc_id))
    except Exception:
        return False


def create_security_group(account, region, vpc_id, name, description, tags):
    group = _ec2(account, region).create_security_group(
        name=name, description=description, vpc_id=vpc_id, tags=tags)
    return group.id


def allow_all_from_itself(account, region, group_id):
    """The inbound rule EKS gives the cluster security group (EKS user guide, "View Amazon EKS
    security group requirements for clusters": inbound all traffic from the group itself; the
    outbound all-to-0.0.0.0/0 rule is every new group's default)."""
    _ec2(account, region).authorize_security_group_ingress(
        group_name_or_id=group_id, ip_protocol="-1", from_port=None, to_port=None,
        ip_ranges=[], source_groups=[{"GroupId": group_id}])


def delete_security_group(account, region, group_id):
    try:
        _ec2(account, region).delete_security_group(group_id=group_id)
    except Exception:
        pass


def sync_gateway_endpoint_routes(account, region, endpoint_id, added, removed):
    """What EC2 does on ModifyVpcEndpoint and moto 5.2.5 skips: a gateway endpoint's route
    (destination: the service's prefix list, target: the endpoint) is added to each route
    table added to it, and taken out of each route table removed from it. Without it, moto's
    DeleteVpcEndpoints fails with InvalidRoute.NotFound on a table added later."""
    backend = _ec2(account, region)
    endpoint = backend.vpc_end_points.get(endpoint_id)
    prefix_list = getattr(endpoint, "destination_prefix_list_id", None) if endpoint else None
    if not prefix_list:
        return  # an interface endpoint, or a gateway with no prefix list: no routes
    for rt_id in added:
        if rt_id in endpoint.route_table_ids and not _has_route_to(backend, rt_id, prefix_list):
            backend.create_route(rt_id, None, gateway_id=endpoint_id,
                                 destination_prefix_list_id=prefix_list)
    for rt_id in removed:
        if rt_id not in endpoint.route_table_ids and _has_route_to(backend, rt_id, prefix_list):
            backend.delete_route(rt_id, None, destination_prefix_list_id=prefix_list)


def _has_route_to(backend, rt_id, prefix_list):
    table = backend.route_tables.get(rt_id)
    if table is None:
        return False
    return any(getattr(r, "destination_prefix_list", None) is not None
               and r.destination_prefix_list.id == prefix_list
               for r in table._routes.values())
