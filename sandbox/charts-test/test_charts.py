"""spar's sandbox stand-in charts (sandbox/charts/*), rendered through sandbox/helm/helm-template.

Each chart is rendered with the values the flagship stack gives it (see
/work/shared/reference/dagger-on-eks.md sections 4-6) and the rendered objects are checked:
kinds, names, namespaces, the values reaching the right fields, and the values the upstream
chart requires failing when missing. Renders are cached per argument list (about 0.25 s each).
"""

import functools
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
TOOL = ROOT / "sandbox" / "helm" / "helm-template"
CHARTS = ROOT / "sandbox" / "charts"

MANAGED_BY = "spar-sandbox-chart"
CRITICAL = [{"key": "CriticalAddonsOnly", "operator": "Exists"}]
NAMESPACED = {"ServiceAccount", "Secret", "Service", "Deployment", "Role", "RoleBinding",
              "AutoscalingRunnerSet", "Issuer", "Certificate"}
CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}


def run(release, chart, namespace, values=None, *flags):
    cmd = [str(TOOL), "template", release, str(CHARTS / chart), "--namespace", namespace, *flags]
    if values is not None:
        cmd += ["--values", "-"]
    return subprocess.run(cmd, input=yaml.safe_dump(values) if values is not None else None,
                          capture_output=True, text=True, timeout=60)


@functools.lru_cache(maxsize=None)
def _render(release, chart, namespace, values_yaml, flags):
    proc = run(release, chart, namespace, yaml.safe_load(values_yaml), *flags)
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def render(release, chart, namespace, values, *flags):
    return _render(release, chart, namespace, yaml.safe_dump(values), tuple(flags))


def fails(release, chart, namespace, values):
    proc = run(release, chart, namespace, values)
    assert proc.returncode != 0, f"rendering should have failed:\n{proc.stdout}"
    return proc.stderr


def by_kind(docs):
    out = {}
    for d in docs:
        out.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    return out


def check_common(docs, release, namespace, chart_name=None):
    """Every templated object: our managed-by label, the release as instance, the release
    namespace on namespaced kinds and none on cluster-scoped ones."""
    for d in docs:
        meta = d["metadata"]
        kind = d["kind"]
        labels = meta.get("labels") or {}
        assert labels.get("app.kubernetes.io/managed-by") == MANAGED_BY, (kind, meta["name"])
        assert "app.kubernetes.io/name" in labels, (kind, meta["name"])
        if kind != "CustomResourceDefinition" or "app.kubernetes.io/instance" in labels:
            assert labels.get("app.kubernetes.io/instance") == release, (kind, meta["name"])
        if kind in NAMESPACED:
            assert meta.get("namespace") == namespace, (kind, meta["name"])
        elif kind in CLUSTER_SCOPED:
            assert "namespace" not in meta, (kind, meta["name"])
        else:
            pytest.fail(f"unexpected kind {kind}")


def crd_schema(crd, version="v1"):
    (ver,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    assert ver["served"] and ver["storage"]
    assert "status" in ver["subresources"]
    return ver["schema"]["openAPIV3Schema"]


def at(schema, path):
    """The sub-schema at a dotted path; `[]` steps into array items."""
    node = schema
    for part in path.split("."):
        if part == "[]":
            node = node["items"]
        else:
            node = node["properties"][part]
    return node


def walk(node, path=""):
    yield path, node
    for k, v in (node.get("properties") or {}).items():
        yield from walk(v, f"{path}.{k}")
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")


def container(deployment, name):
    (c,) = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == name]
    return c


def env(c):
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}


def chart_yaml(name):
    return yaml.safe_load((CHARTS / name / "Chart.yaml").read_text())


@pytest.mark.parametrize("name,version", [
    ("karpenter", "1.14.1"), ("cert-manager", "v1.21.1"),
    ("gha-runner-scale-set-controller", "0.14.2"), ("gha-runner-scale-set", "0.14.2"),
    ("actions-runner-controller", "0.23.7")])
def test_chart_metadata(name, version):
    meta = chart_yaml(name)
    assert meta["apiVersion"] == "v2"
    assert meta["name"] == name
    assert str(meta["version"]) == version
    assert "stand-in" in meta["description"] and "subset" in meta["description"]


# ---------------------------------------------------------------- karpenter

