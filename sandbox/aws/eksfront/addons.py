"""EKS add-ons (served entirely by the front).

Owns: CreateAddon, DescribeAddon, ListAddons, UpdateAddon, DeleteAddon,
DescribeAddonVersions and DescribeAddonConfiguration.

Rules kept:
- the cluster must exist (ResourceNotFoundException) and be ACTIVE or UPDATING to take a new
  add-on (InvalidRequestException); one add-on per name per cluster (ResourceInUseException);
- the add-on and its version must be in the catalogue for the cluster's Kubernetes version
  (InvalidParameterException); without addonVersion the catalogue's default for that version is
  installed; UpdateAddon never goes to an older version;
- configurationValues (JSON or YAML) must be an object valid against the add-on's configuration
  schema (the one DescribeAddonConfiguration returns); "" clears it;
- serviceAccountRoleArn and podIdentityAssociations role ARNs must be IAM role ARNs (and exist,
  with ``check_dependencies``); podIdentityAssociations may only name the service accounts the
  add-on declares (vpc-cni: aws-node) and become pod identity associations owned by the add-on
  (``ownerArn``) in its namespace; on UpdateAddon the list given replaces the add-on's
  associations (an empty list removes them, leaving it out changes nothing);
- status: CREATING for the add-on create hold, UPDATING while its update is InProgress,
  DELETING for the add-on delete hold, then gone (with its associations); Create/Delete answer
  CREATING/DELETING, UpdateAddon answers an InProgress AddonUpdate that DescribeUpdate and
  ListUpdates (with addonName) find; updating or deleting an add-on that is not settled is
  refused.
"""

import json

import jsonschema
import yaml

from . import catalogue, clusters, overlay, podidentity
from .errors import in_use, invalid_parameter, invalid_request, not_found
from .replies import Reply
from .store import Life, Update
from .wire import check_tags, new_uuid, now, page, with_token


class Addon:
    def __init__(self, cluster, name, arn, version, namespace, namespace_set, create_hold):
        self.cluster = cluster
        self.name = name
        self.arn = arn
        self.version = version
        self.namespace = namespace
        self.namespace_set = namespace_set
        self.service_account_role_arn = None
        self.configuration_values = None
        self.tags = {}
        self.created_at = self.modified_at = now()
        self.life = Life(create_hold)

    def wire(self, rec, status=None):
        doc = {
            "addonName": self.name,
            "clusterName": self.cluster,
            "status": status or overlay.addon_status(rec, self),
            "addonVersion": self.version,
            "health": {"issues": []},
            "addonArn": self.arn,
            "createdAt": self.created_at,
            "modifiedAt": self.modified_at,
            "tags": dict(self.tags),
            "publisher": "eks",
            "owner": "aws",
            "podIdentityAssociations": sorted(
                a.arn for a in rec.pod_identities.values() if a.owner_arn == self.arn),
        }
        if self.service_account_role_arn:
            doc["serviceAccountRoleArn"] = self.service_account_role_arn
        if self.configuration_values:
            doc["configurationValues"] = self.configuration_values
        if self.namespace_set:
            doc["namespaceConfig"] = {"namespace": self.namespace}
        return doc


def _ids(rec, name):
    return dict(clusterName=rec.name, addonName=name)


def _find(ctx):
    cluster_name = ctx.params.get("clusterName")
    moto_cluster, rec = clusters.find(ctx, cluster_name)
    name = ctx.params.get("addonName")
    addon = rec.addons.get(name)
    if addon is None:
        raise not_found(f"No addon: {name} found in cluster: {cluster_name}",
                        clusterName=cluster_name, addonName=name)
    return moto_cluster, rec, addon


def check_configuration(name, values, ids):
    """Parse and validate configurationValues; return the string to keep (None to clear)."""
    if values is None or values.strip() == "":
        return None
    try:
        doc = json.loads(values)
    except ValueError:
        try:
            doc = yaml.safe_load(values)
        except yaml.YAMLError as err:
            raise invalid_parameter(f"ConfigurationValue provided in request is not valid JSON or YAML: {err}", **ids)
    if not isinstance(doc, dict):
        raise invalid_parameter("ConfigurationValue provided in request is not supported: it must be an object", **ids)
    validator = jsonschema.Draft7Validator(catalogue.SCHEMAS[name])
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    if errors:
        where = "$" + "".join(f".{p}" if isinstance(p, str) else f"[{p}]" for p in errors[0].path)
        raise invalid_parameter(
            "ConfigurationValue provided in request is not supported: Json schema validation failed "
            f"with error: [{where}: {errors[0].message}]", **ids)
    return values


