"""spar's sandbox stand-in charts (sandbox/charts/*), rendered through sandbox/helm/helm-template.

Each chart is rendered with the values the flagship stack gives it (see
/work/shared/reference/dagger-on-eks.md sections 4-6) and the rendered objects are checked:
kinds, names, namespaces, the values reaching the right fields, and the values the upstream
chart requires failing when missing. Renders are cached per argument list (about 0.25 s each).

The upstream template patterns the stand-ins carry (sandbox/charts/README.md) are checked as
`helm template` prints them: hooks with their annotations and after the other objects, a
cluster-scoped object with the namespace its template writes, `null` fields, comment-only
documents, templates that render nothing, objects outside the release namespace.
"""

import functools
import re
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
              "AutoscalingRunnerSet", "Issuer", "Certificate", "Job"}
CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                  "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}
HOOK_POLICY = "before-hook-creation,hook-succeeded"


def run(release, chart, namespace, values=None, *flags):
    cmd = [str(TOOL), "template", release, str(CHARTS / chart), "--namespace", namespace, *flags]
    if values is not None:
        cmd += ["--values", "-"]
    return subprocess.run(cmd, input=yaml.safe_dump(values) if values is not None else None,
                          capture_output=True, text=True, timeout=60)


@functools.lru_cache(maxsize=None)
def _raw(release, chart, namespace, values_yaml, flags):
    proc = run(release, chart, namespace, yaml.safe_load(values_yaml), *flags)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def raw(release, chart, namespace, values, *flags):
    """`helm template`'s stdout, as printed (cached like `render`)."""
    return _raw(release, chart, namespace, yaml.safe_dump(values), tuple(flags))


@functools.lru_cache(maxsize=None)
def _render(release, chart, namespace, values_yaml, flags):
    return [d for d in yaml.safe_load_all(_raw(release, chart, namespace, values_yaml, flags)) if d]


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


def check_common(docs, release, namespace, chart_name=None, elsewhere=None):
    """Every templated object: our managed-by label, the release as instance, the release
    namespace on namespaced kinds and none on cluster-scoped ones, except the objects of
    `elsewhere` ({(kind, name): namespace}), whose upstream templates write another namespace
    (or, on a cluster-scoped kind, one at all)."""
    elsewhere = dict(elsewhere or {})
    for d in docs:
        meta = d["metadata"]
        kind = d["kind"]
        labels = meta.get("labels") or {}
        assert labels.get("app.kubernetes.io/managed-by") == MANAGED_BY, (kind, meta["name"])
        assert "app.kubernetes.io/name" in labels, (kind, meta["name"])
        if kind != "CustomResourceDefinition" or "app.kubernetes.io/instance" in labels:
            assert labels.get("app.kubernetes.io/instance") == release, (kind, meta["name"])
        if (kind, meta["name"]) in elsewhere:
            assert meta.get("namespace") == elsewhere.pop((kind, meta["name"])), (kind, meta["name"])
        elif kind in NAMESPACED:
            assert meta.get("namespace") == namespace, (kind, meta["name"])
        elif kind in CLUSTER_SCOPED:
            assert "namespace" not in meta, (kind, meta["name"])
        else:
            pytest.fail(f"unexpected kind {kind}")
    assert not elsewhere, f"not rendered: {elsewhere}"


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


def documents(out):
    """The documents of a `helm template` output in order, as (source, text, parsed): split on
    `---` lines as a YAML stream is; `source` is the last `# Source:` line seen."""
    docs, source = [], None
    for text in re.split(r"(?m)^---[ \t]*$\n?", out):
        m = re.search(r"(?m)^# Source: (\S+)$", text)
        source = m.group(1) if m else source
        if text.strip():
            docs.append((source, text, yaml.safe_load(text)))
    return docs


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
                         "ClusterRoleBinding", "Role", "RoleBinding", "Deployment"}
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