KARPENTER_VALUES = {
    "settings": {"clusterName": "dagger-ci", "interruptionQueue": "dagger-ci-interruptions"},
    "serviceAccount": {"annotations": {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/KarpenterController"}},
    "nodeSelector": {"karpenter.sh/controller": "true"},
    "controller": {"resources": {"requests": {"cpu": "500m", "memory": "512Mi"}}},
}


def test_karpenter_objects_and_values():
    docs = render("karpenter", "karpenter", "kube-system", KARPENTER_VALUES, "--include-crds")
    objs = by_kind(docs)
    assert set(objs) == {"CustomResourceDefinition", "ServiceAccount", "ClusterRole",
                         "ClusterRoleBinding", "Deployment"}
    assert set(objs["CustomResourceDefinition"]) == {
        "nodepools.karpenter.sh", "nodeclaims.karpenter.sh", "ec2nodeclasses.karpenter.k8s.aws"}
    check_common(docs, "karpenter", "kube-system")
    sa = objs["ServiceAccount"]["karpenter"]
    assert sa["metadata"]["annotations"] == KARPENTER_VALUES["serviceAccount"]["annotations"]
    binding = objs["ClusterRoleBinding"]["karpenter"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "karpenter",
                                    "namespace": "kube-system"}]
    assert binding["roleRef"]["name"] in objs["ClusterRole"]
    dep = objs["Deployment"]["karpenter"]
    spec = dep["spec"]["template"]["spec"]
    assert dep["spec"]["replicas"] == 2
    assert spec["serviceAccountName"] == "karpenter"
    assert spec["nodeSelector"] == {"karpenter.sh/controller": "true"}
    assert spec["tolerations"] == CRITICAL
    c = container(dep, "controller")
    assert c["image"] == "public.ecr.aws/karpenter/controller:1.14.1"
    assert env(c)["CLUSTER_NAME"] == "dagger-ci"
    assert env(c)["INTERRUPTION_QUEUE"] == "dagger-ci-interruptions"
    assert c["resources"] == {"requests": {"cpu": "500m", "memory": "512Mi"}}
    # Default affinity as upstream: not on Karpenter's own nodes, one replica per host (the
    # anti-affinity term gets the chart's selector labels).
    aff = spec["affinity"]
    assert aff["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"] == [{"matchExpressions": [
            {"key": "karpenter.sh/nodepool", "operator": "DoesNotExist"}]}]
    (term,) = aff["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= \
        dep["spec"]["template"]["metadata"]["labels"].items()


def test_karpenter_overrides():
    values = {"settings": {"clusterName": "c1"}, "replicas": 1, "tolerations": [],
              "serviceAccount": {"create": False, "name": "existing"},
              "affinity": None,  # null removes the default (an empty map would merge with it)
              "controller": {"image": {"tag": "1.14.0"}}}
    objs = by_kind(render("kp", "karpenter", "karpenter", values))
    assert "ServiceAccount" not in objs
    (dep,) = objs["Deployment"].values()
    spec = dep["spec"]["template"]["spec"]
    assert dep["spec"]["replicas"] == 1
    assert spec["serviceAccountName"] == "existing"
    assert "tolerations" not in spec and "affinity" not in spec
    c = container(dep, "controller")
    assert c["image"] == "public.ecr.aws/karpenter/controller:1.14.0"
    assert "INTERRUPTION_QUEUE" not in env(c)


def test_karpenter_requires_cluster_name():
    assert "settings.clusterName is required" in fails("karpenter", "karpenter", "kube-system", {})


def test_karpenter_crd_schemas():
    crds = by_kind(render("karpenter", "karpenter", "kube-system", KARPENTER_VALUES,
                          "--include-crds"))["CustomResourceDefinition"]
    pool = crds["nodepools.karpenter.sh"]
    assert pool["spec"]["group"] == "karpenter.sh" and pool["spec"]["scope"] == "Cluster"
    assert pool["spec"]["names"]["kind"] == "NodePool"
    s = crd_schema(pool)
    for path in ["spec.template.metadata.labels", "spec.template.metadata.annotations",
                 "spec.template.spec.nodeClassRef.group", "spec.template.spec.nodeClassRef.kind",
                 "spec.template.spec.nodeClassRef.name",
                 "spec.template.spec.taints.[].key", "spec.template.spec.taints.[].value",
                 "spec.template.spec.taints.[].effect", "spec.template.spec.startupTaints",
                 "spec.template.spec.requirements.[].key",
                 "spec.template.spec.requirements.[].operator",
                 "spec.template.spec.requirements.[].values.[]",
                 "spec.template.spec.requirements.[].minValues",
                 "spec.disruption.consolidateAfter", "spec.disruption.budgets", "spec.weight"]:
        at(s, path)
    assert at(s, "spec.template.spec.expireAfter")["type"] == "string"
    assert at(s, "spec.template.spec.terminationGracePeriod")["type"] == "string"
    assert at(s, "spec.disruption.consolidationPolicy")["enum"] == [
        "WhenEmpty", "WhenEmptyOrUnderutilized"]
    limits = at(s, "spec.limits")
    assert limits["type"] == "object"
    assert limits["additionalProperties"]["x-kubernetes-int-or-string"] is True

    claim = crds["nodeclaims.karpenter.sh"]
    assert claim["spec"]["names"]["kind"] == "NodeClaim"
    assert claim["spec"]["scope"] == "Cluster"

    nc = crds["ec2nodeclasses.karpenter.k8s.aws"]
    assert nc["spec"]["group"] == "karpenter.k8s.aws" and nc["spec"]["scope"] == "Cluster"
    assert nc["spec"]["names"]["kind"] == "EC2NodeClass"
    s = crd_schema(nc)
    for path in ["spec.role", "spec.instanceProfile", "spec.amiFamily",
                 "spec.amiSelectorTerms.[].alias", "spec.amiSelectorTerms.[].id",
                 "spec.amiSelectorTerms.[].name", "spec.amiSelectorTerms.[].owner",
                 "spec.amiSelectorTerms.[].tags", "spec.subnetSelectorTerms.[].id",
                 "spec.securityGroupSelectorTerms.[].tags", "spec.securityGroupSelectorTerms.[].id",
                 "spec.securityGroupSelectorTerms.[].name",
                 "spec.blockDeviceMappings.[].deviceName", "spec.blockDeviceMappings.[].rootVolume",
                 "spec.blockDeviceMappings.[].ebs.volumeType",
                 "spec.blockDeviceMappings.[].ebs.encrypted",
                 "spec.blockDeviceMappings.[].ebs.deleteOnTermination",
                 "spec.blockDeviceMappings.[].ebs.iops", "spec.blockDeviceMappings.[].ebs.throughput",
                 "spec.metadataOptions.httpEndpoint", "spec.metadataOptions.httpProtocolIPv6",
                 "spec.tags", "spec.userData", "spec.kubelet"]:
        at(s, path)
    assert at(s, "spec.subnetSelectorTerms.[].tags")["additionalProperties"] == {"type": "string"}
    assert at(s, "spec.instanceStorePolicy")["enum"] == ["RAID0"]
    assert at(s, "spec.blockDeviceMappings.[].ebs.volumeSize")["x-kubernetes-int-or-string"]
    assert at(s, "spec.metadataOptions.httpPutResponseHopLimit")["type"] == "integer"
    assert at(s, "spec.metadataOptions.httpTokens")["enum"] == ["required", "optional"]

    # Unknown fields are rejected everywhere under spec; only status is preserved.
    for crd in crds.values():
        schema = crd_schema(crd)
        assert schema["properties"]["status"]["x-kubernetes-preserve-unknown-fields"] is True
        for path, node in walk(schema["properties"]["spec"], "spec"):
            assert "x-kubernetes-preserve-unknown-fields" not in node, (crd["metadata"]["name"], path)


# ---------------------------------------------------------------- cert-manager

CM_VALUES = {
    "crds": {"enabled": True},
    "replicaCount": 2,
    "tolerations": CRITICAL,
    "nodeSelector": {"karpenter.sh/controller": "true"},
    "webhook": {"tolerations": [{"key": "webhook", "operator": "Exists"}]},
    "cainjector": {"tolerations": [{"key": "cainjector", "operator": "Exists"}]},
    "startupapicheck": {"tolerations": CRITICAL},
}


def test_cert_manager_objects_and_values():
    docs = render("cert-manager", "cert-manager", "cert-manager", CM_VALUES, "--include-crds")
    check_common(docs, "cert-manager", "cert-manager")
    objs = by_kind(docs)
    assert set(objs) == {"CustomResourceDefinition", "ServiceAccount", "Service", "Deployment"}
    names = {"cert-manager", "cert-manager-webhook", "cert-manager-cainjector"}
    assert set(objs["Deployment"]) == names
    assert set(objs["ServiceAccount"]) == names
    assert set(objs["Service"]) == {"cert-manager-webhook"}
    deps = objs["Deployment"]
    assert deps["cert-manager"]["spec"]["replicas"] == 2
    tolerations = {n: d["spec"]["template"]["spec"].get("tolerations") for n, d in deps.items()}
    assert tolerations == {"cert-manager": CRITICAL,
                           "cert-manager-webhook": [{"key": "webhook", "operator": "Exists"}],
                           "cert-manager-cainjector": [{"key": "cainjector", "operator": "Exists"}]}
    # Maps merge with the chart's default (kubernetes.io/os: linux), as upstream.
    assert deps["cert-manager"]["spec"]["template"]["spec"]["nodeSelector"] == {
        "kubernetes.io/os": "linux", "karpenter.sh/controller": "true"}
    for name, dep in deps.items():
        assert dep["spec"]["template"]["spec"]["serviceAccountName"] == name
        (c,) = dep["spec"]["template"]["spec"]["containers"]
        assert c["image"].startswith("quay.io/jetstack/") and c["image"].endswith(":v1.21.1")
    # The webhook Service selects the webhook pods.
    svc = objs["Service"]["cert-manager-webhook"]
    assert svc["spec"]["selector"].items() <= \
        deps["cert-manager-webhook"]["spec"]["template"]["metadata"]["labels"].items()
    assert svc["spec"]["ports"][0]["port"] == 443
    # No startupapicheck Job (a Helm hook upstream).
    assert not any(d["kind"] == "Job" for d in docs)


def test_cert_manager_crds():
    crds = by_kind(render("cert-manager", "cert-manager", "cert-manager", CM_VALUES,
                          "--include-crds"))["CustomResourceDefinition"]
    assert set(crds) == {"certificates.cert-manager.io", "issuers.cert-manager.io",
                         "clusterissuers.cert-manager.io"}
    for crd in crds.values():
        assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert crds["issuers.cert-manager.io"]["spec"]["scope"] == "Namespaced"
    assert crds["clusterissuers.cert-manager.io"]["spec"]["scope"] == "Cluster"
    cert = crd_schema(crds["certificates.cert-manager.io"])
    for path in ["spec.secretName", "spec.dnsNames.[]", "spec.issuerRef.name",
                 "spec.issuerRef.kind", "spec.issuerRef.group", "spec.duration", "spec.renewBefore"]:
        at(cert, path)
    assert "x-kubernetes-preserve-unknown-fields" not in cert["properties"]["spec"]
    issuer = crd_schema(crds["issuers.cert-manager.io"])
    assert at(issuer, "spec.selfSigned")["type"] == "object"
    assert at(issuer, "spec.ca.secretName")["type"] == "string"
    assert "x-kubernetes-preserve-unknown-fields" not in issuer["properties"]["spec"]


def test_cert_manager_crds_off_by_default_and_keep():
    objs = by_kind(render("cert-manager", "cert-manager", "cert-manager", {}, "--include-crds"))
    assert "CustomResourceDefinition" not in objs
    assert set(objs["Deployment"]) == {"cert-manager", "cert-manager-webhook",
                                       "cert-manager-cainjector"}
    crds = by_kind(render("cm", "cert-manager", "certs", {"crds": {"enabled": True, "keep": False}}))[
        "CustomResourceDefinition"]
    assert all("annotations" not in c["metadata"] for c in crds.values())


# ---------------------------------------------------------------- gha-runner-scale-set-controller

def test_scale_set_controller():
    values = {"tolerations": CRITICAL, "nodeSelector": {"karpenter.sh/controller": "true"},
              "flags": {"logLevel": "info"}, "replicaCount": 2}
    docs = render("arc", "gha-runner-scale-set-controller", "arc-systems", values, "--include-crds")
    crds = [d for d in docs if d["kind"] == "CustomResourceDefinition"]
    check_common([d for d in docs if d not in crds], "arc", "arc-systems")
    objs = by_kind(docs)
    assert set(objs["CustomResourceDefinition"]) == {
        f"{p}.actions.github.com" for p in
        ["autoscalingrunnersets", "autoscalinglisteners", "ephemeralrunnersets", "ephemeralrunners"]}
    for crd in crds:
        assert crd["spec"]["group"] == "actions.github.com"
        assert crd["spec"]["scope"] == "Namespaced"
        assert crd["spec"]["versions"][0]["name"] == "v1alpha1"
    dep = objs["Deployment"]["arc-gha-rs-controller"]
    spec = dep["spec"]["template"]["spec"]
    assert dep["spec"]["replicas"] == 2
    assert spec["tolerations"] == CRITICAL
    assert spec["nodeSelector"] == {"karpenter.sh/controller": "true"}
    assert spec["serviceAccountName"] == "arc-gha-rs-controller"
    assert "--log-level=info" in container(dep, "manager")["args"]
    assert container(dep, "manager")["image"] == \
        "ghcr.io/actions/gha-runner-scale-set-controller:0.14.2"
    assert set(objs["ServiceAccount"]) == {"arc-gha-rs-controller"}
    assert objs["ClusterRoleBinding"]["arc-gha-rs-controller"]["subjects"] == [
        {"kind": "ServiceAccount", "name": "arc-gha-rs-controller", "namespace": "arc-systems"}]
    # The labels the scale-set chart's discovery looks for (as upstream).
    labels = dep["metadata"]["labels"]
    assert labels["app.kubernetes.io/part-of"] == "gha-rs-controller"
    assert labels["actions.github.com/controller-service-account-name"] == "arc-gha-rs-controller"

    objs = by_kind(render("arc", "gha-runner-scale-set-controller", "arc-systems",
                          {"serviceAccount": {"create": False, "name": "mine"}}))
    assert "ServiceAccount" not in objs
    assert objs["Deployment"]["arc-gha-rs-controller"]["spec"]["template"]["spec"][
        "serviceAccountName"] == "mine"
    assert "flags.logLevel" in fails("arc", "gha-runner-scale-set-controller", "arc-systems",
                                     {"flags": {"logLevel": "loud"}})


def test_scale_set_controller_crd_schema():
    docs = render("arc", "gha-runner-scale-set-controller", "arc-systems", {}, "--include-crds")
    crd = by_kind(docs)["CustomResourceDefinition"]["autoscalingrunnersets.actions.github.com"]
    s = crd_schema(crd, "v1alpha1")
    for field in ["githubConfigUrl", "githubConfigSecret", "runnerGroup", "runnerScaleSetName"]:
        assert at(s, f"spec.{field}")["type"] == "string"
    for field in ["minRunners", "maxRunners"]:
        assert at(s, f"spec.{field}") == {"type": "integer", "minimum": 0}
    at(s, "spec.proxy")
    at(s, "spec.githubServerTLS")
    for field in ["listenerTemplate", "template"]:
        assert at(s, f"spec.{field}")["x-kubernetes-preserve-unknown-fields"] is True
    assert "x-kubernetes-preserve-unknown-fields" not in s["properties"]["spec"]


# ---------------------------------------------------------------- gha-runner-scale-set

SCALE_SET_VALUES = {
    "githubConfigUrl": "https://github.com/acme",
    "githubConfigSecret": {"github_app_id": 123456, "github_app_installation_id": 78901234,
                           "github_app_private_key": "-----BEGIN RSA PRIVATE KEY-----\nX\n"},
    "minRunners": 0,
    "maxRunners": 8,
    "runnerGroup": "dagger",
    "controllerServiceAccount": {"namespace": "arc-systems", "name": "arc-gha-rs-controller"},
    "listenerTemplate": {"spec": {"containers": [{"name": "listener"}], "tolerations": CRITICAL}},
    "template": {
        "metadata": {"annotations": {"karpenter.sh/do-not-disrupt": "true"}},
        "spec": {
            "tolerations": [{"key": "github-actions-runner", "operator": "Exists",
                             "effect": "NoSchedule"}],
            "nodeSelector": {"github-actions-runner": "true"},
            "containers": [{
                "name": "runner", "image": "ghcr.io/actions/actions-runner:2.330.0",
                "command": ["/home/runner/run.sh"],
                "securityContext": {"runAsUser": 1001},
                "env": [{"name": "_EXPERIMENTAL_DAGGER_RUNNER_HOST",
                         "value": "unix:///run/dagger/engine.sock"}],
                "volumeMounts": [{"name": "dagger", "mountPath": "/run/dagger"}]}],
            "volumes": [{"name": "dagger", "hostPath": {"path": "/run/dagger"}}],
        },
    },
}


def test_scale_set_objects_and_values():
    import base64

    docs = render("dagger-small", "gha-runner-scale-set", "arc-runners", SCALE_SET_VALUES)
    check_common(docs, "dagger-small", "arc-runners")
    objs = by_kind(docs)
    assert set(objs) == {"AutoscalingRunnerSet", "Secret", "ServiceAccount", "Role", "RoleBinding"}
    secret = objs["Secret"]["dagger-small-gha-rs-github-secret"]
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data == {"github_app_id": "123456", "github_app_installation_id": "78901234",
                    "github_app_private_key": "-----BEGIN RSA PRIVATE KEY-----\nX\n"}
    assert set(objs["ServiceAccount"]) == {"dagger-small-gha-rs-no-permission"}
    assert set(objs["Role"]) == {"dagger-small-gha-rs-manager"}
    binding = objs["RoleBinding"]["dagger-small-gha-rs-manager"]
    assert binding["roleRef"]["name"] == "dagger-small-gha-rs-manager"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "arc-gha-rs-controller",
                                    "namespace": "arc-systems"}]
    ars = objs["AutoscalingRunnerSet"]["dagger-small"]
    assert ars["apiVersion"] == "actions.github.com/v1alpha1"
    spec = ars["spec"]
    assert spec["githubConfigUrl"] == "https://github.com/acme"
    assert spec["githubConfigSecret"] == "dagger-small-gha-rs-github-secret"
    assert spec["runnerScaleSetName"] == "dagger-small"
    assert (spec["minRunners"], spec["maxRunners"], spec["runnerGroup"]) == (0, 8, "dagger")
    assert spec["listenerTemplate"] == SCALE_SET_VALUES["listenerTemplate"]
    tmpl = spec["template"]
    assert tmpl["metadata"] == {"annotations": {"karpenter.sh/do-not-disrupt": "true"}}
    for key, value in SCALE_SET_VALUES["template"]["spec"].items():
        assert tmpl["spec"][key] == value, key
    assert tmpl["spec"]["restartPolicy"] == "Never"
    assert tmpl["spec"]["serviceAccountName"] == "dagger-small-gha-rs-no-permission"


