"""A small ``helm template`` on the real Helm engine (PyPI ``helm-python-sdk``, Helm v4 + sprig).

    sandbox/helm/helm-template template RELEASE CHART [flags]

CHART must be a local chart directory or ``.tgz``: this sandbox has no network, so ``oci://``
references, ``repo/chart`` names and ``--repo`` are refused with a clear message.

What it keeps from ``helm template``:
- values: ``-f/--values`` files (``-`` is stdin) merged in order like Helm's mergeMaps, then
  ``--set-json``, ``--set``, ``--set-string``, ``--set-file``, ``--set-literal`` (parsed by
  Helm's own strvals); the chart's ``values.schema.json`` is enforced by the engine;
- output: every rendered document as ``---\\n# Source: CHART/templates/FILE\\n<doc>\\n``,
  documents split on ``---`` and sorted by Helm's install order of kinds (stable; unknown kinds
  last, alphabetically), partials (``_*``), NOTES.txt and empty documents left out; hooks
  (``helm.sh/hook``) after the manifests unless ``--no-hooks``, test hooks dropped by
  ``--skip-tests``; CRDs from ``crds/`` first with ``--include-crds`` (not with
  ``--skip-crds``); ``-s/--show-only`` picks templates by path (glob, without the chart name);
- the release name defaults to ``release-name`` and is validated like Helm; the namespace
  defaults to ``default``;
- errors go to stderr as ``Error: ...`` with exit status 1.
"""

import argparse
import os
import re
import sys

INSTALL_ORDER = [
    "PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange",
    "PodSecurityPolicy", "PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList",
    "ConfigMap", "StorageClass", "PersistentVolume", "PersistentVolumeClaim",
    "CustomResourceDefinition", "ClusterRole", "ClusterRoleList", "ClusterRoleBinding",
    "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList", "Service",
    "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment",
    "HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress",
    "APIService", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
]
_ORDER = {kind: i for i, kind in enumerate(INSTALL_ORDER)}
_SEP = re.compile(r"(?:^|\s*\n)---\s*")


class UsageError(Exception):
    pass


def parse_args(argv):
    if argv and argv[0] == "template":
        argv = argv[1:]
    p = argparse.ArgumentParser(prog="helm-template template", add_help=True,
                                description="Render a local chart like `helm template` (offline).")
    p.add_argument("args", nargs="*", metavar="[RELEASE] CHART")
    p.add_argument("-n", "--namespace", default=None)
    p.add_argument("-f", "--values", action="append", default=[])
    p.add_argument("--set", action="append", default=[])
    p.add_argument("--set-string", action="append", default=[])
    p.add_argument("--set-json", action="append", default=[])
    p.add_argument("--set-file", action="append", default=[])
    p.add_argument("--set-literal", action="append", default=[])
    p.add_argument("--version", default=None)
    p.add_argument("--repo", default=None)
    p.add_argument("--include-crds", action="store_true")
    p.add_argument("--skip-crds", action="store_true")
    p.add_argument("--no-hooks", action="store_true")
    p.add_argument("--skip-tests", action="store_true")
    p.add_argument("-s", "--show-only", action="append", default=[])
    p.add_argument("--is-upgrade", action="store_true")
    args = p.parse_intermixed_args(argv)
    if len(args.args) == 1:
        args.release, args.chart = "release-name", args.args[0]
    elif len(args.args) == 2:
        args.release, args.chart = args.args
    else:
        raise UsageError("expected `template [RELEASE] CHART` (got %d arguments)" % len(args.args))
    return args


def merge_maps(a, b):
    """Helm's mergeMaps: nested maps merge, everything else is replaced."""
    out = dict(a)
    for key, value in b.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_maps(out[key], value)
        else:
            out[key] = value
    return out


def read_values(args, helm):
    values = {}
    for path in args.values:
        if re.match(r"^[a-z][a-z0-9+.-]*://", path):
            raise UsageError(f"values file {path} is a URL; this sandbox has no network")
        try:
            text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
        except OSError as err:
            raise UsageError(f"open {path}: {err.strerror}")
        try:
            doc = helm.values_from_yaml(text) if text.strip() else {}
        except helm.HelmError as err:
            raise UsageError(f"failed to parse {path}: {err}")
        values = merge_maps(values, doc or {})
    for flag, parse in (("set_json", helm.parse_set_json), ("set", helm.parse_set_string),
                        ("set_string", helm.parse_set_string_values),
                        ("set_file", helm.parse_set_file), ("set_literal", helm.parse_set_literal)):
        for expression in getattr(args, flag):
            try:
                values = merge_maps(values, parse(expression))
            except helm.HelmError as err:
                raise UsageError(f"failed parsing --{flag.replace('_', '-')} data: {err}")
    return values