# The controller's leader-election Role/RoleBinding live in global.leaderElection.namespace.
CM_ELSEWHERE = {("Role", "cert-manager:leaderelection"): "kube-system",
                ("RoleBinding", "cert-manager:leaderelection"): "kube-system"}

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
    check_common(docs, "cert-manager", "cert-manager", elsewhere=CM_ELSEWHERE)
    objs = by_kind(docs)
    assert set(objs) == {"CustomResourceDefinition", "ServiceAccount", "Service", "Deployment",
                         "Role", "RoleBinding", "Job"}
    names = {"cert-manager", "cert-manager-webhook", "cert-manager-cainjector"}
    assert set(objs["Deployment"]) == names
    assert set(objs["ServiceAccount"]) == names | {"cert-manager-startupapicheck"}
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
    # The startupapicheck Job (a post-install hook, as upstream) gets its own tolerations.
    job = objs["Job"]["cert-manager-startupapicheck"]
    assert job["spec"]["template"]["spec"]["tolerations"] == CRITICAL
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install"


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
    # The secrets ClusterRoleBinding's template writes the release namespace (as upstream).
    check_common([d for d in docs if d not in crds], "arc", "actions-runner-system",
                 elsewhere={("ClusterRoleBinding", "arc-actions-runner-controller-manager-secrets"):
                            "actions-runner-system"})
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


# ---------------------------------------------------------------- upstream template patterns
# What `helm template` prints for the patterns the stand-ins carry from their upstream charts
# (sandbox/charts/README.md lists them, with the upstream file of each).

def sources(out):
    return [s for s, _, _ in documents(out)]


def test_documents_splits_like_a_yaml_stream():
    out = "---\n# Source: c/crds/a.yaml\n---\n# note\napiVersion: v1\nkind: A\n---\n# Source: c/t.yaml\n"
    assert [(s, d) for s, _, d in documents(out)] == [
        ("c/crds/a.yaml", None), ("c/crds/a.yaml", {"apiVersion": "v1", "kind": "A"}),
        ("c/t.yaml", None)]
    assert [d for d in yaml.safe_load_all(out)] == [None, {"apiVersion": "v1", "kind": "A"}, None]


@pytest.mark.parametrize("release,chart,namespace,values,count", [
    ("karpenter", "karpenter", "kube-system", {"settings": {"clusterName": "c"}}, 3),
    ("arc", "gha-runner-scale-set-controller", "arc-systems", {}, 4),
    ("arc", "actions-runner-controller", "actions-runner-system", {}, 2),
])
def test_crd_files_give_a_comment_only_document_first(release, chart, namespace, values, count):
    """Upstream's controller-gen CRD files start with `---`; `helm template --include-crds`
    prints its own `---` and `# Source:` line before each, so every CRD is preceded by a
    document holding only that comment (it parses as null)."""
    docs = documents(raw(release, chart, namespace, values, "--include-crds"))
    crd_docs = [(s, t, d) for s, t, d in docs if s.startswith(f"{chart}/crds/")]
    assert len(crd_docs) == 2 * count
    for (s1, t1, d1), (s2, _, d2) in zip(crd_docs[::2], crd_docs[1::2]):
        assert s1 == s2
        assert d1 is None and t1.strip() == f"# Source: {s1}"
        assert d2["kind"] == "CustomResourceDefinition"
    # Without --include-crds neither the CRDs nor those documents are printed.
    assert not [s for s in sources(raw(release, chart, namespace, values)) if "/crds/" in s]


# karpenter

def test_karpenter_pod_template_annotations_render_null():
    """deployment.yaml always writes `annotations:` with podAnnotations under it: with none it
    is `null` (the API server drops it, so the live pod template has no annotations key)."""
    (dep,) = by_kind(render("karpenter", "karpenter", "kube-system", KARPENTER_VALUES))[
        "Deployment"].values()
    meta = dep["spec"]["template"]["metadata"]
    assert "annotations" in meta and meta["annotations"] is None
    out = raw("karpenter", "karpenter", "kube-system", KARPENTER_VALUES)
    assert re.search(r"(?m)^      annotations:\n    spec:$", out)
    values = dict(KARPENTER_VALUES, podAnnotations={"a": "b"})
    (dep,) = by_kind(render("karpenter", "karpenter", "kube-system", values))["Deployment"].values()
    assert dep["spec"]["template"]["metadata"]["annotations"] == {"a": "b"}
    # The resourceFieldRef divisors are written in canonical form (1m, "0").
    c = container(dep, "controller")
    divisors = {e["name"]: e["valueFrom"]["resourceFieldRef"]["divisor"]
                for e in c["env"] if "resourceFieldRef" in e.get("valueFrom", {})}
    assert divisors == {"CPU_REQUESTS": "1m", "MEMORY_LIMIT": "0"}