def test_scale_set_defaults_and_existing_secret():
    values = {"githubConfigUrl": "https://github.com/acme", "githubConfigSecret": "gh-app",
              "runnerScaleSetName": "dagger-large",
              "controllerServiceAccount": {"namespace": "arc-systems", "name": "c"},
              "template": {"spec": {"nodeSelector": {"github-actions-runner": "true"}}}}
    objs = by_kind(render("large", "gha-runner-scale-set", "arc-runners", values))
    assert "Secret" not in objs
    spec = objs["AutoscalingRunnerSet"]["large"]["spec"]
    assert spec["githubConfigSecret"] == "gh-app"
    assert spec["runnerScaleSetName"] == "dagger-large"
    assert "minRunners" not in spec and "maxRunners" not in spec and "listenerTemplate" not in spec
    assert spec["template"]["spec"]["containers"] == [{
        "name": "runner", "image": "ghcr.io/actions/actions-runner:latest",
        "command": ["/home/runner/run.sh"]}]
    assert spec["template"]["spec"]["nodeSelector"] == {"github-actions-runner": "true"}
    # A PAT works too.
    values = dict(values, githubConfigSecret={"github_token": "ghp_x"})
    secret = by_kind(render("large", "gha-runner-scale-set", "arc-runners", values))["Secret"]
    assert list(secret["large-gha-rs-github-secret"]["data"]) == ["github_token"]


