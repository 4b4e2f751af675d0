"""sandbox/helm/helm-template against a tiny chart made in a temporary directory."""

import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml

TOOL = Path(__file__).resolve().parent.parent / "helm-template"


def write(root, files):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())


@pytest.fixture
def chart(tmp_path):
    root = tmp_path / "tiny"
    write(root, {
        "Chart.yaml": """
            apiVersion: v2
            name: tiny
            version: 0.1.0
            appVersion: "2.0"
        """,
        "values.yaml": """
            replicas: 1
            image:
              repository: registry.local/tiny
              tag: "2.0"
            tolerations: []
        """,
        "values.schema.json": """
            {"type": "object", "properties": {"replicas": {"type": "integer", "minimum": 1}}}
        """,
        "templates/_helpers.tpl": """
            {{- define "tiny.fullname" -}}{{ .Release.Name }}-{{ .Chart.Name }}{{- end -}}
        """,
        "templates/deployment.yaml": """
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: {{ include "tiny.fullname" . }}
              namespace: {{ .Release.Namespace }}
            spec:
              replicas: {{ .Values.replicas }}
              template:
                spec:
                  containers:
                    - name: app
                      image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
                  {{- with .Values.tolerations }}
                  tolerations: {{- toYaml . | nindent 8 }}
                  {{- end }}
        """,
        "templates/rbac.yaml": """
            apiVersion: v1
            kind: ServiceAccount
            metadata:
              name: {{ include "tiny.fullname" . }}
            ---
            apiVersion: v1
            kind: Namespace
            metadata:
              name: {{ .Release.Namespace }}-extra
        """,
        "templates/widget.yaml": """
            apiVersion: example.com/v1
            kind: Widget
            metadata:
              name: {{ .Release.Name }}
        """,
        "templates/optional.yaml": """
            {{- if .Values.optional }}
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: optional
            {{- end }}
        """,
        "templates/hook.yaml": """
            apiVersion: batch/v1
            kind: Job
            metadata:
              name: migrate
              annotations:
                "helm.sh/hook": pre-install
        """,
        "templates/tests/test.yaml": """
            apiVersion: v1
            kind: Pod
            metadata:
              name: smoke
              annotations:
                "helm.sh/hook": test
        """,
        "templates/NOTES.txt": "Installed {{ .Release.Name }}\n",
        "crds/widgets.yaml": """
            apiVersion: apiextensions.k8s.io/v1
            kind: CustomResourceDefinition
            metadata:
              name: widgets.example.com
        """,
    })
    return root


def run(*args, stdin=None):
    return subprocess.run([str(TOOL), *map(str, args)], capture_output=True, text=True, input=stdin, timeout=60)


def documents(out):
    """[(source, object)] from helm template output."""
    docs = []
    for chunk in out.split("---\n")[1:]:
        source_line, _, body = chunk.partition("\n")
        assert source_line.startswith("# Source: "), chunk
        docs.append((source_line[len("# Source: "):], yaml.safe_load(body)))
    return docs


def test_renders_like_helm_template(chart):
    res = run("template", "demo", chart, "--namespace", "ci")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("---\n# Source: tiny/templates/")
    docs = documents(res.stdout)
    kinds = [d["kind"] for _, d in docs]
    # install order: Namespace, ServiceAccount, Deployment, then unknown kinds; then the hooks,
    # themselves in install order (Pod before Job)
    assert kinds == ["Namespace", "ServiceAccount", "Deployment", "Widget", "Pod", "Job"]
    sources = dict((d["kind"], s) for s, d in docs)
    assert sources["Deployment"] == "tiny/templates/deployment.yaml"
    assert sources["ServiceAccount"] == "tiny/templates/rbac.yaml"
    deployment = docs[2][1]
    assert deployment["metadata"] == {"name": "demo-tiny", "namespace": "ci"}
    assert deployment["spec"]["replicas"] == 1
    assert "Installed" not in res.stdout            # NOTES.txt is not a manifest
    assert "optional" not in res.stdout             # empty documents are dropped
    assert "CustomResourceDefinition" not in res.stdout