def test_karpenter_roles_and_the_dns_role_in_kube_system():
    """role.yaml/rolebinding.yaml: the leader-election Role in the release namespace, the
    `-dns` Role and RoleBinding in kube-system whatever the release namespace is."""
    docs = render("kp", "karpenter", "karpenter", {"settings": {"clusterName": "c"}})
    check_common(docs, "kp", "karpenter", elsewhere={("Role", "kp-karpenter-dns"): "kube-system",
                                                     ("RoleBinding", "kp-karpenter-dns"): "kube-system"})
    objs = by_kind(docs)
    assert set(objs["Role"]) == set(objs["RoleBinding"]) == {"kp-karpenter", "kp-karpenter-dns"}
    for binding in objs["RoleBinding"].values():
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "karpenter",
                                        "namespace": "karpenter"}]
    assert objs["Role"]["kp-karpenter-dns"]["rules"] == [
        {"apiGroups": [""], "resources": ["services"], "resourceNames": ["kube-dns"],
         "verbs": ["get"]}]
    leases = [r for r in objs["Role"]["kp-karpenter"]["rules"] if r["resources"] == ["leases"]]
    assert leases and not [r for r in objs["ClusterRole"]["kp-karpenter"]["rules"]
                           if "leases" in r["resources"]]


def test_karpenter_service_monitor_renders_nothing_without_the_api():
    """servicemonitor.yaml is one condition on serviceMonitor.enabled and the cluster serving
    monitoring.coreos.com/v1: `helm template` has no such API, so nothing, not even an empty
    document, and `--show-only` of it fails as for any template that renders nothing."""
    values = dict(KARPENTER_VALUES, serviceMonitor={"enabled": True})
    out = raw("karpenter", "karpenter", "kube-system", values)
    assert "servicemonitor.yaml" not in out and "ServiceMonitor" not in out
    proc = run("karpenter", "karpenter", "kube-system", values, "--show-only",
               "templates/servicemonitor.yaml")
    assert proc.returncode != 0 and "could not find template" in proc.stderr


# gha-runner-scale-set

FLAGSHIP_SCALE_SET = dict(SCALE_SET_VALUES, githubConfigSecret="github-app",
                          runnerScaleSetName="dagger-small")


def test_scale_set_null_annotations():
    """Without `annotations`, the Role, RoleBinding, no-permission ServiceAccount and GitHub
    Secret write `annotations:` with nothing under it, i.e. null (the API server drops it)."""
    objs = by_kind(render("dagger-small", "gha-runner-scale-set", "arc-runners", SCALE_SET_VALUES))
    nulls = [objs["Role"]["dagger-small-gha-rs-manager"],
             objs["RoleBinding"]["dagger-small-gha-rs-manager"],
             objs["ServiceAccount"]["dagger-small-gha-rs-no-permission"],
             objs["Secret"]["dagger-small-gha-rs-github-secret"]]
    for o in nulls:
        assert "annotations" in o["metadata"] and o["metadata"]["annotations"] is None, o["kind"]
    assert objs["AutoscalingRunnerSet"]["dagger-small"]["metadata"]["annotations"]
    # No finalizers: upstream's cleanup-protection finalizer is left out (see the README).
    assert not any("finalizers" in o["metadata"] for o in nulls)

    values = dict(SCALE_SET_VALUES, annotations={"team": "ci"}, labels={"cost": "runners"})
    objs = by_kind(render("dagger-small", "gha-runner-scale-set", "arc-runners", values))
    for kind, name in [("Role", "dagger-small-gha-rs-manager"),
                       ("RoleBinding", "dagger-small-gha-rs-manager"),
                       ("ServiceAccount", "dagger-small-gha-rs-no-permission"),
                       ("Secret", "dagger-small-gha-rs-github-secret")]:
        meta = objs[kind][name]["metadata"]
        assert meta["annotations"] == {"team": "ci"}, kind
        assert meta["labels"]["cost"] == "runners", kind
    ars = objs["AutoscalingRunnerSet"]["dagger-small"]["metadata"]
    assert ars["annotations"]["team"] == "ci" and ars["labels"]["cost"] == "runners"