@pytest.mark.parametrize("change,message", [
    ({"githubConfigUrl": ""}, "githubConfigUrl is required"),
    ({"githubConfigUrl": None}, "githubConfigUrl is required"),
    ({"githubConfigSecret": {"github_token": ""}}, "githubConfigSecret is required"),
    ({"githubConfigSecret": {"github_app_id": 1}}, "github_app_installation_id"),
    ({"minRunners": 5, "maxRunners": 2}, "maxRunners has to be greater or equal to minRunners"),
    ({"controllerServiceAccount": None}, "controllerServiceAccount"),
    ({"runnerScaleSetName": "x" * 46}, "up to 45 characters"),
])
def test_scale_set_invalid_values(change, message):
    values = dict(SCALE_SET_VALUES, **change)
    values = {k: v for k, v in values.items() if v is not None}
    assert message in fails("dagger-small", "gha-runner-scale-set", "arc-runners", values)


# ---------------------------------------------------------------- actions-runner-controller

LEGACY_VALUES = {
    "authSecret": {"create": True, "name": "controller-manager", "github_app_id": 123,
                   "github_app_installation_id": 456, "github_app_private_key": "KEY"},
    "tolerations": CRITICAL,
    "nodeSelector": {"karpenter.sh/controller": "true"},
    "replicaCount": 2,
}