def _check_version(name, version, k8s, ids):
    if version not in [v for v, _, _ in catalogue.addon_versions(name, k8s)]:
        raise invalid_parameter(f"Addon version specified is not supported, addon: {name}, version: "
                                f"{version}, kubernetes version: {k8s}", **ids)


def _check_pod_identities(ctx, rec, name, wanted, ids, owner_arn=None):
    if wanted is None:
        return []
    if not isinstance(wanted, list):
        raise invalid_parameter("podIdentityAssociations must be a list", **ids)
    allowed = {p["serviceAccount"] for p in catalogue.ADDONS[name]["podIdentity"]}
    seen = set()
    for item in wanted:
        sa = (item or {}).get("serviceAccount")
        if sa not in allowed:
            raise invalid_parameter(f"Service account {sa!r} is not supported by add-on {name} for "
                                    f"pod identity (supported: {sorted(allowed)})", **ids)
        if sa in seen:
            raise invalid_parameter(f"Service account {sa} is listed twice", **ids)
        seen.add(sa)
        podidentity.check_role(ctx, item.get("roleArn"), "roleArn", rec.name)
    return wanted


def _sync_pod_identities(ctx, rec, addon, wanted):
    """Make the add-on's owned associations match ``wanted`` ([{serviceAccount, roleArn}])."""
    owned = {a.service_account: a for a in rec.pod_identities.values() if a.owner_arn == addon.arn}
    want = {w["serviceAccount"]: w["roleArn"] for w in wanted}
    for sa, assoc in owned.items():
        if sa not in want:
            rec.pod_identities.pop(assoc.id, None)
        elif assoc.role_arn != want[sa]:
            assoc.role_arn = want[sa]
            assoc.modified_at = now()
    for sa, role in want.items():
        if sa not in owned:
            podidentity.check_unused(rec, addon.namespace, sa)
            podidentity.make(ctx, rec, addon.namespace, sa, role, owner_arn=addon.arn)


def create_addon(ctx):
    cluster_name = ctx.params.get("clusterName")
    moto_cluster, rec = clusters.usable(ctx, cluster_name)
    body = ctx.body
    name = body.get("addonName") or ""
    ids = _ids(rec, name)
    k8s = moto_cluster.version
    if name not in catalogue.ADDONS or not catalogue.addon_versions(name, k8s):
        raise invalid_parameter(f"Addon {name} specified is not supported in {k8s} kubernetes version", **ids)
    if name in rec.addons:
        raise in_use("Addon already exists.", **ids)
    version = body.get("addonVersion") or catalogue.default_addon_version(name, k8s)
    _check_version(name, version, k8s, ids)
    config = check_configuration(name, body.get("configurationValues"), ids)
    if body.get("serviceAccountRoleArn"):
        podidentity.check_role(ctx, body["serviceAccountRoleArn"], "roleArn", rec.name)
    wanted = _check_pod_identities(ctx, rec, name, body.get("podIdentityAssociations"), ids)
    ns_cfg = body.get("namespaceConfig") or {}
    namespace = ns_cfg.get("namespace") or "kube-system"
    if not podidentity.NAMESPACE.match(namespace):
        raise invalid_parameter(f"Invalid namespace {namespace!r}", **ids)
    for w in wanted:
        podidentity.check_unused(rec, namespace, w["serviceAccount"])
    tags = check_tags(body.get("tags"), **ids)

    addon = Addon(rec.name, name, ctx.arn(f"addon/{rec.name}/{name}/{new_uuid()}"), version, namespace,
                  bool(ns_cfg.get("namespace")), ctx.config.hold("addon", "create"))
    addon.configuration_values = config
    addon.service_account_role_arn = body.get("serviceAccountRoleArn") or None
    addon.tags = tags
    rec.addons[name] = addon
    _sync_pod_identities(ctx, rec, addon, wanted)
    return Reply({"addon": addon.wire(rec, status="CREATING")})


def describe_addon(ctx):
    _, rec, addon = _find(ctx)
    return Reply({"addon": addon.wire(rec)})


def list_addons(ctx):
    _, rec = clusters.find(ctx, ctx.params.get("clusterName"))
    chunk, token = page(sorted(rec.addons), ctx.params)
    return Reply(with_token({"addons": chunk}, token))