def test_scale_set_role_binding_subject_on_the_next_line():
    """The subject's name and namespace are written with `nindent` (a plain scalar on the line
    after the key), as upstream; YAML reads the same strings."""
    out = raw("dagger-small", "gha-runner-scale-set", "arc-runners", FLAGSHIP_SCALE_SET)
    assert re.search(r"(?m)^  name: *\n    arc-gha-rs-controller$", out)
    assert re.search(r"(?m)^  namespace: *\n    arc-systems$", out)
    (binding,) = by_kind(render("dagger-small", "gha-runner-scale-set", "arc-runners",
                                FLAGSHIP_SCALE_SET))["RoleBinding"].values()
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "arc-gha-rs-controller",
                                    "namespace": "arc-systems"}]


def test_scale_set_flagship_values_render_no_secret_and_no_empty_documents():
    """With an existing Secret (a string, as the flagship passes), githubsecret.yaml renders
    nothing at all; the kube-mode templates and NOTES.txt neither; and the cleanup annotations
    do not name a Secret the chart did not make."""
    out = raw("dagger-small", "gha-runner-scale-set", "arc-runners", FLAGSHIP_SCALE_SET)
    assert [s.split("/")[-1] for s in sources(out)] == [
        "no_permission_serviceaccount.yaml", "manager_role.yaml", "manager_role_binding.yaml",
        "autoscalingrunnerset.yaml"]
    assert all(d is not None for _, _, d in documents(out))
    for template in ["templates/githubsecret.yaml", "templates/kube_mode_role.yaml"]:
        proc = run("dagger-small", "gha-runner-scale-set", "arc-runners", FLAGSHIP_SCALE_SET,
                   "--show-only", template)
        assert proc.returncode != 0 and "could not find template" in proc.stderr, template
    (ars,) = by_kind(render("dagger-small", "gha-runner-scale-set", "arc-runners",
                            FLAGSHIP_SCALE_SET))["AutoscalingRunnerSet"].values()
    ann = ars["metadata"]["annotations"]
    assert set(ann) == {"actions.github.com/values-hash",
                        "actions.github.com/cleanup-manager-role-binding",
                        "actions.github.com/cleanup-manager-role-name",
                        "actions.github.com/cleanup-no-permission-service-account-name"}
    assert len(ann["actions.github.com/values-hash"]) == 63
    # The chart made the Secret: the cleanup annotation names it.
    (ars,) = by_kind(render("dagger-small", "gha-runner-scale-set", "arc-runners",
                            SCALE_SET_VALUES))["AutoscalingRunnerSet"].values()
    assert ars["metadata"]["annotations"]["actions.github.com/cleanup-github-secret-name"] == \
        "dagger-small-gha-rs-github-secret"


def test_scale_set_lookup_finds_nothing_under_helm_template():
    """Without controllerServiceAccount the chart looks the controller Deployment up (`lookup`,
    as upstream); `helm template` has no cluster, so the lookup is empty and rendering fails."""
    values = {k: v for k, v in FLAGSHIP_SCALE_SET.items() if k != "controllerServiceAccount"}
    err = fails("dagger-small", "gha-runner-scale-set", "arc-runners", values)
    assert "No gha-runner-scale-set-controller deployment found" in err


