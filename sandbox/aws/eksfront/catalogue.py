"""Static catalogue of what this emulated EKS offers.

Owns: the Kubernetes versions accepted (and the default) with their support calendar,
platform and AMI release versions,
the add-on catalogue (vpc-cni, kube-proxy, coredns, eks-pod-identity-agent) per Kubernetes
version with its default versions, each add-on's configuration JSON schema and pod identity
service accounts, and the EKS access policies.

Rules kept:
- version strings follow the real formats (``v1.20.4-eksbuild.2``, ``1.35.1-20261118``,
  ``eks.N``, ``arn:aws:eks::aws:cluster-access-policy/NAME``);
- exactly one default add-on version per (add-on, Kubernetes version);
- the versions are realistic, not a copy of AWS's current list: tests should depend on the shape
  and the rules (default exists, newer is newer), not on exact numbers.
"""

import json
import re

KUBERNETES_VERSIONS = ["1.31", "1.32", "1.33", "1.34", "1.35"]
DEFAULT_KUBERNETES_VERSION = "1.35"

_PATCH = {"1.31": 13, "1.32": 10, "1.33": 6, "1.34": 3, "1.35": 1}
_PLATFORM = {"1.31": 28, "1.32": 21, "1.33": 15, "1.34": 9, "1.35": 4}
# version -> (release, end of standard support, end of extended support), UTC dates; an
# approximation of the EKS calendar (14 months standard + 12 months extended support).
_CALENDAR = {
    "1.31": ("2024-09-26", "2025-11-26", "2026-11-26"),
    "1.32": ("2025-01-23", "2026-03-23", "2027-03-23"),
    "1.33": ("2025-05-29", "2026-07-29", "2027-07-29"),
    "1.34": ("2025-10-02", "2026-12-02", "2027-12-02"),
    "1.35": ("2026-01-27", "2027-03-27", "2028-03-27"),
}
AMI_RELEASE_DATE = "20261118"


def platform_version(k8s):
    return f"eks.{_PLATFORM.get(k8s, 1)}"


def release_version(k8s):
    """Latest AMI release version for node groups on ``k8s``."""
    return f"{k8s}.{_PATCH.get(k8s, 0)}-{AMI_RELEASE_DATE}"


def _epoch(day):
    import datetime
    return datetime.datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=datetime.timezone.utc).timestamp()


def cluster_versions(today=None):
    """DescribeClusterVersions entries (``ClusterVersionInformation``), newest first."""
    import time
    today = time.time() if today is None else today
    out = []
    for k8s in sorted(KUBERNETES_VERSIONS, key=minor, reverse=True):
        release, std_end, ext_end = (_epoch(d) for d in _CALENDAR[k8s])
        if today < std_end:
            status, version_status = "standard-support", "STANDARD_SUPPORT"
        elif today < ext_end:
            status, version_status = "extended-support", "EXTENDED_SUPPORT"
        else:
            status, version_status = "unsupported", "UNSUPPORTED"
        out.append({
            "clusterVersion": k8s,
            "clusterType": "eks",
            "defaultPlatformVersion": platform_version(k8s),
            "defaultVersion": k8s == DEFAULT_KUBERNETES_VERSION,
            "releaseDate": release,
            "endOfStandardSupportDate": std_end,
            "endOfExtendedSupportDate": ext_end,
            "status": status,
            "versionStatus": version_status,
            "kubernetesPatchVersion": f"{k8s}.{_PATCH[k8s]}",
        })
    return out


def minor(k8s):
    m = re.fullmatch(r"1\.(\d+)", k8s or "")
    return int(m.group(1)) if m else None


# ---- add-ons ---------------------------------------------------------------------------------

def _all(*exclude):
    return [v for v in KUBERNETES_VERSIONS if v not in exclude]


def _kube_proxy_versions():
    out = []
    for k in KUBERNETES_VERSIONS:
        p = _PATCH[k]
        out.append((f"v{k}.{max(p - 1, 0)}-eksbuild.3", [k], [k]))
        out.append((f"v{k}.{p}-eksbuild.1", [k], []))
    return out