def update_addon(ctx):
    moto_cluster, rec, addon = _find(ctx)
    ids = _ids(rec, addon.name)
    status = overlay.addon_status(rec, addon)
    if status not in ("ACTIVE", "DEGRADED"):
        raise in_use(f"Addon {addon.name} is in {status} state and can't be updated now", **ids)
    body = ctx.body
    k8s = moto_cluster.version
    params = []
    new_version = body.get("addonVersion")
    if new_version:
        _check_version(addon.name, new_version, k8s, ids)
        if catalogue.addon_version_key(new_version) < catalogue.addon_version_key(addon.version):
            raise invalid_parameter(f"Updating add-on {addon.name} from {addon.version} to the older "
                                    f"version {new_version} is not supported", **ids)
    config = addon.configuration_values
    if "configurationValues" in body:
        config = check_configuration(addon.name, body["configurationValues"], ids)
    if body.get("serviceAccountRoleArn"):
        podidentity.check_role(ctx, body["serviceAccountRoleArn"], "roleArn", rec.name)
    wanted = None
    if body.get("podIdentityAssociations") is not None:
        wanted = _check_pod_identities(ctx, rec, addon.name, body["podIdentityAssociations"], ids)
        owned = {a.service_account for a in rec.pod_identities.values() if a.owner_arn == addon.arn}
        for w in wanted:
            if w["serviceAccount"] not in owned:
                podidentity.check_unused(rec, addon.namespace, w["serviceAccount"])

    if new_version:
        addon.version = new_version
        params.append({"type": "AddonVersion", "value": new_version})
    if "serviceAccountRoleArn" in body:
        addon.service_account_role_arn = body["serviceAccountRoleArn"] or None
        params.append({"type": "ServiceAccountRoleArn", "value": body["serviceAccountRoleArn"] or ""})
    if body.get("resolveConflicts"):
        params.append({"type": "ResolveConflicts", "value": body["resolveConflicts"]})
    if "configurationValues" in body:
        addon.configuration_values = config
        params.append({"type": "ConfigurationValues", "value": body["configurationValues"] or ""})
    if wanted is not None:
        _sync_pod_identities(ctx, rec, addon, wanted)
        params.append({"type": "PodIdentityAssociations",
                       "value": json.dumps([{"serviceAccount": w["serviceAccount"], "roleArn": w["roleArn"]}
                                            for w in wanted])})
    addon.modified_at = now()
    update = Update(new_uuid(), "AddonUpdate", params, ctx.config.hold("addon", "update"),
                    target=("addon", addon.name))
    rec.updates.append(update)
    return Reply({"update": update.wire(status="InProgress")})


def delete_addon(ctx):
    _, rec, addon = _find(ctx)
    ids = _ids(rec, addon.name)
    if addon.life.deleting:
        raise invalid_request(f"Addon {addon.name} is already being deleted", **ids)
    if rec.busy(("addon", addon.name)):
        raise invalid_request(f"Addon {addon.name} has an update in progress", **ids)
    addon.life.start_delete(ctx.config.hold("addon", "delete"))
    return Reply({"addon": addon.wire(rec, status="DELETING")})


def describe_addon_versions(ctx):
    p = ctx.params
    k8s = p.get("kubernetesVersion")
    names = sorted(catalogue.ADDONS)
    if p.get("addonName"):
        names = [n for n in names if n == p["addonName"]]
    if p.get("types"):
        names = [n for n in names if catalogue.ADDONS[n]["type"] in p["types"]]
    if p.get("publishers") and "eks" not in p["publishers"]:
        names = []
    if p.get("owners") and "aws" not in p["owners"]:
        names = []
    infos = [i for i in (catalogue.addon_info(n, k8s) for n in names) if i]
    chunk, token = page(infos, p)
    return Reply(with_token({"addons": chunk}, token))


def describe_addon_configuration(ctx):
    name, version = ctx.params.get("addonName"), ctx.params.get("addonVersion")
    if name not in catalogue.ADDONS:
        raise invalid_parameter(f"Addon {name} specified is not supported", addonName=name)
    if version not in [v for v, _, _ in catalogue.addon_versions(name)]:
        raise invalid_parameter(f"Addon version {version} specified is not supported for {name}",
                                addonName=name)
    return Reply({
        "addonName": name,
        "addonVersion": version,
        "configurationSchema": catalogue.configuration_schema(name),
        "podIdentityConfiguration": [dict(p) for p in catalogue.ADDONS[name]["podIdentity"]],
    })


HANDLERS = {
    "CreateAddon": create_addon,
    "DescribeAddon": describe_addon,
    "ListAddons": list_addons,
    "UpdateAddon": update_addon,
    "DeleteAddon": delete_addon,
    "DescribeAddonVersions": describe_addon_versions,
    "DescribeAddonConfiguration": describe_addon_configuration,
}