def test_scale_set_kubernetes_container_mode():
    """kube_mode_*.yaml render only in kubernetes container mode (and the no-permission
    ServiceAccount then does not); a runner ServiceAccount of the user's own drops both."""
    values = dict(FLAGSHIP_SCALE_SET, containerMode={"type": "kubernetes"})
    docs = render("dagger-small", "gha-runner-scale-set", "arc-runners", values)
    check_common(docs, "dagger-small", "arc-runners")
    objs = by_kind(docs)
    assert set(objs["ServiceAccount"]) == {"dagger-small-gha-rs-kube-mode"}
    assert set(objs["Role"]) == set(objs["RoleBinding"]) == {
        "dagger-small-gha-rs-manager", "dagger-small-gha-rs-kube-mode"}
    kube_sa = objs["ServiceAccount"]["dagger-small-gha-rs-kube-mode"]
    assert "annotations" not in kube_sa["metadata"]  # written only when there are some
    assert objs["Role"]["dagger-small-gha-rs-kube-mode"]["metadata"]["annotations"] is None
    assert {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list", "create", "delete"]} \
        in objs["Role"]["dagger-small-gha-rs-kube-mode"]["rules"]
    assert objs["RoleBinding"]["dagger-small-gha-rs-kube-mode"]["subjects"] == [
        {"kind": "ServiceAccount", "name": "dagger-small-gha-rs-kube-mode", "namespace": "arc-runners"}]
    ars = objs["AutoscalingRunnerSet"]["dagger-small"]
    assert ars["spec"]["template"]["spec"]["serviceAccountName"] == "dagger-small-gha-rs-kube-mode"
    assert {k for k in ars["metadata"]["annotations"] if "kubernetes-mode" in k} == {
        "actions.github.com/cleanup-kubernetes-mode-role-binding-name",
        "actions.github.com/cleanup-kubernetes-mode-role-name",
        "actions.github.com/cleanup-kubernetes-mode-service-account-name"}
    out = raw("dagger-small", "gha-runner-scale-set", "arc-runners", values)
    assert "# default permission for runner pod service account in kubernetes mode" in out

    novolume = dict(values, containerMode={"type": "kubernetes-novolume"})
    role = by_kind(render("dagger-small", "gha-runner-scale-set", "arc-runners", novolume))[
        "Role"]["dagger-small-gha-rs-kube-mode"]
    assert not [r for r in role["rules"] if r["apiGroups"] == ["batch"]]

    own = dict(values, template={"spec": {"serviceAccountName": "mine"}})
    objs = by_kind(render("dagger-small", "gha-runner-scale-set", "arc-runners", own))
    assert "ServiceAccount" not in objs
    assert set(objs["Role"]) == {"dagger-small-gha-rs-manager"}
    ars = objs["AutoscalingRunnerSet"]["dagger-small"]
    assert ars["spec"]["template"]["spec"]["serviceAccountName"] == "mine"
    assert not [k for k in ars["metadata"]["annotations"] if "service-account" in k]


# gha-runner-scale-set-controller

def test_scale_set_controller_conditional_rbac():
    """Leader election only with more than one replica; the manager ClusterRole/Binding, or
    with flags.watchSingleNamespace the single-namespace Roles, one of them in the watched
    namespace. By default the conditional files render nothing (no empty documents)."""
    out = raw("arc", "gha-runner-scale-set-controller", "arc-systems", {})
    assert [s.split("/")[-1] for s in sources(out)] == [
        "serviceaccount.yaml", "manager_cluster_role.yaml", "manager_cluster_role_binding.yaml",
        "deployment.yaml"]
    objs = by_kind(render("arc", "gha-runner-scale-set-controller", "arc-systems",
                          {"replicaCount": 2}))
    assert set(objs["Role"]) == set(objs["RoleBinding"]) == {"arc-gha-rs-controller-leader-election"}
    args = container(objs["Deployment"]["arc-gha-rs-controller"], "manager")["args"]
    assert "--enable-leader-election" in args
    assert "--leader-election-id=arc-gha-rs-controller" in args

    values = {"flags": {"watchSingleNamespace": "arc-runners"}}
    docs = render("arc", "gha-runner-scale-set-controller", "arc-systems", values)
    check_common(docs, "arc", "arc-systems", elsewhere={
        ("Role", "arc-gha-rs-controller-single-namespace-watch"): "arc-runners",
        ("RoleBinding", "arc-gha-rs-controller-single-namespace-watch"): "arc-runners"})
    objs = by_kind(docs)
    assert "ClusterRole" not in objs and "ClusterRoleBinding" not in objs
    assert set(objs["Role"]) == set(objs["RoleBinding"]) == {
        "arc-gha-rs-controller-single-namespace", "arc-gha-rs-controller-single-namespace-watch"}
    for binding in objs["RoleBinding"].values():
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "arc-gha-rs-controller",
                                        "namespace": "arc-systems"}]
    dep = objs["Deployment"]["arc-gha-rs-controller"]
    assert dep["metadata"]["labels"]["actions.github.com/controller-watch-single-namespace"] == \
        "arc-runners"