def check_local(args):
    chart = args.chart
    if args.repo:
        raise UsageError(f"--repo {args.repo}: charts from repositories need the network, which this "
                         "sandbox does not have; pass a local chart directory or .tgz")
    if chart.startswith("oci://") or re.match(r"^[a-z][a-z0-9+.-]*://", chart):
        raise UsageError(f"{chart}: remote charts need the network, which this sandbox does not have; "
                         "pass a local chart directory or .tgz")
    if not os.path.exists(chart):
        if re.match(r"^[^/.][^/]*/[^/]+$", chart):
            raise UsageError(f"{chart} looks like a repository chart reference; repositories need the "
                             "network, which this sandbox does not have; pass a local chart directory or .tgz")
        raise UsageError(f"path \"{chart}\" not found")


def _less(kind_a, kind_b):
    a, b = _ORDER.get(kind_a), _ORDER.get(kind_b)
    if a is None and b is None:
        return kind_a < kind_b
    if a is None:
        return False
    if b is None:
        return True
    return a < b


def sort_by_kind(items):
    """Stable sort of (kind, ...) tuples with Helm's lessByKind."""
    import functools

    def cmp(x, y):
        if _less(x[0], y[0]):
            return -1
        if _less(y[0], x[0]):
            return 1
        return 0
    return sorted(items, key=functools.cmp_to_key(cmp))


def split_documents(rendered):
    """[(kind, source, content, hook_annotation)] in file order, as Helm's SortManifests sees them."""
    import yaml

    generic, hooks = [], []
    for source in sorted(rendered):
        content = rendered[source]
        base = os.path.basename(source)
        if base.startswith("_") or base == "NOTES.txt" or source.endswith("/NOTES.txt"):
            continue
        if not content.strip():
            continue
        for doc in _SEP.split(content.strip()):
            if doc == "":
                continue
            doc = doc.strip()
            try:
                head = yaml.safe_load(doc)
            except yaml.YAMLError as err:
                raise UsageError(f"YAML parse error on {source}: {err}")
            head = head if isinstance(head, dict) else {}
            kind = head.get("kind") or ""
            annotations = ((head.get("metadata") or {}).get("annotations") or {})
            hook = annotations.get("helm.sh/hook") if isinstance(annotations, dict) else None
            (hooks if hook else generic).append((str(kind), source, doc, hook))
    return sort_by_kind(generic), sort_by_kind(hooks)


def _glob(pattern):
    out = ""
    for ch in pattern:
        out += {"*": "[^/]*", "?": "[^/]"}.get(ch, re.escape(ch))
    return re.compile("^" + out + "$")


def render(args, helm):
    check_local(args)
    try:
        helm.validate_release_name(args.release)
    except helm.HelmError as err:
        raise UsageError(f"release name {args.release!r}: {err}")
    values = read_values(args, helm)
    namespace = args.namespace or "default"
    with helm.Chart.load(args.chart) as chart:
        if args.version and chart.version != args.version.lstrip("v"):
            print(f"Warning: --version {args.version} ignored: {args.chart} is a local chart at "
                  f"version {chart.version}", file=sys.stderr)
        rendered = chart.render(values, name=args.release, namespace=namespace,
                                is_install=not args.is_upgrade, is_upgrade=args.is_upgrade)
        crds = chart.crds if (args.include_crds and not args.skip_crds) else []
    generic, hooks = split_documents(rendered)
    out = []
    for crd in crds:
        out.append(f"---\n# Source: {crd['filename']}\n{crd['data']}\n")
    for _, source, doc, _ in generic:
        out.append(f"---\n# Source: {source}\n{doc}\n")
    if not args.no_hooks:
        for _, source, doc, hook in hooks:
            if args.skip_tests and any(h.strip().startswith("test") for h in str(hook).split(",")):
                continue
            out.append(f"---\n# Source: {source}\n{doc}\n")
    if args.show_only:
        picked = []
        for pattern in args.show_only:
            rx = _glob(pattern.replace(os.sep, "/"))
            found = [m for m in out if rx.match(m.split("\n", 2)[1].split("# Source: ", 1)[1].split("/", 1)[-1])]
            if not found:
                raise UsageError(f"could not find template {pattern} in chart")
            picked += found
        out = picked
    return "".join(out)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parse_args(argv)
    except UsageError as err:
        print(f"Error: {err}", file=sys.stderr)
        return 1
    import helm_python as helm
    try:
        sys.stdout.write(render(args, helm))
    except UsageError as err:
        print(f"Error: {err}", file=sys.stderr)
        return 1
    except helm.HelmError as err:
        print(f"Error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