# addon name -> dict(type, service accounts for pod identity, versions: [(version, k8s, default_for)])
ADDONS = {
    "vpc-cni": {
        "type": "networking",
        "requiresIamPermissions": True,
        "podIdentity": [{"serviceAccount": "aws-node",
                         "recommendedManagedPolicies": ["arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"]}],
        "versions": [
            ("v1.19.6-eksbuild.7", _all(), []),
            ("v1.20.4-eksbuild.2", _all(), ["1.31", "1.32", "1.33"]),
            ("v1.21.1-eksbuild.1", _all(), ["1.34", "1.35"]),
        ],
    },
    "kube-proxy": {
        "type": "networking",
        "requiresIamPermissions": False,
        "podIdentity": [],
        "versions": _kube_proxy_versions(),
    },
    "coredns": {
        "type": "networking",
        "requiresIamPermissions": False,
        "podIdentity": [],
        "versions": [
            ("v1.11.4-eksbuild.14", ["1.31", "1.32"], ["1.31", "1.32"]),
            ("v1.12.1-eksbuild.2", ["1.31", "1.32", "1.33", "1.34", "1.35"], ["1.33"]),
            ("v1.12.4-eksbuild.1", ["1.33", "1.34", "1.35"], ["1.34", "1.35"]),
            ("v1.13.1-eksbuild.1", ["1.34", "1.35"], []),
        ],
    },
    "eks-pod-identity-agent": {
        "type": "security",
        "requiresIamPermissions": False,
        "podIdentity": [],
        "versions": [
            ("v1.3.8-eksbuild.2", _all(), ["1.31", "1.32", "1.33"]),
            ("v1.3.10-eksbuild.1", _all(), ["1.34", "1.35"]),
        ],
    },
}


def addon_version_key(version):
    """Sort key: v1.20.4-eksbuild.2 -> (1, 20, 4, 2)."""
    nums = [int(n) for n in re.findall(r"\d+", version)]
    return tuple(nums)


def addon_versions(name, k8s=None):
    """[(version, k8s list, default_for list)] newest first, limited to ``k8s`` when given."""
    entry = ADDONS.get(name)
    if not entry:
        return []
    rows = [r for r in entry["versions"] if k8s is None or k8s in r[1]]
    return sorted(rows, key=lambda r: addon_version_key(r[0]), reverse=True)


def default_addon_version(name, k8s):
    for version, _, default_for in addon_versions(name, k8s):
        if k8s in default_for:
            return version
    rows = addon_versions(name, k8s)
    return rows[0][0] if rows else None


def addon_info(name, k8s=None):
    """One DescribeAddonVersions ``AddonInfo`` entry (or None when nothing matches)."""
    entry = ADDONS[name]
    infos = []
    for version, clusters, default_for in addon_versions(name, k8s):
        shown = [k8s] if k8s else clusters
        infos.append({
            "addonVersion": version,
            "architecture": ["amd64", "arm64"],
            "computeTypes": ["ec2", "hybrid"] if name != "coredns" else ["ec2", "fargate", "hybrid"],
            "compatibilities": [
                {"clusterVersion": c, "platformVersions": ["*"], "defaultVersion": c in default_for}
                for c in sorted(shown, key=minor, reverse=True)
            ],
            "requiresConfiguration": False,
            "requiresIamPermissions": entry["requiresIamPermissions"],
        })
    if not infos:
        return None
    return {
        "addonName": name,
        "type": entry["type"],
        "addonVersions": infos,
        "publisher": "eks",
        "owner": "aws",
        "defaultNamespace": "kube-system",
    }


# ---- configuration schemas -------------------------------------------------------------------

_K8S_DEFS = {
    "Resources": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "limits": {"$ref": "#/definitions/Quantities"},
            "requests": {"$ref": "#/definitions/Quantities"},
        },
    },
    "Quantities": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"cpu": {"type": ["string", "number"]}, "memory": {"type": "string"}},
    },
    "Tolerations": {
        "type": "array",
        "items": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "key": {"type": "string"},
                "operator": {"type": "string", "enum": ["Exists", "Equal"]},
                "value": {"type": "string"},
                "effect": {"type": "string", "enum": ["NoSchedule", "PreferNoSchedule", "NoExecute"]},
                "tolerationSeconds": {"type": "integer"},
            },
        },
    },
    "StringMap": {"type": "object", "additionalProperties": {"type": "string"}},
    "Affinity": {"type": ["object", "null"]},
    "TopologySpreadConstraints": {"type": "array", "items": {"type": "object"}},
}


def _schema(title, properties):
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$ref": f"#/definitions/{title}",
        "definitions": dict(_K8S_DEFS, **{title: {
            "type": "object",
            "additionalProperties": False,
            "properties": properties,
            "title": title,
        }}),
    }