def test_values_files_then_set_flags(chart, tmp_path):
    first = tmp_path / "a.yaml"
    first.write_text("replicas: 2\nimage:\n  tag: '3.0'\n")
    second = tmp_path / "b.yaml"
    second.write_text("replicas: 3\ntolerations:\n- key: CriticalAddonsOnly\n  operator: Exists\n")
    res = run("template", "demo", chart, "-f", first, "--values", second, "--set", "image.repository=other/img",
              "--set-string", "image.tag=0042")
    assert res.returncode == 0, res.stderr
    dep = next(d for _, d in documents(res.stdout) if d["kind"] == "Deployment")
    assert dep["spec"]["replicas"] == 3
    pod = dep["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "other/img:0042"
    assert pod["tolerations"] == [{"key": "CriticalAddonsOnly", "operator": "Exists"}]
    res = run("template", "demo", chart, "-f", "-", "--set", "replicas=5", stdin="replicas: 4\n")
    dep = next(d for _, d in documents(res.stdout) if d["kind"] == "Deployment")
    assert dep["spec"]["replicas"] == 5


def test_crds_hooks_and_tests(chart):
    res = run("template", "demo", chart, "--include-crds")
    docs = documents(res.stdout)
    assert docs[0][0] == "tiny/crds/widgets.yaml"
    assert docs[0][1]["kind"] == "CustomResourceDefinition"
    res = run("template", "demo", chart, "--include-crds", "--skip-crds")
    assert "CustomResourceDefinition" not in res.stdout
    kinds = [d["kind"] for _, d in documents(run("template", "demo", chart, "--skip-tests").stdout)]
    assert "Job" in kinds and "Pod" not in kinds
    kinds = [d["kind"] for _, d in documents(run("template", "demo", chart, "--no-hooks").stdout)]
    assert "Job" not in kinds and "Pod" not in kinds


def test_show_only_and_default_release_name(chart):
    res = run("template", chart, "-s", "templates/deployment.yaml")
    assert res.returncode == 0, res.stderr
    docs = documents(res.stdout)
    assert [d["kind"] for _, d in docs] == ["Deployment"]
    assert docs[0][1]["metadata"]["name"] == "release-name-tiny"
    assert docs[0][1]["metadata"]["namespace"] == "default"
    res = run("template", "demo", chart, "-s", "templates/nope.yaml")
    assert res.returncode == 1 and "could not find template" in res.stderr


@pytest.mark.parametrize("args,needle", [
    (["oci://registry-1.docker.io/bitnamicharts/nginx"], "network"),
    (["jetstack/cert-manager"], "network"),
    (["CHART", "--repo", "https://charts.jetstack.io"], "network"),
    (["does/not/exist/here"], "not found"),
    (["CHART", "--set", "replicas=0"], "minimum"),
    (["CHART", "--set", "image.tag={{"], ""),
    (["CHART", "-f", "/no/such/values.yaml"], "/no/such/values.yaml"),
])
def test_errors_go_to_stderr_with_exit_1(chart, args, needle):
    args = [str(chart) if a == "CHART" else a for a in args]
    res = run("template", "demo", *args)
    assert res.returncode == 1
    assert res.stdout == ""
    assert res.stderr.startswith("Error: ") and needle in res.stderr


def test_invalid_release_name(chart):
    res = run("template", "Bad_Name", chart)
    assert res.returncode == 1 and "release name" in res.stderr


def test_template_error_reports_file(chart):
    (chart / "templates" / "broken.yaml").write_text("name: {{ required \"name is required\" .Values.name }}\n")
    res = run("template", "demo", chart)
    assert res.returncode == 1
    assert "tiny/templates/broken.yaml" in res.stderr and "name is required" in res.stderr


def test_packaged_chart_and_version_flag(chart, tmp_path):
    import helm_python
    archive = helm_python.package(chart, destination=tmp_path)
    res = run("template", "demo", archive, "--version", "0.1.0")
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""
    res = run("template", "demo", archive, "--version", "9.9.9")
    assert res.returncode == 0 and "ignored" in res.stderr