# actions-runner-controller

LEGACY_FLAGSHIP = {"authSecret": {"create": False, "name": "controller-manager"},
                   "tolerations": CRITICAL, "certManagerEnabled": True}


def test_legacy_arc_cluster_role_binding_with_a_namespace():
    """manager_role_binding_secrets.yaml writes the release namespace on a ClusterRoleBinding
    (as upstream); `helm template` prints it as written."""
    out = raw("actions-runner-controller", "actions-runner-controller", "actions-runner-system",
              LEGACY_FLAGSHIP)
    (doc,) = [d for s, _, d in documents(out) if s.endswith("/manager_role_binding_secrets.yaml")]
    assert doc["kind"] == "ClusterRoleBinding"
    assert doc["metadata"]["name"] == "actions-runner-controller-manager-secrets"
    assert doc["metadata"]["namespace"] == "actions-runner-system"
    assert doc["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                              "name": "actions-runner-controller-manager-secrets"}
    assert doc["subjects"] == [{"kind": "ServiceAccount", "name": "actions-runner-controller",
                                "namespace": "actions-runner-system"}]
    objs = by_kind(render("actions-runner-controller", "actions-runner-controller",
                          "actions-runner-system", LEGACY_FLAGSHIP))
    # The other ClusterRoleBinding has no namespace.
    assert "namespace" not in objs["ClusterRoleBinding"]["actions-runner-controller-manager"]["metadata"]
    assert set(objs["ClusterRole"]) == {"actions-runner-controller-manager",
                                        "actions-runner-controller-manager-secrets"}

    # scope.singleNamespace: a RoleBinding (with the namespace) and a Role with none at all.
    values = dict(LEGACY_FLAGSHIP, scope={"singleNamespace": True})
    objs = by_kind(render("actions-runner-controller", "actions-runner-controller",
                          "actions-runner-system", values))
    binding = objs["RoleBinding"]["actions-runner-controller-manager-secrets"]
    assert binding["metadata"]["namespace"] == "actions-runner-system"
    assert binding["roleRef"]["kind"] == "Role"
    role = objs["Role"]["actions-runner-controller-manager-secrets"]
    assert "namespace" not in role["metadata"]
    assert set(objs["ClusterRoleBinding"]) == {"actions-runner-controller-manager"}
    assert "--watch-namespace=actions-runner-system" in container(
        objs["Deployment"]["actions-runner-controller"], "manager")["args"]


def test_legacy_arc_creation_timestamp_null():
    """The ClusterRoles and webhook configurations carry `creationTimestamp: null` (upstream's
    kubebuilder output); the API server sets its own."""
    objs = by_kind(render("actions-runner-controller", "actions-runner-controller",
                          "actions-runner-system", LEGACY_FLAGSHIP))
    nulls = [("ClusterRole", "actions-runner-controller-manager"),
             ("ClusterRole", "actions-runner-controller-manager-secrets"),
             ("MutatingWebhookConfiguration",
              "actions-runner-controller-mutating-webhook-configuration"),
             ("ValidatingWebhookConfiguration",
              "actions-runner-controller-validating-webhook-configuration")]
    for kind, name in nulls:
        meta = objs[kind][name]["metadata"]
        assert "creationTimestamp" in meta and meta["creationTimestamp"] is None, (kind, name)
    out = raw("actions-runner-controller", "actions-runner-controller", "actions-runner-system",
              LEGACY_FLAGSHIP)
    assert len(re.findall(r"(?m)^  creationTimestamp: null$", out)) == len(nulls)


def test_legacy_arc_webhook_configurations_and_cert_manager():
    """With cert-manager the webhook configurations ask its cainjector for the CA (annotation,
    no caBundle); without it they carry the chart's own CA, the one in the serving Secret."""
    import base64

    objs = by_kind(render("actions-runner-controller", "actions-runner-controller",
                          "actions-runner-system", LEGACY_FLAGSHIP))
    for kind in ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]:
        (cfg,) = objs[kind].values()
        assert cfg["metadata"]["annotations"] == {
            "cert-manager.io/inject-ca-from":
                "actions-runner-system/actions-runner-controller-serving-cert"}
        for hook in cfg["webhooks"]:
            assert "caBundle" not in hook["clientConfig"]
            assert hook["clientConfig"]["service"]["name"] == "actions-runner-controller-webhook"
            assert hook["timeoutSeconds"] == 10
    values = dict(LEGACY_FLAGSHIP, certManagerEnabled=False)
    objs = by_kind(render("actions-runner-controller", "actions-runner-controller",
                          "actions-runner-system", values))
    ca = objs["Secret"]["actions-runner-controller-serving-cert"]["data"]["ca.crt"]
    assert base64.b64decode(ca).startswith(b"-----BEGIN CERTIFICATE-----")
    for kind in ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]:
        (cfg,) = objs[kind].values()
        assert "annotations" not in cfg["metadata"]
        assert {h["clientConfig"]["caBundle"] for h in cfg["webhooks"]} == {ca}
    # The file opens with template-only lines and `---`: that first, empty document is dropped.
    out = raw("actions-runner-controller", "actions-runner-controller", "actions-runner-system",
              values)
    webhook_docs = [d for s, _, d in documents(out) if s.endswith("/webhook_configs.yaml")]
    assert [d["kind"] for d in webhook_docs] == [
        "Secret", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]