_COMMON = {
    "affinity": {"$ref": "#/definitions/Affinity"},
    "nodeSelector": {"$ref": "#/definitions/StringMap"},
    "podAnnotations": {"$ref": "#/definitions/StringMap"},
    "podLabels": {"$ref": "#/definitions/StringMap"},
    "priorityClassName": {"type": "string"},
    "resources": {"$ref": "#/definitions/Resources"},
    "tolerations": {"$ref": "#/definitions/Tolerations"},
}

SCHEMAS = {
    "coredns": _schema("Coredns", dict(_COMMON, **{
        "replicaCount": {"type": "integer", "minimum": 1},
        "corefile": {"type": "string"},
        "autoScaling": {
            "type": "object", "additionalProperties": False,
            "properties": {"enabled": {"type": "boolean"}, "minReplicas": {"type": "integer"},
                           "maxReplicas": {"type": "integer"}},
        },
        "podDisruptionBudget": {
            "type": "object", "additionalProperties": False,
            "properties": {"enabled": {"type": "boolean"}, "maxUnavailable": {"type": ["integer", "string"]},
                           "minAvailable": {"type": ["integer", "string"]}},
        },
        "topologySpreadConstraints": {"$ref": "#/definitions/TopologySpreadConstraints"},
    })),
    "vpc-cni": _schema("VpcCni", dict(_COMMON, **{
        "env": {"type": "object", "additionalProperties": False,
                "patternProperties": {"^[A-Z][A-Z0-9_]*$": {"type": "string"}}},
        "init": {"type": "object", "properties": {"env": {"$ref": "#/definitions/StringMap"}}},
        "nodeAgent": {"type": "object", "properties": {
            "enablePolicyEventLogs": {"type": "string"}, "enableCloudWatchLogs": {"type": "string"},
            "healthProbeBindAddr": {"type": "string"}, "metricsBindAddr": {"type": "string"}}},
        "enableNetworkPolicy": {"type": "string", "enum": ["true", "false"]},
        "enableWindowsIpam": {"type": "string", "enum": ["true", "false"]},
        "enableWindowsPrefixDelegation": {"type": "string", "enum": ["true", "false"]},
        "eniConfig": {"type": "object"},
        "livenessProbeTimeoutSeconds": {"type": "integer", "minimum": 1},
        "readinessProbeTimeoutSeconds": {"type": "integer", "minimum": 1},
    })),
    "kube-proxy": _schema("KubeProxy", dict(_COMMON, **{
        "image": {"type": "object", "properties": {"repository": {"type": "string"}, "tag": {"type": "string"}}},
        "ipvs": {"type": "object", "properties": {"scheduler": {"type": "string"}}},
        "mode": {"type": "string", "enum": ["iptables", "ipvs", "nftables"]},
    })),
    "eks-pod-identity-agent": _schema("EksPodIdentityAgent", dict(_COMMON, **{
        "agent": {"type": "object", "properties": {
            "additionalArgs": {"$ref": "#/definitions/StringMap"}}},
        "updateStrategy": {"type": "object"},
    })),
}


def configuration_schema(name):
    return json.dumps(SCHEMAS[name])


# ---- access policies -------------------------------------------------------------------------

ACCESS_POLICY_NAMES = [
    "AmazonEKSAdminPolicy",
    "AmazonEKSAdminViewPolicy",
    "AmazonEKSAutoNodePolicy",
    "AmazonEKSBlockStorageClusterPolicy",
    "AmazonEKSBlockStoragePolicy",
    "AmazonEKSClusterAdminPolicy",
    "AmazonEKSComputeClusterPolicy",
    "AmazonEKSComputePolicy",
    "AmazonEKSEditPolicy",
    "AmazonEKSHybridPolicy",
    "AmazonEKSLoadBalancingClusterPolicy",
    "AmazonEKSLoadBalancingPolicy",
    "AmazonEKSNetworkingClusterPolicy",
    "AmazonEKSNetworkingPolicy",
    "AmazonEKSViewPolicy",
    "AmazonEMRJobPolicy",
]


def access_policy_arn(name, part="aws"):
    return f"arn:{part}:eks::aws:cluster-access-policy/{name}"


def access_policies(part="aws"):
    return [{"name": n, "arn": access_policy_arn(n, part)} for n in ACCESS_POLICY_NAMES]
