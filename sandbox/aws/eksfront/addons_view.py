"""The add-ons as the Kubernetes simulator needs them: ``GET /sandbox-api/addons``.

Owns: the read-only, cross-cluster listing of every EKS add-on the front holds (add-ons live
only in the front: ``addons``), as DescribeAddon would show it at this moment, with its
configuration values parsed. The Kubernetes API simulator (``sandbox/kube-sim``) polls it and
installs, changes and removes the workloads EKS installs for an ACTIVE add-on (the CoreDNS
Deployment; the kube-proxy, aws-node and pod identity agent DaemonSets).

Rules kept:
- read-only: statuses are computed from the clocks (``overlay.addon_status``) instead of running
  ``overlay.tick``; no front record is made, nothing is reaped and no moto backend is made
  (``motobridge.all_clusters``), so reading it changes nothing a later AWS call would see;
- status as DescribeAddon shows it now: CREATING until the add-on create hold passes, UPDATING
  while an update of it is InProgress, DELETING until the add-on delete hold passes, then absent
  (an add-on whose delete hold has passed is left out even before the next EKS call removes it);
  the add-ons of a cluster whose delete hold has passed, or that moto no longer holds, are left
  out too (the next EKS call drops them);
- an update shows at once (UpdateAddon writes version, role and configuration values when it is
  called; the add-on is UPDATING for the update hold), as DescribeAddon shows it;
- ``configurationValues``: the add-on's configuration values string parsed the way CreateAddon
  and UpdateAddon accept it (JSON, else YAML with PyYAML's safe loader, and it must be an
  object, ``addons.check_configuration``); ``null`` when the add-on has none, or when the string
  does not parse to a JSON object (``configurationValuesRaw`` still carries it);
  ``configurationValuesRaw``: the string exactly as given, ``null`` when none;
- ``serviceAccountRoleArn`` ``null`` when the add-on has none; ``namespace`` is where EKS
  installs the add-on's workloads (``kube-system`` unless ``namespaceConfig`` named another);
- every account and region the front holds add-ons in, ordered by cluster name, then add-on
  name, then account and region, so every call orders alike;
- ``createdAt`` / ``modifiedAt`` in epoch seconds, as the EKS API's timestamps (``wire``);
- not an AWS service: injected faults never apply (``app`` answers ``/sandbox-api/*`` before
  it looks at faults).
"""

import json
import math

import yaml

from . import motobridge, overlay


def addons(store):
    """``{"addons": [...]}``: every add-on of every cluster, as it is now."""
    rows = []
    with store.lock:
        for account, region, moto_cluster in motobridge.all_clusters():
            rec = store.peek(account, region, moto_cluster.name)
            if rec is None or rec.life.gone():
                continue  # no record: the front served no add-on for this cluster
            for addon in list(rec.addons.values()):
                if addon.life.gone():
                    continue
                rows.append(_row(account, region, rec, addon))
    rows.sort(key=lambda r: (r["cluster"], r["addonName"], r["account"], r["region"]))
    return {"addons": rows}


def _row(account, region, rec, addon):
    raw = addon.configuration_values
    return {
        "cluster": rec.name,
        "addonName": addon.name,
        "account": account,
        "region": region,
        "status": overlay.addon_status(rec, addon),
        "addonVersion": addon.version,
        "configurationValues": parse_configuration(raw),
        "configurationValuesRaw": raw,
        "serviceAccountRoleArn": addon.service_account_role_arn or None,
        "namespace": addon.namespace,
        "addonArn": addon.arn,
        "createdAt": addon.created_at,
        "modifiedAt": addon.modified_at,
    }


def parse_configuration(raw):
    """The configuration values string as a JSON object (JSON first, then YAML, as
    ``addons.check_configuration`` reads it), or None when there is none or it is not one."""
    if raw is None or not raw.strip():
        return None
    try:
        doc = json.loads(raw)
    except ValueError:
        try:
            doc = yaml.safe_load(raw)
        except yaml.YAMLError:
            return None
    if not isinstance(doc, dict) or not _json_safe(doc):
        return None
    return doc


def _json_safe(value):
    """True when ``value`` is plain JSON (YAML can yield dates, sets, non-string keys, NaN)."""
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_json_safe(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_safe(v) for k, v in value.items())
    return False