def test_legacy_arc_comment_only_document():
    """ci-secret.yaml's comment sits outside its condition: without createDummySecret the file
    renders that comment alone, and `helm template` prints it as a document that parses as
    null; with it, the Secret follows the comment."""
    out = raw("actions-runner-controller", "actions-runner-controller", "actions-runner-system",
              LEGACY_FLAGSHIP)
    (doc,) = [(t, d) for s, t, d in documents(out) if s.endswith("/ci-secret.yaml")]
    text, parsed = doc
    assert parsed is None
    assert [line for line in text.strip().splitlines() if not line.startswith("#")] == []
    assert "# This template only exists to facilitate CI testing of the chart" in text
    assert None in [d for d in yaml.safe_load_all(out)]
    objs = by_kind(render("actions-runner-controller", "actions-runner-controller",
                          "actions-runner-system", dict(LEGACY_FLAGSHIP, createDummySecret=True)))
    assert objs["Secret"]["controller-manager"]["data"] == {"github_token": "dGVzdA=="}


# cert-manager

def test_cert_manager_startupapicheck_hooks():
    """The startupapicheck ServiceAccount, Role and RoleBinding (weight -5) and Job (weight 1)
    are post-install hooks deleted before a new run and once they succeed; `helm template`
    prints every hook after every other object, keeps them with --skip-tests (what spar
    passes) and drops them with --no-hooks."""
    out = raw("cert-manager", "cert-manager", "cert-manager", CM_VALUES, "--skip-tests")
    docs = [(s, d) for s, _, d in documents(out) if d]
    hooks = [d for _, d in docs if "helm.sh/hook" in (d["metadata"].get("annotations") or {})]
    assert [(d["kind"], d["metadata"]["name"]) for d in hooks] == [
        ("ServiceAccount", "cert-manager-startupapicheck"),
        ("Role", "cert-manager-startupapicheck:create-cert"),
        ("RoleBinding", "cert-manager-startupapicheck:create-cert"),
        ("Job", "cert-manager-startupapicheck")]
    assert [d for _, d in docs][-len(hooks):] == hooks
    for d in hooks:
        assert d["metadata"]["annotations"] == {
            "helm.sh/hook": "post-install",
            "helm.sh/hook-weight": "1" if d["kind"] == "Job" else "-5",
            "helm.sh/hook-delete-policy": HOOK_POLICY}, d["kind"]
        assert d["metadata"]["namespace"] == "cert-manager"
    job = hooks[-1]
    assert job["apiVersion"] == "batch/v1"
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "OnFailure"
    assert pod["serviceAccountName"] == "cert-manager-startupapicheck"
    (c,) = pod["containers"]
    assert c["image"] == "quay.io/jetstack/cert-manager-startupapicheck:v1.21.1"
    assert c["args"][:3] == ["check", "api", "--wait=1m"]
    assert hooks[2]["subjects"] == [{"kind": "ServiceAccount",
                                     "name": "cert-manager-startupapicheck",
                                     "namespace": "cert-manager"}]

    no_hooks = raw("cert-manager", "cert-manager", "cert-manager", CM_VALUES, "--no-hooks")
    assert "startupapicheck" not in no_hooks and "helm.sh/hook" not in no_hooks
    off = by_kind(render("cert-manager", "cert-manager", "cert-manager",
                         dict(CM_VALUES, startupapicheck={"enabled": False})))
    assert "Job" not in off and "cert-manager-startupapicheck" not in off["ServiceAccount"]
    # The hook annotations are values, as upstream: a Job without them is an ordinary object.
    plain = by_kind(render("cert-manager", "cert-manager", "cert-manager",
                           dict(CM_VALUES, startupapicheck={"jobAnnotations": None})))
    assert "annotations" not in plain["Job"]["cert-manager-startupapicheck"]["metadata"]