def test_legacy_arc_objects_and_values():
    import base64

    docs = render("arc", "actions-runner-controller", "actions-runner-system", LEGACY_VALUES,
                  "--include-crds")
    crds = [d for d in docs if d["kind"] == "CustomResourceDefinition"]
    check_common([d for d in docs if d not in crds], "arc", "actions-runner-system")
    objs = by_kind(docs)
    assert set(objs["CustomResourceDefinition"]) == {
        "runnerdeployments.actions.summerwind.dev",
        "horizontalrunnerautoscalers.actions.summerwind.dev"}
    rd = crd_schema(objs["CustomResourceDefinition"]["runnerdeployments.actions.summerwind.dev"],
                    "v1alpha1")
    assert at(rd, "spec.replicas")["type"] == "integer"
    assert at(rd, "spec.template.spec")["x-kubernetes-preserve-unknown-fields"] is True
    hra = crd_schema(
        objs["CustomResourceDefinition"]["horizontalrunnerautoscalers.actions.summerwind.dev"],
        "v1alpha1")
    for path in ["spec.scaleTargetRef.kind", "spec.scaleTargetRef.name", "spec.minReplicas",
                 "spec.maxReplicas", "spec.metrics", "spec.scaleUpTriggers"]:
        at(hra, path)
    assert "x-kubernetes-preserve-unknown-fields" not in hra["properties"]["spec"]

    dep = objs["Deployment"]["arc-actions-runner-controller"]
    spec = dep["spec"]["template"]["spec"]
    assert dep["spec"]["replicas"] == 2
    assert spec["tolerations"] == CRITICAL
    assert spec["nodeSelector"] == {"karpenter.sh/controller": "true"}
    assert spec["serviceAccountName"] == "arc-actions-runner-controller"
    assert set(objs["ServiceAccount"]) == {"arc-actions-runner-controller"}
    manager = container(dep, "manager")
    assert env(manager)["GITHUB_APP_ID"]["secretKeyRef"]["name"] == "controller-manager"
    secret = objs["Secret"]["controller-manager"]
    assert {k: base64.b64decode(v).decode() for k, v in secret["data"].items()} == {
        "github_app_id": "123", "github_app_installation_id": "456", "github_app_private_key": "KEY"}
    # cert-manager issues the webhook's serving certificate.
    issuer = objs["Issuer"]["arc-actions-runner-controller-selfsigned-issuer"]
    assert issuer["apiVersion"] == "cert-manager.io/v1" and issuer["spec"] == {"selfSigned": {}}
    cert = objs["Certificate"]["arc-actions-runner-controller-serving-cert"]
    assert cert["spec"]["issuerRef"] == {"kind": "Issuer", "name": issuer["metadata"]["name"]}
    assert cert["spec"]["secretName"] == "arc-actions-runner-controller-serving-cert"
    assert "arc-actions-runner-controller-webhook.actions-runner-system.svc" in cert["spec"]["dnsNames"]
    assert "arc-actions-runner-controller-webhook" in objs["Service"]
    (vol,) = [v for v in spec["volumes"] if v["name"] == "cert"]
    assert vol["secret"]["secretName"] == cert["spec"]["secretName"]


def test_legacy_arc_without_cert_manager_or_secret():
    objs = by_kind(render("arc", "actions-runner-controller", "actions-runner-system",
                          {"certManagerEnabled": False}))
    assert "Issuer" not in objs and "Certificate" not in objs
    assert set(objs["Secret"]) == {"arc-actions-runner-controller-serving-cert"}
    assert objs["Secret"]["arc-actions-runner-controller-serving-cert"]["type"] == \
        "kubernetes.io/tls"
    assert "authSecret" in fails("arc", "actions-runner-controller", "actions-runner-system",
                                 {"authSecret": {"create": True}})