def test_cert_manager_leader_election_role_outside_the_release_namespace():
    objs = by_kind(render("cm", "cert-manager", "certs", {"global": {"leaderElection": {
        "namespace": "leases"}}}))
    role = objs["Role"]["cm-cert-manager:leaderelection"]
    binding = objs["RoleBinding"]["cm-cert-manager:leaderelection"]
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == "leases"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "cm-cert-manager",
                                    "namespace": "certs"}]
    assert "--leader-election-namespace=leases" in container(
        objs["Deployment"]["cm-cert-manager"], "cert-manager-controller")["args"]
    objs = by_kind(render("cm", "cert-manager", "certs", {"global": {"rbac": {"create": False}}}))
    assert "Role" not in objs and "RoleBinding" not in objs


def test_cert_manager_extra_objects():
    """extras-objects.yaml: nothing by default; each string through `tpl` as its own document,
    so a `kind: List` comes out as a List, with its items inside."""
    out = raw("cert-manager", "cert-manager", "cert-manager", CM_VALUES)
    assert "extras-objects.yaml" not in out
    extra = ["apiVersion: v1\nkind: List\nitems:\n"
             "  - apiVersion: v1\n    kind: ConfigMap\n    metadata:\n"
             "      name: '{{ .Release.Name }}-one'\n    data: {a: '1'}\n"
             "  - apiVersion: v1\n    kind: ConfigMap\n    metadata:\n"
             "      name: '{{ .Release.Name }}-two'\n",
             "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: '{{ .Release.Name }}-three'\n"]
    out = raw("cert-manager", "cert-manager", "cert-manager", dict(CM_VALUES, extraObjects=extra))
    docs = [d for s, _, d in documents(out) if s.endswith("/extras-objects.yaml")]
    assert [d["kind"] for d in docs] == ["ConfigMap", "List"]  # Helm's kind order
    lst = docs[1]
    assert lst["apiVersion"] == "v1"
    assert [i["metadata"]["name"] for i in lst["items"]] == ["cert-manager-one", "cert-manager-two"]
    assert lst["items"][0]["data"] == {"a": "1"}
    assert docs[0]["metadata"]["name"] == "cert-manager-three"


@pytest.mark.parametrize("chart", ["cert-manager", "gha-runner-scale-set",
                                   "gha-runner-scale-set-controller"])
def test_notes_are_never_printed(chart):
    assert (CHARTS / chart / "templates" / "NOTES.txt").exists()
    values = {"cert-manager": {}, "gha-runner-scale-set": FLAGSHIP_SCALE_SET,
              "gha-runner-scale-set-controller": {}}[chart]
    out = raw("r", chart, "ns", values)
    assert "NOTES.txt" not in out and "sandbox stand-in for" not in out
